"""The one dataset type of course_tools: repeated neural responses with their stimuli and metadata.

A :class:`NeuralDataset` holds single-trial responses of shape ``(n_repeats, n_stimuli,
n_neurons)`` (NaN where a repeat was not recorded), the stimuli, one metadata row per stimulus
and per neuron, and, for simulations, the ground truth that generated the responses. Real
recordings (Majaj & Hong 2015, Cadena et al. 2019, deep-retina HDF5 files) and simulations
(V1, retina) all come in this type, so every analysis works on all of them.

:class:`RetinaRecording` pairs the two datasets of a retina experiment: a long training movie
shown once and a short test movie shown many times.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["DIMS", "NeuralDataset", "RetinaRecording"]

#: Dimension names of :meth:`NeuralDataset.to_xarray`.
DIMS = ("repeat", "stimulus", "neuron")

_COLUMNS_ATTR = "course_tools_columns"


@dataclass(eq=False)
class NeuralDataset:
    """Repeated neural responses to a set of stimuli, with metadata and optional ground truth.

    Parameters
    ----------
    responses : ndarray, shape (n_repeats, n_stimuli, n_neurons)
        Single-trial responses (spike counts, rates or normalised firing). NaN marks a repeat
        that was not recorded. Integer arrays are converted to float64; float32 is kept.
    stimuli : ndarray or None
        ``(n_stimuli, H, W, C)`` uint8 images, ``(n_stimuli, H, W)`` grayscale images or movie
        frames, or any ``(n_stimuli, ...)`` array; None when the stimuli are not available.
    stimulus_meta : pandas.DataFrame or None
        One row per stimulus, in stimulus order (the index is reset to ``0..n_stimuli-1``).
        None gives an empty table.
    neuron_meta : pandas.DataFrame
        One row per neuron. Must have a column ``"area"`` (e.g. ``"V1"``, ``"V4"``, ``"IT"``,
        ``"RGC"``); simulations also have ``"cell_type"``.
    ground_truth : dict or None, default=None
        Generating parameters of a simulation (None for real data). An optional entry
        ``"axes"`` maps other keys to a tuple naming each axis of that entry (``"stimulus"``,
        ``"neuron"`` or None), e.g. ``{"rates": ("stimulus", "neuron")}``; :meth:`select`
        subsets exactly those entries and copies the others unchanged.
    name : str, default=""
        A short identifier, e.g. ``"MajajHong2015.public"``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> ds = NeuralDataset(
    ...     responses=np.ones((2, 3, 4)), stimuli=None, stimulus_meta=None,
    ...     neuron_meta=pd.DataFrame({"area": ["V1", "V1", "V4", "V4"]}))
    >>> ds.select(neurons="V4").n_neurons
    2
    """

    responses: np.ndarray
    stimuli: np.ndarray | None
    stimulus_meta: pd.DataFrame | None
    neuron_meta: pd.DataFrame
    ground_truth: dict | None = None
    name: str = ""

    def __post_init__(self) -> None:
        self.responses = _check_response_array(self.responses)
        n_repeats, n_stimuli, n_neurons = self.responses.shape
        if self.stimuli is not None:
            self.stimuli = np.asarray(self.stimuli)
            if self.stimuli.ndim < 1 or self.stimuli.shape[0] != n_stimuli:
                raise ValueError(
                    f"stimuli must have one entry per stimulus along axis 0: responses have "
                    f"{n_stimuli} stimuli (axis 1 of shape {self.responses.shape}) but stimuli "
                    f"have shape {self.stimuli.shape}. Pass stimuli=None if there are none."
                )
        self.stimulus_meta = _check_meta(self.stimulus_meta, n_stimuli, "stimulus_meta", "stimulus")
        if self.neuron_meta is None:
            raise ValueError(
                "neuron_meta is required: a DataFrame with one row per neuron and a column "
                "'area', e.g. pd.DataFrame({'area': ['V1'] * n_neurons})."
            )
        self.neuron_meta = _check_meta(self.neuron_meta, n_neurons, "neuron_meta", "neuron")
        if "area" not in self.neuron_meta.columns:
            raise ValueError(
                "neuron_meta must have a column 'area' naming the recorded region of each neuron "
                f"(e.g. 'V1', 'V4', 'IT', 'RGC'); it has columns {list(self.neuron_meta.columns)}."
            )
        if self.ground_truth is not None and not isinstance(self.ground_truth, dict):
            raise TypeError(
                f"ground_truth must be a dict or None, got {type(self.ground_truth).__name__}."
            )
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {type(self.name).__name__}.")

    # ------------------------------------------------------------------ sizes
    @property
    def n_repeats(self) -> int:
        """Number of repeats (axis 0 of ``responses``)."""
        return self.responses.shape[0]

    @property
    def n_stimuli(self) -> int:
        """Number of stimuli (axis 1 of ``responses``)."""
        return self.responses.shape[1]

    @property
    def n_neurons(self) -> int:
        """Number of neurons (axis 2 of ``responses``)."""
        return self.responses.shape[2]

    def __repr__(self) -> str:
        stim = "None" if self.stimuli is None else f"{self.stimuli.shape} {self.stimuli.dtype}"
        areas = self.neuron_meta["area"].value_counts(sort=False).to_dict()
        truth = "None" if self.ground_truth is None else f"keys {sorted(self.ground_truth)}"
        return (
            f"NeuralDataset(name={self.name!r}, n_repeats={self.n_repeats}, "
            f"n_stimuli={self.n_stimuli}, n_neurons={self.n_neurons}, areas={areas}, "
            f"stimuli={stim}, ground_truth={truth})"
        )

    # -------------------------------------------------------------- analysis
    def mean_responses(self) -> np.ndarray:
        """Trial-averaged responses.

        Returns
        -------
        ndarray, shape (n_stimuli, n_neurons)
            Mean over the recorded repeats (NaN repeats ignored); NaN where a stimulus has no
            recorded repeat for a neuron.
        """
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices give NaN
            return np.nanmean(self.responses, axis=0)

    def select(self, *, stimuli=None, neurons=None) -> NeuralDataset:
        """A new dataset with a subset of stimuli and/or neurons.

        Parameters
        ----------
        stimuli : array_like of int or bool, slice, or None
            Integer positions, a boolean mask of length ``n_stimuli``, or a slice. None keeps
            all stimuli.
        neurons : array_like of int or bool, slice, str, list of str, or None
            As ``stimuli``, or an area name (``"IT"``) or list of area names matched against
            ``neuron_meta["area"]``. None keeps all neurons.

        Returns
        -------
        NeuralDataset
            Responses, stimuli, metadata and the ground-truth entries labelled in
            ``ground_truth["axes"]`` are subset; everything is copied.
        """
        stim_idx = _resolve_index(stimuli, self.n_stimuli, "stimuli")
        areas = _area_names(neurons)
        if areas is not None:
            known = set(self.neuron_meta["area"].astype(str))
            unknown = [a for a in areas if a not in known]
            if unknown:
                raise ValueError(
                    f"No neurons in area(s) {unknown}; this dataset has areas {sorted(known)}."
                )
            neuron_idx = np.flatnonzero(self.neuron_meta["area"].astype(str).isin(areas))
        else:
            neuron_idx = _resolve_index(neurons, self.n_neurons, "neurons")
        truth = None
        if self.ground_truth is not None:
            truth = _select_ground_truth(self.ground_truth, stim_idx, neuron_idx)
        return NeuralDataset(
            responses=self.responses[:, stim_idx][:, :, neuron_idx].copy(),
            stimuli=None if self.stimuli is None else self.stimuli[stim_idx].copy(),
            stimulus_meta=self.stimulus_meta.iloc[stim_idx].reset_index(drop=True),
            neuron_meta=self.neuron_meta.iloc[neuron_idx].reset_index(drop=True),
            ground_truth=truth,
            name=self.name,
        )

    # ---------------------------------------------------------------- xarray
    def to_xarray(self) -> xr.DataArray:
        """The responses as a labelled :class:`xarray.DataArray`.

        Returns
        -------
        xarray.DataArray, dims ("repeat", "stimulus", "neuron")
            Dimension coordinates are integer positions; every ``stimulus_meta`` column is a
            coordinate along ``"stimulus"`` and every ``neuron_meta`` column one along
            ``"neuron"``. A column whose name is also a dimension or a column of the other
            table is stored as ``"stimulus_<name>"`` / ``"neuron_<name>"``; the attribute
            ``"course_tools_columns"`` records the original names so that
            :meth:`from_xarray` restores them exactly. Stimuli and ground truth are not
            included (pass them to :meth:`from_xarray`). The array can be written with
            ``to_netcdf(path, engine="h5netcdf")``.
        """
        stim_cols = [str(c) for c in self.stimulus_meta.columns]
        neuron_cols = [str(c) for c in self.neuron_meta.columns]
        taken = set(DIMS)
        shared = set(stim_cols) & set(neuron_cols)
        coords: dict = {
            dim: np.arange(size) for dim, size in zip(DIMS, self.responses.shape, strict=True)
        }
        mapping: dict[str, dict[str, str]] = {"stimulus": {}, "neuron": {}}
        for dim, table, cols in (
            ("stimulus", self.stimulus_meta, stim_cols),
            ("neuron", self.neuron_meta, neuron_cols),
        ):
            for original, col in zip(table.columns, cols, strict=True):
                coord = f"{dim}_{col}" if (col in taken or col in shared) else col
                while coord in coords:
                    coord = f"{dim}_{coord}"
                coords[coord] = (dim, _column_values(table[original]))
                mapping[dim][coord] = col
        da = xr.DataArray(self.responses, dims=DIMS, coords=coords, name=self.name or "responses")
        da.attrs[_COLUMNS_ATTR] = json.dumps(mapping)
        da.attrs["name"] = self.name
        return da

    @classmethod
    def from_xarray(
        cls,
        da: xr.DataArray,
        *,
        stimuli: np.ndarray | None = None,
        ground_truth: dict | None = None,
        name: str = "",
    ) -> NeuralDataset:
        """Build a dataset from a DataArray with dims ``("repeat", "stimulus", "neuron")``.

        Parameters
        ----------
        da : xarray.DataArray
            Dims ``repeat``, ``stimulus`` and ``neuron`` in any order (a 2-D array with dims
            ``stimulus`` and ``neuron`` is read as a single repeat). 1-D coordinates along
            ``stimulus`` / ``neuron`` become the metadata columns (MultiIndex levels too); a
            dimension coordinate other than ``0..n-1`` is kept as a column named after the
            dimension. ``neuron_meta`` must end up with an ``"area"`` column.
        stimuli : ndarray or None
            The stimuli, ``(n_stimuli, ...)``.
        ground_truth : dict or None
            Passed through.
        name : str, default=""
            Dataset name; defaults to the array's ``name`` attribute or ``da.name``.

        Returns
        -------
        NeuralDataset
        """
        if not isinstance(da, xr.DataArray):
            raise TypeError(
                f"from_xarray expects an xarray.DataArray, got {type(da).__name__}. For a "
                "Dataset pick the variable first, e.g. ds['responses']."
            )
        if set(da.dims) == {"stimulus", "neuron"}:
            da = da.expand_dims("repeat")
        if set(da.dims) != set(DIMS):
            hint = ""
            if {"presentation", "neuroid"} & set(da.dims):
                hint = (
                    " This looks like a Brain-Score assembly (presentation x neuroid): use "
                    "course_tools.datasets.load_majajhong2015, or group presentations into "
                    "repeats per stimulus first."
                )
            raise ValueError(
                f"da must have dims {DIMS} (any order), got {da.dims}.{hint} Rename dims with "
                "da.rename({'old': 'new'})."
            )
        da = da.transpose(*DIMS)
        indexed = [
            d for d in ("stimulus", "neuron") if isinstance(da.indexes.get(d), pd.MultiIndex)
        ]
        if indexed:
            da = da.reset_index(indexed)
        mapping = {"stimulus": {}, "neuron": {}}
        if _COLUMNS_ATTR in da.attrs:
            mapping = json.loads(da.attrs[_COLUMNS_ATTR])
        tables = {}
        for dim in ("stimulus", "neuron"):
            columns: dict[str, np.ndarray] = {}
            n = da.sizes[dim]
            if dim in da.coords and not np.array_equal(np.asarray(da[dim].values), np.arange(n)):
                columns[dim] = np.asarray(da[dim].values)
            names = list(mapping.get(dim, {})) or []
            names += [
                c for c in da.coords if c not in names and c != dim and da.coords[c].dims == (dim,)
            ]
            for coord in names:
                if coord not in da.coords:
                    continue
                columns[mapping.get(dim, {}).get(coord, coord)] = np.asarray(
                    da.coords[coord].values
                )
            tables[dim] = pd.DataFrame(columns, index=pd.RangeIndex(n))
        if not name:
            name = str(
                da.attrs.get("name") or (da.name if da.name not in (None, "responses") else "")
            )
        return cls(
            responses=np.asarray(da.values),
            stimuli=stimuli,
            stimulus_meta=tables["stimulus"],
            neuron_meta=tables["neuron"],
            ground_truth=ground_truth,
            name=name,
        )


@dataclass(frozen=True, eq=False)
class RetinaRecording:
    """A retina experiment: a training movie shown once and a test movie shown many times.

    Parameters
    ----------
    train : NeuralDataset
        Responses ``(n_train_repeats, n_frames, n_cells)`` (usually one repeat) to the
        training movie; ``stimuli`` holds the frames ``(n_frames, H, W)``; the stimulus index
        is the 10 ms time bin.
    test : NeuralDataset or None
        Responses ``(n_test_repeats, n_test_frames, n_cells)`` to the repeated test movie, or
        None when there is no test movie.
    """

    train: NeuralDataset
    test: NeuralDataset | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.train, NeuralDataset):
            raise TypeError(f"train must be a NeuralDataset, got {type(self.train).__name__}.")
        if self.test is not None:
            if not isinstance(self.test, NeuralDataset):
                raise TypeError(
                    f"test must be a NeuralDataset or None, got {type(self.test).__name__}."
                )
            if self.test.n_neurons != self.train.n_neurons:
                raise ValueError(
                    f"train and test must record the same cells: train has "
                    f"{self.train.n_neurons}, test has {self.test.n_neurons}."
                )


# ---------------------------------------------------------------------- helpers
def _check_response_array(responses) -> np.ndarray:
    r = np.asarray(responses)
    if r.dtype == object or not (np.issubdtype(r.dtype, np.number) or r.dtype == bool):
        raise TypeError(f"responses must be a numeric array, got dtype {r.dtype}.")
    if not np.issubdtype(r.dtype, np.floating):
        r = r.astype(np.float64)
    if r.ndim == 2:
        raise ValueError(
            f"responses must have shape (n_repeats, n_stimuli, n_neurons), got a 2-D array of "
            f"shape {r.shape}. For trial-averaged or single-trial data add a repeat axis: "
            "responses[None]."
        )
    if r.ndim != 3:
        raise ValueError(
            f"responses must have shape (n_repeats, n_stimuli, n_neurons), got shape {r.shape}."
        )
    if np.isinf(r).any():
        raise ValueError(
            "responses contain inf values; use NaN for repeats that were not recorded."
        )
    return r


def _check_meta(meta, n: int, label: str, item: str) -> pd.DataFrame:
    if meta is None:
        return pd.DataFrame(index=pd.RangeIndex(n))
    if not isinstance(meta, pd.DataFrame):
        raise TypeError(f"{label} must be a pandas DataFrame, got {type(meta).__name__}.")
    if len(meta) != n:
        raise ValueError(
            f"{label} must have one row per {item}: responses have {n} but {label} has "
            f"{len(meta)} rows."
        )
    return meta.reset_index(drop=True)


def _area_names(neurons) -> list[str] | None:
    """The area names in a ``neurons`` selector, or None when it is not made of names."""
    if neurons is None or isinstance(neurons, slice):
        return None
    if isinstance(neurons, str):
        return [neurons]
    values = np.asarray(neurons)
    if values.ndim == 1 and values.size and all(isinstance(v, str) for v in values.tolist()):
        return [str(v) for v in values.tolist()]
    return None


def _resolve_index(index, n: int, label: str) -> np.ndarray:
    if index is None:
        return np.arange(n)
    if isinstance(index, slice):
        return np.arange(n)[index]
    idx = np.asarray(index)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise ValueError(f"A boolean mask for {label} must have shape ({n},), got {idx.shape}.")
        return np.flatnonzero(idx)
    if idx.ndim == 0:
        idx = idx[None]
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(
            f"{label} must be integer positions, a boolean mask, a slice or None; got an array "
            f"of dtype {idx.dtype} and shape {idx.shape}."
        )
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(
            f"{label} positions must lie in [-{n}, {n - 1}], got {idx.min()}..{idx.max()}."
        )
    return np.where(idx < 0, idx + n, idx)


def _select_ground_truth(truth: dict, stim_idx: np.ndarray, neuron_idx: np.ndarray) -> dict:
    axes = truth.get("axes", {})
    out = {}
    for key, value in truth.items():
        if key == "axes" or key not in axes:
            out[key] = _copy(value)
            continue
        for axis, label in enumerate(axes[key]):
            if label is None:
                continue
            idx = stim_idx if label == "stimulus" else neuron_idx
            if isinstance(value, pd.DataFrame | pd.Series):
                if axis != 0:
                    raise ValueError(
                        f"ground_truth[{key!r}]: a DataFrame can only be subset on axis 0."
                    )
                value = value.iloc[idx].reset_index(drop=True)
            else:
                value = np.take(np.asarray(value), idx, axis=axis)
        out[key] = _copy(value)
    if "axes" in truth:
        out["axes"] = dict(axes)
    return out


def _copy(value):
    if isinstance(value, np.ndarray | pd.DataFrame | pd.Series):
        return value.copy()
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


def _column_values(column: pd.Series) -> np.ndarray:
    """Column values in a form xarray and netCDF store: strings as str objects, numbers as is."""
    if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
        return column.to_numpy()
    values = column.to_numpy(dtype=object)
    if all(isinstance(v, str) for v in values):
        return values.astype(str)
    return values
