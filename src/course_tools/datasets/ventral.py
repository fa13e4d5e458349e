"""A SURROGATE ventral stream: simulated V1, V4 and IT responses with known ground truth.

This is not a model of real V4 or IT and makes no claim about them. It is a stand-in with the
*structure* the course studies -- a hierarchy whose later stages read out later layers of a
network trained on object categorisation -- so that analyses (layer-to-area mapping, neural
predictivity, decoding of category and of category-orthogonal properties) can be run, and
checked against a known answer, without real recordings. Use the real MajajHong2015 data
(:func:`course_tools.datasets.load_majajhong2015`) for statements about the brain.

How each area is made
---------------------
``V1``
    Complex cells: the phase-invariant energy ``sqrt(even^2 + odd^2)`` of one quadrature pair
    of Gabor filters (:class:`course_tools.models.classical.GaborFilterBank`, ``kind="complex"``)
    applied to the image luminance, with the receptive field in the central part of the image.
``V4`` and ``IT``
    Random sparse linear readouts of the *surrogate brain* network
    (``load_model("surrogate_brain")``: an 8-conv-layer CNN trained on ``object_scenes``, a
    different architecture and training run from the networks students analyse). A V4 neuron
    reads ``V4_INPUTS`` random channels of the middle layer ``conv5`` (8 x 8 positions, one
    position = 8 px) through a Gaussian receptive field of SD 0.7-1.4 positions; an IT neuron
    reads ``IT_INPUTS`` channels of the last conv layer ``conv8`` (4 x 4 positions, 16 px each)
    through a broad Gaussian of SD 1.2-2.5 positions. The weights are drawn from N(0, 1), so a
    neuron can be excited by some channels and suppressed by others.

Every area then shares one response model. The drive ``z`` (energy, or readout) is
standardised over the image set and rectified, ``r = relu(z - threshold)`` with ``threshold``
~ U(-1, 0.5) in units of the drive's SD (roughly 30-85 % of the images drive the neuron), then
scaled to ``rate = mean_rate * (untuned + (1 - untuned) * r / mean(r))``: an image-independent
part (``untuned`` ~ U(``baseline``)) plus the tuned part, averaging ``mean_rate`` over the
images. Single trials are Poisson counts with a
trial-wise multiplicative gain, ``count ~ Poisson(g * rate)``, ``g ~ Gamma`` with mean 1 and SD
``gain_noise_sd`` drawn per neuron. With the defaults (10 repeats, mean counts 1-4, untuned
fraction 0.3-0.7, gain SD 0.6-1.2) the split-half reliabilities (Spearman-Brown corrected)
lie mostly between 0.5 and 0.9, as for multi-unit recordings.

The ground truth records, for every neuron, the layer and the exact linear readout it uses:
``readouts[layer]`` has shape (n_layer_features, n_neurons_reading_it) in the order of
``course_tools.activations.extract(model, images, layer)`` flattened features (channel, row,
column), so ``drive = extract(...)[layer] @ readouts[layer]`` reproduces the drives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from course_tools.datasets.core import NeuralDataset
from course_tools.datasets.trial_noise import gamma_poisson_trials
from course_tools.seeding import SeedLike, check_random_state

__all__ = ["AREAS", "IT_INPUTS", "V4_INPUTS", "simulated_ventral"]

AREAS = ("V1", "V4", "IT")
V4_INPUTS = 8
IT_INPUTS = 16
SURROGATE = "surrogate_brain"
#: Layer of the surrogate brain each area reads (V1 reads Gabor energies of the pixels).
SOURCE_LAYERS = {"V1": "gabor_energy", "V4": "conv5", "IT": "conv8"}
_RF_SD = {"V4": (0.7, 1.4), "IT": (1.2, 2.5)}  # in feature-map positions
_N_INPUTS = {"V4": V4_INPUTS, "IT": IT_INPUTS}
_GABOR = {"n_orientations": 8, "spatial_frequencies": (0.08, 0.16), "sizes": (2.5, 4.0)}


def simulated_ventral(
    images,
    meta: pd.DataFrame | None = None,
    *,
    areas: Sequence[str] = AREAS,
    n_neurons: int | Mapping[str, int] = 100,
    n_repeats: int = 10,
    seed: SeedLike = 0,
    mean_rate: tuple[float, float] = (1.0, 4.0),
    baseline: tuple[float, float] = (0.3, 0.7),
    gain_noise: tuple[float, float] = (0.6, 1.2),
    progress: bool = False,
) -> NeuralDataset:
    """Simulate single-trial responses of SURROGATE V1, V4 and IT populations to images.

    See the module docstring for the generative model. It is a surrogate with known ground
    truth, not a model of real V4/IT.

    Parameters
    ----------
    images : ndarray, shape (n_images, 64, 64, 3), uint8
        RGB images, e.g. from :func:`course_tools.stimuli.object_scenes` (the surrogate network
        was trained at 64 x 64 px).
    meta : pandas.DataFrame, optional
        One row per image (e.g. the ``meta`` of ``object_scenes``); becomes ``stimulus_meta``.
    areas : sequence of {"V1", "V4", "IT"}, default=("V1", "V4", "IT")
        Areas to simulate; neurons are ordered area by area in this order.
    n_neurons : int or dict, default=100
        Neurons per area, or ``{area: count}``.
    n_repeats : int, default=10
        Trials per image.
    seed : int or numpy.random.Generator, default=0
        Seeds every random choice (receptive fields, readouts, thresholds, noise).
    mean_rate : (low, high), default=(1.0, 4.0)
        Each neuron's mean count per trial is drawn uniformly from this range.
    baseline : (low, high), default=(0.3, 0.7)
        Each neuron's untuned fraction of the rate (in [0, 1)) is drawn uniformly from this
        range; 0 makes the whole rate image-driven.
    gain_noise : (low, high), default=(0.6, 1.2)
        Each neuron's SD of the trial-wise multiplicative gain (0 gives pure Poisson noise).
    progress : bool, default=False
        Show progress while the surrogate network runs.

    Returns
    -------
    NeuralDataset
        ``responses`` (n_repeats, n_images, n_neurons) spike counts; ``stimuli`` the images;
        ``stimulus_meta`` ``meta``; ``neuron_meta`` columns ``area``, ``cell_type``
        ("complex" for V1, "readout" for V4 and IT), ``source_layer`` ("gabor_energy",
        "conv5", "conv8"), ``rf_x``, ``rf_y`` (receptive-field centre, pixels from the
        top-left corner), ``rf_size`` (Gaussian SD, pixels), ``n_inputs``, ``threshold``,
        ``mean_rate``, ``gain_noise_sd``. ``ground_truth`` holds:

        - ``rates`` (n_images, n_neurons): noise-free mean counts;
        - ``drives`` (n_images, n_neurons): standardised drives before the nonlinearity;
        - ``noise_variance``, ``fev`` (n_neurons,): true trial variance averaged over images
          and the true explainable fraction ``var(rates) / (var(rates) + noise_variance)``;
        - ``readouts``: dict layer -> readout matrix (n_layer_features, n_readout_columns) in
          ``extract`` flattening order (channel, row, column);
        - ``gabor_bank``: the fitted :class:`~course_tools.models.classical.GaborFilterBank`
          of the V1 neurons (None without V1);
        - ``surrogate``: the surrogate network's name (load it with ``load_model``);
        - ``params``: DataFrame with every neuron's generating parameters, including
          ``readout_column`` (its column of ``readouts[source_layer]``; -1 for V1),
          ``channels`` (the surrogate channels a V4/IT neuron reads, a tuple) and
          ``gabor_pair`` (the V1 neuron's row of ``gabor_bank.pair_params_``; -1 for V4/IT).
          It is subset with the neurons by :meth:`~course_tools.datasets.NeuralDataset.select`;
        - ``axes``: see :class:`~course_tools.datasets.NeuralDataset`.

    Examples
    --------
    >>> from course_tools.stimuli import object_scenes
    >>> images, meta = object_scenes(200, variation="medium", seed=0)
    >>> ds = simulated_ventral(images, meta, n_neurons=20, seed=0)
    >>> ds.responses.shape, sorted(ds.neuron_meta["area"].unique())
    ((10, 200, 60), ['IT', 'V1', 'V4'])
    """
    images = _check_images(images)
    counts = _check_counts(areas, n_neurons)
    n_repeats = _check_positive_int(n_repeats, "n_repeats")
    _check_range("mean_rate", mean_rate, strict=True)
    _check_range("baseline", baseline, strict=False)
    if float(baseline[1]) >= 1:
        raise ValueError(f"baseline fractions must be below 1, got {baseline!r}.")
    _check_range("gain_noise", gain_noise, strict=False)
    if meta is not None:
        if not isinstance(meta, pd.DataFrame):
            raise TypeError(f"meta must be a pandas DataFrame or None, got {type(meta).__name__}.")
        if len(meta) != len(images):
            raise ValueError(
                f"meta has {len(meta)} rows but there are {len(images)} images; pass the meta "
                "returned together with the images."
            )
    rng = check_random_state(seed)
    n_images = len(images)
    if n_images < 2:
        raise ValueError("pass at least 2 images: drives are standardised over the image set.")

    params_parts, drive_parts = [], []
    readouts: dict[str, np.ndarray] = {}
    gabor_bank = None
    features = _surrogate_features(images, [a for a in counts if a != "V1"], progress)
    for area, count in counts.items():
        if area == "V1":
            gabor_bank, drive, params = _v1_drives(images, count, rng)
        else:
            layer = SOURCE_LAYERS[area]
            drive, params, readouts[layer] = _readout_drives(area, features[layer], count, rng)
        params_parts.append(params)
        drive_parts.append(drive)

    params = pd.concat(params_parts, ignore_index=True)
    drive = np.concatenate(drive_parts, axis=1)
    mean = drive.mean(axis=0)
    sd = drive.std(axis=0)
    sd[sd == 0] = 1.0
    drives = (drive - mean) / sd

    n_total = len(params)
    params["threshold"] = rng.uniform(-1.0, 0.5, n_total)
    params["mean_rate"] = rng.uniform(*mean_rate, n_total)
    params["untuned"] = rng.uniform(*baseline, n_total)
    params["gain_noise_sd"] = rng.uniform(*gain_noise, n_total)
    rates = _rates(drives, params)

    gain_sd = params["gain_noise_sd"].to_numpy()
    responses, noise_variance, fev = gamma_poisson_trials(rates, gain_sd, n_repeats, rng)

    meta_columns = [
        "area",
        "cell_type",
        "source_layer",
        "rf_x",
        "rf_y",
        "rf_size",
        "n_inputs",
        "threshold",
        "mean_rate",
        "untuned",
        "gain_noise_sd",
    ]
    ground_truth = {
        "rates": rates,
        "drives": drives,
        "noise_variance": noise_variance,
        "fev": fev,
        "readouts": readouts,
        "gabor_bank": gabor_bank,
        "surrogate": SURROGATE,
        "params": params,
        "axes": {
            "rates": ("stimulus", "neuron"),
            "drives": ("stimulus", "neuron"),
            "noise_variance": ("neuron",),
            "fev": ("neuron",),
            "params": ("neuron",),
        },
    }
    return NeuralDataset(
        responses=responses,
        stimuli=images,
        stimulus_meta=None if meta is None else meta.reset_index(drop=True),
        neuron_meta=params[meta_columns].copy(),
        ground_truth=ground_truth,
        name="simulated_ventral (surrogate)",
    )


# --------------------------------------------------------------------------------------------
# the areas
# --------------------------------------------------------------------------------------------
def _surrogate_features(images: np.ndarray, areas: list[str], progress: bool) -> dict:
    if not areas:
        return {}
    from course_tools.activations import extract
    from course_tools.models.registry import load_model

    model = load_model(SURROGATE)
    layers = [SOURCE_LAYERS[area] for area in areas]
    return extract(model, images, layers, batch_size=250, progress=progress)


def _v1_drives(images: np.ndarray, count: int, rng: np.random.Generator):
    """Energy of one randomly chosen central Gabor quadrature pair per neuron."""
    from course_tools.models.classical import GaborFilterBank

    height = images.shape[1]
    bank = GaborFilterBank(kind="complex", stride=height // 8, **_GABOR).fit(images[:1])
    pairs = bank.pair_params_
    centre = (height - 1) / 2
    central = np.flatnonzero(
        (np.abs(pairs["x"] - centre) <= height / 4) & (np.abs(pairs["y"] - centre) <= height / 4)
    )
    chosen = rng.choice(central, size=count, replace=count > len(central))
    energy = bank.transform(images)  # (n_images, n_pairs)
    drive = energy[:, chosen].astype(np.float64)
    params = pd.DataFrame(
        {
            "area": "V1",
            "cell_type": "complex",
            "source_layer": SOURCE_LAYERS["V1"],
            "rf_x": pairs["x"].to_numpy()[chosen],
            "rf_y": pairs["y"].to_numpy()[chosen],
            "rf_size": pairs["size"].to_numpy()[chosen],
            "n_inputs": 1,
            "orientation": pairs["orientation"].to_numpy()[chosen],
            "spatial_frequency": pairs["spatial_frequency"].to_numpy()[chosen],
            "readout_column": -1,
            "channels": [()] * count,
            "gabor_pair": chosen,
        }
    )
    return bank, drive, params


def _readout_drives(area: str, features: np.ndarray, count: int, rng: np.random.Generator):
    """Sparse Gaussian-window readouts of a (n_images, C * S * S) conv layer."""
    n_features = features.shape[1]
    grid = {"V4": 8, "IT": 4}[area]
    channels = n_features // grid**2
    if channels * grid**2 != n_features:
        raise RuntimeError(
            f"the surrogate layer {SOURCE_LAYERS[area]} has {n_features} features, not "
            f"channels x {grid} x {grid}; the surrogate weights do not match this code."
        )
    pixels_per_position = 64 / grid
    n_inputs = _N_INPUTS[area]
    readout = np.zeros((n_features, count), dtype=np.float32)
    rf_x, rf_y, rf_size = np.empty(count), np.empty(count), np.empty(count)
    inputs: list[tuple[int, ...]] = []
    positions = np.arange(grid) + 0.5
    for neuron in range(count):
        cx, cy = rng.normal(grid / 2, grid / 8, size=2).clip(0.5, grid - 0.5)
        sigma = rng.uniform(*_RF_SD[area])
        window = np.exp(
            -((positions[None, :] - cx) ** 2 + (positions[:, None] - cy) ** 2) / (2 * sigma**2)
        )
        window /= window.sum()
        picked = rng.choice(channels, size=n_inputs, replace=False)
        weights = rng.normal(size=n_inputs)
        weights[0] = abs(weights[0])  # at least one excitatory input
        column = np.zeros((channels, grid, grid), dtype=np.float32)
        column[picked] = weights[:, None, None] * window[None]
        readout[:, neuron] = column.ravel()  # (channel, row, column) order, as extract flattens
        inputs.append(tuple(int(c) for c in np.sort(picked)))
        rf_x[neuron], rf_y[neuron] = cx * pixels_per_position, cy * pixels_per_position
        rf_size[neuron] = sigma * pixels_per_position
    drive = features.astype(np.float64) @ readout.astype(np.float64)
    params = pd.DataFrame(
        {
            "area": area,
            "cell_type": "readout",
            "source_layer": SOURCE_LAYERS[area],
            "rf_x": rf_x,
            "rf_y": rf_y,
            "rf_size": rf_size,
            "n_inputs": n_inputs,
            "readout_column": np.arange(count),
            "channels": inputs,
            "gabor_pair": -1,
        }
    )
    return drive, params, readout


def _rates(drives: np.ndarray, params: pd.DataFrame) -> np.ndarray:
    rectified = np.maximum(drives - params["threshold"].to_numpy(), 0.0)
    mean = rectified.mean(axis=0)
    silent = mean == 0
    rectified[:, silent] = 1.0  # a neuron never driven above threshold keeps a constant rate
    mean[silent] = 1.0
    untuned = params["untuned"].to_numpy()
    tuned = rectified / mean
    return params["mean_rate"].to_numpy() * (untuned + (1 - untuned) * tuned)


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------
def _check_images(images) -> np.ndarray:
    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        raise TypeError(
            f"images must be uint8 RGB images (n, 64, 64, 3) as object_scenes returns, got dtype "
            f"{arr.dtype}. Convert [0, 1] floats with (images * 255).round().astype(np.uint8)."
        )
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.shape[1:3] != (64, 64):
        raise ValueError(
            f"images must have shape (n_images, 64, 64, 3), got {arr.shape}. The surrogate "
            "network was trained on 64 x 64 px RGB images: use object_scenes(n, image_size=64)."
        )
    return arr


def _check_counts(areas, n_neurons) -> dict[str, int]:
    if isinstance(areas, str):
        areas = (areas,)
    areas = tuple(areas)
    unknown = [a for a in areas if a not in AREAS]
    if unknown or not areas or len(set(areas)) != len(areas):
        raise ValueError(f"areas must be distinct names among {AREAS}, got {areas!r}.")
    if isinstance(n_neurons, Mapping):
        missing = [a for a in areas if a not in n_neurons]
        if missing:
            raise ValueError(f"n_neurons has no count for the areas {missing}.")
        return {a: _check_positive_int(n_neurons[a], f"n_neurons[{a!r}]") for a in areas}
    count = _check_positive_int(n_neurons, "n_neurons")
    return dict.fromkeys(areas, count)


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _check_range(name: str, value, strict: bool) -> None:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high) of numbers, got {value!r}.") from None
    if (
        not (np.isfinite(low) and np.isfinite(high))
        or low > high
        or low < 0
        or (strict and low == 0)
    ):
        bound = "> 0" if strict else ">= 0"
        raise ValueError(f"{name} must be (low, high) with {bound} and low <= high, got {value!r}.")
