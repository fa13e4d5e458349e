"""Cross-validated linear decoding: what can a linear readout of a population report?

A *decoder* is a linear model trained to read a stimulus property (object category, position,
size, pose, ...) from population activity (model units or recorded sites). Good held-out
performance means the property is *linearly available* in that population, the quantity studied
by Hong, Yamins, Majaj & DiCarlo (2016, Nat Neurosci 19:613, https://doi.org/10.1038/nn.4247)
and Majaj et al. (2015, J Neurosci 35:13402, https://doi.org/10.1523/JNEUROSCI.5181-14.2015).

Recipe used everywhere in this module
-------------------------------------
- Features are standardised (zero mean, unit variance per feature) with statistics of the
  *training fold only*: :class:`~sklearn.preprocessing.StandardScaler` is the first step of a
  :class:`~sklearn.pipeline.Pipeline` that is refitted in every fold, so held-out samples never
  influence the readout.
- Categories: multinomial :class:`~sklearn.linear_model.LogisticRegression` with a fixed L2
  penalty ``C=0.01`` (:data:`DEFAULT_C`), scored by accuracy. The fixed value is a speed choice:
  on standardised features a strong penalty generalises well when there are more features than
  samples (the usual case for network layers) and the solver converges in tens of iterations,
  while weak penalties (``C >= 1``) need many more iterations (186 instead of 25 in one of our
  checks). On noisy digits (64 pixel features, and 2048 random ReLU features of them),
  ``C=0.01`` was the best or tied-best value of the grid 1e-4 ... 1 (5-fold accuracy 0.873 and
  0.898). Pass a sequence, e.g. ``C=np.logspace(-4, 0, 5)``, to choose C by an inner 3-fold
  cross-validation (log-loss) inside each training fold instead (several times slower).
- Continuous properties: ridge regression (:class:`~sklearn.linear_model.RidgeCV`) whose penalty
  is chosen per target from :data:`DEFAULT_ALPHAS` by efficient leave-one-out cross-validation on
  the training fold, scored by the Pearson correlation between held-out predictions and truth.
- Outer folds: ``StratifiedKFold(cv, shuffle=True, random_state=seed)`` for categories and
  ``KFold(cv, shuffle=True, random_state=seed)`` for continuous targets; with ``groups`` (e.g.
  object identity, to test generalisation to new objects) ``StratifiedGroupKFold`` and
  ``GroupKFold`` (both shuffled with ``seed``) keep every group in a single fold.

Decoding performance versus the number of sampled sites (:func:`sites_curve`) is extrapolated to
the number of sites a level of performance would need with :func:`fit_sites_curve` and
:func:`sites_needed`, as in Hong et al. (2016) and Majaj et al. (2015).
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeWarning, curve_fit
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, RidgeCV
from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.random_projection import SparseRandomProjection
from tqdm.auto import tqdm

from course_tools.metrics import pearson_r
from course_tools.seeding import SeedLike

__all__ = [
    "DEFAULT_ALPHAS",
    "DEFAULT_C",
    "MAX_AUTO_CLASSES",
    "DecodingResult",
    "SitesFit",
    "decode",
    "draw_units",
    "fit_sites_curve",
    "infer_kind",
    "layerwise_decoding",
    "make_decoder",
    "sites_curve",
    "sites_needed",
]

#: L2 penalty of the logistic-regression decoder on standardised features (see module docstring).
DEFAULT_C: float = 0.01

#: Ridge penalties tried by the regression decoder: 21 values, half a decade apart, 1e-2 ... 1e8.
DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-2, 8, 21))

#: ``kind="auto"`` treats an integer target with at most this many distinct values as categories.
MAX_AUTO_CLASSES: int = 20

_KINDS = ("classification", "regression")
_METRICS = {"classification": "accuracy", "regression": "pearson_r"}
_INNER_FOLDS = 3  # inner cross-validation of C when C is a sequence

Folds = list[tuple[np.ndarray, np.ndarray]]


# --------------------------------------------------------------------------------------------
# Result type
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False, eq=False)
class DecodingResult:
    """Outcome of :func:`decode`.

    Attributes
    ----------
    score : float
        Mean of ``fold_scores``.
    fold_scores : ndarray, shape (n_folds,)
        Held-out score of every outer fold (accuracy or Pearson r).
    predictions : ndarray, shape (n_samples,)
        Cross-validated prediction of every sample, made by the decoder that did not see it.
    kind : {"classification", "regression"}
    metric : {"accuracy", "pearson_r"}
    chance : float
        Score of a decoder that ignores the features: the frequency of the most common class for
        classification (``1 / n_classes`` when balanced), 0 for regression.
    fold : ndarray of int, shape (n_samples,)
        Index of the outer fold in which each sample was held out.
    """

    score: float
    fold_scores: np.ndarray
    predictions: np.ndarray
    kind: str
    metric: str
    chance: float
    fold: np.ndarray

    @property
    def sem(self) -> float:
        """Standard error of the mean of ``fold_scores`` (ddof=1); NaN with one fold."""
        return _sem(self.fold_scores)

    def __repr__(self) -> str:
        return (
            f"DecodingResult(kind={self.kind!r}, {self.metric}={self.score:.3f} "
            f"± {self.sem:.3f} (SEM over {len(self.fold_scores)} folds), chance={self.chance:.3f})"
        )


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def infer_kind(target) -> str:
    """Guess whether ``target`` holds categories or a continuous quantity.

    Rule: booleans, strings, objects and pandas categoricals are categories; an integer target
    with at most :data:`MAX_AUTO_CLASSES` (20) distinct values is categories; every other numeric
    target (floats, integers with many values) is continuous. Pass ``kind=`` explicitly to
    :func:`decode` when the rule guesses wrong (e.g. 5 discrete sizes stored as floats).

    Parameters
    ----------
    target : array_like or pandas.Series, shape (n_samples,)

    Returns
    -------
    {"classification", "regression"}
    """
    y, categorical = _target_values(target)
    return _infer_kind(y, categorical)


def make_decoder(
    kind: str,
    *,
    C: float | Sequence[float] = DEFAULT_C,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    max_features: int | None = None,
    seed: SeedLike = 0,
) -> Pipeline:
    """The unfitted decoding pipeline that :func:`decode` refits in every fold.

    Steps: ``StandardScaler`` -> optional ``SparseRandomProjection`` to ``max_features``
    dimensions -> ``LogisticRegression`` (one C), ``LogisticRegressionCV`` (a sequence of C) or
    ``RidgeCV`` (alpha per target by leave-one-out).

    Parameters
    ----------
    kind : {"classification", "regression"}
    C : float or sequence of float, default=DEFAULT_C
        Inverse L2 penalty of the logistic regression. A sequence is searched by an inner
        stratified 3-fold cross-validation (log-loss) on the training data.
    alphas : sequence of float, default=DEFAULT_ALPHAS
        Ridge penalties for regression.
    max_features : int, optional
        If given, standardised features are projected onto ``max_features`` random directions
        (a sparse random projection, Li, Hastie & Church 2006) before the linear model. The
        projection depends only on ``seed`` and the number of features, never on the data, and
        it approximately preserves distances between samples, so the readout stays close to the
        one on all features while fits get much cheaper.
    seed : int or numpy.random.Generator, default=0
        Seeds the projection and the inner folds.

    Returns
    -------
    sklearn.pipeline.Pipeline
    """
    kind = _check_kind(kind, allow_auto=False)
    random_state = _int_seed(seed)
    steps: list = [("scale", StandardScaler())]
    if max_features is not None:
        n_components = _check_max_features(max_features)
        steps.append(
            (
                "project",
                SparseRandomProjection(
                    n_components=n_components, dense_output=True, random_state=random_state
                ),
            )
        )
    if kind == "classification":
        if np.ndim(C) == 0:
            model = LogisticRegression(C=_check_C(C), max_iter=1000)
        else:
            model = LogisticRegressionCV(
                Cs=[_check_C(c) for c in C],
                cv=StratifiedKFold(_INNER_FOLDS, shuffle=True, random_state=random_state),
                scoring="neg_log_loss",
                l1_ratios=(0.0,),
                use_legacy_attributes=False,
                max_iter=1000,
            )
    else:
        model = RidgeCV(alphas=_check_alphas(alphas), alpha_per_target=True)
    steps.append(("model", model))
    return Pipeline(steps)


def decode(
    features,
    target,
    *,
    kind: str = "auto",
    cv: int | object = 5,
    seed: SeedLike = 0,
    groups=None,
    C: float | Sequence[float] = DEFAULT_C,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    max_features: int | None = None,
) -> DecodingResult:
    """Cross-validated linear decoding of one target from a population.

    Parameters
    ----------
    features : array_like, shape (n_samples, n_features)
        Population activity, one row per stimulus (e.g. a network layer's activations or
        trial-averaged neural responses).
    target : array_like or pandas.Series, shape (n_samples,)
        What to decode: labels (categories) or a continuous quantity.
    kind : {"auto", "classification", "regression"}, default="auto"
        ``"auto"`` applies :func:`infer_kind`.
    cv : int or cross-validation splitter, default=5
        Number of outer folds, or a splitter (an object with ``split(X, y, groups)``) whose test
        folds cover every sample exactly once (KFold-like), so that every sample gets one
        cross-validated prediction.
    seed : int or numpy.random.Generator, default=0
        Seeds the fold assignment (when ``cv`` is an int), the random projection and the inner
        folds. The same seed gives the same numbers.
    groups : array_like, shape (n_samples,), optional
        Group label of each sample (e.g. object identity). With an int ``cv``, folds never split
        a group, so the decoder is tested on groups it has not seen.
    C : float or sequence of float, default=DEFAULT_C
        Logistic-regression penalty; see :func:`make_decoder`.
    alphas : sequence of float, default=DEFAULT_ALPHAS
        Ridge penalties; see :func:`make_decoder`.
    max_features : int, optional
        Project standardised features onto this many random directions first (only when there
        are more features); see :func:`make_decoder`.

    Returns
    -------
    DecodingResult
        ``score`` (mean over folds), ``fold_scores``, cross-validated ``predictions``,
        ``kind``, ``metric`` ("accuracy" or "pearson_r"), ``chance`` and ``fold``.

    Raises
    ------
    ValueError
        For features that are not 2-D or contain NaN/inf, a target that is not 1-D, contains
        missing values or is constant, mismatched lengths, fewer samples (or groups) than
        folds, a class with fewer members than folds, or a splitter whose test folds do not
        cover every sample exactly once.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat(["cat", "dog"], 50)
    >>> X = rng.normal(size=(100, 20)) + (labels == "dog")[:, None]
    >>> decode(X, labels).score > 0.9
    True
    """
    seed = _int_seed(seed)
    X = _check_features(features)
    y, kind = _check_target(target, kind, n_samples=X.shape[0])
    groups = _check_groups(groups, X.shape[0])
    folds = _make_folds(cv, kind, y, groups, seed, C)
    pipeline = _decoder_for(X, kind, C, alphas, max_features, seed)
    predictions, fold_scores = _cross_validate(
        pipeline, X, y[:, None] if kind == "regression" else y, kind, folds
    )
    if kind == "regression":
        predictions, fold_scores = predictions[:, 0], fold_scores[:, 0]
    _warn_undefined_scores(fold_scores, ["target"])
    return DecodingResult(
        score=float(np.mean(fold_scores)),
        fold_scores=fold_scores,
        predictions=predictions,
        kind=kind,
        metric=_METRICS[kind],
        chance=_chance(y, kind),
        fold=_fold_index(folds, X.shape[0]),
    )


def layerwise_decoding(
    activations: Mapping[str, np.ndarray],
    targets: pd.DataFrame,
    *,
    cv: int | object = 5,
    seed: SeedLike = 0,
    progress: bool = True,
    kinds: str | Mapping[str, str] | None = None,
    max_features: int | None = None,
    groups=None,
    C: float | Sequence[float] = DEFAULT_C,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
) -> pd.DataFrame:
    """Decode every target from every layer with :func:`decode`'s recipe.

    For a given target the outer folds are the same in every layer (they depend only on the
    target, ``cv``, ``groups`` and ``seed``), so layers can be compared fold by fold. Continuous
    targets that share their folds are fitted together (one ridge decomposition per fold serves
    all of them, each with its own alpha); the numbers equal separate :func:`decode` calls.

    Parameters
    ----------
    activations : dict of str to array_like, each shape (n_samples, ...)
        One array per layer, in the order the layers should appear. Arrays with more than two
        axes, e.g. (n_samples, channels, height, width), are flattened to
        (n_samples, n_features).
    targets : pandas.DataFrame, shape (n_samples, n_targets)
        One column per property to decode (e.g. ``category``, ``size``, ``rotation``).
    cv : int or cross-validation splitter, default=5
    seed : int or numpy.random.Generator, default=0
    progress : bool, default=True
        Show a progress bar over (layer, target) pairs.
    kinds : str or dict of str to str, optional
        ``"classification"``/``"regression"``/``"auto"`` for all targets, or per column (missing
        columns use ``"auto"``).
    max_features : int, optional
        Randomly project layers with more features than this (see :func:`make_decoder`); the
        projection is data-independent and seeded, so it is leak-free. Useful for huge conv
        layers.
    groups : array_like, shape (n_samples,), optional
        See :func:`decode`.
    C, alphas
        See :func:`make_decoder`.

    Returns
    -------
    pandas.DataFrame
        Long format, one row per (layer, target, fold), columns ``layer`` and ``target``
        (ordered categoricals in the input order), ``fold`` (int), ``score`` (float) and
        ``metric`` ("accuracy" or "pearson_r").
    """
    if not isinstance(activations, Mapping) or len(activations) == 0:
        raise TypeError(
            "activations must be a non-empty dict mapping layer names to arrays of shape "
            f"(n_samples, n_features), got {type(activations).__name__}"
            f"{' (empty)' if isinstance(activations, Mapping) else ''}."
        )
    if isinstance(targets, pd.Series):
        raise TypeError(
            "targets must be a pandas DataFrame with one column per target; for a single Series "
            "use targets.to_frame()."
        )
    if not isinstance(targets, pd.DataFrame) or targets.shape[1] == 0:
        raise TypeError(
            "targets must be a pandas DataFrame with at least one column (one per property to "
            f"decode), got {type(targets).__name__}."
        )
    if targets.columns.has_duplicates:
        raise ValueError(f"targets has duplicate column names: {list(targets.columns)}.")
    seed = _int_seed(seed)
    n_samples = len(targets)
    kinds = _check_kinds(kinds, list(targets.columns))
    groups = _check_groups(groups, n_samples)

    layer_names = [str(layer) for layer in activations]
    if len(set(layer_names)) != len(layer_names):
        raise ValueError(f"Layer names must be unique as strings, got {layer_names}.")

    # Everything that depends only on the targets (values, kind, folds) is computed once.
    prepared = []
    for name in targets.columns:
        y, kind = _check_target(targets[name], kinds[name], n_samples=n_samples, name=str(name))
        folds = _make_folds(cv, kind, y, groups, seed, C)
        prepared.append((str(name), y, kind, folds))
    tasks = _group_tasks(prepared)

    rows: list[tuple] = []
    with tqdm(total=len(layer_names) * len(prepared), desc="decoding", disable=not progress) as bar:
        for layer, values in zip(layer_names, activations.values(), strict=True):
            X = _check_features(_flatten(values), name=f"activations[{layer!r}]")
            if X.shape[0] != n_samples:
                raise ValueError(
                    f"activations[{layer!r}] has {X.shape[0]} samples but targets has "
                    f"{n_samples} rows. Both must describe the same stimuli in the same order."
                )
            for kind, names, Y, folds in tasks:
                bar.set_postfix_str(f"{layer}: {', '.join(names)}", refresh=False)
                pipeline = _decoder_for(X, kind, C, alphas, max_features, seed)
                _, scores = _cross_validate(pipeline, X, Y, kind, folds)
                scores = scores.reshape(len(folds), len(names))
                _warn_undefined_scores(scores, names, layer=layer)
                for j, name in enumerate(names):
                    for k in range(len(folds)):
                        rows.append((layer, name, k, float(scores[k, j]), _METRICS[kind]))
                bar.update(len(names))

    frame = pd.DataFrame(rows, columns=["layer", "target", "fold", "score", "metric"])
    target_order = [name for name, *_ in prepared]
    frame["layer"] = pd.Categorical(frame["layer"], categories=layer_names, ordered=True)
    frame["target"] = pd.Categorical(frame["target"], categories=target_order, ordered=True)
    frame = frame.sort_values(["layer", "target", "fold"], kind="stable").reset_index(drop=True)
    return frame


def draw_units(n_units: int, n_sites: int, n_draws: int, seed: SeedLike = 0) -> np.ndarray:
    """Random subsets of units, as used by :func:`sites_curve`.

    Each draw samples ``n_sites`` distinct units (without replacement); draws are independent
    of each other. The generator is seeded with ``(seed, n_sites)``, so the subsets of one
    ``n_sites`` do not change when other sizes are added to a curve.

    Parameters
    ----------
    n_units : int
        Number of units available.
    n_sites : int
        Units per draw, ``1 <= n_sites <= n_units``.
    n_draws : int
        Number of independent draws.
    seed : int or numpy.random.Generator, default=0

    Returns
    -------
    ndarray of int, shape (n_draws, n_sites)
        Unit indices, each row without repeats.
    """
    n_units = _check_positive_int(n_units, "n_units")
    n_sites = _check_positive_int(n_sites, "n_sites")
    n_draws = _check_positive_int(n_draws, "n_draws")
    if n_sites > n_units:
        raise ValueError(
            f"Cannot draw {n_sites} distinct units from a population of {n_units}. Use "
            f"n_sites <= {n_units}."
        )
    rng = np.random.default_rng([_int_seed(seed), n_sites])
    return np.stack([rng.permutation(n_units)[:n_sites] for _ in range(n_draws)])


def sites_curve(
    features,
    target,
    n_sites: Sequence[int],
    n_draws: int = 10,
    *,
    kind: str = "auto",
    cv: int | object = 5,
    seed: SeedLike = 0,
    progress: bool = True,
    groups=None,
    C: float | Sequence[float] = DEFAULT_C,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
) -> pd.DataFrame:
    """Decoding performance as a function of the number of sampled units (sites).

    For every size ``n`` in ``n_sites``, ``n_draws`` random subsets of ``n`` distinct units are
    drawn (:func:`draw_units`) and each is decoded with :func:`decode`'s recipe. The outer folds
    are the same for every subset, so the spread over draws reflects which units were sampled.
    This is the "performance vs number of sites" analysis of Hong et al. (2016, Fig. 6) and
    Majaj et al. (2015); extrapolate it with :func:`fit_sites_curve` / :func:`sites_needed`.

    Parameters
    ----------
    features : array_like, shape (n_samples, n_units)
        Population activity, e.g. trial-averaged responses of recorded sites.
    target : array_like, shape (n_samples,)
    n_sites : sequence of int
        Subset sizes, each between 1 and ``n_units`` (duplicates are removed, sizes sorted).
        Log-spaced sizes suit the extrapolation, e.g. ``[2, 4, 8, 16, 32, 64, 128]``.
    n_draws : int, default=10
        Random subsets per size.
    kind, cv, seed, groups, C, alphas
        As in :func:`decode`.
    progress : bool, default=True
        Show a progress bar over subsets.

    Returns
    -------
    pandas.DataFrame
        One row per (n_sites, draw), columns ``n_sites`` (int), ``draw`` (int), ``score``
        (float) and ``metric``.
    """
    seed = _int_seed(seed)
    X = _check_features(features)
    y, kind = _check_target(target, kind, n_samples=X.shape[0])
    groups = _check_groups(groups, X.shape[0])
    sizes = _check_site_sizes(n_sites, X.shape[1])
    n_draws = _check_positive_int(n_draws, "n_draws")
    folds = _make_folds(cv, kind, y, groups, seed, C)
    Y = y[:, None] if kind == "regression" else y
    rows = []
    with tqdm(total=len(sizes) * n_draws, desc="sites curve", disable=not progress) as bar:
        for n in sizes:
            bar.set_postfix_str(f"n_sites={n}", refresh=False)
            for draw, units in enumerate(draw_units(X.shape[1], n, n_draws, seed)):
                pipeline = make_decoder(kind, C=C, alphas=alphas, seed=seed)
                _, scores = _cross_validate(pipeline, X[:, units], Y, kind, folds)
                _warn_undefined_scores(scores, [f"n_sites={n}, draw {draw}"])
                rows.append((n, draw, float(np.mean(scores)), _METRICS[kind]))
                bar.update()
    return pd.DataFrame(rows, columns=["n_sites", "draw", "score", "metric"])


@dataclass(frozen=True, eq=False)
class SitesFit:
    """Saturating fit of decoding performance versus number of sites.

    The fitted form is a power-law approach to an asymptote, i.e. an exponential approach in
    ``log n``:

    .. math:: \\mathrm{score}(n) = a - b\\, n^{-c} = a - b\\, e^{-c \\ln n}

    with asymptote :math:`a` (the performance of infinitely many such sites), amplitude
    :math:`b \\ge 0` (:math:`a - b` is the score of one site) and exponent :math:`c > 0`.
    Reaching a level :math:`L < a` needs :math:`n^* = (b / (a - L))^{1/c}` sites.

    When the fitted asymptote sits at its upper bound (``max_score``, 1 by default) the measured
    curve shows no saturation yet, and the extrapolation rests on the assumption that enough
    sites would eventually reach that bound; small exponents then give astronomically large
    numbers of sites (as for V1 and V4 in Hong et al. 2016).

    Attributes
    ----------
    asymptote, amplitude, exponent : float
        :math:`a`, :math:`b`, :math:`c`.
    covariance : ndarray, shape (3, 3)
        Covariance of (a, b, c) from :func:`scipy.optimize.curve_fit` (rows and columns of a
        fixed asymptote are 0; NaN where it could not be estimated).
    n_sites : ndarray, shape (n_sizes,)
        Sizes the fit was made on.
    mean_scores : ndarray, shape (n_sizes,)
        Mean score over draws at each size (the data that was fitted).
    """

    asymptote: float
    amplitude: float
    exponent: float
    covariance: np.ndarray
    n_sites: np.ndarray
    mean_scores: np.ndarray

    @property
    def params(self) -> dict[str, float]:
        """``{"asymptote": a, "amplitude": b, "exponent": c}``."""
        return {"asymptote": self.asymptote, "amplitude": self.amplitude, "exponent": self.exponent}

    def predict(self, n) -> np.ndarray | float:
        """Fitted score at ``n`` sites (float or array, same shape as ``n``)."""
        n = np.asarray(n, dtype=np.float64)
        if np.any(n <= 0):
            raise ValueError("n must be positive (a number of sites).")
        out = _saturating(n, self.asymptote, self.amplitude, self.exponent)
        return out if out.ndim else float(out)

    def sites_needed(self, level: float) -> float:
        """Sites needed to reach ``level``: ``(b / (a - level)) ** (1 / c)``, at least 1.

        Returns ``np.inf`` (with a RuntimeWarning) when ``level`` is at or above the fitted
        asymptote: no number of such sites reaches it under the fitted curve.
        """
        return _solve_sites(self, level)


def fit_sites_curve(
    curve: pd.DataFrame,
    *,
    asymptote: float | None = None,
    max_score: float = 1.0,
) -> SitesFit:
    """Fit ``score(n) = a - b * n**(-c)`` to the mean sites curve.

    The curve is averaged over draws at each ``n_sites`` and fitted by least squares
    (:func:`scipy.optimize.curve_fit`, trust-region reflective) with bounds
    ``min(mean score) <= a <= max_score``, ``b >= 0`` and ``1e-4 <= c <= 10``. See
    :class:`SitesFit` for the form and its meaning.

    Parameters
    ----------
    curve : pandas.DataFrame
        Output of :func:`sites_curve`: columns ``n_sites`` and ``score`` (one row per draw).
    asymptote : float, optional
        Fix :math:`a` instead of fitting it (e.g. 1.0 for a task that is perfectly solvable
        in principle); then only b and c are fitted.
    max_score : float, default=1.0
        Upper bound of the asymptote; 1.0 is the best possible accuracy and Pearson r.

    Returns
    -------
    SitesFit
    """
    sizes, means = _mean_curve(curve)
    min_points = 2 if asymptote is not None else 3
    if len(sizes) < min_points:
        raise ValueError(
            f"fit_sites_curve needs at least {min_points} different n_sites values to fit "
            f"{'2 parameters' if asymptote is not None else '3 parameters (a, b, c)'}, got "
            f"{len(sizes)}. Compute the curve at more sizes, e.g. n_sites=[2, 4, 8, 16, 32, 64]."
        )
    max_score = float(max_score)
    if means.max() > max_score:
        raise ValueError(
            f"The mean scores reach {means.max():.4g}, above max_score={max_score}. Pass the "
            "largest score the metric allows as max_score."
        )
    if np.ptp(means) == 0:
        raise ValueError(
            "The mean score is the same at every n_sites; a flat curve cannot be extrapolated."
        )
    c0 = 0.5
    if asymptote is None:
        # start halfway between the best measured score and the largest possible one
        a0 = float(means.max() + 0.5 * (max_score - means.max()))
    else:
        a0 = float(asymptote)
        if not np.isfinite(a0) or a0 < means.max():
            raise ValueError(
                f"A fixed asymptote must be finite and at least the best mean score "
                f"({means.max():.4g}), got {asymptote}."
            )
    b0 = max(float((a0 - means[0]) * sizes[0] ** c0), 1e-6)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)  # covariance may be undefined
            if asymptote is None:
                popt, pcov = curve_fit(
                    _saturating,
                    sizes,
                    means,
                    p0=[a0, b0, c0],
                    bounds=([float(means.min()), 0.0, 1e-4], [max_score, np.inf, 10.0]),
                )
                a, b, c = (float(v) for v in popt)
                cov = np.asarray(pcov, dtype=np.float64)
            else:
                popt, pcov = curve_fit(
                    lambda n, b, c: _saturating(n, a0, b, c),
                    sizes,
                    means,
                    p0=[b0, c0],
                    bounds=([0.0, 1e-4], [np.inf, 10.0]),
                )
                a, (b, c) = a0, (float(v) for v in popt)
                cov = np.zeros((3, 3))
                cov[1:, 1:] = pcov
    except RuntimeError as err:  # curve_fit's "Optimal parameters not found"
        raise RuntimeError(
            f"The saturating fit a - b * n**(-c) did not converge ({err}). Check that the "
            "curve rises with n_sites; more draws per size make the mean curve smoother."
        ) from err
    return SitesFit(
        asymptote=a,
        amplitude=b,
        exponent=c,
        covariance=cov,
        n_sites=sizes,
        mean_scores=means,
    )


def sites_needed(
    curve: pd.DataFrame | SitesFit,
    level: float,
    *,
    asymptote: float | None = None,
    max_score: float = 1.0,
) -> float:
    """Extrapolated number of sites needed to reach ``level``.

    Fits :func:`fit_sites_curve` (unless given a :class:`SitesFit`) and solves
    ``a - b * n**(-c) = level``, i.e. ``n = (b / (a - level)) ** (1 / c)`` (at least 1). This is
    how Hong et al. (2016) estimated that about 700 IT sites would match human performance
    while V4 and V1 would need orders of magnitude more.

    Parameters
    ----------
    curve : pandas.DataFrame or SitesFit
        Output of :func:`sites_curve`, or an existing fit.
    level : float
        Target performance, in the curve's metric (e.g. human accuracy).
    asymptote, max_score
        Passed to :func:`fit_sites_curve` when ``curve`` is a DataFrame.

    Returns
    -------
    float
        Number of sites; ``np.inf`` with a RuntimeWarning when ``level`` is not below the
        fitted asymptote.
    """
    if isinstance(curve, SitesFit):
        fit = curve
    else:
        fit = fit_sites_curve(curve, asymptote=asymptote, max_score=max_score)
    return _solve_sites(fit, level)


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def _check_features(features, name: str = "features") -> np.ndarray:
    if isinstance(features, pd.DataFrame):
        features = features.to_numpy()
    X = np.asarray(features)
    if X.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must be numeric, got dtype {X.dtype}. Pass activations or responses as a "
            "float array of shape (n_samples, n_features)."
        )
    if X.ndim == 1:
        raise ValueError(
            f"{name} must have shape (n_samples, n_features), got a 1-D array of shape "
            f"{X.shape}. For a single feature use {name}.reshape(-1, 1)."
        )
    if X.ndim != 2:
        raise ValueError(
            f"{name} must have shape (n_samples, n_features), got shape {X.shape}. Flatten the "
            f"trailing axes first: {name}.reshape(len({name}), -1)."
        )
    if X.shape[1] == 0:
        raise ValueError(f"{name} has no features (shape {X.shape}).")
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    if not _all_finite(X):
        finite = np.isfinite(X)
        bad_columns = np.flatnonzero(~finite.all(axis=0))
        raise ValueError(
            f"{name} contains {int((~finite).sum())} NaN or inf values in {len(bad_columns)} "
            f"feature(s) (first: {bad_columns[:5].tolist()}). Linear decoders need finite "
            "inputs: drop those features, e.g. X[:, np.isfinite(X).all(axis=0)], or impute them."
        )
    return X


def _all_finite(X: np.ndarray, block_bytes: int = 2**27) -> bool:
    """``np.isfinite(X).all()`` in row blocks, so huge (memory-mapped) layers need no big mask."""
    rows = max(1, block_bytes // max(1, X.shape[1] * X.itemsize))
    return all(np.isfinite(X[i : i + rows]).all() for i in range(0, X.shape[0], rows))


def _flatten(values):
    X = values if isinstance(values, np.ndarray) else np.asarray(values)
    if X.ndim > 2:
        X = X.reshape(X.shape[0], -1)
    return X


def _target_values(target) -> tuple[np.ndarray, bool]:
    """Target as a numpy array plus whether it was declared categorical (pandas category)."""
    if isinstance(target, pd.DataFrame):
        if target.shape[1] != 1:
            raise ValueError(
                f"decode takes one target at a time, got a DataFrame with {target.shape[1]} "
                "columns. Pass one column (df['size']) or use layerwise_decoding for several."
            )
        target = target.iloc[:, 0]
    categorical = isinstance(getattr(target, "dtype", None), pd.CategoricalDtype)
    if isinstance(target, pd.Series | pd.Index | pd.Categorical):
        series = pd.Series(target)
        if series.isna().any():
            _raise_missing(int(series.isna().sum()))
        if categorical:
            return np.asarray(series.astype(object)), True
        if pd.api.types.is_bool_dtype(series.dtype):
            return series.to_numpy(dtype=bool), False
        if pd.api.types.is_integer_dtype(series.dtype):
            return series.to_numpy(dtype=np.int64), False
        if pd.api.types.is_float_dtype(series.dtype):
            return series.to_numpy(dtype=np.float64), False
        return series.to_numpy(dtype=object), False
    return np.asarray(target), False


def _raise_missing(count: int):
    raise ValueError(
        f"target has {count} missing value(s) (NaN/None). Drop those samples from both the "
        "features and the target first, e.g. keep = target.notna()."
    )


def _infer_kind(y: np.ndarray, categorical: bool) -> str:
    if categorical or y.dtype.kind in "bOSU":
        return "classification"
    if y.dtype.kind in "iu":
        return "classification" if len(np.unique(y)) <= MAX_AUTO_CLASSES else "regression"
    return "regression"


def _check_kind(kind, *, allow_auto: bool) -> str:
    allowed = ("auto", *_KINDS) if allow_auto else _KINDS
    if kind not in allowed:
        raise ValueError(f"kind must be one of {allowed}, got {kind!r}.")
    return kind


def _check_target(target, kind, *, n_samples: int, name: str = "target") -> tuple[np.ndarray, str]:
    kind = _check_kind(kind, allow_auto=True)
    y, categorical = _target_values(target)
    if y.ndim != 1:
        hint = f" Use {name}.ravel()." if y.ndim == 2 and 1 in y.shape else ""
        raise ValueError(f"{name} must have shape (n_samples,), got shape {y.shape}.{hint}")
    if len(y) != n_samples:
        raise ValueError(
            f"features have {n_samples} samples but {name} has {len(y)}. Both must describe the "
            "same stimuli in the same order."
        )
    if y.dtype.kind == "O" and pd.isna(y).any():
        _raise_missing(int(pd.isna(y).sum()))
    if y.dtype.kind == "f" and np.isnan(y).any():
        _raise_missing(int(np.isnan(y).sum()))
    if kind == "auto":
        kind = _infer_kind(y, categorical)
    if kind == "regression":
        if y.dtype.kind not in "biuf":
            raise TypeError(
                f"kind='regression' needs a numeric {name}, got values of dtype {y.dtype} "
                f"(e.g. {y[0]!r}). Use kind='classification' for labels."
            )
        y = y.astype(np.float64)
        if not np.isfinite(y).all():
            raise ValueError(f"{name} contains inf values; a continuous target must be finite.")
    n_unique = len(pd.unique(y))
    if n_unique < 2:
        raise ValueError(
            f"{name} is constant (every sample has the value {y[0]!r}): there is nothing to "
            "decode. Check that the right column was passed."
        )
    return y, kind


def _check_groups(groups, n_samples: int) -> np.ndarray | None:
    if groups is None:
        return None
    g = np.asarray(groups)
    if g.ndim != 1 or len(g) != n_samples:
        raise ValueError(
            f"groups must have shape (n_samples,) = ({n_samples},), got shape {g.shape}: one "
            "group label (e.g. object identity) per sample."
        )
    if pd.isna(g).any():
        raise ValueError("groups contains missing values; give every sample a group label.")
    return g


def _check_kinds(kinds, columns: list) -> dict:
    if kinds is None or isinstance(kinds, str):
        kind = _check_kind(kinds or "auto", allow_auto=True)
        return dict.fromkeys(columns, kind)
    if not isinstance(kinds, Mapping):
        raise TypeError(
            "kinds must be None, a string or a dict mapping target columns to 'auto', "
            f"'classification' or 'regression', got {type(kinds).__name__}."
        )
    unknown = [k for k in kinds if k not in columns]
    if unknown:
        raise ValueError(
            f"kinds names columns that are not in targets: {unknown}; columns are {columns}."
        )
    return {c: _check_kind(kinds.get(c, "auto"), allow_auto=True) for c in columns}


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _check_max_features(max_features) -> int:
    return _check_positive_int(max_features, "max_features")


def _check_C(C) -> float:
    if isinstance(C, bool) or not isinstance(C, numbers.Real) or not (0 < C < np.inf):
        raise ValueError(f"C must be a positive number (inverse penalty), got {C!r}.")
    return float(C)


def _check_alphas(alphas) -> tuple[float, ...]:
    a = np.asarray(alphas, dtype=np.float64).ravel()
    if a.size == 0 or not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(
            f"alphas must be a non-empty sequence of positive numbers, got {alphas!r}."
        )
    return tuple(float(v) for v in a)


def _check_site_sizes(n_sites, n_units: int) -> list[int]:
    sizes = np.atleast_1d(np.asarray(n_sites))
    if sizes.size == 0 or sizes.ndim != 1 or sizes.dtype.kind not in "iu":
        raise ValueError(
            f"n_sites must be a non-empty sequence of integers, got {n_sites!r}, e.g. "
            "[2, 4, 8, 16, 32]."
        )
    if sizes.min() < 1 or sizes.max() > n_units:
        raise ValueError(
            f"n_sites must lie between 1 and the number of units ({n_units}), got "
            f"{sorted(set(sizes.tolist()))}. Drop sizes above {n_units}: units are drawn "
            "without replacement."
        )
    return sorted({int(s) for s in sizes})


def _int_seed(seed: SeedLike) -> int:
    """An int for scikit-learn's ``random_state`` from an int, a Generator or None."""
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(2**31 - 1))
    if seed is None:
        return int(np.random.default_rng().integers(2**31 - 1))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(
            f"seed must be a non-negative int, a numpy.random.Generator or None, got {seed!r}."
        )
    return int(seed)


