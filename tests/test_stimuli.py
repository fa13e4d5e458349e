"""Tests of course_tools.stimuli against independent references.

References: scipy.ndimage (area, centroid, bounding boxes), plain numpy covariance and
eigen-decomposition (axes, angles), contourpy (the contour-length perimeter), closed forms
(rectangles, lines, discs), direct Fourier analysis (1/f slopes), and the generating
parameters of the stimuli themselves (rotation, scale, pose, shift).
"""

from __future__ import annotations

import contourpy
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage, stats

from course_tools.stimuli import (
    CATEGORIES,
    FRAME_RATE_HZ,
    VARIATION_RANGES,
    VARIATIONS,
    mask_properties,
    naturalistic_images,
    naturalistic_movie,
    object_scenes,
    pink_noise,
    white_noise_movie,
)
from course_tools.stimuli.scenes import OBJECT_LENGTH
from course_tools.stimuli.shapes import canonical_rasters, object_models

# ----------------------------------------------------------------------------- helpers


def radial_amplitude_slope(images: np.ndarray, low: int = 2, high: int | None = None) -> float:
    """Log-log slope of the radially averaged Fourier amplitude spectrum of square images."""
    size = images.shape[-1]
    high = size // 2 - 2 if high is None else high
    centred = images - images.mean(axis=(1, 2), keepdims=True)
    amplitude = np.abs(np.fft.fft2(centred)).mean(axis=0)
    f = np.fft.fftfreq(size) * size
    radius = np.rint(np.hypot(f[:, None], f[None, :])).astype(int)
    radial = np.bincount(radius.ravel(), amplitude.ravel()) / np.bincount(radius.ravel())
    frequencies = np.arange(len(radial))
    keep = (frequencies >= low) & (frequencies <= high)
    return float(np.polyfit(np.log(frequencies[keep]), np.log(radial[keep]), 1)[0])


def reference_properties(mask: np.ndarray) -> dict[str, float]:
    """Region properties of one mask, computed without course_tools."""
    height, width = mask.shape
    rows, cols = np.nonzero(mask)
    area = float(ndimage.sum(mask))
    cy, cx = ndimage.center_of_mass(mask)
    (row_slice, col_slice) = ndimage.find_objects(mask.astype(int))[0]
    covariance = np.cov(np.vstack([cols, -rows]), bias=True)  # (x, y up)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    major = eigenvectors[:, 1]
    angle = np.degrees(np.arctan2(major[1], major[0]))
    angle = (angle + 90.0) % 180.0 - 90.0
    lines = contourpy.contour_generator(z=np.pad(mask, 1).astype(float)).lines(0.5)
    perimeter = sum(np.hypot(*np.diff(line, axis=0).T).sum() for line in lines)
    return {
        "area": area,
        "x": cx,
        "y": cy,
        "x_norm": (2 * cx + 1) / width - 1,
        "y_norm": 1 - (2 * cy + 1) / height,
        "size": np.sqrt(area) / np.sqrt(height * width),
        "major_axis_length": 4 * np.sqrt(eigenvalues[1]),
        "minor_axis_length": 4 * np.sqrt(eigenvalues[0]),
        "major_axis_angle": angle,
        "aspect_ratio": np.sqrt(eigenvalues[1] / eigenvalues[0]),
        "perimeter": perimeter,
        "bbox_x0": col_slice.start,
        "bbox_x1": col_slice.stop,
        "bbox_y0": row_slice.start,
        "bbox_y1": row_slice.stop,
        "bbox_width": col_slice.stop - col_slice.start,
        "bbox_height": row_slice.stop - row_slice.start,
        "touches_border": bool(
            mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()
        ),
    }


def angle_difference(a, b):
    """Smallest difference between axis angles, modulo 180 degrees."""
    return (np.asarray(a) - np.asarray(b) + 90.0) % 180.0 - 90.0


AXIS_ANGLE = {model.name: model.axis_angle for model in object_models()}


