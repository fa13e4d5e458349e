"""The architectures of the shipped networks, checked against torch references and hand counts."""

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.transforms.v2 import functional as tvf

from course_tools.models.zoo import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    CourseCNN,
    CourseResNet,
    CourseViT,
    InputNormalization,
    MultiHeadSelfAttention,
    ResidualBlock,
    SurrogateBrainCNN,
    TransformerBlock,
)

ARCHITECTURES = [CourseCNN, CourseResNet, CourseViT, SurrogateBrainCNN]


def _images(n=2, size=64, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _output_shapes(model, x, names):
    shapes = {}
    modules = dict(model.named_modules())
    handles = [
        modules[name].register_forward_hook(
            lambda m, a, out, name=name: shapes.__setitem__(name, tuple(out.shape))
        )
        for name in names
    ]
    with torch.no_grad():
        model.eval()(x)
    for handle in handles:
        handle.remove()
    return shapes


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_logits_have_one_column_per_category(architecture):
    torch.manual_seed(0)
    logits = architecture().eval()(_images(3))
    assert logits.shape == (3, 8)
    assert torch.isfinite(logits).all()


def test_cnn_layer_shapes_match_the_documented_table():
    torch.manual_seed(0)
    shapes = _output_shapes(
        CourseCNN(), _images(), ["conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "fc7"]
    )
    assert shapes == {
        "conv1": (2, 32, 16, 16),
        "conv2": (2, 64, 16, 16),
        "conv3": (2, 96, 8, 8),
        "conv4": (2, 128, 8, 8),
        "conv5": (2, 128, 8, 8),
        "conv6": (2, 128, 4, 4),
        "fc7": (2, 256),
    }


def test_cnn_has_six_conv_layers_and_the_parameter_count_of_its_table():
    model = CourseCNN()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 6
    channels = [3, 32, 64, 96, 128, 128, 128]
    kernels = [5, 3, 3, 3, 3, 3]
    expected = sum(
        k * k * c_in * c_out + 2 * c_out  # bias-free conv + batchnorm scale and shift
        for k, c_in, c_out in zip(kernels, channels[:-1], channels[1:], strict=True)
    )
    expected += (128 * 4) * 256 + 256 + 256 * 8 + 8  # fc7 and fc8
    assert sum(p.numel() for p in model.parameters()) == expected


def test_surrogate_is_a_deeper_and_wider_cnn():
    surrogate, cnn = SurrogateBrainCNN(), CourseCNN()
    n_convs = sum(isinstance(m, nn.Conv2d) for m in surrogate.modules())
    assert n_convs == 8
    assert sum(p.numel() for p in surrogate.parameters()) > 2 * sum(
        p.numel() for p in cnn.parameters()
    )
    shapes = _output_shapes(surrogate, _images(), ["conv5", "conv8"])
    assert shapes == {"conv5": (2, 160, 8, 8), "conv8": (2, 256, 4, 4)}


def test_resnet_layer_shapes_match_the_documented_table():
    torch.manual_seed(0)
    names = ["stem", "layer1.1", "layer2.0", "layer3.1"]
    shapes = _output_shapes(CourseResNet(), _images(), names)
    assert shapes == {
        "stem": (2, 32, 16, 16),
        "layer1.1": (2, 32, 16, 16),
        "layer2.0": (2, 64, 8, 8),
        "layer3.1": (2, 128, 4, 4),
    }


def test_residual_block_with_a_silenced_branch_passes_its_input_through():
    # With bn2 scaled to zero the residual branch adds nothing: out = relu(x + 0) = relu(x).
    block = ResidualBlock(8, 8).eval()
    nn.init.zeros_(block.bn2.weight)
    nn.init.zeros_(block.bn2.bias)
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(block(x), torch.relu(x))


def test_residual_block_with_stride_uses_a_projection_shortcut():
    block = ResidualBlock(8, 16, stride=2).eval()
    assert isinstance(block.shortcut, nn.Sequential)
    assert block(torch.randn(1, 8, 10, 10)).shape == (1, 16, 5, 5)
    assert isinstance(ResidualBlock(8, 8).shortcut, nn.Identity)


def test_normalization_matches_torchvision_normalize():
    x = _images(4)
    expected = tvf.normalize(x, mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD))
    torch.testing.assert_close(InputNormalization()(x), expected)
    # Constants of the code, not of the weights file: nothing to save or load.
    assert InputNormalization().state_dict() == {}


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        (np.zeros((2, 64, 64, 3), np.uint8), TypeError, "torch.Tensor"),
        (torch.zeros(2, 3, 64, 64, dtype=torch.uint8), TypeError, "float images"),
        (torch.zeros(2, 64, 64, 3), ValueError, r"\(N, 3, H, W\)"),
        (torch.zeros(3, 64, 64), ValueError, r"\(N, 3, H, W\)"),
        (torch.full((2, 3, 64, 64), 255.0), ValueError, "Divide 0-255"),
    ],
)
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_wrong_inputs_get_a_clear_error(architecture, bad, error, match):
    with pytest.raises(error, match=match):
        architecture()(bad)


