"""Run in a subprocess by test_distribution.py, on two virtual devices.

Usage: python distributed_check.py <backend> <output.json> <workdir>
    [--defenses]   (only the defenses, each one epoch with and without)

The device count is process-wide (XLA flags, TF logical devices), so these
checks never run inside the pytest process.
"""

import json
import os
import sys

backend, output, workdir = sys.argv[1:4]
only_defenses = "--defenses" in sys.argv[4:]
os.environ["KERAS_BACKEND"] = backend
if backend == "jax":
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
else:
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )

import keras  # noqa: E402
import numpy as np  # noqa: E402

from vaekeras import attacks  # noqa: E402
from vaekeras import backend  # noqa: E402
from vaekeras import data  # noqa: E402
from vaekeras import defenses  # noqa: E402
from vaekeras import distribution  # noqa: E402
from vaekeras import geometry  # noqa: E402
from vaekeras import latent  # noqa: E402
from vaekeras import runs  # noqa: E402
from vaekeras import training  # noqa: E402

result = {}


def config(name, **kwargs):
    return training.TrainConfig.from_settings(**{
        "dataset": "digits", "epochs": 1, "latent_dim": 3, "batch_size": 64,
        "output_dir": os.path.join(workdir, name), "verbose": 0,
        "monitor_geometry": False, **kwargs,
    })


plan = distribution.plan_distribution("data_parallel")
result["plan"] = plan.describe()
if only_defenses:
    # Every defense trains under the plan (their steps run per replica).
    result["defenses"] = {}
    for defense in (n for n in defenses.names() if n != "none"):
        result["defenses"][defense] = [
            training.train(config(
                f"{defense}_{mode}", distribution=mode, defense=defense
            ))["metrics"]["train"]["loss"]
            for mode in ("none", "data_parallel")
        ]
    with open(output, "w") as f:
        json.dump(result, f)
    sys.exit(0)
# Mixup runs 3 epochs: its data-parallel run is also the uninterrupted
# run the killed one must resume to.
for label, extra in (("beta", {"beta": 2.0}),
                     ("mixup", {"mixup_alpha": 0.5, "epochs": 3})):
    single = training.train(config(f"{label}_none", distribution="none",
                                   **extra))
    multi = training.train(config(f"{label}_dp", distribution="data_parallel",
                                  **extra))
    result[label] = {
        "loss_none": single["metrics"]["train"]["loss"],
        "loss_dp": multi["metrics"]["train"]["loss"],
        "max_weight_difference": max(
            float(np.max(np.abs(a - b))) for a, b in zip(
                single["model"].get_weights(), multi["model"].get_weights()
            )
        ),
        "environment": runs.read_json(os.path.join(
            workdir, f"{label}_dp", "environment.json"
        ))["distribution"],
        "flags": runs.read_json(os.path.join(
            workdir, f"{label}_dp", "flags.json"
        ))["distribution"],
    }

# A killed distributed run resumes to the uninterrupted weights.
whole = multi["model"].get_weights()
original = training._StopOnNaN.on_epoch_end


def killed(self, epoch, logs=None):
    if epoch == 1:
        raise KeyboardInterrupt


training._StopOnNaN.on_epoch_end = killed
try:
    training.train(config("killed", epochs=3, distribution="data_parallel",
                          mixup_alpha=0.5))
except KeyboardInterrupt:
    pass
training._StopOnNaN.on_epoch_end = original
resumed = training.train(config("killed", epochs=3,
                                distribution="data_parallel",
                                mixup_alpha=0.5))
result["resume"] = {
    "resumed_after_epoch": resumed["metrics"]["resumed_after_epoch"],
    "max_weight_difference": max(
        float(np.max(np.abs(a - b)))
        for a, b in zip(whole, resumed["model"].get_weights())
    ),
}

# Measurement on a batch split over the devices equals the unsplit one:
# 33 examples (an uneven split, 17 + 16 on TensorFlow), and PGD on 32.
# PGD amplifies rounding: the unsplit attack on 17 examples already
# differs from the 33-example one by 1e-3 in the 17th (CPU kernels round
# a batch's remainder rows differently; measured), so it runs on two
# shares of 16.
x = data.load_arrays("digits", "test")[0][:33]
keras.utils.set_random_seed(0)
model = single["model"]


def measure():
    return {
        "eigenvalues": geometry.eigenvalues(model, x, "fisher"),
        "pgd": attacks.LatentPGD(model, eps=0.5, max_iter=5,
                                 seed=0).generate(x[:32]),
        "eigen_attack": attacks.EigenAttack(model, eps=0.5,
                                            kind="fisher").generate(x),
        "mcmc": defenses.MCMCReconstruction(model, steps=4,
                                            seed=0).reconstruct(x),
    }


alone = measure()
adapter = latent.LatentModel.of(model)
with plan.scope():
    split = measure()
result["measure"] = {
    name: float(
        np.max(np.abs(np.asarray(alone[name]) - np.asarray(split[name])))
        / np.max(np.abs(np.asarray(alone[name])))
    ) for name in alone
}


def replica_of_each_example(view, x):
    replica = backend.replica_id()
    return keras.ops.zeros((keras.ops.shape(x)[0],)) + keras.ops.cast(
        0 if replica is None else replica, "float32"
    )


with plan.scope():
    replicas = adapter.function(replica_of_each_example, "replicas")(x)
result["measure"]["replicas"] = sorted(
    set(np.asarray(replicas).astype(int).tolist())
)
with open(output, "w") as f:
    json.dump(result, f)