@pytest.fixture(scope="module")
def scenes():
    """Scenes at every variation level (with masks), shared by the tests below."""
    return {
        variation: object_scenes(320, variation=variation, seed=7, return_masks=True)
        for variation in VARIATIONS
    }


# ----------------------------------------------------------------------- object scenes


def test_object_scenes_shapes_types_and_columns(scenes):
    images, meta, masks = scenes["medium"]
    assert images.shape == (320, 64, 64, 3) and images.dtype == np.uint8
    assert masks.shape == (320, 64, 64) and masks.dtype == bool
    assert len(meta) == 320 and meta.index.name == "image"
    assert list(meta.index) == list(range(320))
    for column in ("category", "object", "variation", "scale", "rotation", "pose", "x", "y"):
        assert column in meta.columns
    assert (meta["variation"] == "medium").all()
    assert list(meta["category"].cat.categories) == list(CATEGORIES)
    assert meta["object"].cat.categories.size == 32
    # Labels are stable integers: category code equals the position in CATEGORIES.
    expected = [CATEGORIES.index(c) for c in meta["category"]]
    assert meta["category"].cat.codes.tolist() == expected
    assert images.std() > 20  # not blank


def test_object_scenes_are_balanced_and_interleaved(scenes):
    _, meta, _ = scenes["low"]
    assert meta["category"].iloc[:8].tolist() == list(CATEGORIES)
    counts = meta["object"].value_counts()
    assert (counts == 10).all() and len(counts) == 32  # 320 images = 10 x 32 objects
    # Objects of one category are its 4 objects named <singular>_<k>.
    for category in CATEGORIES:
        names = set(meta.loc[meta["category"] == category, "object"])
        assert names == {f"{category[:-1]}_{k}" for k in range(4)}


def test_object_scenes_deterministic_and_independent_of_n():
    images_a, meta_a = object_scenes(40, variation="high", seed=3)
    images_b, meta_b = object_scenes(40, variation="high", seed=3)
    np.testing.assert_array_equal(images_a, images_b)
    pd.testing.assert_frame_equal(meta_a, meta_b)
    images_small, meta_small = object_scenes(7, variation="high", seed=3)
    np.testing.assert_array_equal(images_small, images_a[:7])
    pd.testing.assert_frame_equal(meta_small, meta_a.iloc[:7])
    images_other, meta_other = object_scenes(40, variation="high", seed=4)
    assert not np.array_equal(images_other, images_a)
    assert not np.allclose(meta_other["rotation"], meta_a["rotation"])
    # A seeded Generator is repeatable too.
    first = object_scenes(3, seed=np.random.default_rng(5))[0]
    second = object_scenes(3, seed=np.random.default_rng(5))[0]
    np.testing.assert_array_equal(first, second)


def test_object_scenes_independent_of_chunking():
    """Images are rendered in chunks of 256; image i must not depend on its chunk mates."""
    images_a, meta_a = object_scenes(260, variation="medium", seed=9)
    images_b, meta_b = object_scenes(300, variation="medium", seed=9, progress=True)
    np.testing.assert_array_equal(images_a, images_b[:260])
    pd.testing.assert_frame_equal(meta_a, meta_b.iloc[:260])


def test_variation_levels_draw_independent_backgrounds():
    low, _ = object_scenes(4, variation="low", seed=0)
    high, _ = object_scenes(4, variation="high", seed=0)
    corner = np.s_[:, :6, :6]  # the object never reaches the corner at low variation
    assert np.abs(low[corner].astype(int) - high[corner].astype(int)).mean() > 5


def test_metadata_equals_independent_recomputation_from_masks(scenes):
    for variation in ("low", "high"):
        _, meta, masks = scenes[variation]
        for i in range(0, 320, 16):
            reference = reference_properties(masks[i])
            for column, value in reference.items():
                if column == "major_axis_angle":
                    assert abs(angle_difference(meta.at[i, column], value)) < 1e-6
                else:
                    assert meta.at[i, column] == pytest.approx(value, rel=1e-9, abs=1e-9), column


