"""The retina chapter's claim and the ``retina_cnn`` assignment's solution, checked independently.

- The chapter's result on a small configuration with fixed seeds: the McIntosh CNN fitted to
  simulated ganglion cells beats the STA-based LN model on natural scenes by a clear margin and
  stays below the ceiling set by the simulation's noise-free rates.
- The two orders of the time axis the chapter and the assignment rely on (STA in lag order,
  ``make_lagged_movie`` chronological) agree with a direct loop.
- The solution code of the assignment notebook agrees with independent implementations
  (course_tools, torch, scipy, closed forms), so its recorded references are right.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn
from torch.nn import functional as F

from course_tools.datasets import simulated_retina
from course_tools.metrics import pearson_r
from course_tools.models.classical import RetinaLNModel
from course_tools.models.sysid import RetinaCNN, make_lagged_movie
from course_tools.models.training import fit, predict
from course_tools.retina import spike_triggered_average
from course_tools.stimuli import naturalistic_movie

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "assignments" / "source" / "retina_cnn" / "retina_cnn.ipynb"


def _central_crop(movie: np.ndarray, size: int) -> np.ndarray:
    start = (movie.shape[-1] - size) // 2
    return np.ascontiguousarray(movie[..., start : start + size, start : start + size], np.float32)


# --------------------------------------------------------------------------------------------
# the chapter's claim
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def natural_scene_fits():
    """LN and CNN fitted to 40 s of simulated natural-scene responses (the chapter, smaller)."""
    n_lags, crop, n_cells = 40, 30, 8
    recording = simulated_retina(
        naturalistic_movie(4_000, seed=11),
        naturalistic_movie(600, seed=12),
        n_cells=n_cells,
        n_test_repeats=5,
        seed=13,
    )
    train = _central_crop(recording.train.stimuli, crop)
    test = _central_crop(recording.test.stimuli, crop)
    counts = recording.train.responses[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ln = RetinaLNModel(n_lags=n_lags).fit(train, counts)
        cnn = RetinaCNN(n_cells, n_lags=n_lags, image_size=crop, seed=0)
        cnn.initialize_output_bias(counts[n_lags - 1 :])
        fit(
            cnn,
            (make_lagged_movie(train, n_lags), counts[n_lags - 1 :]),
            max_epochs=2,
            patience=None,
            seed=0,
            progress=False,
        )
        cnn_prediction = predict(cnn, make_lagged_movie(test, n_lags))
    finally:
        torch.set_num_threads(threads)
    trial_mean = recording.test.responses[:, n_lags - 1 :].mean(axis=0)
    return {
        "LN": pearson_r(trial_mean, ln.predict(test)),
        "CNN": pearson_r(trial_mean, cnn_prediction),
        "ceiling": pearson_r(trial_mean, recording.test.ground_truth["rates"][n_lags - 1 :]),
    }


def test_cnn_beats_ln_on_natural_scenes_with_a_clear_margin(natural_scene_fits):
    r = natural_scene_fits
    margin = np.median(r["CNN"]) - np.median(r["LN"])
    assert margin > 0.15, f"median r: CNN {np.median(r['CNN']):.2f}, LN {np.median(r['LN']):.2f}"
    assert (r["CNN"] > r["LN"]).sum() >= 6, (
        f"CNN {np.round(r['CNN'], 2)}, LN {np.round(r['LN'], 2)}"
    )


def test_cnn_stays_below_the_noise_ceiling(natural_scene_fits):
    r = natural_scene_fits
    assert np.all(r["CNN"] < r["ceiling"] + 0.02)
    assert np.median(r["ceiling"]) > 0.75  # five repeats give a usable trial average


# --------------------------------------------------------------------------------------------
# time-axis conventions
# --------------------------------------------------------------------------------------------
def test_lag_order_is_chronological_order_reversed():
    rng = np.random.default_rng(3)
    movie = rng.normal(size=(30, 4, 5))
    n_lags = 6
    filt = rng.normal(size=(n_lags, 4, 5))  # lag order: filt[l] weighs frame t - l
    direct = np.array(
        [sum((filt[lag] * movie[t - lag]).sum() for lag in range(n_lags)) for t in range(5, 30)]
    )
    lagged = make_lagged_movie(movie, n_lags)  # chronological: channel -1 = frame t
    np.testing.assert_allclose((lagged[:, ::-1] * filt).sum(axis=(1, 2, 3)), direct, rtol=1e-12)
    # the chapter's LN generator: one frame-sized convolution with the filter reversed
    layer = nn.Conv2d(n_lags, 1, kernel_size=(4, 5), bias=False).double()
    layer.weight.data = torch.tensor(filt[::-1].copy())[None]
    with torch.no_grad():
        conv = layer(torch.tensor(lagged.copy())).numpy()[:, 0, 0, 0]
    np.testing.assert_allclose(conv, direct, rtol=1e-10)
    # one spike in bin 9: the STA holds frames 9, 8, ..., 4, i.e. the sample reversed
    counts = np.zeros(30)
    counts[9] = 1.0
    sta = spike_triggered_average(movie, counts, n_lags=n_lags, center=False)
    np.testing.assert_allclose(sta, lagged[9 - (n_lags - 1)][::-1])


# --------------------------------------------------------------------------------------------
# the assignment's solution
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def solution():
    """The notebook's answer cells, markers removed, executed in a fresh namespace."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    namespace = {"np": np, "torch": torch, "nn": nn, "F": F}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution"):
            lines = [line for line in cell.source.split("\n") if "### " not in line]
            exec(compile("\n".join(lines), meta["grade_id"], "exec"), namespace)
    return namespace


