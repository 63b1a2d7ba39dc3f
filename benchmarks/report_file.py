"""A benchmark's table as a report under `reports/`, with its command and
the machine it ran on, so README can quote it and the suite can check
the quote (`check_readme_results.py`)."""

import datetime
import os
import platform
import sys


def machine():
    """One line: cores, processor, Python, Keras and its backend."""
    import keras

    return (
        f"{os.cpu_count()} CPU cores ({platform.machine()}), Python "
        f"{platform.python_version()}, Keras {keras.__version__} "
        f"({keras.backend.backend()} backend)"
    )


def write(path, title, lines, note=""):
    """Writes `# title`, the command, the machine, `note` and `lines`."""
    command = "python " + " ".join(sys.argv)
    text = [
        f"# {title}", "",
        f"Made by `{command}` on {datetime.date.today().isoformat()}: "
        f"{machine()}.", "",
    ]
    if note:
        text += [note, ""]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(text + list(lines)) + "\n")
