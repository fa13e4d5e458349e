"""Retina analysis helpers: the spike-triggered average.

Reference: Chichilnisky, E. J. (2001). A simple white noise analysis of neuronal light
responses. Network 12(2): 199-213. For a linear-nonlinear-Poisson cell driven by Gaussian
white noise, the spike-triggered average is proportional to the cell's linear filter.
"""

from __future__ import annotations

import numpy as np

__all__ = ["spike_triggered_average"]


def spike_triggered_average(movie, counts, n_lags: int = 40, *, center: bool = True) -> np.ndarray:
    """Spike-count-weighted average of the stimulus preceding each time bin.

    .. math:: \\mathrm{STA}[l] = \\frac{\\sum_t n_t \\, (s_{t-l} - \\bar s_l)}{\\sum_t n_t}

    over the bins ``t >= n_lags - 1`` whose full history is inside the movie, with
    :math:`\\bar s_l` the mean of the frames that enter lag ``l``.

    Parameters
    ----------
    movie : array_like, shape (n_frames, ...)
        The stimulus, one frame per time bin, e.g. ``(n_frames, H, W)``.
    counts : array_like, shape (n_frames,) or (n_frames, n_cells)
        Spike counts (or firing rates) per bin, aligned with ``movie``.
    n_lags : int, default=40
        Number of frames before each bin to average, including the bin's own frame.
    center : bool, default=True
        Subtract the mean frame ``s_bar_l`` so that a movie with a non-zero mean gives the
        average stimulus *deviation*; with a zero-mean movie it changes little.

    Returns
    -------
    ndarray, shape (n_lags, ...) or (n_cells, n_lags, ...)
        ``sta[l]`` is the average frame ``l`` bins before a spike (``l = 0``: the same bin).
        The cell axis is present when ``counts`` is 2-D. A cell without spikes gives NaN.
    """
    s = np.asarray(movie, dtype=np.float64)
    y = np.asarray(counts, dtype=np.float64)
    if s.ndim < 2:
        raise ValueError(
            f"movie must have shape (n_frames, ...) with frames of at least 1-D, got {s.shape}."
        )
    single = y.ndim == 1
    if single:
        y = y[:, None]
    if y.ndim != 2:
        raise ValueError(
            f"counts must have shape (n_frames,) or (n_frames, n_cells), got {y.shape}."
        )
    if y.shape[0] != s.shape[0]:
        raise ValueError(
            f"movie and counts must have the same number of time bins, got {s.shape[0]} frames "
            f"and {y.shape[0]} bins. Align them first (one count per frame)."
        )
    if not isinstance(n_lags, int | np.integer) or not 1 <= n_lags <= s.shape[0]:
        raise ValueError(f"n_lags must be an integer in [1, {s.shape[0]}], got {n_lags!r}.")
    if not (np.isfinite(s).all() and np.isfinite(y).all()):
        raise ValueError("movie and counts must be finite (no NaN or inf).")
    n_frames, n_cells = s.shape[0], y.shape[1]
    frame_shape = s.shape[1:]
    n_valid = n_frames - n_lags + 1  # bins t = n_lags - 1 ... n_frames - 1
    valid = y[n_lags - 1 :]  # (n_valid, n_cells)
    total = valid.sum(axis=0)
    # One matrix product: row (cell, lag) of `weights` holds the counts shifted by `lag`
    # bins, so that (weights @ frames)[cell, lag] = sum_t n_t s_{t - lag}.
    weights = np.zeros((n_cells, n_lags, n_frames))
    centred = valid - (total / n_valid if center else 0.0)
    for lag in range(n_lags):
        start = n_lags - 1 - lag
        weights[:, lag, start : start + n_valid] = centred.T
    sta = weights.reshape(n_cells * n_lags, n_frames) @ s.reshape(n_frames, -1)
    sta = sta.reshape(n_cells, n_lags, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sta /= total[:, None, None]
    sta[total == 0] = np.nan
    sta = sta.reshape(n_cells, n_lags, *frame_shape)
    return sta[0] if single else sta