def test_rotation_recovered_from_major_axis_angle(scenes):
    for variation in ("medium", "high"):
        _, meta, _ = scenes[variation]
        usable = ~meta["touches_border"] & (meta["aspect_ratio"] > 1.5)
        expected = meta["object"].map(AXIS_ANGLE).astype(float) + meta["rotation"]
        error = np.abs(angle_difference(meta["major_axis_angle"], expected))[usable]
        assert usable.sum() > 250
        assert np.median(error) < 1.0
        assert np.percentile(error, 95) < 3.5
        assert error.max() < 10.0


def test_area_scales_with_scale_squared_and_foreshortening(scenes):
    _, meta, _ = scenes["high"]
    visible = meta[~meta["touches_border"]]
    # Regress log(area) on log(scale) and log(cos(pose)) with one intercept per object.
    design = pd.get_dummies(visible["object"].astype(str), dtype=float)
    design["log_scale"] = np.log(visible["scale"])
    design["log_cos_pose"] = np.log(np.cos(np.radians(visible["pose"])))
    coef, *_ = np.linalg.lstsq(design.to_numpy(), np.log(visible["area"].to_numpy()), rcond=None)
    assert coef[-2] == pytest.approx(2.0, abs=0.08)
    assert coef[-1] == pytest.approx(1.0, abs=0.08)


def test_major_axis_length_and_aspect_ratio_follow_scale_and_pose():
    images, meta = object_scenes(256, image_size=128, variation="high", seed=11)
    visible = meta[~meta["touches_border"]]
    expected_length = visible["scale"] * OBJECT_LENGTH * 128
    relative_error = np.abs(visible["major_axis_length"] / expected_length - 1)
    assert np.median(relative_error) < 0.01
    assert relative_error.max() < 0.06  # thin parts (legs, masts) may vanish when foreshortened
    # Foreshortening shrinks the minor axis by cos(pose): aspect * cos(pose) is constant
    # for an object; compare with the same object in the unposed canonical view.
    low = object_scenes(32, image_size=128, variation="low", seed=11)[1]
    canonical = low.groupby("object", observed=True)["aspect_ratio"].first()
    corrected = visible["aspect_ratio"] * np.cos(np.radians(visible["pose"]))
    ratio = corrected / visible["object"].map(canonical).astype(float)
    assert np.abs(ratio - 1).max() < 0.12
    assert np.abs(np.median(ratio) - 1) < 0.02


def test_centroid_matches_generating_shift():
    size = 128
    _, meta = object_scenes(200, image_size=size, variation="high", seed=5)
    visible = meta[~meta["touches_border"]]
    error_x = (visible["x_norm"] - visible["shift_x"]) * size / 2  # pixels
    error_y = (visible["y_norm"] - visible["shift_y"]) * size / 2
    assert np.abs(error_x).max() < 1.0 and np.abs(error_y).max() < 1.0
    assert abs(error_x.mean()) < 0.1 and abs(error_y.mean()) < 0.1  # no bias


def test_low_variation_is_centred_and_fixed(scenes):
    _, meta, _ = scenes["low"]
    for column, value in (("scale", 1.0), ("rotation", 0.0), ("pose", 0.0), ("shift_x", 0.0)):
        assert (meta[column] == value).all()
    # Centred up to rasterisation: a thin part (a table leg) gaining or losing a column of
    # pixels moves a small object's centroid by up to about 2 pixels at 64 px.
    offset_pixels = meta[["x_norm", "y_norm"]].abs() * 32
    assert offset_pixels.max().max() < 2.5
    assert offset_pixels.median().max() < 0.3
    # The same object at low variation always has the same mask geometry.
    spread = meta.groupby("object", observed=True)[["area", "perimeter"]].std()
    assert (spread.to_numpy() == 0).all()


