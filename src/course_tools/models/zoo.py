"""The task-trained networks that ship with course_tools: architectures only.

Four small networks, all trained on the 8-way categorisation of
:func:`course_tools.stimuli.object_scenes` (64 x 64 px) by ``scripts/train_shipped.py``:

=====================  ======================================================================
``CourseCNN``          AlexNet-like: six conv blocks (32-64-96-128-128-128 channels, batchnorm,
                       ReLU, three 2x2 max-pools) and two fully connected layers ``fc7``, ``fc8``.
``CourseResNet``       A small ResNet: a stem and three stages of two basic residual blocks
                       (32, 64, 128 channels), global average pooling and a linear readout.
``CourseViT``          A small Vision Transformer: 8 x 8 px patches (64 tokens, made by a small
                       convolutional stem) plus a CLS token, learned position embeddings, six
                       pre-norm transformer blocks whose attention is written out explicitly so
                       that the attention maps are real.
``SurrogateBrainCNN``  A wider eight-conv-layer CNN (another architecture, trained the same
                       way). It is the *surrogate brain* behind
                       :func:`course_tools.datasets.simulated_ventral` and is not one of the
                       networks students analyse.
=====================  ======================================================================

Every network takes float images ``(N, 3, H, W)`` with values in ``[0, 1]`` (64 x 64 px for
the trained weights) and standardises them itself: the first module, ``normalize``, subtracts the
ImageNet channel means ``(0.485, 0.456, 0.406)`` and divides by the ImageNet channel standard
deviations ``(0.229, 0.224, 0.225)`` -- the same normalisation torchvision's networks expect, so
one convention holds for every model of the course. Module names are chosen to read well in
:func:`course_tools.activations.list_layers`: ``conv1`` ... ``conv6``, ``fc7``, ``fc8``;
``layer1.0`` ... ``layer3.1``; ``blocks.0`` ... ``blocks.5``.

Load trained weights with :func:`course_tools.models.load_model`; the classes here build
untrained networks.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ConvBlock",
    "ConvPatchEmbedding",
    "CourseCNN",
    "CourseResNet",
    "CourseViT",
    "InputNormalization",
    "MultiHeadSelfAttention",
    "PatchEmbedding",
    "ResidualBlock",
    "SurrogateBrainCNN",
    "TransformerBlock",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class InputNormalization(nn.Module):
    """Check that the input is a batch of [0, 1] RGB images and standardise each channel.

    ``out[:, c] = (x[:, c] - mean[c]) / std[c]`` with fixed (not learned, not saved) ImageNet
    statistics.

    Parameters
    ----------
    mean, std : tuple of 3 floats
        Per-channel mean and standard deviation.
    """

    def __init__(
        self,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
    ):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardise ``x`` of shape (N, 3, H, W) with values in [0, 1]."""
        check_image_batch(x)
        return (x - self.mean) / self.std


def check_image_batch(x) -> None:
    """Raise a clear error unless ``x`` is a float tensor (N, 3, H, W) with values in [0, 1].

    Parameters
    ----------
    x : object
        What was passed to a network.

    Raises
    ------
    TypeError
        ``x`` is not a floating-point torch tensor.
    ValueError
        Wrong number of dimensions or channels, or values far outside [0, 1].
    """
    how = (
        "Convert uint8 images of shape (N, H, W, 3) with "
        "torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255."
    )
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"the network expects a torch.Tensor, got {type(x).__name__}. {how}")
    if not x.is_floating_point():
        raise TypeError(f"the network expects float images in [0, 1], got dtype {x.dtype}. {how}")
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(
            f"the network expects images of shape (N, 3, H, W), got {tuple(x.shape)}. {how}"
        )
    if x.numel() and (float(x.detach().amax()) > 1.5 or float(x.detach().amin()) < -0.5):
        raise ValueError(
            "the network expects pixel values in [0, 1] (it normalises them itself), got values "
            f"in [{float(x.detach().amin()):.3g}, {float(x.detach().amax()):.3g}]. Divide 0-255 "
            "images by 255 and do not normalise them beforehand."
        )


