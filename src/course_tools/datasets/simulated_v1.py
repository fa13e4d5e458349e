"""A simulated macaque V1 population with known ground truth.

The population mixes the classical cell types that linear-nonlinear and energy models capture
with cell types whose nonlinearities they miss, so that the V1 chapter can ask which model
family predicts which neurons (Cadena et al. 2019, PLoS Comput Biol 15(4): e1006897).

Cell types (``neuron_meta["cell_type"]``), each a function of the image contrast ``x``:

``simple``
    Gabor linear-nonlinear cell: ``relu(g . x / sd - threshold) ** exponent``.
``complex``
    Energy model (Adelson & Bergen 1985): ``E ** exponent`` with
    ``E = (g_0 . x)^2 + (g_90 . x)^2`` from a quadrature pair of Gabors.
``divisive_normalization``
    Cross-orientation divisive normalisation (Heeger 1992; Carandini & Heeger 2012):
    ``E_pref / (c + w E_orth)``, ``E_orth`` the energy at the orthogonal orientation.
``surround_suppression``
    ``E_centre / (c + w E_surround)``, the surround an annulus of the same orientation
    (Cavanaugh, Bair & Movshon 2002).
``end_stopping``
    Hypercomplex cell (Hubel & Wiesel 1965): ``relu(E_centre - w (E_end1 + E_end2) / 2)``,
    the end zones displaced along the preferred bar axis.
``conjunction``
    Two-orientation conjunction (corner / curvature selectivity): ``sqrt(E_1 E_2)`` for two
    orientations 45-90 degrees apart at the same place.

Energies are divided by their mean over the image set before they are combined, so the
parameters (``c``, ``w``) are dimensionless.

Default mixture (:data:`DEFAULT_MIXTURE`): 25 % simple, 25 % complex and 50 % non-classical
cells split equally over the four non-classical types. Cadena et al. (2019) found that a
Gabor-filter-bank model with energy terms left much of real V1's explainable variance
unexplained while a CNN captured more, i.e. many real V1 cells have nonlinearities beyond
the energy model; the 50 % share mirrors that report. The mixture is a documented modelling
choice, not tuned to make any model win.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from course_tools.datasets.core import NeuralDataset
from course_tools.datasets.trial_noise import gamma_poisson_trials
from course_tools.seeding import SeedLike, check_random_state

__all__ = ["CELL_TYPES", "DEFAULT_MIXTURE", "simulated_v1"]

CELL_TYPES = (
    "simple",
    "complex",
    "divisive_normalization",
    "surround_suppression",
    "end_stopping",
    "conjunction",
)

#: Fraction of each cell type in :func:`simulated_v1` when ``mixture=None``.
DEFAULT_MIXTURE = {
    "simple": 0.25,
    "complex": 0.25,
    "divisive_normalization": 0.125,
    "surround_suppression": 0.125,
    "end_stopping": 0.125,
    "conjunction": 0.125,
}

_CHUNK = 2048  # images per matrix product, bounds memory for large images


def simulated_v1(
    images,
    *,
    n_neurons: int,
    n_repeats: int = 4,
    seed: SeedLike = 0,
    mixture: dict[str, float] | None = None,
    mean_rate: tuple[float, float] = (0.2, 1.0),
    gain_noise: tuple[float, float] = (0.4, 0.9),
    stimulus_meta: pd.DataFrame | None = None,
) -> NeuralDataset:
    """Simulate single-trial spike counts of a V1 population to a set of images.

    Parameters
    ----------
    images : ndarray, shape (n_images, H, W) float or (n_images, H, W, C) uint8
        Grayscale images (any float range) or uint8 RGB(A) images, converted to luminance
        (ITU-R BT.601 weights). Each image's mean luminance is removed (V1 sees contrast) and
        all images are divided by one common RMS contrast, so relative contrast is kept.
    n_neurons : int
        Number of simulated neurons.
    n_repeats : int, default=4
        Repeated presentations of every image (Cadena et al. 2019 used 2 to 4).
    seed : int or numpy.random.Generator, default=0
        Same seed, same neurons and same trials.
    mixture : dict of str to float or None
        Fraction of each cell type in :data:`CELL_TYPES`; fractions are normalised to sum to
        1 and turned into counts by largest remainder. None uses :data:`DEFAULT_MIXTURE`.
    mean_rate : (low, high), default=(0.2, 1.0)
        Each neuron's mean spike count per trial is drawn log-uniformly from this range.
    gain_noise : (low, high), default=(0.4, 0.9)
        Standard deviation of the trial-wise multiplicative gain (a Gamma variable with mean
        1), drawn uniformly per neuron. 0 gives pure Poisson spiking.
    stimulus_meta : pandas.DataFrame or None
        Metadata of the images (one row each), copied into the dataset.

    Returns
    -------
    NeuralDataset
        ``responses`` (n_repeats, n_images, n_neurons) spike counts (float);
        ``stimuli`` the input images; ``neuron_meta`` columns ``area`` ("V1"),
        ``cell_type``, ``orientation`` (preferred bar orientation, degrees in [0, 180),
        measured in pixel coordinates x = column, y = row), ``spatial_frequency``
        (cycles/pixel), ``phase`` (degrees), ``x``, ``y`` (receptive-field centre, pixels),
        ``size`` (Gaussian envelope SD, pixels), ``aspect_ratio``, ``mean_rate`` (spikes per
        trial), ``gain_noise_sd``. ``ground_truth`` holds:

        - ``rates`` (n_images, n_neurons): noise-free mean count per image;
        - ``noise_variance`` (n_neurons,): the true trial-to-trial variance averaged over
          images, ``mean(rate + gain_noise_sd**2 * rate**2)``;
        - ``fev`` (n_neurons,): the true explainable fraction
          ``var(rates) / (var(rates) + noise_variance)``;
        - ``receptive_fields`` (n_neurons, H, W): each neuron's preferred (even-phase
          for simple cells) Gabor filter;
        - ``params``: DataFrame of every generating parameter (NaN where not used);
        - ``mixture``: the cell-type fractions used; ``axes``: see :class:`NeuralDataset`.

    Notes
    -----
    Trial noise: ``count ~ Poisson(g * rate)`` with a gain ``g ~ Gamma(1/s^2, s^2)`` (mean 1,
    SD ``s`` = ``gain_noise_sd``) drawn independently for each trial, image and neuron.
    Rates are calibrated on the given image set (thresholds in units of the drive's SD,
    energies divided by their mean, mean count set to ``mean_rate``), so simulate all images
    (train and test) in one call and split the dataset with :meth:`NeuralDataset.select`.
    Receptive fields lie near the image centre (SD of position 4 % of the image size) with
    envelope SDs of 7-11 % of the image size.

    With the defaults and 3600 ``course_tools.stimuli.naturalistic_images`` of 40 x 40 px, the
    true explainable fraction (``ground_truth["fev"]``) has median 0.45 (10th-90th
    percentile 0.31-0.63; simple 0.53, complex 0.39, conjunction 0.30, other non-classical
    0.46-0.55), in the range of the V1 neurons of Cadena et al. (2019).

    Examples
    --------
    >>> import numpy as np
    >>> images = np.random.default_rng(0).normal(size=(200, 40, 40))
    >>> ds = simulated_v1(images, n_neurons=12, seed=1)
    >>> ds.responses.shape
    (4, 200, 12)
    """
    lum = _luminance(images)
    n_images, height, width = lum.shape
    if not isinstance(n_neurons, int | np.integer) or n_neurons < 1:
        raise ValueError(f"n_neurons must be a positive integer, got {n_neurons!r}.")
    if not isinstance(n_repeats, int | np.integer) or n_repeats < 1:
        raise ValueError(f"n_repeats must be a positive integer, got {n_repeats!r}.")
    _check_range("mean_rate", mean_rate, low=0.0, strict=True)
    _check_range("gain_noise", gain_noise, low=0.0, strict=False)
    fractions = _check_mixture(mixture)
    rng = check_random_state(seed)

    contrast = lum - lum.mean(axis=(1, 2), keepdims=True)
    rms = np.sqrt(np.mean(contrast**2))
    if rms == 0:
        raise ValueError("All images are uniform (zero contrast); V1 neurons would not respond.")
    contrast = (contrast / rms).reshape(n_images, -1)

    cell_types = _allocate(fractions, int(n_neurons))
    params = _draw_params(cell_types, height, width, rng, mean_rate, gain_noise)
    bank, owners, roles = _filter_bank(params, height, width)
    drives = _project(contrast, bank)  # (n_images, n_filters)
    raw = _nonlinear_responses(params, drives, owners, roles)  # (n_images, n_neurons)

    mean_raw = raw.mean(axis=0)
    flat = mean_raw <= 0
    raw[:, flat] = 1.0  # a neuron that never fires above threshold keeps a constant rate
    mean_raw[flat] = 1.0
    base = params["spontaneous_rate"].to_numpy()
    mu = params["mean_rate"].to_numpy()
    rates = base + (mu - base) * raw / mean_raw

    gain_sd = params["gain_noise_sd"].to_numpy()
    responses, noise_variance, fev = gamma_poisson_trials(rates, gain_sd, n_repeats, rng)

    meta_cols = [
        "cell_type",
        "orientation",
        "spatial_frequency",
        "phase",
        "x",
        "y",
        "size",
        "aspect_ratio",
        "mean_rate",
        "gain_noise_sd",
    ]
    neuron_meta = params[meta_cols].copy()
    neuron_meta.insert(0, "area", "V1")
    receptive_fields = bank[np.flatnonzero(roles == "centre_0")].reshape(-1, height, width)
    ground_truth = {
        "rates": rates,
        "noise_variance": noise_variance,
        "fev": fev,
        "receptive_fields": receptive_fields.astype(np.float32),
        "params": params,
        "mixture": fractions,
        "axes": {
            "rates": ("stimulus", "neuron"),
            "noise_variance": ("neuron",),
            "fev": ("neuron",),
            "receptive_fields": ("neuron", None, None),
            "params": ("neuron",),
        },
    }
    return NeuralDataset(
        responses=responses,
        stimuli=np.asarray(images),
        stimulus_meta=stimulus_meta,
        neuron_meta=neuron_meta,
        ground_truth=ground_truth,
        name="simulated_v1",
    )


# ----------------------------------------------------------------- validation
def _luminance(images) -> np.ndarray:
    arr = np.asarray(images)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"images must be a numeric array, got dtype {arr.dtype}.")
    if arr.ndim == 4:
        channels = arr.shape[-1]
        if channels not in (1, 3, 4):
            raise ValueError(
                f"images of shape (n, H, W, C) need C = 1, 3 or 4 channels, got shape "
                f"{arr.shape}. Channels-first arrays (n, C, H, W) must be transposed: "
                "images.transpose(0, 2, 3, 1)."
            )
        scale = 255.0 if arr.dtype == np.uint8 else 1.0
        arr = arr.astype(np.float64) / scale
        luminance_weights = np.array([0.299, 0.587, 0.114])
        lum = arr[..., 0] if channels == 1 else arr[..., :3] @ luminance_weights
    elif arr.ndim == 3:
        lum = arr.astype(np.float64) / (255.0 if arr.dtype == np.uint8 else 1.0)
    else:
        raise ValueError(
            f"images must have shape (n_images, H, W) or (n_images, H, W, C), got {arr.shape}."
        )
    if lum.shape[0] < 2:
        raise ValueError(f"Need at least 2 images to calibrate the neurons, got {lum.shape[0]}.")
    if min(lum.shape[1:]) < 8:
        raise ValueError(f"Images must be at least 8x8 pixels, got {lum.shape[1:]}.")
    if not np.isfinite(lum).all():
        raise ValueError("images contain NaN or inf values.")
    return lum


def _check_range(name: str, value, *, low: float, strict: bool) -> None:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}.") from None
    bad_low = lo <= low if strict else lo < low
    if bad_low or hi < lo or not np.isfinite(hi):
        relation = "<" if strict else "<="
        raise ValueError(f"{name} must satisfy {low} {relation} low <= high, got {value!r}.")


def _check_mixture(mixture: dict[str, float] | None) -> dict[str, float]:
    if mixture is None:
        return dict(DEFAULT_MIXTURE)
    if not isinstance(mixture, dict):
        raise TypeError(
            f"mixture must be a dict of cell type to fraction, got {type(mixture).__name__}."
        )
    unknown = set(mixture) - set(CELL_TYPES)
    if unknown:
        raise ValueError(
            f"Unknown cell types {sorted(unknown)} in mixture; choose from {CELL_TYPES}."
        )
    values = np.array([float(mixture.get(t, 0.0)) for t in CELL_TYPES])
    if (values < 0).any() or not np.isfinite(values).all() or values.sum() <= 0:
        raise ValueError(f"mixture fractions must be non-negative and not all zero, got {mixture}.")
    values = values / values.sum()
    return {t: float(v) for t, v in zip(CELL_TYPES, values, strict=True) if v > 0}


def _allocate(fractions: dict[str, float], n: int) -> np.ndarray:
    """Cell-type labels in :data:`CELL_TYPES` order, counts by largest remainder."""
    names = list(fractions)
    exact = np.array([fractions[t] for t in names]) * n
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return np.repeat(np.array(names, dtype=object), counts)


# ----------------------------------------------------------------- parameters
def _draw_params(cell_types, height, width, rng, mean_rate, gain_noise) -> pd.DataFrame:
    n = len(cell_types)
    extent = min(height, width)
    size = rng.uniform(0.07, 0.11, n) * extent
    lo, hi = mean_rate
    params = pd.DataFrame(
        {
            "cell_type": cell_types.astype(str),
            "orientation": rng.uniform(0.0, 180.0, n),
            "spatial_frequency": rng.uniform(0.3, 0.5, n) / size,  # 0.3-0.5 cycles per SD
            "phase": rng.uniform(0.0, 360.0, n),
            "x": (width - 1) / 2
            + np.clip(rng.normal(0, 0.04 * extent, n), -0.1 * extent, 0.1 * extent),
            "y": (height - 1) / 2
            + np.clip(rng.normal(0, 0.04 * extent, n), -0.1 * extent, 0.1 * extent),
            "size": size,
            "aspect_ratio": rng.uniform(1.0, 1.5, n),
            "mean_rate": np.exp(rng.uniform(np.log(lo), np.log(hi), n)),
            "gain_noise_sd": rng.uniform(*gain_noise, n),
        }
    )
    params["spontaneous_rate"] = rng.uniform(0.05, 0.2, n) * params["mean_rate"]
    is_type = {t: (params["cell_type"] == t).to_numpy() for t in CELL_TYPES}
    nan = np.full(n, np.nan)
    # spiking nonlinearity relu(drive - threshold) ** exponent; simple cells: drive in SDs of
    # the linear filter output; other cells: drive divided by its mean over the images
    params["threshold"] = np.where(
        is_type["simple"], rng.uniform(0.0, 1.0, n), rng.uniform(0.0, 0.5, n)
    )
    params["exponent"] = np.where(
        is_type["simple"], rng.uniform(1.0, 2.0, n), rng.uniform(1.0, 1.5, n)
    )
    # normalisation constant and pool weight of the divisive cells, weight of the end zones
    divisive = is_type["divisive_normalization"] | is_type["surround_suppression"]
    params["norm_constant"] = np.where(divisive, rng.uniform(0.1, 0.5, n), nan)
    weight = np.where(divisive, rng.uniform(1.0, 2.0, n), nan)
    params["suppression_weight"] = np.where(
        is_type["end_stopping"], rng.uniform(0.5, 1.0, n), weight
    )
    # second orientation of the conjunction cells
    offset = rng.uniform(45.0, 90.0, n) * rng.choice([-1.0, 1.0], n)
    params["orientation_2"] = np.where(
        is_type["conjunction"], np.mod(params["orientation"].to_numpy() + offset, 180.0), nan
    )
    return params


# -------------------------------------------------------------------- filters
def _gabors(height, width, orientation, frequency, phase, cx, cy, sigma, aspect, envelope="gauss"):
    """Zero-mean, unit-norm Gabor filters, shape (n, H*W). Angles in degrees."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    theta = np.deg2rad(orientation)[:, None, None]
    dx = xx[None] - cx[:, None, None]
    dy = yy[None] - cy[:, None, None]
    along = dx * np.cos(theta) + dy * np.sin(theta)  # along the preferred bars
    across = -dx * np.sin(theta) + dy * np.cos(theta)  # along the carrier wave
    s = sigma[:, None, None]
    r2 = (along / aspect[:, None, None]) ** 2 + across**2
    if envelope == "gauss":
        env = np.exp(-r2 / (2 * s**2))
    else:  # annulus: a wide Gaussian with the centre carved out
        env = np.exp(-r2 / (2 * (2.5 * s) ** 2)) * (1.0 - np.exp(-r2 / (2 * (1.25 * s) ** 2)))
    carrier = np.cos(
        2 * np.pi * frequency[:, None, None] * across + np.deg2rad(phase)[:, None, None]
    )
    g = (env * carrier).reshape(len(cx), -1)
    g -= g.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(g, axis=1, keepdims=True)
    return g / np.where(norm > 0, norm, 1.0)


