"""System-identification CNNs: networks fitted directly to neural responses.

:class:`RetinaCNN`
    The three-layer CNN of McIntosh et al. (2016, NeurIPS, "Deep learning models of the retinal
    response to natural scenes"; code ``baccuslab/deep-retina``, ``deepretina/models.py``):
    400 ms of movie (40 frames of 50 x 50 px at 100 Hz) enter as input *channels*;
    conv 8 @ 15 x 15 -> ReLU -> conv 8 @ 11 x 11 -> ReLU -> dense -> softplus, Gaussian noise
    (SD 0.1) on the conv layers during training, Poisson loss, Adam.
:class:`V1CNN`
    The data-driven CNN of Cadena et al. (2019, PLoS Comput Biol 15(4): e1006897,
    https://doi.org/10.1371/journal.pcbi.1006897; code ``sacadena/Cadena2019PlosCB``): three
    conv layers (13 x 13 valid, then 3 x 3 and 3 x 3 same) with batchnorm and ELU, a factorised
    readout per neuron (spatial mask x feature weights) and an ELU + 1 output, fitted with the
    Poisson loss and smoothness / sparsity penalties (:meth:`V1CNN.regularizer`).

Both train with :func:`course_tools.models.training.fit`, which adds ``model.regularizer()``
to the loss automatically. Every constructor takes a ``seed`` for its initial weights.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "FactorizedReadout",
    "FFTConv2d",
    "GaussianNoise",
    "RetinaCNN",
    "V1CNN",
    "make_lagged_movie",
]

# The discrete Laplacian used for the smoothness penalties of Cadena et al. (2019).
_LAPLACIAN = torch.tensor([[0.25, 0.5, 0.25], [0.5, -3.0, 0.5], [0.25, 0.5, 0.25]])


# ============================================================================================
# helpers
# ============================================================================================
def make_lagged_movie(movie, n_lags: int) -> np.ndarray:
    """Stack the last ``n_lags`` frames of every time bin as channels (a memory-free view).

    Parameters
    ----------
    movie : ndarray, shape (n_frames, H, W)
        One frame per time bin.
    n_lags : int
        Frames of history per sample (40 = 400 ms at 100 Hz).

    Returns
    -------
    ndarray, shape (n_frames - n_lags + 1, n_lags, H, W)
        A read-only view (no copy). Sample ``i`` holds frames ``i ... i + n_lags - 1``, oldest
        first, and predicts the response in bin ``t = i + n_lags - 1`` -- the sample for bin
        ``t`` uses frames ``t - n_lags + 1 ... t``. Pair it with ``counts[n_lags - 1:]``.

    Examples
    --------
    >>> movie = np.arange(5 * 2 * 2).reshape(5, 2, 2)
    >>> lagged = make_lagged_movie(movie, 3)
    >>> lagged.shape
    (3, 3, 2, 2)
    >>> bool((lagged[0, -1] == movie[2]).all())  # the newest frame of sample 0 is frame 2
    True
    """
    arr = np.asarray(movie)
    if arr.ndim != 3:
        raise ValueError(f"movie must have shape (n_frames, H, W), got shape {arr.shape}.")
    if (
        isinstance(n_lags, bool)
        or not isinstance(n_lags, numbers.Integral)
        or not 1 <= n_lags <= len(arr)
    ):
        raise ValueError(
            f"n_lags must be an integer between 1 and the number of frames ({len(arr)}), "
            f"got {n_lags!r}."
        )
    windows = np.lib.stride_tricks.sliding_window_view(arr, int(n_lags), axis=0)
    return np.moveaxis(windows, -1, 1)  # (n_samples, H, W, n_lags) -> (n_samples, n_lags, H, W)


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch with ``seed`` inside the block and restore the caller's global RNG after it."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def _check_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _laplacian_penalty(weights: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``sum_k ||L * w_k||^2 / ||w_k||^2`` over the 2-D maps ``w_k`` of ``weights (..., h, w)``.

    Scale-free roughness of each map (Cadena et al. 2019); zero for all-zero maps.
    """
    maps = weights.reshape(-1, 1, *weights.shape[-2:])
    kernel = _LAPLACIAN.to(dtype=weights.dtype, device=weights.device)[None, None]
    rough = F.conv2d(maps, kernel, padding=1).pow(2).sum(dim=(1, 2, 3))
    return (rough / (maps.pow(2).sum(dim=(1, 2, 3)) + eps)).sum()


