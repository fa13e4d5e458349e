"""The 32 objects of :func:`~course_tools.stimuli.object_scenes`: 8 categories x 4 objects.

Each category has one generator (a function below) that draws a 2-D silhouette from a few
parameters; the four objects of a category are four parameter settings of it, so objects of a
category share a family resemblance (all cars have wheels and a cabin, all planes a fuselage
and swept wings). A silhouette is a list of polygon *parts*, each with a grey *shade*; parts
drawn later cover earlier ones, which gives every object an internal texture (windows, eyes,
wheels) on top of a faint fixed per-object grain.

Every object is then normalised to a *canonical frame*: upright (as drawn), centroid at the
origin and a major-axis length ``4 * sqrt(lambda_1)`` of 1 unit, where ``lambda_1`` is the
largest eigenvalue of the covariance of the silhouette's points. ``axis_angle`` records the
direction of the long axis in the upright pose (about 0 degrees for cars, about 90 for chairs
and faces). All objects have a clear long axis (aspect ratio of the canonical mask above 1.5),
so in-plane rotation is well defined: after a rotation by ``r`` degrees the mask's major axis
points at ``axis_angle + r`` (modulo 180).

Coordinates here have ``y`` pointing up; rasters are stored with row 0 at the top.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from matplotlib.path import Path

CATEGORIES: tuple[str, ...] = (
    "animals",
    "boats",
    "cars",
    "chairs",
    "faces",
    "fruits",
    "planes",
    "tables",
)
OBJECTS_PER_CATEGORY = 4
CANONICAL_HALF_WIDTH = 0.8  # canonical rasters cover [-0.8, 0.8] units in x and y

Part = tuple[np.ndarray, float]  # (vertices of shape (k, 2), shade in [0, 1])


# ---------------------------------------------------------------------------- primitives
def _ellipse(cx: float, cy: float, rx: float, ry: float, angle: float = 0.0) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * np.pi, 72, endpoint=False)
    return _rotate(np.column_stack([rx * np.cos(t), ry * np.sin(t)]), angle) + [cx, cy]


def _rectangle(cx: float, cy: float, width: float, height: float, angle: float = 0.0) -> np.ndarray:
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float) * [width / 2, height / 2]
    return _rotate(corners, angle) + [cx, cy]


def _bar(start: tuple[float, float], angle: float, length: float, width: float) -> np.ndarray:
    """A rectangle of ``width`` from ``start``, running ``length`` at ``angle`` degrees."""
    direction = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
    centre = np.asarray(start) + direction * length / 2
    return _rectangle(centre[0], centre[1], length, width, angle)


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    a = np.radians(angle)
    rotation = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return points @ rotation.T


# ---------------------------------------------------------------------- category generators
def _animal(body_length, body_height, leg_length, neck_length, neck_angle, head_length, tail):
    """Quadruped in side view, facing right."""
    L, H = body_length, body_height
    bottom = -H / 2 - leg_length
    leg_top = -0.1 * H
    legs = []
    for x, shade in ((-0.36 * L, 0.42), (0.30 * L, 0.42), (-0.27 * L, 0.55), (0.39 * L, 0.55)):
        legs.append((_rectangle(x, (leg_top + bottom) / 2, 0.085, leg_top - bottom), shade))
    neck_start = (0.36 * L, 0.05 * H)
    neck = _bar(neck_start, neck_angle, neck_length + 0.05, 0.13)
    a = np.radians(neck_angle)
    head_centre = (
        neck_start[0] + np.cos(a) * neck_length + 0.3 * head_length,
        neck_start[1] + np.sin(a) * neck_length,
    )
    head = _ellipse(*head_centre, head_length / 2, 0.16 * head_length + 0.04, -15.0)
    eye = _ellipse(head_centre[0] + 0.05, head_centre[1] + 0.03, 0.025, 0.025)
    tail_part = _bar((-0.47 * L, 0.15 * H), 200.0, tail, 0.06)
    return [
        (tail_part, 0.35),
        *legs[:2],
        (_ellipse(0.0, 0.0, L / 2, H / 2), 0.62),
        *legs[2:],
        (neck, 0.62),
        (head, 0.7),
        (eye, 0.05),
    ]


def _boat(deck_length, keel_fraction, hull_height, cabin_length, cabin_height, mast, funnel):
    """Boat in side view, bow to the right."""
    D, h = deck_length, hull_height
    keel_start = -D / 2 + 0.06
    hull = np.array(
        [[-D / 2, 0.0], [D / 2, 0.0], [keel_start + keel_fraction * D, -h], [keel_start, -h]]
    )
    stripe = np.array(
        [
            [-D / 2 + 0.01, -0.35 * h],
            [D / 2 - 0.12, -0.35 * h],
            [D / 2 - 0.16, -0.5 * h],
            [-D / 2 + 0.03, -0.5 * h],
        ]
    )
    cabin_x = -0.12 * D
    parts: list[Part] = [
        (hull, 0.45),
        (stripe, 0.85),
        (_rectangle(cabin_x, cabin_height / 2, cabin_length, cabin_height + 0.01), 0.8),
    ]
    for k in range(3):
        window_x = cabin_x - cabin_length / 3 + k * cabin_length / 3
        parts.append((_rectangle(window_x, 0.6 * cabin_height, 0.05, 0.035), 0.15))
    if funnel:
        parts.append((_rectangle(cabin_x, cabin_height + 0.07, 0.08, 0.16), 0.25))
    if mast:
        mast_x = 0.14 * D
        parts.append((_rectangle(mast_x, mast / 2, 0.04, mast), 0.2))
        sail = np.array([[mast_x + 0.02, 0.06], [mast_x + 0.02, mast * 0.95], [mast_x + 0.3, 0.06]])
        parts.append((sail, 0.95))
    return parts


def _car(length, body_height, cabin_length, cabin_height, cabin_offset, wheel_radius):
    """Car in side view, front to the right."""
    r, L = wheel_radius, length
    y0, y1 = 0.7 * r, 0.7 * r + body_height
    c = 0.06  # chamfer of the body corners
    body = np.array(
        [
            [-L / 2, y0],
            [L / 2, y0],
            [L / 2, y1 - c],
            [L / 2 - c, y1],
            [-L / 2 + c, y1],
            [-L / 2, y1 - c],
        ]
    )
    x0 = cabin_offset - cabin_length / 2
    cabin = np.array(
        [
            [x0, y1 - 0.01],
            [x0 + cabin_length, y1 - 0.01],
            [x0 + 0.8 * cabin_length, y1 + cabin_height],
            [x0 + 0.1 * cabin_length, y1 + cabin_height],
        ]
    )
    window = np.array(
        [
            [x0 + 0.08, y1 + 0.02],
            [x0 + cabin_length - 0.1, y1 + 0.02],
            [x0 + 0.78 * cabin_length - 0.02, y1 + cabin_height - 0.035],
            [x0 + 0.12 * cabin_length + 0.02, y1 + cabin_height - 0.035],
        ]
    )
    parts: list[Part] = [(cabin, 0.55), (window, 0.9), (body, 0.5)]
    parts.append((_rectangle(L / 2 - 0.03, y0 + 0.6 * body_height, 0.05, 0.04), 0.95))
    for x in (-L / 2 + 1.5 * r, L / 2 - 1.5 * r):
        parts.append((_ellipse(x, r, r, r), 0.08))
        parts.append((_ellipse(x, r, 0.45 * r, 0.45 * r), 0.6))
    return parts


def _chair(seat_depth, leg_height, back_height, back_tilt, seat_thickness, armrest):
    """Chair in side view, facing right; its long axis is vertical."""
    d, t = seat_depth, seat_thickness
    parts: list[Part] = [
        (_rectangle(d - 0.04, leg_height / 2, 0.075, leg_height), 0.35),
        (_bar((0.0, 0.0), 90.0 + back_tilt, leg_height + t + back_height, 0.08), 0.35),
        (_rectangle(d / 2, leg_height + t / 2, d + 0.02, t), 0.6),
    ]
    top = leg_height + t + back_height
    lean = np.tan(np.radians(back_tilt))
    cushion = np.array(
        [
            [-lean * (leg_height + t), leg_height + t],
            [0.08 - lean * (leg_height + t), leg_height + t],
            [0.08 - lean * top * 0.98, top * 0.98],
            [-lean * top * 0.98, top * 0.98],
        ]
    ) - [0.01, 0.0]
    parts.append((cushion, 0.7))
    if armrest:
        arm_y = leg_height + t + 0.22
        parts.append((_rectangle(d / 2, arm_y, d, 0.04), 0.3))
        parts.append((_rectangle(d - 0.05, arm_y - 0.11, 0.035, 0.22), 0.3))
    return parts


def _face(head_width, head_height, eye_height, eye_spacing, mouth_width, neck_height, hair, ears):
    """Face seen from the front; its long axis is vertical.

    ``hair`` is "none", "cap", "bun" (cap and a bun on top) or "long" (cap and hair falling
    to the jaw on both sides).
    """
    rx, ry = head_width / 2, head_height / 2
    parts: list[Part] = [
        (_rectangle(0.0, -ry - neck_height / 2 + 0.05, 0.45 * head_width, neck_height + 0.1), 0.5)
    ]
    if hair == "long":
        parts.append((_rectangle(0.0, -0.35 * ry, 2.4 * rx, 1.6 * ry), 0.22))
    if ears:
        parts += [(_ellipse(side * rx, 0.02, 0.07, 0.11), 0.55) for side in (-1, 1)]
    parts.append((_ellipse(0.0, 0.0, rx, ry), 0.68))
    if hair == "bun":
        parts.append((_ellipse(0.0, ry + 0.06, 0.11, 0.09), 0.22))
    if hair in ("cap", "bun", "long"):
        t = np.linspace(0.0, np.pi, 36)
        cap = np.column_stack([1.04 * rx * np.cos(t), 0.25 * ry + 0.8 * ry * np.sin(t)])
        parts.append((cap, 0.22))
    for side in (-1, 1):
        parts.append((_ellipse(side * eye_spacing / 2, eye_height, 0.06, 0.035), 0.95))
        parts.append((_ellipse(side * eye_spacing / 2, eye_height, 0.025, 0.025), 0.05))
    parts.append((np.array([[0.0, eye_height - 0.02], [0.04, -0.12], [-0.04, -0.12]]), 0.5))
    parts.append((_ellipse(0.0, -0.5 * ry, mouth_width / 2, 0.035), 0.2))
    return parts


def _fruit(length, width, bend, taper, roundness, stem):
    """Elongated fruit: a curved spindle whose half-width varies along its length."""
    t = np.linspace(-1.0, 1.0, 61)
    centre = np.column_stack([t * length / 2, bend * (t**2 - 1 / 3)])
    half_width = width / 2 * (1.0 - t**2) ** roundness * (1.0 + taper * t)
    upper = centre + np.column_stack([np.zeros_like(t), half_width])
    lower = centre - np.column_stack([np.zeros_like(t), half_width])
    outline = np.vstack([upper, lower[::-1]])
    highlight = _ellipse(
        -0.1 * length, bend * (0.01 - 1 / 3) + 0.2 * width, 0.12 * length, 0.08 * width
    )
    tip = centre[-1]
    parts: list[Part] = [(outline, 0.55), (highlight, 0.8)]
    parts.append((_bar((tip[0] - 0.03, tip[1]), 10.0 + 60.0 * bend, stem, 0.04), 0.15))
    return parts


def _plane(length, fuselage_width, span, chord, sweep, tail_span):
    """Aeroplane seen from above, nose to the right."""
    parts: list[Part] = []
    for side in (-1, 1):
        for x_root, s, c in ((0.05 * length, span, chord), (-0.4 * length, tail_span, 0.5 * chord)):
            back = np.tan(np.radians(sweep)) * s / 2
            wing = np.array(
                [
                    [x_root + c / 2, 0.0],
                    [x_root + c / 2 - back, side * s / 2],
                    [x_root + c / 2 - back - 0.35 * c, side * s / 2],
                    [x_root - c / 2, 0.0],
                ]
            )
            parts.append((wing, 0.45))
    parts.append((_ellipse(0.0, 0.0, length / 2, fuselage_width / 2), 0.7))
    parts.append((_ellipse(0.36 * length, 0.0, 0.06, 0.6 * fuselage_width / 2), 0.1))
    return parts


def _table(top_width, top_thickness, leg_height, leg_inset, pedestal, drawer):
    """Table in side view."""
    w, t = top_width, top_thickness
    parts: list[Part] = []
    if pedestal:
        parts.append((_rectangle(0.0, leg_height / 2, 0.11, leg_height), 0.4))
        parts.append((_rectangle(0.0, 0.025, 0.35 * w, 0.05), 0.3))
    else:
        for x in (-w / 2 + leg_inset, w / 2 - leg_inset):
            parts.append((_rectangle(x, leg_height / 2, 0.08, leg_height), 0.4))
    if drawer:
        parts.append((_rectangle(w / 4, leg_height - 0.08, w / 2 - leg_inset, 0.16), 0.55))
        parts.append((_rectangle(w / 4, leg_height - 0.08, 0.08, 0.03), 0.1))
    parts.append((_rectangle(0.0, leg_height + t / 2, w, t), 0.62))
    return parts


_GENERATORS = {
    "animals": _animal,
    "boats": _boat,
    "cars": _car,
    "chairs": _chair,
    "faces": _face,
    "fruits": _fruit,
    "planes": _plane,
    "tables": _table,
}

# Four parameter settings (objects) per category, in the argument order of the generator.
_OBJECT_PARAMETERS: dict[str, list[tuple]] = {
    # body_length, body_height, leg_length, neck_length, neck_angle, head_length, tail
    "animals": [
        (1.0, 0.42, 0.30, 0.18, 45.0, 0.32, 0.35),
        (1.0, 0.40, 0.45, 0.32, 60.0, 0.42, 0.40),
        (1.25, 0.32, 0.14, 0.12, 35.0, 0.34, 0.28),
        (1.1, 0.52, 0.30, 0.10, 15.0, 0.34, 0.45),
    ],
    # deck_length, keel_fraction, hull_height, cabin_length, cabin_height, mast, funnel
    "boats": [
        (1.0, 0.75, 0.16, 0.36, 0.14, 0.0, False),
        (1.0, 0.55, 0.14, 0.22, 0.08, 0.45, False),
        (1.3, 0.92, 0.14, 0.22, 0.11, 0.0, False),
        (0.9, 0.70, 0.20, 0.30, 0.17, 0.0, True),
    ],
    # length, body_height, cabin_length, cabin_height, cabin_offset, wheel_radius
    "cars": [
        (1.0, 0.18, 0.50, 0.16, -0.05, 0.09),
        (0.85, 0.20, 0.45, 0.18, -0.15, 0.09),
        (1.35, 0.17, 0.75, 0.15, -0.05, 0.08),
        (1.0, 0.22, 0.40, 0.22, 0.22, 0.11),
    ],
    # seat_depth, leg_height, back_height, back_tilt, seat_thickness, armrest
    "chairs": [
        (0.42, 0.42, 0.45, 8.0, 0.08, False),
        (0.35, 0.70, 0.30, 3.0, 0.07, False),
        (0.48, 0.25, 0.55, 20.0, 0.12, True),
        (0.42, 0.45, 0.60, 0.0, 0.09, True),
    ],
    # head_width, head_height, eye_height, eye_spacing, mouth_width, neck_height, hair, ears
    "faces": [
        (0.44, 0.72, 0.06, 0.19, 0.15, 0.24, "long", False),
        (0.42, 0.74, 0.08, 0.17, 0.12, 0.30, "none", False),
        (0.52, 0.76, 0.04, 0.24, 0.22, 0.16, "none", True),
        (0.46, 0.62, 0.10, 0.18, 0.10, 0.24, "bun", True),
    ],
    # length, width, bend, taper, roundness, stem
    "fruits": [
        (1.2, 0.26, 0.22, 0.0, 0.6, 0.10),
        (1.0, 0.55, 0.0, -0.45, 0.5, 0.10),
        (1.25, 0.28, 0.05, 0.0, 0.3, 0.06),
        (1.0, 0.45, 0.10, -0.30, 0.5, 0.12),
    ],
    # length, fuselage_width, span, chord, sweep, tail_span
    "planes": [
        (1.0, 0.11, 0.72, 0.16, 30.0, 0.30),
        (1.0, 0.12, 0.55, 0.34, 55.0, 0.22),
        (0.9, 0.12, 0.62, 0.13, 0.0, 0.26),
        (1.1, 0.10, 0.66, 0.20, 40.0, 0.28),
    ],
    # top_width, top_thickness, leg_height, leg_inset, pedestal, drawer
    "tables": [
        (1.0, 0.08, 0.42, 0.06, False, False),
        (1.1, 0.12, 0.20, 0.10, False, False),
        (1.0, 0.08, 0.45, 0.04, False, True),
        (1.0, 0.09, 0.26, 0.0, True, False),
    ],
}

# Faint grain inside each object: cycles per canonical unit and orientation (degrees) per
# category; the phase is fixed per object.
_GRAIN = {
    "animals": (9.0, 80.0),
    "boats": (7.0, 0.0),
    "cars": (6.0, 90.0),
    "chairs": (10.0, 0.0),
    "faces": (4.0, 90.0),
    "fruits": (8.0, 90.0),
    "planes": (7.0, 0.0),
    "tables": (12.0, 2.0),
}


@dataclass(frozen=True)
class ObjectModel:
    """One object in its canonical frame.

    Attributes
    ----------
    category, name : str
        Category and object name, e.g. ``"cars"`` and ``"car_2"``.
    parts : list of (ndarray of shape (k, 2), float)
        Polygons (canonical units, ``y`` up) and their shades, in drawing order.
    axis_angle : float
        Direction of the long (major) axis in the upright pose, degrees counter-clockwise from
        horizontal, in [-90, 90).
    """

    category: str
    name: str
    parts: list[Part]
    axis_angle: float


def object_name(category: str, index: int) -> str:
    """Name of object ``index`` of ``category``: ``"cars", 2 -> "car_2"``."""
    return f"{category[:-1]}_{index}"


def _paint(parts: list[Part], x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rasterise parts at the points ``(x, y)`` of a regular grid (row 0 = largest ``y``).

    Returns the union mask and the shade of the topmost part at every point (0 outside).
    Each part is tested only inside its bounding box, which keeps this fast.
    """
    xs, ys = x[0], y[:, 0]
    inside = np.zeros(x.shape, dtype=bool)
    shade = np.zeros(x.shape)
    for vertices, part_shade in parts:
        (x0, y0), (x1, y1) = vertices.min(axis=0), vertices.max(axis=0)
        cols = np.flatnonzero((xs >= x0) & (xs <= x1))
        rows = np.flatnonzero((ys >= y0) & (ys <= y1))
        if cols.size == 0 or rows.size == 0:
            continue
        window = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        points = np.column_stack([x[window].ravel(), y[window].ravel()])
        in_part = Path(vertices).contains_points(points).reshape(x[window].shape)
        inside[window] |= in_part
        shade[window][in_part] = part_shade
    return inside, shade


