import json
import os
import subprocess
import sys

import pytest

from vaekeras import distribution

HERE = os.path.dirname(os.path.abspath(__file__))


def check(backend, tmp_path, *extra):
    out = tmp_path / "result.json"
    env = {**os.environ, "KERAS_BACKEND": backend}
    env.pop("XLA_FLAGS", None)
    result = subprocess.run(
        [sys.executable, os.path.join(HERE, "distributed_check.py"),
         backend, str(out), str(tmp_path), *extra],
        env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    with open(out) as f:
        return json.load(f)


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_data_parallel_on_two_virtual_devices(backend, tmp_path):
    result = check(backend, tmp_path)
    assert result["plan"]["distribution"] == "data_parallel"
    assert result["plan"]["num_replicas"] == 2
    for label in ("beta", "mixup"):
        run = result[label]
        assert run["environment"]["num_replicas"] == 2
        assert run["flags"] == "data_parallel"
        if backend == "jax":
            # One program over the global batch: the same numbers.
            assert run["max_weight_difference"] < 1e-5, run
            assert run["loss_dp"] == pytest.approx(run["loss_none"], rel=1e-5)
        else:
            # One replica per device, each with its own noise: the same
            # training, other random draws.
            assert run["loss_dp"] == pytest.approx(run["loss_none"], rel=0.02)
    assert result["resume"]["resumed_after_epoch"] == 2
    assert result["resume"]["max_weight_difference"] < 1e-5
    measure = result["measure"]
    for name in ("eigenvalues", "pgd", "eigen_attack", "mcmc"):
        assert measure[name] < 1e-5, (name, measure)
    if backend == "tensorflow":
        # Every compiled call was split over the two replicas.
        assert measure["sharded_calls"] >= 4


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_every_defense_trains_data_parallel(backend, tmp_path):
    result = check(backend, tmp_path, "--defenses")
    for defense, (single, multi) in result["defenses"].items():
        # JAX: the same program; TF: per-replica noise (and TC's estimator
        # sees each replica's half batch).
        tolerance = 1e-4 if backend == "jax" else 0.05
        assert multi == pytest.approx(single, rel=tolerance), defense


def test_plans_on_one_device():
    assert distribution.plan_distribution("none").name == "none"
    # No accelerators here: auto means none.
    plan = distribution.plan_distribution("auto")
    assert plan.name == "none" and plan.num_replicas == 1
    with pytest.raises(ValueError, match="at least two devices"):
        distribution.plan_distribution("data_parallel")
    with pytest.raises(ValueError, match="distribution='mirror'"):
        distribution.plan_distribution("mirror")


def test_torch_is_refused_by_name():
    code = (
        "from vaekeras import distribution as d\n"
        "print(d.plan_distribution('auto').name)\n"
        "try:\n    d.plan_distribution('data_parallel')\n"
        "except ValueError as e:\n    print(e)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True,
        env={**os.environ, "KERAS_BACKEND": "torch"}, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "none"
    assert "jax and tensorflow" in lines[1] and "'torch'" in lines[1]