def _inverse_softplus(x: np.ndarray) -> np.ndarray:
    x = np.maximum(x, 1e-6)
    return np.where(x > 20, x, np.log(np.expm1(np.minimum(x, 20.0))))


def _inverse_elu_plus_one(x: np.ndarray) -> np.ndarray:
    x = np.maximum(x, 1e-6)
    return np.where(x > 1, x - 1.0, np.log(x))


def _column_means(targets) -> np.ndarray:
    t = targets.detach().cpu().numpy() if isinstance(targets, torch.Tensor) else targets
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 2:
        raise ValueError(f"targets must have shape (n_samples, n_outputs), got {t.shape}.")
    return np.nanmean(t, axis=0)


# ============================================================================================
# building blocks
# ============================================================================================
class GaussianNoise(nn.Module):
    """Add zero-mean Gaussian noise of SD ``std`` in training mode; identity in eval mode.

    The regulariser of McIntosh et al. (2016). The noise draws from torch's global generator,
    which :func:`course_tools.models.training.fit` seeds.
    """

    def __init__(self, std: float):
        super().__init__()
        if not std >= 0:
            raise ValueError(f"noise std must be >= 0, got {std}.")
        self.std = float(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.std > 0:
            return x + self.std * torch.randn_like(x)
        return x

    def extra_repr(self) -> str:
        return f"std={self.std}"


class FFTConv2d(nn.Conv2d):
    """A ``valid``, stride-1 :class:`torch.nn.Conv2d` computed with FFTs.

    Same parameters, state dict and result as ``nn.Conv2d(in, out, k)`` (up to float
    rounding), but the cost no longer grows with the kernel area: for the retina CNN's first
    layer (40 input channels, 15 x 15 kernels on 50 x 50 frames) it is about 15 times faster
    on a CPU than the direct convolution. Cross-correlation in space is a product in frequency:
    ``y = irfft2(sum_c rfft2(x_c) * conj(rfft2(w_oc)))``; the circular wrap-around only
    touches outputs outside the valid region, which are cropped.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, bias=bias)

    def _conv_forward(self, x, weight, bias):
        height, width = x.shape[-2:]
        k_h, k_w = weight.shape[-2:]
        if height < k_h or width < k_w:
            raise ValueError(
                f"input of {height}x{width} px is smaller than the {k_h}x{k_w} kernel."
            )
        spectrum = torch.fft.rfft2(x)  # (N, C_in, H, W/2+1)
        kernel = torch.fft.rfft2(weight, s=(height, width)).conj()  # (C_out, C_in, H, W/2+1)
        # per frequency: (N, C_in) @ (C_in, C_out)
        product = torch.matmul(spectrum.permute(2, 3, 0, 1), kernel.permute(2, 3, 1, 0))
        out = torch.fft.irfft2(product.permute(2, 3, 0, 1), s=(height, width))
        out = out[..., : height - k_h + 1, : width - k_w + 1]
        return out if bias is None else out + bias[:, None, None]


class FactorizedReadout(nn.Module):
    """Per-neuron readout factorised into a spatial mask and feature weights (Klindt et al. 2017).

    ``out_n = sum_{c,y,x} mask[n, y, x] * features[n, c] * core[c, y, x] + bias_n``: each neuron
    reads one place (its receptive field) with one mix of feature channels, so it needs
    ``h*w + c + 1`` parameters instead of ``h*w*c + 1``.

    Parameters
    ----------
    in_channels, height, width : int
        Shape of the core's output ``(c, h, w)``.
    n_neurons : int
    """

    def __init__(self, in_channels: int, height: int, width: int, n_neurons: int):
        super().__init__()
        self.mask = nn.Parameter(torch.empty(n_neurons, height, width))
        self.features = nn.Parameter(torch.empty(n_neurons, in_channels))
        self.bias = nn.Parameter(torch.zeros(n_neurons))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Truncated-normal initialisation with SD 0.01, as Cadena et al. (2019)."""
        nn.init.trunc_normal_(self.mask, std=0.01, a=-0.02, b=0.02)
        nn.init.trunc_normal_(self.features, std=0.01, a=-0.02, b=0.02)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        spatial = x.reshape(n, c, h * w) @ self.mask.reshape(-1, h * w).T  # (N, C, n_neurons)
        return (spatial * self.features.T).sum(dim=1) + self.bias

    def sparsity_penalty(self) -> torch.Tensor:
        """``sum_n ||mask_n||_1 * ||features_n||_1`` (the L1 readout penalty of Cadena 2019)."""
        return (self.mask.abs().sum(dim=(1, 2)) * self.features.abs().sum(dim=1)).sum()

    def smoothness_penalty(self) -> torch.Tensor:
        """Scale-free Laplacian roughness of the spatial masks, summed over neurons."""
        return _laplacian_penalty(self.mask)


# ============================================================================================
# retina
# ============================================================================================
class RetinaCNN(nn.Module):
    """The McIntosh et al. (2016) retina CNN: time as input channels.

    ``input (N, n_lags, H, W)`` -> conv ``conv1_channels`` @ ``conv1_kernel`` (valid) ->
    batchnorm -> Gaussian noise -> ReLU -> conv ``conv2_channels`` @ ``conv2_kernel`` (valid) ->
    batchnorm -> Gaussian noise -> ReLU -> flatten -> dense ``n_cells`` -> softplus.

    Parameters
    ----------
    n_cells : int
        Number of ganglion cells (outputs).
    n_lags : int, default=40
        Frames of history (input channels); build inputs with :func:`make_lagged_movie`.
    image_size : int, default=50
        Side of the square frames.
    conv1_channels, conv1_kernel : int, default=8, 15
    conv2_channels, conv2_kernel : int, default=8, 11
    noise_std : float, default=0.1
        SD of the Gaussian noise added to both conv layers during training (not in eval mode).
    batchnorm : bool, default=True
        Batch-normalise each conv layer's channels (as the ``bn_cnn`` of ``deep-retina``;
        the normalised scale also makes ``noise_std`` meaningful and the input scale
        irrelevant). False gives the original 2016 network.
    l2_weight : float, default=1e-3
        Weight of the L2 penalty on all conv and dense weights returned by :meth:`regularizer`.
    seed : int, default=0
        Seeds the initial weights.

    Notes
    -----
    Parameter count with ``c1, k1, c2, k2``, ``s1 = image_size - k1 + 1``,
    ``s2 = s1 - k2 + 1``: ``(n_lags k1^2 + 1) c1 + (c1 k2^2 + 1) c2 + (c2 s2^2 + 1) n_cells``
    plus ``2 (c1 + c2)`` batchnorm parameters. Defaults with 8 cells: 72,008 + 7,752 + 43,272
    + 32 = 123,064. The first layer is an :class:`FFTConv2d`, about 15 times faster on a CPU
    than a direct 15 x 15 convolution over 40 channels (same parameters and outputs).
    """

    def __init__(
        self,
        n_cells: int,
        *,
        n_lags: int = 40,
        image_size: int = 50,
        conv1_channels: int = 8,
        conv1_kernel: int = 15,
        conv2_channels: int = 8,
        conv2_kernel: int = 11,
        noise_std: float = 0.1,
        batchnorm: bool = True,
        l2_weight: float = 1e-3,
        seed: int = 0,
    ):
        super().__init__()
        self.n_cells = _check_int("n_cells", n_cells)
        self.n_lags = _check_int("n_lags", n_lags)
        self.image_size = _check_int("image_size", image_size)
        c1, k1 = (
            _check_int("conv1_channels", conv1_channels),
            _check_int("conv1_kernel", conv1_kernel),
        )
        c2, k2 = (
            _check_int("conv2_channels", conv2_channels),
            _check_int("conv2_kernel", conv2_kernel),
        )
        s1 = self.image_size - k1 + 1
        s2 = s1 - k2 + 1
        if s2 < 1:
            raise ValueError(
                f"image_size={image_size} is too small for kernels {k1} and {k2}: the second "
                f"conv layer would have {s2}x{s2} outputs. Use image_size >= {k1 + k2 - 1}."
            )
        if not l2_weight >= 0:
            raise ValueError(f"l2_weight must be >= 0, got {l2_weight}.")
        self.l2_weight = float(l2_weight)
        with _seeded(seed):  # the layers initialise themselves when they are built
            self.conv1 = FFTConv2d(self.n_lags, c1, k1)
            self.bn1 = nn.BatchNorm2d(c1) if batchnorm else nn.Identity()
            self.noise1 = GaussianNoise(noise_std)
            self.conv2 = nn.Conv2d(c1, c2, k2)
            self.bn2 = nn.BatchNorm2d(c2) if batchnorm else nn.Identity()
            self.noise2 = GaussianNoise(noise_std)
            self.dense = nn.Linear(c2 * s2 * s2, self.n_cells)

    def core(self, x: torch.Tensor) -> torch.Tensor:
        """Conv feature maps ``(N, conv2_channels, s2, s2)`` before the dense layer."""
        if x.ndim != 4 or x.shape[1] != self.n_lags or x.shape[-1] != self.image_size:
            raise ValueError(
                f"RetinaCNN expects inputs of shape (N, {self.n_lags}, {self.image_size}, "
                f"{self.image_size}) (see make_lagged_movie), got {tuple(x.shape)}."
            )
        x = F.relu(self.noise1(self.bn1(self.conv1(x))))
        return F.relu(self.noise2(self.bn2(self.conv2(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted spike count per bin, shape ``(N, n_cells)``, non-negative."""
        return F.softplus(self.dense(self.core(x).flatten(1)))

    def regularizer(self) -> torch.Tensor:
        """``l2_weight * (||W_conv1||^2 + ||W_conv2||^2 + ||W_dense||^2)``."""
        weights = (self.conv1.weight, self.conv2.weight, self.dense.weight)
        return self.l2_weight * sum(w.pow(2).sum() for w in weights)

    @torch.no_grad()
    def initialize_output_bias(self, targets) -> None:
        """Set the dense bias so that the initial prediction is each cell's mean count.

        Parameters
        ----------
        targets : array or tensor, shape (n_samples, n_cells)
        """
        means = _column_means(targets)
        if len(means) != self.n_cells:
            raise ValueError(f"targets have {len(means)} columns, the model {self.n_cells} cells.")
        self.dense.bias.copy_(torch.as_tensor(_inverse_softplus(means), dtype=torch.float32))


# ============================================================================================
# V1
# ============================================================================================
class V1CNN(nn.Module):
    """The Cadena et al. (2019) data-driven CNN for V1 responses to images.

    ``input (N, 1, H, W)`` or ``(N, H, W)`` -> conv ``kernel_sizes[0]`` (valid) -> batchnorm ->
    ELU -> conv ``kernel_sizes[1]`` (same) -> batchnorm -> ELU -> conv ``kernel_sizes[2]``
    (same) -> batchnorm -> ELU -> :class:`FactorizedReadout` -> ELU + 1.

    Parameters
    ----------
    n_neurons : int
    input_size : int, default=40
        Side of the square input images (Cadena: 140 px crops, cropped 30 px a side and
        subsampled x2 -> 40 px).
    channels : int, default=16
        Channels of every conv layer. Cadena et al. used 32; the default is 16 because the two
        3 x 3 layers cost ``channels**2``: a training step takes about half as long (3.5 vs
        7.5 ms per 40 x 40 image on one CPU core), and on the simulated V1 of the course
        (3000 images, 100 neurons) 16 channels already reach the Gabor energy model
        (median FEVE about 0.70 vs 0.69). Pass ``channels=32`` for the published network.
    kernel_sizes : (int, int, int), default=(13, 3, 3)
    conv_smoothness : float, default=3e-4
        Weight of the Laplacian smoothness penalty on the first layer's filters.
    conv_sparsity : float, default=2.5e-4
        Weight of the group-sparsity penalty ``sum_{in,out} ||W_{in,out}||_2`` on layers 2, 3.
    readout_sparsity : float, default=2e-4
        Weight of the L1 readout penalty ``sum_n ||mask_n||_1 ||features_n||_1``.
    mask_smoothness : float, default=1e-4
        Weight of the Laplacian smoothness penalty on the readout's spatial masks.
    seed : int, default=0
        Seeds the initial weights.

    Notes
    -----
    The penalty weights are those of the Cadena et al. (2019) example notebook, for a loss
    that averages over images and neurons (as :func:`course_tools.models.training.fit` does).
    Parameter count with ``c`` channels, kernels ``k1, k2, k3``, ``s = input_size - k1 + 1``:
    ``c k1^2 + c^2 k2^2 + c^2 k3^2 + 6 c`` (conv without bias, batchnorm scale and shift) plus
    ``n_neurons (s^2 + c + 1)`` for the readout. With 32 channels and 100 neurons: 105,732.
    """

    def __init__(
        self,
        n_neurons: int,
        *,
        input_size: int = 40,
        channels: int = 16,
        kernel_sizes: tuple[int, int, int] = (13, 3, 3),
        conv_smoothness: float = 3e-4,
        conv_sparsity: float = 2.5e-4,
        readout_sparsity: float = 2e-4,
        mask_smoothness: float = 1e-4,
        seed: int = 0,
    ):
        super().__init__()
        self.n_neurons = _check_int("n_neurons", n_neurons)
        self.input_size = _check_int("input_size", input_size)
        channels = _check_int("channels", channels)
        if len(tuple(kernel_sizes)) != 3:
            raise ValueError(f"kernel_sizes must have three entries, got {kernel_sizes!r}.")
        k1, k2, k3 = (_check_int("kernel_sizes", k) for k in kernel_sizes)
        for name, k in (("kernel_sizes[1]", k2), ("kernel_sizes[2]", k3)):
            if k % 2 == 0:
                raise ValueError(f"{name} must be odd for 'same' padding, got {k}.")
        size = self.input_size - k1 + 1
        if size < 1:
            raise ValueError(f"input_size={input_size} is smaller than the first kernel ({k1}).")
        penalties = {
            "conv_smoothness": conv_smoothness,
            "conv_sparsity": conv_sparsity,
            "readout_sparsity": readout_sparsity,
            "mask_smoothness": mask_smoothness,
        }
        for name, value in penalties.items():
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}.")
            setattr(self, name, float(value))
        with _seeded(seed):  # the layers initialise themselves when they are built
            self.conv1 = nn.Conv2d(1, channels, k1, bias=False)
            self.bn1 = nn.BatchNorm2d(channels)
            self.conv2 = nn.Conv2d(channels, channels, k2, padding=k2 // 2, bias=False)
            self.bn2 = nn.BatchNorm2d(channels)
            self.conv3 = nn.Conv2d(channels, channels, k3, padding=k3 // 2, bias=False)
            self.bn3 = nn.BatchNorm2d(channels)
            self.readout = FactorizedReadout(channels, size, size, self.n_neurons)

    def core(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps of the third conv layer, ``(N, channels, s, s)``."""
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(
                f"V1CNN expects grey images of shape (N, 1, {self.input_size}, "
                f"{self.input_size}) or (N, {self.input_size}, {self.input_size}), got "
                f"{tuple(x.shape)}."
            )
        x = F.elu(self.bn1(self.conv1(x)))
        x = F.elu(self.bn2(self.conv2(x)))
        return F.elu(self.bn3(self.conv3(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted responses, shape ``(N, n_neurons)``, positive (ELU + 1)."""
        return F.elu(self.readout(self.core(x))) + 1.0

    def regularizer(self) -> torch.Tensor:
        """Sum of the four weighted penalties (a scalar tensor; zero for all-zero weights)."""
        group = sum(
            torch.linalg.vector_norm(conv.weight, dim=(2, 3)).sum()
            for conv in (self.conv2, self.conv3)
        )
        return (
            self.conv_smoothness * _laplacian_penalty(self.conv1.weight)
            + self.conv_sparsity * group
            + self.readout_sparsity * self.readout.sparsity_penalty()
            + self.mask_smoothness * self.readout.smoothness_penalty()
        )

    @torch.no_grad()
    def initialize_output_bias(self, targets) -> None:
        """Set the readout bias so that the initial prediction is each neuron's mean response.

        Parameters
        ----------
        targets : array or tensor, shape (n_samples, n_neurons)
            NaN entries (not recorded) are ignored.
        """
        means = _column_means(targets)
        if len(means) != self.n_neurons:
            raise ValueError(
                f"targets have {len(means)} columns, the model {self.n_neurons} neurons."
            )
        bias = _inverse_elu_plus_one(np.nan_to_num(means, nan=1.0))
        self.readout.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
