"""Tests for course_tools.regression: RidgeCV against scikit-learn, neural_predictivity against
simulated populations with a known noise ceiling and against a hand-written PLS reference."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.base import clone
from sklearn.cross_decomposition import PLSRegression
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.linear_model import RidgeCV as SklearnRidgeCV
from sklearn.model_selection import GridSearchCV, KFold, ShuffleSplit, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import estimator_checks_generator

import course_tools.regression as regression
from course_tools.regression import DEFAULT_ALPHAS, PredictivityResult, RidgeCV, neural_predictivity

ALPHAS = np.logspace(-3, 6, 19)


def _regression_data(n_samples, n_features, seed=0):
    """Targets with very different signal-to-noise ratios, so they need different alphas."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features)) + 2.0  # non-zero means: the intercept matters
    W = rng.normal(size=(n_features, 5))
    noise_sd = np.array([0.1, 1.0, 5.0, 20.0, 100.0])
    Y = X @ W + 3.0 + rng.normal(size=(n_samples, 5)) * noise_sd
    return X, Y


PRIMAL = (80, 25)  # more samples than features: SVD of X
KERNEL = (40, 120)  # fewer samples than features: eigendecomposition of X X^T


# ---------------------------------------------------------------------------------------------
# RidgeCV against scikit-learn
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [PRIMAL, KERNEL], ids=["primal", "kernel"])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("alpha", [1e-3, 1.0, 300.0])
def test_fixed_alpha_equals_sklearn_ridge(shape, fit_intercept, alpha):
    X, Y = _regression_data(*shape)
    X_new = np.random.default_rng(9).normal(size=(7, shape[1]))
    ours = RidgeCV(alphas=[alpha], fit_intercept=fit_intercept).fit(X, Y)
    ref = Ridge(alpha=alpha, fit_intercept=fit_intercept).fit(X, Y)
    np.testing.assert_allclose(ours.predict(X_new), ref.predict(X_new), rtol=1e-6)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-6, atol=1e-10)
    np.testing.assert_array_equal(ours.alpha_, np.full(5, alpha))


