"""One place to make random things repeatable.

Every random function in course_tools takes a ``seed``. Pass an ``int`` for repeatable
numbers, or a :class:`numpy.random.Generator` to continue an existing stream.
"""

from __future__ import annotations

import random

import numpy as np

SeedLike = int | np.random.Generator | None


def check_random_state(seed: SeedLike) -> np.random.Generator:
    """Turn ``seed`` into a :class:`numpy.random.Generator`.

    Parameters
    ----------
    seed : int, numpy.random.Generator or None
        An int gives a new generator seeded with it; a Generator is returned as is;
        ``None`` gives a generator seeded from the operating system (not repeatable).

    Returns
    -------
    numpy.random.Generator
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, int | np.integer):
        if seed is not None and seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}.")
        return np.random.default_rng(seed)
    raise TypeError(
        f"seed must be an int, a numpy.random.Generator or None, got {type(seed).__name__}."
    )


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global state and torch (CPU) with ``seed``.

    Use it at the top of a notebook so that code outside course_tools (for example a
    ``torch.nn.Linear`` initialisation) is repeatable too.

    Parameters
    ----------
    seed : int
        A non-negative integer.
    """
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)  # noqa: NPY002 (seeds legacy code outside course_tools)
    import torch

    torch.manual_seed(int(seed))
