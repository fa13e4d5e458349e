"""Tests of course_tools.plotting: each helper draws what it promises and returns the Axes."""

from __future__ import annotations

import matplotlib.pyplot as plt  # conftest.py selects the non-interactive Agg backend
import numpy as np
import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer
from scipy.stats import pearsonr, sem

from course_tools.decoding import fit_sites_curve
from course_tools.plotting import (
    plot_layer_curve,
    plot_predicted_vs_measured,
    plot_score_distribution,
    plot_sites_curve,
)


@pytest.fixture(autouse=True)
def _close_figures():
    assert plt.get_backend().lower() == "agg"
    yield
    plt.close("all")


def _layer_frame():
    rng = np.random.default_rng(0)
    layers = ["conv1", "conv2", "pool", "fc"]  # not alphabetical: order must come from the dtype
    rows = [
        (
            layer,
            target,
            fold,
            0.3 + 0.1 * i + (0.2 if target == "size" else 0) + rng.normal(0, 0.02),
        )
        for i, layer in enumerate(layers)
        for target in ["category", "size"]
        for fold in range(5)
    ]
    frame = pd.DataFrame(rows, columns=["layer", "target", "fold", "score"])
    frame["layer"] = pd.Categorical(frame["layer"], categories=layers, ordered=True)
    frame["metric"] = np.where(frame["target"] == "size", "pearson_r", "accuracy")
    return frame.sample(frac=1.0, random_state=1), layers  # shuffled rows


def _errorbar_data(container: ErrorbarContainer):
    line, _, (bars,) = container.lines[0], container.lines[1], container.lines[2]
    segments = bars.get_segments()
    half_widths = np.array([(seg[1][1] - seg[0][1]) / 2 for seg in segments])
    return line.get_xdata(), line.get_ydata(), half_widths


def test_layer_curve_shows_mean_and_sem_per_layer_in_order():
    frame, layers = _layer_frame()
    fig, ax = plt.subplots()
    out = plot_layer_curve(frame, hue="target", ax=ax, chance=0.25)
    assert out is ax
    containers = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(containers) == 2
    assert [t.get_text() for t in ax.get_xticklabels()] == layers
    x, y, half = _errorbar_data(containers[0])
    assert list(x) == [0, 1, 2, 3]
    category = frame[frame.target == "category"]
    for i, layer in enumerate(layers):
        scores = category.loc[category.layer == layer, "score"]
        assert y[i] == pytest.approx(scores.mean())
        assert half[i] == pytest.approx(sem(scores))  # SEM with ddof=1
    chance = [line for line in ax.lines if list(line.get_ydata()) == [0.25, 0.25]]
    assert len(chance) == 1
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert set(legend) == {"category", "size", "chance"}
    assert ax.get_xlabel() == "layer"
    assert ax.get_ylabel() == "score"  # two metrics on one axis


def test_layer_curve_single_target_and_errors():
    frame, layers = _layer_frame()
    size = frame[frame.target == "size"]
    ax = plot_layer_curve(size)
    assert ax.get_ylabel() == "Pearson r"
    assert len(ax.containers) == 1
    assert ax.get_legend() is None
    numeric = pd.DataFrame({"layer": [3, 1, 2, 1], "score": [0.3, 0.1, 0.2, 0.3]})
    ax = plot_layer_curve(numeric)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3"]
    with pytest.raises(ValueError, match="hue='target'"):
        plot_layer_curve(frame)
    with pytest.raises(ValueError, match=r"no column\(s\) \['model'\]"):
        plot_layer_curve(frame, hue="model")
    with pytest.raises(TypeError, match="DataFrame"):
        plot_layer_curve(np.zeros((3, 3)))


