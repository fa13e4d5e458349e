"""Tests of the simulated V1 population: determinism, noise ground truth, cell physiology."""

import importlib

import numpy as np
import pytest

from course_tools.datasets import NeuralDataset, simulated_v1
from course_tools.datasets.simulated_v1 import CELL_TYPES, DEFAULT_MIXTURE
from course_tools.metrics import explainable_variance
from course_tools.stimuli import naturalistic_images

SIZE = 40


def natural_images(n, size=SIZE, seed=0):
    """Grey naturalistic (dead-leaves, 1/f spectrum) images, the V1 chapter's stimuli."""
    return naturalistic_images(n, size=size, seed=seed)


@pytest.fixture(scope="module")
def population():
    return simulated_v1(natural_images(2000), n_neurons=120, seed=3)


# -------------------------------------------------------------- determinism
def test_same_seed_same_population_and_trials():
    images = natural_images(100)
    a = simulated_v1(images, n_neurons=20, seed=7)
    b = simulated_v1(images, n_neurons=20, seed=7)
    np.testing.assert_array_equal(a.responses, b.responses)
    np.testing.assert_array_equal(a.ground_truth["rates"], b.ground_truth["rates"])
    assert a.neuron_meta.equals(b.neuron_meta)
    c = simulated_v1(images, n_neurons=20, seed=8)
    assert not np.array_equal(a.responses, c.responses)


def test_generator_seed_is_accepted():
    images = natural_images(50)
    a = simulated_v1(images, n_neurons=5, seed=np.random.default_rng(1))
    b = simulated_v1(images, n_neurons=5, seed=np.random.default_rng(1))
    np.testing.assert_array_equal(a.responses, b.responses)


# ------------------------------------------------------------ dataset layout
def test_layout_and_metadata(population):
    ds = population
    assert isinstance(ds, NeuralDataset)
    assert ds.responses.shape == (4, 2000, 120)
    assert ds.stimuli.shape == (2000, SIZE, SIZE)
    assert set(ds.neuron_meta["area"]) == {"V1"}
    for column in ("cell_type", "orientation", "spatial_frequency", "phase", "x", "y", "size"):
        assert column in ds.neuron_meta
    assert ((ds.neuron_meta["orientation"] >= 0) & (ds.neuron_meta["orientation"] < 180)).all()
    assert (ds.neuron_meta["spatial_frequency"] < 0.5).all()  # below the Nyquist limit
    centre = (SIZE - 1) / 2
    assert (np.abs(ds.neuron_meta[["x", "y"]] - centre) <= 0.1 * SIZE + 1e-9).all().all()
    # spike counts: non-negative whole numbers
    assert (ds.responses >= 0).all() and np.all(np.mod(ds.responses, 1) == 0)
    truth = ds.ground_truth
    assert truth["rates"].shape == (2000, 120) and (truth["rates"] > 0).all()
    assert truth["receptive_fields"].shape == (120, SIZE, SIZE)
    np.testing.assert_allclose(
        np.linalg.norm(truth["receptive_fields"].reshape(120, -1), axis=1), 1, atol=1e-5
    )


def test_default_mixture_counts(population):
    counts = population.neuron_meta["cell_type"].value_counts()
    assert counts.sum() == 120
    for cell_type, fraction in DEFAULT_MIXTURE.items():
        assert abs(counts[cell_type] - fraction * 120) < 1
    assert counts["simple"] == 30 and counts["complex"] == 30


def test_custom_mixture_is_normalised():
    ds = simulated_v1(
        natural_images(50), n_neurons=10, seed=0, mixture={"simple": 3, "end_stopping": 1}
    )
    counts = ds.neuron_meta["cell_type"].value_counts().to_dict()
    assert counts == {"simple": 8, "end_stopping": 2}  # 7.5 / 2.5 rounded by largest remainder
    assert ds.ground_truth["mixture"] == {"simple": 0.75, "end_stopping": 0.25}


def test_mean_counts_match_the_requested_range(population):
    truth = population.ground_truth
    mean_rate = population.neuron_meta["mean_rate"].to_numpy()
    np.testing.assert_allclose(truth["rates"].mean(axis=0), mean_rate, rtol=1e-10)
    assert (mean_rate >= 0.2).all() and (mean_rate <= 1.0).all()
    np.testing.assert_allclose(population.responses.mean(axis=(0, 1)), mean_rate, rtol=0.15)