def _torch_attention(ours: MultiHeadSelfAttention, dim: int, heads: int):
    reference = nn.MultiheadAttention(dim, heads, batch_first=True)
    with torch.no_grad():
        reference.in_proj_weight.copy_(
            torch.cat([ours.query.weight, ours.key.weight, ours.value.weight])
        )
        reference.in_proj_bias.copy_(torch.cat([ours.query.bias, ours.key.bias, ours.value.bias]))
        reference.out_proj.weight.copy_(ours.out.weight)
        reference.out_proj.bias.copy_(ours.out.bias)
    return reference


def test_attention_matches_torch_multihead_attention():
    torch.manual_seed(1)
    dim, heads = 32, 4
    ours = MultiHeadSelfAttention(dim, heads)
    ours.store_attention = True
    reference = _torch_attention(ours, dim, heads)
    x = torch.randn(3, 10, dim)
    expected, expected_weights = reference(x, x, x, average_attn_weights=False)
    torch.testing.assert_close(ours(x), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.attention, expected_weights, atol=1e-6, rtol=1e-5)


def test_attention_rejects_dims_that_heads_do_not_divide():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadSelfAttention(30, 4)


def test_transformer_block_is_pre_norm_with_residuals():
    # Zero output projections: both residual branches add nothing, so the block is the identity.
    block = TransformerBlock(16, 2, 32)
    for layer in (block.attn.out, block.mlp.fc2):
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)
    x = torch.randn(2, 5, 16)
    torch.testing.assert_close(block(x), x)
    names = [name for name, _ in block.named_children()]
    assert names.index("norm1") < names.index("attn") < names.index("norm2") < names.index("mlp")


def test_vit_tokens_blocks_and_attention_maps():
    torch.manual_seed(0)
    model = CourseViT()
    assert len(model.blocks) >= 6
    x = _images(3)
    shapes = _output_shapes(model, x, ["patch_embed", "blocks.0", "blocks.5"])
    assert shapes["patch_embed"] == (3, 64, 96)
    assert shapes["blocks.0"] == shapes["blocks.5"] == (3, 65, 96)

    model.train()
    maps = model.attention_maps(x)
    assert model.training  # mode restored
    assert len(maps) == len(model.blocks)
    for attention in maps:
        assert attention.shape == (3, 4, 65, 65)
        assert (attention >= 0).all()
        torch.testing.assert_close(attention.sum(-1), torch.ones(3, 4, 65))
    # attention_maps leaves nothing stored behind; store_attention keeps maps of a forward pass.
    assert all(block.attn.attention is None for block in model.blocks)
    model.eval()
    model.store_attention = True
    with torch.no_grad():
        model(x[:1])
    torch.testing.assert_close(model.blocks[2].attn.attention, model.attention_maps(x[:1])[2])
    model.store_attention = False
    assert model.blocks[2].attn.attention is None


@pytest.mark.parametrize("embedding", ["linear", "conv"])
def test_vit_patch_tokens_follow_the_documented_positions(embedding):
    # One bright patch changes its own token most (the linear embedding: only its own token).
    torch.manual_seed(0)
    model = CourseViT(patch_embedding=embedding).eval()
    positions = model.patch_positions()
    assert positions.shape == (64, 2)
    torch.testing.assert_close(positions[0], torch.tensor([4.0, 4.0]))
    torch.testing.assert_close(positions[9], torch.tensor([12.0, 12.0]))  # row 1, column 1
    image = torch.full((1, 3, 64, 64), 0.5)
    bright = image.clone()
    bright[..., 40:48, 16:24] = 1.0  # patch row 5, column 2
    with torch.no_grad():
        change = (model.patch_embed(bright) - model.patch_embed(image)).norm(dim=-1)[0]
    assert int(change.argmax()) == 5 * 8 + 2
    torch.testing.assert_close(positions[5 * 8 + 2], torch.tensor([44.0, 20.0]))
    if embedding == "linear":
        assert torch.nonzero(change > 0).flatten().tolist() == [5 * 8 + 2]


def test_vit_rejects_images_of_another_size():
    with pytest.raises(ValueError, match="64 x 64 px"):
        CourseViT()(torch.rand(1, 3, 48, 48))
    with pytest.raises(ValueError, match="multiple of patch_size"):
        CourseViT(image_size=60)
    with pytest.raises(ValueError, match="power-of-2"):
        CourseViT(image_size=60, patch_size=6)
    with pytest.raises(ValueError, match="'conv' or 'linear'"):
        CourseViT(patch_embedding="hybrid")


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_gradients_reach_the_first_layer(architecture):
    torch.manual_seed(0)
    model = architecture()
    loss = nn.functional.cross_entropy(model(_images(4)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    first = next(p for p in model.parameters() if p.ndim == 4)
    assert first.grad is not None and first.grad.abs().sum() > 0