def test_predicted_vs_measured_scatter_identity_and_r():
    rng = np.random.default_rng(1)
    measured = rng.normal(size=80)
    predicted = 0.5 * measured + rng.normal(scale=0.5, size=80)
    ax = plot_predicted_vs_measured(measured, predicted, title="neuron 3")
    (points,) = ax.collections
    np.testing.assert_allclose(points.get_offsets(), np.c_[measured, predicted])
    (identity,) = ax.lines
    np.testing.assert_allclose(identity.get_xdata(), identity.get_ydata())
    assert ax.get_xlim() == ax.get_ylim()
    assert ax.get_title() == f"neuron 3: r = {pearsonr(measured, predicted)[0]:.2f}"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("measured", "predicted")
    with pytest.raises(ValueError, match="same length"):
        plot_predicted_vs_measured(measured, predicted[:-1])
    with pytest.raises(ValueError, match=r"Plot one neuron at a time"):
        plot_predicted_vs_measured(np.zeros((5, 2)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="NaN or inf"):
        plot_predicted_vs_measured(np.r_[np.nan, measured[1:]], predicted)


def test_score_distribution_from_dict_frame_and_array():
    rng = np.random.default_rng(2)
    cnn = np.r_[rng.uniform(0.3, 0.9, 29), np.nan]  # the NaN neuron is left out
    ln = rng.uniform(0.0, 0.4, 20)
    ax = plot_score_distribution({"CNN": cnn, "LN": ln}, ylabel="FEVE")
    assert len(ax.patches) == 2  # one box per group
    assert [t.get_text() for t in ax.get_xticklabels()] == ["CNN\n(n=29)", "LN\n(n=20)"]
    n_points = sum(len(c.get_offsets()) for c in ax.collections)
    assert n_points == 49
    dots = ax.collections[1].get_offsets()
    np.testing.assert_allclose(np.sort(dots[:, 1]), np.sort(ln))
    assert np.all(np.abs(dots[:, 0] - 1) <= 0.2)
    assert ax.get_ylabel() == "FEVE"

    frame = pd.DataFrame(
        {"cell type": ["simple"] * 5 + ["complex"] * 3 + ["simple"] * 2, "score": np.arange(10.0)}
    )
    ax = plot_score_distribution(frame, by="cell type", order=["complex", "simple"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["complex\n(n=3)", "simple\n(n=7)"]
    assert ax.get_xlabel() == "cell type"

    ax = plot_score_distribution(pd.Series(ln, name="LN"), show_points=False)
    assert len(ax.patches) == 1 and len(ax.collections) == 0
    with pytest.raises(ValueError, match="not in the scores"):
        plot_score_distribution(frame, by="cell type", order=["retina"])
    with pytest.raises(ValueError, match="No finite scores"):
        plot_score_distribution(np.array([np.nan, np.nan]))


def test_sites_curve_plot_with_fit_and_level():
    a, b, c = 0.9, 0.6, 0.35
    sizes = 2 ** np.arange(8)
    curve = pd.DataFrame(
        [(n, d, a - b * n ** (-c) + 0.01 * (d - 1)) for n in sizes for d in range(3)],
        columns=["n_sites", "draw", "score"],
    )
    curve["metric"] = "accuracy"
    fit = fit_sites_curve(curve)
    fig, ax = plt.subplots()
    assert plot_sites_curve(curve, fit, ax=ax, level=0.85, label="IT") is ax
    assert ax.get_xscale() == "log"
    (measured,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    x, y, half = _errorbar_data(measured)
    np.testing.assert_allclose(x, sizes)
    np.testing.assert_allclose(y, a - b * sizes ** (-c), atol=1e-12)
    np.testing.assert_allclose(half, sem([-0.01, 0.0, 0.01]))
    assert len(ax.collections[-1].get_offsets()) == len(curve)  # every draw as a dot
    needed = fit.sites_needed(0.85)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "IT" in legend and f"{needed:.3g} sites needed" in legend and "level 0.85" in legend
    fitted = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(fitted) == 1 and fitted[0].get_xdata().max() >= needed
    np.testing.assert_allclose(fitted[0].get_ydata(), fit.predict(fitted[0].get_xdata()))
    assert ax.get_ylabel() == "accuracy"

    ax = plot_sites_curve(curve)  # no fit: a plain measured curve on a new figure
    assert len([c for c in ax.containers if isinstance(c, ErrorbarContainer)]) == 1
    assert not [line for line in ax.lines if line.get_linestyle() == "--"]
    with pytest.warns(RuntimeWarning, match="asymptote"):
        plot_sites_curve(curve, fit, level=0.99)
    with pytest.raises(TypeError, match="SitesFit"):
        plot_sites_curve(curve, fit={"a": 1})