def test_variation_ranges_grow_and_respect_the_table(scenes):
    spreads = {}
    for variation in VARIATIONS:
        _, meta, _ = scenes[variation]
        ranges = VARIATION_RANGES[variation]
        for parameter in ("scale", "rotation", "pose"):
            low, high = ranges[parameter]
            assert meta[parameter].between(low, high).all()
        assert meta[["shift_x", "shift_y"]].abs().max().max() <= ranges["shift"][1]
        spreads[variation] = meta[["x", "y", "size", "rotation", "scale", "pose"]].std()
    assert (spreads["low"] < spreads["medium"]).all()
    assert (spreads["medium"] < spreads["high"]).all()


def test_every_object_has_a_clear_major_axis_and_objects_are_distinct():
    coverage, _ = canonical_rasters(128)
    masks = coverage >= 0.5
    assert masks.shape == (32, 128, 128)
    for mask in masks:
        rows, cols = np.nonzero(mask)
        eigenvalues = np.linalg.eigvalsh(np.cov(np.vstack([cols, rows]), bias=True))
        assert np.sqrt(eigenvalues[1] / eigenvalues[0]) > 1.5
    flat = masks.reshape(32, -1)
    intersection = flat.astype(int) @ flat.T.astype(int)
    union = flat.sum(1)[:, None] + flat.sum(1)[None, :] - intersection
    iou = intersection / union
    np.fill_diagonal(iou, 0)
    assert iou.max() < 0.85


def test_category_subset():
    _, meta = object_scenes(24, categories=["faces", "cars"], seed=0)
    assert set(meta["category"]) == {"faces", "cars"}
    assert meta["category"].iloc[:2].tolist() == ["faces", "cars"]
    assert (meta["object"].value_counts()[lambda c: c > 0] == 3).all()
    # Codes stay those of the full category list, so labels match across subsets.
    assert set(meta["category"].cat.codes) == {CATEGORIES.index("faces"), CATEGORIES.index("cars")}
    _, same = object_scenes(24, categories=np.array(["faces", "cars"]), seed=0)
    pd.testing.assert_frame_equal(meta, same)


def test_return_masks_matches_image_content():
    images, meta, masks = object_scenes(16, variation="medium", seed=2, return_masks=True)
    for image, mask in zip(images.astype(float), masks, strict=True):
        # Object pixels differ from the background around them.
        ring = ndimage.binary_dilation(mask, iterations=3) & ~ndimage.binary_dilation(mask)
        assert mask.sum() > 20 and ring.any()
        contrast = np.abs(image[mask].mean(0) - image[ring].mean(0)).max()
        assert contrast > 10


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n": 0}, ValueError, "positive"),
        ({"n": -3}, ValueError, "positive"),
        ({"n": 2.5}, TypeError, "int"),
        ({"n": True}, TypeError, "int"),
        ({"n": 2, "image_size": 8}, ValueError, "at least 16"),
        ({"n": 2, "image_size": "64"}, TypeError, "int"),
        ({"n": 2, "variation": "extreme"}, ValueError, r"\['low', 'medium', 'high'\]"),
        ({"n": 2, "categories": ["dogs"]}, ValueError, "Unknown categories"),
        ({"n": 2, "categories": "cars"}, TypeError, "list of category names"),
        ({"n": 2, "categories": []}, ValueError, "empty"),
        ({"n": 2, "seed": -1}, ValueError, "non-negative"),
        ({"n": 2, "seed": "a"}, TypeError, "seed"),
    ],
)
def test_object_scenes_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        object_scenes(**kwargs)


# --------------------------------------------------------------------- mask properties


