"""Figures the chapters share.

Every helper draws into ``ax`` (a new figure when ``ax`` is None) and returns the Axes, so a
chapter can combine panels with ``fig, axes = plt.subplots(1, 3)`` and keep styling the result.

- :func:`plot_layer_curve`: a score per layer (mean ± SEM over folds or splits), layers in the
  order of the network, one line per target or model, optional chance line.
- :func:`plot_predicted_vs_measured`: predicted against measured responses with the identity
  line and Pearson r in the title.
- :func:`plot_score_distribution`: per-neuron scores as boxes with every neuron as a dot, by
  model or cell type.
- :func:`plot_sites_curve`: decoding performance against the number of sites on a log axis,
  with the saturating fit of :func:`course_tools.decoding.fit_sites_curve` and its
  extrapolation to a target level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

from course_tools.decoding import SitesFit
from course_tools.metrics import pearson_r

__all__ = [
    "plot_layer_curve",
    "plot_predicted_vs_measured",
    "plot_score_distribution",
    "plot_sites_curve",
]

_METRIC_LABELS = {"accuracy": "accuracy", "pearson_r": "Pearson r"}


def plot_layer_curve(
    frame: pd.DataFrame,
    x: str = "layer",
    y: str = "score",
    hue: str | None = None,
    ax: Axes | None = None,
    chance: float | None = None,
    *,
    palette=None,
    ylabel: str | None = None,
    title: str | None = None,
    **errorbar_kws,
) -> Axes:
    """Score per layer: mean ± SEM over the repeated rows (folds or splits) of each layer.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long format, e.g. the output of :func:`course_tools.decoding.layerwise_decoding`: one row
        per (layer, [hue level], fold) with columns ``x``, ``y`` and optionally ``hue``.
    x : str, default="layer"
        Column with the layer names. Layers keep the order of a categorical column's categories
        (as made by ``layerwise_decoding``), numeric layers are sorted, other columns keep the
        order of first appearance.
    y : str, default="score"
        Column with the scores.
    hue : str, optional
        Column whose levels get one line each (e.g. ``"target"`` or ``"model"``). Required when
        ``frame`` holds several targets, so that different targets are never averaged together.
    ax : matplotlib.axes.Axes, optional
    chance : float, optional
        Draw a dashed horizontal line at this score (e.g. ``1 / n_classes``).
    palette : seaborn palette name or list of colours, optional
    ylabel, title : str, optional
        By default the y label is the metric (from a ``metric`` column if it has one value).
    **errorbar_kws
        Passed to :meth:`matplotlib.axes.Axes.errorbar`.

    Returns
    -------
    matplotlib.axes.Axes
        One errorbar container (``ax.containers``) per hue level; the error bars are the SEM
        (ddof=1) over rows.
    """
    _check_frame(frame, [x, y] + ([hue] if hue is not None else []))
    if hue is None and x != "target" and "target" in frame and frame["target"].nunique() > 1:
        raise ValueError(
            f"frame holds {frame['target'].nunique()} targets; averaging their scores into one "
            "curve would mix them. Pass hue='target' or select one target first, e.g. "
            "frame[frame.target == 'category']."
        )
    ax = _axes(ax)
    order = _ordered_levels(frame[x])
    positions = np.arange(len(order))
    hue_levels = _ordered_levels(frame[hue]) if hue is not None else [None]
    colors = sns.color_palette(palette, n_colors=len(hue_levels))
    style = {"marker": "o", "capsize": 3, "linewidth": 1.5} | errorbar_kws
    for level, color in zip(hue_levels, colors, strict=True):
        rows = frame if level is None else frame[frame[hue] == level]
        # mean and SEM (ddof=1) per layer, in layer order; a layer missing for this level is NaN
        stats = rows.groupby(x, observed=True)[y].agg(["mean", "sem"]).reindex(order)
        ax.errorbar(
            positions,
            stats["mean"].to_numpy(dtype=float),
            yerr=stats["sem"].fillna(0.0).to_numpy(dtype=float),
            color=color,
            label=None if level is None else str(level),
            **style,
        )
    if chance is not None:
        ax.axhline(chance, linestyle="--", color="0.5", linewidth=1, label="chance")
    labels = [str(level) for level in order]
    rotate = len(labels) > 6 or max(len(label) for label in labels) > 8
    ax.set_xticks(
        positions, labels, rotation=45 if rotate else 0, ha="right" if rotate else "center"
    )
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel if ylabel is not None else _metric_label(frame, y))
    if hue is not None or chance is not None:
        ax.legend(title=hue, frameon=False)
    if title is not None:
        ax.set_title(title)
    return ax


def plot_predicted_vs_measured(
    measured,
    predicted,
    ax: Axes | None = None,
    *,
    title: str | None = None,
    xlabel: str = "measured",
    ylabel: str = "predicted",
    **scatter_kws,
) -> Axes:
    """Scatter of predicted against measured values, identity line and Pearson r in the title.

    Parameters
    ----------
    measured, predicted : array_like, shape (n_samples,)
        One neuron's (or one target's) measured and predicted values, e.g. held-out responses
        and the model's cross-validated predictions.
    ax : matplotlib.axes.Axes, optional
    title : str, optional
        Put before the correlation, e.g. ``"neuron 12"`` gives ``"neuron 12: r = 0.71"``.
    xlabel, ylabel : str
    **scatter_kws
        Passed to :meth:`matplotlib.axes.Axes.scatter`.

    Returns
    -------
    matplotlib.axes.Axes
        One scatter collection with ``n_samples`` points and one identity line; both axes share
        the same limits so that points on the line are perfect predictions.
    """
    m = _as_1d(measured, "measured")
    p = _as_1d(predicted, "predicted")
    if m.shape != p.shape:
        raise ValueError(
            f"measured and predicted must have the same length, got {len(m)} and {len(p)}."
        )
    r = float(pearson_r(m, p)[0])
    ax = _axes(ax)
    style = {"s": 12, "alpha": 0.6, "edgecolors": "none"} | scatter_kws
    ax.scatter(m, p, **style)
    lo = float(min(m.min(), p.min()))
    hi = float(max(m.max(), p.max()))
    pad = 0.05 * (hi - lo) if hi > lo else 1.0
    lo, hi = lo - pad, hi + pad
    ax.plot([lo, hi], [lo, hi], linestyle="--", color="0.4", linewidth=1, label="identity")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    r_text = f"r = {r:.2f}" if np.isfinite(r) else "r undefined (constant values)"
    ax.set_title(f"{title}: {r_text}" if title else r_text)
    return ax


def plot_score_distribution(
    scores,
    ax: Axes | None = None,
    by: str | None = None,
    *,
    y: str = "score",
    order: Sequence | None = None,
    palette=None,
    show_points: bool = True,
    ylabel: str | None = None,
    title: str | None = None,
) -> Axes:
    """Distribution of per-neuron scores: a box per group with every neuron as a dot.

    Parameters
    ----------
    scores : array_like, pandas.Series, dict of str to array_like, or pandas.DataFrame
        - 1-D array or Series, shape (n_neurons,): one distribution;
        - dict mapping a group name (model, cell type) to its scores: one box per key;
        - long DataFrame with a score column ``y`` and a grouping column ``by``.
        NaN scores (e.g. neurons without explainable variance) are left out and the number of
        plotted neurons is shown under each box.
    ax : matplotlib.axes.Axes, optional
    by : str, optional
        Grouping column when ``scores`` is a DataFrame.
    y : str, default="score"
        Score column when ``scores`` is a DataFrame.
    order : sequence, optional
        Group order; default: dict order, categorical order, or first appearance.
    palette : seaborn palette name or list of colours, optional
    show_points : bool, default=True
        Overlay every neuron as a jittered dot.
    ylabel, title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
        One box per group (tick labels ``"<group>\\n(n=<count>)"``) and, with ``show_points``,
        one dot per finite score.
    """
    long = _long_scores(scores, by=by, y=y)
    groups = list(order) if order is not None else _ordered_levels(long["group"])
    missing = [g for g in groups if g not in set(long["group"])]
    if missing:
        raise ValueError(f"order names groups that are not in the scores: {missing}.")
    long = long[np.isfinite(long["score"].to_numpy(dtype=float))]
    long = long[long["group"].isin(groups)]
    if long.empty:
        raise ValueError("No finite scores to plot.")
    ax = _axes(ax)
    colors = sns.color_palette(palette, n_colors=len(groups))
    values = [long.loc[long["group"] == g, "score"].to_numpy(dtype=float) for g in groups]
    positions = np.arange(len(groups))
    boxes = ax.boxplot(
        values,
        positions=positions,
        widths=0.6,
        showfliers=False,
        patch_artist=True,
        medianprops={"color": "k"},
    )
    for box, color in zip(boxes["boxes"], colors, strict=True):
        box.set_facecolor((*color, 0.4))
    if show_points:
        jitter = np.random.default_rng(0)  # fixed: the same figure every time
        for x, vals, color in zip(positions, values, colors, strict=True):
            offsets = jitter.uniform(-0.2, 0.2, size=len(vals))
            ax.scatter(x + offsets, vals, s=9, color=color, alpha=0.8, linewidths=0, zorder=3)
    ax.set_xticks(positions, [f"{g}\n(n={len(v)})" for g, v in zip(groups, values, strict=True)])
    ax.set_xlabel(by if by is not None else "")
    ax.set_ylabel(ylabel if ylabel is not None else y)
    if title is not None:
        ax.set_title(title)
    return ax


def plot_sites_curve(
    curve: pd.DataFrame,
    fit: SitesFit | None = None,
    ax: Axes | None = None,
    *,
    level: float | None = None,
    show_draws: bool = True,
    color=None,
    label: str | None = None,
    max_sites: float = 1e12,
) -> Axes:
    """Decoding performance against the number of sites (log x axis), with an optional fit.

    Parameters
    ----------
    curve : pandas.DataFrame
        Output of :func:`course_tools.decoding.sites_curve`: columns ``n_sites``, ``draw``,
        ``score`` (and ``metric``).
    fit : SitesFit, optional
        Output of :func:`course_tools.decoding.fit_sites_curve`; drawn as a dashed curve, extended
        to where it reaches ``level`` (at most ``max_sites``) or to 10x the largest measured size.
    ax : matplotlib.axes.Axes, optional
    level : float, optional
        A target performance (e.g. human accuracy): drawn as a dotted horizontal line; with a
        ``fit``, the extrapolated number of sites needed is marked and written in the legend.
    show_draws : bool, default=True
        Show every draw as a faint dot behind the mean ± SEM.
    color : matplotlib colour, optional
    label : str, optional
        Legend label of the measured curve (e.g. ``"IT"``), so that several areas can share one
        Axes.
    max_sites : float, default=1e12
        Do not extend the fitted curve beyond this number of sites.

    Returns
    -------
    matplotlib.axes.Axes
        One errorbar container for the measured mean ± SEM (SEM over draws, ddof=1), plus the
        fitted curve and level lines when requested.
    """
    _check_frame(curve, ["n_sites", "score"])
    if fit is not None and not isinstance(fit, SitesFit):
        raise TypeError(f"fit must be a SitesFit from fit_sites_curve, got {type(fit).__name__}.")
    ax = _axes(ax)
    stats = curve.groupby("n_sites")["score"].agg(["mean", "sem"]).sort_index()
    sizes = stats.index.to_numpy(dtype=float)
    measured = ax.errorbar(
        sizes,
        stats["mean"].to_numpy(dtype=float),
        yerr=stats["sem"].fillna(0.0).to_numpy(dtype=float),
        marker="o",
        capsize=3,
        color=color,
        linestyle="-" if fit is None else "none",
        label=label if label is not None else "measured",
    )
    color = measured.lines[0].get_color()
    if show_draws:
        ax.scatter(
            curve["n_sites"], curve["score"], s=8, alpha=0.3, color=color, linewidths=0, zorder=1
        )
    if fit is not None:
        right = sizes.max() * 10
        needed = None
        if level is not None:
            needed = fit.sites_needed(level)
            if np.isfinite(needed):
                right = max(right, min(needed * 2, max_sites))
        n = np.geomspace(max(1.0, sizes.min()), right, 200)
        ax.plot(
            n,
            fit.predict(n),
            linestyle="--",
            color=color,
            label=rf"fit: ${fit.asymptote:.2f} - {fit.amplitude:.2f}\,n^{{-{fit.exponent:.2f}}}$",
        )
        if needed is not None and np.isfinite(needed) and needed <= max_sites:
            ax.plot(
                [needed],
                [level],
                marker="*",
                markersize=12,
                color=color,
                linestyle="none",
                label=f"{needed:.3g} sites needed",
            )
    if level is not None:
        ax.axhline(level, linestyle=":", color="0.3", linewidth=1, label=f"level {level:g}")
    ax.set_xscale("log")
    ax.set_xlabel("number of sites")
    ax.set_ylabel(_metric_label(curve, "score"))
    ax.legend(frameon=False)
    return ax


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _axes(ax: Axes | None) -> Axes:
    if ax is None:
        _, ax = plt.subplots()
        return ax
    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}.")
    return ax


def _check_frame(frame, columns: list[str]) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"Expected a pandas DataFrame, got {type(frame).__name__}.")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"The frame has no column(s) {missing}; its columns are {list(frame.columns)}."
        )
    if frame.empty:
        raise ValueError("The frame is empty; there is nothing to plot.")


def _ordered_levels(values: pd.Series) -> list:
    """Categorical order, sorted numbers, or order of first appearance."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.dropna())
        return [c for c in values.cat.categories if c in present]
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        return sorted(values.dropna().unique().tolist())
    return list(pd.unique(values.dropna()))