@pytest.mark.parametrize("shape", [PRIMAL, KERNEL], ids=["primal", "kernel"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_chosen_alphas_equal_gridsearchcv_per_target(shape, fit_intercept):
    X, Y = _regression_data(*shape, seed=1)
    folds = list(KFold(5).split(X))
    ours = RidgeCV(alphas=ALPHAS, cv=folds, fit_intercept=fit_intercept).fit(X, Y)
    for j in range(Y.shape[1]):
        search = GridSearchCV(Ridge(fit_intercept=fit_intercept), {"alpha": ALPHAS}, cv=folds)
        search.fit(X, Y[:, j])
        assert ours.alpha_[j] == search.best_params_["alpha"]
        np.testing.assert_allclose(
            ours.cv_scores_[:, j], search.cv_results_["mean_test_score"], rtol=1e-7, atol=1e-9
        )
        np.testing.assert_allclose(
            ours.predict(X)[:, j], search.predict(X), rtol=1e-6, atol=1e-9 * np.abs(Y).max()
        )
    assert len(set(ours.alpha_)) >= 3, "the data must make targets choose different alphas"
    np.testing.assert_allclose(ours.best_score_, ours.cv_scores_.max(axis=0))


def test_int_cv_is_kfold_without_shuffle():
    X, Y = _regression_data(*PRIMAL, seed=2)
    by_int = RidgeCV(alphas=ALPHAS, cv=4).fit(X, Y)
    by_folds = RidgeCV(alphas=ALPHAS, cv=list(KFold(4).split(X))).fit(X, Y)
    np.testing.assert_array_equal(by_int.cv_scores_, by_folds.cv_scores_)


def test_any_splitter_works_and_matches_its_folds():
    X, Y = _regression_data(*KERNEL, seed=3)
    splitter = ShuffleSplit(n_splits=3, test_size=0.25, random_state=0)
    by_splitter = RidgeCV(alphas=ALPHAS, cv=splitter).fit(X, Y)
    by_iterable = RidgeCV(alphas=ALPHAS, cv=splitter.split(X)).fit(X, Y)
    np.testing.assert_array_equal(by_splitter.alpha_, by_iterable.alpha_)
    search = GridSearchCV(Ridge(), {"alpha": ALPHAS}, cv=splitter).fit(X, Y[:, 2])
    assert by_splitter.alpha_[2] == search.best_params_["alpha"]


def test_single_alpha_for_all_targets_matches_sklearn_ridgecv():
    X, Y = _regression_data(*PRIMAL, seed=4)
    folds = list(KFold(5).split(X))
    ours = RidgeCV(alphas=ALPHAS, cv=folds, alpha_per_target=False).fit(X, Y)
    ref = SklearnRidgeCV(alphas=ALPHAS, cv=folds).fit(X, Y)
    assert isinstance(ours.alpha_, float)
    assert ours.alpha_ == ref.alpha_
    np.testing.assert_allclose(ours.best_score_, ref.best_score_, rtol=1e-7)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-6, atol=1e-8)


def test_one_dimensional_y_gives_sklearn_shapes():
    X, Y = _regression_data(*PRIMAL, seed=5)
    one = RidgeCV(alphas=ALPHAS).fit(X, Y[:, 1])
    two = RidgeCV(alphas=ALPHAS).fit(X, Y[:, [1]])
    ref = Ridge(alpha=one.alpha_).fit(X, Y[:, 1])
    assert isinstance(one.alpha_, float) and isinstance(one.intercept_, float)
    assert one.coef_.shape == ref.coef_.shape == (X.shape[1],)
    assert one.cv_scores_.shape == (ALPHAS.size, 1)
    assert one.predict(X).shape == (X.shape[0],)
    assert two.coef_.shape == (1, X.shape[1]) and two.predict(X).shape == (X.shape[0], 1)
    np.testing.assert_allclose(one.predict(X), ref.predict(X), rtol=1e-6)
    np.testing.assert_allclose(one.predict(X), two.predict(X)[:, 0], rtol=1e-12)


@pytest.mark.parametrize("shape", [PRIMAL, KERNEL], ids=["primal", "kernel"])
def test_batch_size_does_not_change_results(shape):
    X, Y = _regression_data(*shape, seed=6)
    reference = RidgeCV(alphas=ALPHAS, batch_size=None).fit(X, Y)
    for batch_size in (1, 2, 4):
        batched = RidgeCV(alphas=ALPHAS, batch_size=batch_size).fit(X, Y)
        np.testing.assert_array_equal(batched.alpha_, reference.alpha_)
        np.testing.assert_allclose(batched.cv_scores_, reference.cv_scores_, rtol=1e-10)
        np.testing.assert_allclose(batched.coef_, reference.coef_, rtol=1e-9, atol=1e-12)


def test_float32_input_is_computed_in_float64():
    X, Y = _regression_data(*KERNEL, seed=7)
    X32 = X.astype(np.float32)
    from_32 = RidgeCV(alphas=ALPHAS).fit(X32, Y)
    from_64 = RidgeCV(alphas=ALPHAS).fit(X32.astype(np.float64), Y)
    assert from_32.coef_.dtype == np.float64
    np.testing.assert_array_equal(from_32.coef_, from_64.coef_)


def test_clone_cross_val_predict_and_pipeline():
    X, Y = _regression_data(*PRIMAL, seed=8)
    model = RidgeCV(alphas=ALPHAS, cv=4, batch_size=3)
    copy = clone(model)
    np.testing.assert_array_equal(copy.alphas, model.alphas)
    assert copy.cv == 4 and copy.batch_size == 3
    assert not hasattr(copy, "coef_")

    outer = KFold(5, shuffle=True, random_state=0)
    predicted = cross_val_predict(model, X, Y, cv=outer)
    by_hand = np.empty_like(Y)
    for train, test in outer.split(X):
        by_hand[test] = (
            RidgeCV(alphas=ALPHAS, cv=4, batch_size=3).fit(X[train], Y[train]).predict(X[test])
        )
    np.testing.assert_allclose(predicted, by_hand, rtol=1e-12)

    pipeline = make_pipeline(StandardScaler(), RidgeCV(alphas=ALPHAS)).fit(X, Y)
    Xs = StandardScaler().fit_transform(X)
    np.testing.assert_allclose(
        pipeline.predict(X), RidgeCV(alphas=ALPHAS).fit(Xs, Y).predict(Xs), rtol=1e-10
    )


def test_feature_names_from_a_dataframe():
    X, Y = _regression_data(*PRIMAL, seed=9)
    frame = pd.DataFrame(X, columns=[f"unit_{i}" for i in range(X.shape[1])])
    model = RidgeCV(alphas=ALPHAS).fit(frame, Y)
    assert list(model.feature_names_in_) == list(frame.columns)
    assert model.n_features_in_ == X.shape[1]


def test_constant_target_warns_and_gets_zero_weights_not_nan():
    X, Y = _regression_data(*KERNEL, seed=10)
    Y_const = np.column_stack([Y[:, :2], np.full(len(Y), 0.1)])
    with pytest.warns(UserWarning, match=r"1 constant target\(s\) \(columns \[2\]\)"):
        model = RidgeCV(alphas=ALPHAS).fit(X, Y_const)
    assert np.all(model.coef_[2] == 0.0)
    assert model.intercept_[2] == 0.1
    np.testing.assert_array_equal(model.predict(X)[:, 2], 0.1)
    assert np.isfinite(model.cv_scores_).all()
    # the other targets are untouched
    clean = RidgeCV(alphas=ALPHAS).fit(X, Y[:, :2])
    np.testing.assert_allclose(model.coef_[:2], clean.coef_, rtol=1e-10)


def test_default_alphas():
    np.testing.assert_allclose(DEFAULT_ALPHAS, np.logspace(-3, 6, 19))
    assert RidgeCV().alphas == DEFAULT_ALPHAS


def _check_name(check):
    return getattr(check, "func", check).__name__


# scikit-learn's own estimator checks. The array-API check is left out: RidgeCV is NumPy-only,
# and scikit-learn itself skips that check unless SCIPY_ARRAY_API=1 is set before import.
SKLEARN_CHECKS = [
    pytest.param(estimator, check, id=_check_name(check))
    for estimator, check in estimator_checks_generator(RidgeCV(), legacy=True, mark=None)
    if _check_name(check) != "check_array_api_input"
]


@pytest.mark.parametrize(("estimator", "check"), SKLEARN_CHECKS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ---------------------------------------------------------------------------------------------
# RidgeCV errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("X", "y", "error", "message"),
    [
        (np.full((20, 3), np.nan), np.zeros(20), ValueError, "Input X contains NaN"),
        (np.zeros((20, 3)), np.full(20, np.inf), ValueError, "Input y contains infinity"),
        (np.zeros(20), np.zeros(20), ValueError, "Reshape your data"),
        (np.zeros((20, 3)), np.zeros((20, 2, 2)), ValueError, "Found array with dim 3"),
        (np.zeros((20, 3)), np.zeros(19), ValueError, "inconsistent numbers of samples"),
        (np.zeros((9, 3)), np.zeros(9), ValueError, r"at least 10 samples .* n_samples=9"),
    ],
)
def test_bad_data_errors(X, y, error, message):
    with pytest.raises(error, match=message):
        RidgeCV().fit(X, y)


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"alphas": [1.0, -1.0]}, ValueError, "alphas must be positive"),
        ({"alphas": [0.0]}, ValueError, "alphas must be positive"),
        ({"alphas": [np.nan]}, ValueError, "alphas must be positive and finite"),
        ({"alphas": []}, ValueError, "non-empty 1-D"),
        ({"alphas": [[1.0, 2.0]]}, ValueError, "non-empty 1-D"),
        ({"alphas": ["big"]}, TypeError, "sequence of positive numbers"),
        ({"cv": 1}, ValueError, "cv must be at least 2"),
        ({"cv": "five"}, ValueError, "Expected `cv` as an integer"),
        ({"cv": [(np.arange(10), np.array([10]))]}, ValueError, "2 validation samples"),
        ({"cv": []}, ValueError, "no \\(train, test\\) split"),
        ({"batch_size": 0}, ValueError, "batch_size must be a positive int"),
        ({"batch_size": 2.5}, TypeError, "batch_size must be a positive int"),
        ({"batch_size": True}, TypeError, "batch_size must be a positive int"),
        ({"fit_intercept": "yes"}, TypeError, "fit_intercept must be True or False"),
        ({"alpha_per_target": 1}, TypeError, "alpha_per_target must be True or False"),
    ],
)
def test_bad_parameter_errors(params, error, message):
    X, Y = _regression_data(20, 4)
    with pytest.raises(error, match=message):
        RidgeCV(**params).fit(X, Y)