def _filter_bank(params: pd.DataFrame, height: int, width: int):
    """All filters of all neurons, their owner neuron and role, in one matrix."""
    specs = []  # (neuron, role, orientation, phase_offset, dx, dy, envelope)
    for i, row in params.iterrows():
        kind = row["cell_type"]
        specs.append((i, "centre_0", row["orientation"], 0.0, 0.0, 0.0, "gauss"))
        if kind == "simple":
            continue
        specs.append((i, "centre_90", row["orientation"], 90.0, 0.0, 0.0, "gauss"))
        if kind == "divisive_normalization":
            for ph in (0.0, 90.0):
                specs.append(
                    (i, f"pool_{ph:.0f}", row["orientation"] + 90.0, ph, 0.0, 0.0, "gauss")
                )
        elif kind == "surround_suppression":
            for ph in (0.0, 90.0):
                specs.append((i, f"pool_{ph:.0f}", row["orientation"], ph, 0.0, 0.0, "ring"))
        elif kind == "end_stopping":
            theta = np.deg2rad(row["orientation"])
            dist = 2.2 * row["size"] * row["aspect_ratio"]
            for end, sign in (("end1", 1.0), ("end2", -1.0)):
                ox, oy = sign * dist * np.cos(theta), sign * dist * np.sin(theta)
                for ph in (0.0, 90.0):
                    specs.append((i, f"{end}_{ph:.0f}", row["orientation"], ph, ox, oy, "gauss"))
        elif kind == "conjunction":
            for ph in (0.0, 90.0):
                specs.append((i, f"second_{ph:.0f}", row["orientation_2"], ph, 0.0, 0.0, "gauss"))
    spec = pd.DataFrame(
        specs, columns=["owner", "role", "orientation", "dphase", "dx", "dy", "env"]
    )
    p = params.iloc[spec["owner"].to_numpy()].reset_index(drop=True)
    bank = np.empty((len(spec), height * width))
    for env in ("gauss", "ring"):
        sel = (spec["env"] == env).to_numpy()
        if sel.any():
            bank[sel] = _gabors(
                height,
                width,
                spec["orientation"].to_numpy()[sel],
                p["spatial_frequency"].to_numpy()[sel],
                (p["phase"] + spec["dphase"]).to_numpy()[sel],
                (p["x"] + spec["dx"]).to_numpy()[sel],
                (p["y"] + spec["dy"]).to_numpy()[sel],
                p["size"].to_numpy()[sel],
                p["aspect_ratio"].to_numpy()[sel],
                envelope=env,
            )
    return bank, spec["owner"].to_numpy(), spec["role"].to_numpy()


