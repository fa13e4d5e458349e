"""Plausible wrong answers for ``beyond_categorization`` (instructor only, never released).

Every wrong function repeats the correct recipe of the assignment except for one slip. Wrong
versions of ``layer_sweep`` and ``sites_curve`` call the notebook's current ``decode_cv``, as a
student's would: their tests swap in a stand-in for it, so that they check the loop alone.
"""

import numpy as np
import pandas as pd
from sklearn.linear_model import RidgeClassifierCV, RidgeCV
from sklearn.preprocessing import StandardScaler

from course_tools.grading import Mutant

ALPHAS = np.logspace(-2, 6, 17)


# ------------------------------------------------------------------ correct building blocks
def _notebook(name):
    """The notebook's current ``name`` (the student's function, or a test's stand-in for it)."""
    import __main__

    return getattr(__main__, name)


def _fit_score(X_train, y_train, X_test, y_test, kind, alphas):
    if kind == "classification":
        model = RidgeClassifierCV(alphas=alphas).fit(X_train, y_train)
        return np.mean(model.predict(X_test) == y_test)
    model = RidgeCV(alphas=alphas).fit(X_train, y_train.astype(float))
    return np.corrcoef(model.predict(X_test), y_test.astype(float))[0, 1]


def _pearson_columns(a, b):
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    return (a * b).sum(axis=0) / np.sqrt((a**2).sum(axis=0) * (b**2).sum(axis=0))


# ------------------------------------------------------------------ part 1: folds
def kfold_contiguous(n_samples, n_folds, seed):
    """Shuffles, then cuts the permutation into contiguous blocks instead of order[k::n_folds]."""
    order = np.random.default_rng(seed).permutation(n_samples)
    folds = []
    for block in np.array_split(order, n_folds):
        test = np.sort(block)
        folds.append((np.setdiff1d(np.arange(n_samples), test), test))
    return folds


def kfold_unshuffled(n_samples, n_folds, seed):
    """Forgets to shuffle: fold k takes every n_folds-th index starting at k."""
    folds = []
    for k in range(n_folds):
        test = np.arange(k, n_samples, n_folds)
        folds.append((np.setdiff1d(np.arange(n_samples), test), test))
    return folds


def kfold_unsorted(n_samples, n_folds, seed):
    """Right folds, but the test indices keep the order of the permutation."""
    order = np.random.default_rng(seed).permutation(n_samples)
    folds = []
    for k in range(n_folds):
        test = order[k::n_folds]
        folds.append((np.setdiff1d(np.arange(n_samples), test), test))
    return folds


# ------------------------------------------------------------------ part 2: decoding
def decode_leaky_standardisation(features, target, kind, folds, alphas=ALPHAS):
    """Standardises with the mean and SD of all samples, test samples included."""
    X, y = np.asarray(features, dtype=float), np.asarray(target)
    Z = StandardScaler().fit_transform(X)
    return np.array(
        [_fit_score(Z[train], y[train], Z[test], y[test], kind, alphas) for train, test in folds]
    )


def decode_on_training_set(features, target, kind, folds, alphas=ALPHAS):
    """Scores the decoder on the samples it was fitted on."""
    X, y = np.asarray(features, dtype=float), np.asarray(target)
    scores = []
    for train, _ in folds:
        Z = StandardScaler().fit_transform(X[train])
        scores.append(_fit_score(Z, y[train], Z, y[train], kind, alphas))
    return np.array(scores)


def decode_r2_score(features, target, kind, folds, alphas=ALPHAS):
    """Scores continuous targets by R^2 (model.score) instead of Pearson r."""
    X, y = np.asarray(features, dtype=float), np.asarray(target)
    scores = []
    for train, test in folds:
        scaler = StandardScaler().fit(X[train])
        X_train, X_test = scaler.transform(X[train]), scaler.transform(X[test])
        if kind == "classification":
            scores.append(_fit_score(X_train, y[train], X_test, y[test], kind, alphas))
        else:
            model = RidgeCV(alphas=alphas).fit(X_train, y[train].astype(float))
            scores.append(model.score(X_test, y[test].astype(float)))
    return np.array(scores)


def decode_without_standardisation(features, target, kind, folds, alphas=ALPHAS):
    """Skips the standardisation: the penalty then treats features on different scales unequally."""
    X, y = np.asarray(features, dtype=float), np.asarray(target)
    return np.array(
        [_fit_score(X[train], y[train], X[test], y[test], kind, alphas) for train, test in folds]
    )


# ------------------------------------------------------------------ part 3: sweep
def sweep_targets_outermost(activations, targets, kinds, folds):
    """Loops over targets outside the layers: the rows come out in the wrong order."""
    decode_cv = _notebook("decode_cv")
    rows = []
    for name in targets.columns:
        for layer, features in activations.items():
            scores = decode_cv(features, targets[name].to_numpy(), kinds[name], folds)
            rows += [(layer, name, fold, score) for fold, score in enumerate(scores)]
    return pd.DataFrame(rows, columns=["layer", "target", "fold", "score"])


