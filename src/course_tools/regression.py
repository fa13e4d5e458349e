"""Linear mappings from model features to neural responses.

Two tools live here:

- :class:`RidgeCV`, a scikit-learn ridge regressor that picks the penalty ``alpha`` separately for
  every target (neuron) by K-fold cross-validation. One singular value decomposition per fold
  serves every alpha and every target, so fitting thousands of neurons costs little more than
  fitting one (the method of ``himalaya``, Dupré la Tour et al. 2022, NeuroImage 264:119728).
- :func:`neural_predictivity`, the Brain-Score neural predictivity recipe (Schrimpf et al. 2018,
  https://doi.org/10.1101/407007): cross-validated linear mapping on held-out stimuli, Pearson r
  per neuron, normalised by each neuron's split-half noise ceiling.

The ridge trick
---------------
Ridge regression with penalty :math:`\\alpha` has the closed form
:math:`W = (X^T X + \\alpha I)^{-1} X^T Y`. With the thin SVD :math:`X = U S V^T` this becomes

.. math:: W(\\alpha) = V \\,\\mathrm{diag}\\!\\left(\\frac{s}{s^2 + \\alpha}\\right) U^T Y,

so once :math:`U, s, V` are known, each alpha costs only a rescaling of :math:`U^T Y` and one
matrix product. When there are fewer samples than features the same holds with the
eigendecomposition of the ``(n_samples, n_samples)`` kernel :math:`X X^T = U \\,\\mathrm{diag}(s^2)
U^T`: :math:`W(\\alpha) = X^T U \\,\\mathrm{diag}(1 / (s^2 + \\alpha))\\, U^T Y`.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.cross_decomposition import PLSRegression
from sklearn.model_selection import KFold, ShuffleSplit, StratifiedShuffleSplit, check_cv
from sklearn.utils.validation import check_is_fitted, validate_data
from tqdm.auto import tqdm

from course_tools.metrics import check_responses, pearson_r, split_half_reliability
from course_tools.seeding import SeedLike, check_random_state

__all__ = ["DEFAULT_ALPHAS", "PredictivityResult", "RidgeCV", "neural_predictivity"]

#: Default ridge penalties: 19 values, half a decade apart, from 1e-3 to 1e6.
DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-3, 6, 19))


# --------------------------------------------------------------------------------------------
# RidgeCV
# --------------------------------------------------------------------------------------------


class RidgeCV(RegressorMixin, BaseEstimator):
    """Ridge regression with one penalty per target, chosen by K-fold cross-validation.

    For every fold the training features are decomposed once (SVD, or the eigendecomposition of
    the kernel ``X X^T`` when a fold has fewer samples than features); that single decomposition
    gives the validation predictions of every alpha for every target. Targets are processed in
    batches of ``batch_size`` so memory stays bounded with many neurons. The final model is
    refitted on all samples with each target's chosen alpha, again from one decomposition.

    The validation score is the coefficient of determination R^2 of each validation fold
    (scikit-learn's :func:`~sklearn.metrics.r2_score`, including its convention for a fold whose
    targets are constant: 1 for a perfect prediction, else 0), averaged over folds. This is what
    ``GridSearchCV(Ridge(), {"alpha": alphas}, cv=folds)`` maximises for each target, so both
    choose the same alpha.

    Parameters
    ----------
    alphas : array_like, shape (n_alphas,), default=DEFAULT_ALPHAS
        Positive penalties to try (default: ``np.logspace(-3, 6, 19)``). If many targets choose
        the first or last value, widen the grid.
    cv : int, cross-validation splitter or iterable of (train, test) index arrays, default=5
        An int gives ``KFold(cv)`` without shuffling, as in scikit-learn. Every validation fold
        needs at least 2 samples (R^2 is undefined on one sample).
    alpha_per_target : bool, default=True
        Choose an alpha for each target separately. If False, choose the single alpha with the
        best validation R^2 averaged over targets (what scikit-learn's ``RidgeCV(cv=...)`` does).
    fit_intercept : bool, default=True
        Fit an intercept. The features and targets are centred inside each training fold, so
        no information leaks from the validation samples.
    batch_size : int or None, default=1000
        Number of targets processed at once; ``None`` processes all targets together. It only
        changes memory use, not results.
    progress : bool, default=False
        Show a progress bar over the folds.

    Attributes
    ----------
    alpha_ : float or ndarray, shape (n_targets,)
        Chosen penalty: one per target if ``alpha_per_target`` and ``y`` is 2-D, else a float.
    coef_ : ndarray, shape (n_targets, n_features) or (n_features,)
        Weights of the refitted model; 1-D when ``y`` was 1-D (as in scikit-learn).
    intercept_ : float or ndarray, shape (n_targets,)
        Intercept; ``0.0`` when ``fit_intercept=False``.
    cv_scores_ : ndarray, shape (n_alphas, n_targets)
        Validation R^2 of every alpha for every target, averaged over folds (``n_targets`` is 1
        when ``y`` was 1-D).
    best_score_ : float or ndarray, shape (n_targets,)
        Validation R^2 at the chosen alpha (averaged over targets if not ``alpha_per_target``).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Feature names, when ``X`` was a DataFrame with string column names.

    Notes
    -----
    A target that is constant over all samples has no defined validation R^2, so its alpha is
    arbitrary: ``fit`` warns, and with ``fit_intercept=True`` such a target gets ``coef_ = 0``
    and ``intercept_`` equal to the constant (exactly, never NaN).

    All computation is in float64. ``sample_weight`` and sparse inputs are not supported.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 50))
    >>> Y = X @ rng.standard_normal((50, 3)) + rng.standard_normal((200, 3))
    >>> model = RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(X, Y)
    >>> model.alpha_.shape, model.coef_.shape, model.cv_scores_.shape
    ((3,), (3, 50), (13, 3))
    """

    def __init__(
        self,
        alphas=DEFAULT_ALPHAS,
        *,
        cv=5,
        alpha_per_target: bool = True,
        fit_intercept: bool = True,
        batch_size: int | None = 1000,
        progress: bool = False,
    ):
        self.alphas = alphas
        self.cv = cv
        self.alpha_per_target = alpha_per_target
        self.fit_intercept = fit_intercept
        self.batch_size = batch_size
        self.progress = progress

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X, y) -> RidgeCV:
        """Choose the penalties by cross-validation, then refit on all samples.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
            Features (for example a network layer's activations to each stimulus).
        y : array_like, shape (n_samples,) or (n_samples, n_targets)
            Targets (for example trial-averaged responses of each neuron).

        Returns
        -------
        self : RidgeCV
        """
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        alphas = _check_alphas(self.alphas)
        batch_size = _check_batch_size(self.batch_size)
        for name in ("alpha_per_target", "fit_intercept"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}.")
        Y = y[:, None] if y.ndim == 1 else y
        folds = _check_folds(self.cv, X, y)

        constant = np.flatnonzero(_constant_columns(Y))
        if constant.size:
            _warn_constant_targets(constant, self.fit_intercept)

        scores = np.zeros((alphas.size, Y.shape[1]))
        for train, test in tqdm(folds, desc="RidgeCV folds", disable=not self.progress):
            scores += _fold_scores(
                X[train], Y[train], X[test], Y[test], alphas, self.fit_intercept, batch_size
            )
        scores /= len(folds)

        if self.alpha_per_target:
            best = np.argmax(scores, axis=0)
        else:
            best = np.full(Y.shape[1], np.argmax(scores.mean(axis=1)))
        coef, intercept = _refit(X, Y, alphas[best], self.fit_intercept, batch_size)

        one_d = y.ndim == 1
        self.cv_scores_ = scores
        if self.alpha_per_target and not one_d:
            self.alpha_ = alphas[best]
            self.best_score_ = scores[best, np.arange(Y.shape[1])]
        else:
            self.alpha_ = float(alphas[best[0]])
            self.best_score_ = float(scores[best[0]].mean())
        self.coef_ = coef[0] if one_d else coef
        if not self.fit_intercept:
            self.intercept_ = 0.0
        else:
            self.intercept_ = float(intercept[0]) if one_d else intercept
        return self

    def predict(self, X) -> np.ndarray:
        """Predict the targets.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)

        Returns
        -------
        ndarray, shape (n_samples,) or (n_samples, n_targets)
            1-D when the model was fitted on a 1-D ``y``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return X @ self.coef_.T + self.intercept_


