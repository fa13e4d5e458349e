"""Classical models of early vision: Gabor filter banks, LNP and energy models, the retina LN model.

These are the baselines the lecture compares CNNs with (Cadena et al. 2019, PLoS Comput Biol
15(4): e1006897, https://doi.org/10.1371/journal.pcbi.1006897; code ``sacadena/Cadena2019PlosCB``):

:class:`GaborFilterBank`
    A scikit-learn transformer: images -> linear, simple-cell (half-rectified) and complex-cell
    (quadrature energy, Adelson & Bergen 1985) Gabor responses, one matrix product for all
    filters. Feeds :class:`sklearn.linear_model.RidgeCV` directly.
:class:`LNPoissonModel`
    Linear-nonlinear-Poisson model whose linear filter is a combination of Gabor filters, with
    an exponential (or softplus) output, fitted by penalised Poisson likelihood (the lecture's
    "LNP model with Gabor filters", 17 % explained variance in the bioRxiv preprint of Cadena
    et al. 2017, doi 10.1101/201764, as the lecture quotes it).
:class:`GaborEnergyModel`
    Gabor filter bank with simple and energy terms -> ridge readout -> a fitted monotone output
    nonlinearity: a classical filter-bank model of V1 like the Gabor filter bank baseline of
    Cadena et al. (2019). It is not the lecture's 39 % "wavelet" model, which is the Berkeley
    Wavelet Transform (Willmore et al. 2008), an orthonormal wavelet basis without energy terms.
:class:`RetinaLNModel`
    The retina's classical model: spike-triggered-average filter and a fitted static
    nonlinearity (Chichilnisky 2001).

Coordinates follow :mod:`course_tools.datasets.simulated_v1`: ``x`` is the column, ``y`` the row,
and ``orientation`` is the orientation of the preferred *bars* in degrees in [0, 180): the
carrier of a filter with orientation ``theta`` varies along ``-x sin(theta) + y cos(theta)``.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin, clone
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import RidgeCV
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from course_tools.seeding import check_random_state

__all__ = [
    "GaborEnergyModel",
    "GaborFilterBank",
    "LNPoissonModel",
    "RetinaLNModel",
    "images_to_luminance",
]

#: ITU-R BT.601 luma weights for converting RGB images to luminance.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
_KINDS = ("linear", "simple", "complex", "both")
_MAX_FILTER_BYTES = 2 * 1024**3
_CHUNK = 2048


# ============================================================================================
# images
# ============================================================================================
def images_to_luminance(images) -> np.ndarray:
    """Convert a stack of images to float32 luminance.

    Parameters
    ----------
    images : array_like, shape (n_images, H, W) or (n_images, H, W, C)
        Grey or colour images (C = 1, 3 or 4; an alpha channel is dropped). ``uint8`` images are
        scaled to [0, 1]; float images are used as they are. Colour is converted with the
        ITU-R BT.601 luma weights (0.299, 0.587, 0.114).

    Returns
    -------
    ndarray, shape (n_images, H, W), float32
    """
    arr = np.asarray(images)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"images must be a numeric array, got dtype {arr.dtype}.")
    if arr.ndim == 4:
        channels = arr.shape[-1]
        if channels == 1:
            arr = arr[..., 0]
        elif channels in (3, 4):
            scale = 255.0 if arr.dtype == np.uint8 else 1.0
            rgb = arr[..., :3].astype(np.float32) / scale
            return np.tensordot(rgb, np.asarray(LUMA_WEIGHTS, np.float32), axes=([-1], [0]))
        else:
            raise ValueError(
                f"images of shape {arr.shape} have {channels} channels in the last axis; "
                "expected (n_images, H, W) or (n_images, H, W, C) with C in {1, 3, 4}."
            )
    if arr.ndim != 3:
        raise ValueError(
            f"images must have shape (n_images, H, W) or (n_images, H, W, C), got shape "
            f"{arr.shape}. For a single image use images[None]."
        )
    out = arr.astype(np.float32) / (255.0 if arr.dtype == np.uint8 else 1.0)
    if not np.isfinite(out).all():
        raise ValueError("images contain NaN or inf values.")
    return out


# ============================================================================================
# Gabor filter bank
# ============================================================================================
def _check_positive_sequence(name: str, values, upper: float | None = None) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(
            f"{name} must be a non-empty sequence of positive numbers, got {values!r}."
        )
    if upper is not None and np.any(arr >= upper):
        raise ValueError(f"{name} must all be below {upper}, got {values!r}.")
    return arr


def _grid_centres(length: int, stride: int) -> np.ndarray:
    """Filter centres every ``stride`` pixels, the grid centred in ``[0, length - 1]``."""
    n = (length - 1) // stride + 1
    return (length - 1) / 2 + stride * (np.arange(n) - (n - 1) / 2)


def _gabor_pair(height, width, cx, cy, orientation, frequency, sigma) -> np.ndarray:
    """Quadrature pair (phase 0 and 90 degrees): zero-mean, unit-norm, shape (2, H, W)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    theta = np.deg2rad(orientation)
    dx, dy = xx - cx, yy - cy
    across = -dx * np.sin(theta) + dy * np.cos(theta)  # the carrier varies across the bars
    envelope = np.exp(-(dx**2 + dy**2) / (2 * sigma**2))
    pair = np.stack(
        [
            envelope * np.cos(2 * np.pi * frequency * across),
            envelope * np.cos(2 * np.pi * frequency * across + np.pi / 2),
        ]
    )
    # remove the response to uniform light (envelope-weighted DC), then normalise
    pair -= envelope * (pair.sum(axis=(1, 2)) / envelope.sum())[:, None, None]
    norms = np.linalg.norm(pair.reshape(2, -1), axis=1)
    return pair / np.where(norms > 0, norms, 1.0)[:, None, None]


