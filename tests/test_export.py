import json
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import to_numpy

from vaekeras import build_vae
from vaekeras import export
from vaekeras import geometry

pytestmark = pytest.mark.usefixtures("tf_only")

# Runs in a fresh interpreter that never imports vaekeras.
_SERVE = """
import json, sys
import numpy as np
import tensorflow as tf
assert "vaekeras" not in sys.modules
loaded = tf.saved_model.load(sys.argv[1])
x = np.load(sys.argv[2])
enc = loaded.encode(tf.constant(x))
out = {
    "z_mean": enc["z_mean"].numpy().tolist(),
    "z_log_var": enc["z_log_var"].numpy().tolist(),
    "decode": loaded.decode(enc["z_mean"])["x_mean"].numpy().tolist(),
    "reconstruct": (
        loaded.reconstruct(tf.constant(x))["x_mean"].numpy().tolist()
    ),
    "metric_eigenvalues": (
        loaded.metric_eigenvalues(tf.constant(x))["eigenvalues"]
        .numpy().tolist()
    ),
    "one": loaded.encode(tf.constant(x[:1]))["z_mean"].numpy().tolist(),
    "vaekeras_imported": "vaekeras" in sys.modules,
}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = build_vae((8, 8, 1), latent_dim=3, architecture="conv", seed=0)
    path = str(tmp_path_factory.mktemp("run") / "export")
    export.export_saved_model(model, path)
    return model, path


@pytest.mark.slow
def test_saved_model_serves_same_numbers_without_vaekeras(
    exported, digits, tmp_path
):
    model, path = exported
    x = digits[1][:5]
    np.save(tmp_path / "x.npy", x)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", _SERVE, path, str(tmp_path / "x.npy")],
        capture_output=True, text=True, env=env, cwd=str(tmp_path),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["vaekeras_imported"] is False
    z_mean, z_log_var = (to_numpy(t) for t in model.encode(x))
    np.testing.assert_allclose(served["z_mean"], z_mean, atol=1e-5)
    np.testing.assert_allclose(served["z_log_var"], z_log_var, atol=1e-5)
    np.testing.assert_allclose(
        served["decode"], to_numpy(model.decode(z_mean)), atol=1e-5
    )
    np.testing.assert_allclose(
        served["reconstruct"], to_numpy(model.reconstruct(x)), atol=1e-5
    )
    values, _ = geometry.eigenspectrum(model.encoder, x)
    np.testing.assert_allclose(
        served["metric_eigenvalues"], to_numpy(values), rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(served["one"], z_mean[:1], atol=1e-5)


def test_load_exported_checks_the_artifact(exported, tmp_path):
    _, path = exported
    loaded = export.load_exported(path)
    assert all(hasattr(loaded, name) for name in export.ENDPOINTS)
    with pytest.raises(FileNotFoundError, match="no SavedModel"):
        export.load_exported(str(tmp_path))
    with pytest.raises(ValueError, match=r"endpoint\(s\) \['encode'\]"):
        export.check_endpoints(object(), "somewhere")


def test_saved_model_endpoints_refuse_nan_and_out_of_range(tf_only, tmp_path):
    import tensorflow as tf

    model = build_vae((4, 4, 1), latent_dim=2, hidden_units=(4,))
    path = export.export_saved_model(model, str(tmp_path / "sm"))
    loaded = tf.saved_model.load(path)
    x = np.full((2, 4, 4, 1), 0.5, "float32")
    values = loaded.metric_eigenvalues(x)["eigenvalues"]
    assert np.all(np.isfinite(values.numpy()))
    bad = x.copy()
    bad[1, 0, 0, 0] = np.nan
    for endpoint in (loaded.encode, loaded.reconstruct,
                     loaded.metric_eigenvalues):
        with pytest.raises(tf.errors.InvalidArgumentError, match="NaN"):
            endpoint(tf.constant(bad))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[0, 1\]"):
        loaded.encode(tf.constant(x * 255))
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN"):
        loaded.decode(tf.constant([[np.nan, 0.0]], tf.float32))


def test_every_serving_signature_names_its_outputs(exported):
    import tensorflow as tf

    _, path = exported
    loaded = tf.saved_model.load(path)
    names = {
        key: sorted(fn.structured_outputs)
        for key, fn in loaded.signatures.items()
    }
    assert names["encode"] == ["z_log_var", "z_mean"]
    assert names["decode"] == ["x_mean"]
    assert names["reconstruct"] == ["x_mean"]
    assert names["metric_eigenvalues"] == ["eigenvalues"]
    assert not any(
        name.startswith("output_") for outs in names.values() for name in outs
    )


def test_output_kind_endpoint_uses_the_decoder(tmp_path, digits):
    import tensorflow as tf

    model = build_vae((8, 8, 1), latent_dim=3, hidden_units=(16,), seed=0)
    path = export.export_saved_model(
        model, str(tmp_path / "sm"), metric_kind="output"
    )
    loaded = tf.saved_model.load(path)
    x = digits[1][:4]
    served = loaded.metric_eigenvalues(tf.constant(x))["eigenvalues"]
    assert served.shape == (4, 3)  # rank bound d
    want = geometry.eigenvalues(model, x, kind="output")
    np.testing.assert_allclose(
        served.numpy(), to_numpy(want), rtol=1e-4, atol=1e-8
    )
    # The loaded SavedModel itself is an output-kind model too (decode).
    np.testing.assert_allclose(
        to_numpy(geometry.eigenvalues(loaded, x, kind="output")),
        to_numpy(want), rtol=1e-4, atol=1e-8,
    )