def sweep_mean_over_folds(activations, targets, kinds, folds):
    """Keeps only the mean over folds, one row per (layer, target)."""
    decode_cv = _notebook("decode_cv")
    rows = []
    for layer, features in activations.items():
        for name in targets.columns:
            scores = decode_cv(features, targets[name].to_numpy(), kinds[name], folds)
            rows.append((layer, name, 0, float(np.mean(scores))))
    return pd.DataFrame(rows, columns=["layer", "target", "fold", "score"])


def sweep_regression_for_all(activations, targets, kinds, folds):
    """Ignores kinds and decodes every target as a regression."""
    decode_cv = _notebook("decode_cv")
    rows = []
    for layer, features in activations.items():
        for name in targets.columns:
            values = targets[name].to_numpy()
            if not np.issubdtype(values.dtype, np.number):
                values = pd.factorize(values)[0].astype(float)
            scores = decode_cv(features, values, "regression", folds)
            rows += [(layer, name, fold, score) for fold, score in enumerate(scores)]
    return pd.DataFrame(rows, columns=["layer", "target", "fold", "score"])


# ------------------------------------------------------------------ part 4: sites
def sites_with_replacement(features, target, kind, sizes, n_draws, folds, seed=0):
    """Draws sites with replacement, so a subset can hold the same site twice."""
    decode_cv = _notebook("decode_cv")
    features = np.asarray(features, dtype=float)
    rng = np.random.default_rng(seed)
    scores = np.empty((len(sizes), n_draws))
    for i, n in enumerate(sizes):
        for draw in range(n_draws):
            units = rng.choice(features.shape[1], size=n, replace=True)
            scores[i, draw] = decode_cv(features[:, units], target, kind, folds).mean()
    return scores


def sites_one_draw_per_size(features, target, kind, sizes, n_draws, folds, seed=0):
    """Draws one subset per size and repeats its score for every draw."""
    decode_cv = _notebook("decode_cv")
    features = np.asarray(features, dtype=float)
    rng = np.random.default_rng(seed)
    scores = np.empty((len(sizes), n_draws))
    for i, n in enumerate(sizes):
        units = rng.choice(features.shape[1], size=n, replace=False)
        scores[i] = decode_cv(features[:, units], target, kind, folds).mean()
    return scores


def sites_reseeded_per_draw(features, target, kind, sizes, n_draws, folds, seed=0):
    """Creates the generator inside the loop: every draw of a size picks the same sites."""
    decode_cv = _notebook("decode_cv")
    features = np.asarray(features, dtype=float)
    scores = np.empty((len(sizes), n_draws))
    for i, n in enumerate(sizes):
        for draw in range(n_draws):
            units = np.random.default_rng(seed).choice(features.shape[1], size=n, replace=False)
            scores[i, draw] = decode_cv(features[:, units], target, kind, folds).mean()
    return scores


def sites_permutation_prefix(features, target, kind, sizes, n_draws, folds, seed=0):
    """Takes the first n sites of a permutation instead of rng.choice (other subsets)."""
    decode_cv = _notebook("decode_cv")
    features = np.asarray(features, dtype=float)
    rng = np.random.default_rng(seed)
    scores = np.empty((len(sizes), n_draws))
    for i, n in enumerate(sizes):
        for draw in range(n_draws):
            units = rng.permutation(features.shape[1])[:n]
            scores[i, draw] = decode_cv(features[:, units], target, kind, folds).mean()
    return scores


def sites_needed_exponent_not_inverted(sizes, mean_scores, level, asymptote=1.0):
    """Raises to the power c instead of 1 / c when solving for n."""
    slope, intercept = np.polyfit(np.log(sizes), np.log(asymptote - np.asarray(mean_scores)), 1)
    b, c = np.exp(intercept), -slope
    return (b / (asymptote - level)) ** c, b, c


def sites_needed_linear_in_log_n(sizes, mean_scores, level, asymptote=1.0):
    """Fits score = p + q log(n) (no saturation) and solves it for the level."""
    q, p = np.polyfit(np.log(sizes), np.asarray(mean_scores), 1)
    return np.exp((level - p) / q), p, q


# ------------------------------------------------------------------ part 5: predictivity
def predictivity_without_cross_validation(features, responses, folds, alphas=ALPHAS):
    """Fits and predicts the same stimuli (all of them)."""
    X = np.asarray(features, dtype=float)
    mean = np.nanmean(np.asarray(responses, dtype=float), axis=0)
    Z = StandardScaler().fit_transform(X)
    predicted = RidgeCV(alphas=alphas, alpha_per_target=True).fit(Z, mean).predict(Z)
    return _pearson_columns(predicted, mean)


def predictivity_first_repeat(features, responses, folds, alphas=ALPHAS):
    """Fits the first repeat instead of the mean over the recorded repeats."""
    X = np.asarray(features, dtype=float)
    first = np.nan_to_num(np.asarray(responses, dtype=float)[0])
    predicted = np.empty_like(first)
    for train, test in folds:
        scaler = StandardScaler().fit(X[train])
        model = RidgeCV(alphas=alphas, alpha_per_target=True)
        model.fit(scaler.transform(X[train]), first[train])
        predicted[test] = model.predict(scaler.transform(X[test]))
    mean = np.nanmean(np.asarray(responses, dtype=float), axis=0)
    return _pearson_columns(predicted, mean)


