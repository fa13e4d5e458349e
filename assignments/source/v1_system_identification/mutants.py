"""Plausible wrong answers for ``v1_system_identification`` (instructor only, never released).

Each wrong function is self-contained: it repeats the correct computation except for one slip,
so that a mutant of a late function (``fit_and_score``) does not depend on the student's earlier
answers.
"""

import numpy as np
import torch
import torch.nn.functional as F

from course_tools.grading import Mutant


# ------------------------------------------------------------------ correct building blocks
def _noise_and_total(responses, ddof=1):
    responses = np.asarray(responses, dtype=float)
    n_recorded = np.isfinite(responses).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        squares = np.nansum((responses - np.nanmean(responses, axis=0)) ** 2, axis=0)
        per_image = np.where(n_recorded >= 2, squares / (n_recorded - ddof), np.nan)
    noise = np.nanmean(per_image, axis=0)
    total = np.nanvar(responses.reshape(-1, responses.shape[2]), axis=0, ddof=ddof)
    return noise, total


def _feve(responses, predictions):
    noise, total = _noise_and_total(responses)
    mse = np.nanmean((np.asarray(responses, dtype=float) - predictions[None]) ** 2, axis=(0, 1))
    return 1 - (mse - noise) / (total - noise)


def _ridge(X, Y, alpha):
    X, Y = np.asarray(X, dtype=float), np.asarray(Y, dtype=float)
    x_mean, y_mean = X.mean(axis=0), Y.mean(axis=0)
    Xc, Yc = X - x_mean, Y - y_mean
    W = Xc.T @ np.linalg.solve(Xc @ Xc.T + alpha * np.eye(len(Xc)), Yc)
    return W, y_mean - x_mean @ W


def _refit(X, Y, best_alphas):
    W = np.empty((X.shape[1], Y.shape[1]))
    b = np.empty(Y.shape[1])
    for alpha in np.unique(best_alphas):
        columns = best_alphas == alpha
        W[:, columns], b[columns] = _ridge(X, Y[:, columns], alpha)
    return W, b


def _cv_scores(X, Y, alphas, folds):
    scores = np.zeros((len(alphas), Y.shape[1]))
    for train, val in folds:
        total = ((Y[val] - Y[val].mean(axis=0)) ** 2).sum(axis=0)
        for a, alpha in enumerate(alphas):
            W, b = _ridge(X[train], Y[train], alpha)
            scores[a] += 1 - ((Y[val] - X[val] @ W - b) ** 2).sum(axis=0) / total
    return scores / len(folds)


def _ridge_cv(X, Y, alphas, folds):
    X, Y, alphas = np.asarray(X, float), np.asarray(Y, float), np.asarray(alphas, float)
    best = alphas[np.argmax(_cv_scores(X, Y, alphas, folds), axis=0)]
    return (*_refit(X, Y, best), best)


# ------------------------------------------------------------------------------ part 1
def explainable_variance_ddof0(responses):
    """Biased variances (divide by n instead of n - 1) for the noise and the total."""
    noise, total = _noise_and_total(responses, ddof=0)
    return (total - noise) / total


def explainable_variance_ignoring_nan(responses):
    """np.var / np.mean: one missing repeat makes the whole neuron NaN."""
    responses = np.asarray(responses, dtype=float)
    noise = np.mean(np.var(responses, axis=0, ddof=1), axis=0)
    total = np.var(responses.reshape(-1, responses.shape[2]), axis=0, ddof=1)
    return (total - noise) / total


def explainable_variance_of_means(responses):
    """Total variance of the trial-averaged responses instead of the single trials."""
    noise, _ = _noise_and_total(responses)
    total = np.nanvar(np.nanmean(np.asarray(responses, dtype=float), axis=0), axis=0, ddof=1)
    return (total - noise) / total


def feve_without_noise_correction(responses, predictions):
    """Plain fraction of variance explained, 1 - MSE / V: punishes the model for the noise."""
    _, total = _noise_and_total(responses)
    mse = np.nanmean((np.asarray(responses, dtype=float) - predictions[None]) ** 2, axis=(0, 1))
    return 1 - mse / total


def feve_against_means(responses, predictions):
    """MSE against the trial-averaged responses instead of the single trials."""
    noise, total = _noise_and_total(responses)
    means = np.nanmean(np.asarray(responses, dtype=float), axis=0)
    mse = np.nanmean((means - predictions) ** 2, axis=0)
    return 1 - (mse - noise) / (total - noise)


# ------------------------------------------------------------------------------ part 2
def ridge_fit_without_intercept(X, Y, alpha):
    """No centring: the line is forced through the origin and b is 0."""
    X, Y = np.asarray(X, dtype=float), np.asarray(Y, dtype=float)
    W = X.T @ np.linalg.solve(X @ X.T + alpha * np.eye(len(X)), Y)
    return W, np.zeros(Y.shape[1])


