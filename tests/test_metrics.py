"""Tests for course_tools.metrics: scipy, closed forms, hand-computed arrays, simulations."""

import statistics
import warnings

import numpy as np
import pytest
from scipy import stats

from course_tools.metrics import (
    check_responses,
    explainable_variance,
    feve,
    pearson_r,
    spearman_brown,
    split_half_reliability,
)

# ---------------------------------------------------------------------------------------------
# Independent references written with plain Python loops (statistics.variance uses ddof=1)
# ---------------------------------------------------------------------------------------------


def _loop_fev_feve(responses, predictions=None):
    """FEV and FEVE per neuron from Cadena et al. (2019), one neuron and one stimulus at a time."""
    n_repeats, n_stimuli, n_neurons = responses.shape
    fev, feve_values = [], []
    for n in range(n_neurons):
        per_stimulus_var, all_trials, squared_errors = [], [], []
        for s in range(n_stimuli):
            trials = [float(x) for x in responses[:, s, n] if not np.isnan(x)]
            all_trials += trials
            if len(trials) >= 2:
                per_stimulus_var.append(statistics.variance(trials))
            if predictions is not None:
                squared_errors += [(float(predictions[s, n]) - x) ** 2 for x in trials]
        noise = statistics.fmean(per_stimulus_var)
        total = statistics.variance(all_trials)
        fev.append((total - noise) / total)
        if predictions is not None:
            mse = statistics.fmean(squared_errors)
            feve_values.append(1 - (mse - noise) / (total - noise))
    return np.array(fev), np.array(feve_values)


def _signal_plus_noise(n_stimuli, noise_var, n_repeats, seed, signal_var=1.0):
    """Responses = signal (one value per stimulus and neuron) + Gaussian noise per trial."""
    rng = np.random.default_rng(seed)
    noise_var = np.asarray(noise_var, dtype=float)
    signal = rng.normal(0.0, np.sqrt(signal_var), size=(n_stimuli, noise_var.size))
    noise = rng.normal(size=(n_repeats, n_stimuli, noise_var.size)) * np.sqrt(noise_var)
    return signal, signal[None] + noise


# ---------------------------------------------------------------------------------------------
# pearson_r
# ---------------------------------------------------------------------------------------------


def test_pearson_r_matches_scipy_column_by_column():
    rng = np.random.default_rng(0)
    y_true = rng.normal(size=(50, 6))
    y_pred = 0.5 * y_true + rng.normal(size=(50, 6)) * np.linspace(0.1, 3, 6)
    expected = [stats.pearsonr(y_true[:, j], y_pred[:, j]).statistic for j in range(6)]
    np.testing.assert_allclose(pearson_r(y_true, y_pred), expected, rtol=1e-12)


def test_pearson_r_accepts_1d_and_is_exact_for_linear_relations():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    np.testing.assert_allclose(pearson_r(x, 3 * x - 1), [1.0], rtol=1e-14)
    np.testing.assert_allclose(pearson_r(x, -x), [-1.0], rtol=1e-14)
    assert pearson_r(x, x).shape == (1,)


def test_pearson_r_is_nan_for_a_constant_column_even_with_rounding():
    # The mean of seven 0.1s is not exactly 0.1 in floating point: r must still be NaN, not 0.
    y_true = np.column_stack([np.full(7, 0.1), np.arange(7.0)])
    y_pred = np.column_stack([np.arange(7.0), np.arange(7.0) ** 2])
    r = pearson_r(y_true, y_pred)
    assert np.isnan(r[0])
    assert r[1] == pytest.approx(stats.pearsonr(np.arange(7.0), np.arange(7.0) ** 2).statistic)
    assert np.isnan(pearson_r(np.arange(5.0), np.full(5, 2.0))[0])


