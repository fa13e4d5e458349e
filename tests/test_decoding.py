"""Tests of course_tools.decoding against scikit-learn references and closed forms."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, RidgeCV
from sklearn.metrics import make_scorer
from sklearn.model_selection import (
    KFold,
    ShuffleSplit,
    StratifiedKFold,
    cross_val_predict,
    cross_val_score,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.random_projection import SparseRandomProjection

from course_tools.decoding import (
    DEFAULT_ALPHAS,
    DEFAULT_C,
    DecodingResult,
    SitesFit,
    decode,
    draw_units,
    fit_sites_curve,
    infer_kind,
    layerwise_decoding,
    make_decoder,
    sites_curve,
    sites_needed,
)

# The documented defaults, written out here so that the references below are independent of them.
ALPHAS = np.logspace(-2, 8, 21)
PEARSON = make_scorer(lambda t, p: pearsonr(t, p)[0])


def _classes(n_per_class=60, n_features=10, n_classes=3, separation=1.0, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), n_per_class)
    centres = rng.normal(size=(n_classes, n_features)) * separation
    X = centres[y] + rng.normal(size=(len(y), n_features))
    labels = np.array(["cat", "dog", "car", "face", "tree"])[y]
    return X, labels


def _linear(n=300, n_features=8, noise=1.0, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)) * rng.uniform(0.1, 10, size=n_features)
    w = rng.normal(size=n_features)
    return X, X @ w / np.std(X @ w) + noise * rng.normal(size=n)


def test_documented_defaults():
    assert DEFAULT_C == 0.01
    np.testing.assert_allclose(DEFAULT_ALPHAS, ALPHAS)


# --------------------------------------------------------------------------------------------
# decode vs scikit-learn
# --------------------------------------------------------------------------------------------


def test_classification_equals_sklearn_cross_validation():
    X, y = _classes(separation=0.4)
    result = decode(X, y, cv=5, seed=3)
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=1000))
    folds = StratifiedKFold(5, shuffle=True, random_state=3)
    expected = cross_val_score(reference, X, y, cv=folds, scoring="accuracy")
    np.testing.assert_allclose(result.fold_scores, expected, atol=1e-12)
    assert result.score == pytest.approx(expected.mean())
    np.testing.assert_array_equal(result.predictions, cross_val_predict(reference, X, y, cv=folds))
    assert 0.5 < result.score < 1.0  # a non-trivial problem, so the equality means something
    assert (result.kind, result.metric) == ("classification", "accuracy")
    assert result.chance == pytest.approx(1 / 3)
    assert isinstance(result, DecodingResult)
    assert "accuracy=" in repr(result)


def test_regression_equals_sklearn_cross_validation():
    X, y = _linear(noise=1.5)
    result = decode(X, y, cv=4, seed=7)
    reference = make_pipeline(StandardScaler(), RidgeCV(alphas=ALPHAS))
    folds = KFold(4, shuffle=True, random_state=7)
    np.testing.assert_allclose(
        result.fold_scores, cross_val_score(reference, X, y, cv=folds, scoring=PEARSON), atol=1e-10
    )
    np.testing.assert_allclose(
        result.predictions, cross_val_predict(reference, X, y, cv=folds), atol=1e-10
    )
    assert (result.kind, result.metric, result.chance) == ("regression", "pearson_r", 0.0)
    assert result.fold_scores.shape == (4,)
    expected_fold = np.empty(len(y), dtype=int)
    for k, (_, test) in enumerate(folds.split(X)):
        expected_fold[test] = k
    np.testing.assert_array_equal(result.fold, expected_fold)


def test_inner_cv_of_C_equals_sklearn_logistic_regression_cv():
    X, y = _classes(n_per_class=40, separation=0.5, seed=1)
    Cs = [0.001, 0.1, 10.0]
    result = decode(X, y, cv=3, seed=2, C=Cs)
    inner = StratifiedKFold(3, shuffle=True, random_state=2)
    model = LogisticRegressionCV(
        Cs=Cs,
        cv=inner,
        scoring="neg_log_loss",
        l1_ratios=(0.0,),
        use_legacy_attributes=False,
        max_iter=1000,
    )
    expected = cross_val_score(
        make_pipeline(StandardScaler(), model),
        X,
        y,
        cv=StratifiedKFold(3, shuffle=True, random_state=2),
        scoring="accuracy",
    )
    np.testing.assert_allclose(result.fold_scores, expected, atol=1e-12)


def test_splitter_and_groups_are_respected():
    X, y = _linear(n=120)
    groups = np.repeat(np.arange(12), 10)
    result = decode(X, y, cv=4, groups=groups, seed=0)
    for g in range(12):
        assert len(set(result.fold[groups == g])) == 1  # a group is never split across folds
    splitter = KFold(3)
    by_splitter = decode(X, y, cv=splitter)
    reference = make_pipeline(StandardScaler(), RidgeCV(alphas=ALPHAS))
    np.testing.assert_allclose(
        by_splitter.fold_scores,
        cross_val_score(reference, X, y, cv=splitter, scoring=PEARSON),
        atol=1e-10,
    )


def test_max_features_projects_within_the_pipeline():
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(300, 5))
    X = latent @ rng.normal(size=(5, 400)) + rng.normal(size=(300, 400))
    y = latent[:, 0] + 0.3 * rng.normal(size=300)
    projected = decode(X, y, max_features=80, seed=4)
    reference = make_pipeline(
        StandardScaler(),
        SparseRandomProjection(n_components=80, dense_output=True, random_state=4),
        RidgeCV(alphas=ALPHAS),
    )
    np.testing.assert_allclose(
        projected.predictions,
        cross_val_predict(reference, X, y, cv=KFold(5, shuffle=True, random_state=4)),
        atol=1e-10,
    )
    full = decode(X, y, seed=4)
    assert projected.score == pytest.approx(full.score, abs=0.03)  # distances are preserved
    # max_features at or above the number of features leaves the features untouched
    np.testing.assert_array_equal(
        decode(X, y, max_features=400, seed=4).predictions, full.predictions
    )
    assert "project" in make_decoder("regression", max_features=10).named_steps
    assert "project" not in make_decoder("regression").named_steps


# --------------------------------------------------------------------------------------------
# leak-freedom
# --------------------------------------------------------------------------------------------


def test_scaler_is_fitted_on_training_folds_only(monkeypatch):
    seen = []
    original_fit = StandardScaler.fit

    def spy(self, X, y=None, sample_weight=None):
        seen.append(X.shape[0])
        return original_fit(self, X, y, sample_weight=sample_weight)

    monkeypatch.setattr(StandardScaler, "fit", spy)
    X, y = _classes(n_per_class=20)  # 60 samples, 5 folds of 12
    decode(X, y, cv=5)
    assert seen == [48] * 5
    seen.clear()
    X, y = _linear(n=100)
    decode(X, y, cv=4)
    assert seen == [75] * 4


def test_held_out_predictions_ignore_other_held_out_samples():
    """A held-out prediction may depend on the training fold and on its own sample only.

    If the scaler (or anything else) were fitted on all samples, changing one held-out sample
    would move the predictions of the other held-out samples of its fold.
    """
    X, y = _linear(n=100, noise=0.5, seed=2)
    before = decode(X, y, cv=5, seed=1)
    victim = np.flatnonzero(before.fold == 0)[0]
    X_changed = X.copy()
    X_changed[victim] = X_changed[victim] * 50 + 100
    after = decode(X_changed, y, cv=5, seed=1)
    same_fold = (before.fold == 0) & (np.arange(len(y)) != victim)
    np.testing.assert_allclose(
        after.predictions[same_fold], before.predictions[same_fold], rtol=1e-9
    )
    # ... while the other folds trained on the changed sample, so they do change
    assert (
        np.max(np.abs(after.predictions[before.fold != 0] - before.predictions[before.fold != 0]))
        > 1e-3
    )

    # The leaky recipe (scaler fitted on all samples first) gives different held-out predictions.
    folds = KFold(5, shuffle=True, random_state=1)
    leaky = cross_val_predict(
        RidgeCV(alphas=ALPHAS), StandardScaler().fit_transform(X_changed), y, cv=folds
    )
    assert np.max(np.abs(leaky[same_fold] - after.predictions[same_fold])) > 1e-3


# --------------------------------------------------------------------------------------------
# known ground truth
# --------------------------------------------------------------------------------------------


def test_continuous_decoding_reaches_the_analytic_correlation():
    # y = X w + noise with X ~ N(0, I): corr(y, X w) = sqrt(|w|^2 / (|w|^2 + sigma^2)).
    rng = np.random.default_rng(11)
    w = np.array([1.0, -1.0, 0.5, 0.0])
    sigma = 1.5
    X = rng.normal(size=(4000, 4))
    y = X @ w + sigma * rng.normal(size=4000)
    r_true = np.sqrt(w @ w / (w @ w + sigma**2))
    assert r_true == pytest.approx(np.sqrt(0.5))
    result = decode(X, y)
    assert result.score == pytest.approx(r_true, abs=0.025)


def test_separable_classes_decode_perfectly_and_shuffled_labels_at_chance():
    X, y = _classes(n_per_class=100, n_features=5, separation=20.0)
    assert decode(X, y).score == 1.0
    shuffled = np.random.default_rng(0).permutation(y)
    result = decode(X, shuffled)
    assert result.chance == pytest.approx(1 / 3)
    assert abs(result.score - 1 / 3) < 0.08


def test_same_seed_same_numbers_other_seed_other_folds():
    X, y = _classes(separation=0.4)
    a, b = decode(X, y, seed=5), decode(X, y, seed=5)
    np.testing.assert_array_equal(a.fold_scores, b.fold_scores)
    np.testing.assert_array_equal(a.predictions, b.predictions)
    c = decode(X, y, seed=6)
    assert not np.array_equal(a.fold, c.fold)
    g1, g2 = np.random.default_rng(9), np.random.default_rng(9)
    np.testing.assert_array_equal(decode(X, y, seed=g1).fold, decode(X, y, seed=g2).fold)


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        (np.array(["a", "b"] * 10), "classification"),
        (np.array([True, False] * 10), "classification"),
        (np.arange(20) % 3, "classification"),
        (np.arange(40), "regression"),
        (np.linspace(0, 1, 20), "regression"),
        (pd.Series(np.arange(40)).astype("category"), "classification"),
        (pd.Series(["x", "y"] * 10, dtype="string"), "classification"),
        (pd.Series(np.arange(20) % 2, dtype="Int64"), "classification"),
    ],
)
def test_infer_kind(target, kind):
    assert infer_kind(target) == kind


def test_kind_override_and_pandas_input():
    X, y = _linear(n=60)
    as_int = np.round(y * 30).astype(int)  # many integer values: auto -> regression
    assert decode(X, as_int).kind == "regression"
    assert decode(X, pd.Series(np.arange(60) % 2), kind="regression").metric == "pearson_r"
    frame = pd.DataFrame(X)
    assert decode(frame, pd.Series(y)).score == pytest.approx(decode(X, y).score)


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("features", "target", "kwargs", "error", "message"),
    [
        (np.zeros((10, 2)), np.arange(9.0), {}, ValueError, "10 samples but target has 9"),
        (np.arange(10.0), np.arange(10.0), {}, ValueError, r"reshape\(-1, 1\)"),
        (np.zeros((10, 2, 2)), np.arange(10.0), {}, ValueError, "Flatten the trailing axes"),
        (np.zeros((10, 0)), np.arange(10.0), {}, ValueError, "no features"),
        (np.array([["a"]] * 10), np.arange(10.0), {}, TypeError, "must be numeric"),
        (np.ones((10, 2)), np.ones((10, 2)), {}, ValueError, r"shape \(n_samples,\)"),
        (np.ones((10, 2)), np.ones((10, 1)), {}, ValueError, r"ravel\(\)"),
        (np.ones((10, 2)), np.full(10, 3.0), {}, ValueError, "constant"),
        (np.ones((10, 2)), np.array(["a"] * 10), {}, ValueError, "constant"),
        (np.ones((4, 2)), np.arange(4.0), {}, ValueError, "Cannot make 5 folds from 4 samples"),
        (np.ones((10, 2)), np.arange(10.0), {}, ValueError, "Test fold 0 has 2 sample"),
        (np.ones((10, 2)), np.arange(10.0), {"kind": "ordinal"}, ValueError, "kind must be"),
        (np.ones((10, 2)), np.arange(10.0), {"cv": 1}, ValueError, "at least 2 folds"),
        (np.ones((10, 2)), np.arange(10.0), {"cv": "five"}, TypeError, "cv must be an int"),
        (np.ones((10, 2)), np.arange(10.0), {"seed": -1}, ValueError, "seed must be"),
        (np.ones((20, 2)), np.arange(20.0), {"groups": np.arange(5)}, ValueError, "groups must"),
        (
            np.ones((20, 2)),
            np.arange(20.0),
            {"groups": np.arange(20) % 3},
            ValueError,
            "from 3 groups",
        ),
        (np.ones((20, 2)), np.arange(20.0), {"alphas": [0.0]}, ValueError, "alphas must"),
        (np.ones((20, 2)), np.arange(20) % 2, {"C": -1.0}, ValueError, "C must be"),
        (np.ones((20, 2)), np.arange(20) % 2, {"max_features": 0}, ValueError, "max_features"),
        (
            np.ones((20, 2)),
            np.array(["a", "b"] * 10),
            {"kind": "regression"},
            TypeError,
            "numeric target",
        ),
        (
            np.ones((20, 2)),
            np.arange(20.0),
            {"cv": ShuffleSplit(3, random_state=0)},
            ValueError,
            "exactly once",
        ),
    ],
)
def test_errors(features, target, kwargs, error, message):
    with pytest.raises(error, match=message):
        decode(features, target, **kwargs)


def test_non_finite_features_are_rejected():
    X = np.ones((20, 3))
    X[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN or inf values in 1 feature\(s\) \(first: \[1\]\)"):
        decode(X, np.arange(20.0))
    X[4, 1] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        decode(X, np.arange(20.0))


def test_missing_and_rare_targets_are_rejected():
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="1 missing value"):
        decode(X, np.r_[np.nan, np.arange(19.0)])
    with pytest.raises(ValueError, match="1 missing value"):
        decode(X, pd.Series(["a", None] + ["b"] * 18))
    rare = np.array(["a"] * 17 + ["b"] * 3)
    with pytest.raises(ValueError, match=r"1 class\(es\) have fewer \('b': 3\)\. Use cv <= 3"):
        decode(X, rare)
    with pytest.raises(ValueError, match=r"Drop or merge .* pass kind='regression'"):
        decode(X, np.r_[np.zeros(10, int), np.arange(10)])
    with pytest.raises(ValueError, match="single C"):
        decode(X, np.array(["a"] * 16 + ["b"] * 4), cv=3, C=[0.1, 1.0])


def test_constant_predictions_warn_about_undefined_correlation():
    X = np.ones((30, 2))  # no variance: the decoder can only predict the training mean
    with pytest.warns(RuntimeWarning, match="Pearson r is undefined"):
        result = decode(X, np.arange(30.0))
    assert np.isnan(result.score)


# --------------------------------------------------------------------------------------------
# layerwise_decoding
# --------------------------------------------------------------------------------------------


def _layer_data():
    rng = np.random.default_rng(3)
    n = 90
    size = rng.normal(size=n)
    angle = rng.normal(size=n)
    category = np.repeat(["a", "b", "c"], n // 3)
    code = (category == "b").astype(float) - (category == "c")
    layers = {
        "conv2": rng.normal(size=(n, 3, 2, 2)) + size[:, None, None, None],
        "conv10": np.c_[size, angle, code] + rng.normal(size=(n, 3)),
        "a_fc": rng.normal(size=(n, 6)) + np.c_[angle, code, size, angle, code, size],
    }
    targets = pd.DataFrame({"category": category, "size": size, "angle": angle})
    return layers, targets


def test_layerwise_frame_layout_and_order():
    layers, targets = _layer_data()
    frame = layerwise_decoding(layers, targets, cv=4, progress=False)
    assert list(frame.columns) == ["layer", "target", "fold", "score", "metric"]
    assert len(frame) == 3 * 3 * 4
    assert list(frame["layer"].cat.categories) == ["conv2", "conv10", "a_fc"]
    assert frame["layer"].cat.ordered
    assert list(frame["target"].cat.categories) == ["category", "size", "angle"]
    assert list(frame["layer"].astype(str)[::12]) == ["conv2", "conv10", "a_fc"]
    assert list(frame["fold"][:4]) == [0, 1, 2, 3]
    metrics = frame.groupby("target", observed=True)["metric"].unique()
    assert list(metrics["category"]) == ["accuracy"]
    assert list(metrics["size"]) == ["pearson_r"]
    assert frame["score"].notna().all()


def test_layerwise_equals_per_layer_decode_calls():
    layers, targets = _layer_data()
    frame = layerwise_decoding(layers, targets, cv=4, seed=2, progress=False)
    for layer, values in layers.items():
        for target in targets.columns:
            expected = decode(values.reshape(len(values), -1), targets[target], cv=4, seed=2)
            got = frame[(frame.layer == layer) & (frame.target == target)]["score"].to_numpy()
            np.testing.assert_allclose(got, expected.fold_scores, rtol=1e-8, atol=1e-12)


def test_layerwise_options():
    layers, targets = _layer_data()
    targets["count"] = np.arange(90) % 4
    frame = layerwise_decoding(
        layers,
        targets[["count"]],
        kinds={"count": "regression"},
        max_features=5,
        progress=True,
    )
    assert set(frame["metric"]) == {"pearson_r"}
    expected = decode(
        layers["conv2"].reshape(90, -1), targets["count"], kind="regression", max_features=5
    )
    np.testing.assert_allclose(frame[frame.layer == "conv2"]["score"], expected.fold_scores)
    with pytest.raises(ValueError, match="has 89 samples but targets has 90 rows"):
        layerwise_decoding({"x": np.ones((89, 2))}, targets, progress=False)
    with pytest.raises(TypeError, match="to_frame"):
        layerwise_decoding(layers, targets["size"], progress=False)
    with pytest.raises(TypeError, match="non-empty dict"):
        layerwise_decoding({}, targets, progress=False)
    with pytest.raises(ValueError, match="not in targets"):
        layerwise_decoding(layers, targets, kinds={"colour": "regression"}, progress=False)
    with pytest.raises(ValueError, match=r"activations\['bad'\] contains 1 NaN"):
        bad = np.ones((90, 2))
        bad[0, 0] = np.nan
        layerwise_decoding({"bad": bad}, targets, progress=False)


# --------------------------------------------------------------------------------------------
# sites curve
# --------------------------------------------------------------------------------------------


def test_draw_units_are_distinct_independent_and_repeatable():
    draws = draw_units(50, 20, 30, seed=1)
    assert draws.shape == (30, 20)
    assert all(len(set(row)) == 20 for row in draws)
    assert draws.min() >= 0 and draws.max() < 50
    assert len({tuple(sorted(row)) for row in draws}) == 30  # draws differ from each other
    np.testing.assert_array_equal(draws, draw_units(50, 20, 30, seed=1))
    assert not np.array_equal(draws, draw_units(50, 20, 30, seed=2))
    # every unit is equally likely: over many draws each appears about 20/50 of the time
    counts = np.bincount(draw_units(50, 20, 2000, seed=3).ravel(), minlength=50) / 2000
    np.testing.assert_allclose(counts, 0.4, atol=0.05)
    with pytest.raises(ValueError, match="Cannot draw 60 distinct units from a population of 50"):
        draw_units(50, 60, 3)


def _redundant_population(n_samples=1000, n_units=64, sigma=2.0, seed=0):
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n_samples)
    units = signal[:, None] + sigma * rng.normal(size=(n_samples, n_units))
    return units, signal


def test_sites_curve_follows_the_closed_form_for_redundant_units():
    # Each unit is signal + N(0, sigma^2); the best readout of n units is their mean, whose
    # correlation with the signal is 1 / sqrt(1 + sigma^2 / n).
    sigma = 2.0
    units, signal = _redundant_population(sigma=sigma)
    sizes = [1, 2, 4, 8, 16, 32, 64]
    curve = sites_curve(units, signal, sizes, n_draws=3, progress=False)
    assert list(curve.columns) == ["n_sites", "draw", "score", "metric"]
    assert len(curve) == len(sizes) * 3
    means = curve.groupby("n_sites")["score"].mean()
    expected = 1 / np.sqrt(1 + sigma**2 / np.array(sizes))
    np.testing.assert_allclose(means.to_numpy(), expected, atol=0.03)
    assert np.all(np.diff(means.to_numpy()) > 0)
    # Repeatable, and the subsets of one size do not depend on which other sizes are asked for.
    again = sites_curve(units, signal, [16, 4], n_draws=3, progress=False)
    pd.testing.assert_frame_equal(curve[curve.n_sites.isin([4, 16])].reset_index(drop=True), again)


def test_sites_curve_uses_the_drawn_units():
    units, signal = _redundant_population(n_samples=200, n_units=12)
    curve = sites_curve(units, signal, [5], n_draws=2, cv=4, seed=8, progress=False)
    for draw, subset in enumerate(draw_units(12, 5, 2, seed=8)):
        expected = decode(units[:, subset], signal, cv=4, seed=8).score
        assert curve["score"][draw] == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError, match="between 1 and the number of units"):
        sites_curve(units, signal, [4, 13], progress=False)
    with pytest.raises(ValueError, match="sequence of integers"):
        sites_curve(units, signal, [2.5], progress=False)


def _synthetic_curve(a, b, c, sizes, n_draws=1, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    rows = [(n, d, a - b * n ** (-c) + noise * rng.normal()) for n in sizes for d in range(n_draws)]
    return pd.DataFrame(rows, columns=["n_sites", "draw", "score"])


def test_fit_recovers_known_parameters_and_sites_needed():
    a, b, c = 0.9, 0.6, 0.35
    sizes = 2 ** np.arange(11)
    fit = fit_sites_curve(_synthetic_curve(a, b, c, sizes))
    assert isinstance(fit, SitesFit)
    np.testing.assert_allclose([fit.asymptote, fit.amplitude, fit.exponent], [a, b, c], rtol=1e-5)
    assert fit.params == pytest.approx({"asymptote": a, "amplitude": b, "exponent": c}, rel=1e-5)
    level = 0.85
    n_star = (b / (a - level)) ** (1 / c)  # = 12 ** (1 / 0.35), about 1204 sites
    assert fit.sites_needed(level) == pytest.approx(n_star, rel=1e-3)
    assert sites_needed(_synthetic_curve(a, b, c, sizes), level) == pytest.approx(n_star, rel=1e-3)
    assert fit.predict(n_star) == pytest.approx(level, abs=1e-6)
    np.testing.assert_allclose(
        fit.predict(np.array([1.0, 10.0])), a - b * np.array([1, 10.0]) ** -c
    )
    assert fit.sites_needed(0.1) == 1.0  # already reached by one site


def test_fit_with_noise_and_fixed_asymptote():
    a, b, c = 0.8, 0.5, 0.5
    sizes = 2 ** np.arange(10)
    noisy = _synthetic_curve(a, b, c, sizes, n_draws=20, noise=0.01, seed=4)
    fit = fit_sites_curve(noisy)
    assert fit.asymptote == pytest.approx(a, abs=0.02)
    assert fit.exponent == pytest.approx(c, abs=0.1)
    assert np.all(np.isfinite(fit.covariance))
    fixed = fit_sites_curve(_synthetic_curve(1.0, b, c, sizes), asymptote=1.0)
    assert (fixed.amplitude, fixed.exponent) == (
        pytest.approx(b, rel=1e-5),
        pytest.approx(c, rel=1e-5),
    )
    assert fixed.covariance[0].tolist() == [0.0, 0.0, 0.0]


def test_sites_needed_is_inf_above_the_asymptote():
    curve = _synthetic_curve(0.9, 0.6, 0.35, 2 ** np.arange(11))
    with pytest.warns(RuntimeWarning, match="not below the fitted asymptote"):
        assert sites_needed(curve, 0.95) == np.inf
    fit = fit_sites_curve(curve)
    with pytest.warns(RuntimeWarning, match="asymptote"):
        assert fit.sites_needed(0.9 + 1e-6) == np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(fit.sites_needed(0.89))


def test_fit_errors():
    with pytest.raises(ValueError, match="at least 3 different n_sites"):
        fit_sites_curve(_synthetic_curve(0.9, 0.5, 0.5, [1, 2]))
    with pytest.raises(TypeError, match="columns 'n_sites' and 'score'"):
        fit_sites_curve(pd.DataFrame({"n": [1, 2, 3]}))
    with pytest.raises(ValueError, match="flat curve"):
        fit_sites_curve(_synthetic_curve(0.5, 0.0, 0.5, [1, 2, 4, 8]))
    with pytest.raises(ValueError, match="above max_score"):
        fit_sites_curve(_synthetic_curve(1.5, 0.5, 0.5, [1, 2, 4, 8]))
    with pytest.raises(ValueError, match="level must be a finite number"):
        sites_needed(_synthetic_curve(0.9, 0.5, 0.5, [1, 2, 4, 8]), float("nan"))