def test_select_keeps_ground_truth_aligned(population):
    sub = population.select(stimuli=np.arange(10), neurons="V1")
    assert sub.ground_truth["rates"].shape == (10, 120)
    simple = population.select(
        neurons=np.flatnonzero(population.neuron_meta["cell_type"] == "simple")
    )
    assert simple.ground_truth["params"]["cell_type"].eq("simple").all()
    assert simple.ground_truth["noise_variance"].shape == (30,)


# -------------------------------------------------------------- noise model
def test_explainable_variance_recovers_the_generating_noise(population):
    truth = population.ground_truth
    rates, noise = truth["rates"], truth["noise_variance"]
    true_fev = rates.var(axis=0) / (rates.var(axis=0) + noise)
    np.testing.assert_allclose(truth["fev"], true_fev)
    measured = explainable_variance(population.responses)
    assert np.median(np.abs(measured - true_fev)) < 0.03
    assert np.corrcoef(measured, true_fev)[0, 1] > 0.97
    # the trial-to-trial variance itself, measured independently of course_tools.metrics
    empirical_noise = np.mean(np.var(population.responses, axis=0, ddof=1), axis=0)
    assert np.median(np.abs(empirical_noise / noise - 1)) < 0.08


def test_explainable_fraction_is_in_the_range_of_real_v1(population):
    fev = population.ground_truth["fev"]
    # Cadena et al. (2019) kept neurons with a median explainable fraction around 0.3-0.5
    assert 0.3 <= np.median(fev) <= 0.55
    assert np.quantile(fev, 0.1) < 0.35 and np.quantile(fev, 0.9) > 0.5


def test_without_gain_noise_trials_are_poisson():
    ds = simulated_v1(natural_images(500), n_neurons=8, seed=2, gain_noise=(0.0, 0.0), n_repeats=20)
    rates = ds.ground_truth["rates"]
    np.testing.assert_allclose(ds.ground_truth["noise_variance"], rates.mean(axis=0))
    fano = np.var(ds.responses, axis=0, ddof=1).mean(axis=0) / ds.responses.mean(axis=(0, 1))
    np.testing.assert_allclose(fano, 1.0, atol=0.1)


# --------------------------------------------------------- cell physiology
YY, XX = np.mgrid[0:SIZE, 0:SIZE].astype(float)
CALIBRATION = natural_images(300, seed=11)


def bar_coordinates(p, orientation=None):
    theta = np.deg2rad(p["orientation"] if orientation is None else orientation)
    dx, dy = XX - p["x"], YY - p["y"]
    return dx * np.cos(theta) + dy * np.sin(theta), -dx * np.sin(theta) + dy * np.cos(theta)


def grating(p, phase=0.0, orientation=None):
    """Full-field grating with the neuron's preferred spatial frequency."""
    _, across = bar_coordinates(p, orientation)
    return np.cos(2 * np.pi * p["spatial_frequency"] * across + np.deg2rad(phase))


