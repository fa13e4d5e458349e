"""Per-neuron scores: correlation, reliability, explainable variance.

All functions work column-wise: one value per neuron (or per decoded target).
Neural responses are arrays of shape ``(n_repeats, n_stimuli, n_neurons)`` with NaN where a
repeat was not recorded.

References
----------
- FEV / FEVE: Cadena et al. (2019) PLoS Comput Biol 15(4): e1006897,
  https://doi.org/10.1371/journal.pcbi.1006897 (code: ``sacadena/Cadena2019PlosCB``).
- Split-half reliability with Spearman-Brown correction: Brain-Score
  (Schrimpf et al. 2018, https://doi.org/10.1101/407007), ``internal_consistency`` ceiling.
"""

from __future__ import annotations

import warnings

import numpy as np

from course_tools.seeding import SeedLike, check_random_state

__all__ = [
    "explainable_variance",
    "feve",
    "pearson_r",
    "spearman_brown",
    "split_half_reliability",
]


def _as_2d(name: str, a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(
            f"{name} must have shape (n_samples,) or (n_samples, n_targets), got shape {a.shape}."
        )
    return a


def check_responses(responses, name: str = "responses") -> np.ndarray:
    """Validate a repeated-response array and return it as float64.

    Parameters
    ----------
    responses : array_like, shape (n_repeats, n_stimuli, n_neurons)
        Single-trial responses; NaN marks a repeat that was not recorded.
    name : str
        Name used in error messages.

    Returns
    -------
    ndarray, shape (n_repeats, n_stimuli, n_neurons)
    """
    try:
        r = np.asarray(responses, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{name} must be a numeric array of shape (n_repeats, n_stimuli, n_neurons), got "
            f"{type(responses).__name__} that cannot be converted to float ({err}). Pass the "
            "response array itself, not a dataset object."
        ) from err
    if r.ndim == 2:
        raise ValueError(
            f"{name} must have shape (n_repeats, n_stimuli, n_neurons), got a 2-D array of shape "
            f"{r.shape}. If these are trial-averaged responses there is no trial-to-trial noise to "
            f"measure; if they are single trials of one neuron, add a neuron axis: "
            f"{name}[..., None]."
        )
    if r.ndim != 3:
        raise ValueError(
            f"{name} must have shape (n_repeats, n_stimuli, n_neurons), got shape {r.shape}."
        )
    if np.isinf(r).any():
        raise ValueError(f"{name} contains inf values; use NaN for repeats that were not recorded.")
    return r


def pearson_r(y_true, y_pred) -> np.ndarray:
    """Pearson correlation between matching columns of two arrays.

    Parameters
    ----------
    y_true, y_pred : array_like, shape (n_samples,) or (n_samples, n_targets)
        Measured and predicted values. Rows are samples (stimuli), columns are targets (neurons).

    Returns
    -------
    ndarray, shape (n_targets,)
        ``r[j] = corr(y_true[:, j], y_pred[:, j])``. A column with zero variance in either input
        gives NaN (the correlation is undefined), never a silent 0.
    """
    t = _as_2d("y_true", y_true)
    p = _as_2d("y_pred", y_pred)
    if t.shape != p.shape:
        raise ValueError(
            f"y_true and y_pred must have the same shape, got {t.shape} and {p.shape}. "
            "Rows are samples (stimuli) and columns are targets (neurons)."
        )
    if t.shape[0] < 2:
        raise ValueError(f"pearson_r needs at least 2 samples, got {t.shape[0]}.")
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise ValueError(
            "pearson_r got NaN or inf values. Average over repeats first (np.nanmean) or drop "
            "the samples that are missing."
        )
    tc = t - t.mean(axis=0)
    pc = p - p.mean(axis=0)
    num = (tc * pc).sum(axis=0)
    den = np.sqrt((tc**2).sum(axis=0) * (pc**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / den
    # Test constancy on the values themselves: the mean of equal floats can differ from them by
    # rounding, which would leave tiny non-zero deviations and a meaningless r.
    constant = (t == t[0]).all(axis=0) | (p == p[0]).all(axis=0)
    r[constant | (den == 0)] = np.nan
    return np.clip(r, -1.0, 1.0)


def spearman_brown(r, factor: float = 2):
    """Spearman-Brown prediction of the reliability of a test ``factor`` times as long.

    ``r_corrected = factor * r / (1 + (factor - 1) * r)``. With ``factor=2`` this turns the
    correlation between two half-sets of repeats into the reliability of all repeats.

    Parameters
    ----------
    r : float or array_like
        Correlation(s) between halves.
    factor : float, default=2
        How many times longer the corrected test is.

    Returns
    -------
    float or ndarray
        Same shape as ``r``.
    """
    if factor <= 0:
        raise ValueError(f"factor must be positive, got {factor}.")
    r = np.asarray(r, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = factor * r / (1 + (factor - 1) * r)
    return out if out.ndim else float(out)


def split_half_reliability(responses, n_splits: int = 10, seed: SeedLike = 0) -> np.ndarray:
    """Split-half reliability per neuron, Spearman-Brown corrected, averaged over random splits.

    For each split the repeats are shuffled and divided into two halves (``n_repeats // 2`` and
    the rest); each half is averaged over its repeats (ignoring NaN), the two half-means are
    correlated across stimuli (Pearson r, over the stimuli recorded in both halves) and the
    correlation is corrected with :func:`spearman_brown` (factor 2). The corrected values are
    averaged over splits. This is Brain-Score's internal-consistency ceiling per neuroid, before
    its median over neuroids. It estimates the reliability of the mean over all repeats: for
    responses ``signal + noise`` with stimulus variance ``v_s`` and noise variance ``v_n`` it is
    ``v_s / (v_s + v_n / n_repeats)``.

    Parameters
    ----------
    responses : array_like, shape (n_repeats, n_stimuli, n_neurons)
        Single-trial responses; NaN where a repeat was not recorded.
    n_splits : int, default=10
        Number of random half splits.
    seed : int or numpy.random.Generator, default=0

    Returns
    -------
    ndarray, shape (n_neurons,)
        Mean corrected reliability over splits. NaN for a neuron whose halves have no variance.
    """
    r = check_responses(responses)
    n_repeats = r.shape[0]
    if n_repeats < 2:
        raise ValueError(
            f"split_half_reliability needs at least 2 repeats, got {n_repeats}. "
            "Reliability cannot be measured from single trials."
        )
    if isinstance(n_splits, bool) or not isinstance(n_splits, int | np.integer):
        raise TypeError(f"n_splits must be an int, got {n_splits!r}.")
    if n_splits < 1:
        raise ValueError(f"n_splits must be at least 1, got {n_splits}.")
    rng = check_random_state(seed)
    half = n_repeats // 2
    corrected = np.empty((n_splits, r.shape[2]))
    # A half can hold no recorded repeat of a stimulus (NaN repeats): its mean is NaN on purpose
    # and _nan_pearson skips that stimulus, so the "Mean of empty slice" warnings are noise.
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i in range(n_splits):
            order = rng.permutation(n_repeats)
            a = np.nanmean(r[order[:half]], axis=0)
            b = np.nanmean(r[order[half:]], axis=0)
            corrected[i] = spearman_brown(_nan_pearson(a, b))
        # As Brain-Score: correct each split, then average the corrected values over splits.
        return np.nanmean(corrected, axis=0)


def _nan_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Column-wise Pearson r using only the rows where both columns are finite."""
    ok = np.isfinite(a) & np.isfinite(b)
    n = ok.sum(axis=0)
    a = np.where(ok, a, 0.0)
    b = np.where(ok, b, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ma = a.sum(axis=0) / n
        mb = b.sum(axis=0) / n
        ac = np.where(ok, a - ma, 0.0)
        bc = np.where(ok, b - mb, 0.0)
        den = np.sqrt((ac**2).sum(axis=0) * (bc**2).sum(axis=0))
        out = (ac * bc).sum(axis=0) / den
    constant = np.where(ok, a, np.inf).min(axis=0) == np.where(ok, a, -np.inf).max(axis=0)
    constant |= np.where(ok, b, np.inf).min(axis=0) == np.where(ok, b, -np.inf).max(axis=0)
    out[constant | (den == 0) | (n < 2)] = np.nan
    return out


def _noise_and_total_variance(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Noise variance s2 and total variance V per neuron, as in Cadena et al. (2019)."""
    n_obs = np.sum(np.isfinite(r), axis=0)  # (n_stimuli, n_neurons)
    if (n_obs.max(axis=0) < 2).any():
        bad = np.flatnonzero(n_obs.max(axis=0) < 2)[:5].tolist()
        raise ValueError(
            f"Neurons {bad} have no stimulus with 2 or more recorded repeats, so their noise "
            "variance is undefined. Drop these neurons or record repeated presentations."
        )
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_stim_var = np.nanvar(r, axis=0, ddof=1)  # variance across repeats, per stimulus
        per_stim_var[n_obs < 2] = np.nan
        s2 = np.nanmean(per_stim_var, axis=0)
        flat = r.reshape(-1, r.shape[2])
        total = np.nanvar(flat, axis=0, ddof=1)
    return s2, total


def explainable_variance(responses) -> np.ndarray:
    """Fraction of explainable variance (FEV) per neuron.

    .. math:: \\mathrm{FEV} = \\frac{V - \\sigma^2_{noise}}{V}

    with :math:`\\sigma^2_{noise}` the mean over stimuli of the variance across repeats
    (``ddof=1``) and :math:`V` the variance over all trials and stimuli (``ddof=1``), each
    computed over the repeats that were recorded (Cadena et al. 2019).

    Parameters
    ----------
    responses : array_like, shape (n_repeats, n_stimuli, n_neurons)
        Single-trial responses; NaN where a repeat was not recorded.

    Returns
    -------
    ndarray, shape (n_neurons,)
        FEV per neuron (can be negative for a neuron with no stimulus-driven signal).
    """
    r = check_responses(responses)
    s2, total = _noise_and_total_variance(r)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (total - s2) / total


def feve(responses, predictions) -> np.ndarray:
    """Fraction of explainable variance explained (FEVE) per neuron.

    .. math:: \\mathrm{FEVE} = 1 - \\frac{\\mathrm{MSE} - \\sigma^2_{noise}}{V - \\sigma^2_{noise}}

    where MSE is the mean over all recorded single trials of
    ``(prediction - response) ** 2`` (Cadena et al. 2019). A perfect model of the
    stimulus-driven mean scores about 1; predicting the overall mean scores about 0.

    Parameters
    ----------
    responses : array_like, shape (n_repeats, n_stimuli, n_neurons)
        Single-trial responses; NaN where a repeat was not recorded.
    predictions : array_like, shape (n_stimuli, n_neurons)
        Predicted response to each stimulus (one value per stimulus, not per trial).

    Returns
    -------
    ndarray, shape (n_neurons,)
    """
    r = check_responses(responses)
    p = np.asarray(predictions, dtype=np.float64)
    if p.ndim == 1 and r.shape[2] == 1:
        p = p[:, None]
    if p.shape != r.shape[1:]:
        raise ValueError(
            f"predictions must have shape (n_stimuli, n_neurons) = {r.shape[1:]} to match "
            f"responses of shape {r.shape}, got {p.shape}. Predict one value per stimulus, "
            "not per trial."
        )
    if not np.isfinite(p).all():
        raise ValueError("predictions contain NaN or inf values.")
    s2, total = _noise_and_total_variance(r)
    with np.errstate(invalid="ignore"):
        mse = np.nanmean((r - p[None]) ** 2, axis=(0, 1))
        return 1.0 - (mse - s2) / (total - s2)
