"""Gradients through deep networks: how they flow back to each layer, and what they see.

Two questions of the chapter "Residual connections and Vision Transformers" are answered with
gradients:

Does the learning signal reach the early layers?
    :func:`layer_gradient_norms` gives :math:`\\lVert \\partial L / \\partial W_l \\rVert` for every
    convolution and linear layer ``l``; :func:`train_with_gradient_norms` records them at every
    step of a short training run. :class:`ConvStack` builds plain and residual networks of any
    depth to compare, and :func:`orientation_task` gives them a small problem they can learn in
    a few dozen steps.
Which pixels does a unit listen to?
    :func:`effective_receptive_field` measures the *effective* receptive field of a unit
    (Luo et al. 2016): the average magnitude of the gradient of its response with respect to
    the input image. Its size is the root-mean-square distance of that map from its centroid
    (:func:`rms_radius`).

Definitions
-----------
Effective receptive field of layer ``layer`` for images :math:`x_n`: take the layer's output
:math:`a_n` of shape ``(C, h, w)`` and its centre position :math:`(h // 2, w // 2)`; let
:math:`r_n = \\sum_c a_{n, c, h//2, w//2}`. With the network in *evaluation* mode (dropout off,
batchnorm on its running statistics, so that each image is processed on its own),

.. math::

    E(p) = \\frac{1}{N} \\sum_n \\sum_{k} \\left| \\frac{\\partial r_n}{\\partial x_{n,k,p}}
    \\right|, \\qquad w(p) = E(p) / \\textstyle\\sum_q E(q),

summed over the input channels ``k``, for every pixel :math:`p = (\\text{row}, \\text{col})`.
Its size is :math:`\\sqrt{\\sum_p w(p) \\lVert p - \\mu \\rVert^2}` with centroid
:math:`\\mu = \\sum_p w(p)\\, p`, in pixels. For a square of ``s`` x ``s`` pixels with uniform
weight the size is :math:`\\sqrt{(s^2 - 1) / 6} \\approx s / \\sqrt{6}`; for an isotropic
Gaussian of standard deviation :math:`\\sigma`, :math:`\\sqrt{2}\\,\\sigma`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

__all__ = [
    "ConvStack",
    "EffectiveReceptiveField",
    "GradientTrace",
    "ResidualUnit",
    "effective_receptive_field",
    "effective_receptive_field_sizes",
    "layer_gradient_norms",
    "orientation_task",
    "rms_radius",
    "train_with_gradient_norms",
]


# --------------------------------------------------------------------------------------------
# checks shared by the functions below
# --------------------------------------------------------------------------------------------
def _check_module(model: object) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")


def _check_positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    return int(seed)


def _as_image_batch(images: object, name: str = "images") -> torch.Tensor:
    """Float tensor (N, C, H, W) from a float tensor/array (N, C, H, W) or uint8 (N, H, W, C)."""
    if isinstance(images, np.ndarray):
        if images.dtype == np.uint8:
            if images.ndim != 4:
                raise ValueError(f"uint8 {name} must have shape (N, H, W, C), got {images.shape}.")
            return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
        images = torch.from_numpy(np.asarray(images, dtype=np.float32))
    if not isinstance(images, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch tensor (N, C, H, W) or a numpy array (uint8 (N, H, W, C) "
            f"or float (N, C, H, W)), got {type(images).__name__}."
        )
    if images.dtype == torch.uint8:
        raise TypeError(
            f"{name} is a uint8 tensor; convert it with images.float() / 255 "
            "(channels first, shape (N, C, H, W))."
        )
    if not images.is_floating_point():
        raise TypeError(f"{name} must hold floating-point values, got dtype {images.dtype}.")
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(
            f"{name} must have shape (N, C, H, W) with N >= 1, got {tuple(images.shape)}."
        )
    return images.detach().float()


def _check_labels(labels: object, n: int) -> torch.Tensor:
    labels = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
    if labels.ndim != 1 or len(labels) != n:
        raise ValueError(
            f"labels must have shape ({n},), one class per image, got {tuple(labels.shape)}."
        )
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be integer class indices, got dtype {labels.dtype}.")
    return labels.long()


def _weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    layers = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d | nn.Linear) and module.weight.requires_grad
    ]
    if not layers:
        raise ValueError("the model has no trainable nn.Conv2d or nn.Linear layer.")
    return layers


# --------------------------------------------------------------------------------------------
# plain and residual networks of any depth
# --------------------------------------------------------------------------------------------
class ResidualUnit(nn.Module):
    """Two 3x3 convolutions with an optional identity shortcut (a "basic block").

    ``out = relu2(bn2(conv2(relu1(bn1(conv1(x))))) + x)`` when ``residual`` else without
    ``+ x`` (the *plain twin*: same layers, same parameters, no shortcut). As in
    He et al. (2016), the shortcut is added before the last rectification.

    Parameters
    ----------
    width : int
        Channels in and out.
    residual : bool
        Add the identity shortcut.
    normalization : bool
        Batch normalisation after each convolution (then the convolutions have no bias);
        without it ``bn1``, ``bn2`` are identities and the convolutions have a bias.
    """

    def __init__(self, width: int, *, residual: bool = True, normalization: bool = True):
        super().__init__()
        self.residual = bool(residual)
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=not normalization)
        self.bn1 = nn.BatchNorm2d(width) if normalization else nn.Identity()
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=not normalization)
        self.bn2 = nn.BatchNorm2d(width) if normalization else nn.Identity()
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, width, H, W) -> (N, width, H, W)."""
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        if self.residual:
            out = out + x
        return self.relu2(out)


