"""Plausible wrong answers for the ``architectures`` assignment (instructor only)."""

import numpy as np
import torch
from torch import nn

from course_tools.grading import Mutant


# --------------------------------------------------------------------------------------------
# part 1: blocks (the __init__ is the one given to students)
# --------------------------------------------------------------------------------------------
class _Layers(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def branch(self, x):
        return self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))


class ShortcutAfterRelu(_Layers):
    """Adds the input after the last ReLU: relu(F(x)) + x."""

    def forward(self, x):
        return torch.relu(self.branch(x)) + x


class NoShortcut(_Layers):
    """Forgets the shortcut: the residual block equals the plain one."""

    def forward(self, x):
        return torch.relu(self.branch(x))


class NoInnerRelu(_Layers):
    """Leaves out the ReLU between the two convolutions."""

    def forward(self, x):
        return torch.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))


class PlainWithShortcut(_Layers):
    """The plain twin keeps a shortcut."""

    def forward(self, x):
        return torch.relu(self.branch(x) + x)


# --------------------------------------------------------------------------------------------
# part 2: gradient norms
# --------------------------------------------------------------------------------------------
def _weights(model):
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def gradient_norms_sum_loss(model, images, labels):
    """Sums the cross-entropy over the batch instead of averaging it."""
    loss = nn.functional.cross_entropy(model(images), labels, reduction="sum")
    return np.array([float(g.norm()) for g in torch.autograd.grad(loss, _weights(model))])


def gradient_norms_in_eval_mode(model, images, labels):
    """Switches the model to eval mode (batchnorm on running statistics) before the pass."""
    model.eval()
    loss = nn.functional.cross_entropy(model(images), labels)
    return np.array([float(g.norm()) for g in torch.autograd.grad(loss, _weights(model))])


def weight_norms_not_gradients(model, images, labels):
    """Returns the norms of the weights themselves."""
    return np.array([float(w.norm()) for w in _weights(model)])


def gradient_norms_with_biases(model, images, labels):
    """Includes every parameter (biases, batchnorm) instead of conv/linear weights only."""
    params = [p for p in model.parameters() if p.requires_grad]
    loss = nn.functional.cross_entropy(model(images), labels)
    return np.array([float(g.norm()) for g in torch.autograd.grad(loss, params)])