@pytest.mark.parametrize(
    ("y_true", "y_pred", "message"),
    [
        (np.zeros((5, 2)), np.zeros((5, 3)), "same shape"),
        (np.zeros((1, 2)), np.zeros((1, 2)), "at least 2 samples"),
        (np.array([1.0, np.nan, 2.0]), np.array([1.0, 2.0, 3.0]), "NaN or inf"),
        (np.array([1.0, 2.0, 3.0]), np.array([1.0, np.inf, 3.0]), "NaN or inf"),
        (np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), r"\(n_samples,\) or \(n_samples, n_targets\)"),
    ],
)
def test_pearson_r_errors(y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        pearson_r(y_true, y_pred)


# ---------------------------------------------------------------------------------------------
# spearman_brown
# ---------------------------------------------------------------------------------------------


def test_spearman_brown_closed_form():
    assert spearman_brown(0.5) == pytest.approx(2 / 3)  # 2 * 0.5 / 1.5
    assert spearman_brown(0.25, factor=3) == pytest.approx(0.5)  # 0.75 / 1.5
    assert spearman_brown(0.0) == 0.0
    assert spearman_brown(1.0, factor=7) == pytest.approx(1.0)
    assert isinstance(spearman_brown(0.3), float)
    r = np.array([[0.1, 0.4], [0.7, 0.9]])
    np.testing.assert_allclose(spearman_brown(r), 2 * r / (1 + r), rtol=1e-15)
    # factor 1/2 undoes factor 2: the reliability of half the repeats
    np.testing.assert_allclose(spearman_brown(spearman_brown(r), factor=0.5), r, rtol=1e-13)


@pytest.mark.parametrize("factor", [0, -2])
def test_spearman_brown_rejects_non_positive_factor(factor):
    with pytest.raises(ValueError, match="factor must be positive"):
        spearman_brown(0.5, factor=factor)


# ---------------------------------------------------------------------------------------------
# explainable_variance and feve
# ---------------------------------------------------------------------------------------------


def test_fev_and_feve_on_a_hand_computed_array():
    # One neuron, 2 repeats x 2 stimuli: trials (1, 3) and (3, 5).
    # noise s2 = mean(var(1, 3), var(3, 5)) = mean(2, 2) = 2
    # total V = var(1, 3, 3, 5; ddof=1) = 8 / 3
    # FEV = (8/3 - 2) / (8/3) = 1/4
    # predicting the stimulus means (2, 4): MSE = 1, FEVE = 1 - (1 - 2) / (8/3 - 2) = 5/2
    responses = np.array([[1.0, 3.0], [3.0, 5.0]])[:, :, None]
    assert explainable_variance(responses) == pytest.approx([0.25])
    assert feve(responses, np.array([[2.0], [4.0]])) == pytest.approx([2.5])
    assert feve(responses, np.array([2.0, 4.0])) == pytest.approx([2.5])  # 1-D for one neuron


def test_fev_and_feve_match_loops_with_nan_repeats_per_neuron():
    rng = np.random.default_rng(1)
    responses = rng.poisson(3.0, size=(4, 6, 3)).astype(float) + rng.normal(size=(1, 6, 3))
    responses[3, :, 0] = np.nan  # neuron 0 recorded with 3 repeats only
    responses[1:, 2, 1] = np.nan  # neuron 1: stimulus 2 seen once (no noise estimate there)
    responses[0, 4, 1] = np.nan
    predictions = rng.normal(3.0, 1.0, size=(6, 3))
    expected_fev, expected_feve = _loop_fev_feve(responses, predictions)
    np.testing.assert_allclose(explainable_variance(responses), expected_fev, rtol=1e-12)
    np.testing.assert_allclose(feve(responses, predictions), expected_feve, rtol=1e-12)
    # neuron 2 has no NaN: its values must not depend on the other neurons' missing repeats
    np.testing.assert_allclose(
        feve(responses[:, :, 2:], predictions[:, 2:]), expected_feve[2:], rtol=1e-12
    )


def test_feve_of_the_true_mean_is_one_and_of_a_constant_is_zero():
    noise_var = np.array([0.5, 1.0, 2.0, 4.0])
    signal, responses = _signal_plus_noise(4000, noise_var, n_repeats=4, seed=2)
    fev = explainable_variance(responses)
    np.testing.assert_allclose(fev, 1 / (1 + noise_var), atol=0.03)  # V = 1 + v_n, s2 = v_n
    np.testing.assert_allclose(feve(responses, signal), 1.0, atol=0.05)
    grand_mean = np.broadcast_to(responses.mean(axis=(0, 1)), signal.shape)
    np.testing.assert_allclose(feve(responses, grand_mean), 0.0, atol=0.01)


def test_fev_of_a_constant_neuron_is_nan_not_a_number_out_of_nowhere():
    responses = np.ones((3, 5, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(explainable_variance(responses)[0])


def test_metric_errors():
    with pytest.raises(ValueError, match=r"responses\[\.\.\., None\]"):
        explainable_variance(np.zeros((4, 5)))
    with pytest.raises(ValueError, match=r"\(n_repeats, n_stimuli, n_neurons\)"):
        explainable_variance(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="inf"):
        explainable_variance(np.full((2, 3, 1), np.inf))
    with pytest.raises(TypeError, match="not a dataset object"):
        check_responses({"responses": 1})
    no_repeats = np.ones((2, 3, 2))
    no_repeats[1, :, 1] = np.nan  # neuron 1 never has 2 recorded repeats
    with pytest.raises(ValueError, match=r"Neurons \[1\] have no stimulus with 2 or more"):
        explainable_variance(no_repeats)
    responses = np.random.default_rng(0).normal(size=(3, 5, 2))
    with pytest.raises(ValueError, match=r"predictions must have shape \(n_stimuli, n_neurons\)"):
        feve(responses, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="predictions contain NaN"):
        feve(responses, np.full((5, 2), np.nan))


def test_check_responses_returns_float64():
    out = check_responses(np.ones((2, 3, 4), dtype=np.int32))
    assert out.dtype == np.float64
    assert out.shape == (2, 3, 4)


# ---------------------------------------------------------------------------------------------
# split_half_reliability
# ---------------------------------------------------------------------------------------------


def test_split_half_reliability_matches_the_closed_form_for_signal_plus_noise():
    """For r_k(s) = mu(s) + noise with Var(mu) = v_s and noise variance v_n, a half of n/2
    repeats has mean mu + noise of variance 2 v_n / n, so the halves correlate with
    c = v_s / (v_s + 2 v_n / n), and Spearman-Brown gives 2c / (1 + c) = v_s / (v_s + v_n / n):
    the reliability of the mean over all n repeats."""
    n_repeats = 6
    noise_var = np.array([0.5, 2.0, 6.0, 12.0])
    _, responses = _signal_plus_noise(3000, noise_var, n_repeats, seed=3)
    expected = 1.0 / (1.0 + noise_var / n_repeats)
    np.testing.assert_allclose(split_half_reliability(responses, seed=0), expected, atol=0.03)


def test_split_half_reliability_is_the_mean_of_corrected_split_correlations():
    responses = np.random.default_rng(4).normal(size=(5, 40, 3)) + np.linspace(0, 2, 40)[:, None]
    rng = np.random.default_rng(7)  # the same stream the function draws its permutations from
    corrected = []
    for _ in range(4):
        order = rng.permutation(5)
        a, b = responses[order[:2]].mean(axis=0), responses[order[2:]].mean(axis=0)
        r = np.array([stats.pearsonr(a[:, j], b[:, j]).statistic for j in range(3)])
        corrected.append(2 * r / (1 + r))
    np.testing.assert_allclose(
        split_half_reliability(responses, n_splits=4, seed=7), np.mean(corrected, axis=0)
    )


def test_split_half_reliability_handles_nan_repeats_per_neuron_quietly():
    _, responses = _signal_plus_noise(300, [1.0, 1.0], n_repeats=6, seed=5)
    with_nan = responses.copy()
    with_nan[4:, :, 0] = np.nan  # neuron 0 recorded with 4 repeats only
    with_nan[:3, :20, 0] = np.nan  # ... and a single one on the first 20 stimuli
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Mean of empty slice" noise
        both = split_half_reliability(with_nan, seed=11)
    alone = split_half_reliability(with_nan[:, :, 1:], seed=11)
    # a neuron's value does not depend on another neuron's NaN
    assert both[1] == pytest.approx(alone[0], rel=1e-12)
    assert np.isfinite(both).all()
    assert 0.5 < both[0] < both[1]  # fewer repeats: less reliable (closed forms 0.8 and 0.86)


def test_split_half_reliability_is_deterministic_per_seed():
    _, responses = _signal_plus_noise(50, [1.0, 3.0], n_repeats=4, seed=6)
    a = split_half_reliability(responses, seed=3)
    np.testing.assert_array_equal(a, split_half_reliability(responses, seed=3))
    assert not np.array_equal(a, split_half_reliability(responses, seed=4))


def test_split_half_reliability_errors():
    with pytest.raises(ValueError, match="at least 2 repeats"):
        split_half_reliability(np.ones((1, 5, 2)))
    with pytest.raises(ValueError, match="n_splits must be at least 1"):
        split_half_reliability(np.ones((2, 5, 2)), n_splits=0)
    with pytest.raises(TypeError, match="n_splits must be an int"):
        split_half_reliability(np.ones((2, 5, 2)), n_splits=2.5)
    with pytest.raises(TypeError, match="seed must be"):
        split_half_reliability(np.ones((2, 5, 2)), seed="zero")
