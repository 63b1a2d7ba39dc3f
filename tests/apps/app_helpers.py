"""Helpers for the app tests."""

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
