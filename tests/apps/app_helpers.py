"""Helpers for the app tests."""

import concurrent.futures
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def run_app(name, *args, timeout=600):
    """Runs `apps/<name>` in a fresh interpreter."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "apps", name), *args],
        capture_output=True, text=True, env=env, timeout=timeout,
    )


def start_apps(cases, workers=2):
    """Starts `run_app(*case)` for every case, `workers` at a time.

    For the many quick refusals: each app's start-up (importing
    TensorFlow) takes seconds of one core, so two run side by side.

    Returns:
        A dict from each case to a future of its `CompletedProcess`.
    """
    pool = concurrent.futures.ThreadPoolExecutor(workers)
    futures = {
        case: pool.submit(run_app, *case, timeout=300) for case in cases
    }
    pool.shutdown(wait=False)
    return futures