# --------------------------------------------------------------------------------------------
# Folds
# --------------------------------------------------------------------------------------------


def _make_folds(cv, kind: str, y: np.ndarray, groups, seed: SeedLike, C) -> Folds:
    n = len(y)
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        splitter = _default_splitter(int(cv), kind, y, groups, seed)
    elif hasattr(cv, "split") and not isinstance(cv, str):
        splitter = cv
    else:
        raise TypeError(
            "cv must be an int (number of folds) or a cross-validation splitter with a "
            f"split(X, y, groups) method, such as sklearn.model_selection.GroupKFold; got {cv!r}."
        )
    folds = [
        (np.asarray(train), np.asarray(test))
        for train, test in splitter.split(np.zeros((n, 1)), y, groups)
    ]
    _check_partition(folds, n)
    for k, (train, test) in enumerate(folds):
        if kind == "classification":
            train_classes, train_counts = np.unique(y[train].astype(str), return_counts=True)
            if len(train_classes) < 2:
                raise ValueError(
                    f"Training fold {k} contains a single class; a classifier needs at least two. "
                    "Use stratified folds (an int cv) or fewer folds."
                )
            if np.ndim(C) != 0 and train_counts.min() < _INNER_FOLDS:
                raise ValueError(
                    f"Choosing C by inner {_INNER_FOLDS}-fold cross-validation needs at least "
                    f"{_INNER_FOLDS} members of every class in each training fold; fold {k} has a "
                    f"class with {train_counts.min()}. Pass a single C (e.g. C={DEFAULT_C}) or "
                    "use fewer outer folds."
                )
        elif len(test) < 3:
            raise ValueError(
                f"Test fold {k} has {len(test)} sample(s); Pearson r on fewer than 3 held-out "
                "samples is meaningless (2 points always correlate perfectly). Use fewer folds "
                "or more samples."
            )
    return folds