def _metric_label(frame: pd.DataFrame, y: str) -> str:
    if "metric" in frame and frame["metric"].nunique() == 1:
        metric = str(frame["metric"].iloc[0])
        return _METRIC_LABELS.get(metric, metric)
    return y


def _as_1d(values, name: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim == 2 and 1 in a.shape:
        a = a.ravel()
    if a.ndim != 1:
        raise ValueError(
            f"{name} must have shape (n_samples,), got shape {a.shape}. Plot one neuron at a "
            f"time, e.g. {name}[:, j]."
        )
    return a


def _long_scores(scores, *, by: str | None, y: str) -> pd.DataFrame:
    """Any accepted ``scores`` input as a DataFrame with columns ``group`` and ``score``."""
    if isinstance(scores, pd.DataFrame):
        _check_frame(scores, [y] + ([by] if by is not None else []))
        group = scores[by] if by is not None else pd.Series([""] * len(scores), index=scores.index)
        return pd.DataFrame({"group": group.to_numpy(), "score": scores[y].to_numpy(dtype=float)})
    if by is not None:
        raise ValueError("by names a column, so scores must be a DataFrame.")
    if isinstance(scores, Mapping):
        if len(scores) == 0:
            raise ValueError("scores is an empty dict.")
        parts = [
            pd.DataFrame({"group": str(name), "score": _as_1d(values, f"scores[{name!r}]")})
            for name, values in scores.items()
        ]
        long = pd.concat(parts, ignore_index=True)
        long["group"] = pd.Categorical(long["group"], categories=[str(k) for k in scores])
        return long
    values = _as_1d(scores, "scores")
    name = scores.name if isinstance(scores, pd.Series) and scores.name is not None else ""
    return pd.DataFrame({"group": str(name), "score": values})
