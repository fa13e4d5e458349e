"""The surrogate ventral stream: shapes, determinism, noise levels and its known ground truth."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold, cross_val_predict

from course_tools.activations import extract
from course_tools.datasets.ventral import simulated_ventral
from course_tools.metrics import explainable_variance, pearson_r, split_half_reliability
from course_tools.models.classical import GaborFilterBank
from course_tools.models.registry import available_models, load_model
from course_tools.stimuli import object_scenes

N_IMAGES = 480
COUNTS = {"V1": 30, "V4": 40, "IT": 40}


@pytest.fixture(scope="module")
def scenes():
    low, meta_low = object_scenes(N_IMAGES // 2, variation="medium", seed=11)
    high, meta_high = object_scenes(N_IMAGES // 2, variation="high", seed=11)
    images = np.concatenate([low, high])
    meta = pd.concat([meta_low, meta_high], ignore_index=True)
    return images, meta


@pytest.fixture(scope="module")
def dataset(scenes):
    return simulated_ventral(*scenes, n_neurons=COUNTS, seed=4)


@pytest.fixture(scope="module")
def surrogate_features(scenes):
    model = load_model("surrogate_brain")
    return extract(model, scenes[0], ["conv2", "conv5", "conv8"], progress=False)


def test_shapes_areas_and_metadata(dataset, scenes):
    images, meta = scenes
    assert dataset.responses.shape == (10, N_IMAGES, sum(COUNTS.values()))
    assert dataset.neuron_meta["area"].tolist() == [a for a, n in COUNTS.items() for _ in range(n)]
    layers = dataset.neuron_meta.groupby("area")["source_layer"].unique().map(list).to_dict()
    assert layers == {"V1": ["gabor_energy"], "V4": ["conv5"], "IT": ["conv8"]}
    assert (dataset.responses >= 0).all() and np.array_equal(
        dataset.responses, dataset.responses.round()
    )
    assert np.array_equal(dataset.stimuli, images)
    pd.testing.assert_frame_equal(dataset.stimulus_meta, meta.reset_index(drop=True))
    assert dataset.ground_truth["surrogate"] == "surrogate_brain"
    roles = available_models().set_index("name")["role"]
    assert roles["surrogate_brain"] == "surrogate brain"
    assert "SURROGATE" in simulated_ventral.__doc__


def test_same_seed_same_responses_other_seed_other_neurons(scenes, dataset):
    images, meta = scenes[0][:60], scenes[1][:60]
    a = simulated_ventral(images, meta, n_neurons=5, n_repeats=3, seed=9)
    b = simulated_ventral(images, meta, n_neurons=5, n_repeats=3, seed=9)
    c = simulated_ventral(images, meta, n_neurons=5, n_repeats=3, seed=10)
    np.testing.assert_array_equal(a.responses, b.responses)
    pd.testing.assert_frame_equal(a.neuron_meta, b.neuron_meta)
    assert not np.array_equal(a.responses, c.responses)
    only_it = simulated_ventral(images, areas=["IT"], n_neurons=7, n_repeats=2, seed=9)
    assert only_it.responses.shape == (2, 60, 7)
    assert set(only_it.neuron_meta["area"]) == {"IT"}


def test_readout_ground_truth_reproduces_the_drives(dataset, surrogate_features):
    truth = dataset.ground_truth
    params = truth["params"]
    for layer in ("conv5", "conv8"):
        neurons = np.flatnonzero(params["source_layer"] == layer)
        readout = truth["readouts"][layer][:, params["readout_column"].to_numpy()[neurons]]
        drive = surrogate_features[layer].astype(np.float64) @ readout
        drive = (drive - drive.mean(0)) / drive.std(0)
        np.testing.assert_allclose(drive, truth["drives"][:, neurons], atol=1e-4)
        # each neuron reads a sparse set of channels: the ones its parameters name
        n_channels = {"conv5": 160, "conv8": 256}[layer]
        used = np.abs(readout.reshape(n_channels, -1, len(neurons))).sum(axis=1) > 0
        assert np.all(used.sum(axis=0) == params["n_inputs"].to_numpy()[neurons])
        channels = [tuple(np.flatnonzero(used[:, j])) for j in range(len(neurons))]
        assert channels == list(params["channels"].to_numpy()[neurons])


def test_v1_drives_are_gabor_energies(dataset, scenes):
    truth = dataset.ground_truth
    bank = truth["gabor_bank"]
    assert isinstance(bank, GaborFilterBank) and bank.kind == "complex"
    v1 = np.flatnonzero(dataset.neuron_meta["area"] == "V1")
    even, odd = bank.linear_responses(scenes[0])
    energy = np.sqrt(even**2 + odd**2)[:, truth["params"]["gabor_pair"].to_numpy()[v1]]
    expected = (energy - energy.mean(0)) / energy.std(0)
    np.testing.assert_allclose(truth["drives"][:, v1], expected, atol=1e-4)


def test_selecting_an_area_keeps_the_ground_truth_aligned(dataset):
    it = dataset.select(neurons="IT")
    params = it.ground_truth["params"]
    assert (params["area"] == "IT").all() and len(params) == it.n_neurons
    full_index = np.flatnonzero(dataset.neuron_meta["area"] == "IT")
    np.testing.assert_array_equal(
        it.ground_truth["rates"], dataset.ground_truth["rates"][:, full_index]
    )
    columns = params["readout_column"].to_numpy()
    np.testing.assert_array_equal(
        it.ground_truth["readouts"]["conv8"][:, columns],
        dataset.ground_truth["readouts"]["conv8"][:, columns],
    )


def _cv_pearson(features, targets):
    x = (features - features.mean(0)) / (features.std(0) + 1e-6)
    predicted = cross_val_predict(
        Ridge(alpha=float(x.shape[1])), x, targets, cv=KFold(5, shuffle=True, random_state=0)
    )
    return pearson_r(targets, predicted)


def test_it_is_predicted_by_the_late_layer_better_than_by_an_early_one(dataset, surrogate_features):
    mean = dataset.mean_responses()
    it = mean[:, dataset.neuron_meta["area"].to_numpy() == "IT"]
    late = np.median(_cv_pearson(surrogate_features["conv8"], it))
    early = np.median(_cv_pearson(surrogate_features["conv2"], it))
    assert late > early + 0.1
    assert late > 0.5


def test_noise_levels_are_realistic_and_match_the_ground_truth(dataset):
    reliability = split_half_reliability(dataset.responses, seed=0)
    assert 0.5 <= np.nanmedian(reliability) <= 0.9
    assert np.mean((reliability > 0.3) & (reliability < 0.97)) > 0.8
    # Empirical explainable fraction agrees with the generating one.
    empirical = explainable_variance(dataset.responses)
    truth = dataset.ground_truth["fev"]
    assert np.median(np.abs(empirical - truth)) < 0.05
    np.testing.assert_allclose(
        dataset.responses.mean(axis=(0, 1)), dataset.ground_truth["rates"].mean(0), rtol=0.2
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"images": np.zeros((4, 64, 64, 3))}, TypeError, "uint8"),
        ({"images": np.zeros((4, 32, 32, 3), np.uint8)}, ValueError, "64, 64, 3"),
        ({"areas": ("V1", "V2")}, ValueError, "areas"),
        ({"n_neurons": {"V1": 3}}, ValueError, "no count"),
        ({"n_neurons": 0}, ValueError, "positive integer"),
        ({"n_repeats": 1.5}, ValueError, "n_repeats"),
        ({"mean_rate": (0, 2)}, ValueError, "mean_rate"),
        ({"baseline": (0.2, 1.0)}, ValueError, "below 1"),
        ({"meta": pd.DataFrame({"a": [1]})}, ValueError, "rows"),
        ({"meta": "categories"}, TypeError, "DataFrame"),
        ({"images": np.zeros((1, 64, 64, 3), np.uint8)}, ValueError, "at least 2"),
    ],
)
def test_bad_input_is_refused(kwargs, error, match):
    arguments = {"images": np.zeros((4, 64, 64, 3), np.uint8), "n_neurons": 2}
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        simulated_ventral(**arguments)