def _default_splitter(n_folds: int, kind: str, y: np.ndarray, groups, seed: SeedLike):
    if n_folds < 2:
        raise ValueError(f"cv must be at least 2 folds, got {n_folds}.")
    n = len(y)
    if n < n_folds:
        raise ValueError(
            f"Cannot make {n_folds} folds from {n} samples. Use cv <= {n} or collect more samples."
        )
    if kind == "classification":
        classes, counts = np.unique(y.astype(str), return_counts=True)
        rare = [(str(c), int(k)) for c, k in zip(classes, counts, strict=True) if k < n_folds]
        if rare:
            shown = ", ".join(f"{c!r}: {k}" for c, k in rare[:5])
            fix = (
                f"Use cv <= {int(counts.min())}, or drop or merge the rare classes"
                if counts.min() >= 2
                else "Drop or merge the classes with a single sample"
            )
            if y.dtype.kind in "iu":
                fix += " (if the integers are a continuous quantity, pass kind='regression')"
            raise ValueError(
                f"Stratified {n_folds}-fold cross-validation needs at least {n_folds} samples of "
                f"every class; {len(rare)} class(es) have fewer ({shown}). {fix}."
            )
    random_state = _int_seed(seed)
    if groups is None:
        if kind == "classification":
            return StratifiedKFold(n_folds, shuffle=True, random_state=random_state)
        return KFold(n_folds, shuffle=True, random_state=random_state)
    n_groups = len(pd.unique(groups))
    if n_groups < n_folds:
        raise ValueError(
            f"Cannot make {n_folds} group folds from {n_groups} groups. Use cv <= {n_groups}."
        )
    if kind == "classification":
        return StratifiedGroupKFold(n_folds, shuffle=True, random_state=random_state)
    return GroupKFold(n_folds, shuffle=True, random_state=random_state)


