"""Grey-level images with the statistics of natural images, for V1 and retina experiments.

:func:`naturalistic_images` draws "dead leaves" images (Matheron 1968; Lee, Mumford & Huang
2001): opaque ellipses and rectangles of random grey level, each with a faint 1/f texture of its
own, fall on top of each other over a 1/f ("pink") noise background. Leaf sizes follow the
scale-invariant law ``p(r) ~ r ** -3``, which, together with the sharp occluding edges, gives
the ``1 / f`` amplitude spectrum of natural images, plus what pink noise alone lacks: edges,
corners, occlusions and regions of uniform luminance.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from course_tools.seeding import SeedLike
from course_tools.stimuli._checks import (
    STREAM_NATURALISTIC_IMAGES,
    check_count,
    check_positive_float,
    check_size,
    chunks,
    item_rngs,
    seed_entropy,
)
from course_tools.stimuli.textures import power_law_noise, white_spectrum

MIN_SIZE = 8
_CHUNK = 256
_COVERAGE = 1.5  # expected summed leaf area, in image areas
_LEAF_PARAMETERS = 9  # uniform numbers per leaf
_OVERSAMPLE = 2  # render at twice the resolution, then average 2 x 2 blocks (anti-aliasing)


def leaf_radius_range(size: int) -> tuple[float, float]:
    """Smallest and largest leaf radius (pixels) for images of side ``size``."""
    return 1.0, 0.4 * size


def default_leaf_count(size: int) -> int:
    """Number of leaves whose expected summed area is 1.5 image areas (about 78% covered)."""
    r_min, r_max = leaf_radius_range(size)
    mean_r2 = 2.0 * np.log(r_max / r_min) / (r_min**-2 - r_max**-2)  # E[r^2] for p(r) ~ r^-3
    return int(np.ceil(_COVERAGE * size**2 / (np.pi * mean_r2)))


def naturalistic_images(
    n: int,
    *,
    size: int = 40,
    seed: SeedLike = 0,
    n_leaves: int | None = None,
    texture_contrast: float = 0.08,
    progress: bool = False,
) -> np.ndarray:
    """Dead-leaves images with a natural 1/f amplitude spectrum, edges and occlusions.

    Each image is a 1/f noise background (mean grey level 0.3..0.7, standard deviation 0.12)
    covered by ``n_leaves`` opaque leaves, drawn back to front. A leaf is an ellipse (70%) or
    a rectangle (30%) with radius ``r`` (the square root of its semi-axes' product) drawn from
    ``p(r) ~ r ** -3`` between 1 and ``0.4 * size`` pixels (:func:`leaf_radius_range`), aspect ratio
    1..3, uniform orientation, a centre anywhere within 10% of the image, a uniform grey level
    in 0.05..0.95, and an own 1/f texture of standard deviation ``texture_contrast``. Images
    are rendered at twice the resolution and averaged over 2 x 2 blocks (anti-aliasing, like
    the optics of an eye or camera). The radially averaged amplitude spectrum falls as
    ``1 / f`` (log-log slope close to -1).

    Parameters
    ----------
    n : int
        Number of images.
    size : int
        Side length in pixels, at least 8. 40 matches the V1 data of Cadena et al. (2019).
    seed : int, numpy.random.Generator or None
        Image ``i`` depends only on ``(seed, i, size, n_leaves, texture_contrast)``, not on ``n``.
    n_leaves : int, optional
        Leaves per image. The default (:func:`default_leaf_count`, 138 at 40 px) makes their
        expected summed area 1.5 image areas, so that about 78% of the image is covered.
    texture_contrast : float
        Standard deviation of the texture inside each leaf (grey levels, >= 0).
    progress : bool
        Show a progress bar.

    Returns
    -------
    ndarray, shape (n, size, size), float32
        Grey levels in [0, 1] (0 black, 1 white). Use ``(images * 255).round().astype(np.uint8)``
        for 8-bit images.

    Examples
    --------
    >>> images = naturalistic_images(100, size=40, seed=0)
    >>> images.shape, images.dtype, float(images.min()) >= 0.0, float(images.max()) <= 1.0
    ((100, 40, 40), dtype('float32'), True, True)
    """
    n = check_count(n, "n")
    size = check_size(size, "size", MIN_SIZE)
    n_leaves = default_leaf_count(size) if n_leaves is None else check_count(n_leaves, "n_leaves")
    texture_contrast = check_positive_float(texture_contrast, "texture_contrast", allow_zero=True)
    entropy = seed_entropy(seed)
    images = np.empty((n, size, size), dtype=np.float32)
    with tqdm(total=n, desc="naturalistic_images", unit="img", disable=not progress) as bar:
        for start, stop in chunks(n, _CHUNK):
            rngs = item_rngs(entropy, STREAM_NATURALISTIC_IMAGES, start, stop)
            fine = _dead_leaves(rngs, size, n_leaves, texture_contrast, _OVERSAMPLE)
            images[start:stop] = fine.reshape(
                stop - start, size, _OVERSAMPLE, size, _OVERSAMPLE
            ).mean(axis=(2, 4))
            bar.update(stop - start)
    return images


def _dead_leaves(
    rngs, size: int, n_leaves: int, texture_contrast: float, oversample: int
) -> np.ndarray:
    """Render one chunk of images at ``oversample`` times ``size``, shape (n, S', S').

    Every random number of image ``i`` comes from ``rngs[i]``.
    """
    r_min, r_max = leaf_radius_range(size)
    r_min, r_max, size = r_min * oversample, r_max * oversample, size * oversample
    background_spectra, texture_spectra, leaves, levels = [], [], [], []
    for rng in rngs:
        levels.append(rng.random())
        background_spectra.append(white_spectrum(rng, size))
        texture_spectra.append(white_spectrum(rng, size))
        leaves.append(rng.random((n_leaves, _LEAF_PARAMETERS)))
    n = len(levels)
    mean_level = 0.3 + 0.4 * np.array(levels, dtype=np.float32)
    background_noise = power_law_noise(np.array(background_spectra), 1.0)
    background = mean_level[:, None, None] + np.float32(0.12) * background_noise
    texture = power_law_noise(np.array(texture_spectra), 1.0)
    u = np.concatenate(leaves)  # (n * n_leaves, 9), leaf g belongs to image g // n_leaves

    radius = (r_min**-2 - u[:, 0] * (r_min**-2 - r_max**-2)) ** -0.5  # inverse CDF of r^-3
    aspect = 1.0 + 2.0 * u[:, 1]
    semi_major, semi_minor = radius * np.sqrt(aspect), radius / np.sqrt(aspect)
    angle = np.pi * u[:, 2]
    cos, sin = np.cos(angle), np.sin(angle)  # direction of the major axis
    centre_x = size * (1.2 * u[:, 3] - 0.1) - 0.5
    centre_y = size * (1.2 * u[:, 4] - 0.1) - 0.5
    grey = 0.05 + 0.9 * u[:, 5]
    is_rectangle = u[:, 6] < 0.3
    shift_x = (size * u[:, 7]).astype(np.int64)
    shift_y = (size * u[:, 8]).astype(np.int64)

    # Rasterise row by row: every (leaf, row) pair covers one interval of columns.
    half_y = semi_major * np.abs(sin) + semi_minor * np.abs(cos)
    y0 = np.clip(np.ceil(centre_y - half_y), 0, size).astype(np.int64)
    y1 = np.clip(np.floor(centre_y + half_y) + 1, 0, size).astype(np.int64)
    rows_per_leaf = np.maximum(y1 - y0, 0)
    span_leaf = np.repeat(np.arange(len(u)), rows_per_leaf)
    span_row = y0[span_leaf] + _ragged_arange(rows_per_leaf)
    left, right = _row_intervals(
        span_row - centre_y[span_leaf],
        semi_major[span_leaf],
        semi_minor[span_leaf],
        cos[span_leaf],
        sin[span_leaf],
        is_rectangle[span_leaf],
    )
    first = np.clip(np.ceil(centre_x[span_leaf] + left), 0, size)
    last = np.clip(np.floor(centre_x[span_leaf] + right), -1, size - 1)
    first = np.nan_to_num(first, nan=size).astype(np.int64)
    last = np.nan_to_num(last, nan=-1).astype(np.int64)
    widths = np.maximum(last - first + 1, 0)
    leaf = np.repeat(span_leaf, widths)
    span_start = ((span_leaf // n_leaves) * size + span_row) * size + first
    pixel = np.repeat(span_start, widths) + _ragged_arange(widths)

    # Painter's algorithm: the visible leaf at a pixel is the last one drawn there.
    top = np.full(n * size * size, -1, dtype=np.int64)
    np.maximum.at(top, pixel, leaf)
    covered = np.flatnonzero(top >= 0)
    visible = top[covered]
    image, rest = np.divmod(covered, size * size)
    row, col = np.divmod(rest, size)
    leaf_texture = texture[image, (row + shift_y[visible]) % size, (col + shift_x[visible]) % size]
    out = background.reshape(-1)
    out[covered] = grey[visible] + texture_contrast * leaf_texture
    return np.clip(out, 0.0, 1.0).reshape(n, size, size)


def _ragged_arange(counts: np.ndarray) -> np.ndarray:
    """Concatenate ``arange(c)`` for every ``c`` in ``counts`` (without a Python loop)."""
    total = int(counts.sum())
    return np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)


def _row_intervals(dy, semi_major, semi_minor, cos, sin, is_rectangle):
    """Horizontal extent ``[left, right]`` (relative to the centre) of a leaf at offset ``dy``.

    A point ``(dx, dy)`` from the centre has coordinates ``p = (dx cos + dy sin) / a`` along and
    ``q = (dy cos - dx sin) / b`` across the leaf (semi-axes ``a``, ``b``). The ellipse
    ``p^2 + q^2 <= 1`` is a quadratic inequality in ``dx``; the rectangle ``|p|, |q| <= 1`` is an
    intersection of two slabs. Empty intervals have ``left > right`` or NaN.
    """
    a2, b2 = semi_major**2, semi_minor**2
    quad_a = cos**2 / a2 + sin**2 / b2
    quad_b = 2.0 * dy * cos * sin * (1.0 / a2 - 1.0 / b2)
    quad_c = dy**2 * (sin**2 / a2 + cos**2 / b2) - 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        root = np.sqrt(quad_b**2 - 4.0 * quad_a * quad_c)  # NaN when the row misses the leaf
        ellipse_left = (-quad_b - root) / (2.0 * quad_a)
        ellipse_right = (-quad_b + root) / (2.0 * quad_a)
        # Slab |dx cos + dy sin| <= a and slab |dx sin - dy cos| <= b; cos, sin >= 0 or
        # nearly 0, so divide safely by replacing exact zeros (the slab is then all or nothing).
        along = _slab(dy * sin, semi_major, cos)
        across = _slab(-dy * cos, semi_minor, sin)
        rect_left = np.maximum(along[0], across[0])
        rect_right = np.minimum(along[1], across[1])
    left = np.where(is_rectangle, rect_left, ellipse_left)
    right = np.where(is_rectangle, rect_right, ellipse_right)
    return left, right


def _slab(offset, half_width, slope):
    """Interval of ``dx`` with ``|dx * slope + offset| <= half_width``."""
    safe = np.where(np.abs(slope) < 1e-12, np.nan, slope)
    low = (-half_width - offset) / safe
    high = (half_width - offset) / safe
    low, high = np.minimum(low, high), np.maximum(low, high)
    inside = np.abs(offset) <= half_width
    flat = np.isnan(safe)
    low = np.where(flat, np.where(inside, -np.inf, np.inf), low)
    high = np.where(flat, np.where(inside, np.inf, -np.inf), high)
    return low, high
