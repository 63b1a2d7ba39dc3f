"""The one place values are validated, with one message form.

Each check returns the value normalised (a float, an int, `np.inf`) or
raises a `ValueError` that names the argument and the value received, as
Keras does: "Invalid value received for argument `beta`: expected a
finite number >= 0. Received: beta=-1". A value is checked once, where it
enters: an app's flag, a config field, a constructor argument.

Pure Python and numpy: apps check their flags with it before TensorFlow
is imported.
"""

import math
import numbers

import numpy as np

NORMS = (2, np.inf)


def invalid(name, expected, value, received=None):
    """The `ValueError` of every check: names `name` and `value`."""
    shown = f"{name}={value!r}" if received is None else received
    return ValueError(
        f"Invalid value received for argument `{name}`: expected {expected}. "
        f"Received: {shown}"
    )


def _real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def positive(name, value):
    """`value` as a float: finite and > 0."""
    if not _real(value) or not math.isfinite(value) or value <= 0:
        raise invalid(name, "a finite number > 0", value)
    return float(value)


def non_negative(name, value):
    """`value` as a float: finite and >= 0."""
    if not _real(value) or not math.isfinite(value) or value < 0:
        raise invalid(name, "a finite number >= 0", value)
    return float(value)


def positive_int(name, value):
    """`value` as an int >= 1."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or (
        value < 1
    ):
        raise invalid(name, "an integer >= 1", value)
    return int(value)


def non_negative_int(name, value):
    """`value` as an int >= 0."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or (
        value < 0
    ):
        raise invalid(name, "an integer >= 0", value)
    return int(value)


def probability(name, value):
    """`value` as a float in the open interval (0, 1)."""
    if not _real(value) or not 0 < value < 1:
        raise invalid(name, "a number in (0, 1)", value)
    return float(value)


def choice(name, value, choices):
    """`value` unchanged, when it is one of `choices`."""
    if value not in tuple(choices):
        raise invalid(name, f"one of {tuple(choices)}", value)
    return value


def norm(value, name="norm"):
    """2 or np.inf, from those or from "2", "l2", "inf", "linf"."""
    names = {"2": 2, "l2": 2, "inf": np.inf, "linf": np.inf}
    given = value
    if isinstance(value, str):
        value = names.get(value.strip().lower(), value)
    if isinstance(value, bool) or value not in NORMS:
        raise invalid(name, "2 or np.inf", given)
    return 2 if value == 2 else np.inf


def norm_name(value):
    """`2` or `"inf"`: a norm as JSON and flags spell it."""
    return 2 if norm(value) == 2 else "inf"


def budgets(eps, name="eps"):
    """`(list of floats, was_scalar)`: one budget > 0 or a list of them."""
    many = isinstance(eps, (list, tuple, np.ndarray))
    values = list(eps) if many else [eps]
    if not values or not all(
        _real(e) and math.isfinite(e) and e > 0 for e in values
    ):
        raise invalid(name, "a number > 0 or a non-empty list of them", eps)
    return [float(e) for e in values], not many


def grid(values, name="eps_grid"):
    """A tuple of floats: non-empty, finite, > 0, strictly increasing."""
    try:
        parsed = tuple(float(e) for e in values)
    except (TypeError, ValueError):
        parsed = None
    if not parsed or any(
        not math.isfinite(e) or e <= 0 for e in parsed
    ) or any(b <= a for a, b in zip(parsed, parsed[1:])):
        raise invalid(
            name, "a non-empty, strictly increasing list of budgets > 0",
            values,
        )
    return parsed


def float_list(name, values):
    """Floats from a list of strings (an absl list flag)."""
    try:
        parsed = [float(v) for v in values]
    except (TypeError, ValueError):
        parsed = None
    if not parsed:
        raise invalid(name, "a comma-separated list of numbers", values)
    return parsed


def batch_shape(x, image_shape, name="x"):
    """Raises unless `x` is a batch of `image_shape` images."""
    shape, expected = tuple(x.shape), tuple(image_shape)
    if len(shape) != len(expected) + 1 or any(
        s is not None and e is not None and s != e
        for s, e in zip(shape[1:], expected)
    ):
        raise invalid(
            name, f"images of shape (batch, {', '.join(map(str, expected))})",
            x, f"{name}.shape={shape}",
        )


def not_finite(name="x"):
    """The `ValueError` for an input that holds NaN or inf."""
    return ValueError(
        f"Invalid value received for argument `{name}`: it holds "
        "non-finite values (NaN or inf)."
    )


def finite_array(x, name="x"):
    """Raises when a numpy array holds NaN or inf."""
    if not np.all(np.isfinite(x)):
        raise not_finite(name)


def pixel_range(x, name="x", low=0.0, high=1.0):
    """Raises when a numpy array has values outside [low, high]."""
    if isinstance(x, np.ndarray) and x.size:
        lo, hi = float(np.min(x)), float(np.max(x))
        if not (low <= lo and hi <= high):
            hint = " (scale uint8 images by 1/255)" if high == 1.0 else ""
            raise ValueError(
                f"Invalid value received for argument `{name}`: pixel "
                f"values must lie in [{low:g}, {high:g}]{hint}. "
                f"Received: {name} with min={lo:g}, max={hi:g}"
            )