def _check_partition(folds: Folds, n_samples: int) -> None:
    if len(folds) < 2:
        raise ValueError(f"cv produced {len(folds)} fold(s); at least 2 are needed.")
    times_tested = np.zeros(n_samples, dtype=int)
    for _, test in folds:
        np.add.at(times_tested, test, 1)
    if not np.all(times_tested == 1):
        raise ValueError(
            "The splitter's test folds must cover every sample exactly once (like KFold) so that "
            f"each sample gets one cross-validated prediction; {int(np.sum(times_tested == 0))} "
            f"samples were never tested and {int(np.sum(times_tested > 1))} more than once. Use "
            "KFold, StratifiedKFold, GroupKFold or LeaveOneGroupOut, not ShuffleSplit."
        )


def _fold_index(folds: Folds, n_samples: int) -> np.ndarray:
    index = np.empty(n_samples, dtype=int)
    for k, (_, test) in enumerate(folds):
        index[test] = k
    return index


def _same_folds(a: Folds, b: Folds) -> bool:
    return len(a) == len(b) and all(
        np.array_equal(ta, tb) and np.array_equal(sa, sb)
        for (ta, sa), (tb, sb) in zip(a, b, strict=True)
    )


def _group_tasks(prepared: list) -> list[tuple[str, list[str], np.ndarray, Folds]]:
    """Group continuous targets that share folds (fit together); categories stay alone."""
    tasks: list[tuple[str, list[str], list[np.ndarray], Folds]] = []
    for name, y, kind, folds in prepared:
        if kind == "regression":
            for task in tasks:
                if task[0] == "regression" and _same_folds(task[3], folds):
                    task[1].append(name)
                    task[2].append(y)
                    break
            else:
                tasks.append(("regression", [name], [y], folds))
        else:
            tasks.append(("classification", [name], [y], folds))
    return [
        (kind, names, np.column_stack(ys) if kind == "regression" else ys[0], folds)
        for kind, names, ys, folds in tasks
    ]


