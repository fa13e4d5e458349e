"""Synthetic object scenes: a small, fully controlled analogue of the HvM image set.

The HvM set (Majaj, Hong et al. 2015; Hong et al. 2016) shows 64 rendered 3-D objects of 8
categories on random natural backgrounds at three levels of variation in position, size and
pose. :func:`object_scenes` draws 2-D objects of the same 8 categories (see
:mod:`course_tools.stimuli.shapes`) on 1/f texture backgrounds, and returns for every image the
generating parameters and the object's geometry measured exactly from its rendered mask.

How an image is drawn (all in numpy, vectorised over a chunk of images):

1. a background from two 1/f noise textures of random spectral slope, orientation and colour;
2. for every output pixel, the inverse of the object's affine transform (shift, scale,
   in-plane rotation, foreshortening) gives a point in the object's canonical frame, where a
   precomputed anti-aliased raster of the object is sampled bilinearly
   (:func:`scipy.ndimage.map_coordinates`, only inside the object's bounding window);
3. alpha compositing of the object, with a random colour, over the background.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import ndimage
from tqdm.auto import tqdm

from course_tools.seeding import SeedLike
from course_tools.stimuli._checks import (
    STREAM_OBJECT_SCENES,
    check_choice,
    check_count,
    check_size,
    chunks,
    item_rngs,
    seed_entropy,
)
from course_tools.stimuli.properties import PROPERTY_COLUMNS, mask_properties
from course_tools.stimuli.shapes import (
    CANONICAL_HALF_WIDTH,
    CATEGORIES,
    OBJECTS_PER_CATEGORY,
    canonical_rasters,
    object_models,
)
from course_tools.stimuli.textures import power_law_noise, white_spectrum

VARIATIONS: tuple[str, ...] = ("low", "medium", "high")

# Ranges of the generating parameters per variation level, drawn uniformly and independently:
# shift: |shift_x|, |shift_y| <= value (fraction of the image half-width);
# scale, rotation (degrees), pose (degrees): (low, high).
VARIATION_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "low": {"shift": (0.0, 0.0), "scale": (1.0, 1.0), "rotation": (0.0, 0.0), "pose": (0.0, 0.0)},
    "medium": {
        "shift": (-0.25, 0.25),
        "scale": (0.8, 1.2),
        "rotation": (-45.0, 45.0),
        "pose": (0.0, 35.0),
    },
    "high": {
        "shift": (-0.45, 0.45),
        "scale": (0.6, 1.4),
        "rotation": (-90.0, 90.0),
        "pose": (0.0, 60.0),
    },
}
_N_APPEARANCE = 21  # uniform numbers per image for colours and background settings
OBJECT_LENGTH = 0.5  # major-axis length of an unposed object at scale 1, fraction of image size
MIN_IMAGE_SIZE = 16
_CHUNK = 256
META_COLUMNS: tuple[str, ...] = (
    "category",
    "object",
    "variation",
    "scale",
    "rotation",
    "pose",
    "shift_x",
    "shift_y",
    *PROPERTY_COLUMNS,
)


def object_scenes(
    n: int,
    *,
    image_size: int = 64,
    variation: str = "low",
    seed: SeedLike = 0,
    categories: Iterable[str] | None = None,
    progress: bool = False,
    return_masks: bool = False,
) -> tuple[np.ndarray, pd.DataFrame] | tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    """Images of 32 objects (8 categories x 4) on textured backgrounds, with exact metadata.

    Categories: animals, boats, cars, chairs, faces, fruits, planes, tables (as in HvM). Image
    ``i`` shows object ``i mod n_objects`` of the interleaved list (first object of every
    category, then the second, ...), so the first 8 images show all 8 categories and every
    block of ``n_objects`` images shows every object once.

    Variation levels (like HvM's V0, V3 and V6); every parameter is drawn uniformly and
    independently per image within:

    ============  ============  ===========  ==============  ============
    variation     shift_x, _y   scale        rotation (deg)  pose (deg)
    ============  ============  ===========  ==============  ============
    ``"low"``     0             1            0               0
    ``"medium"``  -0.25..0.25   0.8..1.2     -45..45         0..35
    ``"high"``    -0.45..0.45   0.6..1.4     -90..90         0..60
    ============  ============  ===========  ==============  ============

    - ``shift_x``, ``shift_y``: displacement of the object's centroid from the image centre,
      in units of the image half-width, ``shift_y`` positive upwards (same units as
      ``x_norm``, ``y_norm``).
    - ``scale``: at scale 1 the unposed object's major-axis length is ``0.5 * image_size``.
    - ``rotation``: in-plane rotation from the upright object, counter-clockwise as displayed.
      Every object has a clear long axis, so the mask's ``major_axis_angle`` follows it.
    - ``pose``: rotation in depth about the object's long axis; the object is foreshortened
      by ``cos(pose)`` across its long axis (orthographic view of a flat object), which
      raises its aspect ratio and shrinks its area, but leaves its major axis unchanged.

    At ``"high"`` variation, large objects near the edge are sometimes clipped by the image
    border (``touches_border`` is True); their geometry describes the visible part.

    Parameters
    ----------
    n : int
        Number of images.
    image_size : int
        Side length in pixels, at least 16.
    variation : {"low", "medium", "high"}
        Amount of variation in position, scale, rotation and pose (see the table).
    seed : int, numpy.random.Generator or None
        Image ``i`` depends only on ``(seed, i, image_size, variation, categories)``, not on
        ``n``: ``object_scenes(10)[0]`` equals the first 10 images of ``object_scenes(1000)[0]``.
        Different variation levels draw independent backgrounds and colours.
    categories : iterable of str or None
        Restrict to these categories, in this order (default: all 8, in the order of
        ``CATEGORIES``).
    progress : bool
        Show a progress bar.
    return_masks : bool
        Also return the object masks from which the metadata were computed.

    Returns
    -------
    images : ndarray, shape (n, image_size, image_size, 3), uint8
        RGB images.
    meta : pandas.DataFrame, n rows (index ``image`` = 0..n-1)
        ``category``, ``object`` (categorical; ``.cat.codes`` gives stable integer labels over
        all 8 categories and 32 objects), ``variation``; the generating parameters ``scale``,
        ``rotation``, ``pose``, ``shift_x``, ``shift_y`` (see above); and the geometry of the
        rendered object mask (pixels with coverage >= 0.5), computed exactly by
        :func:`~course_tools.stimuli.mask_properties`: ``area`` (pixel count), centroid ``x``,
        ``y`` (column and row in pixels, (0, 0) = top-left pixel) and ``x_norm``, ``y_norm``
        (-1..1, ``y_norm`` upwards), ``size`` (``sqrt(area) / image_size``),
        ``major_axis_length``, ``minor_axis_length`` (``4 sqrt(eigenvalue)`` of the pixel
        covariance, as in ``skimage.measure.regionprops``), ``major_axis_angle`` (degrees,
        counter-clockwise as displayed, in [-90, 90)), ``aspect_ratio`` (major / minor),
        ``perimeter`` (marching-squares contour length), the bounding box ``bbox_x0``,
        ``bbox_y0``, ``bbox_x1``, ``bbox_y1`` (end exclusive), ``bbox_width``,
        ``bbox_height`` and ``touches_border``.
    masks : ndarray, shape (n, image_size, image_size), bool
        Only with ``return_masks=True``.

    Examples
    --------
    >>> images, meta = object_scenes(16, variation="medium", seed=1)
    >>> images.shape, images.dtype
    ((16, 64, 64, 3), dtype('uint8'))
    >>> meta["category"].iloc[:8].tolist()
    ['animals', 'boats', 'cars', 'chairs', 'faces', 'fruits', 'planes', 'tables']
    """
    n = check_count(n, "n")
    image_size = check_size(image_size, "image_size", MIN_IMAGE_SIZE)
    variation = check_choice(variation, "variation", VARIATIONS)
    selected = _selected_objects(categories)
    entropy = seed_entropy(seed)
    stream = (STREAM_OBJECT_SCENES, VARIATIONS.index(variation))
    resolution = max(128, 2 * image_size)
    coverage_rasters, shaded_rasters = canonical_rasters(resolution)
    models = object_models()

    images = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    masks = np.empty((n, image_size, image_size), dtype=bool) if return_masks else None
    parameters = []
    with tqdm(total=n, desc="object_scenes", unit="img", disable=not progress) as bar:
        for start, stop in chunks(n, _CHUNK):
            object_index = np.array([selected[i % len(selected)] for i in range(start, stop)])
            rngs = item_rngs(entropy, stream, start, stop)
            draws = _draw_parameters(rngs, variation, image_size)
            axis_angles = np.array([models[k].axis_angle for k in object_index])
            pixels, alpha, shaded = _render_objects(
                object_index, draws, axis_angles, coverage_rasters, shaded_rasters, image_size
            )
            images[start:stop] = _composite(_backgrounds(draws), pixels, alpha, shaded, draws)
            chunk_masks = np.zeros((stop - start) * image_size * image_size, dtype=bool)
            chunk_masks[pixels] = alpha >= 0.5  # the object mask: coverage >= 0.5
            chunk_masks = chunk_masks.reshape(stop - start, image_size, image_size)
            if masks is not None:
                masks[start:stop] = chunk_masks
            generating = pd.DataFrame(
                {
                    "category": [models[k].category for k in object_index],
                    "object": [models[k].name for k in object_index],
                    "scale": draws["scale"],
                    "rotation": draws["rotation"],
                    "pose": draws["pose"],
                    "shift_x": draws["shift_x"],
                    "shift_y": draws["shift_y"],
                }
            )
            parameters.append(pd.concat([generating, mask_properties(chunk_masks)], axis=1))
            bar.update(stop - start)

    meta = pd.concat(parameters, ignore_index=True)
    meta["category"] = pd.Categorical(meta["category"], categories=list(CATEGORIES))
    meta["object"] = pd.Categorical(meta["object"], categories=[m.name for m in models])
    meta["variation"] = variation
    meta = meta[list(META_COLUMNS)]
    meta.index.name = "image"
    if return_masks:
        return images, meta, masks
    return images, meta


def _selected_objects(categories: Iterable[str] | None) -> list[int]:
    """Indices into ``object_models()`` of the chosen categories, interleaved by object."""
    if categories is None:
        chosen = list(CATEGORIES)
    else:
        if isinstance(categories, str) or not isinstance(categories, Iterable):
            raise TypeError(
                f"categories must be a list of category names such as ['cars', 'faces'], got "
                f"{categories!r}."
            )
        chosen = list(dict.fromkeys(str(c) if isinstance(c, np.str_) else c for c in categories))
        unknown = [c for c in chosen if c not in CATEGORIES]
        if unknown:
            raise ValueError(f"Unknown categories {unknown}; choose from {list(CATEGORIES)}.")
        if not chosen:
            raise ValueError(f"categories is empty; choose at least one of {list(CATEGORIES)}.")
    return [
        CATEGORIES.index(category) * OBJECTS_PER_CATEGORY + k
        for k in range(OBJECTS_PER_CATEGORY)
        for category in chosen
    ]


def _draw_parameters(rngs, variation: str, image_size: int) -> dict[str, np.ndarray]:
    """Draw every random number of a chunk of images, image by image from its own generator.

    Returns arrays with one entry (or row) per image: the five geometric parameters,
    ``appearance`` (n, 21) uniform numbers for colours and texture settings, and the white
    Fourier coefficients of the two background textures, ``fine`` (n, S, S // 2 + 1) and
    ``coarse`` (n, m, m // 2 + 1) with ``m = S // 4`` (a smooth colour modulation).
    """
    ranges = VARIATION_RANGES[variation]
    names = ("shift_x", "shift_y", "scale", "rotation", "pose")
    spans = (ranges["shift"], ranges["shift"], ranges["scale"], ranges["rotation"], ranges["pose"])
    low = np.array([s[0] for s in spans])
    width = np.array([s[1] - s[0] for s in spans])
    uniforms, fine, coarse = [], [], []
    for rng in rngs:
        uniforms.append(rng.random(len(names) + _N_APPEARANCE))
        fine.append(white_spectrum(rng, image_size))
        coarse.append(white_spectrum(rng, _coarse_size(image_size)))
    uniforms = np.array(uniforms)
    geometry = low + width * uniforms[:, : len(names)]
    draws = {name: geometry[:, k] for k, name in enumerate(names)}
    draws["appearance"] = uniforms[:, len(names) :]
    draws["fine"] = np.array(fine)
    draws["coarse"] = np.array(coarse)
    return draws


def _coarse_size(image_size: int) -> int:
    return max(4, image_size // 4)


def _render_objects(
    object_index: np.ndarray,
    draws: dict[str, np.ndarray],
    axis_angles: np.ndarray,
    coverage_rasters: np.ndarray,
    shaded_rasters: np.ndarray,
    image_size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resample each image's object raster through the inverse of its affine transform.

    Only the pixels inside each object's bounding window are computed.

    Returns
    -------
    pixels : ndarray of int, shape (p,)
        Flat indices into an (n, S, S) array of the computed pixels.
    alpha : ndarray, shape (p,), float32
        Object coverage (0..1) at those pixels.
    shaded : ndarray, shape (p,), float32
        Coverage times the object's grey shade at those pixels.
    """
    n, size = len(object_index), image_size
    resolution = coverage_rasters.shape[-1]
    pixels_per_unit = draws["scale"] * OBJECT_LENGTH * size
    rotation = np.radians(draws["rotation"])
    minor = np.radians(axis_angles + 90.0)
    foreshortening = np.cos(np.radians(draws["pose"]))

    # Forward map, canonical units (x, y up) -> pixels (column, row): p = centre + J q, with
    # J = pixels_per_unit * flip_y @ rotate @ squash, squash shrinking the minor axis.
    m = np.stack([np.cos(minor), np.sin(minor)], axis=1)
    squash = np.eye(2) - (1.0 - foreshortening)[:, None, None] * m[:, :, None] * m[:, None, :]
    rotate = np.stack(
        [np.cos(rotation), -np.sin(rotation), np.sin(rotation), np.cos(rotation)], axis=1
    ).reshape(n, 2, 2)
    jacobian = pixels_per_unit[:, None, None] * np.diag([1.0, -1.0]) @ rotate @ squash
    centre = np.stack(
        [
            (size - 1) / 2 + draws["shift_x"] * size / 2,
            (size - 1) / 2 - draws["shift_y"] * size / 2,
        ],
        axis=1,
    )

    # Each object's window: the pixel bounding box of its transformed raster support.
    support_low, support_high = _raster_support(coverage_rasters)
    lo, hi = support_low[object_index], support_high[object_index]
    corners = np.stack(
        [lo, np.stack([lo[:, 0], hi[:, 1]], 1), np.stack([hi[:, 0], lo[:, 1]], 1), hi], axis=1
    )  # (n, 4, 2)
    corner_pixels = centre[:, None, :] + np.einsum("nij,nkj->nki", jacobian, corners)
    first = np.clip(np.floor(corner_pixels.min(axis=1)), 0, size).astype(np.int64)
    last = np.clip(np.ceil(corner_pixels.max(axis=1)) + 1, 0, size).astype(np.int64)
    width, height = (last - first).T
    counts = width * height

    # Enumerate every window pixel of every image (a ragged batch, flattened).
    image = np.repeat(np.arange(n), counts)
    local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    col = first[image, 0] + local % width[image]
    row = first[image, 1] + local // width[image]

    inverse = np.linalg.inv(jacobian)[image]  # pixels -> canonical units
    dx = col - centre[image, 0]
    dy = row - centre[image, 1]
    qx = inverse[:, 0, 0] * dx + inverse[:, 0, 1] * dy
    qy = inverse[:, 1, 0] * dx + inverse[:, 1, 1] * dy
    per_unit = resolution / (2.0 * CANONICAL_HALF_WIDTH)
    coordinates = np.stack(
        [
            object_index[image],
            (CANONICAL_HALF_WIDTH - qy) * per_unit - 0.5,
            (qx + CANONICAL_HALF_WIDTH) * per_unit - 0.5,
        ]
    ).astype(np.float32)
    alpha, shaded = (
        ndimage.map_coordinates(raster, coordinates, order=1, mode="constant", cval=0.0)
        for raster in (coverage_rasters, shaded_rasters)
    )
    pixels = (image * size + row) * size + col
    return pixels, alpha, shaded


def _raster_support(coverage_rasters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Canonical (x, y) bounds of each object's non-zero raster pixels, padded by one pixel."""
    resolution = coverage_rasters.shape[-1]
    pixel = 2.0 * CANONICAL_HALF_WIDTH / resolution
    x_centres = -CANONICAL_HALF_WIDTH + pixel * (np.arange(resolution) + 0.5)
    y_centres = x_centres[::-1]  # row 0 is the top (largest y)
    low, high = [], []
    for raster in coverage_rasters:
        cols = np.flatnonzero(raster.any(axis=0))
        rows = np.flatnonzero(raster.any(axis=1))
        low.append([x_centres[cols[0]] - pixel, y_centres[rows[-1]] - pixel])
        high.append([x_centres[cols[-1]] + pixel, y_centres[rows[0]] + pixel])
    return np.array(low), np.array(high)


def _backgrounds(draws: dict[str, np.ndarray]) -> np.ndarray:
    """Coloured 1/f texture backgrounds, shape (n, S, S, 3), float32 (not yet clipped).

    A fine luminance texture (amplitude exponent 0.8..1.6, sometimes strongly oriented) in a
    random colour, plus a smooth colour modulation, around a random mean colour.
    """
    u = draws["appearance"]
    n, size = draws["fine"].shape[:2]
    luminance = power_law_noise(
        draws["fine"],
        0.8 + 0.8 * u[:, 0],
        orientation=np.pi * u[:, 1],
        orientation_strength=4.0 * u[:, 2] ** 2,
    )
    colour = power_law_noise(draws["coarse"], 1.0 + u[:, 3], size=size)
    mean = _background_level(u)[:, None] + 0.16 * (u[:, 4:7] - 0.5)
    luminance_colour = (0.10 + 0.12 * u[:, 7])[:, None] * (1.0 + 0.8 * (u[:, 8:11] - 0.5))
    modulation_colour = 0.10 * (u[:, 11:14] - 0.5)
    background = luminance[..., None] * luminance_colour[:, None, None, :].astype(np.float32)
    background += colour[..., None] * modulation_colour[:, None, None, :].astype(np.float32)
    background += mean[:, None, None, :].astype(np.float32)
    return background


def _background_level(u: np.ndarray) -> np.ndarray:
    return 0.3 + 0.4 * u[:, 14]


def _composite(
    background: np.ndarray,
    pixels: np.ndarray,
    alpha: np.ndarray,
    shaded: np.ndarray,
    draws: dict[str, np.ndarray],
) -> np.ndarray:
    """Alpha-composite coloured objects over the backgrounds; returns uint8 (n, S, S, 3).

    The object's mean grey level differs from the background's by 0.18..0.35 (darker or
    lighter at random), with a random tint; its parts' shades spread around that level with
    a random contrast.
    """
    u = draws["appearance"]
    n, size = background.shape[:2]
    background_level = _background_level(u)
    offset = 0.18 + 0.17 * u[:, 15]
    sign = np.where(u[:, 16] < 0.5, -1.0, 1.0)
    level = background_level + sign * offset
    level = np.where((level < 0.1) | (level > 0.9), background_level - sign * offset, level)
    contrast = 0.5 + 0.4 * u[:, 17]
    tint = 0.2 * (u[:, 18:21] - 0.5)
    base = level[:, None] + tint - 0.55 * contrast[:, None]  # colour of shade 0

    image = pixels // (size * size)
    flat = background.reshape(-1, 3)
    a = alpha[:, None]
    flat[pixels] = (
        flat[pixels] * (1.0 - a) + a * base[image] + (shaded * contrast[image])[:, None]
    ).astype(np.float32)
    np.clip(background, 0.0, 1.0, out=background)
    background *= 255.0
    background += 0.5
    return background.astype(np.uint8)
