"""Gradient norms, plain/residual stacks and effective receptive fields against closed forms."""

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import softmax
from torch import nn

from course_tools.gradients import (
    ConvStack,
    ResidualUnit,
    effective_receptive_field,
    effective_receptive_field_sizes,
    layer_gradient_norms,
    orientation_task,
    rms_radius,
    train_with_gradient_norms,
)
from course_tools.receptive_fields import receptive_fields

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------
# gradient norms
# --------------------------------------------------------------------------------------------
def test_gradient_norm_of_a_softmax_classifier_matches_the_closed_form():
    # L = mean_n CE(softmax(W x_n + b), y_n)  =>  dL/dW = (P - Y)^T X / N.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 2, 3, 3)).astype(np.float32)
    y = rng.integers(0, 4, 7)
    model = nn.Sequential(nn.Flatten(), nn.Linear(18, 4))
    norms = layer_gradient_norms(model, torch.from_numpy(x), y)
    w = model[1].weight.detach().double().numpy()
    b = model[1].bias.detach().double().numpy()
    flat = x.reshape(7, -1).astype(np.float64)
    p = softmax(flat @ w.T + b, axis=1)
    grad = (p - np.eye(4)[y]).T @ flat / 7
    assert list(norms.index) == ["1"]
    assert norms.iloc[0] == pytest.approx(np.linalg.norm(grad), rel=1e-5)


def test_gradient_norms_are_ordered_named_and_leave_grads_alone():
    net = ConvStack(3, width=4, seed=0)
    images, labels = orientation_task(8, seed=1)
    norms = layer_gradient_norms(net, images, labels)
    expected = ["stem.conv"] + [f"blocks.{b}.conv{c}" for b in range(3) for c in (1, 2)]
    assert list(norms.index) == [*expected, "head"]
    assert all(p.grad is None for p in net.parameters())
    assert np.all(norms > 0)


def test_gradient_norms_use_the_models_mode():
    # Batchnorm on batch statistics (train) and on running statistics (eval) differ.
    images, labels = orientation_task(16, seed=2)
    net = ConvStack(2, width=4, seed=0).train()
    train_norms = layer_gradient_norms(net, images, labels)
    assert net.training
    eval_norms = layer_gradient_norms(net.eval(), images, labels)
    assert not np.allclose(train_norms, eval_norms)


def test_plain_network_without_normalisation_loses_its_gradient_with_depth():
    # PyTorch's default init scales the signal variance by about 1/6 per ReLU layer, so in a
    # plain stack the first layer's gradient shrinks geometrically; identity shortcuts carry it.
    images, labels = orientation_task(32, seed=0)
    ratios = {}
    for residual in (False, True):
        net = ConvStack(12, width=8, residual=residual, normalization=False, seed=0).train()
        norms = layer_gradient_norms(net, images, labels)
        ratios[residual] = norms["stem.conv"] / norms["blocks.11.conv2"]
    assert ratios[False] < 1e-6
    assert 1e-2 < ratios[True] < 1e2


# --------------------------------------------------------------------------------------------
# plain and residual networks
# --------------------------------------------------------------------------------------------
def test_residual_unit_adds_the_input_before_the_last_relu():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 5)
    residual = ResidualUnit(3, residual=True, normalization=False)
    plain = ResidualUnit(3, residual=False, normalization=False)
    plain.load_state_dict(residual.state_dict())
    with torch.no_grad():
        branch = residual.conv2(torch.relu(residual.conv1(x)))
        torch.testing.assert_close(residual(x), torch.relu(branch + x))
        torch.testing.assert_close(plain(x), torch.relu(branch))
        residual.conv2.weight.zero_()
        residual.conv2.bias.zero_()
        torch.testing.assert_close(residual(x), torch.relu(x))