# --------------------------------------------------------------------------------------------
# Cross-validation
# --------------------------------------------------------------------------------------------


def _decoder_for(X: np.ndarray, kind: str, C, alphas, max_features, seed) -> Pipeline:
    project = max_features is not None and _check_max_features(max_features) < X.shape[1]
    return make_decoder(
        kind, C=C, alphas=alphas, max_features=max_features if project else None, seed=seed
    )


def _cross_validate(
    pipeline: Pipeline, X: np.ndarray, Y: np.ndarray, kind: str, folds: Folds
) -> tuple[np.ndarray, np.ndarray]:
    """Refit ``pipeline`` in each fold; return held-out predictions and per-fold scores.

    ``Y`` is (n_samples,) labels for classification or (n_samples, n_targets) for regression.
    Scores have shape (n_folds,) or (n_folds, n_targets).
    """
    predictions = np.empty(Y.shape, dtype=np.float64 if kind == "regression" else Y.dtype)
    scores = np.empty((len(folds),) + Y.shape[1:])
    for k, (train, test) in enumerate(folds):
        model = clone(pipeline).fit(X[train], Y[train])
        predicted = model.predict(X[test])
        if kind == "regression":
            predicted = np.asarray(predicted, dtype=np.float64).reshape(len(test), -1)
            predictions[test] = predicted
            scores[k] = pearson_r(Y[test], predicted)  # NaN when a column is constant
        else:
            predictions[test] = predicted
            scores[k] = np.mean(predicted == Y[test])
    return predictions, scores


