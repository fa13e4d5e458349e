"""Classical models against direct loops, grating physics, brute force and known generators."""

import numpy as np
import pytest
import torch
from scipy.special import expit
from sklearn.base import clone
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from threadpoolctl import threadpool_limits

from course_tools.models.classical import (
    GaborEnergyModel,
    GaborFilterBank,
    LNPoissonModel,
    RetinaLNModel,
    images_to_luminance,
)
from course_tools.stimuli.natural import naturalistic_images


@pytest.fixture(autouse=True)
def _small_problems_on_one_thread():
    """These small problems run fastest on one thread (and do not spin against other processes)."""
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(n_threads)


SMALL_BANK = {"n_orientations": 4, "spatial_frequencies": (0.15,), "sizes": (2.5,), "stride": 6}


def grating(size, orientation, frequency, phase, centre=(0.0, 0.0)):
    """cos(2 pi f (-x sin(theta) + y cos(theta)) + phase): bars at `orientation` degrees.

    ``phase`` is the grating's phase at ``centre`` = (x, y).
    """
    y, x = np.mgrid[0:size, 0:size].astype(float)
    x, y = x - centre[0], y - centre[1]
    theta = np.deg2rad(orientation)
    return np.cos(
        2 * np.pi * frequency * (-x * np.sin(theta) + y * np.cos(theta)) + np.deg2rad(phase)
    )


def central_pair(bank):
    params = bank.pair_params_
    centre = (np.asarray(bank.image_shape_) - 1) / 2
    distance = np.hypot(params["x"] - centre[1], params["y"] - centre[0])
    return params.index[distance == distance.min()]


@pytest.fixture(scope="module")
def images():
    return naturalistic_images(1800, size=24, seed=3)


def true_gabor(size, orientation, frequency, sigma, phase=0.0):
    y, x = np.mgrid[0:size, 0:size].astype(float)
    c = (size - 1) / 2
    envelope = np.exp(-((x - c) ** 2 + (y - c) ** 2) / (2 * sigma**2))
    g = envelope * grating(size, orientation, frequency, phase)
    g -= g.mean()
    return g / np.linalg.norm(g)


# ----------------------------------------------------------------------------- luminance
def test_luminance_of_uint8_rgb_uses_bt601_weights():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(3, 5, 6, 3), dtype=np.uint8)
    expected = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) / 255.0
    np.testing.assert_allclose(images_to_luminance(rgb), expected, rtol=1e-5)
    np.testing.assert_allclose(images_to_luminance(rgb[..., :1]), rgb[..., 0] / 255.0, rtol=1e-6)
    floats = rng.normal(size=(2, 4, 4))
    np.testing.assert_allclose(images_to_luminance(floats), floats, rtol=1e-6)


def test_luminance_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"images\[None\]"):
        images_to_luminance(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="channels"):
        images_to_luminance(np.zeros((2, 8, 8, 5)))
    with pytest.raises(ValueError, match="NaN"):
        images_to_luminance(np.full((1, 4, 4), np.nan))


# ---------------------------------------------------------------------------- filter bank
def test_transform_matches_a_per_filter_loop():
    rng = np.random.default_rng(1)
    imgs = rng.normal(size=(6, 20, 20))
    bank = GaborFilterBank(phases=(0, 45, 180), **SMALL_BANK).fit(imgs)
    features = bank.transform(imgs)
    assert features.shape == (6, bank.n_features_out_) == (6, len(bank.filter_params_))
    expected = np.empty_like(features)
    for j, row in enumerate(bank.filter_params_.itertuples()):
        even, odd = bank.filters_[row.pair].astype(float)
        if row.kind == "simple":
            phi = np.deg2rad(row.phase)
            kernel = np.cos(phi) * even + np.sin(phi) * odd
            expected[:, j] = np.maximum(0.0, (imgs * kernel).sum(axis=(1, 2)))
        else:
            expected[:, j] = np.hypot((imgs * even).sum(axis=(1, 2)), (imgs * odd).sum(axis=(1, 2)))
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4)
    linear = GaborFilterBank(kind="linear", **SMALL_BANK).fit(imgs).transform(imgs)
    pairs = bank.filters_.reshape(len(bank.filters_) * 2, -1).astype(float)
    np.testing.assert_allclose(linear, imgs.reshape(6, -1) @ pairs.T, rtol=1e-4, atol=1e-4)


