"""Mean attention distance against brute-force loops, closed forms and the shipped ViT."""

import math

import numpy as np
import pytest
import torch
import torchvision
from scipy.spatial.distance import cdist

from course_tools.attention import (
    attention_distances,
    attention_maps,
    mean_attention_distance,
    patch_centres,
    patch_distances,
    prefix_attention,
    uniform_attention_distance,
)
from course_tools.models.registry import load_model
from course_tools.models.zoo import CourseViT


def random_attention(rng, n_images, n_heads, grid_size, n_prefix=1, concentration=0.3):
    """Attention rows drawn from a Dirichlet distribution: non-negative, each summing to 1."""
    n_tokens = grid_size**2 + n_prefix
    alpha = np.full(n_tokens, concentration)
    return rng.dirichlet(alpha, size=(n_images, n_heads, n_tokens))


def brute_force_distance(attention, patch_size, n_prefix=1, renormalize=False):
    """The definition, one query patch and one key patch at a time."""
    n_images, n_heads, n_tokens, _ = attention.shape
    grid = math.isqrt(n_tokens - n_prefix)
    result = np.zeros((n_images, n_heads))
    for n in range(n_images):
        for h in range(n_heads):
            total = 0.0
            for i in range(grid * grid):
                row = attention[n, h, n_prefix + i, n_prefix:]
                if renormalize:
                    row = row / row.sum()
                ri, ci = divmod(i, grid)
                for j in range(grid * grid):
                    rj, cj = divmod(j, grid)
                    total += row[j] * patch_size * math.hypot(ri - rj, ci - cj)
            result[n, h] = total / grid**2
    return result


@pytest.mark.parametrize("grid_size, patch_size, n_prefix", [(2, 8, 1), (4, 16, 1), (3, 5.5, 0)])
@pytest.mark.parametrize("renormalize", [False, True])
def test_matches_brute_force_loop(grid_size, patch_size, n_prefix, renormalize):
    rng = np.random.default_rng(grid_size * 10 + n_prefix)
    attention = random_attention(rng, 3, 2, grid_size, n_prefix)
    expected = brute_force_distance(attention, patch_size, n_prefix, renormalize)
    per_image = mean_attention_distance(
        attention,
        patch_size,
        n_prefix_tokens=n_prefix,
        renormalize=renormalize,
        per_image=True,
    )
    np.testing.assert_allclose(per_image, expected, rtol=1e-12)
    np.testing.assert_allclose(
        mean_attention_distance(
            attention, patch_size, n_prefix_tokens=n_prefix, renormalize=renormalize
        ),
        expected.mean(0),
        rtol=1e-12,
    )


def test_hand_computed_example():
    # CLS + a 2 x 2 grid of 8-px patches; each patch puts half its attention on CLS and half on
    # the diagonally opposite patch, 8 * sqrt(2) px away: d = 0.5 * 8 * sqrt(2).
    attention = np.zeros((1, 1, 5, 5))
    attention[0, 0, :, 0] = 0.5
    attention[0, 0, 1:, 1:] += 0.5 * np.eye(4)[::-1]
    attention[0, 0, 0, 1:] = 0.125
    np.testing.assert_allclose(mean_attention_distance(attention, 8), [4 * math.sqrt(2)])
    # Renormalised, the CLS half is dropped and the full distance remains.
    np.testing.assert_allclose(
        mean_attention_distance(attention, 8, renormalize=True), [8 * math.sqrt(2)]
    )


def test_closed_forms_for_simple_heads():
    grid, size, n = 4, 8, 16
    # A head that attends only to its own patch: distance 0.
    own = np.zeros((1, 1, n + 1, n + 1))
    own[0, 0, 0, 0] = 1
    own[0, 0, 1:, 1:] = np.eye(n)
    assert mean_attention_distance(own, size) == pytest.approx([0.0])
    # Every patch attends to its horizontal neighbour (left one in the last column): 1 patch.
    neighbour = np.zeros((1, 1, n + 1, n + 1))
    neighbour[0, 0, 0, 0] = 1
    for i in range(n):
        r, c = divmod(i, grid)
        neighbour[0, 0, 1 + i, 1 + r * grid + (c + 1 if c < grid - 1 else c - 1)] = 1
    assert mean_attention_distance(neighbour, size) == pytest.approx([size])
    # Uniform attention over all 17 tokens: 16/17 of the mean pairwise patch distance;
    # renormalised, exactly the mean pairwise distance.
    uniform = np.full((2, 3, n + 1, n + 1), 1 / (n + 1))
    mean_pairwise = cdist(patch_centres(grid, size), patch_centres(grid, size)).mean()
    np.testing.assert_allclose(mean_attention_distance(uniform, size), n / (n + 1) * mean_pairwise)
    np.testing.assert_allclose(
        mean_attention_distance(uniform, size, renormalize=True), np.full(3, mean_pairwise)
    )
    assert uniform_attention_distance(grid, size) == pytest.approx(mean_pairwise)


