"""Input checks and per-item random generators shared by the stimulus generators.

Every stimulus generator draws image ``i`` from its own random generator, derived from
``(seed, stream, i)`` with :class:`numpy.random.SeedSequence`. Image ``i`` therefore never
depends on how many images were requested, and different generators (``stream``) never share
random numbers even when called with the same ``seed``.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator

import numpy as np

from course_tools.seeding import SeedLike

# One random stream per kind of stimulus, so that equal seeds never give correlated stimuli.
STREAM_OBJECT_SCENES = 1
STREAM_NATURALISTIC_IMAGES = 2
STREAM_WHITE_NOISE_MOVIE = 3
STREAM_NATURALISTIC_MOVIE = 4


def check_count(value: object, name: str) -> int:
    """Return ``value`` as a positive ``int`` or raise a clear error.

    Parameters
    ----------
    value : object
        The user's number of images or frames.
    name : str
        The parameter name, used in the error message.

    Returns
    -------
    int
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be a positive int, got {value!r} of type {type(value).__name__}. "
            f"Pass a whole number such as {name}=100."
        )
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}. Pass {name}>=1.")
    return int(value)


def check_size(value: object, name: str, minimum: int) -> int:
    """Return ``value`` as an ``int`` image side length of at least ``minimum`` pixels.

    Parameters
    ----------
    value : object
        The user's image side length in pixels.
    name : str
        The parameter name, used in the error message.
    minimum : int
        The smallest side length the generator can draw faithfully.

    Returns
    -------
    int
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be an int number of pixels, got {value!r} of type {type(value).__name__}."
        )
    if value < minimum:
        raise ValueError(
            f"{name} must be at least {minimum} pixels, got {value}. Smaller images cannot "
            f"show the stimulus faithfully; pass {name}>={minimum}."
        )
    return int(value)


def check_choice(value: object, name: str, allowed: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise a ``ValueError`` listing them."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}.")
    return value


def check_positive_float(value: object, name: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a finite positive ``float`` (or non-negative with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}.")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value}.")
    return value


def seed_entropy(seed: SeedLike) -> int:
    """Turn a user ``seed`` into the integer entropy of a :class:`numpy.random.SeedSequence`.

    Parameters
    ----------
    seed : int, numpy.random.Generator or None
        A non-negative int is used as is (repeatable); a Generator gives one draw from it
        (repeatable if the Generator was seeded); ``None`` gives fresh OS entropy.

    Returns
    -------
    int
    """
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**63))
    if seed is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"seed must be an int, a numpy.random.Generator or None, got {type(seed).__name__}."
        )
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}.")
    return int(seed)


def item_rngs(
    entropy: int, stream: int | tuple[int, ...], start: int, stop: int
) -> Iterator[np.random.Generator]:
    """Yield the random generators of items ``start`` ... ``stop - 1`` of one stream.

    Item ``i`` gets ``default_rng(SeedSequence(entropy, spawn_key=(*stream, i)))``: like the
    children of ``SeedSequence(entropy).spawn``, but addressable by index, so item ``i`` never
    depends on how many items were requested. ``stream`` may be a tuple to separate variants
    of one generator (for example variation levels).
    """
    key = stream if isinstance(stream, tuple) else (stream,)
    for index in range(start, stop):
        yield np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(*key, index)))


def chunks(n: int, chunk_size: int) -> Iterator[tuple[int, int]]:
    """Yield ``(start, stop)`` pairs that cover ``range(n)`` in pieces of ``chunk_size``."""
    for start in range(0, n, chunk_size):
        yield start, min(start + chunk_size, n)