def test_mask_properties_closed_forms():
    masks = np.zeros((4, 20, 20), dtype=bool)
    masks[0, 3:7, 2:14] = True  # 4 rows x 12 columns
    masks[1, np.arange(10), np.arange(10)] = True  # a line falling to the right
    yy, xx = np.mgrid[:20, :20]
    masks[2] = (yy - 9.5) ** 2 + (xx - 9.5) ** 2 <= 8**2  # disc of radius 8
    props = mask_properties(masks)

    rectangle = props.iloc[0]
    assert rectangle["area"] == 48 and rectangle["x"] == 7.5 and rectangle["y"] == 4.5
    # Variance of k consecutive integers is (k^2 - 1) / 12.
    assert rectangle["major_axis_length"] == pytest.approx(4 * np.sqrt((12**2 - 1) / 12))
    assert rectangle["minor_axis_length"] == pytest.approx(4 * np.sqrt((4**2 - 1) / 12))
    assert rectangle["major_axis_angle"] == pytest.approx(0.0)
    bbox = rectangle[["bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1", "bbox_width", "bbox_height"]]
    assert bbox.tolist() == [2, 3, 14, 7, 12, 4]
    assert rectangle["perimeter"] == pytest.approx(2 * (11 + 3) + 4 * np.sqrt(0.5))
    assert not rectangle["touches_border"]

    line = props.iloc[1]
    assert line["major_axis_angle"] == pytest.approx(-45.0)  # y grows downwards on screen
    assert np.isinf(line["aspect_ratio"]) and line["touches_border"]

    disc = props.iloc[2]
    # The contour of a digital disc follows its staircase a little: 0-10% above 2 pi r.
    assert 2 * np.pi * 8 <= disc["perimeter"] <= 1.1 * 2 * np.pi * 8
    assert disc["aspect_ratio"] == pytest.approx(1.0)
    assert disc["x_norm"] == pytest.approx(0.0) and disc["y_norm"] == pytest.approx(0.0)

    empty = props.iloc[3]
    assert empty["area"] == 0 and empty["size"] == 0 and not empty["touches_border"]
    assert np.isnan(empty["x"]) and np.isnan(empty["perimeter"]) and np.isnan(empty["bbox_x0"])


def test_mask_properties_perimeter_matches_contourpy_on_random_masks():
    rng = np.random.default_rng(0)
    masks = ndimage.binary_opening(rng.random((6, 30, 30)) < 0.6, structure=np.ones((1, 2, 2)))
    props = mask_properties(masks)
    for mask, perimeter in zip(masks, props["perimeter"], strict=True):
        assert perimeter == pytest.approx(reference_properties(mask)["perimeter"], rel=1e-12)


def test_mask_properties_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(n, height, width\)"):
        mask_properties(np.zeros((5, 5), dtype=bool))


# ------------------------------------------------------------- naturalistic images


def test_naturalistic_images_shape_range_and_determinism():
    images = naturalistic_images(50, seed=1)
    assert images.shape == (50, 40, 40) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert 0.4 < images.mean() < 0.6 and images.std() > 0.15
    np.testing.assert_array_equal(images, naturalistic_images(50, seed=1))
    np.testing.assert_array_equal(images[:5], naturalistic_images(5, seed=1))
    assert not np.allclose(images, naturalistic_images(50, seed=2))


def test_leaf_rows_match_a_direct_point_in_shape_test():
    """The row-interval rasteriser of the leaves agrees with testing every pixel directly."""
    from course_tools.stimuli.natural import _row_intervals

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:30, :30].astype(float)
    for is_rectangle in (False, True):
        for _ in range(20):
            a, b = rng.uniform(2, 12), rng.uniform(1, 6)
            angle = rng.uniform(0, np.pi)
            cx, cy = rng.uniform(5, 25, size=2)
            p = ((xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)) / a
            q = ((yy - cy) * np.cos(angle) - (xx - cx) * np.sin(angle)) / b
            direct = np.maximum(np.abs(p), np.abs(q)) if is_rectangle else np.hypot(p, q)
            n_rows = 30
            left, right = _row_intervals(
                np.arange(n_rows) - cy,
                np.full(n_rows, a),
                np.full(n_rows, b),
                np.full(n_rows, np.cos(angle)),
                np.full(n_rows, np.sin(angle)),
                np.full(n_rows, is_rectangle),
            )
            with np.errstate(invalid="ignore"):
                rows = (xx >= cx + left[:, None]) & (xx <= cx + right[:, None])
            clear = np.abs(direct - 1) > 1e-9  # skip pixels exactly on the outline
            np.testing.assert_array_equal(rows[clear], (direct <= 1)[clear])