def test_sta_matches_course_tools(solution):
    rng = np.random.default_rng(5)
    movie = rng.normal(size=(400, 3, 4))
    counts = rng.poisson(0.6, size=400).astype(float)
    expected = spike_triggered_average(movie, counts, n_lags=9, center=False)
    np.testing.assert_allclose(solution["spike_triggered_average"](movie, counts, 9), expected)


def test_nonlinearity_matches_sorted_blocks(solution):
    rng = np.random.default_rng(6)
    generator = rng.normal(size=120)
    counts = rng.poisson(1.0, size=120).astype(float)
    order = np.argsort(generator)
    centres, values = solution["fit_nonlinearity"](generator, counts, n_bins=8)
    np.testing.assert_allclose(centres, generator[order].reshape(8, 15).mean(axis=1))
    np.testing.assert_allclose(values, counts[order].reshape(8, 15).mean(axis=1))


def test_poisson_loss_matches_torch(solution):
    gen = torch.Generator().manual_seed(7)
    rate = torch.rand(20, 3, generator=gen) * 2
    counts = torch.poisson(rate, generator=gen)
    expected = F.poisson_nll_loss(rate, counts, log_input=False, full=False, eps=1e-8)
    torch.testing.assert_close(solution["poisson_nll"](rate, counts), expected)


def test_cnn_matches_course_tools_network(solution):
    model = solution["McIntoshCNN"](3, n_lags=10, image_size=28, noise_std=0.1).eval()
    reference = RetinaCNN(3, n_lags=10, image_size=28, batchnorm=False, seed=1).eval()
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in reference.parameters()
    )
    model.load_state_dict(reference.state_dict())
    x = torch.randn(4, 10, 28, 28, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-4, atol=1e-5)
    # closed form of the published network (40 lags, 50 px, 8 cells)
    n_params = sum(p.numel() for p in solution["McIntoshCNN"](8).parameters())
    assert n_params == (40 * 15 * 15 + 1) * 8 + (8 * 11 * 11 + 1) * 8 + (8 * 26 * 26 + 1) * 8


def test_trial_averaged_r_matches_scipy(solution):
    rng = np.random.default_rng(9)
    responses = rng.poisson(2.0, size=(4, 50, 3)).astype(float)
    predictions = responses.mean(axis=0) + rng.normal(size=(50, 3))
    expected = [
        stats.pearsonr(predictions[:, c], responses.mean(axis=0)[:, c])[0] for c in range(3)
    ]
    np.testing.assert_allclose(solution["trial_averaged_r"](predictions, responses), expected)


def test_training_loop_is_reproducible_and_learns(solution):
    rng = np.random.default_rng(10)
    inputs = rng.normal(size=(256, 4, 25, 25)).astype(np.float32)
    weights = rng.normal(size=(4, 25, 25)) / 50
    targets = rng.poisson(np.log1p(np.exp((inputs * weights).sum(axis=(1, 2, 3)))))[:, None]
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = solution["McIntoshCNN"](1, n_lags=4, image_size=25)
        runs.append(solution["train_cnn"](model, inputs, targets, n_epochs=3, seed=4))
        assert not model.training
    assert runs[0] == runs[1]
    assert runs[0][-1] < runs[0][0]
