"""What the command-line apps share: list parsing and error handling."""

import sys

from vaekeras import checks


def parse_float_list(name, values):
    """Floats from a list of strings (an absl list flag), or a clear error."""
    return checks.float_list(name, values)


def parse_norm(value):
    """2 or np.inf from an enum flag value `"2"` or `"inf"`."""
    return checks.norm(value)


def attack_settings(settings):
    """The shared attack flags' values with `eps` and `norm` parsed (a
    list of floats, 2 or np.inf)."""
    return {
        **settings,
        "eps": parse_float_list("eps", settings["eps"]),
        "norm": parse_norm(settings["norm"]),
    }


# The exit status of a run stopped by Ctrl-C (128 + SIGINT), as shells use.
INTERRUPTED = 130


def run_cli(fn, *args, **kwargs):
    """Runs `fn`; bad input exits with status 2 and a one-line message.

    Ctrl-C exits with status 130 and one line instead of a traceback:
    what finished (epochs, runs, measurements, trials) is kept, so the
    same command goes on from there.
    """
    from vaekeras.runs import FolderInUse

    try:
        return fn(*args, **kwargs)
    except (
        ValueError, FileNotFoundError, FloatingPointError, ConnectionError,
        FolderInUse,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(
            "interrupted: run the same command again to go on from where "
            "it stopped (finished epochs, runs and measurements are kept).",
            file=sys.stderr,
        )
        sys.exit(INTERRUPTED)