@pytest.mark.parametrize(("n", "size"), [(200, 40), (40, 96)])
def test_naturalistic_images_have_one_over_f_amplitude_spectrum(n, size):
    images = naturalistic_images(n, size=size, seed=0)
    assert radial_amplitude_slope(images) == pytest.approx(-1.0, abs=0.3)


def test_naturalistic_images_have_edges_unlike_gaussian_noise():
    """Occluding leaves give sparse, heavy-tailed derivatives (kurtosis >> 3); pink noise
    with the same spectrum is Gaussian (kurtosis 3)."""
    leaves = naturalistic_images(200, seed=0)
    noise = pink_noise(200, size=40, seed=0)
    leaves_kurtosis = stats.kurtosis(np.diff(leaves, axis=2).ravel(), fisher=False)
    noise_kurtosis = stats.kurtosis(np.diff(noise, axis=2).ravel(), fisher=False)
    assert noise_kurtosis == pytest.approx(3.0, abs=0.2)
    assert leaves_kurtosis > 6.0


def test_naturalistic_images_leaf_count_and_texture():
    flat = naturalistic_images(20, seed=0, texture_contrast=0.0, n_leaves=400)
    textured = naturalistic_images(20, seed=0, texture_contrast=0.2, n_leaves=400)
    smooth = np.mean(np.abs(np.diff(flat, axis=2)) < 1e-6)
    rough = np.mean(np.abs(np.diff(textured, axis=2)) < 1e-6)
    assert smooth > 0.3 > rough


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n": 0}, ValueError, "positive"),
        ({"n": 3, "size": 4}, ValueError, "at least 8"),
        ({"n": 3, "n_leaves": 0}, ValueError, "n_leaves"),
        ({"n": 3, "texture_contrast": -0.1}, ValueError, "texture_contrast"),
    ],
)
def test_naturalistic_images_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        naturalistic_images(**kwargs)


