"""TensorFlow imported without its start-up banner.

TensorFlow's C++ runtime writes a few lines to stderr when it loads
(oneDNN, CPU instructions, absl's logging notice) that no user can act
on. `install()` (run by `import vaekeras`) arranges that the first import
of Keras in the process, under the TensorFlow backend, goes through
`import_tensorflow_quietly`, which drops those lines and passes every
other line through. Nothing is changed once TensorFlow is
loaded, nor under another backend.
"""

import importlib.abc
import os
import sys
import tempfile

# The lines of TensorFlow's import banner.
BANNER_LINES = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
    "cpu_feature_guard.cc",
    "To enable the following instructions:",
)


def import_tensorflow_quietly():
    """Imports TensorFlow with its banner lines removed from stderr."""
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            sys.stderr.flush()
            os.dup2(saved_stderr, 2)
            os.close(saved_stderr)
            captured.seek(0)
            text = captured.read().decode(errors="replace")
            for line in text.splitlines(keepends=True):
                if not any(banner in line for banner in BANNER_LINES):
                    sys.stderr.write(line)
            sys.stderr.flush()


def _tensorflow_backend():
    return os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow"


class _FirstImport(importlib.abc.MetaPathFinder):
    """Before the first import of keras: TensorFlow, quietly. Finds
    nothing itself; the normal import then proceeds.

    Keras, not TensorFlow: libraries probe for TensorFlow
    (`importlib.util.find_spec`) without importing it, and a probe must
    not load it.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "keras":
            sys.meta_path.remove(self)
            if "tensorflow" not in sys.modules and _tensorflow_backend():
                try:
                    import_tensorflow_quietly()
                except ImportError:
                    pass  # the import that follows raises it
        return None


def install():
    """Quiets the process's first TensorFlow import (once)."""
    if "tensorflow" in sys.modules or any(
        isinstance(f, _FirstImport) for f in sys.meta_path
    ):
        return
    sys.meta_path.insert(0, _FirstImport())