# --------------------------------------------------------------------------------------------
# CNNs
# --------------------------------------------------------------------------------------------
class ConvBlock(nn.Sequential):
    """Convolution -> batchnorm -> ReLU (-> 2x2 max-pool).

    Children are named ``conv``, ``bn``, ``relu`` (and ``pool``), so a block's sub-steps read
    ``conv3.bn`` and so on; the block's own output is the rectified (and pooled) map.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int, default=3
        Odd size; padding ``kernel_size // 2`` keeps the size at stride 1.
    stride : int, default=1
        Convolution stride (2 halves height and width).
    pool : bool, default=False
        Append a 2x2 max-pool that halves height and width.
    padding : int, optional
        Zero padding; by default ``kernel_size // 2``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        pool: bool = False,
        padding: int | None = None,
    ):
        padding = kernel_size // 2 if padding is None else padding
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        layers: dict[str, nn.Module] = {
            "conv": conv,
            "bn": nn.BatchNorm2d(out_channels),
            "relu": nn.ReLU(),
        }
        if pool:
            layers["pool"] = nn.MaxPool2d(2)
        super().__init__(OrderedDict(layers))


def _conv_stack(module: nn.Module, channels, pooled) -> int:
    """Add ``conv1``, ``conv2``, ... to ``module``; conv1 is 5x5 with stride 2, the rest 3x3."""
    in_channels = 3
    for index, (out_channels, pool) in enumerate(zip(channels, pooled, strict=True)):
        first = index == 0
        block = ConvBlock(in_channels, out_channels, 5 if first else 3, 2 if first else 1, pool)
        module.add_module(f"conv{index + 1}", block)
        in_channels = out_channels
    return in_channels


class CourseCNN(nn.Module):
    """AlexNet-like CNN with six conv layers and two fully connected layers.

    ================  ========================================  =========================
    layer             operation                                 output (64 px input)
    ================  ========================================  =========================
    ``normalize``     ImageNet channel standardisation           (N, 3, 64, 64)
    ``conv1``         5x5 conv 32 stride 2, BN, ReLU, max-pool   (N, 32, 16, 16)
    ``conv2``         3x3 conv 64, BN, ReLU                      (N, 64, 16, 16)
    ``conv3``         3x3 conv 96, BN, ReLU, max-pool            (N, 96, 8, 8)
    ``conv4``         3x3 conv 128, BN, ReLU                     (N, 128, 8, 8)
    ``conv5``         3x3 conv 128, BN, ReLU                     (N, 128, 8, 8)
    ``conv6``         3x3 conv 128, BN, ReLU, max-pool           (N, 128, 4, 4)
    ``avgpool``       average-pool to 2 x 2 (flattened after)     (N, 128, 2, 2)
    ``fc7``           linear 256 (``fc7.linear``), ReLU          (N, 256)
    ``fc8``           linear to class logits                     (N, n_classes)
    ================  ========================================  =========================

    Like AlexNet (stride-4 conv1, then a pool) the first block downsamples by 4, which keeps
    the network fast enough to train on two CPU cores.

    Parameters
    ----------
    n_classes : int, default=8
        Number of output categories.
    """

    channels = (32, 64, 96, 128, 128, 128)
    pooled = (True, False, True, False, False, True)
    image_size = 64  # size of the training images (any size >= 32 px runs)

    def __init__(self, n_classes: int = 8):
        super().__init__()
        self.normalize = InputNormalization()
        width = _conv_stack(self, self.channels, self.pooled)
        self.avgpool = nn.AdaptiveAvgPool2d(2)
        self.fc7 = nn.Sequential(
            OrderedDict(linear=nn.Linear(4 * width, 256), relu=nn.ReLU()),
        )
        self.fc8 = nn.Linear(256, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (N, n_classes) for images (N, 3, H, W) in [0, 1]."""
        x = self.normalize(x)
        for index in range(len(self.channels)):
            x = getattr(self, f"conv{index + 1}")(x)
        return self.fc8(self.fc7(torch.flatten(self.avgpool(x), 1)))