class ConvStack(nn.Module):
    """A stem, ``n_blocks`` :class:`ResidualUnit` s at full resolution, and a linear readout.

    ``stem`` (3x3 conv, batchnorm if ``normalization``, ReLU) -> ``blocks.0`` ...
    ``blocks.{n_blocks - 1}`` -> global average pool -> ``head`` (linear). The network has
    ``2 * n_blocks + 2`` weight layers; the resolution never changes, so depth alone is varied.

    Parameters
    ----------
    n_blocks : int, default=4
        Number of two-convolution blocks.
    width : int, default=16
        Channels of every convolution.
    residual : bool, default=True
        Identity shortcuts around every block (False gives the plain twin).
    normalization : bool, default=True
        Batch normalisation after every convolution.
    in_channels : int, default=1
    n_classes : int, default=4
    init : {"default", "he"}, default="default"
        ``"default"``: PyTorch's own initialisation, untouched: weights uniform with variance
        ``1 / (3 fan_in)``, which shrinks the signal at every ReLU layer, and biases uniform
        in ``+-1 / sqrt(fan_in)``. ``"he"``: convolution weights normal with variance
        ``2 / fan_in`` (He et al. 2015), which keeps the signal's scale in a plain network,
        and convolution biases zero.
    seed : int, default=0
        Seed of the initial weights (the global torch random state is left untouched).
    """

    def __init__(
        self,
        n_blocks: int = 4,
        width: int = 16,
        *,
        residual: bool = True,
        normalization: bool = True,
        in_channels: int = 1,
        n_classes: int = 4,
        init: str = "default",
        seed: int = 0,
    ):
        super().__init__()
        n_blocks = _check_positive_int(n_blocks, "n_blocks")
        width = _check_positive_int(width, "width")
        in_channels = _check_positive_int(in_channels, "in_channels")
        n_classes = _check_positive_int(n_classes, "n_classes")
        if init not in ("default", "he"):
            raise ValueError(f"init must be 'default' or 'he', got {init!r}.")
        self.n_blocks, self.residual, self.normalization = n_blocks, residual, normalization
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_check_seed(seed))
            self.stem = nn.Sequential()
            self.stem.add_module("conv", nn.Conv2d(in_channels, width, 3, padding=1))
            if normalization:
                self.stem.add_module("bn", nn.BatchNorm2d(width))
            self.stem.add_module("relu", nn.ReLU())
            self.blocks = nn.Sequential(
                *(
                    ResidualUnit(width, residual=residual, normalization=normalization)
                    for _ in range(n_blocks)
                )
            )
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.head = nn.Linear(width, n_classes)
            if init == "he":
                for module in self.modules():
                    if isinstance(module, nn.Conv2d):
                        nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                        if module.bias is not None:
                            nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (N, n_classes) for inputs (N, in_channels, H, W)."""
        return self.head(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


def orientation_task(
    n: int,
    *,
    size: int = 16,
    n_orientations: int = 4,
    noise: float = 1.0,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy gratings to classify by orientation: a problem small networks learn in ~50 steps.

    Image ``i`` is ``cos(2 pi f (x cos t + y sin t) + phase) + noise * N(0, 1)`` with
    orientation ``t = label * pi / n_orientations``, spatial frequency ``f`` uniform in
    2..4 cycles per image and phase uniform in [0, 2 pi).

    Parameters
    ----------
    n : int
        Number of images.
    size : int, default=16
        Side length in pixels.
    n_orientations : int, default=4
        Number of classes.
    noise : float, default=1.0
        Standard deviation of the added Gaussian pixel noise (the grating has amplitude 1).
    seed : int, default=0

    Returns
    -------
    images : torch.Tensor, shape (n, 1, size, size), float32
    labels : torch.Tensor, shape (n,), int64
        Orientation index 0 .. n_orientations - 1.
    """
    n = _check_positive_int(n, "n")
    size = _check_positive_int(size, "size")
    n_orientations = _check_positive_int(n_orientations, "n_orientations")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}.")
    rng = np.random.default_rng(_check_seed(seed))
    labels = rng.integers(0, n_orientations, n)
    angle = labels * np.pi / n_orientations
    frequency = rng.uniform(2, 4, n) / size
    phase = rng.uniform(0, 2 * np.pi, n)
    rows, cols = np.mgrid[:size, :size] - (size - 1) / 2
    along = np.cos(angle)[:, None, None] * cols + np.sin(angle)[:, None, None] * rows
    gratings = np.cos(2 * np.pi * frequency[:, None, None] * along + phase[:, None, None])
    images = gratings + noise * rng.standard_normal((n, size, size))
    return torch.from_numpy(images[:, None].astype(np.float32)), torch.from_numpy(labels)