def predictivity_leaky_standardisation(features, responses, folds, alphas=ALPHAS):
    """Standardises the features with all stimuli, test stimuli included."""
    Z = StandardScaler().fit_transform(np.asarray(features, dtype=float))
    mean = np.nanmean(np.asarray(responses, dtype=float), axis=0)
    predicted = np.empty_like(mean)
    for train, test in folds:
        model = RidgeCV(alphas=alphas, alpha_per_target=True).fit(Z[train], mean[train])
        predicted[test] = model.predict(Z[test])
    return _pearson_columns(predicted, mean)


MUTANTS = [
    Mutant(
        name="kfold_contiguous",
        description="test folds are contiguous blocks of the permutation, not order[k::n_folds]",
        replacements={"kfold_indices": kfold_contiguous},
        must_fail=["test_kfold"],
    ),
    Mutant(
        name="kfold_unshuffled",
        description="the folds are not shuffled",
        replacements={"kfold_indices": kfold_unshuffled},
        must_fail=["test_kfold"],
    ),
    Mutant(
        name="kfold_unsorted",
        description="test indices left in the order of the permutation",
        replacements={"kfold_indices": kfold_unsorted},
        must_fail=["test_kfold"],
    ),
    Mutant(
        name="decode_leaky_standardisation",
        description="features standardised with all samples, test samples included",
        replacements={"decode_cv": decode_leaky_standardisation},
        must_fail=["test_decode_hidden"],
    ),
    Mutant(
        name="decode_on_training_set",
        description="the decoder is scored on the samples it was fitted on",
        replacements={"decode_cv": decode_on_training_set},
        must_fail=["test_decode_visible", "test_decode_hidden"],
    ),
    Mutant(
        name="decode_r2_score",
        description="continuous targets scored by R^2 instead of Pearson r",
        replacements={"decode_cv": decode_r2_score},
        must_fail=["test_decode_hidden"],
    ),
    Mutant(
        name="decode_without_standardisation",
        description="features are not standardised",
        replacements={"decode_cv": decode_without_standardisation},
        must_fail=["test_decode_hidden"],
    ),
    Mutant(
        name="sweep_mean_over_folds",
        description="one row per (layer, target) holding the mean over folds",
        replacements={"layer_sweep": sweep_mean_over_folds},
        must_fail=["test_sweep"],
    ),
    Mutant(
        name="sweep_regression_for_all",
        description="kinds ignored: every target decoded as a regression",
        replacements={"layer_sweep": sweep_regression_for_all},
        must_fail=["test_sweep"],
    ),
    Mutant(
        name="sweep_targets_outermost",
        description="rows ordered targets -> layers -> folds",
        replacements={"layer_sweep": sweep_targets_outermost},
        must_fail=["test_sweep"],
    ),
    Mutant(
        name="sites_with_replacement",
        description="sites drawn with replacement",
        replacements={"sites_curve": sites_with_replacement},
        must_fail=["test_sites_curve"],
    ),
    Mutant(
        name="sites_one_draw_per_size",
        description="one subset per size, its score repeated for every draw",
        replacements={"sites_curve": sites_one_draw_per_size},
        must_fail=["test_sites_curve"],
    ),
    Mutant(
        name="sites_reseeded_per_draw",
        description="the generator is re-created for every draw, so all draws pick the same sites",
        replacements={"sites_curve": sites_reseeded_per_draw},
        must_fail=["test_sites_curve"],
    ),
    Mutant(
        name="sites_permutation_prefix",
        description="subsets taken as the first n sites of rng.permutation instead of rng.choice",
        replacements={"sites_curve": sites_permutation_prefix},
        must_fail=["test_sites_curve"],
    ),
    Mutant(
        name="sites_needed_exponent_not_inverted",
        description="n = (b / (a - level)) ** c instead of ** (1 / c)",
        replacements={"sites_needed": sites_needed_exponent_not_inverted},
        must_fail=["test_sites_needed_visible", "test_sites_needed_hidden"],
    ),
    Mutant(
        name="sites_needed_linear_in_log_n",
        description="a straight line in log n without saturation",
        replacements={"sites_needed": sites_needed_linear_in_log_n},
        must_fail=["test_sites_needed_visible", "test_sites_needed_hidden"],
    ),
    Mutant(
        name="predictivity_without_cross_validation",
        description="the mapping predicts the stimuli it was fitted on",
        replacements={"predictivity": predictivity_without_cross_validation},
        must_fail=["test_predictivity"],
    ),
    Mutant(
        name="predictivity_first_repeat",
        description="fits the first repeat instead of the mean over recorded repeats",
        replacements={"predictivity": predictivity_first_repeat},
        must_fail=["test_predictivity"],
    ),
    Mutant(
        name="predictivity_leaky_standardisation",
        description="features standardised with all stimuli, test stimuli included",
        replacements={"predictivity": predictivity_leaky_standardisation},
        must_fail=["test_predictivity"],
    ),
]