def test_predict_errors():
    X, Y = _regression_data(*PRIMAL)
    with pytest.raises(NotFittedError):
        RidgeCV().predict(X)
    model = RidgeCV().fit(X, Y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :-1])


# ---------------------------------------------------------------------------------------------
# neural_predictivity
# ---------------------------------------------------------------------------------------------


def _population(seed=0, n_objects=8, per_object=50, n_neurons=30, n_repeats=6):
    """Responses = signal + Gaussian noise, with a known ceiling per neuron.

    Each neuron's signal has unit variance over stimuli; noise variance v_n per neuron. The
    reliability of the mean over n repeats (what the split-half ceiling estimates) is
    1 / (1 + v_n / n), and the true signal correlates with that mean with r = sqrt(reliability),
    so a model that predicts the signal has r^2 / ceiling = 1.
    """
    rng = np.random.default_rng(seed)
    n_stimuli = n_objects * per_object
    signal = rng.normal(size=(n_stimuli, n_neurons))
    noise_var = np.linspace(1.0, 6.0, n_neurons)
    responses = signal[None] + rng.normal(size=(n_repeats, n_stimuli, n_neurons)) * np.sqrt(
        noise_var
    )
    labels = np.repeat(np.arange(n_objects), per_object)
    reliability = 1.0 / (1.0 + noise_var / n_repeats)
    return signal, responses, labels, reliability