# --------------------------------------------------------------------------------------------
# gradient norms
# --------------------------------------------------------------------------------------------
def layer_gradient_norms(model: nn.Module, images: torch.Tensor | np.ndarray, labels) -> pd.Series:
    """Norm of the loss gradient with respect to each layer's weights.

    One forward and backward pass of the mean cross-entropy loss over ``images``, in the
    mode the model is in (a training step uses train mode: batchnorm on batch statistics).
    The model's own ``.grad`` fields are left untouched.

    Parameters
    ----------
    model : torch.nn.Module
        Maps images to class logits (N, n_classes).
    images : torch.Tensor, shape (N, C, H, W), float
    labels : array-like of int, shape (N,)

    Returns
    -------
    pandas.Series
        Frobenius norm :math:`\\lVert \\partial L / \\partial W_l \\rVert` of the weight of every
        ``nn.Conv2d`` and ``nn.Linear`` layer, indexed by module name in the order of
        ``model.named_modules()`` (input to output for sequential networks).
    """
    _check_module(model)
    images = _as_image_batch(images)
    labels = _check_labels(labels, len(images))
    layers = _weight_layers(model)
    loss = nn.functional.cross_entropy(model(images), labels)
    grads = torch.autograd.grad(loss, [module.weight for _, module in layers])
    return pd.Series(
        [float(g.norm()) for g in grads], index=[name for name, _ in layers], name="grad_norm"
    )


@dataclass
class GradientTrace:
    """What :func:`train_with_gradient_norms` recorded.

    Attributes
    ----------
    loss : pandas.Series, indexed by step
        Training loss of each mini-batch (before the update). NaN after divergence.
    gradient_norms : pandas.DataFrame, shape (n_steps, n_layers)
        :func:`layer_gradient_norms` of each mini-batch, one column per layer.
    diverged_at : int or None
        First step whose loss was not finite; training stopped there.
    """

    loss: pd.Series
    gradient_norms: pd.DataFrame
    diverged_at: int | None = None


