"""Theoretical receptive fields of convolutional hierarchies.

For a chain of convolution and pooling layers with kernel size :math:`k_l`, stride :math:`s_l` and
padding :math:`p_l`, the receptive field size :math:`r_l` (in input pixels), the jump
:math:`j_l` (input pixels between neighbouring units) and the centre of the first unit
:math:`c_l` follow the recursion (Araujo, Norris & Sim 2019, https://doi.org/10.23915/distill.00021)

.. math::

    j_l = j_{l-1} s_l, \\qquad r_l = r_{l-1} + (k_l - 1)\\, d_l\\, j_{l-1}, \\qquad
    c_l = c_{l-1} + \\left(\\tfrac{(k_l - 1) d_l}{2} - p_l\\right) j_{l-1}

with :math:`r_0 = j_0 = 1`, :math:`c_0 = 0` and dilation :math:`d_l`. This is the *theoretical*
receptive field: the input region that can influence a unit at all. The *effective* receptive
field, where the influence is actually large, is smaller and roughly Gaussian (Luo et al. 2016).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from torch import nn

__all__ = ["LayerGeometry", "receptive_fields"]

# Layers that keep the spatial geometry unchanged.
_PASS_THROUGH = (
    nn.ReLU,
    nn.ELU,
    nn.GELU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softplus,
    nn.LeakyReLU,
    nn.BatchNorm2d,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.Dropout,
    nn.Dropout2d,
    nn.Identity,
)


@dataclass(frozen=True)
class LayerGeometry:
    """Kernel, stride, padding and dilation of one spatial layer (square kernels)."""

    kernel: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1


def _square(value, what: str, name: str) -> int:
    if isinstance(value, tuple):
        if len(set(value)) != 1:
            raise ValueError(
                f"Layer {name!r} has a non-square {what} {value}; receptive_fields handles square "
                "kernels, strides and paddings only."
            )
        value = value[0]
    if isinstance(value, str):
        raise ValueError(
            f"Layer {name!r} uses padding={value!r}; give the padding as an integer to compute "
            "receptive fields."
        )
    return int(value)


def _geometry(name: str, module: nn.Module) -> LayerGeometry | None:
    if isinstance(module, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d):
        kernel = _square(module.kernel_size, "kernel size", name)
        stride = _square(module.stride, "stride", name)
        padding = _square(module.padding, "padding", name)
        dilation = _square(getattr(module, "dilation", 1), "dilation", name)
        return LayerGeometry(kernel, stride, padding, dilation)
    if isinstance(module, _PASS_THROUGH):
        return None
    raise ValueError(
        f"Layer {name!r} ({type(module).__name__}) is not a convolution, a pooling layer or a "
        "pointwise layer, so its receptive field is not defined by this recursion. Pass only the "
        "convolutional part of the network, e.g. model.features."
    )


def receptive_fields(model: nn.Sequential) -> pd.DataFrame:
    """Receptive field size, jump and first-unit centre after each spatial layer of a conv stack.

    Parameters
    ----------
    model : torch.nn.Sequential
        A chain of ``Conv2d`` / ``MaxPool2d`` / ``AvgPool2d`` layers and pointwise layers
        (activations, batch norm, dropout), for example ``torchvision.models.alexnet().features``.
        Nested ``Sequential`` containers are walked in order.

    Returns
    -------
    pandas.DataFrame
        One row per convolution or pooling layer, in forward order, with columns ``layer``
        (dotted module name), ``type``, ``kernel``, ``stride``, ``padding``,
        ``receptive_field`` (pixels), ``jump`` (pixels between neighbouring units) and
        ``start`` (input coordinate of the first unit's centre; negative values lie in the padding).

    Examples
    --------
    >>> import torchvision
    >>> rf = receptive_fields(torchvision.models.alexnet(weights=None).features)
    >>> int(rf["receptive_field"].iloc[-1])
    195
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(
            f"receptive_fields expects an nn.Sequential of conv/pool layers, got "
            f"{type(model).__name__}. For torchvision CNNs pass the `.features` part."
        )
    rows = []
    size, jump, start = 1, 1, 0.0
    for name, module in model.named_modules():
        if isinstance(module, nn.Sequential):
            continue
        geometry = _geometry(name, module)
        if geometry is None:
            continue
        span = (geometry.kernel - 1) * geometry.dilation
        start = start + (span / 2 - geometry.padding) * jump
        size = size + span * jump
        jump = jump * geometry.stride
        rows.append(
            {
                "layer": name,
                "type": type(module).__name__,
                "kernel": geometry.kernel,
                "stride": geometry.stride,
                "padding": geometry.padding,
                "receptive_field": size,
                "jump": jump,
                "start": start,
            }
        )
    if not rows:
        raise ValueError("The model has no convolution or pooling layer.")
    return pd.DataFrame(rows)