def test_prefix_attention_and_the_two_distances_against_a_hand_computed_head():
    # CLS + a 3 x 3 grid of 10-px patches. Every patch query pays c = 0.4 to CLS and spreads
    # 1 - c uniformly over the 9 patches; CLS itself attends uniformly (it is never a query).
    grid, size, c = 3, 10.0, 0.4
    attention = np.zeros((2, 1, 10, 10))
    attention[:, :, 0, :] = 0.1
    attention[:, :, 1:, 0] = c
    attention[:, :, 1:, 1:] = (1 - c) / 9
    np.testing.assert_allclose(prefix_attention(attention), [c])
    np.testing.assert_allclose(prefix_attention(attention, per_image=True), [[c], [c]])
    # Mean distance between two patch centres of a 3 x 3 grid, by hand: over the 81 ordered
    # pairs, 9 at 0, 24 at 1, 16 at sqrt 2, 12 at 2, 16 at sqrt 5 and 4 at sqrt 8 (grid units).
    mean_pairwise = size * (24 + 16 * math.sqrt(2) + 12 * 2 + 16 * math.sqrt(5) + 4 * math.sqrt(8))
    mean_pairwise /= 81
    assert uniform_attention_distance(grid, size) == pytest.approx(mean_pairwise, rel=1e-12)
    # CLS counted as distance 0: the head sits at (1 - c) of the uniform line, not local at all.
    np.testing.assert_allclose(mean_attention_distance(attention, size), [(1 - c) * mean_pairwise])
    # Renormalised over the patches: exactly the uniform line.
    np.testing.assert_allclose(
        mean_attention_distance(attention, size, renormalize=True), [mean_pairwise]
    )
    # No prefix token: no share.
    no_cls = np.full((1, 3, 9, 9), 1 / 9)
    np.testing.assert_allclose(prefix_attention(no_cls, n_prefix_tokens=0), np.zeros(3))
    with pytest.raises(ValueError, match="not a square grid"):
        prefix_attention(attention, n_prefix_tokens=2)
    with pytest.raises(TypeError, match="integer"):
        prefix_attention(attention, n_prefix_tokens=1.0)


def test_uniform_distance_of_a_2x2_grid():
    # Per row: distances 0, s, s, s * sqrt(2).
    assert uniform_attention_distance(2, 10) == pytest.approx((20 + 10 * math.sqrt(2)) / 4)