@pytest.mark.parametrize("exponent", [0.0, 1.0, 2.0])
def test_pink_noise_spectrum_and_moments(exponent):
    noise = pink_noise(100, size=64, exponent=exponent, seed=0)
    assert noise.shape == (100, 64, 64) and noise.dtype == np.float32
    np.testing.assert_allclose(noise.mean(axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(noise.std(axis=(1, 2)), 1.0, atol=1e-4)
    assert radial_amplitude_slope(noise) == pytest.approx(-exponent, abs=0.1)


# --------------------------------------------------------------------------- movies


def lag_correlation(movie: np.ndarray, axis: int) -> float:
    a = np.take(movie, np.arange(movie.shape[axis] - 1), axis=axis).ravel()
    b = np.take(movie, np.arange(1, movie.shape[axis]), axis=axis).ravel()
    return float(np.corrcoef(a, b)[0, 1])


def test_frame_rate():
    assert FRAME_RATE_HZ == 100


@pytest.mark.parametrize("binary", [True, False])
def test_white_noise_movie_statistics(binary):
    movie = white_noise_movie(400, size=30, seed=0, contrast=0.5, binary=binary)
    assert movie.shape == (400, 30, 30) and movie.dtype == np.float32
    if binary:
        assert set(np.unique(movie).tolist()) == {-0.5, 0.5}
    assert abs(movie.mean()) < 0.01
    assert movie.std() == pytest.approx(0.5, rel=0.01)
    for axis in (0, 1, 2):  # time, rows, columns
        assert abs(lag_correlation(movie, axis)) < 0.01


def test_white_noise_movie_determinism_and_prefix():
    movie = white_noise_movie(250, size=10, seed=3)
    np.testing.assert_array_equal(movie, white_noise_movie(250, size=10, seed=3))
    np.testing.assert_array_equal(movie[:130], white_noise_movie(130, size=10, seed=3))
    assert not np.array_equal(movie, white_noise_movie(250, size=10, seed=4))


def test_naturalistic_movie_statistics_and_fixations():
    movie, fixations = naturalistic_movie(3000, size=30, seed=0, return_fixations=True)
    assert movie.shape == (3000, 30, 30) and movie.dtype == np.float32
    # Source images are z-scored; a window's mean varies with the part of the image it sees.
    assert abs(movie.mean()) < 0.2
    assert movie.std() == pytest.approx(1.0, rel=0.15)
    # Fixations last 0.3 .. 1 s (the last one may be cut short by the end of the movie).
    durations = fixations.groupby("fixation").size().to_numpy()[:-1]
    assert durations.min() >= 30 and durations.max() <= 100
    assert fixations["saccade"].sum() == fixations["fixation"].nunique()
    # Consecutive frames are strongly correlated within a fixation, weakly across a saccade.
    flat = movie.reshape(len(movie), -1)
    r = np.array([np.corrcoef(flat[t], flat[t + 1])[0, 1] for t in range(len(movie) - 1)])
    across = fixations["saccade"].to_numpy()[1:]
    assert r[~across].mean() > 0.6
    assert np.abs(r[across]).mean() < 0.3
    # The view jitters: positions change within fixations, by small steps.
    steps = fixations.groupby("fixation")[["x", "y"]].diff().dropna().abs()
    assert (steps.sum(axis=1) > 0).mean() > 0.5
    assert steps.max().max() <= 5


def test_naturalistic_movie_frames_are_windows_of_the_source_images():
    movie, fixations = naturalistic_movie(
        200, size=16, seed=4, source_size=40, contrast=0.3, return_fixations=True
    )
    sources = naturalistic_images(fixations["image"].max() + 1, size=40, seed=4).astype(float)
    sources = (sources - sources.mean(axis=(1, 2), keepdims=True)) / sources.std(
        axis=(1, 2), keepdims=True
    )
    for t in range(0, 200, 7):
        row = fixations.iloc[t]
        window = sources[row["image"], row["y"] : row["y"] + 16, row["x"] : row["x"] + 16]
        np.testing.assert_allclose(movie[t], 0.3 * window, atol=1e-5)


def test_naturalistic_movie_without_jitter_is_still_within_fixations():
    movie, fixations = naturalistic_movie(300, size=12, seed=1, jitter=0.0, return_fixations=True)
    same = np.all(movie[1:] == movie[:-1], axis=(1, 2))
    np.testing.assert_array_equal(same, ~fixations["saccade"].to_numpy()[1:])


def test_naturalistic_movie_determinism_and_prefix():
    movie = naturalistic_movie(260, size=12, seed=2)
    np.testing.assert_array_equal(movie, naturalistic_movie(260, size=12, seed=2))
    np.testing.assert_array_equal(movie[:90], naturalistic_movie(90, size=12, seed=2))
    assert not np.array_equal(movie, naturalistic_movie(260, size=12, seed=3))


@pytest.mark.parametrize(
    ("function", "kwargs", "error", "match"),
    [
        (white_noise_movie, {"n_frames": 0}, ValueError, "n_frames"),
        (white_noise_movie, {"n_frames": 10.0}, TypeError, "n_frames"),
        (white_noise_movie, {"n_frames": 10, "contrast": 0}, ValueError, "contrast"),
        (white_noise_movie, {"n_frames": 10, "binary": "yes"}, TypeError, "binary"),
        (naturalistic_movie, {"n_frames": -1}, ValueError, "n_frames"),
        (naturalistic_movie, {"n_frames": 10, "size": 4}, ValueError, "at least 8"),
        (naturalistic_movie, {"n_frames": 10, "fixation_duration": (1.0, 0.3)}, ValueError, "<="),
        (naturalistic_movie, {"n_frames": 10, "fixation_duration": 0.5}, TypeError, "pair"),
        (naturalistic_movie, {"n_frames": 10, "jitter": -1.0}, ValueError, "jitter"),
        (naturalistic_movie, {"n_frames": 10, "size": 20, "source_size": 10}, ValueError, "20"),
    ],
)
def test_movie_errors(function, kwargs, error, match):
    with pytest.raises(error, match=match):
        function(**kwargs)