def _project(contrast: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """Filter responses of every image, ``contrast @ bank.T`` in chunks of images."""
    out = np.empty((contrast.shape[0], bank.shape[0]))
    for start in range(0, contrast.shape[0], _CHUNK):
        out[start : start + _CHUNK] = contrast[start : start + _CHUNK] @ bank.T
    return out


# ------------------------------------------------------------ nonlinearities
def _nonlinear_responses(params, drives, owners, roles) -> np.ndarray:
    n_images = drives.shape[0]
    column = {(o, r): j for j, (o, r) in enumerate(zip(owners, roles, strict=True))}

    def energy(i, prefix):
        e = drives[:, column[(i, f"{prefix}_0")]] ** 2 + drives[:, column[(i, f"{prefix}_90")]] ** 2
        return e / max(e.mean(), np.finfo(float).tiny)

    out = np.empty((n_images, len(params)))
    for i, row in params.iterrows():
        kind = row["cell_type"]
        if kind == "simple":
            d = drives[:, column[(i, "centre_0")]]
            drive = d / max(d.std(), np.finfo(float).tiny)
        else:
            if kind == "complex":
                drive = energy(i, "centre")
            elif kind in ("divisive_normalization", "surround_suppression"):
                drive = energy(i, "centre") / (
                    row["norm_constant"] + row["suppression_weight"] * energy(i, "pool")
                )
            elif kind == "end_stopping":
                ends = 0.5 * (energy(i, "end1") + energy(i, "end2"))
                drive = np.maximum(energy(i, "centre") - row["suppression_weight"] * ends, 0.0)
            else:  # conjunction
                drive = np.sqrt(energy(i, "centre") * energy(i, "second"))
            drive = drive / max(drive.mean(), np.finfo(float).tiny)
        out[:, i] = np.maximum(drive - row["threshold"], 0.0) ** row["exponent"]
    return out