def train_with_gradient_norms(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    labels,
    *,
    steps: int = 60,
    batch_size: int = 64,
    lr: float = 0.05,
    momentum: float = 0.9,
    seed: int = 0,
    progress: bool = False,
) -> GradientTrace:
    """Train ``model`` in place with SGD and record the loss and gradient norms of every step.

    Mini-batches are drawn with replacement from ``images`` with a generator seeded by
    ``seed``. The model is in train mode while training and in eval mode afterwards. When the
    loss stops being finite the run stops and the remaining steps are NaN (plain SGD on a deep
    network without normalisation can diverge: that is one of the things to see).

    Parameters
    ----------
    model : torch.nn.Module
        Maps images to class logits.
    images : torch.Tensor, shape (N, C, H, W), float
    labels : array-like of int, shape (N,)
    steps, batch_size : int
    lr, momentum : float
        SGD with momentum; no weight decay.
    seed : int
        Seeds the batch order.
    progress : bool
        Show a progress bar over steps.

    Returns
    -------
    GradientTrace
    """
    _check_module(model)
    images = _as_image_batch(images)
    labels = _check_labels(labels, len(images))
    steps = _check_positive_int(steps, "steps")
    batch_size = _check_positive_int(batch_size, "batch_size")
    if not lr > 0 or not 0 <= momentum < 1:
        raise ValueError(
            f"need lr > 0 and 0 <= momentum < 1, got lr={lr!r}, momentum={momentum!r}."
        )
    layers = _weight_layers(model)
    names = [name for name, _ in layers]
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    generator = torch.Generator().manual_seed(_check_seed(seed))
    losses = np.full(steps, np.nan)
    norms = np.full((steps, len(layers)), np.nan)
    diverged_at = None
    model.train()
    for step in tqdm(range(steps), desc="training", disable=not progress, leave=False):
        batch = torch.randint(0, len(images), (batch_size,), generator=generator)
        loss = nn.functional.cross_entropy(model(images[batch]), labels[batch])
        if not bool(torch.isfinite(loss)):
            diverged_at = step
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        losses[step] = loss.item()
        norms[step] = [float(module.weight.grad.norm()) for _, module in layers]
        optimizer.step()
    model.eval()
    index = pd.RangeIndex(steps, name="step")
    return GradientTrace(
        loss=pd.Series(losses, index=index, name="loss"),
        gradient_norms=pd.DataFrame(norms, index=index, columns=names),
        diverged_at=diverged_at,
    )


# --------------------------------------------------------------------------------------------
# effective receptive fields
# --------------------------------------------------------------------------------------------
def rms_radius(weights: np.ndarray) -> float:
    """Root-mean-square distance of a non-negative 2-D map from its centroid, in pixels.

    Parameters
    ----------
    weights : array_like, shape (H, W)
        Non-negative, not all zero (normalised to sum 1 here). Pixel ``(i, j)`` sits at
        row ``i``, column ``j``.

    Returns
    -------
    float
        :math:`\\sqrt{\\sum_p w(p) \\lVert p - \\mu \\rVert^2}` with :math:`\\mu = \\sum_p w(p) p`.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2:
        raise ValueError(f"weights must be a 2-D map (H, W), got shape {weights.shape}.")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError("weights must be finite and non-negative (use gradient magnitudes).")
    total = weights.sum()
    if total <= 0:
        raise ValueError("weights are all zero: the unit does not depend on any pixel.")
    w = weights / total
    rows, cols = np.indices(w.shape)
    mu_r, mu_c = (w * rows).sum(), (w * cols).sum()
    return float(np.sqrt((w * ((rows - mu_r) ** 2 + (cols - mu_c) ** 2)).sum()))


@dataclass
class EffectiveReceptiveField:
    """The effective receptive field of the centre unit of one layer.

    Attributes
    ----------
    layer : str
        Module name.
    map : ndarray, shape (H, W)
        Mean input-gradient magnitude :math:`E(p)`, normalised to sum 1.
    size : float
        :func:`rms_radius` of ``map``, in pixels.
    centroid : tuple of float
        (row, column) of the map's centre of mass, in pixels.
    unit : tuple of int
        (row, column) of the centre unit in the layer's output grid.
    """

    layer: str
    map: np.ndarray
    size: float
    centroid: tuple[float, float]
    unit: tuple[int, int]


class _StopForward(Exception):
    pass


def _layer_output(model: nn.Module, layer: str, images: torch.Tensor) -> torch.Tensor:
    """Run ``model`` until ``layer`` has returned and give back that layer's output."""
    try:
        module = model.get_submodule(layer)
    except AttributeError:
        names = [name for name, _ in model.named_modules() if name]
        raise ValueError(
            f"the model has no layer {layer!r}. Layers: {', '.join(names[:30])}"
            f"{' ...' if len(names) > 30 else ''}"
        ) from None
    captured = {}

    def hook(_module, _inputs, output):
        captured["output"] = output
        raise _StopForward

    handle = module.register_forward_hook(hook)
    try:
        model(images)
    except _StopForward:
        pass
    finally:
        handle.remove()
    if "output" not in captured:
        raise ValueError(f"layer {layer!r} was not called in the forward pass.")
    output = captured["output"]
    if not isinstance(output, torch.Tensor) or output.ndim != 4:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(
            f"layer {layer!r} returns {shape}, not a feature map (N, C, h, w): the effective "
            "receptive field is defined for convolutional layers. For a Vision Transformer "
            "use course_tools.attention.attention_distances."
        )
    return output