def test_ceiling_matches_the_closed_form_reliability():
    # 2000 stimuli: the split-half estimate's standard deviation is about 0.02 for the
    # noisiest neuron (reliability 0.5).
    signal, responses, labels, reliability = _population(per_object=250)
    result = neural_predictivity(
        signal,
        responses,
        mapping="pls",
        n_components=5,
        stratify=labels,
        n_splits=2,
        progress=False,
    )
    errors = np.abs(result.ceiling - reliability)
    assert np.median(errors) < 0.015
    assert errors.max() < 0.06


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # PLS on noise
@pytest.mark.parametrize(
    ("mapping", "kwargs"), [("ridge", {}), ("pls", {"n_components": 30})], ids=["ridge", "pls"]
)
def test_true_signal_scores_near_one_and_noise_near_zero(mapping, kwargs):
    signal, responses, labels, _ = _population(seed=1)
    good = neural_predictivity(
        signal, responses, mapping=mapping, stratify=labels, progress=False, **kwargs
    )
    assert good.score == pytest.approx(1.0, abs=0.08)
    assert good.raw_r > 0.75
    noise_features = np.random.default_rng(2).normal(size=signal.shape)
    bad = neural_predictivity(
        noise_features, responses, mapping=mapping, stratify=labels, progress=False, **kwargs
    )
    assert 0.0 <= bad.score < 0.05
    assert abs(bad.raw_r) < 0.1


def test_score_is_median_over_neurons_then_mean_over_splits():
    signal, responses, labels, _ = _population(seed=3, n_neurons=12)
    features = signal + np.random.default_rng(4).normal(size=signal.shape) * 0.7
    result = neural_predictivity(
        features, responses, mapping="pls", n_components=5, stratify=labels, progress=False
    )
    normalized = result.r**2 / result.ceiling
    np.testing.assert_allclose(result.normalized, normalized)
    per_split = np.median(normalized, axis=1)
    assert result.score == pytest.approx(per_split.mean())
    assert result.score_sem == pytest.approx(per_split.std() / np.sqrt(10))
    assert result.raw_r == pytest.approx(np.median(result.r, axis=1).mean())
    assert 0.1 < result.score < 0.9  # a partial model lands between the extremes


def test_pls_recipe_matches_a_hand_written_reference():
    signal, responses, labels, _ = _population(seed=5, n_neurons=10)
    features = signal @ np.random.default_rng(6).normal(size=(10, 40))
    folds = list(KFold(5, shuffle=True, random_state=0).split(features))
    result = neural_predictivity(
        features, responses, mapping="pls", cv=folds, n_components=8, progress=False
    )
    mean_response = responses.mean(axis=0)
    for i, (train, test) in enumerate(folds):
        pls = PLSRegression(n_components=8, scale=False).fit(features[train], mean_response[train])
        predicted = pls.predict(features[test])
        expected = [stats.pearsonr(mean_response[test, j], predicted[:, j])[0] for j in range(10)]
        np.testing.assert_allclose(result.r[i], expected, rtol=1e-8)
        np.testing.assert_array_equal(result.test_indices[i], test)
        np.testing.assert_allclose(result.predictions[i], predicted, rtol=1e-10)