def ridge_fit_penalising_intercept(X, Y, alpha):
    """A column of ones appended to X, its weight penalised like the others."""
    X, Y = np.asarray(X, dtype=float), np.asarray(Y, dtype=float)
    augmented = np.hstack([X, np.ones((len(X), 1))])
    coef = augmented.T @ np.linalg.solve(augmented @ augmented.T + alpha * np.eye(len(X)), Y)
    return coef[:-1], coef[-1]


def ridge_cv_on_training_error(X, Y, alphas, folds):
    """Chooses each alpha by the error on the samples the model was fitted on."""
    X, Y, alphas = np.asarray(X, float), np.asarray(Y, float), np.asarray(alphas, float)
    scores = np.zeros((len(alphas), Y.shape[1]))
    for a, alpha in enumerate(alphas):
        W, b = _ridge(X, Y, alpha)
        scores[a] = -((Y - X @ W - b) ** 2).sum(axis=0)
    best = alphas[np.argmax(scores, axis=0)]
    return (*_refit(X, Y, best), best)


def ridge_cv_one_alpha(X, Y, alphas, folds):
    """One alpha for all targets (best mean R^2 over targets) instead of one per target."""
    X, Y, alphas = np.asarray(X, float), np.asarray(Y, float), np.asarray(alphas, float)
    scores = _cv_scores(X, Y, alphas, folds)
    best = np.full(Y.shape[1], alphas[np.argmax(scores.mean(axis=1))])
    return (*_refit(X, Y, best), best)


def ridge_cv_without_refit(X, Y, alphas, folds):
    """Returns the weights fitted on the last fold's training part instead of all samples."""
    X, Y, alphas = np.asarray(X, float), np.asarray(Y, float), np.asarray(alphas, float)
    best = alphas[np.argmax(_cv_scores(X, Y, alphas, folds), axis=0)]
    train, _ = folds[-1]
    W, b = _refit(X[train], Y[train], best)
    return W, b, best


# ------------------------------------------------------------------------------ part 3
def _pair(size, cx, cy, orientation, frequency, sigma, swap_axes=False):
    y, x = np.mgrid[0:size, 0:size].astype(float)
    theta = np.deg2rad(orientation)
    u = -(x - cx) * np.sin(theta) + (y - cy) * np.cos(theta)
    if swap_axes:
        u = (x - cx) * np.cos(theta) + (y - cy) * np.sin(theta)
    envelope = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))
    return np.stack([envelope * np.cos(2 * np.pi * frequency * u + ph) for ph in (0, np.pi / 2)])


def gabor_pair_not_normalised(size, cx, cy, orientation, frequency, sigma):
    """Zero-mean but not divided by the norm: gains differ between filters."""
    pair = _pair(size, cx, cy, orientation, frequency, sigma)
    return pair - pair.mean(axis=(1, 2), keepdims=True)


def gabor_pair_rotated(size, cx, cy, orientation, frequency, sigma):
    """The carrier varies along the bars instead of across them (orientation off by 90 deg)."""
    pair = _pair(size, cx, cy, orientation, frequency, sigma, swap_axes=True)
    pair -= pair.mean(axis=(1, 2), keepdims=True)
    return pair / np.linalg.norm(pair.reshape(2, -1), axis=1)[:, None, None]


def gabor_features_squared_energy(images, pairs):
    """Energy e**2 + o**2 without the square root."""
    flat = np.asarray(images, dtype=float).reshape(len(images), -1)
    even = flat @ pairs[:, 0].reshape(len(pairs), -1).T
    odd = flat @ pairs[:, 1].reshape(len(pairs), -1).T
    return np.concatenate([even, odd, even**2 + odd**2], axis=1)


def gabor_features_interleaved(images, pairs):
    """Columns ordered pair by pair (even, odd, energy of pair 0, then pair 1, ...)."""
    flat = np.asarray(images, dtype=float).reshape(len(images), -1)
    even = flat @ pairs[:, 0].reshape(len(pairs), -1).T
    odd = flat @ pairs[:, 1].reshape(len(pairs), -1).T
    return np.stack([even, odd, np.sqrt(even**2 + odd**2)], axis=2).reshape(len(images), -1)


def to_network_input_nearest(images):
    """Nearest-neighbour upsampling: blocky images with aliased edges."""
    batch = torch.as_tensor(np.asarray(images, dtype=np.float32))[:, None]
    return F.interpolate(batch, size=(64, 64), mode="nearest").repeat(1, 3, 1, 1)


def to_network_input_align_corners(images):
    """Bilinear with align_corners=True: the image is stretched by a fraction of a pixel."""
    batch = torch.as_tensor(np.asarray(images, dtype=np.float32))[:, None]
    batch = F.interpolate(batch, size=(64, 64), mode="bilinear", align_corners=True)
    return batch.repeat(1, 3, 1, 1)


# ------------------------------------------------------------------------------ part 4
def fit_and_score_alpha_on_test(
    train_features, train_targets, test_features, test_responses, alphas, folds
):
    """Picks each neuron's alpha by its FEVE on the test images: an optimistic, biased score."""
    X, Y = np.asarray(train_features, float), np.asarray(train_targets, float)
    best = np.full(Y.shape[1], -np.inf)
    for alpha in alphas:
        W, b = _ridge(X, Y, alpha)
        best = np.maximum(best, _feve(test_responses, np.maximum(test_features @ W + b, 0.0)))
    return best


