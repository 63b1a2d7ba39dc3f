"""One of two JAX processes on loopback: run by test_distribution.py.

Usage: python multihost_check.py <process_id> <port> <output.json> <workdir>

Two processes on one machine, one CPU device each, joined by
`keras.distribution.initialize` (the `KERAS_DISTRIBUTION_*` variables, as
on real hosts) and gloo for the CPU collectives: one data-parallel
training over both, each process feeding its own half of the data.
"""

import json
import os
import sys

process_id, port, output, workdir = sys.argv[1:5]
os.environ.update(
    KERAS_BACKEND="jax",
    KERAS_DISTRIBUTION_JOB_ADDRESSES=f"127.0.0.1:{port},127.0.0.1:{port}",
    KERAS_DISTRIBUTION_NUM_PROCESSES="2",
    KERAS_DISTRIBUTION_PROCESS_ID=process_id,
)
import jax  # noqa: E402

jax.config.update("jax_cpu_collectives_implementation", "gloo")

import numpy as np  # noqa: E402

from vaekeras import data  # noqa: E402
from vaekeras import distribution  # noqa: E402
from vaekeras import geometry  # noqa: E402
from vaekeras import training  # noqa: E402

plan = distribution.plan_distribution("data_parallel")
run = training.train(training.TrainConfig(
    dataset="digits", epochs=2, latent_dim=3, batch_size=64, verbose=0,
    monitor_geometry=False, distribution="data_parallel",
    output_dir=os.path.join(workdir, f"host{process_id}"),
))
x = data.load_arrays("digits", "test")[0][:32]
with plan.scope():
    eigenvalues = np.asarray(geometry.eigenvalues(run["model"], x, "fisher"))
share = data.load_arrays("digits", "train", shard=plan.data_shard())[1]
with open(output, "w") as f:
    json.dump({
        "plan": plan.describe(),
        "loss": run["metrics"]["train"]["loss"],
        "test_loss": run["metrics"]["test"]["loss"],
        "weights": [
            w.ravel()[:50].tolist() for w in run["model"].get_weights()
        ],
        "eigenvalues": eigenvalues[:, 0].tolist(),
        "labels_read": share.tolist(),
    }, f)