def test_filters_are_zero_mean_unit_norm_quadrature_pairs():
    bank = GaborFilterBank(**SMALL_BANK).fit(np.zeros((1, 32, 32)))
    flat = bank.filters_.reshape(len(bank.filters_), 2, -1).astype(float)
    np.testing.assert_allclose(np.linalg.norm(flat, axis=2), 1.0, rtol=1e-5)
    np.testing.assert_allclose(flat.sum(axis=2), 0.0, atol=1e-5)
    central = central_pair(bank)
    dots = np.einsum("pi,pi->p", flat[central, 0], flat[central, 1])
    np.testing.assert_allclose(dots, 0.0, atol=1e-3)


def test_complex_cells_are_phase_invariant_and_simple_cells_are_not():
    size = 32
    bank = GaborFilterBank(kind="both", **SMALL_BANK).fit(np.zeros((1, size, size)))
    pair = central_pair(bank)[0]
    o, f, cx, cy = bank.pair_params_.loc[pair, ["orientation", "spatial_frequency", "x", "y"]]
    phases = np.arange(0, 360, 15)
    stack = np.stack([grating(size, o, f, p, centre=(cx, cy)) for p in phases])
    features = bank.transform(stack)
    table = bank.filter_params_
    complex_col = np.flatnonzero((table["kind"] == "complex") & (table["pair"] == pair))[0]
    simple_col = np.flatnonzero(
        (table["kind"] == "simple") & (table["pair"] == pair) & (table["phase"] == 0)
    )[0]
    complex_response = features[:, complex_col]
    simple_response = features[:, simple_col]
    assert complex_response.std() / complex_response.mean() < 0.02
    assert simple_response.min() == pytest.approx(0.0, abs=1e-6)  # rectified half cycle
    assert simple_response.max() > 0.9 * complex_response.mean()
    # the simple cell follows the grating phase: maximal at the filter's own phase (0)
    assert phases[np.argmax(simple_response)] == 0


def test_orientation_tuning_peaks_at_the_preferred_orientation():
    size = 32
    bank = GaborFilterBank(
        n_orientations=8, spatial_frequencies=(0.12,), sizes=(4.0,), stride=8, kind="complex"
    ).fit(np.zeros((1, size, size)))
    orientations = np.arange(0, 180, 7.5)
    for pair in central_pair(bank):
        preferred, f = bank.pair_params_.loc[pair, ["orientation", "spatial_frequency"]]
        responses = np.array(
            [
                np.mean([bank.transform(grating(size, o, f, p)[None])[0, pair] for p in (0, 90)])
                for o in orientations
            ]
        )
        peak = orientations[np.argmax(responses)]
        assert min(abs(peak - preferred), 180 - abs(peak - preferred)) <= 7.5
        orthogonal = orientations[np.argmin(np.abs(orientations - (preferred + 90) % 180))]
        assert responses[orientations == orthogonal][0] < 0.2 * responses.max()


def test_pipeline_clone_and_cross_val_predict(images):
    rng = np.random.default_rng(0)
    y = rng.normal(size=len(images[:200]))
    model = make_pipeline(GaborFilterBank(**SMALL_BANK), RidgeCV())
    pred = cross_val_predict(clone(model), images[:200], y, cv=3)
    assert pred.shape == (200,)
    bank = GaborFilterBank(**SMALL_BANK).fit(images[:5])
    assert len(bank.get_feature_names_out()) == bank.n_features_out_
    assert clone(bank).get_params() == bank.get_params()