def fit_and_score_without_rectification(
    train_features, train_targets, test_features, test_responses, alphas, folds
):
    """Forgets the output nonlinearity: negative predicted spike counts."""
    W, b, _ = _ridge_cv(train_features, train_targets, alphas, folds)
    return _feve(test_responses, test_features @ W + b)


MUTANTS = [
    Mutant(
        name="ev_ddof0",
        description="explainable_variance uses biased variances (ddof=0)",
        replacements={"explainable_variance": explainable_variance_ddof0},
        must_fail=["test_ev_visible", "test_ev_hidden"],
    ),
    Mutant(
        name="ev_ignores_nan",
        description="explainable_variance uses np.var / np.mean, so NaN repeats propagate",
        replacements={"explainable_variance": explainable_variance_ignoring_nan},
        must_fail=["test_ev_visible", "test_ev_hidden"],
    ),
    Mutant(
        name="ev_variance_of_means",
        description="explainable_variance takes the total variance of trial-averaged responses",
        replacements={"explainable_variance": explainable_variance_of_means},
        must_fail=["test_ev_visible", "test_ev_hidden"],
    ),
    Mutant(
        name="feve_no_noise_correction",
        description="feve computes 1 - MSE / V, without subtracting the noise variance",
        replacements={"feve": feve_without_noise_correction},
        must_fail=["test_feve_visible", "test_feve_hidden"],
    ),
    Mutant(
        name="feve_against_means",
        description="feve measures the error against trial-averaged responses",
        replacements={"feve": feve_against_means},
        must_fail=["test_feve_visible", "test_feve_hidden"],
    ),
    Mutant(
        name="ridge_no_intercept",
        description="ridge_fit does not centre the data and returns b = 0",
        replacements={"ridge_fit": ridge_fit_without_intercept},
        must_fail=["test_ridge_visible", "test_ridge_hidden"],
    ),
    Mutant(
        name="ridge_penalised_intercept",
        description="ridge_fit penalises the intercept like the weights",
        replacements={"ridge_fit": ridge_fit_penalising_intercept},
        must_fail=["test_ridge_visible", "test_ridge_hidden"],
    ),
    Mutant(
        name="ridge_cv_training_error",
        description="ridge_cv chooses alpha by the error on the training samples",
        replacements={"ridge_cv": ridge_cv_on_training_error},
        must_fail=["test_ridge_cv_visible", "test_ridge_cv_hidden"],
    ),
    Mutant(
        name="ridge_cv_one_alpha",
        description="ridge_cv chooses one alpha for all targets",
        replacements={"ridge_cv": ridge_cv_one_alpha},
        must_fail=["test_ridge_cv_visible", "test_ridge_cv_hidden"],
    ),
    Mutant(
        name="ridge_cv_no_refit",
        description="ridge_cv returns weights fitted on part of the training samples",
        replacements={"ridge_cv": ridge_cv_without_refit},
        must_fail=["test_ridge_cv_visible", "test_ridge_cv_hidden"],
    ),
    Mutant(
        name="gabor_not_normalised",
        description="gabor_pair does not divide the filters by their norm",
        replacements={"gabor_pair": gabor_pair_not_normalised},
        must_fail=["test_gabor_visible", "test_gabor_hidden", "test_features_hidden"],
    ),
    Mutant(
        name="gabor_rotated",
        description="gabor_pair puts the carrier along the bars (orientation off by 90 degrees)",
        replacements={"gabor_pair": gabor_pair_rotated},
        must_fail=["test_gabor_visible", "test_gabor_hidden"],
    ),
    Mutant(
        name="features_squared_energy",
        description="gabor_features returns e**2 + o**2 instead of its square root",
        replacements={"gabor_features": gabor_features_squared_energy},
        must_fail=["test_features_hidden"],
    ),
    Mutant(
        name="features_interleaved",
        description="gabor_features orders the columns pair by pair",
        replacements={"gabor_features": gabor_features_interleaved},
        must_fail=["test_features_hidden"],
    ),
    Mutant(
        name="network_input_nearest",
        description="to_network_input upsamples by nearest neighbour",
        replacements={"to_network_input": to_network_input_nearest},
        must_fail=["test_network_input"],
    ),
    Mutant(
        name="network_input_align_corners",
        description="to_network_input uses bilinear interpolation with align_corners=True",
        replacements={"to_network_input": to_network_input_align_corners},
        must_fail=["test_network_input"],
    ),
    Mutant(
        name="alpha_on_test_data",
        description="fit_and_score chooses each neuron's alpha by its test FEVE",
        replacements={"fit_and_score": fit_and_score_alpha_on_test},
        must_fail=["test_fit_and_score_hidden"],
    ),
    Mutant(
        name="no_output_nonlinearity",
        description="fit_and_score forgets to rectify the predictions",
        replacements={"fit_and_score": fit_and_score_without_rectification},
        must_fail=["test_fit_and_score_hidden"],
    ),
]