def test_conv_stack_is_seeded_and_leaves_the_global_generator_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = ConvStack(2, seed=5).state_dict()
    assert torch.equal(torch.get_rng_state(), before)
    b = ConvStack(2, seed=5).state_dict()
    c = ConvStack(2, seed=6).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["stem.conv.weight"], c["stem.conv.weight"])
    assert sum(isinstance(m, nn.Conv2d) for m in ConvStack(5).modules()) == 11


@pytest.mark.parametrize("init, variance", [("default", 1 / 3), ("he", 2.0)])
def test_conv_stack_initialisation_variance(init, variance):
    net = ConvStack(8, width=32, init=init, seed=0)
    weights = torch.cat([net.blocks[b].conv1.weight.flatten() for b in range(8)])
    fan_in = 32 * 9
    assert weights.var().item() * fan_in == pytest.approx(variance, rel=0.05)


def test_bad_stack_arguments():
    with pytest.raises(ValueError, match="n_blocks"):
        ConvStack(0)
    with pytest.raises(ValueError, match="init"):
        ConvStack(2, init="xavier")
    with pytest.raises(ValueError, match="seed"):
        ConvStack(2, seed=-1)


# --------------------------------------------------------------------------------------------
# the orientation task and a short training run
# --------------------------------------------------------------------------------------------
def test_orientation_task_draws_gratings_of_the_labelled_orientation():
    images, labels = orientation_task(40, size=32, n_orientations=4, noise=0.0, seed=4)
    assert images.shape == (40, 1, 32, 32) and images.dtype == torch.float32
    assert labels.dtype == torch.int64 and set(labels.tolist()) <= {0, 1, 2, 3}
    for image, label in zip(images[:, 0].numpy(), labels.numpy(), strict=True):
        spectrum = np.abs(np.fft.fftshift(np.fft.fft2(image)))
        row, col = np.unravel_index(np.argmax(spectrum), spectrum.shape)
        fy, fx = row - 16, col - 16
        angle = math.degrees(math.atan2(fy, fx)) % 180
        difference = min(abs(angle - 45 * label), 180 - abs(angle - 45 * label))
        assert difference < 15  # the Fourier peak lies along the grating's orientation
    again, labels_again = orientation_task(40, size=32, noise=0.0, seed=4)
    assert torch.equal(images, again) and torch.equal(labels, labels_again)
    noisy, _ = orientation_task(4000, noise=1.0, seed=0)
    assert noisy.std().item() == pytest.approx(math.sqrt(1.5), rel=0.03)  # 1/2 + 1


def test_short_training_run_is_deterministic_and_learns():
    images, labels = orientation_task(512, seed=0)
    traces = [
        train_with_gradient_norms(ConvStack(2, width=8, seed=1), images, labels, steps=40, seed=3)
        for _ in range(2)
    ]
    pd_loss = [trace.loss.to_numpy() for trace in traces]
    np.testing.assert_array_equal(pd_loss[0], pd_loss[1])
    trace = traces[0]
    assert trace.diverged_at is None
    assert trace.gradient_norms.shape == (40, 6)
    assert trace.loss.iloc[-10:].mean() < 0.7 * math.log(4)  # chance is log(4)


def test_divergence_is_recorded():
    images, labels = orientation_task(128, seed=0)
    net = ConvStack(8, width=8, normalization=False, init="he", seed=0)
    trace = train_with_gradient_norms(net, images, labels, steps=30, lr=50.0)
    assert trace.diverged_at is not None
    assert trace.loss.iloc[trace.diverged_at :].isna().all()
    assert trace.loss.iloc[: trace.diverged_at].notna().all()