class SurrogateBrainCNN(nn.Module):
    """The surrogate brain: a wider CNN with eight conv layers (a different network from those
    students analyse), used to simulate V4 and IT responses in
    :func:`course_tools.datasets.simulated_ventral`.

    ================  ========================================  =========================
    layer             operation                                 output (64 px input)
    ================  ========================================  =========================
    ``normalize``     ImageNet channel standardisation           (N, 3, 64, 64)
    ``conv1``         5x5 conv 48 stride 2, BN, ReLU, max-pool   (N, 48, 16, 16)
    ``conv2``         3x3 conv 64, BN, ReLU                      (N, 64, 16, 16)
    ``conv3``         3x3 conv 96, BN, ReLU, max-pool            (N, 96, 8, 8)
    ``conv4``         3x3 conv 128, BN, ReLU                     (N, 128, 8, 8)
    ``conv5``         3x3 conv 160, BN, ReLU                     (N, 160, 8, 8)
    ``conv6``         3x3 conv 192, BN, ReLU, max-pool           (N, 192, 4, 4)
    ``conv7``         3x3 conv 256, BN, ReLU                     (N, 256, 4, 4)
    ``conv8``         3x3 conv 256, BN, ReLU                     (N, 256, 4, 4)
    ``avgpool``       global average pool (flattened after)       (N, 256, 1, 1)
    ``fc``            linear to class logits                     (N, n_classes)
    ================  ========================================  =========================

    Parameters
    ----------
    n_classes : int, default=8
    """

    channels = (48, 64, 96, 128, 160, 192, 256, 256)
    pooled = (True, False, True, False, False, True, False, False)
    image_size = 64  # size of the training images (any size >= 32 px runs)

    def __init__(self, n_classes: int = 8):
        super().__init__()
        self.normalize = InputNormalization()
        width = _conv_stack(self, self.channels, self.pooled)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (N, n_classes) for images (N, 3, H, W) in [0, 1]."""
        x = self.normalize(x)
        for index in range(len(self.channels)):
            x = getattr(self, f"conv{index + 1}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


class ResidualBlock(nn.Module):
    """Basic residual block: ``relu2(bn2(conv2(relu1(bn1(conv1(x))))) + shortcut(x))``.

    Each ReLU is its own module (``relu1``, ``relu2``) so that a hook on a name sees exactly one
    tensor. ``shortcut`` is the identity, or a strided 1x1 conv with batchnorm when the block
    changes the resolution or the number of channels.

    Parameters
    ----------
    in_channels, out_channels : int
    stride : int
        1 keeps the resolution, 2 halves it (in ``conv1`` and in the shortcut).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = nn.Identity()
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) -> (N, out_channels, H / stride, W / stride)."""
        residual = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(residual + self.shortcut(x))


class CourseResNet(nn.Module):
    """Small ResNet: a stem, three stages of two basic blocks, average pooling, linear readout.

    ================  ========================================  =========================
    layer             operation                                 output (64 px input)
    ================  ========================================  =========================
    ``normalize``     ImageNet channel standardisation           (N, 3, 64, 64)
    ``stem``          5x5 conv 32 stride 2, BN, ReLU, max-pool   (N, 32, 16, 16)
    ``layer1.0/1``    basic blocks, 32 channels                  (N, 32, 16, 16)
    ``layer2.0/1``    basic blocks, 64 channels, stride 2        (N, 64, 8, 8)
    ``layer3.0/1``    basic blocks, 128 channels, stride 2       (N, 128, 4, 4)
    ``avgpool``       global average pool (flattened after)       (N, 128, 1, 1)
    ``fc``            linear to class logits                     (N, n_classes)
    ================  ========================================  =========================

    As in torchvision's ResNets, the stem downsamples by 4 and the first block of stages 2
    and 3 halves the resolution (in its first conv and in its 1x1 shortcut).

    Parameters
    ----------
    n_classes : int, default=8
    """

    widths = (32, 64, 128)
    image_size = 64  # size of the training images (any size >= 32 px runs)

    def __init__(self, n_classes: int = 8):
        super().__init__()
        self.normalize = InputNormalization()
        self.stem = ConvBlock(3, self.widths[0], kernel_size=5, stride=2, pool=True)
        in_channels = self.widths[0]
        for stage, width in enumerate(self.widths):
            stride = 1 if stage == 0 else 2
            blocks = nn.Sequential(
                ResidualBlock(in_channels, width, stride), ResidualBlock(width, width, 1)
            )
            self.add_module(f"layer{stage + 1}", blocks)
            in_channels = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (N, n_classes) for images (N, 3, H, W) in [0, 1]."""
        x = self.stem(self.normalize(x))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# --------------------------------------------------------------------------------------------
