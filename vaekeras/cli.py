"""What the command-line apps share: list parsing and error handling."""

import sys


def parse_float_list(name, values):
    """Floats from a list of strings (an absl list flag), or a clear error."""
    try:
        parsed = [float(v) for v in values]
    except (TypeError, ValueError):
        parsed = None
    if not parsed:
        raise ValueError(
            f"Invalid value received for argument `{name}`: expected a "
            f"comma-separated list of numbers. Received: {name}={values!r}"
        )
    return parsed


def parse_norm(value):
    """2 or np.inf from an enum flag value `"2"` or `"inf"`."""
    from vaekeras import attacks

    return attacks.check_norm(value)


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
