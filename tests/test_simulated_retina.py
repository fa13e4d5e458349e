"""Tests of the simulated retina (LN-LN subunit cells) and of the spike-triggered average."""

import numpy as np
import pytest

from course_tools.datasets import NeuralDataset, RetinaRecording, simulated_retina
from course_tools.datasets.simulated_retina import BIN_SECONDS
from course_tools.retina import spike_triggered_average
from course_tools.stimuli import naturalistic_movie, white_noise_movie

SIZE = 50


def checkerboard_noise(n_frames, checker=3, size=SIZE, seed=0):
    """Binary white-noise checkerboard (+1/-1 checkers of ``checker`` pixels), as in retina
    white-noise experiments: white noise upsampled in space."""
    coarse = white_noise_movie(n_frames, size=-(-size // checker), seed=seed)
    return np.repeat(np.repeat(coarse, checker, axis=1), checker, axis=2)[:, :size, :size]


@pytest.fixture(scope="module")
def white_noise_recording():
    movie = checkerboard_noise(10000)
    return movie, simulated_retina(movie, n_cells=8, seed=0)


@pytest.fixture(scope="module")
def small_recording():
    train = naturalistic_movie(1500, size=SIZE, seed=1)
    test = naturalistic_movie(200, size=SIZE, seed=2)
    return train, test, simulated_retina(train, test, n_cells=5, n_test_repeats=7, seed=4)


# ------------------------------------------------------------------ layout
def test_layout(small_recording):
    train, test, rec = small_recording
    assert isinstance(rec, RetinaRecording)
    assert isinstance(rec.train, NeuralDataset) and isinstance(rec.test, NeuralDataset)
    assert rec.train.responses.shape == (1, 1500, 5)
    assert rec.test.responses.shape == (7, 200, 5)
    np.testing.assert_array_equal(rec.train.stimuli, train)
    np.testing.assert_array_equal(rec.test.stimuli, test)
    assert list(rec.test.stimulus_meta["frame"]) == list(range(200))
    np.testing.assert_allclose(rec.test.stimulus_meta["time"], np.arange(200) * 0.01)
    meta = rec.train.neuron_meta
    assert set(meta["area"]) == {"RGC"} and set(meta["cell_type"]) <= {"ON", "OFF"}
    centre = (SIZE - 1) / 2
    assert (np.abs(meta[["x", "y"]] - centre) <= 0.08 * SIZE).all().all()
    truth = rec.train.ground_truth
    assert truth["linear_filter"].shape == (5, 40, SIZE, SIZE)
    assert truth["subunit_filters"].shape == (5, 19, SIZE, SIZE)
    np.testing.assert_allclose(truth["subunit_filters"].sum(axis=(2, 3)), 1.0, rtol=1e-4)
    assert truth["temporal_filters"].shape == (5, 40)
    np.testing.assert_allclose(truth["pooling_weights"].sum(axis=1), 1.0)
    assert truth["rates"].shape == (1500, 5) and (truth["rates"] >= 0).all()
    assert (rec.train.responses == np.round(rec.train.responses)).all()


def test_same_seed_same_cells_and_spikes(small_recording):
    train, test, rec = small_recording
    again = simulated_retina(train, test, n_cells=5, n_test_repeats=7, seed=4)
    np.testing.assert_array_equal(rec.train.responses, again.train.responses)
    np.testing.assert_array_equal(rec.test.responses, again.test.responses)
    other = simulated_retina(train, test, n_cells=5, n_test_repeats=7, seed=5)
    assert not np.array_equal(rec.test.responses, other.test.responses)


def test_without_test_movie():
    rng = np.random.default_rng(0)
    rec = simulated_retina(rng.normal(size=(300, 20, 20)), n_cells=2, seed=0, n_train_repeats=3)
    assert rec.test is None and rec.train.responses.shape == (3, 300, 2)


# ------------------------------------------------------------------ rates
def test_mean_rate_is_calibrated_on_the_training_movie(small_recording):
    _, _, rec = small_recording
    target = rec.train.neuron_meta["mean_rate_hz"].to_numpy() * BIN_SECONDS
    np.testing.assert_allclose(rec.train.ground_truth["rates"].mean(axis=0), target, rtol=1e-10)
    assert (
        (rec.train.neuron_meta["mean_rate_hz"] >= 10)
        & (rec.train.neuron_meta["mean_rate_hz"] <= 30)
    ).all()


def test_test_movie_is_seen_by_the_same_cells(small_recording):
    train, _, rec = small_recording
    # the first frames of the training movie, shown as a test movie, give the same rates
    again = simulated_retina(train, train[:200], n_cells=5, n_test_repeats=2, seed=4)
    np.testing.assert_allclose(
        again.test.ground_truth["rates"], rec.train.ground_truth["rates"][:200], rtol=1e-10
    )


def test_spikes_are_poisson_around_the_rates():
    rng = np.random.default_rng(2)
    rec = simulated_retina(
        rng.normal(size=(1000, 30, 30)),
        rng.normal(size=(400, 30, 30)),
        n_cells=3,
        n_test_repeats=200,
        seed=1,
    )
    rates = rec.test.ground_truth["rates"]
    counts = rec.test.responses
    np.testing.assert_allclose(counts.mean(axis=(0, 1)), rates.mean(axis=0), rtol=0.05)
    busy = rates > 0.2
    fano = counts.var(axis=0, ddof=1)[busy] / counts.mean(axis=0)[busy]
    assert abs(np.median(fano) - 1.0) < 0.1


def test_on_and_off_cells_respond_to_light_steps_of_their_polarity():
    rng = np.random.default_rng(3)
    train = rng.normal(size=(2000, SIZE, SIZE))
    flash = np.zeros((300, SIZE, SIZE))
    flash[100:200] = 0.2  # light on at 1 s, off at 2 s
    rec = simulated_retina(train, flash, n_cells=8, seed=0, on_fraction=0.5)
    rates = rec.test.ground_truth["rates"]
    baseline = rates[80:100].mean(axis=0)
    onset, offset = rates[100:150].max(axis=0), rates[200:250].max(axis=0)
    on = (rec.test.neuron_meta["cell_type"] == "ON").to_numpy()
    assert on.sum() == 4
    assert (onset[on] > 10 * baseline[on]).all() and (offset[on] < 0.1 * onset[on]).all()
    assert (offset[~on] > 10 * baseline[~on]).all() and (onset[~on] < 0.1 * offset[~on]).all()


def test_rectified_subunits_respond_to_both_reversals_of_a_fine_grating():
    """Nonlinear spatial summation (Hochstein & Shapley 1976): a grating too fine for the
    linear receptive field still drives the cell at every contrast reversal (frequency
    doubling), which no linear-nonlinear model of the cell can do."""
    rng = np.random.default_rng(4)
    train = rng.normal(size=(2000, SIZE, SIZE))
    xx = np.arange(SIZE)[None, :] * np.ones((SIZE, 1))
    grating = 0.3 * np.sign(np.cos(2 * np.pi * xx / 6))
    movie = np.zeros((600, SIZE, SIZE))
    for k, start in enumerate(range(100, 600, 50)):
        movie[start : start + 50] = grating * (1 if k % 2 == 0 else -1)
    rec = simulated_retina(train, movie, n_cells=6, seed=0)
    rates = rec.test.ground_truth["rates"]
    baseline = rates[60:100].mean(axis=0)
    to_positive = np.mean([rates[s : s + 20].max(axis=0) for s in range(200, 600, 100)], axis=0)
    to_negative = np.mean([rates[s : s + 20].max(axis=0) for s in range(150, 600, 100)], axis=0)
    assert (to_positive > 10 * baseline).all() and (to_negative > 10 * baseline).all()
    # the effective linear front end barely sees the grating
    front_end = rec.test.ground_truth["linear_filter"]
    drive_fine = np.abs(np.tensordot(front_end, grating, axes=([2, 3], [0, 1]))).sum(axis=1)
    drive_flat = np.abs(
        np.tensordot(front_end, np.full((SIZE, SIZE), 0.3), axes=([2, 3], [0, 1]))
    ).sum(axis=1)
    assert (drive_fine < 0.1 * drive_flat).all()


def test_surround_can_be_switched_off():
    rng = np.random.default_rng(0)
    rec = simulated_retina(rng.normal(size=(500, 30, 30)), n_cells=3, seed=0, surround=False)
    assert (rec.train.neuron_meta["surround_weight"] == 0).all()


# ------------------------------------------------- STA versus ground truth
def test_sta_recovers_the_linear_front_end(white_noise_recording):
    movie, rec = white_noise_recording
    counts = rec.train.responses[0]
    sta = spike_triggered_average(movie, counts, n_lags=40)
    front_end = rec.train.ground_truth["linear_filter"]
    meta = rec.train.neuron_meta
    r_full, r_window = [], []
    for i in range(rec.train.n_neurons):
        r_full.append(np.corrcoef(sta[i].ravel(), front_end[i].ravel())[0, 1])
        cx, cy, half = round(meta["x"][i]), round(meta["y"][i]), round(3 * meta["centre_sd"][i])
        window = (slice(None), slice(cy - half, cy + half + 1), slice(cx - half, cx + half + 1))
        r_window.append(np.corrcoef(sta[i][window].ravel(), front_end[i][window].ravel())[0, 1])
    # about 1500 spikes per cell in 100 s of 3-pixel checkerboard noise; measured here
    # full-movie r about 0.4 (noise in 100,000 pixels x lags), within 3 centre SDs about 0.7
    assert np.median(r_window) > 0.6 and min(r_window) > 0.5
    assert np.median(r_full) > 0.3


# ------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("train", "test", "kwargs", "error", "message"),
    [
        (np.zeros((100, 20)), None, {}, ValueError, r"\(n_frames, H, W\)"),
        (np.zeros((100, 20, 20, 3)), None, {}, ValueError, "luminance"),
        (np.zeros((100, 5, 5)), None, {}, ValueError, "at least 10 x 10"),
        (np.ones((100, 20, 20)), None, {}, ValueError, "uniform"),
        ("noise", None, {}, TypeError, "numeric"),
        (None, np.zeros((10, 21, 20)), {}, ValueError, "size of the training frames"),
        (None, None, {"n_cells": 0}, ValueError, "n_cells"),
        (None, None, {"n_test_repeats": 0}, ValueError, "n_test_repeats"),
        (None, None, {"n_lags": 1}, ValueError, "n_lags"),
        (None, None, {"n_lags": 1000}, ValueError, "n_lags"),
        (None, None, {"on_fraction": 1.5}, ValueError, "on_fraction"),
        (None, None, {"mean_rate_hz": (10, 200)}, ValueError, "mean_rate_hz"),
        (None, None, {"seed": -1}, ValueError, "seed"),
    ],
)
def test_invalid_input(train, test, kwargs, error, message):
    if train is None:
        train = np.random.default_rng(0).normal(size=(100, 20, 20))
    with pytest.raises(error, match=message):
        simulated_retina(train, test, **kwargs)


# ------------------------------------------------------ spike-triggered average
def brute_force_sta(movie, counts, n_lags, center):
    n_frames = movie.shape[0]
    sta = np.zeros((n_lags, *movie.shape[1:]))
    total = 0.0
    for t in range(n_lags - 1, n_frames):
        total += counts[t]
        for lag in range(n_lags):
            window_mean = movie[n_lags - 1 - lag : n_frames - lag].mean(axis=0) if center else 0.0
            sta[lag] += counts[t] * (movie[t - lag] - window_mean)
    return sta / total


@pytest.mark.parametrize("center", [True, False])
def test_sta_matches_a_brute_force_loop(center):
    rng = np.random.default_rng(0)
    movie = rng.normal(size=(120, 4, 5)) + 0.3
    counts = rng.poisson(1.0, size=(120, 2)).astype(float)
    sta = spike_triggered_average(movie, counts, n_lags=7, center=center)
    assert sta.shape == (2, 7, 4, 5)
    for cell in range(2):
        expected = brute_force_sta(movie, counts[:, cell], 7, center)
        np.testing.assert_allclose(sta[cell], expected, atol=1e-12)
    single = spike_triggered_average(movie, counts[:, 0], n_lags=7, center=center)
    np.testing.assert_allclose(single, sta[0])


def test_sta_of_a_linear_gaussian_model_is_the_filter():
    """For y_t = b + sum_l k_l . s_{t-l} + noise with white stimulus of variance v,
    E[STA_l] = v k_l / b (Chichilnisky 2001)."""
    rng = np.random.default_rng(1)
    n_frames, n_lags, n_pixels, bias, variance = 200_000, 5, 6, 10.0, 1.0
    kernel = rng.normal(size=(n_lags, n_pixels))
    movie = rng.normal(scale=np.sqrt(variance), size=(n_frames, n_pixels))
    response = np.full(n_frames, bias) + rng.normal(size=n_frames)
    for lag in range(n_lags):
        response[lag:] += movie[: n_frames - lag] @ kernel[lag]
    sta = spike_triggered_average(movie, response, n_lags=n_lags)
    np.testing.assert_allclose(sta, variance * kernel / bias, atol=4e-3)


def test_sta_of_a_poisson_cell_is_proportional_to_its_filter():
    rng = np.random.default_rng(2)
    kernel = rng.normal(size=(3, 8, 8))
    kernel /= np.linalg.norm(kernel)
    movie = rng.normal(size=(50_000, 8, 8))
    drive = np.zeros(50_000)
    for lag in range(3):
        drive[lag:] += movie[: 50_000 - lag].reshape(-1, 64) @ kernel[lag].ravel()
    counts = rng.poisson(0.2 * np.exp(drive))
    sta = spike_triggered_average(movie, counts, n_lags=3)
    assert np.corrcoef(sta.ravel(), kernel.ravel())[0, 1] > 0.95


def test_sta_edge_cases_and_errors():
    movie = np.random.default_rng(0).normal(size=(50, 3, 3))
    silent = spike_triggered_average(movie, np.zeros((50, 2)), n_lags=4)
    assert np.isnan(silent).all()
    with pytest.raises(ValueError, match="same number of time bins"):
        spike_triggered_average(movie, np.ones(40), n_lags=4)
    with pytest.raises(ValueError, match="n_lags"):
        spike_triggered_average(movie, np.ones(50), n_lags=0)
    with pytest.raises(ValueError, match="finite"):
        spike_triggered_average(movie, np.full(50, np.nan), n_lags=2)
    with pytest.raises(ValueError, match="counts must have shape"):
        spike_triggered_average(movie, np.ones((50, 2, 2)), n_lags=2)
