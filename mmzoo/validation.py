"""Argument checks shared by layers and models, in the keras.applications style.

Each returns the value (normalised where it says so) or raises ``ValueError`` naming
the argument, what is allowed and what was received.
"""

import difflib
import math


def closest(word, choices):
    """Up to three of ``choices`` that contain ``word`` or look like it, best first."""
    word = str(word)
    containing = [c for c in choices if word in c]
    similar = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.5)
    return list(dict.fromkeys(containing + similar))[:3]


def check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return value


def check_int(name, value, minimum):
    """An integer of at least ``minimum`` (``check_positive_int`` for ``minimum=1``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an integer of at least {minimum}. Received: {name}={value!r}")
    return value


def check_filters(name, value, what=""):
    """A non-empty tuple of positive integers (filters of convolution blocks); ``what`` says what they are."""
    valid = isinstance(value, (list, tuple)) and len(value) > 0 and all(
        isinstance(f, int) and not isinstance(f, bool) and f > 0 for f in value
    )
    if not valid:
        raise ValueError(
            f"`{name}` must be a non-empty tuple of positive integers{f' ({what})' if what else ''}. "
            f"Received: {name}={value!r}"
        )
    return tuple(value)


def check_seed(name, value):
    """An integer seed, or None for an unseeded one."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"`{name}` must be an integer or None. Received: {name}={value!r}")
    return value


def check_finite_number(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"`{name}` must be a finite number. Received: {name}={value!r}")
    return value


def check_rate(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"`{name}` must be a number in [0, 1). Received: {name}={value!r}")
    return value


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {', '.join(map(repr, choices))}. Received: {name}={value!r}"
        )
    return value


def check_shape(name, value, rank, minimum=1):
    """A tuple of ``rank`` integers, each at least ``minimum``."""
    valid = (
        isinstance(value, (list, tuple))
        and len(value) == rank
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in value)
    )
    if not valid:
        raise ValueError(
            f"`{name}` must be a tuple of {rank} integers, each at least {minimum}. "
            f"Received: {name}={value!r}"
        )
    return tuple(value)


def check_image_shape(name, value, minimum_size, channels=None):
    """An (height, width, channels) tuple: sides at least ``minimum_size``, channels as given."""
    shape = check_shape(name, value, rank=3)
    if min(shape[:2]) < minimum_size or (channels is not None and shape[2] != channels):
        expected = f"{channels} channels" if channels is not None else "any channels"
        raise ValueError(
            f"`{name}` must be (height, width, channels) with height and width at least "
            f"{minimum_size} and {expected}. Received: {name}={value!r}"
        )
    return shape


def check_bool(name, value):
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be True or False. Received: {name}={value!r}")
    return value


def check_positive_number(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ValueError(f"`{name}` must be a positive finite number. Received: {name}={value!r}")
    return value
