"""Movies for the retina chapter, at the 100 Hz frame rate of McIntosh et al. (2016).

Both movies are in *contrast* units: zero mean and a standard deviation set by ``contrast``, so
that models and simulated cells see the two stimulus ensembles at comparable strength.

- :func:`white_noise_movie`: every pixel of every frame is independent (binary or Gaussian).
- :func:`naturalistic_movie`: naturalistic images (:func:`naturalistic_images`) seen through a
  window that jitters a little every frame (fixational eye movements) and jumps to a new image
  every 0.3..1 s (saccades), like the natural scenes stimulus of deep-retina.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from course_tools.seeding import SeedLike
from course_tools.stimuli._checks import (
    STREAM_NATURALISTIC_MOVIE,
    STREAM_WHITE_NOISE_MOVIE,
    check_count,
    check_positive_float,
    check_size,
    item_rngs,
    seed_entropy,
)
from course_tools.stimuli.natural import MIN_SIZE, naturalistic_images

FRAME_RATE_HZ = 100  # frames per second of every movie here (10 ms per frame)


def white_noise_movie(
    n_frames: int,
    *,
    size: int = 50,
    seed: SeedLike = 0,
    contrast: float = 1.0,
    binary: bool = True,
) -> np.ndarray:
    """Spatio-temporal white noise, frames at :data:`FRAME_RATE_HZ`.

    Parameters
    ----------
    n_frames : int
        Number of frames (100 per second).
    size : int
        Side length of a frame in pixels (50 in McIntosh et al. 2016).
    seed : int, numpy.random.Generator or None
        Frames come in blocks of one second, block ``b`` drawn from ``(seed, b)`` only, so a
        longer movie starts with exactly the frames of a shorter one.
    contrast : float
        ``binary=True``: pixels are ``+contrast`` or ``-contrast`` with equal probability;
        ``binary=False``: Gaussian with standard deviation ``contrast``.
    binary : bool
        Binary (checkerboard-like) or Gaussian noise.

    Returns
    -------
    ndarray, shape (n_frames, size, size), float32
        Zero-mean contrast values; every pixel of every frame is independent.

    Examples
    --------
    >>> movie = white_noise_movie(200, size=20)
    >>> movie.shape, sorted(set(movie.ravel().tolist()))
    ((200, 20, 20), [-1.0, 1.0])
    """
    n_frames = check_count(n_frames, "n_frames")
    size = check_size(size, "size", 1)
    contrast = check_positive_float(contrast, "contrast")
    if not isinstance(binary, bool | np.bool_):
        raise TypeError(f"binary must be True or False, got {binary!r}.")
    entropy = seed_entropy(seed)
    n_blocks = -(-n_frames // FRAME_RATE_HZ)
    blocks = []
    for rng in item_rngs(entropy, STREAM_WHITE_NOISE_MOVIE, 0, n_blocks):
        shape = (FRAME_RATE_HZ, size, size)
        if binary:
            block = np.where(rng.random(shape, dtype=np.float32) < 0.5, -contrast, contrast)
        else:
            block = contrast * rng.standard_normal(shape, dtype=np.float32)
        blocks.append(block.astype(np.float32, copy=False))
    return np.concatenate(blocks)[:n_frames]


def naturalistic_movie(
    n_frames: int,
    *,
    size: int = 50,
    seed: SeedLike = 0,
    fixation_duration: tuple[float, float] = (0.3, 1.0),
    jitter: float = 1.0,
    contrast: float = 1.0,
    source_size: int | None = None,
    return_fixations: bool = False,
) -> np.ndarray | tuple[np.ndarray, pd.DataFrame]:
    """Naturalistic images seen with fixational jitter and saccades, at :data:`FRAME_RATE_HZ`.

    The movie is a sequence of fixations. Fixation ``k`` lasts a uniform random duration within
    ``fixation_duration`` seconds and looks at image ``k`` of
    ``naturalistic_images(seed=seed, size=source_size)``: a ``size`` x ``size`` window starts at
    a random place in that image and moves by a random step every frame (a random walk with
    Gaussian steps of standard deviation ``jitter`` pixels per axis, rounded to whole pixels
    and reflected at the image border). Then a saccade jumps to the next image.

    Each source image is z-scored over its whole area and multiplied by ``contrast``, so frames
    have mean about 0 and standard deviation about ``contrast``, like
    :func:`white_noise_movie` with the same ``contrast``.

    Parameters
    ----------
    n_frames : int
        Number of frames (100 per second).
    size : int
        Side length of a frame in pixels, at least 8.
    seed : int, numpy.random.Generator or None
        Fixation ``k`` depends only on ``(seed, k)``, so a longer movie starts with exactly the
        frames of a shorter one.
    fixation_duration : (float, float)
        Shortest and longest fixation in seconds (at least one frame each).
    jitter : float
        Standard deviation of the per-frame window displacement in pixels (0: a still view).
    contrast : float
        Standard deviation of the frames (contrast units).
    source_size : int, optional
        Side length of the images the window moves over (default ``2 * size``).
    return_fixations : bool
        Also return a table describing every frame.

    Returns
    -------
    movie : ndarray, shape (n_frames, size, size), float32
    fixations : pandas.DataFrame, n_frames rows (index ``frame``)
        Only with ``return_fixations=True``: ``fixation`` (number), ``image`` (index into
        ``naturalistic_images(seed=seed, size=source_size)``), ``x`` and ``y`` (column and row of
        the window's top-left corner in that image) and ``saccade`` (True on a fixation's first
        frame).

    Examples
    --------
    >>> movie, fixations = naturalistic_movie(300, size=20, return_fixations=True)
    >>> movie.shape, int(fixations["saccade"].sum()) >= 1
    ((300, 20, 20), True)
    """
    n_frames = check_count(n_frames, "n_frames")
    size = check_size(size, "size", MIN_SIZE)
    source_size = 2 * size if source_size is None else check_size(source_size, "source_size", size)
    shortest, longest = _check_duration(fixation_duration)
    jitter = check_positive_float(jitter, "jitter", allow_zero=True)
    contrast = check_positive_float(contrast, "contrast")
    entropy = seed_entropy(seed)
    travel = source_size - size  # largest top-left coordinate of the window

    paths, total = [], 0
    fixation_rngs = item_rngs(entropy, STREAM_NATURALISTIC_MOVIE, 0, n_frames)
    while total < n_frames:
        rng = next(fixation_rngs)
        duration = max(1, round(FRAME_RATE_HZ * rng.uniform(shortest, longest)))
        start = rng.integers(0, travel + 1, size=2)
        steps = np.rint(jitter * rng.standard_normal((duration, 2)))
        steps[0] = 0
        paths.append(_reflect(start + np.cumsum(steps, axis=0), travel).astype(np.int64))
        total += duration

    sources = naturalistic_images(len(paths), size=source_size, seed=entropy)
    sources -= sources.mean(axis=(1, 2), keepdims=True)
    sources *= contrast / (sources.std(axis=(1, 2), keepdims=True) + 1e-12)
    frames = []
    for image, path in zip(sources, paths, strict=True):
        windows = np.lib.stride_tricks.sliding_window_view(image, (size, size))
        frames.append(windows[path[:, 1], path[:, 0]])
    movie = np.concatenate(frames)[:n_frames].astype(np.float32, copy=False)
    if not return_fixations:
        return movie
    fixation = np.repeat(np.arange(len(paths)), [len(p) for p in paths])[:n_frames]
    positions = np.concatenate(paths)[:n_frames]
    table = pd.DataFrame(
        {
            "fixation": fixation,
            "image": fixation,
            "x": positions[:, 0],
            "y": positions[:, 1],
            "saccade": np.r_[True, fixation[1:] != fixation[:-1]],
        }
    )
    table.index.name = "frame"
    return movie, table


def _check_duration(fixation_duration: object) -> tuple[float, float]:
    try:
        shortest, longest = fixation_duration  # type: ignore[misc]
    except (TypeError, ValueError):
        raise TypeError(
            "fixation_duration must be a pair (shortest, longest) in seconds, such as (0.3, 1.0); "
            f"got {fixation_duration!r}."
        ) from None
    pair = (shortest, longest)
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"fixation_duration must hold two numbers, got {fixation_duration!r}.")
    if not 0 < shortest <= longest or not np.isfinite(longest):
        raise ValueError(
            "fixation_duration must satisfy 0 < shortest <= longest (seconds), got "
            f"{fixation_duration!r}."
        )
    return float(shortest), float(longest)


def _reflect(position: np.ndarray, bound: int) -> np.ndarray:
    """Fold positions into [0, bound] as if reflected at both ends (a triangle wave)."""
    if bound == 0:
        return np.zeros_like(position)
    folded = np.mod(position, 2 * bound)
    return np.where(folded > bound, 2 * bound - folded, folded)