def _warn_constant_targets(constant: np.ndarray, fit_intercept: bool) -> None:
    more = " ..." if constant.size > 10 else ""
    handled = (
        "they get coef_ = 0 and intercept_ = the constant" if fit_intercept else "they are fitted"
    )
    warnings.warn(
        f"y has {constant.size} constant target(s) (columns {constant[:10].tolist()}{more}): "
        f"their validation R^2 is undefined, so their alpha_ is arbitrary; {handled}. Drop them "
        "if they are silent or dead channels.",
        UserWarning,
        stacklevel=3,
    )


def _check_alphas(alphas) -> np.ndarray:
    try:
        a = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    except (TypeError, ValueError) as err:
        raise TypeError(f"alphas must be a sequence of positive numbers, got {alphas!r}.") from err
    if a.ndim != 1 or a.size == 0:
        raise ValueError(
            f"alphas must be a non-empty 1-D sequence of positive numbers, got shape {a.shape}."
        )
    if not np.isfinite(a).all() or (a <= 0).any():
        raise ValueError(
            f"alphas must be positive and finite, got {a.tolist()}. Use a grid such as "
            "np.logspace(-3, 6, 19); for no penalty use sklearn.linear_model.LinearRegression."
        )
    return a


def _check_batch_size(batch_size) -> int | None:
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"batch_size must be a positive int or None, got {batch_size!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size}.")
    return int(batch_size)