def _warn_undefined_scores(scores: np.ndarray, names: list[str], layer: str | None = None) -> None:
    scores = scores.reshape(scores.shape[0], -1)
    bad = np.isnan(scores)
    if bad.any():
        where = f" in layer {layer!r}" if layer is not None else ""
        which = [names[j] for j in np.flatnonzero(bad.any(axis=0))]
        warnings.warn(
            f"Pearson r is undefined (NaN){where} for {which} in {int(bad.sum())} fold(s): the "
            "held-out target or the decoder's predictions were constant. This happens when the "
            "features carry no variance in a training fold.",
            RuntimeWarning,
            stacklevel=3,
        )


def _chance(y: np.ndarray, kind: str) -> float:
    if kind == "regression":
        return 0.0
    _, counts = np.unique(y.astype(str), return_counts=True)
    return float(counts.max() / counts.sum())


def _sem(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        return float("nan")
    return float(np.std(values, ddof=1) / np.sqrt(values.size))


# --------------------------------------------------------------------------------------------
# Sites curve fitting
# --------------------------------------------------------------------------------------------


def _solve_sites(fit: SitesFit, level) -> float:
    """Invert the fitted curve at ``level``; inf with a warning at or above the asymptote."""
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not np.isfinite(level):
        raise ValueError(f"level must be a finite number (a score), got {level!r}.")
    level = float(level)
    a, b, c = fit.asymptote, fit.amplitude, fit.exponent
    if level >= a:
        warnings.warn(
            f"level {level:.4g} is not below the fitted asymptote {a:.4g}: under the fitted "
            "curve no number of sites reaches it, so the number of sites needed is inf. Measure "
            "more sizes, or fix the asymptote (fit_sites_curve(..., asymptote=...)) if theory "
            "says what it is.",
            RuntimeWarning,
            stacklevel=3,
        )
        return float("inf")
    if b <= 0:
        return 1.0
    with np.errstate(over="ignore"):
        n = (b / (a - level)) ** (1.0 / c)
    return float(max(n, 1.0))


def _saturating(n, a, b, c):
    """score(n) = a - b * n**(-c)."""
    return a - b * np.power(n, -c)


def _mean_curve(curve: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Mean score over draws at each size: (sizes, means), sizes ascending."""
    if not isinstance(curve, pd.DataFrame) or not {"n_sites", "score"} <= set(curve.columns):
        got = type(curve).__name__
        if isinstance(curve, pd.DataFrame):
            got += f" with columns {list(curve.columns)}"
        raise TypeError(
            "curve must be a pandas DataFrame with columns 'n_sites' and 'score' (the output "
            f"of sites_curve), got {got}."
        )
    scores = pd.to_numeric(curve["score"], errors="coerce")
    sizes = pd.to_numeric(curve["n_sites"], errors="coerce")
    if sizes.isna().any() or (sizes <= 0).any():
        raise ValueError("curve['n_sites'] must hold positive numbers of sites.")
    if np.isinf(scores).any():
        raise ValueError("curve['score'] contains inf values.")
    if scores.isna().any():
        warnings.warn(
            f"Ignoring {int(scores.isna().sum())} NaN score(s) in the sites curve.",
            RuntimeWarning,
            stacklevel=3,
        )
    means = scores.groupby(sizes).mean().dropna()
    return means.index.to_numpy(dtype=np.float64), means.to_numpy(dtype=np.float64)