def test_training_run_bad_arguments():
    images, labels = orientation_task(8, seed=0)
    with pytest.raises(ValueError, match="lr"):
        train_with_gradient_norms(ConvStack(1), images, labels, lr=0)
    with pytest.raises(ValueError, match="labels must have shape"):
        layer_gradient_norms(ConvStack(1), images, labels[:5])
    with pytest.raises(TypeError, match="integer class"):
        layer_gradient_norms(ConvStack(1), images, labels.float())
    with pytest.raises(TypeError, match="uint8 tensor"):
        layer_gradient_norms(ConvStack(1), (images * 255).to(torch.uint8), labels)
    with pytest.raises(ValueError, match="no trainable"):
        layer_gradient_norms(nn.Sequential(nn.Flatten()), images, labels)


# --------------------------------------------------------------------------------------------
# effective receptive fields
# --------------------------------------------------------------------------------------------
def test_rms_radius_closed_forms():
    square = np.zeros((20, 20))
    square[3:8, 10:15] = 1  # 5 x 5: per-axis variance (5^2 - 1) / 12
    assert rms_radius(square) == pytest.approx(math.sqrt(2 * 24 / 12))
    rows, cols = np.indices((61, 61))
    gaussian = np.exp(-((rows - 30) ** 2 + (cols - 30) ** 2) / (2 * 4.0**2))
    assert rms_radius(gaussian) == pytest.approx(math.sqrt(2) * 4.0, rel=1e-6)
    point = np.zeros((5, 5))
    point[1, 3] = 2.0
    assert rms_radius(point) == 0.0
    with pytest.raises(ValueError, match="non-negative"):
        rms_radius(-square)
    with pytest.raises(ValueError, match="all zero"):
        rms_radius(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="2-D"):
        rms_radius(np.ones(4))


def test_erf_of_one_convolution_is_its_kernel():
    conv = nn.Conv2d(1, 1, 5, padding=2, bias=False)
    kernel = torch.arange(25, dtype=torch.float32).view(1, 1, 5, 5) - 12  # signed weights
    with torch.no_grad():
        conv.weight.copy_(kernel)
    net = nn.Sequential()
    net.add_module("conv", conv)
    images = torch.rand(3, 1, 15, 15, generator=torch.Generator().manual_seed(0))
    erf = effective_receptive_field(net, images, "conv")
    expected = np.zeros((15, 15))
    expected[5:10, 5:10] = kernel[0, 0].abs().numpy()
    np.testing.assert_allclose(erf.map, expected / expected.sum(), atol=1e-7)
    assert erf.unit == (7, 7)
    assert erf.size == pytest.approx(rms_radius(expected))


def test_erf_of_a_stack_of_box_filters_grows_like_the_square_root_of_depth():
    # L linear 3x3 box filters: the influence is the L-fold convolution of a 3-pixel box,
    # per-axis variance L * (3^2 - 1) / 12, so the RMS radius is sqrt(4 L / 3).
    net = nn.Sequential()
    for index in range(6):
        conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
        nn.init.constant_(conv.weight, 1 / 9)
        net.add_module(f"conv{index + 1}", conv)
    images = torch.rand(2, 1, 31, 31, generator=torch.Generator().manual_seed(1))
    sizes = effective_receptive_field_sizes(net, images, [f"conv{i}" for i in range(1, 7)])
    np.testing.assert_allclose(sizes, np.sqrt(4 * np.arange(1, 7) / 3), rtol=1e-5)
    # The support of the map is the theoretical receptive field of receptive_fields.
    erf = effective_receptive_field(net, images, "conv6")
    support = np.flatnonzero(erf.map.sum(0) > 0)
    assert support.size == receptive_fields(net)["receptive_field"].iloc[-1] == 13


def test_erf_is_measured_in_eval_mode_and_restores_the_mode():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Conv2d(8, 8, 3, padding=1),
    )
    net.train()
    images = torch.rand(8, 3, 17, 17, generator=torch.Generator().manual_seed(2))
    first = effective_receptive_field(net, images, "4")
    second = effective_receptive_field(net, images, "4", batch_size=1)  # images one by one
    assert net.training
    np.testing.assert_allclose(first.map, second.map, rtol=1e-5, atol=1e-9)
    # A hand-rolled measurement in eval mode gives the same map.
    net.eval()
    x = images.clone().requires_grad_(True)
    net(x)[:, :, 8, 8].sum().backward()
    manual = x.grad.abs().sum((0, 1)).numpy()
    np.testing.assert_allclose(first.map, manual / manual.sum(), rtol=1e-5, atol=1e-9)


