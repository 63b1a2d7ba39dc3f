import json
import os
import socket
import subprocess
import sys

import pytest

from vaekeras import data
from vaekeras import distribution
from vaekeras import training

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
    # TensorFlow splits a compiled call over its two replicas; JAX on CPU
    # devices runs it whole on one (`backend._place`).
    expected = [0, 1] if backend == "tensorflow" else [0]
    assert measure["replicas"] == expected


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_jax_hosts_on_loopback(tmp_path):
    port = str(free_port())
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    env.pop("XLA_FLAGS", None)
    hosts = [
        subprocess.Popen(
            [sys.executable, os.path.join(HERE, "multihost_check.py"),
             str(i), port, str(tmp_path / f"{i}.json"), str(tmp_path)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    errors = [host.communicate(timeout=600)[1] for host in hosts]
    for host, error in zip(hosts, errors):
        assert host.returncode == 0, error[-4000:]
    first, second = (
        json.loads((tmp_path / f"{i}.json").read_text()) for i in range(2)
    )
    assert first["plan"]["processes"] == 2
    assert first["plan"]["num_replicas"] == 2
    assert [first["plan"]["process_index"],
            second["plan"]["process_index"]] == [0, 1]
    # One training: the same weights and measurements on both hosts.
    assert first["weights"] == second["weights"]
    assert first["loss"] == second["loss"]
    assert first["eigenvalues"] == pytest.approx(second["eigenvalues"])
    # Each host read its own half of the training split.
    labels = data.load_arrays("digits", "train")[1]
    half = len(labels) // 2
    assert first["labels_read"] == labels[:2 * half][0::2].tolist()
    assert second["labels_read"] == labels[:2 * half][1::2].tolist()
    # The same training as on one device, up to the data order.
    one = training.train(training.TrainConfig(
        dataset="digits", epochs=2, latent_dim=3, batch_size=64, verbose=0,
        monitor_geometry=False, output_dir=str(tmp_path / "one"),
    ))
    assert first["loss"] == pytest.approx(
        one["metrics"]["train"]["loss"], rel=0.02
    )


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_every_defense_trains_data_parallel(backend, tmp_path):
    result = check(backend, tmp_path, "--defenses")
    for defense, (single, multi) in result["defenses"].items():
        # JAX: the same program; TF: per-replica noise (and TC's estimator
        # sees each replica's half batch).
        tolerance = 1e-4 if backend == "jax" else 0.05
        assert multi == pytest.approx(single, rel=tolerance), defense


def test_plans_on_the_devices_there_are():
    from vaekeras import backend

    assert distribution.plan_distribution("none").name == "none"
    accelerators, every = backend.devices()
    plan = distribution.plan_distribution("auto")
    if len(accelerators) >= 2:  # auto spreads over every accelerator
        assert plan.name == "data_parallel"
        assert plan.devices == accelerators
    else:
        assert plan.name == "none" and plan.num_replicas == 1
    if len(every) < 2:
        with pytest.raises(ValueError, match="at least two devices"):
            distribution.plan_distribution("data_parallel")
    else:
        assert distribution.plan_distribution("data_parallel").devices == (
            every if len(accelerators) < 2 else accelerators
        )
    with pytest.raises(ValueError, match="distribution='mirror'"):
        distribution.plan_distribution("mirror")


def test_tensorflow_across_hosts_is_refused_by_name(tf_only, monkeypatch):
    two_workers = json.dumps({
        "cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
        "task": {"type": "worker", "index": 0},
    })
    monkeypatch.setenv("TF_CONFIG", two_workers)
    for name in ("auto", "data_parallel"):
        with pytest.raises(ValueError, match="TF_CONFIG names 2 tasks") as e:
            distribution.plan_distribution(name)
        assert "KERAS_BACKEND=jax" in str(e.value)
        assert f"distribution={name!r}" in str(e.value)
    assert distribution.plan_distribution("none").name == "none"
    # One task is one host: no refusal (one CPU device: auto is none).
    monkeypatch.setenv("TF_CONFIG", json.dumps({
        "cluster": {"worker": ["127.0.0.1:1"]},
        "task": {"type": "worker", "index": 0},
    }))
    assert distribution.plan_distribution("auto").name == "none"
    monkeypatch.setenv("TF_CONFIG", "not json")
    with pytest.raises(ValueError, match="TF_CONFIG='not json'"):
        distribution.plan_distribution("auto")


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
