"""Simulated retinal ganglion cells (LN-LN subunit cascades) with known ground truth.

Each ganglion cell pools rectified bipolar-like subunits, the model class that explains
nonlinear spatial summation in the retina (Hochstein & Shapley 1976; Gollisch & Meister 2010)
and that McIntosh et al. (2016) found CNNs to capture better than LN models:

1. **Subunits.** A hexagonal patch of ``n_subunits`` small Gaussian receptive fields tiles the
   cell's centre. Each subunit filters the movie with its spatial Gaussian (unit sum) and the
   cell's biphasic temporal filter (``n_lags`` bins of 10 ms) and half-rectifies the result:
   ``s_k(t) = relu(u_k(t) - threshold_k)``, with ``u_k`` in units of the SD of the cell's
   subunit drives on the training movie.
2. **Amacrine-like surround.** A wide Gaussian (unit sum, same units) with a slower temporal
   filter, rectified, is subtracted: ``g(t) = sum_k w_k s_k(t) - w_a a(t)`` (``sum_k w_k = 1``),
   so a full-field flash drives the centre more than the surround.
3. **Spiking.** ``rate(t) = r_max * tanh(A * softplus(gain * z(t) + bias) / r_max)`` with
   ``z`` the standardised ``g``: a softplus nonlinearity with a soft ceiling ``r_max``
   (150-250 spikes/s); ``A`` sets each cell's mean rate on the training movie. Spike counts in
   10 ms bins are Poisson.

ON cells are driven by light increments, OFF cells (polarity -1) by decrements. All
standardisations and calibrations use the training movie and are applied unchanged to the
test movie, so the test responses are predictions of the same cells.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.signal import fftconvolve

from course_tools.datasets.core import NeuralDataset, RetinaRecording
from course_tools.seeding import SeedLike, check_random_state

__all__ = ["BIN_SECONDS", "simulated_retina"]

#: Duration of one time bin (and one movie frame), seconds.
BIN_SECONDS = 0.01


def simulated_retina(
    train_movie,
    test_movie=None,
    *,
    n_cells: int = 8,
    n_test_repeats: int = 5,
    n_train_repeats: int = 1,
    seed: SeedLike = 0,
    n_lags: int = 40,
    on_fraction: float = 0.25,
    mean_rate_hz: tuple[float, float] = (10.0, 30.0),
    n_subunits: int = 19,
    surround: bool = True,
) -> RetinaRecording:
    """Simulate ganglion-cell spike counts to a training movie and a repeated test movie.

    Parameters
    ----------
    train_movie : ndarray, shape (n_frames, H, W)
        Frames at 100 Hz (one frame per 10 ms bin), float (any range) or uint8. Shown
        ``n_train_repeats`` times (usually once, long). Its global mean and SD define the
        contrast scale for both movies.
    test_movie : ndarray, shape (n_test_frames, H, W) or None
        Frames of the repeated test stimulus (usually short), same H and W. None: no test set.
    n_cells : int, default=8
        Number of ganglion cells, centred within 8 % of the frame size from the centre.
    n_test_repeats : int, default=5
        Repeats of the test movie (independent Poisson spikes, same noise-free rate).
    n_train_repeats : int, default=1
        Repeats of the training movie.
    seed : int or numpy.random.Generator, default=0
        Same seed, same cells and same spikes.
    n_lags : int, default=40
        Length of the temporal filters in bins (40 = 400 ms, as the McIntosh CNN's input).
    on_fraction : float, default=0.25
        Fraction of ON cells (the rest are OFF; OFF cells dominate salamander recordings).
    mean_rate_hz : (low, high), default=(10, 30)
        Each cell's mean firing rate on the training movie, drawn uniformly, in spikes/s.
    n_subunits : int, default=19
        Subunits per cell, taken from a hexagonal patch (1, 7, 19 or 37 fill complete rings).
    surround : bool, default=True
        Include the amacrine-like inhibitory surround.

    Returns
    -------
    RetinaRecording
        ``.train`` and ``.test`` :class:`NeuralDataset` (``.test`` is None without a test
        movie). ``responses`` are spike counts ``(n_repeats, n_frames, n_cells)``; the
        stimulus index is the 10 ms time bin and ``stimuli`` the frames; ``stimulus_meta``
        has ``frame`` and ``time`` (s). ``neuron_meta`` columns: ``area`` ("RGC"),
        ``cell_type`` ("ON"/"OFF"), ``x``, ``y`` (centre, pixels), ``centre_sd`` (pixels),
        ``mean_rate_hz``, ``max_rate_hz``, ``surround_weight``, ``spike_gain``.
        ``ground_truth`` of each set:

        - ``rates`` (n_frames, n_cells): noise-free expected spike count per bin;
        - ``linear_filter`` (n_cells, n_lags, H, W): the cell's effective linear front end,
          lag ``l`` = frame ``l`` bins before the response bin (0 = same bin); it is the model
          with every rectifier replaced by its mean slope on the training movie (the fraction
          of time it is active), i.e. what a spike-triggered average estimates up to scale
          under white noise;
        - ``subunit_filters`` (n_cells, n_subunits, H, W) spatial subunit receptive fields
          (unit sum), ``subunit_centres`` (n_cells, n_subunits, 2) as (x, y) pixels;
        - ``temporal_filters`` (n_cells, n_lags) of the subunits,
          ``surround_filters`` (n_cells, H, W), ``surround_temporal_filters``
          (n_cells, n_lags);
        - ``pooling_weights`` (n_cells, n_subunits), ``subunit_thresholds``
          (n_cells, n_subunits);
        - ``params``: DataFrame of the per-cell parameters; ``axes``: see
          :class:`NeuralDataset`.

    Notes
    -----
    The movie before frame 0 is taken to be the mean gray, so the first ``n_lags - 1``
    bins see a partial history; models with ``n_lags`` frames of input usually drop them.
    Sizes for the course: a 50 x 50 movie, 3000-5000 training frames (30-50 s), a 500-1000
    frame test movie with 5-10 repeats and 5-10 cells. One epoch of a McIntosh-style CNN
    (40 frames as input channels, 8 filters of 15 x 15, 8 of 11 x 11, dense readout) over
    5000 windows of 50 x 50 pixels costs about 70 s of one CPU core. Cell centres lie within
    8 % of the frame size from the frame centre, so their receptive-field centres (2 SDs)
    fit a central 30 x 30 pixel crop, which cuts the cost about 5-fold but clips the wide
    surrounds (SD 2.5-3.5 centre SDs).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> rec = simulated_retina(rng.normal(size=(2000, 50, 50)), rng.normal(size=(300, 50, 50)),
    ...                        n_cells=4, seed=0)
    >>> rec.train.responses.shape, rec.test.responses.shape
    ((1, 2000, 4), (5, 300, 4))
    """
    train = _check_movie(train_movie, "train_movie")
    test = None if test_movie is None else _check_movie(test_movie, "test_movie")
    height, width = train.shape[1:]
    if test is not None and test.shape[1:] != (height, width):
        raise ValueError(
            f"test_movie frames must have the size of the training frames {(height, width)}, "
            f"got {test.shape[1:]}."
        )
    for label, value in (
        ("n_cells", n_cells),
        ("n_test_repeats", n_test_repeats),
        ("n_train_repeats", n_train_repeats),
        ("n_subunits", n_subunits),
    ):
        if not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{label} must be a positive integer, got {value!r}.")
    if not isinstance(n_lags, int | np.integer) or not 2 <= n_lags <= train.shape[0]:
        raise ValueError(
            f"n_lags must be an integer between 2 and the number of training frames "
            f"({train.shape[0]}), got {n_lags!r}."
        )
    if not 0.0 <= on_fraction <= 1.0:
        raise ValueError(f"on_fraction must lie in [0, 1], got {on_fraction}.")
    lo, hi = mean_rate_hz
    if not 0 < lo <= hi < 1.0 / BIN_SECONDS:
        raise ValueError(
            f"mean_rate_hz must satisfy 0 < low <= high < {1 / BIN_SECONDS:.0f}, "
            f"got {mean_rate_hz}."
        )
    rng = check_random_state(seed)

    # contrast scale of the training movie, applied to both movies
    offset, scale = float(train.mean()), float(train.std())
    if scale == 0:
        raise ValueError("train_movie is uniform (zero contrast); the cells would not respond.")
    train = (train - offset) / scale
    if test is not None:
        test = (test - offset) / scale

    cells = _draw_cells(
        int(n_cells),
        height,
        width,
        int(n_lags),
        int(n_subunits),
        on_fraction,
        mean_rate_hz,
        surround,
        rng,
    )
    model = _CellModel(cells, height, width)
    model.calibrate(train)

    recording_train = _dataset(
        model.rates(train), int(n_train_repeats), train_movie, model, rng, "train"
    )
    recording_test = None
    if test is not None:
        recording_test = _dataset(
            model.rates(test), int(n_test_repeats), test_movie, model, rng, "test"
        )
    return RetinaRecording(train=recording_train, test=recording_test)


# ------------------------------------------------------------------ the cells
def _check_movie(movie, label: str) -> np.ndarray:
    arr = np.asarray(movie)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{label} must be a numeric array, got dtype {arr.dtype}.")
    if arr.ndim != 3:
        hint = " Convert colour frames to luminance first." if arr.ndim == 4 else ""
        raise ValueError(f"{label} must have shape (n_frames, H, W), got {arr.shape}.{hint}")
    if min(arr.shape[1:]) < 10:
        raise ValueError(f"{label} frames must be at least 10 x 10 pixels, got {arr.shape[1:]}.")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{label} contains NaN or inf values.")
    return arr


def _hexagonal_offsets(n: int) -> np.ndarray:
    """The ``n`` points of a unit-spacing hexagonal lattice nearest the origin, shape (n, 2)."""
    rings = int(np.ceil(np.sqrt(n))) + 1
    i, j = np.meshgrid(np.arange(-rings, rings + 1), np.arange(-rings, rings + 1))
    pts = np.stack([i + 0.5 * j, j * np.sqrt(3) / 2], axis=-1).reshape(-1, 2)
    order = np.lexsort((np.arctan2(pts[:, 1], pts[:, 0]), np.round(np.hypot(*pts.T), 6)))
    return pts[order[:n]]


def _biphasic(n_lags: int, tau: np.ndarray, ratio: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Unit-norm biphasic temporal filters, shape (n, n_lags); lag 0 = the current bin."""
    t = np.arange(n_lags)[None, :].astype(np.float64)
    fast = (t / tau[:, None]) ** 3 * np.exp(-t / tau[:, None])
    slow_tau = (tau * ratio)[:, None]
    slow = (t / slow_tau) ** 3 * np.exp(-t / slow_tau)
    f = fast / fast.sum(axis=1, keepdims=True) - weight[:, None] * slow / slow.sum(
        axis=1, keepdims=True
    )
    return f / np.linalg.norm(f, axis=1, keepdims=True)


def _gaussians(height, width, cx, cy, sd) -> np.ndarray:
    """Unit-sum isotropic Gaussians, shape (n, H*W)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    g = np.exp(
        -((xx[None] - cx[:, None, None]) ** 2 + (yy[None] - cy[:, None, None]) ** 2)
        / (2 * sd[:, None, None] ** 2)
    )
    g = g.reshape(len(cx), -1)
    return g / g.sum(axis=1, keepdims=True)


def _draw_cells(n, height, width, n_lags, n_sub, on_fraction, mean_rate_hz, surround, rng) -> dict:
    extent = min(height, width)
    n_on = int(round(on_fraction * n))
    polarity = np.where(np.arange(n) < n_on, 1.0, -1.0)
    rng.shuffle(polarity)
    centre_sd = rng.uniform(0.05, 0.07, n) * extent
    cx = (width - 1) / 2 + rng.uniform(-0.08, 0.08, n) * extent
    cy = (height - 1) / 2 + rng.uniform(-0.08, 0.08, n) * extent
    spacing = 0.8 * centre_sd
    offsets = _hexagonal_offsets(n_sub)  # (n_sub, 2)
    rotation = rng.uniform(0, np.pi / 3, n)
    rot = np.stack([np.cos(rotation), -np.sin(rotation), np.sin(rotation), np.cos(rotation)], -1)
    rot = rot.reshape(n, 2, 2)
    jitter = rng.normal(0, 0.1, (n, n_sub, 2))
    sub_xy = np.einsum("cij,ckj->cki", rot, offsets[None] + jitter) * spacing[:, None, None]
    sub_xy += np.stack([cx, cy], axis=-1)[:, None, :]
    dist2 = ((sub_xy - np.stack([cx, cy], -1)[:, None]) ** 2).sum(-1)
    weights = np.exp(-dist2 / (2 * centre_sd[:, None] ** 2)) * rng.lognormal(0, 0.25, (n, n_sub))
    tau = rng.uniform(1.4, 2.2, n)  # fast lobe peaks at 3 tau: 40-65 ms
    temporal = _biphasic(n_lags, tau, rng.uniform(1.6, 2.2, n), rng.uniform(0.6, 0.9, n))
    surround_temporal = _biphasic(
        n_lags, 1.3 * tau, rng.uniform(1.6, 2.2, n), rng.uniform(0.4, 0.7, n)
    )
    return {
        "polarity": polarity,
        "cx": cx,
        "cy": cy,
        "centre_sd": centre_sd,
        "subunit_sd": 0.45 * centre_sd,
        "subunit_xy": sub_xy,
        "weights": weights / weights.sum(axis=1, keepdims=True),
        "thresholds": rng.uniform(0.0, 0.5, (n, n_sub)),
        "temporal": temporal,
        "surround_sd": rng.uniform(2.5, 3.5, n) * centre_sd,
        "surround_temporal": surround_temporal,
        "surround_weight": rng.uniform(0.3, 0.6, n) if surround else np.zeros(n),
        "spike_gain": rng.uniform(1.2, 2.5, n),
        "spike_bias": rng.uniform(-2.0, -1.0, n),
        "mean_rate_hz": rng.uniform(*mean_rate_hz, n),
        "max_rate_hz": rng.uniform(150.0, 250.0, n),
    }


class _CellModel:
    """The LN-LN cascade of every cell; calibrate once on the training movie, then run."""

    def __init__(self, cells: dict, height: int, width: int):
        self.cells = cells
        self.shape = (height, width)
        n, n_sub = cells["weights"].shape
        xy = cells["subunit_xy"].reshape(-1, 2)
        sub_sd = np.repeat(cells["subunit_sd"], n_sub)
        self.subunit_space = _gaussians(height, width, xy[:, 0], xy[:, 1], sub_sd)  # (n*n_sub, HW)
        self.surround_space = _gaussians(
            height, width, cells["cx"], cells["cy"], cells["surround_sd"]
        )
        self.n, self.n_sub = n, n_sub

    def _drives(self, movie: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Linear subunit drives (T, n, n_sub) and surround drives (T, n), before scaling."""
        c = self.cells
        frames = movie.reshape(movie.shape[0], -1)
        spatial_sub = frames @ self.subunit_space.T  # (T, n*n_sub)
        spatial_sur = frames @ self.surround_space.T  # (T, n)
        kernel_sub = np.repeat(c["temporal"], self.n_sub, axis=0).T  # (n_lags, n*n_sub)
        sub = fftconvolve(spatial_sub, kernel_sub, axes=0)[: movie.shape[0]]
        sur = fftconvolve(spatial_sur, c["surround_temporal"].T, axes=0)[: movie.shape[0]]
        sub = sub.reshape(-1, self.n, self.n_sub) * c["polarity"][None, :, None]
        sur = sur * c["polarity"][None, :]
        return sub, sur

    def calibrate(self, movie: np.ndarray) -> None:
        c = self.cells
        sub, sur = self._drives(movie)
        # one contrast scale per cell: the SD of its subunit drives on the training movie;
        # centre and surround share it, so their balance is the physical one
        scale = np.maximum(sub.std(axis=(0, 2)), np.finfo(float).tiny)
        self.sub_sd, self.sur_sd = scale[:, None], scale
        sub, sur = sub / self.sub_sd, sur / self.sur_sd
        self.sub_slope = (sub > c["thresholds"]).mean(axis=0)  # mean slope of each rectifier
        self.sur_slope = (sur > 0).mean(axis=0)
        g = self._generator(sub, sur)
        self.g_mean, self.g_sd = g.mean(axis=0), np.maximum(g.std(axis=0), np.finfo(float).tiny)
        z = (g - self.g_mean) / self.g_sd
        drive = _softplus(c["spike_gain"] * z + c["spike_bias"])
        self.amplitude = np.array(
            [
                _solve_amplitude(drive[:, i], target * BIN_SECONDS, ceiling * BIN_SECONDS)
                for i, (target, ceiling) in enumerate(
                    zip(c["mean_rate_hz"], c["max_rate_hz"], strict=True)
                )
            ]
        )

    def _generator(self, sub: np.ndarray, sur: np.ndarray) -> np.ndarray:
        c = self.cells
        pooled = (np.maximum(sub - c["thresholds"], 0.0) * c["weights"]).sum(axis=-1)
        return pooled - c["surround_weight"] * np.maximum(sur, 0.0)

    def rates(self, movie: np.ndarray) -> np.ndarray:
        """Noise-free expected spike count per bin, shape (T, n)."""
        c = self.cells
        sub, sur = self._drives(movie)
        g = self._generator(sub / self.sub_sd, sur / self.sur_sd)
        z = (g - self.g_mean) / self.g_sd
        return _saturate(
            self.amplitude * _softplus(c["spike_gain"] * z + c["spike_bias"]),
            c["max_rate_hz"] * BIN_SECONDS,
        )

    def linear_filters(self) -> np.ndarray:
        """Effective linear front end, shape (n, n_lags, H, W), rectifiers -> mean slopes."""
        c = self.cells
        h, w = self.shape
        space_sub = self.subunit_space.reshape(self.n, self.n_sub, h * w)
        centre = np.einsum("ck,ckp->cp", c["weights"] * self.sub_slope / self.sub_sd, space_sub)
        surround = (c["surround_weight"] * self.sur_slope / self.sur_sd)[
            :, None
        ] * self.surround_space
        filt = (
            centre[:, None, :] * c["temporal"][:, :, None]
            - surround[:, None, :] * c["surround_temporal"][:, :, None]
        )
        filt *= c["polarity"][:, None, None]
        return filt.reshape(self.n, -1, h, w)

    def params(self) -> pd.DataFrame:
        c = self.cells
        return pd.DataFrame(
            {
                "cell_type": np.where(c["polarity"] > 0, "ON", "OFF"),
                "x": c["cx"],
                "y": c["cy"],
                "centre_sd": c["centre_sd"],
                "subunit_sd": c["subunit_sd"],
                "surround_sd": c["surround_sd"],
                "surround_weight": c["surround_weight"],
                "spike_gain": c["spike_gain"],
                "spike_bias": c["spike_bias"],
                "mean_rate_hz": c["mean_rate_hz"],
                "max_rate_hz": c["max_rate_hz"],
                "amplitude": self.amplitude,
            }
        )


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _saturate(rate: np.ndarray, ceiling) -> np.ndarray:
    """Soft ceiling: about ``rate`` for low rates, never above ``ceiling``."""
    return ceiling * np.tanh(rate / ceiling)


def _solve_amplitude(drive: np.ndarray, target: float, ceiling: float) -> float:
    """The ``A`` with ``mean(_saturate(A * drive, ceiling)) == target`` (bisection)."""
    low, high = 0.0, target / max(drive.mean(), 1e-12)
    while _saturate(high * drive, ceiling).mean() < target:
        low, high = high, 2 * high
    return float(brentq(lambda a: _saturate(a * drive, ceiling).mean() - target, low, high))


def _dataset(rates, n_repeats, movie, model: _CellModel, rng, label: str) -> NeuralDataset:
    c = model.cells
    h, w = model.shape
    counts = rng.poisson(np.broadcast_to(rates, (n_repeats, *rates.shape))).astype(np.float64)
    params = model.params()
    neuron_meta = params[
        [
            "cell_type",
            "x",
            "y",
            "centre_sd",
            "mean_rate_hz",
            "max_rate_hz",
            "surround_weight",
            "spike_gain",
        ]
    ].copy()
    neuron_meta.insert(0, "area", "RGC")
    n_frames = rates.shape[0]
    stimulus_meta = pd.DataFrame(
        {"frame": np.arange(n_frames), "time": np.arange(n_frames) * BIN_SECONDS}
    )
    truth = {
        "rates": rates,
        "linear_filter": model.linear_filters().astype(np.float32),
        "subunit_filters": model.subunit_space.reshape(model.n, model.n_sub, h, w).astype(
            np.float32
        ),
        "subunit_centres": c["subunit_xy"],
        "temporal_filters": c["temporal"],
        "surround_filters": model.surround_space.reshape(model.n, h, w).astype(np.float32),
        "surround_temporal_filters": c["surround_temporal"],
        "pooling_weights": c["weights"],
        "subunit_thresholds": c["thresholds"],
        "params": params,
        "axes": {
            "rates": ("stimulus", "neuron"),
            "linear_filter": ("neuron", None, None, None),
            "subunit_filters": ("neuron", None, None, None),
            "subunit_centres": ("neuron", None, None),
            "temporal_filters": ("neuron", None),
            "surround_filters": ("neuron", None, None),
            "surround_temporal_filters": ("neuron", None),
            "pooling_weights": ("neuron", None),
            "subunit_thresholds": ("neuron", None),
            "params": ("neuron",),
        },
    }
    return NeuralDataset(
        responses=counts,
        stimuli=np.asarray(movie),
        stimulus_meta=stimulus_meta,
        neuron_meta=neuron_meta,
        ground_truth=truth,
        name=f"simulated_retina_{label}",
    )
