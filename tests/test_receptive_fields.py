"""Receptive fields against published values and against a gradient measurement."""

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from course_tools.receptive_fields import receptive_fields


def test_alexnet_matches_the_published_value():
    # Araujo et al. (2019, Distill) list 195 px for AlexNet's last pooling layer.
    rf = receptive_fields(torchvision.models.alexnet(weights=None).features)
    assert rf["receptive_field"].tolist() == [11, 19, 51, 67, 99, 131, 163, 195]
    assert rf["jump"].iloc[-1] == 32


def test_vgg16_matches_the_published_value():
    # VGG-16: conv5_3 sees 196 px and pool5 212 px (Araujo et al. 2019).
    rf = receptive_fields(torchvision.models.vgg16(weights=None).features)
    assert rf["receptive_field"].iloc[-2] == 196
    assert rf["receptive_field"].iloc[-1] == 212


def test_size_equals_the_support_of_the_input_gradient():
    # With positive weights and no rectification every input pixel inside the receptive field
    # reaches the unit, so the support of d(unit)/d(input) is exactly the receptive field.
    net = nn.Sequential(
        nn.Conv2d(1, 1, 5, stride=2, padding=2),
        nn.AvgPool2d(3, stride=2),
        nn.Conv2d(1, 1, 3, padding=1, dilation=1),
        nn.Conv2d(1, 1, 3, padding=2, dilation=2),
    )
    for p in net.parameters():
        nn.init.constant_(p, 0.1)
    x = torch.zeros(1, 1, 97, 97, requires_grad=True)
    out = net(x)
    i = out.shape[-1] // 2
    out[0, 0, i, i].backward()
    support = np.flatnonzero(x.grad[0, 0].abs().sum(0).numpy() > 0)
    rf = receptive_fields(net).iloc[-1]
    assert support.size == rf["receptive_field"]
    centre = rf["start"] + i * rf["jump"]
    assert (support[0] + support[-1]) / 2 == pytest.approx(centre)


def test_unsupported_layers_get_a_clear_error():
    with pytest.raises(ValueError, match=r"\(Flatten\) is not a convolution"):
        receptive_fields(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Flatten(), nn.Linear(4, 2)))
    with pytest.raises(TypeError, match=r"\.features"):
        receptive_fields(torchvision.models.alexnet(weights=None))
    with pytest.raises(ValueError, match="non-square"):
        receptive_fields(nn.Sequential(nn.Conv2d(1, 1, (3, 5))))
