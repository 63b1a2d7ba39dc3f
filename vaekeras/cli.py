"""What the command-line apps share: list parsing and error handling."""

import sys

from vaekeras import checks


def parse_float_list(name, values):
    """Floats from a list of strings (an absl list flag), or a clear error."""
    return checks.float_list(name, values)


def parse_norm(value):
    """2 or np.inf from an enum flag value `"2"` or `"inf"`."""
    return checks.norm(value)


def run_cli(fn, *args, **kwargs):
    """Runs `fn`; bad input exits with status 2 and a one-line message."""
    from vaekeras.runs import FolderInUse

    try:
        return fn(*args, **kwargs)
    except (
        ValueError, FileNotFoundError, FloatingPointError, FolderInUse
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