def test_erf_accepts_uint8_images_and_course_networks():
    from course_tools.models.registry import load_model

    cnn = load_model("course_cnn", pretrained=False, seed=0)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(2, 64, 64, 3), dtype=np.uint8)
    erf = effective_receptive_field(cnn, images, "conv2")
    assert erf.map.shape == (64, 64)
    assert erf.map.sum() == pytest.approx(1.0)
    # conv2 of course_cnn sees 15 px (5x5 stride 2, 2x2 pool, 3x3): its ERF lies inside.
    assert 0 < erf.size < 15 / math.sqrt(6) + 1


def test_erf_bad_inputs():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 9, 2))
    images = torch.rand(2, 1, 5, 5)
    with pytest.raises(ValueError, match="no layer 'conv9'"):
        effective_receptive_field(net, images, "conv9")
    with pytest.raises(ValueError, match="not a feature map"):
        effective_receptive_field(net, images, "2")
    with pytest.raises(ValueError, match="shape \\(N, C, H, W\\)"):
        effective_receptive_field(net, images[0], "0")
    with pytest.raises(TypeError, match="module name"):
        effective_receptive_field(net, images, 0)
    dead = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.ReLU())
    with torch.no_grad():
        dead[0].weight.fill_(0.0)
        dead[0].bias.fill_(-1.0)
    with pytest.raises(ValueError, match="dead unit"):
        effective_receptive_field(dead, images, "1")


# --------------------------------------------------------------------------------------------
# the ablation script and the results it shipped
# --------------------------------------------------------------------------------------------
def _ablation_script():
    path = ROOT / "scripts" / "train_ablations.py"
    spec = importlib.util.spec_from_file_location("train_ablations", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


def test_shipped_ablation_results_come_from_the_scripts_default_settings():
    script = _ablation_script()
    path = ROOT / "src" / "course_tools" / "weights" / "ablation_object_scenes.json"
    results = json.loads(path.read_text())
    assert results["produced_by"] == "scripts/train_ablations.py"
    assert results["settings"] == script._settings_dict(script.Settings())
    assert set(results["results"]) == set(script.ABLATIONS)
    for name, entry in results["results"].items():
        runs = entry["runs"]
        assert [run["seed"] for run in runs] == list(script.Settings().seeds)
        assert entry["mean_test_accuracy"] == pytest.approx(
            np.mean([run["test_accuracy"] for run in runs]), abs=1e-4
        )
        for run in runs:
            assert len(run["history"]) == results["settings"]["epochs"]
            assert 0 <= run["test_accuracy"] <= 1, name


@pytest.mark.slow
def test_ablation_script_reruns_one_tiny_config_identically(tmp_path):
    script = _ablation_script()
    outputs = []
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        for attempt in range(2):
            out = tmp_path / f"run{attempt}.json"
            argv = ["--ablations", "no_locality", "--seeds", "3", "--n-train", "96"]
            argv += ["--n-test", "32", "--epochs", "2", "--out", str(out), "--no-progress"]
            assert script.main(argv) == 0
            outputs.append(json.loads(out.read_text()))
    finally:  # main() sets both for the whole process
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    first, second = (o["results"]["no_locality"]["runs"][0] for o in outputs)
    assert first["step_loss"] == second["step_loss"]
    assert first["history"] == second["history"]
    assert len(first["step_loss"]) == 2  # one batch of 128 per epoch
    assert outputs[0]["settings"]["n_train"] == 96
    assert outputs[0]["command"].startswith("python scripts/train_ablations.py --ablations")
