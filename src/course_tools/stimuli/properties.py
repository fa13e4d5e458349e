"""Geometric properties of binary object masks (the "category-orthogonal" variables).

These are the properties that Hong et al. (2016) decoded from IT, V4 and V1: position, size,
2-D area, perimeter, bounding box, aspect ratio and major-axis length and angle. They follow
``skimage.measure.regionprops`` conventions where it has one, computed for a whole batch of
masks at once with numpy.

Coordinates: ``x`` is the column and ``y`` the row of a pixel centre, both starting at 0 in
the top-left corner, so ``y`` grows downwards as in ``plt.imshow``. Angles are in degrees,
counter-clockwise *as displayed* (that is, with ``y`` pointing up), in [-90, 90).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Length of the 0.5 iso-contour inside one 2 x 2 cell of a binary image, indexed by the cell's
# configuration 8 * top_left + 4 * top_right + 2 * bottom_right + bottom_left (marching squares).
_HALF_DIAGONAL = np.sqrt(0.5)
_CELL_CONTOUR_LENGTH = np.array(
    [
        0.0,  # 0: empty
        _HALF_DIAGONAL,  # 1: one corner
        _HALF_DIAGONAL,  # 2
        1.0,  # 3: two neighbouring corners
        _HALF_DIAGONAL,  # 4
        2 * _HALF_DIAGONAL,  # 5: saddle, two segments
        1.0,  # 6
        _HALF_DIAGONAL,  # 7: three corners
        _HALF_DIAGONAL,  # 8
        1.0,  # 9
        2 * _HALF_DIAGONAL,  # 10: saddle
        _HALF_DIAGONAL,  # 11
        1.0,  # 12
        _HALF_DIAGONAL,  # 13
        _HALF_DIAGONAL,  # 14
        0.0,  # 15: full
    ]
)

PROPERTY_COLUMNS: tuple[str, ...] = (
    "area",
    "x",
    "y",
    "x_norm",
    "y_norm",
    "size",
    "major_axis_length",
    "minor_axis_length",
    "major_axis_angle",
    "aspect_ratio",
    "perimeter",
    "bbox_x0",
    "bbox_y0",
    "bbox_x1",
    "bbox_y1",
    "bbox_width",
    "bbox_height",
    "touches_border",
)


def contour_perimeter(masks: np.ndarray) -> np.ndarray:
    """Length of the 0.5 iso-contour of each binary mask, traced by marching squares.

    This equals the summed length of ``skimage.measure.find_contours(padded_mask, 0.5)`` with a
    one-pixel zero border: edges count 1 per pixel side, diagonal steps sqrt(2)/2 per cell, so
    a digital disc of radius r has a perimeter close to 2 pi r. Holes count too.

    Parameters
    ----------
    masks : ndarray of bool, shape (n, height, width)

    Returns
    -------
    ndarray, shape (n,), float64
    """
    n = masks.shape[0]
    padded = np.pad(np.asarray(masks, dtype=np.uint8), ((0, 0), (1, 1), (1, 1)))
    code = padded[:, :-1, :-1] << 3
    code |= padded[:, :-1, 1:] << 2
    code |= padded[:, 1:, 1:] << 1
    code |= padded[:, 1:, :-1]
    # Only cells on the boundary (neither empty nor full) carry contour.
    boundary = np.flatnonzero((code != 0) & (code != 15))
    lengths = _CELL_CONTOUR_LENGTH[code.reshape(-1)[boundary]]
    image = boundary // (code.shape[1] * code.shape[2])
    return np.bincount(image, weights=lengths, minlength=n)


def mask_properties(masks: np.ndarray) -> pd.DataFrame:
    """Region properties of one object mask per image, computed exactly from the pixels.

    Parameters
    ----------
    masks : ndarray of bool, shape (n, height, width)
        ``True`` where the object covers a pixel. Each mask is treated as one region (all its
        pixels, connected or not). Empty masks give area 0, size 0, ``touches_border`` False
        and ``NaN`` for every other property.

    Returns
    -------
    pandas.DataFrame, n rows; all columns float64 except the bool ``touches_border``:

    ========================= ==================================================================
    ``area``                  number of mask pixels
    ``x``, ``y``              centroid (column, row) in pixels; (0, 0) is the top-left pixel
    ``x_norm``, ``y_norm``    centroid in [-1, 1] of the image's half-width, 0 at the centre,
                              ``y_norm`` positive *upwards*: ``x_norm = (2 x + 1) / width - 1``,
                              ``y_norm = 1 - (2 y + 1) / height``
    ``size``                  ``sqrt(area) / sqrt(height * width)``
    ``major_axis_length``     ``4 * sqrt(l1)``, ``l1 >= l2`` the eigenvalues of the covariance of
                              the pixel coordinates (``regionprops`` convention), pixels
    ``minor_axis_length``     ``4 * sqrt(l2)``, pixels
    ``major_axis_angle``      direction of the major axis, degrees counter-clockwise from the
                              horizontal as displayed, in [-90, 90)
    ``aspect_ratio``          ``sqrt(l1 / l2)`` = major / minor axis length (``inf`` for a line)
    ``perimeter``             marching-squares contour length, pixels (:func:`contour_perimeter`)
    ``bbox_x0``, ``bbox_y0``  first column and row of the mask
    ``bbox_x1``, ``bbox_y1``  one past the last column and row (numpy slicing convention)
    ``bbox_width``, ``_height`` ``bbox_x1 - bbox_x0`` and ``bbox_y1 - bbox_y0``
    ``touches_border``        whether the mask reaches the image edge (the object may be clipped)
    ========================= ==================================================================

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.zeros((1, 8, 8), dtype=bool)
    >>> mask[0, 2:4, 1:7] = True  # 2 rows x 6 columns
    >>> props = mask_properties(mask)
    >>> props[["area", "x", "y", "bbox_width", "major_axis_angle"]].iloc[0].tolist()
    [12.0, 3.5, 2.5, 6.0, 0.0]
    """
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(
            f"masks must have shape (n, height, width), got an array of shape {masks.shape}. "
            "Add a leading axis for a single mask: masks[None]."
        )
    masks = masks.astype(bool, copy=False)
    n, height, width = masks.shape
    rows = np.arange(height, dtype=np.float64)
    cols = np.arange(width, dtype=np.float64)
    row_mass = masks.sum(axis=2, dtype=np.float64)  # (n, height): pixels per row
    col_mass = masks.sum(axis=1, dtype=np.float64)  # (n, width): pixels per column
    col_moment = masks.astype(np.float64) @ cols  # (n, height): sum of x per row
    area = row_mass.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = row_mass @ rows / area
        x = col_mass @ cols / area
        # Central second moments as E[u^2] - E[u]^2 (all sums are exact integers in float64).
        var_y = row_mass @ rows**2 / area - y**2
        var_x = col_mass @ cols**2 / area - x**2
        cov_xy = col_moment @ rows / area - x * y
        # Flip y so that angles are counter-clockwise as displayed.
        cov_xy_up = -cov_xy
        half_trace = (var_x + var_y) / 2
        spread = np.sqrt(((var_x - var_y) / 2) ** 2 + cov_xy_up**2)
        l1 = half_trace + spread
        l2 = np.maximum(half_trace - spread, 0.0)
        angle = 0.5 * np.degrees(np.arctan2(2 * cov_xy_up, var_x - var_y))
        angle = (angle + 90.0) % 180.0 - 90.0
        aspect = np.sqrt(l1 / l2)

    any_col = masks.any(axis=1)
    any_row = masks.any(axis=2)
    empty = area == 0
    bbox_x0 = np.where(empty, np.nan, any_col.argmax(axis=1))
    bbox_x1 = np.where(empty, np.nan, width - any_col[:, ::-1].argmax(axis=1))
    bbox_y0 = np.where(empty, np.nan, any_row.argmax(axis=1))
    bbox_y1 = np.where(empty, np.nan, height - any_row[:, ::-1].argmax(axis=1))
    touches = (
        masks[:, 0, :].any(axis=1)
        | masks[:, -1, :].any(axis=1)
        | masks[:, :, 0].any(axis=1)
        | masks[:, :, -1].any(axis=1)
    )
    perimeter = np.where(empty, np.nan, contour_perimeter(masks))
    columns = {
        "area": area,
        "x": x,
        "y": y,
        "x_norm": (2 * x + 1) / width - 1,
        "y_norm": 1 - (2 * y + 1) / height,
        "size": np.sqrt(area / (height * width)),
        "major_axis_length": 4 * np.sqrt(l1),
        "minor_axis_length": 4 * np.sqrt(l2),
        "major_axis_angle": angle,
        "aspect_ratio": aspect,
        "perimeter": perimeter,
        "bbox_x0": bbox_x0,
        "bbox_y0": bbox_y0,
        "bbox_x1": bbox_x1,
        "bbox_y1": bbox_y1,
        "bbox_width": bbox_x1 - bbox_x0,
        "bbox_height": bbox_y1 - bbox_y0,
        "touches_border": touches,
    }
    return pd.DataFrame(columns)