class GaborFilterBank(TransformerMixin, BaseEstimator):
    """Gabor filter bank as a scikit-learn transformer (images -> features).

    Quadrature pairs of Gabor filters (phase 0 and 90 degrees) tile the image on a grid of
    positions, for every combination of orientation, spatial frequency and envelope size.
    A filter of any phase ``phi`` is ``cos(phi) * even + sin(phi) * odd``, so one matrix
    product with the pairs gives every feature:

    - ``linear``: the even and odd responses ``e = g_0 . x`` and ``o = g_90 . x``;
    - ``simple``: half-rectified responses ``max(0, cos(phi) e + sin(phi) o)`` for each phase
      in ``phases``;
    - ``complex``: the energy ``sqrt(e**2 + o**2)``, invariant to the phase of a grating
      (Adelson & Bergen 1985);
    - ``both``: the simple features followed by the complex features (Cadena et al. 2019).

    Parameters
    ----------
    n_orientations : int, default=8
        Orientations ``0, 180/n, ...`` degrees (orientation of the preferred bars).
    spatial_frequencies : sequence of float, default=(0.08, 0.13)
        Carrier frequencies in cycles per pixel (below the Nyquist limit 0.5).
    sizes : sequence of float, default=(3.0, 4.5)
        Standard deviations of the circular Gaussian envelope, in pixels. The defaults give
        0.24-0.6 cycles per envelope SD (bandwidths of about 1-2 octaves, as in macaque V1)
        and receptive fields of 12-18 px (4 SD) in a 40 px image.
    phases : sequence of float, default=(0, 90, 180, 270)
        Phases (degrees) of the simple-cell features.
    stride : int, default=4
        Pixels between neighbouring filter centres; the grid is centred in the image.
    kind : {"linear", "simple", "complex", "both"}, default="both"
        Which features :meth:`transform` returns (see above).

    Attributes
    ----------
    image_shape_ : tuple (H, W)
        Image size seen in :meth:`fit`; :meth:`transform` needs the same size.
    filters_ : ndarray, shape (n_pairs, 2, H, W), float32
        The quadrature pairs: ``filters_[p, 0]`` is the even (phase 0) filter, ``filters_[p, 1]``
        the odd (phase 90) one. Zero mean, unit norm.
    pair_params_ : pandas.DataFrame
        One row per pair: ``orientation`` (deg), ``spatial_frequency`` (cycles/px), ``size``
        (envelope SD, px), ``x``, ``y`` (centre, px).
    filter_params_ : pandas.DataFrame
        One row per output feature, in output order: ``kind`` ("linear", "simple" or
        "complex"), ``pair`` (row of ``pair_params_``), the pair's parameters and ``phase``
        (deg; NaN for complex features).
    n_features_out_ : int
        Number of output features.

    Notes
    -----
    Filters are full-image arrays, so :meth:`transform` is a single ``(n_images, H*W) @
    (H*W, 2 * n_pairs)`` product (thousands of 40 x 40 images per second). Filters near the
    border are cut off by the image edge (zero padding). Images are converted to luminance
    with :func:`images_to_luminance`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import RidgeCV
    >>> from sklearn.pipeline import make_pipeline
    >>> rng = np.random.default_rng(0)
    >>> images, y = rng.normal(size=(200, 20, 20)), rng.normal(size=200)
    >>> model = make_pipeline(GaborFilterBank(stride=5), RidgeCV()).fit(images, y)
    >>> model.predict(images[:3]).shape
    (3,)
    """

    def __init__(
        self,
        n_orientations: int = 8,
        spatial_frequencies: Sequence[float] = (0.08, 0.13),
        sizes: Sequence[float] = (3.0, 4.5),
        phases: Sequence[float] = (0.0, 90.0, 180.0, 270.0),
        stride: int = 4,
        kind: str = "both",
    ):
        self.n_orientations = n_orientations
        self.spatial_frequencies = spatial_frequencies
        self.sizes = sizes
        self.phases = phases
        self.stride = stride
        self.kind = kind

    # ------------------------------------------------------------------ fitting
    def _validate_params(self) -> None:
        if (
            isinstance(self.n_orientations, bool)
            or not isinstance(self.n_orientations, numbers.Integral)
            or self.n_orientations < 1
        ):
            raise ValueError(
                f"n_orientations must be a positive integer, got {self.n_orientations!r}."
            )
        if (
            isinstance(self.stride, bool)
            or not isinstance(self.stride, numbers.Integral)
            or self.stride < 1
        ):
            raise ValueError(f"stride must be a positive integer (pixels), got {self.stride!r}.")
        if self.kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {self.kind!r}.")
        _check_positive_sequence("spatial_frequencies", self.spatial_frequencies, upper=0.5)
        _check_positive_sequence("sizes", self.sizes)
        phases = np.atleast_1d(np.asarray(self.phases, dtype=np.float64))
        if phases.ndim != 1 or phases.size == 0 or not np.all(np.isfinite(phases)):
            raise ValueError(
                f"phases must be a non-empty sequence of degrees, got {self.phases!r}."
            )

    def fit(self, X, y=None):
        """Build the filters for the image size of ``X``.

        Parameters
        ----------
        X : array_like, shape (n_images, H, W) or (n_images, H, W, C)
        y : ignored

        Returns
        -------
        self
        """
        self._validate_params()
        height, width = images_to_luminance(np.asarray(X)[:1]).shape[1:]
        orientations = np.arange(self.n_orientations) * 180.0 / self.n_orientations
        xs, ys = _grid_centres(width, self.stride), _grid_centres(height, self.stride)
        n_pairs = (
            len(np.atleast_1d(self.sizes))
            * len(np.atleast_1d(self.spatial_frequencies))
            * len(orientations)
            * len(xs)
            * len(ys)
        )
        n_bytes = n_pairs * 2 * height * width * 4
        if n_bytes > _MAX_FILTER_BYTES:
            raise ValueError(
                f"the filter bank would hold {n_pairs} filter pairs for {height}x{width} images "
                f"({n_bytes / 1024**3:.1f} GiB). Downsample the images, increase stride or use "
                "fewer orientations, frequencies or sizes."
            )
        grid = [
            (float(o), float(f), float(s), float(cx), float(cy))
            for s in np.atleast_1d(self.sizes)
            for f in np.atleast_1d(self.spatial_frequencies)
            for o in orientations
            for cy in ys
            for cx in xs
        ]
        self.image_shape_ = (height, width)
        self.pair_params_ = pd.DataFrame(
            grid, columns=["orientation", "spatial_frequency", "size", "x", "y"]
        )
        self.filters_ = np.stack(
            [_gabor_pair(height, width, cx, cy, o, f, s) for (o, f, s, cx, cy) in grid]
        ).astype(np.float32)
        self.filter_params_ = self._feature_table()
        self.n_features_out_ = len(self.filter_params_)
        return self

    def _feature_table(self) -> pd.DataFrame:
        pairs = self.pair_params_.reset_index(names="pair")
        tables = []
        if self.kind == "linear":
            for phase in (0.0, 90.0):
                tables.append(pairs.assign(kind="linear", phase=phase))
            table = pd.concat(tables).sort_values(["pair", "phase"], kind="stable")
            return table.reset_index(drop=True)
        if self.kind in ("simple", "both"):
            phases = np.atleast_1d(np.asarray(self.phases, dtype=np.float64))
            simple = pd.concat([pairs.assign(kind="simple", phase=p) for p in phases])
            tables.append(simple.sort_values(["pair"], kind="stable"))
        if self.kind in ("complex", "both"):
            tables.append(pairs.assign(kind="complex", phase=np.nan))
        columns = ["kind", "pair", "orientation", "spatial_frequency", "size", "x", "y", "phase"]
        return pd.concat(tables).reset_index(drop=True)[columns]

    # ---------------------------------------------------------------- transform
    def _check_images(self, X) -> np.ndarray:
        check_is_fitted(self, "filters_")
        lum = images_to_luminance(X)
        if lum.shape[1:] != self.image_shape_:
            raise ValueError(
                f"images are {lum.shape[1:]} pixels but the bank was fitted to "
                f"{self.image_shape_}; fit it on images of this size or resize the images."
            )
        return lum

    def linear_responses(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Even and odd responses of every pair.

        Parameters
        ----------
        X : array_like, shape (n_images, H, W) or (n_images, H, W, C)

        Returns
        -------
        even, odd : ndarray, shape (n_images, n_pairs), float32
        """
        lum = self._check_images(X)
        n_pairs = len(self.filters_)
        weights = self.filters_.reshape(2 * n_pairs, -1).T  # (H*W, 2 * n_pairs)
        flat = lum.reshape(len(lum), -1)
        out = np.empty((len(lum), 2 * n_pairs), dtype=np.float32)
        for start in range(0, len(lum), _CHUNK):
            out[start : start + _CHUNK] = flat[start : start + _CHUNK] @ weights
        out = out.reshape(len(lum), n_pairs, 2)
        return out[..., 0], out[..., 1]

    def transform(self, X) -> np.ndarray:
        """Gabor features of each image.

        Parameters
        ----------
        X : array_like, shape (n_images, H, W) or (n_images, H, W, C)

        Returns
        -------
        ndarray, shape (n_images, n_features_out_), float32
            Columns described by the rows of ``filter_params_``.
        """
        even, odd = self.linear_responses(X)
        if self.kind == "linear":
            return np.stack([even, odd], axis=2).reshape(len(even), -1)
        parts = []
        if self.kind in ("simple", "both"):
            phases = np.deg2rad(np.atleast_1d(np.asarray(self.phases, dtype=np.float64)))
            cos, sin = np.cos(phases).astype(np.float32), np.sin(phases).astype(np.float32)
            simple = even[:, :, None] * cos + odd[:, :, None] * sin  # (n, n_pairs, n_phases)
            parts.append(np.maximum(simple, 0.0).reshape(len(even), -1))
        if self.kind in ("complex", "both"):
            parts.append(np.sqrt(even**2 + odd**2))
        return np.concatenate(parts, axis=1)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names ``"<kind>_<pair>[_ph<phase>]"`` of the output features."""
        check_is_fitted(self, "filter_params_")
        names = [
            f"{row.kind}_{row.pair}" + ("" if np.isnan(row.phase) else f"_ph{row.phase:g}")
            for row in self.filter_params_.itertuples()
        ]
        return np.asarray(names, dtype=object)


def _default_bank(filter_bank, kind: str) -> GaborFilterBank:
    if filter_bank is None:
        return GaborFilterBank(kind=kind)
    if not isinstance(filter_bank, GaborFilterBank):
        raise TypeError(
            f"filter_bank must be a GaborFilterBank or None, got {type(filter_bank).__name__}."
        )
    return clone(filter_bank).set_params(kind=kind)


def _check_targets(
    y, n_samples: int, *, nonnegative: bool, names: tuple[str, str, str] = ("X", "y", "image")
) -> tuple[np.ndarray, bool]:
    x_name, y_name, unit = names
    arr = np.asarray(y, dtype=np.float64)
    single = arr.ndim == 1
    if single:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(
            f"{y_name} must have shape (n_samples,) or (n_samples, n_targets), got {arr.shape}."
        )
    if len(arr) != n_samples:
        raise ValueError(
            f"{x_name} has {n_samples} {unit}s but {y_name} has {len(arr)} rows; pass one "
            f"response row per {unit}."
        )
    if not np.isfinite(arr).all():
        raise ValueError(
            "y contains NaN or inf. Drop the stimuli a neuron was not recorded for, or fit "
            "that neuron separately."
        )
    if nonnegative and (arr < 0).any():
        raise ValueError(
            "y must be non-negative spike counts or rates for a Poisson model; got negative "
            "values. Do not z-score the responses."
        )
    return arr, single


# ============================================================================================
# LNP model with a Gabor basis
# ============================================================================================
def _fisher_weight(mean_rate: np.ndarray, link: str) -> np.ndarray:
    """Poisson Fisher information of the linear predictor at a typical rate (per target)."""
    m = np.maximum(mean_rate, 1e-3)
    return m if link == "exp" else (1 - np.exp(-m)) ** 2 / m


def _fit_poisson_glm(
    Z: torch.Tensor,
    Y: torch.Tensor,
    penalty: torch.Tensor,
    link: str,
    coef: torch.Tensor,
    intercept: torch.Tensor,
    max_iter: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Penalised Poisson regression of every column of ``Y`` on ``Z`` at once (L-BFGS).

    Minimises, for each target k, ``mean_i [r_ik - y_ik log r_ik] + 1/2 sum_j p_jk w_jk^2`` with
    ``r = link(Z w + b)`` and the penalty matrix ``p``; the targets are independent, so the sum is
    minimised jointly. ``Z`` should have (about) identity covariance: each coefficient is then
    rescaled by its approximate curvature ``1 / sqrt(fisher_k + p_jk)`` so that the joint problem
    is well conditioned and L-BFGS converges for every target at the same pace.
    """
    fisher = torch.from_numpy(_fisher_weight(Y.mean(dim=0).numpy(), link)).to(Z.dtype)
    coef_scale = 1.0 / torch.sqrt(fisher + penalty)  # (n_features, n_targets)
    intercept_scale = 1.0 / torch.sqrt(fisher)
    u = (coef / coef_scale).clone().requires_grad_(True)
    v = (intercept / intercept_scale).clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [u, v],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=1e-7,
        tolerance_change=1e-12,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure():
        optimizer.zero_grad()
        w = u * coef_scale
        rate, log_rate = _link(Z @ w + v * intercept_scale, link)
        loss = (rate - Y * log_rate).mean(dim=0).sum() + 0.5 * (penalty * w**2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return (u * coef_scale).detach(), (v * intercept_scale).detach()


def _link(eta: torch.Tensor, link: str) -> tuple[torch.Tensor, torch.Tensor]:
    if link == "exp":
        eta = eta.clamp(max=30.0)
        return torch.exp(eta), eta
    rate = torch.nn.functional.softplus(eta)
    return rate, torch.log(rate + 1e-12)


def _inverse_link(rate: np.ndarray, link: str) -> np.ndarray:
    rate = np.maximum(rate, 1e-6)
    if link == "exp":
        return np.log(rate)
    return np.where(rate > 20, rate, np.log(np.expm1(np.minimum(rate, 20.0))))


def _poisson_deviance_per_target(y: np.ndarray, rate: np.ndarray) -> np.ndarray:
    rate = np.maximum(rate, 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / rate), 0.0)
    return 2 * (term - (y - rate)).mean(axis=0)


class LNPoissonModel(RegressorMixin, BaseEstimator):
    """Linear-nonlinear-Poisson model whose linear filter is a combination of Gabor filters.

    ``rate = f(sum_j c_j (g_j . x) + b)`` with the linear (unrectified) responses of a
    :class:`GaborFilterBank` and a softplus or exponential output ``f``, fitted by
    maximising the Poisson likelihood with an L2 penalty on the Gabor coefficients ``c``. The
    linear filter in pixel space, ``w = sum_j c_j g_j``, is stored in ``filter_``. This is the
    LNP baseline of Cadena et al. (2017 preprint, 2019 paper); it can only model cells whose
    response grows with one linear projection of the image, so it fails on phase-invariant
    (complex) cells.

    The penalty strength is chosen per neuron from ``alphas`` on a held-out ``val_fraction`` of
    the images (warm-started path from strong to weak penalty), then the model is refitted on
    all images.

    Parameters
    ----------
    filter_bank : GaborFilterBank or None
        Template of the basis (cloned; its ``kind`` is set to "linear"). None uses the default
        :class:`GaborFilterBank`.
    alphas : sequence of float, default=(10, 1, 0.1, 0.01, 0.001)
        Candidate L2 penalties, relative to the data: the penalty on the Gabor coefficients is
        ``alpha / 2 * ||c||^2 / v`` with ``v`` the mean variance of the basis features
        ``X U S`` (see Notes), added to the mean Poisson loss per image.
    link : {"softplus", "exp"}, default="softplus"
        Output nonlinearity. Cadena et al. (2019) used ``exp`` (the canonical link); its
        predictions explode on the few new images that drive the filter far beyond the
        training range, which costs a lot of explained variance, so ``softplus`` is the default.
    val_fraction : float in (0, 1), default=0.2
        Share of images held out to choose the penalty.
    max_iter : int, default=300
        L-BFGS iterations per fit.
    seed : int, default=0
        Seeds the validation split.

    Attributes
    ----------
    filter_bank_ : GaborFilterBank
        The fitted basis.
    coef_ : ndarray, shape (n_targets, n_pairs * 2)
        Gabor coefficients (columns as in ``filter_bank_.filter_params_``).
    intercept_ : ndarray, shape (n_targets,)
    filter_ : ndarray, shape (n_targets, H, W)
        The linear filter in pixel space: ``rate = f(filter_ . luminance + intercept_)``.
    alpha_ : ndarray, shape (n_targets,)
        Chosen penalty per neuron.
    validation_deviance_ : ndarray, shape (n_alphas, n_targets)
        Mean Poisson deviance on the validation images for each candidate penalty.

    Notes
    -----
    The Gabor basis is overcomplete (more filters than pixels), so an L2 penalty on ``c`` is a
    Gaussian prior on ``w`` whose covariance is ``G G^T`` (``G`` the matrix of filters): it
    favours smooth, localised, oriented filters. The fit uses this exactly: with the thin SVD
    ``G = U S V^T`` the model is fitted on the at most ``H*W`` features ``X U S`` (directions
    with a prior variance below 1e-6 of the largest are dropped; they cannot be fitted anyway).
    """

    def __init__(
        self,
        filter_bank: GaborFilterBank | None = None,
        alphas: Sequence[float] = (10.0, 1.0, 1e-1, 1e-2, 1e-3),
        link: str = "softplus",
        val_fraction: float = 0.2,
        max_iter: int = 300,
        seed: int = 0,
    ):
        self.filter_bank = filter_bank
        self.alphas = alphas
        self.link = link
        self.val_fraction = val_fraction
        self.max_iter = max_iter
        self.seed = seed

    def fit(self, X, y):
        """Fit the filter and output of every neuron.

        Parameters
        ----------
        X : array_like, shape (n_images, H, W) or (n_images, H, W, C)
        y : array_like, shape (n_images,) or (n_images, n_neurons)
            Non-negative spike counts or trial-averaged rates.

        Returns
        -------
        self
        """
        if self.link not in ("exp", "softplus"):
            raise ValueError(f"link must be 'exp' or 'softplus', got {self.link!r}.")
        alphas = np.sort(_check_positive_sequence("alphas", self.alphas))[::-1]
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}.")
        if not isinstance(self.max_iter, numbers.Integral) or self.max_iter < 1:
            raise ValueError(f"max_iter must be a positive integer, got {self.max_iter!r}.")
        X = np.asarray(X)
        Y, self._single_output = _check_targets(y, len(X), nonnegative=True)
        self.filter_bank_ = _default_bank(self.filter_bank, "linear").fit(X)

        n_pairs = len(self.filter_bank_.filters_)
        gabors = self.filter_bank_.filters_.reshape(2 * n_pairs, -1).astype(np.float64).T
        # thin SVD G = U S V^T through the small (H*W, H*W) matrix G G^T = U S^2 U^T
        eigenvalues, u = np.linalg.eigh(gabors @ gabors.T)
        keep = eigenvalues > eigenvalues.max() * 1e-6  # prior variance: negligible below this
        s = np.sqrt(eigenvalues[keep])
        self._basis = u[:, keep] * s  # U S, shape (H*W, rank)
        self._vt = (gabors.T @ u[:, keep] / s).T  # V^T, shape (rank, n_filters)
        lum = self.filter_bank_._check_images(X).reshape(len(X), -1).astype(np.float64)
        z = lum @ self._basis
        z -= z.mean(axis=0)
        # whiten: Z = z Q / sqrt(lam) has identity covariance; the L2 penalty on the
        # coefficients of z becomes alpha * sum_j b_j^2 / lam_j on the coefficients b of Z
        lam, q = np.linalg.eigh(z.T @ z / len(z))
        mean_variance = max(float(lam.mean()), 1e-300)  # makes alpha independent of units
        informative = lam > lam.max() * 1e-10
        lam, q = lam[informative], q[:, informative]
        whitening = q / np.sqrt(lam)  # (rank, n_whitened)
        Z = torch.from_numpy(z @ whitening)
        Yt = torch.from_numpy(Y)
        inverse_lam = torch.from_numpy(mean_variance / lam)[:, None]

        n_val = int(round(self.val_fraction * len(X)))
        if n_val < 1 or n_val >= len(X) - 1:
            raise ValueError(
                f"val_fraction={self.val_fraction} of {len(X)} images leaves no validation or "
                "training images; pass more images."
            )
        order = torch.from_numpy(check_random_state(self.seed).permutation(len(X)))
        val, train = order[:n_val], order[n_val:]
        n_targets = Y.shape[1]
        coef = torch.zeros(Z.shape[1], n_targets, dtype=torch.float64)
        intercept = torch.from_numpy(_inverse_link(Y[train.numpy()].mean(axis=0), self.link))
        deviances, solutions = [], []
        for alpha in alphas:
            coef, intercept = _fit_poisson_glm(
                Z[train],
                Yt[train],
                float(alpha) * inverse_lam.expand(-1, n_targets),
                self.link,
                coef,
                intercept,
                int(self.max_iter),
            )
            rate, _ = _link(Z[val] @ coef + intercept, self.link)
            deviances.append(_poisson_deviance_per_target(Y[val.numpy()], rate.numpy()))
            solutions.append((coef, intercept))
        self.validation_deviance_ = np.asarray(deviances)
        best = np.argmin(self.validation_deviance_, axis=0)
        self.alpha_ = alphas[best]
        start_coef = torch.stack([solutions[b][0][:, k] for k, b in enumerate(best)], dim=1)
        start_intercept = torch.stack([solutions[b][1][k] for k, b in enumerate(best)])
        coef, intercept = _fit_poisson_glm(
            Z,
            Yt,
            inverse_lam * torch.from_numpy(self.alpha_.astype(np.float64))[None, :],
            self.link,
            start_coef,
            start_intercept,
            int(self.max_iter),
        )
        reduced = whitening @ coef.numpy()  # coefficients on the features lum @ basis
        pixel_filter = self._basis @ reduced  # (H*W, n_targets)
        self.coef_ = (self._vt.T @ reduced).T  # Gabor coefficients (minimum-norm)
        self.intercept_ = intercept.numpy() - lum.mean(axis=0) @ pixel_filter
        self.filter_ = pixel_filter.T.reshape(n_targets, *self.filter_bank_.image_shape_)
        return self

    def predict(self, X) -> np.ndarray:
        """Predicted rates.

        Parameters
        ----------
        X : array_like, shape (n_images, H, W) or (n_images, H, W, C)

        Returns
        -------
        ndarray, shape (n_images,) or (n_images, n_neurons)
        """
        check_is_fitted(self, "coef_")
        lum = self.filter_bank_._check_images(X).reshape(len(X), -1).astype(np.float64)
        eta = torch.from_numpy(
            lum @ self.filter_.reshape(len(self.filter_), -1).T + self.intercept_
        )
        rate = _link(eta, self.link)[0].numpy()
        return rate[:, 0] if self._single_output else rate


# ============================================================================================
# Gabor energy model
# ============================================================================================
class GaborEnergyModel(RegressorMixin, BaseEstimator):
    """Gabor filter bank with simple and energy terms, ridge readout, fitted output nonlinearity.

    A classical filter-bank model of V1 (not the Berkeley Wavelet Transform that the lecture's
    39 % refers to): features of a :class:`GaborFilterBank` with
    ``kind="both"`` (half-rectified simple-cell responses and quadrature energies), standardised,
    a ridge regression per neuron (penalty chosen per neuron by efficient leave-one-out
    cross-validation, :class:`sklearn.linear_model.RidgeCV`) and, optionally, a monotone output
    nonlinearity per neuron fitted by isotonic regression of the responses on the
    *leave-one-out* ridge predictions (so that the nonlinearity is not fitted to overfitted
    in-sample predictions). Cadena et al. (2019) read out a similar bank with a sparse linear
    layer and an ELU output.

    Parameters
    ----------
    filter_bank : GaborFilterBank or None
        Template (cloned; its ``kind`` is set to "both"). None uses the default bank.
    alphas : sequence of float, default=np.logspace(-1, 6, 15)
        Candidate ridge penalties.
    output_nonlinearity : bool, default=True
        Fit the monotone output nonlinearity.

    Attributes
    ----------
    filter_bank_ : GaborFilterBank
    scaler_ : sklearn.preprocessing.StandardScaler
    ridge_ : sklearn.linear_model.RidgeCV
        ``ridge_.alpha_`` holds the penalty of each neuron.
    nonlinearities_ : list of sklearn.isotonic.IsotonicRegression or None
        One per neuron (None when ``output_nonlinearity=False``).
    """

    def __init__(
        self,
        filter_bank: GaborFilterBank | None = None,
        alphas: Sequence[float] = tuple(np.logspace(-1, 6, 15)),
        output_nonlinearity: bool = True,
    ):
        self.filter_bank = filter_bank
        self.alphas = alphas
        self.output_nonlinearity = output_nonlinearity

    def fit(self, X, y):
        """Fit the readout (and output nonlinearity) of every neuron.

        Parameters
        ----------
        X : array_like, shape (n_images, H, W) or (n_images, H, W, C)
        y : array_like, shape (n_images,) or (n_images, n_neurons)

        Returns
        -------
        self
        """
        alphas = _check_positive_sequence("alphas", self.alphas)
        X = np.asarray(X)
        Y, self._single_output = _check_targets(y, len(X), nonnegative=False)
        self.filter_bank_ = _default_bank(self.filter_bank, "both").fit(X)
        features = self.filter_bank_.transform(X)
        self.scaler_ = StandardScaler().fit(features)
        features = self.scaler_.transform(features)
        self.ridge_ = RidgeCV(
            alphas=alphas, alpha_per_target=True, store_cv_results=bool(self.output_nonlinearity)
        ).fit(features, Y)
        self.nonlinearities_ = None
        if self.output_nonlinearity:
            loo = self._leave_one_out_predictions(features, Y, alphas)
            self.nonlinearities_ = [
                IsotonicRegression(increasing=True, out_of_bounds="clip").fit(loo[:, k], Y[:, k])
                for k in range(Y.shape[1])
            ]
            del self.ridge_.cv_results_
        return self

    def _leave_one_out_predictions(self, features, Y, alphas) -> np.ndarray:
        """LOO predictions at each neuron's chosen penalty.

        RidgeCV stores the squared leave-one-out errors; a LOO residual has the sign of the
        in-sample residual (it is that residual divided by ``1 - h_ii`` > 0).
        """
        squared = self.ridge_.cv_results_.reshape(len(Y), Y.shape[1], len(alphas))
        chosen = np.argmin(np.abs(alphas[None, :] - np.atleast_1d(self.ridge_.alpha_)[:, None]), 1)
        loo_sq = squared[:, np.arange(Y.shape[1]), chosen]
        residual = Y - self.ridge_.predict(features).reshape(Y.shape)
        return Y - np.sign(residual) * np.sqrt(loo_sq)

    def predict(self, X) -> np.ndarray:
        """Predicted responses.

        Parameters
        ----------
        X : array_like, shape (n_images, H, W) or (n_images, H, W, C)

        Returns
        -------
        ndarray, shape (n_images,) or (n_images, n_neurons)
        """
        check_is_fitted(self, "ridge_")
        features = self.scaler_.transform(self.filter_bank_.transform(X))
        pred = self.ridge_.predict(features).reshape(len(features), -1)
        if self.nonlinearities_ is not None:
            pred = np.stack(
                [nl.predict(pred[:, k]) for k, nl in enumerate(self.nonlinearities_)], axis=1
            )
        return pred[:, 0] if self._single_output else pred


# ============================================================================================
# Retina LN model
# ============================================================================================
_RETINA_NONLINEARITIES = ("binned", "softplus", "exp")


def _check_movie(movie, name: str = "movie") -> np.ndarray:
    arr = np.asarray(movie)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}.")
    if arr.ndim != 3:
        raise ValueError(f"{name} must have shape (n_frames, H, W), got shape {arr.shape}.")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf values.")
    return arr


class RetinaLNModel(BaseEstimator):
    """Linear-nonlinear model of retinal ganglion cells: STA filter + fitted static nonlinearity.

    1. **Linear filter**: the spike-triggered average
       (:func:`course_tools.retina.spike_triggered_average`), normalised to unit norm; the
       *generator signal* ``g_t = sum_l sum_xy filter[l, y, x] * movie[t - l, y, x]`` is
       standardised on the training movie.
    2. **Static nonlinearity** ``rate_t = f(g_t)``:

       - ``"binned"``: mean count in ``n_bins`` quantile bins of ``g``, made monotone
         increasing (isotonic regression) and linearly interpolated between bin centres
         (clipped outside); nonparametric, as in Chichilnisky (2001);
       - ``"softplus"``: ``a * softplus(b g + c)`` fitted by Poisson likelihood;
       - ``"exp"``: ``exp(b g + c)`` (a Poisson GLM on ``g``).

    Time alignment: a prediction for bin ``t`` uses frames ``t - n_lags + 1 ... t``, so
    :meth:`predict` returns ``n_frames - n_lags + 1`` rows aligned with
    ``counts[n_lags - 1:]`` (the same samples as
    :func:`course_tools.models.sysid.make_lagged_movie`).

    Parameters
    ----------
    n_lags : int, default=40
        Filter length in frames (400 ms at 100 Hz).
    nonlinearity : {"binned", "softplus", "exp"}, default="binned"
    n_bins : int, default=20
        Bins of the "binned" nonlinearity.

    Attributes
    ----------
    filter_ : ndarray, shape (n_cells, n_lags, H, W)
        Unit-norm STA filters; ``filter_[:, l]`` weighs the frame ``l`` bins before the response.
    generator_mean_, generator_std_ : ndarray, shape (n_cells,)
        Standardisation of the generator signal on the training movie.
    nonlinearity_params_ : list
        Per cell: ``(centres, values)`` arrays for "binned", ``(a, b, c)`` for "softplus",
        ``(b, c)`` for "exp".

    References
    ----------
    Chichilnisky, E. J. (2001). A simple white noise analysis of neuronal light responses.
    Network 12(2): 199-213.
    """

    def __init__(self, n_lags: int = 40, nonlinearity: str = "binned", n_bins: int = 20):
        self.n_lags = n_lags
        self.nonlinearity = nonlinearity
        self.n_bins = n_bins

    def _raw_generator(self, movie: np.ndarray) -> np.ndarray:
        n_frames = len(movie)
        if n_frames < self.n_lags:
            raise ValueError(
                f"the movie has {n_frames} frames, fewer than n_lags={self.n_lags}; pass a "
                "longer movie."
            )
        n_cells = len(self.filter_)
        flat = movie.reshape(n_frames, -1) - self._mean_frame
        projections = flat @ self.filter_.reshape(n_cells * self.n_lags, -1).T
        projections = projections.reshape(n_frames, n_cells, self.n_lags)
        n_valid = n_frames - self.n_lags + 1
        g = np.zeros((n_valid, n_cells))
        for lag in range(self.n_lags):
            start = self.n_lags - 1 - lag
            g += projections[start : start + n_valid, :, lag]
        return g

    def fit(self, movie, counts):
        """Estimate the filters and nonlinearities.

        Parameters
        ----------
        movie : array_like, shape (n_frames, H, W)
        counts : array_like, shape (n_frames,) or (n_frames, n_cells)
            Spike counts per frame, aligned with ``movie``.

        Returns
        -------
        self
        """
        from course_tools.retina import spike_triggered_average

        if self.nonlinearity not in _RETINA_NONLINEARITIES:
            raise ValueError(
                f"nonlinearity must be one of {_RETINA_NONLINEARITIES}, got {self.nonlinearity!r}."
            )
        if not isinstance(self.n_bins, numbers.Integral) or self.n_bins < 2:
            raise ValueError(f"n_bins must be an integer >= 2, got {self.n_bins!r}.")
        if not isinstance(self.n_lags, numbers.Integral) or self.n_lags < 1:
            raise ValueError(f"n_lags must be a positive integer, got {self.n_lags!r}.")
        movie = _check_movie(movie)
        Y, self._single_output = _check_targets(
            counts, len(movie), nonnegative=True, names=("movie", "counts", "frame")
        )
        sta = spike_triggered_average(movie, Y, n_lags=int(self.n_lags))  # (cells, lags, H, W)
        silent = np.flatnonzero(
            ~np.isfinite(sta).all(axis=(1, 2, 3)) | (Y[self.n_lags - 1 :].sum(0) == 0)
        )
        if silent.size:
            raise ValueError(
                f"cells {silent.tolist()} have no spikes after the first n_lags - 1 frames, so "
                "their spike-triggered average is undefined; drop them or record longer."
            )
        norms = np.linalg.norm(sta.reshape(len(sta), -1), axis=1)
        self.filter_ = sta / norms[:, None, None, None]
        self._mean_frame = movie.reshape(len(movie), -1).mean(axis=0)
        g = self._raw_generator(movie)
        self.generator_mean_ = g.mean(axis=0)
        self.generator_std_ = np.where(g.std(axis=0) > 0, g.std(axis=0), 1.0)
        g = (g - self.generator_mean_) / self.generator_std_
        y = Y[self.n_lags - 1 :]
        self.nonlinearity_params_ = [
            self._fit_nonlinearity(g[:, k], y[:, k]) for k in range(y.shape[1])
        ]
        return self

    def _fit_nonlinearity(self, g: np.ndarray, y: np.ndarray):
        if self.nonlinearity == "binned":
            edges = np.quantile(g, np.linspace(0, 1, self.n_bins + 1))
            which = np.clip(np.searchsorted(edges, g, side="right") - 1, 0, self.n_bins - 1)
            counts = np.bincount(which, minlength=self.n_bins)
            used = counts > 0
            centres = np.bincount(which, weights=g, minlength=self.n_bins)[used] / counts[used]
            means = np.bincount(which, weights=y, minlength=self.n_bins)[used] / counts[used]
            values = IsotonicRegression(increasing=True).fit_transform(
                centres, means, sample_weight=counts[used]
            )
            return centres, values
        mean_y = max(float(y.mean()), 1e-6)

        if self.nonlinearity == "exp":

            def loss(p):
                eta = np.clip(p[0] * g + p[1], -50, 30)
                rate = np.exp(eta)
                grad_eta = rate - y
                return (rate - y * eta).mean(), np.array([(grad_eta * g).mean(), grad_eta.mean()])

            result = minimize(loss, np.array([0.0, np.log(mean_y)]), jac=True, method="L-BFGS-B")
            return tuple(result.x)

        def loss(p):
            log_a, b, c = p
            eta = b * g + c
            soft = np.logaddexp(0.0, eta)
            rate = np.exp(log_a) * soft + 1e-12
            sig = 0.5 * (1 + np.tanh(eta / 2))
            d_rate = 1 - y / rate
            value = (rate - y * np.log(rate)).mean()
            grad = np.array(
                [
                    (d_rate * (rate - 1e-12)).mean(),
                    (d_rate * np.exp(log_a) * sig * g).mean(),
                    (d_rate * np.exp(log_a) * sig).mean(),
                ]
            )
            return value, grad

        start = np.array([np.log(mean_y / np.log(2.0)), 1.0, 0.0])
        result = minimize(loss, start, jac=True, method="L-BFGS-B")
        log_a, b, c = result.x
        return float(np.exp(log_a)), float(b), float(c)

    def transform(self, movie) -> np.ndarray:
        """Standardised generator signals.

        Parameters
        ----------
        movie : array_like, shape (n_frames, H, W)

        Returns
        -------
        ndarray, shape (n_frames - n_lags + 1, n_cells)
        """
        check_is_fitted(self, "filter_")
        movie = _check_movie(movie)
        if movie.shape[1:] != self.filter_.shape[2:]:
            raise ValueError(
                f"movie frames are {movie.shape[1:]} but the model was fitted on "
                f"{self.filter_.shape[2:]} frames."
            )
        return (self._raw_generator(movie) - self.generator_mean_) / self.generator_std_

    def apply_nonlinearity(self, generator) -> np.ndarray:
        """Evaluate each cell's static nonlinearity.

        Parameters
        ----------
        generator : array_like, shape (n_samples, n_cells)
            Standardised generator signals (e.g. from :meth:`transform`, or a grid for a plot).

        Returns
        -------
        ndarray, shape (n_samples, n_cells)
            Predicted spike counts per bin.
        """
        check_is_fitted(self, "nonlinearity_params_")
        g = np.asarray(generator, dtype=np.float64)
        if g.ndim == 1:
            g = g[:, None]
        if g.shape[1] != len(self.nonlinearity_params_):
            raise ValueError(
                f"generator has {g.shape[1]} columns but the model has "
                f"{len(self.nonlinearity_params_)} cells."
            )
        out = np.empty_like(g)
        for k, params in enumerate(self.nonlinearity_params_):
            if self.nonlinearity == "binned":
                centres, values = params
                out[:, k] = np.interp(g[:, k], centres, values)
            elif self.nonlinearity == "exp":
                b, c = params
                out[:, k] = np.exp(np.clip(b * g[:, k] + c, -50, 30))
            else:
                a, b, c = params
                out[:, k] = a * np.logaddexp(0.0, b * g[:, k] + c)
        return out

    def predict(self, movie) -> np.ndarray:
        """Predicted spike count per bin.

        Parameters
        ----------
        movie : array_like, shape (n_frames, H, W)

        Returns
        -------
        ndarray, shape (n_frames - n_lags + 1,) or (n_frames - n_lags + 1, n_cells)
            Row ``i`` predicts bin ``i + n_lags - 1``.
        """
        rate = self.apply_nonlinearity(self.transform(movie))
        return rate[:, 0] if self._single_output else rate