def test_bank_parameter_and_size_errors():
    zeros = np.zeros((2, 16, 16))
    with pytest.raises(ValueError, match="below 0.5"):
        GaborFilterBank(spatial_frequencies=(0.6,)).fit(zeros)
    with pytest.raises(ValueError, match="kind must be"):
        GaborFilterBank(kind="energy").fit(zeros)
    with pytest.raises(ValueError, match="stride"):
        GaborFilterBank(stride=0).fit(zeros)
    with pytest.raises(ValueError, match="sizes"):
        GaborFilterBank(sizes=()).fit(zeros)
    bank = GaborFilterBank(**SMALL_BANK).fit(zeros)
    with pytest.raises(ValueError, match="fitted to"):
        bank.transform(np.zeros((2, 20, 20)))
    with pytest.raises(ValueError, match="GiB"):
        GaborFilterBank(stride=1, n_orientations=16).fit(np.zeros((1, 256, 256)))


# ------------------------------------------------------------------------------ LNP model
def _simulate(images, kind, seed=0):
    """Responses of a true LNP simple cell or energy-model complex cell (Poisson counts)."""
    lum = images_to_luminance(images).reshape(len(images), -1).astype(float)
    size = images.shape[1]
    g0 = true_gabor(size, 30.0, 0.14, 3.0).ravel()
    g90 = true_gabor(size, 30.0, 0.14, 3.0, phase=90.0).ravel()
    e, o = lum @ g0, lum @ g90
    e, o = (e - e.mean()) / e.std(), (o - o.mean()) / o.std()
    rate = np.logaddexp(0.0, 1.5 * e - 0.5) if kind == "simple" else 0.5 * (e**2 + o**2)
    counts = np.random.default_rng(seed).poisson(np.stack([rate] * 4))  # 4 repeats
    return counts.mean(axis=0), rate, g0.reshape(size, size)


BANK_24 = GaborFilterBank(spatial_frequencies=(0.1, 0.16), sizes=(2.5, 4.0), stride=4)


def r2(a, b):
    return np.corrcoef(a, b)[0, 1] ** 2


def test_lnp_recovers_a_gabor_filter_and_beats_a_constant(images):
    y, rate, g0 = _simulate(images, "simple")
    train, test = slice(0, 1500), slice(1500, None)
    model = LNPoissonModel(filter_bank=BANK_24).fit(images[train], y[train])
    assert model.filter_.shape == (1, 24, 24)
    assert np.corrcoef(model.filter_[0].ravel(), g0.ravel())[0, 1] > 0.8
    pred = model.predict(images[test])
    assert pred.shape == (300,) and (pred > 0).all()
    constant = np.full_like(pred, y[train].mean())

    def deviance(mu):
        t = y[test]
        return 2 * np.mean(np.where(t > 0, t * np.log(np.maximum(t, 1e-12) / mu), 0) - (t - mu))

    assert deviance(pred) < 0.7 * deviance(constant)
    assert r2(pred, rate[test]) > 0.7
    assert model.validation_deviance_.shape == (5, 1)


def test_energy_model_wins_on_complex_cells_and_lnp_keeps_up_on_simple_cells(images):
    train, test = slice(0, 1500), slice(1500, None)
    scores = {}
    for kind in ("simple", "complex"):
        y, rate, _ = _simulate(images, kind)
        lnp = LNPoissonModel(filter_bank=BANK_24).fit(images[train], y[train])
        energy = GaborEnergyModel(filter_bank=BANK_24).fit(images[train], y[train])
        scores[kind] = {
            "lnp": r2(lnp.predict(images[test]), rate[test]),
            "energy": r2(energy.predict(images[test]), rate[test]),
        }
    assert scores["complex"]["energy"] > 0.6
    assert scores["complex"]["lnp"] < 0.2
    assert scores["simple"]["lnp"] > 0.7
    assert scores["simple"]["lnp"] > scores["simple"]["energy"] - 0.15