def test_stratification_puts_every_stratum_in_every_test_set():
    signal, responses, labels, _ = _population(seed=7)
    result = neural_predictivity(
        signal, responses, mapping="pls", n_components=10, stratify=labels, progress=False
    )
    assert result.n_splits == 10
    for test in result.test_indices:
        assert test.size == 40
        np.testing.assert_array_equal(np.bincount(labels[test], minlength=8), np.full(8, 5))


def test_ridge_inner_cross_validation_sees_only_training_stimuli(monkeypatch):
    signal, responses, labels, _ = _population(seed=8, n_neurons=6)
    features = np.column_stack([signal, np.arange(len(signal))])  # last column: stimulus index
    seen = []
    original_fit = RidgeCV.fit

    def recording_fit(self, X, y):
        seen.append(np.asarray(X).copy())
        return original_fit(self, X, y)

    monkeypatch.setattr(regression.RidgeCV, "fit", recording_fit)
    result = neural_predictivity(features, responses, stratify=labels, n_splits=3, progress=False)
    assert len(seen) == 3
    for fitted_rows, test in zip(seen, result.test_indices, strict=True):
        train = np.setdiff1d(np.arange(len(signal)), test)
        np.testing.assert_array_equal(np.sort(fitted_rows[:, -1]), train)
        np.testing.assert_array_equal(fitted_rows[:, :-1], signal[fitted_rows[:, -1].astype(int)])
    assert result.alphas.shape == (3, 6)


def test_deterministic_per_seed():
    signal, responses, labels, _ = _population(seed=9, n_neurons=8)
    features = signal + np.random.default_rng(0).normal(size=signal.shape)
    a = neural_predictivity(features, responses, stratify=labels, seed=4, progress=False)
    b = neural_predictivity(features, responses, stratify=labels, seed=4, progress=False)
    c = neural_predictivity(features, responses, stratify=labels, seed=5, progress=False)
    np.testing.assert_array_equal(a.r, b.r)
    np.testing.assert_array_equal(a.ceiling, b.ceiling)
    assert a.score == b.score
    assert not np.array_equal(a.test_indices[0], c.test_indices[0])


def test_nan_repeats_and_result_table():
    signal, responses, labels, _ = _population(seed=10, n_neurons=5)
    responses = responses.copy()
    responses[4:, :, 0] = np.nan  # neuron 0 recorded on 4 of the 6 repeats
    result = neural_predictivity(signal, responses, stratify=labels, progress=False)
    assert isinstance(result, PredictivityResult)
    assert np.isfinite(result.r).all() and np.isfinite(result.ceiling).all()
    frame = result.to_frame()
    assert list(frame.columns) == ["split", "neuron", "r", "ceiling", "normalized"]
    assert len(frame) == 10 * 5
    row = frame[(frame.split == 3) & (frame.neuron == 2)].iloc[0]
    assert row.r == result.r[3, 2] and row.ceiling == result.ceiling[2]
    assert row.normalized == pytest.approx(result.r[3, 2] ** 2 / result.ceiling[2])
    text = repr(result)
    assert "mapping='ridge'" in text and f"{result.score:.3f}" in text and "ceiling" in text


def test_without_ceiling_the_score_is_r_squared_and_one_repeat_is_enough():
    signal, responses, labels, _ = _population(seed=11, n_neurons=6)
    result = neural_predictivity(
        signal, responses[:1], stratify=labels, ceiling=False, progress=False
    )
    np.testing.assert_array_equal(result.ceiling, np.ones(6))
    np.testing.assert_allclose(result.normalized, result.r**2)
    assert "not ceiled" in repr(result)


def _caught_messages(function):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = function()
    return result, [str(w.message) for w in caught]


