"""Claims the V1 chapter (book/v1_system_identification.md) relies on, checked fast.

- FEVE is the right yardstick: the true rates of a simulated population score about 1 and the
  estimated explainable fraction matches the simulation's ground truth.
- LN is a cliff on phase-invariant cells: an LN model with a Gabor front end explains simple cells
  but not complex cells, while the Gabor energy model explains both.
- The chapter's default runs offline: the real-data loader and the downloadable network are
  reached only through the ``USE_REAL_DATA`` switch, which is off.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from course_tools.datasets import simulated_v1
from course_tools.metrics import explainable_variance, feve
from course_tools.models.classical import GaborEnergyModel, GaborFilterBank, LNPoissonModel
from course_tools.stimuli import naturalistic_images

CHAPTER = Path(__file__).resolve().parents[1] / "book" / "v1_system_identification.md"


def test_feve_of_the_true_rates_is_one_and_fev_matches_the_truth():
    images = naturalistic_images(1500, size=40, seed=3)
    ds = simulated_v1(images, n_neurons=24, seed=4)
    truth = ds.ground_truth
    assert np.median(feve(ds.responses, truth["rates"])) == pytest.approx(1.0, abs=0.05)
    # with the true rates the error on single trials is the noise: FEVE is 1 for every neuron
    assert np.percentile(feve(ds.responses, truth["rates"]), [10, 90]) == pytest.approx(
        [1.0, 1.0], abs=0.12
    )
    # the estimate scatters around the truth (sampling error of variances of gamma-Poisson
    # counts), without a systematic bias
    estimated = explainable_variance(ds.responses)
    assert abs(np.median(estimated - truth["fev"])) < 0.03
    assert np.median(np.abs(estimated - truth["fev"])) < 0.06
    assert np.corrcoef(estimated, truth["fev"])[0, 1] > 0.8
    # a constant prediction (the mean response) explains nothing
    constant = np.broadcast_to(ds.mean_responses().mean(axis=0), ds.responses.shape[1:])
    assert np.median(feve(ds.responses, constant)) == pytest.approx(0.0, abs=0.02)


@pytest.mark.slow
def test_ln_model_fails_on_complex_cells_and_the_energy_model_does_not():
    images = naturalistic_images(1200, size=40, seed=5)
    ds = simulated_v1(images, n_neurons=16, seed=6, mixture={"simple": 0.5, "complex": 0.5})
    train, test = ds.select(stimuli=slice(0, 1000)), ds.select(stimuli=slice(1000, None))
    bank = GaborFilterBank(stride=5)
    ln = LNPoissonModel(filter_bank=bank).fit(train.stimuli, train.mean_responses())
    energy = GaborEnergyModel(filter_bank=bank).fit(train.stimuli, train.mean_responses())
    kind = test.neuron_meta["cell_type"].to_numpy()
    ln_scores = feve(test.responses, ln.predict(test.stimuli))
    energy_scores = feve(test.responses, energy.predict(test.stimuli))
    assert np.median(ln_scores[kind == "simple"]) > 0.4
    assert abs(np.median(ln_scores[kind == "complex"])) < 0.1  # the cliff
    assert np.median(energy_scores[kind == "simple"]) > 0.4
    # the energy model contains the complex cells' computation: far above the LN cliff
    complex_gap = np.median(energy_scores[kind == "complex"]) - np.median(
        ln_scores[kind == "complex"]
    )
    assert complex_gap > 0.25


def _code_cells(text: str) -> list[str]:
    # the cell body, without MyST option lines such as ":tags: [hide-input]"
    pattern = r"```\{code-cell\}[^\n]*\n(?::[^\n]*\n)*(.*?)```"
    return re.findall(pattern, text, flags=re.DOTALL)


def _guarded_by_switch(tree: ast.AST, target) -> bool:
    """True when ``target`` sits in the body of an ``if USE_REAL_DATA:`` statement."""
    return any(
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "USE_REAL_DATA"
        and any(target is inner for stmt in node.body for inner in ast.walk(stmt))
        for node in ast.walk(tree)
    )


def test_chapter_reaches_real_data_only_through_the_switch():
    cells = [ast.parse(source) for source in _code_cells(CHAPTER.read_text())]
    assert cells, "the chapter has no code cells"
    switches = [
        node
        for tree in cells
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "USE_REAL_DATA" for t in node.targets)
    ]
    assert len(switches) == 1, "exactly one USE_REAL_DATA switch"
    assert isinstance(switches[0].value, ast.Constant) and switches[0].value.value is False

    online = 0
    for tree in cells:
        for node in ast.walk(tree):
            calls_loader = (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id.startswith("load_cadena")
            )
            names_download = isinstance(node, ast.Constant) and node.value in {"vgg16", "vgg19"}
            if calls_loader or names_download:
                online += 1
                assert _guarded_by_switch(tree, node), (
                    f"line {node.lineno}: {ast.unparse(node)} runs without USE_REAL_DATA"
                )
    assert online >= 2, "the real-data branch (loader and pretrained VGG) is missing"