def test_energy_model_nonlinearity_uses_exact_leave_one_out_predictions():
    rng = np.random.default_rng(0)
    imgs = rng.normal(size=(40, 12, 12))
    y = rng.normal(size=(40, 2)) + imgs[:, 5, 5, None]
    bank = GaborFilterBank(n_orientations=2, spatial_frequencies=(0.2,), sizes=(2.0,), stride=4)
    model = GaborEnergyModel(filter_bank=bank, alphas=(1.0, 10.0, 100.0)).fit(imgs, y)
    features = model.scaler_.transform(model.filter_bank_.transform(imgs))
    model.ridge_ = RidgeCV(alphas=(1.0, 10.0, 100.0), alpha_per_target=True, store_cv_results=True)
    model.ridge_.fit(features, y)
    loo = model._leave_one_out_predictions(features, y, np.array([1.0, 10.0, 100.0]))
    for k in range(2):
        alpha = model.ridge_.alpha_[k]
        brute = [
            Ridge(alpha=alpha)
            .fit(np.delete(features, i, 0), np.delete(y[:, k], i))
            .predict(features[i : i + 1])[0]
            for i in range(len(y))
        ]
        np.testing.assert_allclose(loo[:, k], brute, rtol=1e-5, atol=1e-6)


def test_energy_and_lnp_clone_and_cross_val_predict(images):
    y, _, _ = _simulate(images[:240], "simple")
    small = GaborFilterBank(**SMALL_BANK)
    for model in (
        GaborEnergyModel(filter_bank=small),
        GaborEnergyModel(filter_bank=small, output_nonlinearity=False),
        LNPoissonModel(filter_bank=small, alphas=(1.0, 0.1)),
    ):
        pred = cross_val_predict(clone(model), images[:240], y, cv=2)
        assert pred.shape == (240,) and np.isfinite(pred).all()


def test_lnp_is_deterministic_and_handles_several_neurons(images):
    y1, _, _ = _simulate(images[:400], "simple", seed=1)
    y2, _, _ = _simulate(images[:400], "complex", seed=2)
    y = np.stack([y1, y2], axis=1)
    small = GaborFilterBank(**SMALL_BANK)
    a = LNPoissonModel(filter_bank=small, link="exp").fit(images[:400], y)
    b = LNPoissonModel(filter_bank=small, link="exp").fit(images[:400], y)
    np.testing.assert_array_equal(a.predict(images[:50]), b.predict(images[:50]))
    assert a.predict(images[:50]).shape == (50, 2)
    assert a.coef_.shape == (2, 2 * len(a.filter_bank_.filters_))
    # the pixel filter is the combination of the Gabor filters with the coefficients
    gabors = a.filter_bank_.filters_.reshape(-1, 24 * 24).astype(float)
    np.testing.assert_allclose(
        (a.coef_ @ gabors).reshape(a.filter_.shape), a.filter_, rtol=1e-4, atol=1e-8
    )


def test_classical_models_reject_bad_targets(images):
    with pytest.raises(ValueError, match="non-negative"):
        LNPoissonModel().fit(images[:20], -np.ones(20))
    with pytest.raises(ValueError, match="20 images but y has 19"):
        GaborEnergyModel().fit(images[:20], np.ones(19))
    with pytest.raises(ValueError, match="NaN"):
        GaborEnergyModel().fit(images[:20], np.full(20, np.nan))
    with pytest.raises(ValueError, match="link"):
        LNPoissonModel(link="relu").fit(images[:20], np.ones(20))
    with pytest.raises(TypeError, match="GaborFilterBank"):
        GaborEnergyModel(filter_bank="gabor").fit(images[:20], np.ones(20))