def test_a_silent_neuron_is_left_out_with_one_warning():
    signal, responses, labels, _ = _population(seed=12, n_neurons=6)
    responses = responses.copy()
    responses[:, :, 5] = 2.0  # a silent channel: constant response, undefined r and ceiling
    result, messages = _caught_messages(
        lambda: neural_predictivity(signal, responses, stratify=labels, progress=False)
    )
    assert len(messages) == 1, messages  # one warning, not one per split
    assert "1 of 6 neurons have the same mean response to every stimulus" in messages[0]
    assert np.isnan(result.r[:, 5]).all() and np.isnan(result.normalized[:, 5]).all()
    assert np.isfinite(result.r[:, :5]).all()
    assert result.score == pytest.approx(np.mean(np.median(result.normalized[:, :5], axis=1)))


def test_a_neuron_with_a_negative_ceiling_is_left_out_with_a_warning():
    signal, responses, labels, _ = _population(seed=12, n_neurons=4, n_repeats=2)
    responses = responses.copy()
    # the two repeats anti-correlate, so the split-half ceiling is negative
    responses[1, :, 3] = -responses[0, :, 3] + 0.3 * np.random.default_rng(0).normal(size=400)
    result, messages = _caught_messages(
        lambda: neural_predictivity(signal, responses, stratify=labels, progress=False)
    )
    assert result.ceiling[3] < 0
    assert len(messages) == 1 and "1 of 4 neurons have a noise ceiling that is not" in messages[0]
    assert np.isnan(result.normalized[:, 3]).all()
    assert np.isfinite(result.normalized[:, :3]).all()


def test_a_custom_regressor_mapping_is_cloned_per_split():
    signal, responses, labels, _ = _population(seed=13, n_neurons=6)
    prototype = Ridge(alpha=1.0)
    result = neural_predictivity(
        signal, responses, mapping=prototype, stratify=labels, progress=False
    )
    assert result.mapping == "Ridge" and result.alphas is None
    assert not hasattr(prototype, "coef_")
    assert result.score == pytest.approx(1.0, abs=0.08)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"features": np.zeros((399, 4))}, ValueError, "features has 399 stimuli"),
        ({"features": np.zeros(400)}, ValueError, r"features must have shape \(n_stimuli"),
        ({"features": np.full((400, 4), np.nan)}, ValueError, "features contain NaN or inf"),
        ({"features": {"a": 1}}, TypeError, "features must be a numeric array"),
        ({"responses": np.zeros((400, 5))}, ValueError, "trial-averaged"),
        ({"responses": object()}, TypeError, "not a dataset object"),
        ({"stratify": np.zeros(10)}, ValueError, "one label per stimulus"),
        ({"mapping": "lasso"}, ValueError, 'mapping must be "ridge", "pls"'),
        ({"mapping": object()}, TypeError, "regressor with fit and predict"),
        ({"mapping": "pls", "n_components": 5}, ValueError, "n_components <= 4"),
        ({"mapping": "pls", "n_components": 0}, ValueError, "n_components must be at least 1"),
        ({"n_splits": 0}, ValueError, "n_splits must be at least 1"),
        ({"n_splits": 2.0}, TypeError, "n_splits must be an int"),
        ({"train_size": 1.5}, ValueError, "train_size must be a fraction"),
        ({"ceiling": "yes"}, TypeError, "ceiling must be True or False"),
        ({"seed": -1}, ValueError, "seed must be a non-negative"),
    ],
)
def test_neural_predictivity_errors(change, error, message):
    rng = np.random.default_rng(0)
    kwargs = {
        "features": rng.normal(size=(400, 4)),
        "responses": rng.normal(size=(3, 400, 5)),
        "progress": False,
    }
    kwargs.update(change)
    with pytest.raises(error, match=message):
        neural_predictivity(**kwargs)


def test_too_few_stimuli_and_unrecorded_stimuli_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="at least 3 test and 2 training stimuli"):
        neural_predictivity(rng.normal(size=(12, 3)), rng.normal(size=(2, 12, 2)), progress=False)
    responses = rng.normal(size=(2, 50, 3))
    responses[:, 7, 1] = np.nan
    with pytest.raises(ValueError, match=r"Neurons \[1\] have stimuli with no recorded repeat"):
        neural_predictivity(rng.normal(size=(50, 3)), responses, progress=False)


def test_progress_bar_can_be_switched_on(capsys):
    signal, responses, labels, _ = _population(seed=14, n_neurons=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tqdm may warn that it cannot find ipywidgets
        neural_predictivity(signal, responses, n_splits=2, progress=True)
    assert "neural predictivity" in capsys.readouterr().err