def _principal_axes(parts: list[Part]) -> tuple[np.ndarray, float, float]:
    """Centroid, long-axis angle (degrees in [-90, 90), y up) and largest moment eigenvalue."""
    vertices = np.vstack([v for v, _ in parts])
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    step = (high - low).max() / 500
    x, y = np.meshgrid(
        np.arange(low[0], high[0] + step, step), np.arange(high[1], low[1] - step, -step)
    )
    inside, _ = _paint(parts, x, y)
    px, py = x[inside], y[inside]
    centroid = np.array([px.mean(), py.mean()])
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(np.vstack([px, py]), bias=True))
    major = eigenvectors[:, 1]
    angle = (np.degrees(np.arctan2(major[1], major[0])) + 90.0) % 180.0 - 90.0
    return centroid, float(angle), float(eigenvalues[1])


def _canonical_object(category: str, index: int) -> ObjectModel:
    parts = _GENERATORS[category](*_OBJECT_PARAMETERS[category][index])
    centroid, axis_angle, largest = _principal_axes(parts)
    scale = 1.0 / (4.0 * np.sqrt(largest))
    canonical = [((v - centroid) * scale, shade) for v, shade in parts]
    return ObjectModel(category, object_name(category, index), canonical, axis_angle)


@lru_cache(maxsize=1)
def object_models() -> tuple[ObjectModel, ...]:
    """All 32 objects in their canonical frames, ordered by category then object index."""
    return tuple(
        _canonical_object(category, index)
        for category in CATEGORIES
        for index in range(OBJECTS_PER_CATEGORY)
    )