# ---------------------------------------------------------------------------- retina LN
def _retina_ln_data(n_frames, seed):
    rng = np.random.default_rng(seed)
    size, n_lags = 8, 10
    movie = rng.normal(size=(n_frames, size, size))
    y, x = np.mgrid[0:size, 0:size]
    space = np.exp(-((x - 3.5) ** 2 + (y - 4.0) ** 2) / (2 * 1.5**2))
    lags = np.arange(n_lags)
    time_course = np.sin(np.pi * lags / 6) * np.exp(-lags / 4)  # biphasic
    true_filter = time_course[:, None, None] * space  # lag l = l frames before the bin
    true_filter /= np.linalg.norm(true_filter)
    g = np.zeros(n_frames - n_lags + 1)
    for lag in range(n_lags):
        g += movie[n_lags - 1 - lag : n_frames - lag].reshape(len(g), -1) @ true_filter[lag].ravel()

    def nonlinearity(drive):
        return 6.0 * expit(2.0 * drive - 1.0)

    rate = nonlinearity(g)
    counts = np.concatenate([np.zeros(n_lags - 1), rng.poisson(rate)])
    return movie, counts, true_filter, g, rate, nonlinearity


@pytest.mark.parametrize("nonlinearity", ["binned", "softplus", "exp"])
def test_retina_ln_recovers_filter_and_nonlinearity(nonlinearity):
    movie, counts, true_filter, _, _, true_nl = _retina_ln_data(20000, seed=0)
    model = RetinaLNModel(n_lags=10, nonlinearity=nonlinearity).fit(movie, counts)
    assert model.filter_.shape == (1, 10, 8, 8)
    assert np.corrcoef(model.filter_[0].ravel(), true_filter.ravel())[0, 1] > 0.95
    test_movie, _, _, g_test, rate_test, _ = _retina_ln_data(3000, seed=1)
    pred = model.predict(test_movie)
    assert pred.shape == rate_test.shape
    # the true nonlinearity saturates: the nonparametric one follows it, softplus cannot bend
    # down and exp even less
    floor = {"binned": 0.92, "softplus": 0.88, "exp": 0.6}[nonlinearity]
    assert r2(pred, rate_test) > floor
    if nonlinearity == "binned":  # nonparametric: the shape itself must match
        z = np.linspace(-1.5, 1.5, 7)
        drive = model.generator_mean_[0] + z * model.generator_std_[0]  # fitted-filter units
        scale = np.std(g_test) / model.generator_std_[0]
        fitted = model.apply_nonlinearity(z[:, None])[:, 0]
        np.testing.assert_allclose(fitted, true_nl(drive * scale), rtol=0.15, atol=0.05)


def test_retina_ln_handles_several_cells_and_alignment():
    movie, counts, _, _, _, _ = _retina_ln_data(4000, seed=2)
    two = np.stack([counts, counts[::-1].copy()], axis=1)
    model = RetinaLNModel(n_lags=10).fit(movie, two)
    assert model.filter_.shape == (2, 10, 8, 8)
    assert model.predict(movie).shape == (4000 - 9, 2)
    assert model.transform(movie).shape == (4000 - 9, 2)
    np.testing.assert_allclose(model.transform(movie).mean(axis=0), 0.0, atol=1e-8)


def test_retina_ln_errors():
    movie, counts, _, _, _, _ = _retina_ln_data(300, seed=3)
    with pytest.raises(ValueError, match="n_frames, H, W"):
        RetinaLNModel(n_lags=10).fit(movie[0], counts)
    with pytest.raises(ValueError, match="300 frames but counts has 299"):
        RetinaLNModel(n_lags=10).fit(movie, counts[:299])
    with pytest.raises(ValueError, match="no spikes"):
        RetinaLNModel(n_lags=10).fit(movie, np.zeros(300))
    with pytest.raises(ValueError, match="nonlinearity must be"):
        RetinaLNModel(nonlinearity="relu").fit(movie, counts)
    model = RetinaLNModel(n_lags=10).fit(movie, counts)
    with pytest.raises(ValueError, match="fewer than n_lags"):
        model.predict(movie[:5])
    with pytest.raises(ValueError, match="fitted on"):
        model.predict(np.zeros((50, 6, 6)))