# Vision Transformer
# --------------------------------------------------------------------------------------------
class PatchEmbedding(nn.Module):
    """Cut the image into non-overlapping ``patch_size`` squares and project each to a token.

    Equivalent to a linear layer applied to every flattened patch, written as a strided conv
    (the original ViT patch embedding, Dosovitskiy et al. 2021).

    Parameters
    ----------
    patch_size : int
    dim : int
        Token dimension.
    """

    def __init__(self, patch_size: int, dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> patch tokens (N, (H / p) * (W / p), dim), row by row."""
        _check_patch_grid(x, self.patch_size)
        return self.proj(x).flatten(2).transpose(1, 2)


class ConvPatchEmbedding(nn.Module):
    """Convolutional stem that turns every ``patch_size`` square into one token.

    ``log2(patch_size)`` blocks of 4x4 conv (stride 2, padding 1), batchnorm and ReLU halve
    the resolution until one position is left per patch, then a 1x1 conv (``proj``) maps it
    to the token dimension (after Xiao et al. 2021, "Early convolutions help transformers see
    better"). The 4x4 kernels keep every token's receptive field centred on its own patch:
    token ``t`` belongs to patch ``t`` (row by row), and its receptive field (22 px for
    8 px patches) reaches 7 px beyond the patch on every side.

    Parameters
    ----------
    patch_size : int
        A power of 2.
    dim : int
        Token dimension; the stem's widths are ``dim // 4``, ``dim // 2``, ``dim``.
    """

    def __init__(self, patch_size: int, dim: int):
        super().__init__()
        n_stages = int(round(math.log2(patch_size)))
        if 2**n_stages != patch_size:
            raise ValueError(
                f"a convolutional stem needs a power-of-2 patch_size, got {patch_size}."
            )
        self.patch_size = patch_size
        widths = [max(8, dim // 2 ** (n_stages - 1 - i)) for i in range(n_stages)]
        stages, in_channels = [], 3
        for index, width in enumerate(widths):
            block = ConvBlock(in_channels, width, kernel_size=4, stride=2, padding=1)
            stages.append((f"conv{index + 1}", block))
            in_channels = width
        self.stem = nn.Sequential(OrderedDict(stages))
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> patch tokens (N, (H / p) * (W / p), dim), row by row."""
        _check_patch_grid(x, self.patch_size)
        return self.proj(self.stem(x)).flatten(2).transpose(1, 2)


def _check_patch_grid(x: torch.Tensor, patch_size: int) -> None:
    if x.shape[-2] % patch_size or x.shape[-1] % patch_size:
        raise ValueError(
            f"image height and width must be multiples of the patch size {patch_size}, "
            f"got {tuple(x.shape[-2:])}."
        )


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention written out step by step.

    For each head ``h``: ``q = x W_q``, ``k = x W_k``, ``v = x W_v`` (``head_dim`` columns each),
    ``A = softmax(q k^T / sqrt(head_dim))`` over the keys, output ``A v``; the heads are
    concatenated and projected by ``out``. ``A`` has shape (N, heads, tokens, tokens) and each
    row sums to 1: row ``i`` says how much token ``i`` reads from every token.

    When ``store_attention`` is True, the last ``A`` is kept (detached) in ``attention``.

    Parameters
    ----------
    dim : int
        Token dimension; must be divisible by ``heads``.
    heads : int
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim={dim} must be divisible by heads={heads}.")
        self.heads = heads
        self.head_dim = dim // heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.store_attention = False
        self.attention: torch.Tensor | None = None

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        n, tokens, _ = x.shape
        return x.view(n, tokens, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, tokens, dim) -> (N, tokens, dim)."""
        q = self._split_heads(self.query(x))
        k = self._split_heads(self.key(x))
        v = self._split_heads(self.value(x))
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
        attention = scores.softmax(dim=-1)
        if self.store_attention:
            self.attention = attention.detach()
        mixed = (attention @ v).transpose(1, 2).flatten(2)
        return self.out(mixed)


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``.

    Parameters
    ----------
    dim, heads : int
    mlp_dim : int
        Hidden width of the two-layer GELU MLP.
    """

    def __init__(self, dim: int, heads: int, mlp_dim: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            OrderedDict(fc1=nn.Linear(dim, mlp_dim), gelu=nn.GELU(), fc2=nn.Linear(mlp_dim, dim))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, tokens, dim) -> (N, tokens, dim)."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class CourseViT(nn.Module):
    """Small Vision Transformer with explicit, inspectable attention.

    ====================  ==============================================  ===================
    layer                 operation                                       output (64 px)
    ====================  ==============================================  ===================
    ``normalize``         ImageNet channel standardisation                 (N, 3, 64, 64)
    ``patch_embed``       8 x 8 px patches -> tokens (conv stem)           (N, 64, dim)
    (``cls_token``,       prepend a learned CLS token, add learned
    ``pos_embed``)        position embeddings                              (N, 65, dim)
    ``blocks.0`` ... 5    pre-norm transformer blocks                      (N, 65, dim)
    ``norm``              final LayerNorm                                  (N, 65, dim)
    ``head``              linear readout of the CLS token                  (N, n_classes)
    ====================  ==============================================  ===================

    Token 0 is the CLS token; tokens 1..64 are the patches row by row
    (see :meth:`patch_positions`). Set ``model.store_attention = True`` to keep every block's
    last attention probabilities in ``model.blocks[i].attn.attention`` (N, heads, 65, 65), or
    call :meth:`attention_maps`.

    Parameters
    ----------
    n_classes : int, default=8
    image_size : int, default=64
    patch_size : int, default=8
    dim : int, default=96
        Token dimension.
    depth : int, default=6
        Number of transformer blocks.
    heads : int, default=4
    mlp_dim : int, default=192
    patch_embedding : {"conv", "linear"}, default="conv"
        How 8 x 8 px patches become tokens: ``"linear"`` is the original ViT projection of each
        flattened patch; ``"conv"`` a small convolutional stem (three stride-2 3x3 convs and a
        1x1 projection, :class:`ConvPatchEmbedding`). The shipped network uses ``"conv"``:
        with the linear embedding the training loss stayed at chance (ln 8) for the whole
        first epoch of 20,000 images, which the CPU budget of the course cannot afford;
        convolutional stems are known to make ViTs train faster and more stably (Xiao et al.
        2021). Attention is unchanged: global, between the 65 tokens.
    """

    def __init__(
        self,
        n_classes: int = 8,
        image_size: int = 64,
        patch_size: int = 8,
        dim: int = 96,
        depth: int = 6,
        heads: int = 4,
        mlp_dim: int = 192,
        patch_embedding: str = "conv",
    ):
        super().__init__()
        if patch_embedding not in ("conv", "linear"):
            raise ValueError(
                f"patch_embedding must be 'conv' or 'linear', got {patch_embedding!r}."
            )
        if image_size % patch_size:
            raise ValueError(
                f"image_size={image_size} must be a multiple of patch_size={patch_size}."
            )
        self.image_size = image_size
        self.patch_size = patch_size
        self.grid_size = image_size // patch_size
        n_tokens = self.grid_size**2 + 1
        self.normalize = InputNormalization()
        embedding = ConvPatchEmbedding if patch_embedding == "conv" else PatchEmbedding
        self.patch_embed = embedding(patch_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n_tokens, dim))
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, mlp_dim) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    @property
    def store_attention(self) -> bool:
        """Whether every block keeps its last attention probabilities."""
        return all(block.attn.store_attention for block in self.blocks)

    @store_attention.setter
    def store_attention(self, value: bool) -> None:
        for block in self.blocks:
            block.attn.store_attention = bool(value)
            if not value:
                block.attn.attention = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (N, n_classes) for images (N, 3, image_size, image_size) in [0, 1]."""
        x = self.normalize(x)
        if tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(
                f"this ViT has {self.grid_size**2} learned position embeddings for "
                f"{self.image_size} x {self.image_size} px images, got {tuple(x.shape[-2:])} px. "
                "Resize the images first."
            )
        tokens = self.patch_embed(x)
        cls = self.cls_token.expand(len(tokens), -1, -1)
        x = torch.cat([cls, tokens], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])

    @torch.no_grad()
    def attention_maps(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Attention probabilities of every block for ``images``.

        Parameters
        ----------
        images : torch.Tensor, shape (N, 3, image_size, image_size)
            Values in [0, 1].

        Returns
        -------
        list of torch.Tensor, one per block, each of shape (N, heads, 65, 65)
            Row ``i`` of ``maps[b][n, h]`` is how much token ``i`` attends to every token in
            block ``b``; rows sum to 1. Token 0 is the CLS token.
        """
        previous = [block.attn.store_attention for block in self.blocks]
        was_training = self.training
        self.eval()
        self.store_attention = True
        try:
            self(images)
            return [block.attn.attention for block in self.blocks]
        finally:
            self.train(was_training)
            for block, keep in zip(self.blocks, previous, strict=True):
                block.attn.store_attention = keep
                if not keep:
                    block.attn.attention = None

    def patch_positions(self) -> torch.Tensor:
        """Pixel coordinates (row, column) of the centre of every patch token.

        Returns
        -------
        torch.Tensor, shape (grid_size ** 2, 2)
            Row ``t`` belongs to token ``t + 1`` (token 0 is the CLS token, which has no
            position). Use it to turn attention maps into attention distances in pixels.
        """
        centres = (torch.arange(self.grid_size, dtype=torch.float32) + 0.5) * self.patch_size
        rows, cols = torch.meshgrid(centres, centres, indexing="ij")
        return torch.stack([rows.flatten(), cols.flatten()], dim=1)
