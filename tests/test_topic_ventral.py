"""Fast checks of the claims the chapters "Mapping layers to brain areas" and "Beyond
categorization" rely on, each against an independent reference (a closed form, scikit-learn,
torchvision's architectures)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from course_tools.activations import extract
from course_tools.datasets.ventral import simulated_ventral
from course_tools.metrics import split_half_reliability
from course_tools.models.registry import load_model, region_layers
from course_tools.stimuli import object_scenes


@pytest.fixture(scope="module")
def scenes():
    return object_scenes(400, variation="high", seed=21)


def _pooled(maps, grid):
    return F.adaptive_avg_pool2d(torch.as_tensor(maps), grid).flatten(1).numpy()


def _cv_r(features, target):
    """Pearson r of 5-fold cross-validated ridge predictions (standardised in each fold)."""
    readout = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 6, 17)))
    predicted = cross_val_predict(
        readout, features, target, cv=KFold(5, shuffle=True, random_state=0)
    )
    return np.corrcoef(predicted, target)[0, 1]


def test_split_half_ceiling_follows_spearman_brown_from_the_true_fraction(scenes):
    """layers_to_areas: the ceiling of a 10-repeat mean is n f / (1 + (n - 1) f)."""
    images, meta = scenes
    data = simulated_ventral(images, meta, n_neurons=40, seed=3)
    f, n = data.ground_truth["fev"], data.n_repeats
    predicted = n * f / (1 + (n - 1) * f)
    ceiling = split_half_reliability(data.responses, n_splits=10, seed=0)
    assert np.median(np.abs(ceiling - predicted)) < 0.05
    for area in ("V1", "V4", "IT"):
        sites = data.neuron_meta["area"].to_numpy() == area
        assert abs(np.median(ceiling[sites]) - np.median(predicted[sites])) < 0.05, area


def test_position_from_global_pooling_rises_with_depth_in_a_random_network(scenes):
    """beyond_categorization: the receptive-field artefact, and the coarse readout without it."""
    images, meta = scenes
    twin = load_model("course_cnn", pretrained=False, seed=0)
    maps = extract(twin, images, ["conv1", "conv6"], flatten=False, progress=False)
    x = meta["x_norm"].to_numpy()
    first_global = _cv_r(_pooled(maps["conv1"], 1), x)
    last_global = _cv_r(_pooled(maps["conv6"], 1), x)
    first_coarse = _cv_r(_pooled(maps["conv1"], 4), x)
    assert first_global < 0.15  # one number per channel: no position in conv1
    assert last_global > first_global + 0.15  # ... but some in conv6, without any learning
    assert first_coarse > 0.35  # a 4 x 4 map keeps position from the first layer on


def test_training_not_the_architecture_makes_size_decodable(scenes):
    """beyond_categorization: trained conv6 reports object size, its random twin barely."""
    images, meta = scenes
    size = meta["size"].to_numpy()
    scores = {}
    for name, pretrained in (("trained", True), ("random", False)):
        net = load_model("course_cnn", pretrained=pretrained, seed=0)
        maps = extract(net, images, ["conv6"], flatten=False, progress=False)
        scores[name] = _cv_r(_pooled(maps["conv6"], 4), size)
    assert scores["trained"] > 0.5
    assert scores["trained"] > scores["random"] + 0.3


def test_axis_angles_reach_both_ends_of_their_range(scenes):
    """beyond_categorization: the axis angle jumps at +-90 deg, its doubled-angle code does not."""
    angle = scenes[1]["major_axis_angle"].to_numpy()
    assert angle.min() >= -90 and angle.max() < 90
    assert (angle > 80).any() and (angle < -80).any()
    near_vertical = np.deg2rad(np.array([89.5, -89.5]))
    np.testing.assert_allclose(np.cos(2 * near_vertical), [-1, -1], atol=1e-3)
    np.testing.assert_allclose(np.sin(2 * near_vertical), [0, 0], atol=0.02)


def test_brain_score_layer_commitments_are_where_the_chapter_says():
    """layers_to_areas: AlexNet V4 = output of conv 3 of 5, IT = pooled conv 5; VGG-16 V4 / IT =
    the pools ending blocks 3 / 4; V4 before IT in both."""
    alexnet = torchvision.models.alexnet(weights=None).features
    vgg16 = torchvision.models.vgg16(weights=None).features

    def convs_before(features, index):
        return sum(isinstance(m, torch.nn.Conv2d) for m in list(features)[: index + 1])

    def pools_before(features, index):
        return sum(isinstance(m, torch.nn.MaxPool2d) for m in list(features)[: index + 1])

    a, v = region_layers("alexnet"), region_layers("vgg16")
    a_v4, a_it = (int(a[r].split(".")[1]) for r in ("V4", "IT"))
    v_v4, v_it = (int(v[r].split(".")[1]) for r in ("V4", "IT"))
    assert isinstance(alexnet[a_v4], torch.nn.ReLU) and convs_before(alexnet, a_v4) == 3
    assert isinstance(alexnet[a_it], torch.nn.MaxPool2d) and convs_before(alexnet, a_it) == 5
    assert isinstance(vgg16[v_v4], torch.nn.MaxPool2d) and pools_before(vgg16, v_v4) == 3
    assert isinstance(vgg16[v_it], torch.nn.MaxPool2d) and pools_before(vgg16, v_it) == 4
    assert a_v4 < a_it and v_v4 < v_it
    assert region_layers("course_cnn")["V4"] == "conv4"
    assert region_layers("course_cnn")["IT"] == "conv6"