# --------------------------------------------------------------------------------------------
# part 3: mean attention distance
# --------------------------------------------------------------------------------------------
def _distance_matrix(n_patches, scale, metric="euclidean"):
    grid = int(round(np.sqrt(n_patches)))
    index = np.arange(n_patches)
    centres = np.stack([index // grid, index % grid], axis=1) * scale
    difference = centres[:, None, :] - centres[None, :, :]
    if metric == "manhattan":
        return np.abs(difference).sum(-1)
    return np.linalg.norm(difference, axis=-1)


def distance_cls_kept(attention, patch_size):
    """Keeps the CLS token: takes the first P tokens (CLS included) as the patch grid."""
    attention = np.asarray(attention, dtype=float)
    n_patches = attention.shape[-1] - 1
    patches = attention[:, :, :n_patches, :n_patches]
    return (patches * _distance_matrix(n_patches, patch_size)).sum(-1).mean(axis=(0, 2))


def distance_in_patches(attention, patch_size):
    """Measures distances in patches, forgetting to multiply by the patch size."""
    patches = np.asarray(attention, dtype=float)[:, :, 1:, 1:]
    distances = _distance_matrix(patches.shape[-1], 1.0)
    return (patches * distances).sum(-1).mean(axis=(0, 2))


def distance_renormalized(attention, patch_size):
    """Renormalises each row over the patches after dropping the CLS column."""
    patches = np.asarray(attention, dtype=float)[:, :, 1:, 1:]
    patches = patches / patches.sum(-1, keepdims=True)
    distances = _distance_matrix(patches.shape[-1], patch_size)
    return (patches * distances).sum(-1).mean(axis=(0, 2))


def distance_manhattan(attention, patch_size):
    """City-block instead of Euclidean distance between patch centres."""
    patches = np.asarray(attention, dtype=float)[:, :, 1:, 1:]
    distances = _distance_matrix(patches.shape[-1], patch_size, metric="manhattan")
    return (patches * distances).sum(-1).mean(axis=(0, 2))


def distance_mean_over_heads(attention, patch_size):
    """Averages over heads too: one number instead of one per head."""
    patches = np.asarray(attention, dtype=float)[:, :, 1:, 1:]
    distances = _distance_matrix(patches.shape[-1], patch_size)
    return np.array([(patches * distances).sum(-1).mean()])


# --------------------------------------------------------------------------------------------
# part 4: effective receptive field
# --------------------------------------------------------------------------------------------
def _rms(influence):
    weights = influence / influence.sum()
    rows, cols = np.indices(weights.shape)
    mu_row, mu_col = (weights * rows).sum(), (weights * cols).sum()
    return float(np.sqrt((weights * ((rows - mu_row) ** 2 + (cols - mu_col) ** 2)).sum()))


def _input_gradient(network, images):
    x = images.clone().requires_grad_(True)
    out = network(x)
    h, w = out.shape[-2] // 2, out.shape[-1] // 2
    (grad,) = torch.autograd.grad(out[:, :, h, w].sum(), x)
    return grad


def erf_in_train_mode(network, images):
    """Forgets network.eval(): dropout stays on and batchnorm uses batch statistics."""
    grad = _input_gradient(network, images)
    return _rms(grad.abs().sum(dim=1).mean(dim=0).double().numpy())


def erf_signed_gradient(network, images):
    """Averages the signed gradient over images and takes the magnitude only at the end."""
    network.eval()
    grad = _input_gradient(network, images)
    return _rms(grad.sum(dim=1).mean(dim=0).abs().double().numpy())


def erf_variance_not_radius(network, images):
    """Returns the mean squared distance (pixels squared) instead of its square root."""
    network.eval()
    grad = _input_gradient(network, images)
    return _rms(grad.abs().sum(dim=1).mean(dim=0).double().numpy()) ** 2


def erf_about_image_centre(network, images):
    """Measures distances from the image centre instead of the map's centroid."""
    network.eval()
    influence = _input_gradient(network, images).abs().sum(dim=1).mean(dim=0).double().numpy()
    weights = influence / influence.sum()
    rows, cols = np.indices(weights.shape)
    centre_row, centre_col = (weights.shape[0] - 1) / 2, (weights.shape[1] - 1) / 2
    return float(np.sqrt((weights * ((rows - centre_row) ** 2 + (cols - centre_col) ** 2)).sum()))


MUTANTS = [
    Mutant(
        name="shortcut_after_relu",
        description="residual block adds x after the last ReLU: relu(F(x)) + x",
        replacements={"ResidualBlock": ShortcutAfterRelu},
        must_fail=["test_blocks_hidden"],
    ),
    Mutant(
        name="no_shortcut",
        description="residual block without the shortcut",
        replacements={"ResidualBlock": NoShortcut},
        must_fail=["test_blocks_visible", "test_blocks_hidden"],
    ),
    Mutant(
        name="no_inner_relu",
        description="no ReLU between the two convolutions (plain and residual)",
        replacements={"PlainBlock": NoInnerRelu},
        must_fail=["test_blocks_hidden"],
    ),
    Mutant(
        name="plain_with_shortcut",
        description="the plain twin keeps the shortcut",
        replacements={"PlainBlock": PlainWithShortcut},
        must_fail=["test_blocks_visible", "test_blocks_hidden"],
    ),
    Mutant(
        name="sum_loss",
        description="gradient of the summed instead of the mean cross-entropy",
        replacements={"layer_gradient_norms": gradient_norms_sum_loss},
        must_fail=["test_gradient_norms_visible", "test_gradient_norms_hidden"],
    ),
    Mutant(
        name="gradients_in_eval_mode",
        description="switches to eval mode, so batchnorm uses running statistics",
        replacements={"layer_gradient_norms": gradient_norms_in_eval_mode},
        must_fail=["test_gradient_norms_hidden"],
    ),
    Mutant(
        name="weight_norms",
        description="norms of the weights instead of their gradients",
        replacements={"layer_gradient_norms": weight_norms_not_gradients},
        must_fail=["test_gradient_norms_visible", "test_gradient_norms_hidden"],
    ),
    Mutant(
        name="norms_with_biases",
        description="includes biases and batchnorm parameters",
        replacements={"layer_gradient_norms": gradient_norms_with_biases},
        must_fail=["test_gradient_norms_visible", "test_gradient_norms_hidden"],
    ),
    Mutant(
        name="cls_token_kept",
        description="takes tokens 0..P-1 (CLS included, last patch dropped) as the patch grid",
        replacements={"mean_attention_distance": distance_cls_kept},
        must_fail=["test_attention_visible", "test_attention_hidden"],
    ),
    Mutant(
        name="distance_in_patches",
        description="distances in patches instead of pixels",
        replacements={"mean_attention_distance": distance_in_patches},
        must_fail=["test_attention_visible", "test_attention_hidden"],
    ),
    Mutant(
        name="rows_renormalized",
        description="renormalises the attention rows after dropping the CLS column",
        replacements={"mean_attention_distance": distance_renormalized},
        must_fail=["test_attention_visible", "test_attention_hidden"],
    ),
    Mutant(
        name="manhattan_distance",
        description="city-block instead of Euclidean distance",
        replacements={"mean_attention_distance": distance_manhattan},
        must_fail=["test_attention_visible", "test_attention_hidden"],
    ),
    Mutant(
        name="mean_over_heads",
        description="averages over heads: one number instead of one per head",
        replacements={"mean_attention_distance": distance_mean_over_heads},
        must_fail=["test_attention_visible", "test_attention_hidden"],
    ),
    Mutant(
        name="erf_train_mode_dropout",
        description="effective receptive field measured in train mode (dropout on)",
        replacements={"effective_rf_size": erf_in_train_mode},
        must_fail=["test_erf_hidden"],
    ),
    Mutant(
        name="erf_signed_gradient",
        description="averages signed gradients, taking the magnitude last",
        replacements={"effective_rf_size": erf_signed_gradient},
        must_fail=["test_erf_hidden"],
    ),
    Mutant(
        name="erf_variance",
        description="returns the squared radius (pixels squared)",
        replacements={"effective_rf_size": erf_variance_not_radius},
        must_fail=["test_erf_visible", "test_erf_hidden"],
    ),
    Mutant(
        name="erf_about_image_centre",
        description="distances from the image centre instead of the map's centroid",
        replacements={"effective_rf_size": erf_about_image_centre},
        must_fail=["test_erf_hidden"],
    ),
]