def test_patch_geometry_matches_the_vit_and_scipy():
    vit = CourseViT()
    np.testing.assert_allclose(patch_centres(8, 8), vit.patch_positions().numpy())
    centres = patch_centres(5, 3)
    np.testing.assert_allclose(patch_distances(5, 3), cdist(centres, centres))
    np.testing.assert_allclose(centres[7], [(7 // 5 + 0.5) * 3, (7 % 5 + 0.5) * 3])


def test_torch_input_and_distance_scales_with_patch_size():
    rng = np.random.default_rng(3)
    attention = random_attention(rng, 2, 4, 3)
    d8 = mean_attention_distance(torch.from_numpy(attention).float(), 8)
    d16 = mean_attention_distance(attention, 16)
    # float32 attention weights against float64 ones: sums of 16 products, ~1e-6 relative apart.
    np.testing.assert_allclose(2 * d8, d16, rtol=1e-5)


def test_attention_distances_of_the_course_vit_match_its_attention_maps():
    vit = load_model("course_vit", pretrained=False, seed=3)
    images = torch.rand(6, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    table = attention_distances(vit, images, batch_size=4)
    assert len(table) == 6 * 4
    assert table[["block", "head"]].drop_duplicates().shape[0] == 24
    maps = vit.attention_maps(images)
    for block in (0, 5):
        attention = maps[block].double().numpy()
        expected = brute_force_distance(attention[:, :2], 8).mean(0)
        got = table.query("block == @block and head < 2")["distance"].to_numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-5)
        cls = attention[:, :, 1:, 0].mean((0, 2))
        np.testing.assert_allclose(
            table.query("block == @block")["cls_attention"].to_numpy(), cls, rtol=1e-5
        )
        renormalised = brute_force_distance(attention[:, :2], 8, renormalize=True).mean(0)
        got = table.query("block == @block and head < 2")["distance_over_patches"].to_numpy()
        np.testing.assert_allclose(got, renormalised, rtol=1e-5)
    per_image = np.stack(
        [mean_attention_distance(maps[2], 8, per_image=True)[:, h] for h in range(4)], 1
    )
    np.testing.assert_allclose(
        table.query("block == 2")["distance_sd"], per_image.std(0, ddof=1), rtol=1e-5
    )
    # uint8 (N, H, W, 3) images give the same numbers as the float tensor they encode.
    as_uint8 = (images * 255).round().to(torch.uint8)
    table_uint8 = attention_distances(vit, as_uint8.permute(0, 2, 3, 1).numpy())
    table_float = attention_distances(vit, as_uint8.float() / 255)
    # Two float32 forward passes of inputs that may differ by an ulp: compare at float32's reach.
    np.testing.assert_allclose(table_uint8["distance"], table_float["distance"], rtol=1e-5)


def test_bad_inputs_get_clear_errors():
    good = np.full((1, 2, 5, 5), 0.2)
    with pytest.raises(ValueError, match="shape \\(n_images, n_heads"):
        mean_attention_distance(good[0], 8)
    with pytest.raises(ValueError, match="sum to 1"):
        mean_attention_distance(good * 2, 8)
    with pytest.raises(ValueError, match="sum to 1"):
        mean_attention_distance(good[..., 1:, 1:], 8)  # CLS already dropped
    with pytest.raises(ValueError, match="not a square grid"):
        mean_attention_distance(good, 8, n_prefix_tokens=0)
    with pytest.raises(ValueError, match="non-negative"):
        mean_attention_distance(np.where(np.eye(5) > 0, -0.2, 0.4)[None, None], 8)
    with pytest.raises(ValueError, match="positive"):
        mean_attention_distance(good, 0)
    with pytest.raises(TypeError, match="one array"):
        mean_attention_distance([good, good], 8)
    with pytest.raises(TypeError, match="attention_maps"):
        attention_distances(load_model("course_cnn", pretrained=False), torch.rand(2, 3, 64, 64))
    with pytest.raises(ValueError, match="grid_size"):
        patch_centres(0, 8)


def test_attention_maps_of_torchvision_vits_match_a_manual_computation():
    torch.manual_seed(0)
    vit = torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32
    )
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    maps = attention_maps(vit, images)
    assert vit.training, "the model's mode is restored"
    assert [tuple(m.shape) for m in maps] == [(3, 2, 17, 17)] * 2
    with torch.no_grad():
        vit.eval()
        tokens = vit._process_input(images)
        tokens = torch.cat([vit.class_token.expand(3, -1, -1), tokens], dim=1)
        tokens = tokens + vit.encoder.pos_embedding
        layer = vit.encoder.layers[0]
        z = layer.ln_1(tokens)
        attention = layer.self_attention
        q, k, _ = torch.nn.functional.linear(
            z, attention.in_proj_weight, attention.in_proj_bias
        ).chunk(3, -1)
        q = q.view(3, 17, 2, 8).transpose(1, 2)
        k = k.view(3, 17, 2, 8).transpose(1, 2)
        manual = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(8), dim=-1)
    torch.testing.assert_close(maps[0], manual, rtol=1e-5, atol=1e-6)
    table = attention_distances(vit, images)
    np.testing.assert_allclose(
        table.query("block == 0")["distance"],
        brute_force_distance(manual.double().numpy(), 8).mean(0),
        rtol=1e-5,
    )


def test_attention_maps_of_the_course_vit_are_its_own():
    vit = load_model("course_vit", pretrained=False, seed=0)
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    for ours, its in zip(attention_maps(vit, images), vit.attention_maps(images), strict=True):
        torch.testing.assert_close(ours, its)


def test_sequence_first_attention_layers_are_refused():
    class SequenceFirst(torch.nn.Module):
        patch_size = 8

        def __init__(self):
            super().__init__()
            self.attention = torch.nn.MultiheadAttention(4, 1)

        def forward(self, x):
            tokens = x.flatten(2).permute(2, 0, 1)[..., :4]
            return self.attention(tokens, tokens, tokens)[0]

    with pytest.raises(ValueError, match="batch_first=True"):
        attention_maps(SequenceFirst(), torch.rand(1, 4, 2, 2))