def effective_receptive_field(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    layer: str,
    *,
    batch_size: int = 32,
) -> EffectiveReceptiveField:
    """Effective receptive field of the centre unit of ``layer``, from input gradients.

    The definition is in the module docstring. The model is put in eval mode for the
    measurement (dropout off, batchnorm on running statistics) and its mode is restored
    afterwards; its parameters' ``.grad`` fields are not touched.

    Parameters
    ----------
    model : torch.nn.Module
    images : torch.Tensor (N, C, H, W) float, or ndarray uint8 (N, H, W, C)
        Images in the range the model expects (the course's networks take [0, 1]).
    layer : str
        Module name whose output (N, C', h, w) holds the unit, e.g. ``"conv3"`` or
        ``"layer2.1"``.
    batch_size : int, default=32

    Returns
    -------
    EffectiveReceptiveField
    """
    _check_module(model)
    images = _as_image_batch(images)
    batch_size = _check_positive_int(batch_size, "batch_size")
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a module name (str), got {type(layer).__name__}.")
    was_training = model.training
    model.eval()
    total = torch.zeros(images.shape[-2:], dtype=torch.float64)
    unit = (0, 0)
    try:
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size].clone().requires_grad_(True)
            output = _layer_output(model, layer, x)
            unit = (output.shape[-2] // 2, output.shape[-1] // 2)
            response = output[:, :, unit[0], unit[1]].sum()
            (grad,) = torch.autograd.grad(response, x)
            total += grad.abs().sum(dim=(0, 1)).double()
    finally:
        model.train(was_training)
    if not float(total.sum()) > 0:
        raise ValueError(
            f"the centre unit of {layer!r} has zero gradient for every image (a dead unit); "
            "try other images or another layer."
        )
    weights = (total / total.sum()).numpy()
    rows, cols = np.indices(weights.shape)
    centroid = (float((weights * rows).sum()), float((weights * cols).sum()))
    return EffectiveReceptiveField(
        layer=layer, map=weights, size=rms_radius(weights), centroid=centroid, unit=unit
    )


def effective_receptive_field_sizes(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    layers: Sequence[str],
    *,
    batch_size: int = 32,
    progress: bool = False,
) -> pd.Series:
    """:func:`effective_receptive_field` size of several layers, in pixels.

    Parameters
    ----------
    model : torch.nn.Module
    images : torch.Tensor (N, C, H, W) float, or ndarray uint8 (N, H, W, C)
    layers : sequence of str
    batch_size : int, default=32
    progress : bool, default=False
        Show a progress bar over layers.

    Returns
    -------
    pandas.Series
        RMS radius in pixels, indexed by layer name.
    """
    if isinstance(layers, str):
        layers = [layers]
    sizes = [
        effective_receptive_field(model, images, layer, batch_size=batch_size).size
        for layer in tqdm(layers, desc="layers", disable=not progress, leave=False)
    ]
    return pd.Series(sizes, index=list(layers), name="erf_size")