@lru_cache(maxsize=4)
def canonical_rasters(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Anti-aliased canonical images of all objects, for fast resampling.

    Each object is drawn on a ``resolution`` x ``resolution`` grid that covers
    ``[-CANONICAL_HALF_WIDTH, CANONICAL_HALF_WIDTH]`` canonical units (row 0 at the top),
    with 2 x 2 supersampling.

    Parameters
    ----------
    resolution : int
        Raster side length in pixels.

    Returns
    -------
    coverage : ndarray, shape (32, resolution, resolution), float32
        Fraction of each raster pixel covered by the object (0..1).
    shaded : ndarray, shape (32, resolution, resolution), float32
        Coverage times the object's grey shade (premultiplied), so that bilinear resampling
        does not darken edges.
    """
    oversample = 2
    fine = resolution * oversample
    pixel = 2.0 * CANONICAL_HALF_WIDTH / fine
    axis = -CANONICAL_HALF_WIDTH + pixel * (np.arange(fine) + 0.5)
    x, y = np.meshgrid(axis, axis[::-1])
    models = object_models()
    coverage = np.empty((len(models), resolution, resolution), dtype=np.float32)
    shaded = np.empty_like(coverage)
    for k, model in enumerate(models):
        inside, shade = _paint(model.parts, x, y)
        frequency, orientation = _GRAIN[model.category]
        direction = np.radians(orientation)
        phase = np.random.default_rng(k).uniform(0, 2 * np.pi)
        grating = np.sin(
            2 * np.pi * frequency * (x * np.cos(direction) + y * np.sin(direction)) + phase
        )
        shade = np.clip(shade + 0.08 * grating, 0.0, 1.0) * inside
        coverage[k] = _block_mean(inside.astype(np.float32), oversample)
        shaded[k] = _block_mean(shade.astype(np.float32), oversample)
    return coverage, shaded


def _block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    size = image.shape[0] // factor
    return image.reshape(size, factor, size, factor).mean(axis=(1, 3))
