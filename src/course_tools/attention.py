"""How far a Vision Transformer's attention reaches: mean attention distance per head.

A ViT cuts the image into a ``grid_size x grid_size`` grid of ``patch_size``-pixel patches; each
patch becomes a token, and a CLS token (no position) is prepended. In every block and head,
row ``i`` of the attention matrix :math:`A` (after the softmax) says how much token ``i`` reads
from every token. The *mean attention distance* of a head (Dosovitskiy et al. 2021, Fig. 7 and
appendix D.7; Raghu et al. 2021) is the attention-weighted distance between a query patch and
the patches it attends to, averaged over query patches and images:

.. math::

    d = \\frac{1}{N P} \\sum_{n=1}^{N} \\sum_{i=1}^{P} \\sum_{j=1}^{P}
        A^{(n)}_{ij}\\, \\lVert p_i - p_j \\rVert ,

where :math:`P` = ``grid_size ** 2`` patches, :math:`p_i` is the centre of patch ``i`` in
pixels (so :math:`\\lVert p_i - p_j \\rVert` is the distance on the patch grid times
``patch_size``), and the CLS token is left out both as a query and as a key. It is the
transformer's analogue of a receptive field size: a head that attends only to its own patch
has :math:`d = 0`; a head that attends uniformly to every patch has
:func:`uniform_attention_distance`.

CLS column and renormalisation
------------------------------
Dropping the CLS column leaves rows that sum to :math:`1 - A_{i,\\text{CLS}}`. By default they
are used as they are (``renormalize=False``): attention to CLS counts as distance 0. This follows
the authors' description of the measure (``google-research/vision_transformer`` issue 162: a
weighted average of query-key distances, the weights being the attention weights) and the widely
used re-implementation in ``sayakpaul/probing-vits``, which drops the CLS row and column without
renormalising. With ``renormalize=True`` every row is divided by its sum over patches first,
giving the distance conditional on attending to a patch: each query's distance is divided by
:math:`1 - A_{i,\\text{CLS}}`, so the two differ little when patches pay CLS little attention
(:func:`prefix_attention`; :func:`attention_distances` reports both distances and the
CLS share).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from course_tools.gradients import _as_image_batch

__all__ = [
    "attention_distances",
    "attention_maps",
    "mean_attention_distance",
    "patch_centres",
    "prefix_attention",
    "patch_distances",
    "uniform_attention_distance",
]


def _check_grid(grid_size: object, patch_size: object) -> tuple[int, float]:
    if isinstance(grid_size, bool) or not isinstance(grid_size, int | np.integer) or grid_size < 1:
        raise ValueError(f"grid_size must be a positive integer, got {grid_size!r}.")
    if isinstance(patch_size, bool) or not isinstance(patch_size, int | float | np.number):
        raise TypeError(f"patch_size must be a number of pixels, got {patch_size!r}.")
    if not patch_size > 0:
        raise ValueError(f"patch_size must be positive (pixels per patch), got {patch_size!r}.")
    return int(grid_size), float(patch_size)


def patch_centres(grid_size: int, patch_size: float) -> np.ndarray:
    """Pixel coordinates of the patch centres, patches numbered row by row.

    Parameters
    ----------
    grid_size : int
        Patches per side.
    patch_size : float
        Patch side length in pixels.

    Returns
    -------
    ndarray, shape (grid_size ** 2, 2)
        (row, column) of the centre of patch ``t``: ``((t // grid_size + 0.5) * patch_size,
        (t % grid_size + 0.5) * patch_size)``.
    """
    grid_size, patch_size = _check_grid(grid_size, patch_size)
    index = np.arange(grid_size**2)
    return np.stack([index // grid_size, index % grid_size], axis=1) * patch_size + patch_size / 2


def patch_distances(grid_size: int, patch_size: float) -> np.ndarray:
    """Euclidean distance in pixels between every pair of patch centres.

    Returns
    -------
    ndarray, shape (grid_size ** 2, grid_size ** 2)
        Symmetric, zero on the diagonal.
    """
    centres = patch_centres(grid_size, patch_size)
    return np.sqrt(((centres[:, None, :] - centres[None, :, :]) ** 2).sum(-1))


def uniform_attention_distance(grid_size: int, patch_size: float) -> float:
    """Mean attention distance of a head that attends equally to every patch (pixels).

    The reference for "global" attention: the mean distance between two patches drawn
    independently and uniformly from the grid (a patch with itself included).
    """
    return float(patch_distances(grid_size, patch_size).mean())


def _as_attention(attention: object) -> np.ndarray:
    if isinstance(attention, torch.Tensor):
        attention = attention.detach().cpu().numpy()
    if isinstance(attention, list | tuple):
        raise TypeError(
            "attention must be one array (n_images, n_heads, n_tokens, n_tokens) for one block; "
            "for a list of blocks (CourseViT.attention_maps) call the function once per block."
        )
    attention = np.asarray(attention)
    if attention.dtype.kind not in "fiu":
        raise TypeError(f"attention must be numeric, got dtype {attention.dtype}.")
    if attention.ndim != 4 or attention.shape[-1] != attention.shape[-2] or not attention.size:
        raise ValueError(
            "attention must have shape (n_images, n_heads, n_tokens, n_tokens), got "
            f"{attention.shape}. Add a leading axis for a single image: attention[None]."
        )
    attention = attention.astype(np.float64, copy=False)
    if not np.all(np.isfinite(attention)) or np.any(attention < 0):
        raise ValueError("attention weights must be finite and non-negative (softmax outputs).")
    row_sums = attention.sum(-1)
    if not np.allclose(row_sums, 1.0, atol=1e-3):
        raise ValueError(
            "every attention row must sum to 1 over all tokens (CLS included): pass the "
            "attention probabilities after the softmax, not the scores, and do not drop the "
            f"CLS token yourself (row sums range {row_sums.min():.3g} .. {row_sums.max():.3g})."
        )
    return attention


def mean_attention_distance(
    attention: np.ndarray | torch.Tensor,
    patch_size: float,
    *,
    n_prefix_tokens: int = 1,
    renormalize: bool = False,
    per_image: bool = False,
) -> np.ndarray:
    """Mean attention distance of every head of one block, in pixels.

    Parameters
    ----------
    attention : array_like, shape (n_images, n_heads, n_tokens, n_tokens)
        Attention probabilities of one block: rows sum to 1 over all tokens. The first
        ``n_prefix_tokens`` tokens (the CLS token) have no position; the remaining
        ``n_tokens - n_prefix_tokens`` must form a square grid, numbered row by row.
    patch_size : float
        Patch side length in pixels.
    n_prefix_tokens : int, default=1
        Tokens without a position at the start of the sequence (1 for a CLS token, 0 for none).
    renormalize : bool, default=False
        Divide each query's attention over patches by its sum (see the module docstring).
    per_image : bool, default=False
        Return one value per image instead of the mean over images.

    Returns
    -------
    ndarray, shape (n_heads,) or (n_images, n_heads)
        :math:`d` of the module docstring for each head.

    Examples
    --------
    >>> import numpy as np
    >>> attention = np.zeros((1, 1, 5, 5))          # CLS + a 2 x 2 grid of 8-px patches
    >>> attention[0, 0, :, 0] = 0.5                  # every token: half on CLS ...
    >>> attention[0, 0, 1:, 1:] += 0.5 * np.eye(4)[::-1]   # ... half on the opposite patch
    >>> attention[0, 0, 0, 1:] = 0.125
    >>> mean_attention_distance(attention, patch_size=8).round(3)
    array([5.657])
    """
    attention = _as_attention(attention)
    n_prefix_tokens = _check_prefix(attention, n_prefix_tokens)
    distances = patch_distances(math.isqrt(attention.shape[-1] - n_prefix_tokens), patch_size)
    patches = attention[:, :, n_prefix_tokens:, n_prefix_tokens:]
    if renormalize:
        mass = patches.sum(-1, keepdims=True)
        patches = np.divide(patches, mass, out=np.zeros_like(patches), where=mass > 0)
    per_query = (patches * distances).sum(-1)  # (n_images, n_heads, n_patches)
    per_head = per_query.mean(-1)
    return per_head if per_image else per_head.mean(0)


def prefix_attention(
    attention: np.ndarray | torch.Tensor,
    *,
    n_prefix_tokens: int = 1,
    per_image: bool = False,
) -> np.ndarray:
    """Share of each head's attention that the patches pay to the CLS (prefix) tokens.

    For query patch :math:`i` (a token with a position) the share is
    :math:`c_i = \\sum_{k < K} A_{ik}`, the attention on the ``K = n_prefix_tokens`` tokens
    without a position; this function returns its mean over query patches (and images):

    .. math::

        c = \\frac{1}{N P} \\sum_{n=1}^{N} \\sum_{i=1}^{P} \\sum_{k=1}^{K} A^{(n)}_{ik} .

    It is what separates the two readings of the mean attention distance: with
    ``renormalize=False`` attention to CLS counts as distance 0, so a head with share ``c``
    that spreads the rest uniformly over the patches sits at ``(1 - c)`` times
    :func:`uniform_attention_distance`, below the "uniform" line, without attending locally.

    Parameters
    ----------
    attention : array_like, shape (n_images, n_heads, n_tokens, n_tokens)
        Attention probabilities of one block (rows sum to 1 over all tokens), prefix tokens
        first, as for :func:`mean_attention_distance`.
    n_prefix_tokens : int, default=1
        Tokens without a position at the start of the sequence (1 for one CLS token).
    per_image : bool, default=False
        Return one value per image instead of the mean over images.

    Returns
    -------
    ndarray, shape (n_heads,) or (n_images, n_heads)
        The share in [0, 1]; 0 when ``n_prefix_tokens`` is 0.

    Examples
    --------
    >>> import numpy as np
    >>> attention = np.full((1, 2, 5, 5), 0.2)      # CLS + 2 x 2 patches, uniform attention
    >>> prefix_attention(attention)                  # every patch pays 1/5 to CLS
    array([0.2, 0.2])
    """
    attention = _as_attention(attention)
    n_prefix = _check_prefix(attention, n_prefix_tokens)
    share = attention[:, :, n_prefix:, :n_prefix].sum(-1).mean(-1)  # (n_images, n_heads)
    return share if per_image else share.mean(0)


def _check_prefix(attention: np.ndarray, n_prefix_tokens: object) -> int:
    if isinstance(n_prefix_tokens, bool) or not isinstance(n_prefix_tokens, int | np.integer):
        raise TypeError(f"n_prefix_tokens must be an integer, got {n_prefix_tokens!r}.")
    n_patches = attention.shape[-1] - int(n_prefix_tokens)
    grid_size = math.isqrt(max(n_patches, 0))
    if n_prefix_tokens < 0 or n_patches < 1 or grid_size**2 != n_patches:
        raise ValueError(
            f"{attention.shape[-1]} tokens minus {n_prefix_tokens} prefix (CLS) tokens leaves "
            f"{n_patches} patches, which is not a square grid. Check n_prefix_tokens."
        )
    return int(n_prefix_tokens)


def _check_vit(model: object) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    has_maps = callable(getattr(model, "attention_maps", None))
    has_mha = any(isinstance(m, nn.MultiheadAttention) for m in model.modules())
    if not (has_maps or has_mha) or not hasattr(model, "patch_size"):
        raise TypeError(
            f"{type(model).__name__} does not expose its attention: this needs a Vision "
            "Transformer with a patch_size attribute and either an attention_maps(images) method "
            "(load_model('course_vit')) or nn.MultiheadAttention layers (torchvision's ViTs, "
            "load_model('vit_b_16')). For other models compute the attention probabilities "
            "yourself and call mean_attention_distance."
        )


def _force_weights(module, args, kwargs):
    kwargs = dict(kwargs)
    kwargs["need_weights"] = True
    kwargs["average_attn_weights"] = False
    return args, kwargs


@torch.no_grad()
def attention_maps(model: nn.Module, images: torch.Tensor | np.ndarray) -> list[torch.Tensor]:
    """Attention probabilities of every attention layer of a Vision Transformer, in eval mode.

    Parameters
    ----------
    model : torch.nn.Module
        :class:`course_tools.models.zoo.CourseViT` (its own ``attention_maps`` is used) or a
        network whose attention layers are :class:`torch.nn.MultiheadAttention` with
        ``batch_first=True``, such as torchvision's ``VisionTransformer``
        (``load_model("vit_b_16")``): their forward calls are made to return the per-head
        weights (``need_weights=True, average_attn_weights=False``) and recorded by hooks.
    images : torch.Tensor (N, 3, H, W) float in [0, 1], or ndarray uint8 (N, H, W, 3)

    Returns
    -------
    list of torch.Tensor, one per attention layer in forward order
        Each of shape (N, heads, tokens, tokens); rows sum to 1; token 0 is the CLS token.
        The model's training mode is restored afterwards.
    """
    _check_vit(model)
    images = _as_image_batch(images)
    if callable(getattr(model, "attention_maps", None)):
        return [block.detach().float() for block in model.attention_maps(images)]
    recorded: list[torch.Tensor] = []
    handles = []
    for module in model.modules():
        if isinstance(module, nn.MultiheadAttention):
            if not module.batch_first:
                raise ValueError(
                    "attention_maps reads nn.MultiheadAttention layers with batch_first=True "
                    "(as in torchvision's ViTs) only."
                )
            handles.append(module.register_forward_pre_hook(_force_weights, with_kwargs=True))
            handles.append(
                module.register_forward_hook(lambda _m, _i, out: recorded.append(out[1].float()))
            )
    was_training = model.training
    model.eval()
    try:
        model(images)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return recorded


def attention_distances(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    *,
    batch_size: int = 32,
    renormalize: bool = False,
    progress: bool = False,
) -> pd.DataFrame:
    """Mean attention distance of every head of every block of a ViT, over ``images``.

    Parameters
    ----------
    model : torch.nn.Module
        A Vision Transformer with one CLS token that :func:`attention_maps` can read:
        ``load_model("course_vit")`` or torchvision's (``load_model("vit_b_16")``). Distances
        are in pixels of the image the network sees (torchvision's ViTs see 224 px images:
        ``load_model`` resizes them).
    images : torch.Tensor (N, 3, H, W) float in [0, 1], or ndarray uint8 (N, H, W, 3)
    batch_size : int, default=32
    renormalize : bool, default=False
        See :func:`mean_attention_distance`.
    progress : bool, default=False
        Show a progress bar over batches.

    Returns
    -------
    pandas.DataFrame
        One row per (block, head) with columns ``block``, ``head``, ``distance`` (pixels,
        mean over images and query patches, CLS as ``renormalize`` says), ``distance_sd``
        (standard deviation over images), ``distance_over_patches`` (the same with every row
        renormalised over the patches, to compare with :func:`uniform_attention_distance`) and
        ``cls_attention`` (mean attention a patch pays to the CLS token,
        :func:`prefix_attention`).
    """
    _check_vit(model)
    images = _as_image_batch(images)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    per_image, over_patches, cls = [], [], []
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc="attention", disable=not progress, leave=False):
        maps = attention_maps(model, images[start : start + batch_size])
        maps = [_as_attention(block) for block in maps]
        per_image.append(
            [
                mean_attention_distance(
                    block, model.patch_size, renormalize=renormalize, per_image=True
                )
                for block in maps
            ]
        )
        over_patches.append(
            [
                mean_attention_distance(block, model.patch_size, renormalize=True, per_image=True)
                for block in maps
            ]
        )
        cls.append([prefix_attention(block, per_image=True) for block in maps])

    def stack(batches):  # [batch][block] arrays (n, heads) -> (n_images, n_blocks, n_heads)
        return np.concatenate([np.stack(batch, axis=1) for batch in batches], axis=0)

    distances = stack(per_image)
    n_blocks, n_heads = distances.shape[1:]
    blocks, heads = np.meshgrid(np.arange(n_blocks), np.arange(n_heads), indexing="ij")
    return pd.DataFrame(
        {
            "block": blocks.ravel(),
            "head": heads.ravel(),
            "distance": distances.mean(0).ravel(),
            "distance_sd": distances.std(0, ddof=1).ravel() if len(images) > 1 else np.nan,
            "distance_over_patches": stack(over_patches).mean(0).ravel(),
            "cls_attention": stack(cls).mean(0).ravel(),
        }
    )