def _check_folds(cv, X: np.ndarray, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Turn ``cv`` into a list of (train, test) index arrays and check every fold."""
    n_samples = X.shape[0]
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        if cv < 2:
            raise ValueError(f"cv must be at least 2 folds, got cv={cv}.")
        if n_samples < 2 * cv:
            raise ValueError(
                f"RidgeCV with cv={cv} needs at least {2 * cv} samples (2 per validation fold, "
                f"since R^2 needs 2 samples), got n_samples={n_samples}. Use fewer folds or more "
                "samples."
            )
    splitter = check_cv(cv, y, classifier=False)
    folds = []
    for train, test in splitter.split(X, y):
        train, test = np.arange(n_samples)[train], np.arange(n_samples)[test]
        if train.size < 1 or test.size < 2:
            raise ValueError(
                f"Every cross-validation fold needs at least 1 training and 2 validation samples, "
                f"got a fold with {train.size} training and {test.size} validation samples."
            )
        folds.append((train, test))
    if not folds:
        raise ValueError("cv produced no (train, test) split.")
    return folds


def _constant_columns(values: np.ndarray) -> np.ndarray:
    """True for each column whose values are all equal, shape (n_columns,)."""
    return values.max(axis=0) == values.min(axis=0)


def _batches(n_targets: int, batch_size: int | None) -> list[slice]:
    step = n_targets if batch_size is None else batch_size
    return [slice(start, min(start + step, n_targets)) for start in range(0, n_targets, step)]


def _centre(X: np.ndarray, Y: np.ndarray, fit_intercept: bool):
    """Centre features and targets (when fitting an intercept); return the means too.

    A target that is constant over these samples is set to exactly zero after centring and its
    mean to exactly the constant, so no rounding noise is fitted.
    """
    if not fit_intercept:
        return X, Y, np.zeros(X.shape[1]), np.zeros(Y.shape[1])
    x_mean = X.mean(axis=0)
    y_mean = Y.mean(axis=0)
    constant = _constant_columns(Y)
    y_mean[constant] = Y[0, constant]
    Yc = Y - y_mean
    Yc[:, constant] = 0.0
    return X - x_mean, Yc, x_mean, y_mean


class _Spectrum:
    """One decomposition of centred training features that serves every alpha.

    For both forms, the fitted weights are ``W(alpha) = B @ (shrink(alpha)[:, None] * (U.T @ Y))``
    where ``B`` maps the spectral components back to features.

    - primal (n_samples >= n_features): ``X = U diag(s) V^T``, ``shrink = s / (s^2 + alpha)``,
      ``B = V``.
    - kernel (n_samples < n_features): ``X X^T = U diag(s^2) U^T``, ``shrink = 1 / (s^2 + alpha)``,
      ``B = X^T U``.

    Components whose squared singular value is numerically zero are dropped: they carry no signal.
    """

    def __init__(self, Xc: np.ndarray):
        n_samples, n_features = Xc.shape
        self.kernel = n_samples < n_features
        if self.kernel:
            eigenvalues, U = np.linalg.eigh(Xc @ Xc.T)
            s2 = np.clip(eigenvalues, 0.0, None)
        else:
            U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
            s2 = s**2
        tol = s2.max(initial=0.0) * max(n_samples, n_features) * np.finfo(np.float64).eps
        keep = s2 > tol
        self.U = U[:, keep]
        self.s2 = s2[keep]
        self.s = np.sqrt(self.s2)
        self._Xc = Xc
        self._V = None if self.kernel else Vt[keep].T

    def shrink(self, alphas: np.ndarray) -> np.ndarray:
        """Spectral filter, shape (n_components, len(alphas))."""
        numerator = 1.0 if self.kernel else self.s[:, None]
        return numerator / (self.s2[:, None] + alphas[None, :])

    def project(self, X_other: np.ndarray) -> np.ndarray:
        """``X_other @ B``: other (centred) samples in the spectral basis, (n_other, n_comp)."""
        if self.kernel:
            return (X_other @ self._Xc.T) @ self.U
        return X_other @ self._V

    def weights(self, coefs_spectral: np.ndarray) -> np.ndarray:
        """``B @ coefs_spectral``: feature weights, shape (n_features, n_targets)."""
        if self.kernel:
            return self._Xc.T @ (self.U @ coefs_spectral)
        return self._V @ coefs_spectral


def _sum_of_squares(a: np.ndarray) -> np.ndarray:
    """Column-wise sum of squares, shape (n_columns,)."""
    return np.einsum("ij,ij->j", a, a)


def _r2_scores(sse: np.ndarray, sst: np.ndarray) -> np.ndarray:
    """Per-column R^2 = 1 - SSE / SST, with scikit-learn's convention for constant columns
    (SST = 0): 1 for a perfect prediction, else 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1.0 - sse / sst
    flat = sst == 0
    r2[flat] = np.where(sse[flat] == 0, 1.0, 0.0)
    return r2


def _fold_scores(X_train, Y_train, X_test, Y_test, alphas, fit_intercept: bool, batch_size):
    """Validation R^2 of every alpha (rows) for every target (columns) on one fold."""
    Xc, Yc, x_mean, y_mean = _centre(X_train, Y_train, fit_intercept)
    spectrum = _Spectrum(Xc)
    shrink = spectrum.shrink(alphas)  # (n_components, n_alphas)
    projected_test = spectrum.project(X_test - x_mean)  # (n_test, n_components)
    scores = np.empty((alphas.size, Y_train.shape[1]))
    for cols in _batches(Y_train.shape[1], batch_size):
        UtY = spectrum.U.T @ Yc[:, cols]
        target = Y_test[:, cols] - y_mean[cols]
        sst = _sum_of_squares(Y_test[:, cols] - Y_test[:, cols].mean(axis=0))
        for i in range(alphas.size):
            residual = target - (projected_test * shrink[:, i]) @ UtY
            scores[i, cols] = _r2_scores(_sum_of_squares(residual), sst)
    return scores


def _refit(X, Y, alpha_per_column: np.ndarray, fit_intercept: bool, batch_size):
    """Ridge on all samples with one alpha per target. Returns coef (n_targets, n_features)."""
    Xc, Yc, x_mean, y_mean = _centre(X, Y, fit_intercept)
    spectrum = _Spectrum(Xc)
    coef = np.empty((Y.shape[1], X.shape[1]))
    for cols in _batches(Y.shape[1], batch_size):
        coefs_spectral = spectrum.shrink(alpha_per_column[cols]) * (spectrum.U.T @ Yc[:, cols])
        coef[cols] = spectrum.weights(coefs_spectral).T
    intercept = y_mean - coef @ x_mean
    return coef, intercept


# --------------------------------------------------------------------------------------------
# Brain-Score neural predictivity
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False, eq=False)
class PredictivityResult:
    """Outcome of :func:`neural_predictivity`.

    Attributes
    ----------
    r : ndarray, shape (n_splits, n_neurons)
        Pearson r between predicted and repeat-averaged held-out responses, per split and neuron.
    ceiling : ndarray, shape (n_neurons,)
        Split-half reliability per neuron (Spearman-Brown corrected); all ones if not ceiled.
    normalized : ndarray, shape (n_splits, n_neurons)
        ``r ** 2 / ceiling``; NaN where the ceiling is not positive or ``r`` is undefined.
    score : float
        Mean over splits of the median over neurons of ``normalized``.
    score_sem : float
        Standard error of ``score`` over splits (as Brain-Score: std with ddof=0 / sqrt(n_splits)).
    raw_r : float
        Mean over splits of the median over neurons of ``r`` (Brain-Score's raw score).
    raw_r_sem : float
        Standard error of ``raw_r`` over splits.
    mapping : str
        Name of the mapping ("ridge", "pls" or the estimator's class name).
    ceiled : bool
        Whether ``normalized`` used the noise ceiling (False: ``normalized = r ** 2``).
    test_indices : tuple of ndarray
        Held-out stimulus indices of every split.
    predictions : tuple of ndarray
        Predicted responses to the held-out stimuli of every split, each (n_test, n_neurons).
    alphas : ndarray, shape (n_splits, n_neurons), or None
        Ridge penalty chosen for each neuron in each split (None for other mappings).
    """

    r: np.ndarray
    ceiling: np.ndarray
    normalized: np.ndarray
    score: float
    score_sem: float
    raw_r: float
    raw_r_sem: float
    mapping: str
    ceiled: bool
    test_indices: tuple[np.ndarray, ...]
    predictions: tuple[np.ndarray, ...]
    alphas: np.ndarray | None = None

    @property
    def n_splits(self) -> int:
        return self.r.shape[0]

    @property
    def n_neurons(self) -> int:
        return self.r.shape[1]

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: one row per split and neuron.

        Returns
        -------
        pandas.DataFrame
            Columns ``split``, ``neuron``, ``r``, ``ceiling``, ``normalized``.
        """
        split, neuron = np.meshgrid(
            np.arange(self.n_splits), np.arange(self.n_neurons), indexing="ij"
        )
        return pd.DataFrame(
            {
                "split": split.ravel(),
                "neuron": neuron.ravel(),
                "r": self.r.ravel(),
                "ceiling": np.broadcast_to(self.ceiling, self.r.shape).ravel(),
                "normalized": self.normalized.ravel(),
            }
        )

    def __repr__(self) -> str:
        score_name = "median r^2/ceiling" if self.ceiled else "median r^2 (not ceiled)"
        lines = [
            f"PredictivityResult(mapping={self.mapping!r}, n_splits={self.n_splits}, "
            f"n_neurons={self.n_neurons})",
            f"  score ({score_name}, mean ± SEM over splits): "
            f"{self.score:.3f} ± {self.score_sem:.3f}",
            f"  raw r (median over neurons): {self.raw_r:.3f} ± {self.raw_r_sem:.3f}",
        ]
        if self.ceiled:
            lines.append(f"  ceiling (median over neurons): {np.nanmedian(self.ceiling):.3f}")
        return "\n".join(lines)


def neural_predictivity(
    features,
    responses,
    *,
    mapping="ridge",
    cv=None,
    stratify=None,
    n_splits: int = 10,
    train_size: float = 0.9,
    seed: SeedLike = 0,
    n_components: int = 25,
    ceiling: bool = True,
    progress: bool = True,
) -> PredictivityResult:
    """How well a linear map of model features predicts held-out neural responses (Brain-Score).

    Recipe (Brain-Score ``regression_correlation`` and ``internal_consistency``):

    1. Average each neuron's responses over its recorded repeats.
    2. Split the stimuli ``n_splits`` times into ``train_size`` train and the rest test
       (``StratifiedShuffleSplit`` on the ``stratify`` labels, e.g. object identity;
       ``ShuffleSplit`` when ``stratify`` is None; or your own ``cv``).
    3. Fit the mapping on the training stimuli only; predict the test stimuli.
    4. Pearson r per neuron on the test stimuli.
    5. Noise ceiling per neuron: :func:`~course_tools.metrics.split_half_reliability`
       (10 random halves of the repeats, Spearman-Brown corrected), computed once on all stimuli.
    6. Normalised score per neuron ``r ** 2 / ceiling``: the fraction of the explainable
       (repeatable) variance that the prediction explains, 1 for a model that predicts the true
       mean response. Median over neurons per split; mean and SEM over splits.

    This normalisation is the course's choice, not Brain-Score's. Brain-Score's
    ``explained_variance`` first takes the median over neuroids of ``r`` and of the ceiling and
    then computes ``(median r / median ceiling) ** 2`` (a ratio of medians, squared), which
    assumes the model is as noisy as the neurons (Yamins et al. 2014); here each neuron's
    ``r ** 2 / ceiling`` comes first and the median over neurons after (a median of ratios),
    and for a deterministic model it is the one that reaches 1. The two agree only when r and
    the ceiling are the same for every neuron. A negative r also gives a positive
    ``r ** 2 / ceiling``: check ``raw_r`` too.

    Parameters
    ----------
    features : array_like, shape (n_stimuli, n_features)
        Model features for each stimulus (NumPy array; a dataset object is not accepted, pass
        its arrays).
    responses : array_like, shape (n_repeats, n_stimuli, n_neurons)
        Single-trial responses, NaN where a repeat was not recorded.
    mapping : {"ridge", "pls"} or scikit-learn regressor, default="ridge"
        "ridge": :class:`RidgeCV` with a per-neuron alpha chosen by shuffled 5-fold CV on the
        training stimuli only. "pls": ``PLSRegression(n_components, scale=False)``, Brain-Score's
        default. A regressor object is cloned and fitted afresh on every split.
    cv : int, splitter or iterable of (train, test) index arrays, optional
        Your own splits of the stimuli; overrides ``n_splits`` and ``train_size``. A splitter
        receives ``stratify`` as its ``y`` (so ``StratifiedKFold`` works).
    stratify : array_like, shape (n_stimuli,), optional
        Labels to balance across train and test (every label appears in every test set).
    n_splits : int, default=10
    train_size : float, default=0.9
        Fraction of stimuli used to fit the mapping.
    seed : int or numpy.random.Generator, default=0
        Seeds the splits, the ceiling's random halves and the ridge inner folds.
    n_components : int, default=25
        Number of PLS components (``mapping="pls"`` only).
    ceiling : bool, default=True
        Normalise by the noise ceiling. If False, ``normalized = r ** 2`` and the ceiling is 1
        (then a single repeat is enough).
    progress : bool, default=True
        Show a progress bar over splits.

    Returns
    -------
    PredictivityResult
        ``.score``, ``.score_sem``, ``.raw_r``, per-split arrays and ``.to_frame()``.
    """
    rng = check_random_state(seed)
    X = _check_features(features)
    R = check_responses(responses)
    if X.shape[0] != R.shape[1]:
        raise ValueError(
            f"features has {X.shape[0]} stimuli (rows) but responses has {R.shape[1]} stimuli "
            f"(axis 1 of shape {R.shape}). Pass features of shape (n_stimuli, n_features) in the "
            "same stimulus order as responses (n_repeats, n_stimuli, n_neurons)."
        )
    if not isinstance(ceiling, bool | np.bool_):
        raise TypeError(f"ceiling must be True or False, got {ceiling!r}.")
    Y = _repeat_average(R)
    labels = _check_stratify(stratify, X.shape[0])
    split_seed = int(rng.integers(2**31 - 1))
    folds = _predictivity_splits(X.shape[0], cv, labels, n_splits, train_size, split_seed)
    estimator = _make_mapping(mapping, n_components, rng)
    mapping_name = mapping if isinstance(mapping, str) else type(mapping).__name__

    silent = _constant_columns(Y)
    if silent.any():
        warnings.warn(
            f"{silent.sum()} of {silent.size} neurons have the same mean response to every "
            f"stimulus (neurons {np.flatnonzero(silent)[:10].tolist()}): their r is undefined "
            "(NaN) and they are left out of the medians.",
            UserWarning,
            stacklevel=2,
        )
    if ceiling:
        neuron_ceiling = split_half_reliability(R, n_splits=10, seed=rng)
    else:
        neuron_ceiling = np.ones(Y.shape[1])

    r = np.empty((len(folds), Y.shape[1]))
    predictions, alphas = [], []
    for i, (train, test) in enumerate(
        tqdm(folds, desc="neural predictivity", disable=not progress)
    ):
        model = clone(estimator)
        _check_mapping_size(model, train.size, X.shape[1])
        with warnings.catch_warnings():
            # silent neurons were reported once above
            warnings.filterwarnings("ignore", message="y has .* constant target", module=__name__)
            model.fit(X[train], Y[train])
        predicted = np.asarray(model.predict(X[test]), dtype=np.float64).reshape(test.size, -1)
        if not np.isfinite(predicted).all():
            raise ValueError(
                f"The {mapping_name} mapping predicted NaN or inf on split {i}. Check the "
                "features' scale (standardise them) or use another mapping."
            )
        r[i] = pearson_r(Y[test], predicted)
        predictions.append(predicted)
        if isinstance(model, RidgeCV):
            alphas.append(np.broadcast_to(model.alpha_, (Y.shape[1],)))

    normalized = _normalize(r, neuron_ceiling, silent)
    per_split_score = _nanmedian_rows(normalized)
    per_split_r = _nanmedian_rows(r)
    return PredictivityResult(
        r=r,
        ceiling=neuron_ceiling,
        normalized=normalized,
        score=float(np.mean(per_split_score)),
        score_sem=_sem(per_split_score),
        raw_r=float(np.mean(per_split_r)),
        raw_r_sem=_sem(per_split_r),
        mapping=mapping_name,
        ceiled=ceiling,
        test_indices=tuple(test for _, test in folds),
        predictions=tuple(predictions),
        alphas=np.stack(alphas) if alphas else None,
    )


def _check_features(features) -> np.ndarray:
    try:
        X = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(
            "features must be a numeric array of shape (n_stimuli, n_features), got "
            f"{type(features).__name__} ({err}). Pass the activation array itself."
        ) from err
    if X.ndim != 2:
        raise ValueError(
            f"features must have shape (n_stimuli, n_features), got shape {X.shape}. Flatten "
            "each stimulus' activations: features.reshape(len(features), -1)."
        )
    if not np.isfinite(X).all():
        raise ValueError(
            "features contain NaN or inf values. Check the model's activations (an overflow, or a "
            "division by zero in a normalisation) before fitting a mapping."
        )
    return X


def _repeat_average(R: np.ndarray) -> np.ndarray:
    """Mean over the recorded repeats, (n_stimuli, n_neurons); errors on unrecorded cells."""
    recorded = np.isfinite(R).any(axis=0)
    if not recorded.all():
        neurons = np.flatnonzero(~recorded.all(axis=0))[:10].tolist()
        raise ValueError(
            f"Neurons {neurons} have stimuli with no recorded repeat (all NaN), so their mean "
            "response is unknown. Drop those stimuli or neurons first."
        )
    return np.nanmean(R, axis=0)


def _check_stratify(stratify, n_stimuli: int) -> np.ndarray | None:
    if stratify is None:
        return None
    labels = np.asarray(stratify)
    if labels.shape != (n_stimuli,):
        raise ValueError(
            f"stratify must have one label per stimulus, shape ({n_stimuli},), got shape "
            f"{labels.shape}."
        )
    return labels


def _predictivity_splits(n_stimuli, cv, labels, n_splits, train_size, seed):
    """(train, test) index arrays over stimuli; each test set has at least 3 stimuli."""
    dummy = np.zeros((n_stimuli, 1))
    if cv is None:
        if isinstance(n_splits, bool) or not isinstance(n_splits, numbers.Integral):
            raise TypeError(f"n_splits must be an int, got {n_splits!r}.")
        if n_splits < 1:
            raise ValueError(f"n_splits must be at least 1, got {n_splits}.")
        if isinstance(train_size, bool) or not isinstance(train_size, numbers.Real):
            raise TypeError(f"train_size must be a fraction between 0 and 1, got {train_size!r}.")
        if not 0 < train_size < 1:
            raise ValueError(f"train_size must be a fraction between 0 and 1, got {train_size}.")
        kind = StratifiedShuffleSplit if labels is not None else ShuffleSplit
        splitter = kind(n_splits=n_splits, train_size=train_size, random_state=seed)
    else:
        splitter = check_cv(cv, labels, classifier=labels is not None)
    folds = [
        (np.arange(n_stimuli)[train], np.arange(n_stimuli)[test])
        for train, test in splitter.split(dummy, labels)
    ]
    for train, test in folds:
        if test.size < 3 or train.size < 2:
            raise ValueError(
                f"Each split needs at least 3 test and 2 training stimuli, got {test.size} test "
                f"and {train.size} training stimuli out of {n_stimuli}. Use more stimuli or "
                "change train_size."
            )
    return folds


def _make_mapping(mapping, n_components, rng: np.random.Generator):
    if isinstance(mapping, str):
        if mapping == "ridge":
            inner_folds = KFold(5, shuffle=True, random_state=int(rng.integers(2**31 - 1)))
            return RidgeCV(cv=inner_folds)
        if mapping == "pls":
            if isinstance(n_components, bool) or not isinstance(n_components, numbers.Integral):
                raise TypeError(f"n_components must be an int, got {n_components!r}.")
            if n_components < 1:
                raise ValueError(f"n_components must be at least 1, got {n_components}.")
            return PLSRegression(n_components=int(n_components), scale=False)
        raise ValueError(f'mapping must be "ridge", "pls" or a regressor, got {mapping!r}.')
    if not (hasattr(mapping, "fit") and hasattr(mapping, "predict")):
        raise TypeError(
            'mapping must be "ridge", "pls" or a scikit-learn regressor with fit and predict, '
            f"got {type(mapping).__name__}."
        )
    return mapping


def _check_mapping_size(model, n_train: int, n_features: int) -> None:
    if isinstance(model, PLSRegression) and model.n_components > min(n_train, n_features):
        raise ValueError(
            f"PLS with n_components={model.n_components} needs at least that many training "
            f"stimuli and features, got {n_train} training stimuli and {n_features} features. "
            f"Pass n_components <= {min(n_train, n_features)}."
        )


def _normalize(r: np.ndarray, neuron_ceiling: np.ndarray, silent: np.ndarray) -> np.ndarray:
    """``r ** 2 / ceiling``, NaN where the ceiling is not positive; warns about such neurons
    (except the silent ones, already reported)."""
    usable = np.isfinite(neuron_ceiling) & (neuron_ceiling > 0)
    unreliable = ~usable & ~silent
    if unreliable.any():
        warnings.warn(
            f"{unreliable.sum()} of {usable.size} neurons have a noise ceiling that is not "
            f"positive (neurons {np.flatnonzero(unreliable)[:10].tolist()}: their repeats do not "
            "agree); their normalised score is NaN and they are left out of the median.",
            UserWarning,
            stacklevel=3,
        )
    safe = np.where(usable, neuron_ceiling, np.nan)
    return r**2 / safe


def _nanmedian_rows(a: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN row -> NaN, on purpose
        return np.nanmedian(a, axis=1)


def _sem(values: np.ndarray) -> float:
    return float(np.std(values) / np.sqrt(values.size))