def probe(cell_type, seed, make_stimuli):
    """Noise-free rates of one neuron to test stimuli, calibrated on natural-like noise.

    The neuron's parameters depend only on the seed and the image size, so a first call
    tells what to show and a second call with the same seed simulates the same neuron.
    """
    mixture = {cell_type: 1}
    params = simulated_v1(CALIBRATION[:2], n_neurons=1, seed=seed, mixture=mixture)
    p = params.ground_truth["params"].iloc[0]
    stimuli = np.stack(make_stimuli(p))
    ds = simulated_v1(
        np.concatenate([CALIBRATION, stimuli]), n_neurons=1, seed=seed, mixture=mixture
    )
    assert ds.ground_truth["params"].iloc[0]["orientation"] == p["orientation"]
    return ds.ground_truth["rates"][len(CALIBRATION) :, 0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_complex_cells_are_phase_invariant_and_simple_cells_are_not(seed):
    def phases(p):
        return [grating(p, phase) for phase in range(0, 360, 45)]

    complex_rates = probe("complex", seed, phases)
    simple_rates = probe("simple", seed, phases)
    assert complex_rates.std() / complex_rates.mean() < 0.1
    assert simple_rates.std() / simple_rates.mean() > 0.8


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cross_orientation_suppression(seed):
    def stimuli(p):
        preferred = grating(p)
        return [preferred, preferred + grating(p, orientation=p["orientation"] + 90)]

    preferred, plaid = probe("divisive_normalization", seed, stimuli)
    assert plaid < 0.5 * preferred


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_surround_suppression(seed):
    def stimuli(p):
        disc = (XX - p["x"]) ** 2 + (YY - p["y"]) ** 2 < (1.5 * p["size"]) ** 2
        return [grating(p) * disc, grating(p)]

    small, large = probe("surround_suppression", seed, stimuli)
    assert large < 0.5 * small


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_end_stopping(seed):
    def stimuli(p):
        along, across = bar_coordinates(p)
        length = p["size"] * p["aspect_ratio"]
        width = np.abs(across) < 1.5 * p["size"]
        return [
            grating(p) * width * (np.abs(along) < 1.5 * length),
            grating(p) * width * (np.abs(along) < 5 * length),
        ]

    short, long = probe("end_stopping", seed, stimuli)
    assert long < 0.6 * short


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conjunction_cells_need_both_orientations(seed):
    def stimuli(p):
        first, second = grating(p), grating(p, orientation=p["orientation_2"])
        return [first, second, first + second]

    first, second, both = probe("conjunction", seed, stimuli)
    assert both > 5 * max(first, second)


# ------------------------------------------------------------- input formats
def test_rgb_uint8_images_are_converted_to_luminance():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(60, 24, 24, 3), dtype=np.uint8)
    luminance = rgb.astype(float) @ np.array([0.299, 0.587, 0.114]) / 255.0
    a = simulated_v1(rgb, n_neurons=6, seed=1)
    b = simulated_v1(luminance, n_neurons=6, seed=1)
    np.testing.assert_allclose(a.ground_truth["rates"], b.ground_truth["rates"], rtol=1e-9)
    assert a.stimuli.dtype == np.uint8  # the dataset keeps the images as given


def test_receptive_fields_scale_with_image_size():
    big = simulated_v1(natural_images(20, size=80), n_neurons=10, seed=0)
    small = simulated_v1(natural_images(20, size=40), n_neurons=10, seed=0)
    np.testing.assert_allclose(big.neuron_meta["size"], 2 * small.neuron_meta["size"])


@pytest.mark.parametrize(
    ("images", "kwargs", "error", "message"),
    [
        (np.zeros((10, 20)), {}, ValueError, r"\(n_images, H, W\)"),
        (np.zeros((10, 20, 20, 5)), {}, ValueError, "channels"),
        (np.zeros((1, 20, 20)), {}, ValueError, "at least 2 images"),
        (np.zeros((5, 4, 4)), {}, ValueError, "at least 8x8"),
        (np.full((5, 20, 20), np.nan), {}, ValueError, "NaN"),
        (np.ones((5, 20, 20)), {}, ValueError, "uniform"),
        (np.array([["a"]]), {}, TypeError, "numeric"),
        (None, {"n_neurons": 0}, ValueError, "n_neurons"),
        (None, {"n_repeats": 0}, ValueError, "n_repeats"),
        (None, {"mixture": {"grandmother": 1.0}}, ValueError, "Unknown cell types"),
        (None, {"mixture": {"simple": -1.0, "complex": 2.0}}, ValueError, "non-negative"),
        (None, {"mixture": ["simple"]}, TypeError, "dict"),
        (None, {"mean_rate": (0.0, 1.0)}, ValueError, "mean_rate"),
        (None, {"gain_noise": (0.5, 0.1)}, ValueError, "gain_noise"),
        (None, {"seed": "zero"}, TypeError, "seed"),
    ],
)
def test_invalid_input(images, kwargs, error, message):
    if images is None:
        images = natural_images(10, size=16)
    arguments = {"n_neurons": 3, **kwargs}
    with pytest.raises(error, match=message):
        simulated_v1(images, **arguments)


def test_all_cell_types_are_documented():
    simulated_v1_module = importlib.import_module("course_tools.datasets.simulated_v1")
    for cell_type in CELL_TYPES:
        assert f"``{cell_type}``" in simulated_v1_module.__doc__
