"""Loaders for public neural recordings, downloaded once with checksums into :func:`data_home`.

- :func:`load_majajhong2015`: V4 and IT multi-unit responses to the HvM object images
  (Majaj, Hong, Solomon & DiCarlo 2015, J Neurosci 35:13402), Brain-Score's public assembly.
- :func:`load_cadena2019`: macaque V1 responses to natural and texture-synthesised images
  (Cadena et al. 2019, PLoS Comput Biol 15(4): e1006897); CC BY-NC-ND 4.0.
- :func:`load_deep_retina_h5`: salamander ganglion-cell recordings in the HDF5 layout of
  ``baccuslab/deep-retina`` (McIntosh et al. 2016), from a file you have.

Files are fetched with :mod:`pooch` and verified against a known hash. A cached file that
fails its hash is never used: it is moved aside as ``<name>.corrupt`` (never deleted) and, when
``download=True``, fetched again. Without network every loader raises one
:class:`DatasetDownloadError` that names the file, the URL, the cache path, how to place the
file by hand and the simulated alternative. ``download=False`` never touches the network.
"""

from __future__ import annotations

import io
import pickle
import re
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pooch
import xarray as xr
from tqdm.auto import tqdm

from course_tools._config import data_home
from course_tools.datasets.core import NeuralDataset, RetinaRecording

__all__ = [
    "CADENA2019_LICENSE",
    "CADENA2019_MEMBER",
    "CADENA2019_ZIP",
    "MAJAJHONG2015_FILES",
    "DataLicenseNotice",
    "DatasetDownloadError",
    "RemoteFile",
    "fetch_file",
    "load_cadena2019",
    "load_deep_retina_h5",
    "load_majajhong2015",
]

BRAINIO_URL = "https://brainio.dicarlo.s3.amazonaws.com/"


class DatasetDownloadError(RuntimeError):
    """A dataset file could not be downloaded or found, or failed its checksum."""


class DataLicenseNotice(UserWarning):
    """Shown when loading data whose licence restricts its use."""


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file.

    Parameters
    ----------
    name : str
        File name in the cache folder.
    url : str
        Where to download it from.
    known_hash : str or None
        ``"sha1:<hex>"`` or ``"sha256:<hex>"``; None when no hash has been published (the
        first download then records a sha256 in a ``<name>.sha256`` sidecar file).
    """

    name: str
    url: str
    known_hash: str | None


MAJAJHONG2015_FILES = {
    "assembly": RemoteFile(
        "assy_dicarlo_MajajHong2015_public.nc",
        BRAINIO_URL + "assy_dicarlo_MajajHong2015_public.nc",
        "sha1:13d28ca0ce88ee550b54db3004374ae19096e9b9",
    ),
    "stimulus_csv": RemoteFile(
        "image_dicarlo_hvm-public.csv",
        BRAINIO_URL + "image_dicarlo_hvm-public.csv",
        "sha1:5ca7a3da00d8e9c694a9cd725df5ba0ad6d735af",
    ),
    "stimulus_zip": RemoteFile(
        "image_dicarlo_hvm-public.zip",
        BRAINIO_URL + "image_dicarlo_hvm-public.zip",
        "sha1:8aa44e038d7b551efa8077467622f9d48d72e473",
    ),
}

#: The GIN archive of Cadena et al. (2019). No hash is published: set ``known_hash`` here once
#: one has been recorded; until then the first download stores a sha256 sidecar.
CADENA2019_ZIP = RemoteFile(
    "2e31e304e03d6357c98ac735a1fe5788.zip",
    "https://doid.gin.g-node.org/2e31e304e03d6357c98ac735a1fe5788/"
    "2e31e304e03d6357c98ac735a1fe5788.zip",
    None,
)
CADENA2019_MEMBER = "Cadena_PlosCB19_data/data_binned_responses/cadena_ploscb_data.pkl"

CADENA2019_LICENSE = (
    "The Cadena et al. (2019) V1 data are licensed CC BY-NC-ND 4.0 "
    "(https://creativecommons.org/licenses/by-nc-nd/4.0/). The authors ask to be contacted "
    "before the data are used in research; publishing a new analysis needs their permission. "
    "Cite: Cadena SA et al. (2019) PLoS Comput Biol 15(4): e1006897."
)

_MAJAJ_ALTERNATIVE = (
    "course_tools.datasets.simulated_ventral (simulated IT/V4-like responses to rendered objects)"
)
_CADENA_ALTERNATIVE = "course_tools.datasets.simulated_v1(images, n_neurons=...)"

#: HvM metadata columns renamed to course_tools names.
MAJAJHONG2015_COLUMNS = {
    "stimulus_id": "stimulus_id",
    "image_id": "stimulus_id",
    "category_name": "category",
    "object_name": "object",
    "ty": "x",
    "tz": "y",
    "s": "scale",
    "rxy": "rotation_xy",
    "rxz": "rotation_xz",
    "ryz": "rotation_yz",
    "rxy_semantic": "rotation_xy_semantic",
    "rxz_semantic": "rotation_xz_semantic",
    "ryz_semantic": "rotation_yz_semantic",
}
_NEUROID_COLUMNS = {
    "region": "area",
    "arr": "array",
    "col": "column",
    "x": "array_x",
    "y": "array_y",
}


# --------------------------------------------------------------------- fetching
def _parse_hash(known_hash: str) -> tuple[str, str]:
    if ":" in known_hash:
        alg, value = known_hash.split(":", 1)
    else:
        alg, value = "sha256", known_hash
    return alg.lower(), value.lower()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _expected_hash(remote: RemoteFile, path: Path) -> str | None:
    if remote.known_hash:
        return remote.known_hash
    side = _sidecar(path)
    if side.exists():
        return "sha256:" + side.read_text().split()[0]
    return None


def _hash_matches(path: Path, known_hash: str) -> bool:
    alg, value = _parse_hash(known_hash)
    return pooch.file_hash(str(path), alg=alg).lower() == value


def _record_sidecar(path: Path) -> str:
    digest = pooch.file_hash(str(path), alg="sha256")
    _sidecar(path).write_text(f"{digest}  {path.name}\n")
    return digest


def _move_aside(path: Path) -> Path:
    target = path.with_name(path.name + ".corrupt")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt{n}")
        n += 1
    path.rename(target)
    return target


def _how_to_fix(remote: RemoteFile, path: Path, alternative: str) -> str:
    return (
        f"To install it by hand, download {remote.url} on a machine with internet access and "
        f"copy it to {path} (then download=False works offline). Without the data, use the "
        f"simulated alternative: {alternative}."
    )


def fetch_file(
    remote: RemoteFile,
    folder: Path,
    *,
    download: bool = True,
    alternative: str = "a simulated dataset from course_tools.datasets",
    progress: bool = True,
) -> Path:
    """Return the path of a verified local copy of ``remote``, downloading it if allowed.

    Parameters
    ----------
    remote : RemoteFile
        File name, URL and known hash.
    folder : pathlib.Path
        Cache folder; created if missing.
    download : bool, default=True
        Download a missing or corrupt file. False never touches the network.
    alternative : str
        What to use instead, quoted in the error message.
    progress : bool, default=True
        Show a download progress bar.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    DatasetDownloadError
        The file is missing and cannot be downloaded, or fails its checksum.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / remote.name
    expected = _expected_hash(remote, path)
    corrupt_note = ""
    if path.exists():
        if expected is None:
            digest = _record_sidecar(path)
            warnings.warn(
                f"{path} has no published checksum; recorded its sha256 {digest} in "
                f"{_sidecar(path)}. Later loads are checked against it.",
                UserWarning,
                stacklevel=3,
            )
            return path
        if _hash_matches(path, expected):
            return path
        moved = _move_aside(path)
        corrupt_note = (
            f"The cached file {path} did not match its checksum ({expected}); it was moved "
            f"aside to {moved} (not deleted) and is not used."
        )
        if not download:
            raise DatasetDownloadError(
                f"{corrupt_note} download=False, so no fresh copy was fetched. "
                + _how_to_fix(remote, path, alternative)
            )
        warnings.warn(corrupt_note + " Downloading a fresh copy.", UserWarning, stacklevel=3)
    elif not download:
        raise DatasetDownloadError(
            f"{remote.name} is not in the cache ({path}) and download=False. "
            + _how_to_fix(remote, path, alternative)
        )
    try:
        pooch.retrieve(
            remote.url,
            known_hash=remote.known_hash,
            fname=remote.name,
            path=folder,
            progressbar=progress,
        )
    except Exception as err:  # network, HTTP and checksum errors all end here
        raise DatasetDownloadError(
            f"Could not download {remote.name} from {remote.url} into {path}: "
            f"{type(err).__name__}: {err}. {corrupt_note} " + _how_to_fix(remote, path, alternative)
        ) from err
    if remote.known_hash is None:
        _record_sidecar(path)
    return path


# ------------------------------------------------------------- Majaj & Hong 2015
def load_majajhong2015(
    *,
    data_dir: str | Path | None = None,
    download: bool = True,
    areas: Sequence[str] | str | None = ("V4", "IT"),
    variation: int | Iterable[int] | None = None,
    image_size: int | None = None,
    load_images: bool = True,
    time_bin: tuple[int, int] = (70, 170),
    progress: bool = True,
) -> NeuralDataset:
    """Brain-Score's public MajajHong2015 V4/IT multi-unit assembly with its HvM images.

    Downloads (once, sha1-checked) ``assy_dicarlo_MajajHong2015_public.nc`` (the Brain-Score
    assembly: presentation x neuroid x time_bin), ``image_dicarlo_hvm-public.csv`` (image
    metadata) and ``image_dicarlo_hvm-public.zip`` (256 x 256 px images).

    Parameters
    ----------
    data_dir : str or Path or None
        Cache folder; default ``data_home() / "majajhong2015"``.
    download : bool, default=True
        Download missing files; False never touches the network.
    areas : str, sequence of str or None, default=("V4", "IT")
        Regions to keep (the assembly's ``region`` coordinate); None keeps all.
    variation : int, iterable of int or None
        Keep only images of these HvM variation levels (the public set has 0 and 3); None
        keeps all.
    image_size : int or None
        Resize images to ``image_size`` x ``image_size`` pixels (antialiased bicubic); None
        keeps 256 x 256. All 3200 images at 256 px take 630 MB as uint8, at 128 px 160 MB.
    load_images : bool, default=True
        Load the images (False: ``stimuli`` is None and the zip is not fetched).
    time_bin : (start, end), default=(70, 170)
        Time bin in ms after stimulus onset, matched to ``time_bin_start``/``time_bin_end``.
    progress : bool, default=True
        Progress bars for downloading and reading images.

    Returns
    -------
    NeuralDataset
        ``responses`` (n_repeats, n_images, n_sites) float32: presentations are grouped by
        stimulus id (in their ``repetition`` order) into repeats; images shown fewer times are
        NaN-padded. ``stimuli`` uint8 (n_images, size, size, 3). ``stimulus_meta``: the HvM
        columns renamed to ``stimulus_id``, ``category``, ``object``, ``x`` (= ``ty``),
        ``y`` (= ``tz``), ``scale`` (= ``s``), ``rotation_xy``/``_xz``/``_yz`` (= ``rxy``,
        ``rxz``, ``ryz``), ``variation``, ``size``, ``filename``, ``background_id`` ... .
        ``neuron_meta``: ``area`` (= ``region``), ``neuroid_id``, ``animal``, ``array``,
        ``column``, ``row``, ``hemisphere``, ``subregion``, ``array_x``, ``array_y``.

    Raises
    ------
    DatasetDownloadError
        A file is missing and cannot be downloaded, or fails its checksum.
    """
    folder = Path(data_dir) if data_dir is not None else data_home() / "majajhong2015"
    fetch = {"download": download, "alternative": _MAJAJ_ALTERNATIVE, "progress": progress}
    assembly_path = fetch_file(MAJAJHONG2015_FILES["assembly"], folder, **fetch)
    csv_path = fetch_file(MAJAJHONG2015_FILES["stimulus_csv"], folder, **fetch)
    zip_path = (
        fetch_file(MAJAJHONG2015_FILES["stimulus_zip"], folder, **fetch) if load_images else None
    )

    with _open_assembly(assembly_path) as da:
        da = _select_time_bin(da, time_bin)
        neuron_meta = _coords_table(da, "neuroid")
        region = "region" if "region" in neuron_meta else "area"
        if region not in neuron_meta:
            raise ValueError(
                f"{assembly_path.name} has no 'region' coordinate on its neuroid dimension; "
                f"found {list(neuron_meta.columns)}."
            )
        keep_neuroids = _select_areas(neuron_meta[region].astype(str), areas)
        neuron_meta = neuron_meta.iloc[keep_neuroids].reset_index(drop=True)
        presentations = _coords_table(da, "presentation")
        values = (
            da.isel(neuroid=keep_neuroids)
            .transpose("presentation", "neuroid")
            .values.astype(np.float32, copy=False)
        )

    id_col = _id_column(presentations, assembly_path.name)
    stimuli_table = pd.read_csv(csv_path)
    csv_id = _id_column(stimuli_table, csv_path.name)
    stimuli_table = stimuli_table.rename(columns={csv_id: "stimulus_id"})
    presentations = presentations.rename(columns={id_col: "stimulus_id"})
    stimuli_table["stimulus_id"] = stimuli_table["stimulus_id"].astype(str)
    presentations["stimulus_id"] = presentations["stimulus_id"].astype(str)

    shown = pd.unique(presentations["stimulus_id"])
    missing = np.setdiff1d(shown, stimuli_table["stimulus_id"].to_numpy())
    if missing.size:
        raise ValueError(
            f"{missing.size} stimulus ids of the assembly are not in {csv_path.name} (e.g. "
            f"{missing[0]!r}); the assembly and the stimulus set do not belong together."
        )
    stimuli_table = stimuli_table[stimuli_table["stimulus_id"].isin(shown)]
    stimuli_table = stimuli_table.drop_duplicates("stimulus_id")
    stimuli_table = _add_constant_columns(stimuli_table, presentations)
    if variation is not None:
        stimuli_table = _select_variation(stimuli_table, variation)
    stimuli_table = stimuli_table.reset_index(drop=True)

    responses = _group_repeats(presentations, values, stimuli_table["stimulus_id"])
    images = None
    if load_images:
        images = _read_zip_images(zip_path, stimuli_table, image_size, progress)

    stimulus_meta = stimuli_table.rename(columns=MAJAJHONG2015_COLUMNS)
    neuron_meta = neuron_meta.rename(
        columns={
            k: v
            for k, v in _NEUROID_COLUMNS.items()
            if not (k == "region" and "area" in neuron_meta)
        }
    )
    return NeuralDataset(
        responses=responses,
        stimuli=images,
        stimulus_meta=stimulus_meta,
        neuron_meta=neuron_meta,
        name="MajajHong2015.public",
    )


class _open_assembly:
    """Open a Brain-Score netCDF assembly (netCDF4/HDF5 or netCDF3) as a DataArray."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> xr.DataArray:
        with open(self.path, "rb") as f:
            magic = f.read(8)
        engine = "h5netcdf" if magic.startswith(b"\x89HDF") else "scipy"
        try:
            self.ds = xr.open_dataset(self.path, engine=engine)
        except Exception as err:
            raise ValueError(f"Could not read {self.path} as a netCDF assembly: {err}") from err
        data_vars = [
            v for v in self.ds.data_vars if {"presentation", "neuroid"} <= set(self.ds[v].dims)
        ]
        if len(data_vars) != 1:
            self.ds.close()
            raise ValueError(
                f"{self.path.name} must hold one data variable with dims presentation and neuroid; "
                f"found {[(v, self.ds[v].dims) for v in self.ds.data_vars]}."
            )
        return self.ds[data_vars[0]]

    def __exit__(self, *exc) -> None:
        self.ds.close()


def _select_time_bin(da: xr.DataArray, time_bin: tuple[int, int]) -> xr.DataArray:
    if "time_bin" not in da.dims:
        return da
    if {"time_bin_start", "time_bin_end"} <= set(da.coords):
        starts = np.asarray(da["time_bin_start"].values).ravel()
        ends = np.asarray(da["time_bin_end"].values).ravel()
        match = np.flatnonzero((starts == time_bin[0]) & (ends == time_bin[1]))
        if match.size == 0:
            available = list(zip(starts.tolist(), ends.tolist(), strict=True))
            raise ValueError(
                f"time_bin {tuple(time_bin)} ms is not in the assembly; available: {available}."
            )
        return da.isel(time_bin=int(match[0]))
    if da.sizes["time_bin"] == 1:
        return da.isel(time_bin=0)
    raise ValueError(
        "The assembly has several time bins but no time_bin_start/time_bin_end coordinates."
    )


def _coords_table(da: xr.DataArray, dim: str) -> pd.DataFrame:
    """All 1-D coordinates along ``dim`` (MultiIndex levels included) as a DataFrame."""
    if isinstance(da.indexes.get(dim), pd.MultiIndex):
        da = da.reset_index(dim)
    columns = {
        name: np.asarray(coord.values)
        for name, coord in da.coords.items()
        if coord.dims == (dim,) and name != dim
    }
    table = pd.DataFrame(columns, index=pd.RangeIndex(da.sizes[dim]))
    for name in table.columns:
        if table[name].dtype == object and len(table) and isinstance(table[name].iloc[0], bytes):
            table[name] = table[name].str.decode("utf-8")
    return table


def _id_column(table: pd.DataFrame, source: str) -> str:
    for col in ("stimulus_id", "image_id"):
        if col in table.columns:
            return col
    raise ValueError(
        f"{source} has no 'stimulus_id' (or legacy 'image_id') column; found {list(table.columns)}."
    )


def _select_areas(region: pd.Series, areas) -> np.ndarray:
    if areas is None:
        return np.arange(len(region))
    wanted = [areas] if isinstance(areas, str) else list(areas)
    known = sorted(set(region))
    unknown = [a for a in wanted if a not in known]
    if unknown:
        raise ValueError(f"Unknown area(s) {unknown}; the assembly has {known}.")
    return np.flatnonzero(region.isin(wanted).to_numpy())


def _add_constant_columns(stimuli: pd.DataFrame, presentations: pd.DataFrame) -> pd.DataFrame:
    """Add the assembly's per-presentation columns that are constant within each stimulus."""
    extra = [c for c in presentations.columns if c not in stimuli.columns and c != "stimulus_id"]
    if not extra:
        return stimuli
    grouped = presentations.groupby("stimulus_id", sort=False)
    distinct = grouped[extra].nunique(dropna=False)
    constant = [c for c in extra if (distinct[c] <= 1).all()]
    if not constant:
        return stimuli
    first = grouped[constant].first().reset_index()
    return stimuli.merge(first, on="stimulus_id", how="left")


def _select_variation(stimuli: pd.DataFrame, variation) -> pd.DataFrame:
    if "variation" not in stimuli.columns:
        raise ValueError("The stimulus set has no 'variation' column; pass variation=None.")
    wanted = [variation] if isinstance(variation, int | np.integer) else list(variation)
    known = sorted(pd.unique(stimuli["variation"]).tolist())
    unknown = [v for v in wanted if v not in known]
    if unknown:
        raise ValueError(f"Unknown variation level(s) {unknown}; the data have {known}.")
    return stimuli[stimuli["variation"].isin(wanted)]


def _group_repeats(
    presentations: pd.DataFrame, values: np.ndarray, stimulus_ids: pd.Series
) -> np.ndarray:
    """(n_presentations, n_neurons) -> (n_repeats, n_stimuli, n_neurons), NaN-padded."""
    position = pd.Series(np.arange(len(stimulus_ids)), index=stimulus_ids.to_numpy())
    stim_index = presentations["stimulus_id"].map(position)
    keep = stim_index.notna().to_numpy()
    order = np.arange(len(presentations))
    if "repetition" in presentations.columns:
        order = np.argsort(presentations["repetition"].to_numpy(), kind="stable")
    table = pd.DataFrame({"stim": stim_index.to_numpy()[order], "row": order})[keep[order]]
    table["repeat"] = table.groupby("stim", sort=False).cumcount()
    n_repeats = int(table["repeat"].max()) + 1 if len(table) else 0
    out = np.full((n_repeats, len(stimulus_ids), values.shape[1]), np.nan, dtype=np.float32)
    out[table["repeat"].to_numpy(), table["stim"].to_numpy().astype(int)] = values[
        table["row"].to_numpy()
    ]
    return out


def _read_zip_images(
    zip_path: Path, stimuli: pd.DataFrame, image_size: int | None, progress: bool
) -> np.ndarray:
    from PIL import Image

    column = next((c for c in ("filename", "image_file_name") if c in stimuli.columns), None)
    if column is None:
        raise ValueError(
            "The stimulus csv has no 'filename' column naming each image in the zip; found "
            f"{list(stimuli.columns)}."
        )
    if image_size is not None and (not isinstance(image_size, int | np.integer) or image_size < 1):
        raise ValueError(f"image_size must be a positive integer or None, got {image_size!r}.")
    with zipfile.ZipFile(zip_path) as archive:
        members = {Path(m).name: m for m in archive.namelist() if not m.endswith("/")}
        images = None
        names = stimuli[column].astype(str).to_numpy()
        for i, name in enumerate(tqdm(names, desc="images", disable=not progress)):
            member = members.get(Path(name).name)
            if member is None:
                raise ValueError(f"Image {name!r} listed in the csv is not in {zip_path.name}.")
            with Image.open(io.BytesIO(archive.read(member))) as img:
                img = img.convert("RGB")
                if image_size is not None and img.size != (image_size, image_size):
                    img = img.resize((int(image_size), int(image_size)), Image.Resampling.BICUBIC)
                arr = np.asarray(img, dtype=np.uint8)
            if images is None:
                images = np.empty((len(names), *arr.shape), dtype=np.uint8)
            if arr.shape != images.shape[1:]:
                raise ValueError(
                    f"Image {name!r} has shape {arr.shape}, the others {images.shape[1:]}; pass "
                    "image_size= to resize them all."
                )
            images[i] = arr
    if images is None:
        raise ValueError("No images selected.")
    return images


# ------------------------------------------------------------------ Cadena 2019
def load_cadena2019(
    *,
    data_dir: str | Path | None = None,
    download: bool = True,
    image_types: str | Sequence[str] | None = None,
    progress: bool = True,
) -> NeuralDataset:
    """Macaque V1 responses to 7250 natural and texture-synthesised images (Cadena et al. 2019).

    Downloads the authors' GIN archive (once) into ``data_home() / "cadena2019"`` and reads
    ``Cadena_PlosCB19_data/data_binned_responses/cadena_ploscb_data.pkl`` from it.

    **Licence.** CC BY-NC-ND 4.0; the authors ask to be contacted before the data are used in
    research, and publishing a new analysis needs their permission. The notice is emitted as
    a :class:`DataLicenseNotice` warning on every load.

    **Checksum.** No hash is published. :data:`CADENA2019_ZIP` holds ``known_hash=None`` until
    one is recorded there; meanwhile the first download (or the first load of a file placed by
    hand) computes the archive's sha256 and stores it in a
    ``2e31e304e03d6357c98ac735a1fe5788.zip.sha256`` sidecar next to it, and every later load
    checks the archive against the sidecar (a mismatch moves the archive aside as
    ``.corrupt``). The archive contains a pickle, which can run code when loaded: load only an
    archive you downloaded from the URL above.

    Parameters
    ----------
    data_dir : str or Path or None
        Cache folder; default ``data_home() / "cadena2019"``.
    download : bool, default=True
        Download the archive if missing; False never touches the network.
    image_types : str, sequence of str or None
        Keep only these image types (``"original"``, ``"conv1"`` ... ``"conv4"``); None keeps
        all.
    progress : bool, default=True
        Download progress bar.

    Returns
    -------
    NeuralDataset
        ``responses`` (4, n_images, 166) spike counts, NaN where a neuron's session had only 2
        repeats or did not show the image; ``stimuli`` (n_images, 140, 140) grayscale
        (uint8 when the values are whole numbers in 0-255, float32 otherwise);
        ``stimulus_meta``: ``image_id``, ``image_number``, ``image_type``; ``neuron_meta``:
        ``area`` ("V1"), ``subject_id``, ``n_repeats``. The paper's model input is the
        centre crop ``stimuli[:, 30:-30:2, 30:-30:2]`` (40 x 40 px).
    """
    folder = Path(data_dir) if data_dir is not None else data_home() / "cadena2019"
    archive_path = fetch_file(
        CADENA2019_ZIP,
        folder,
        download=download,
        alternative=_CADENA_ALTERNATIVE,
        progress=progress,
    )
    warnings.warn(CADENA2019_LICENSE, DataLicenseNotice, stacklevel=2)
    try:
        with zipfile.ZipFile(archive_path) as archive:
            names = archive.namelist()
            member = (
                CADENA2019_MEMBER
                if CADENA2019_MEMBER in names
                else next((m for m in names if m.endswith(Path(CADENA2019_MEMBER).name)), None)
            )
            if member is None:
                raise ValueError(f"{archive_path.name} does not contain {CADENA2019_MEMBER}.")
            raw = archive.read(member)
    except zipfile.BadZipFile as err:
        raise ValueError(f"{archive_path} is not a valid zip archive: {err}") from err
    try:
        data = pickle.loads(raw)
    except UnicodeDecodeError:  # a pickle written by Python 2
        data = pickle.loads(raw, encoding="latin1")
    return _cadena_dataset(data, image_types)


def _cadena_dataset(data: dict, image_types) -> NeuralDataset:
    for key in ("images", "responses"):
        if key not in data:
            raise ValueError(f"The Cadena pickle has no {key!r} entry; it has {sorted(data)}.")
    responses = np.asarray(data["responses"], dtype=np.float64)
    if responses.ndim != 3:
        raise ValueError(
            f"Cadena responses must be (repeats, images, neurons), got {responses.shape}."
        )
    _, n_images, n_neurons = responses.shape
    images = np.asarray(data["images"])
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if np.issubdtype(images.dtype, np.floating):
        whole = np.all(np.mod(images, 1) == 0) and images.min() >= 0 and images.max() <= 255
        images = images.astype(np.uint8) if whole else images.astype(np.float32)
    stimulus_meta = pd.DataFrame(index=pd.RangeIndex(n_images))
    for key, column in (
        ("image_ids", "image_id"),
        ("image_numbers", "image_number"),
        ("image_types", "image_type"),
    ):
        if key in data:
            values = np.asarray(data[key]).reshape(-1)
            if values.size == n_images:
                if values.dtype.kind == "S":
                    values = values.astype(str)
                stimulus_meta[column] = values
    neuron_meta = pd.DataFrame({"area": np.full(n_neurons, "V1")})
    for key, column in (("subject_id", "subject_id"), ("repetitions", "n_repeats")):
        if key in data:
            values = np.asarray(data[key]).reshape(-1)
            if values.size == n_neurons:
                neuron_meta[column] = values
    ds = NeuralDataset(
        responses=responses,
        stimuli=images,
        stimulus_meta=stimulus_meta,
        neuron_meta=neuron_meta,
        name="Cadena2019",
    )
    if image_types is None:
        return ds
    wanted = [image_types] if isinstance(image_types, str) else list(image_types)
    if "image_type" not in stimulus_meta:
        raise ValueError("The Cadena pickle has no image_types entry; pass image_types=None.")
    known = sorted(set(stimulus_meta["image_type"].astype(str)))
    unknown = [t for t in wanted if t not in known]
    if unknown:
        raise ValueError(f"Unknown image type(s) {unknown}; the data have {known}.")
    return ds.select(stimuli=stimulus_meta["image_type"].astype(str).isin(wanted).to_numpy())


# --------------------------------------------------------------- deep-retina h5
def load_deep_retina_h5(path: str | Path, *, name: str | None = None) -> RetinaRecording:
    """Read a retina recording in the HDF5 layout of ``baccuslab/deep-retina``.

    Layout: groups ``train`` and ``test``, each with ``stimulus`` (n_frames, H, W) at 100 Hz
    and ``response/firing_rate_10ms`` (n_cells, n_frames); optionally
    ``test/repeats/cell01``, ``cell02``, ... each (n_repeats, n_test_frames) single-trial
    responses of one cell.

    Parameters
    ----------
    path : str or Path
        The ``.h5`` file.
    name : str or None
        Dataset name; default the file's stem.

    Returns
    -------
    RetinaRecording
        ``.train``: responses ``(1, n_frames, n_cells)`` from ``firing_rate_10ms``;
        ``.test``: the single trials of ``test/repeats`` ``(n_repeats, n_test_frames,
        n_cells)`` when present, else the test ``firing_rate_10ms`` as one repeat; None without
        a ``test`` group. ``stimuli`` are the frames (dtype as stored); ``neuron_meta`` has
        ``area`` ("RGC") and ``cell``; ``stimulus_meta`` ``frame`` and ``time`` (s).
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such file: {path}")
    name = name if name is not None else path.stem
    with h5py.File(path, "r") as f:
        if "train" not in f:
            raise ValueError(f"{path.name} has no 'train' group; top-level keys: {list(f.keys())}.")
        train_stim, train_rate = _deep_retina_group(f["train"], path.name, "train")
        n_cells = train_rate.shape[0]
        cells = [f"cell{i + 1:02d}" for i in range(n_cells)]
        test = None
        if "test" in f:
            test_stim, test_rate = _deep_retina_group(f["test"], path.name, "test")
            if test_rate.shape[0] != n_cells:
                raise ValueError(
                    f"{path.name}: train has {n_cells} cells but test has {test_rate.shape[0]}."
                )
            test_responses = test_rate.T[None]
            if "repeats" in f["test"]:
                keys = sorted(f["test/repeats"].keys(), key=_natural_key)
                if len(keys) != n_cells:
                    raise ValueError(
                        f"{path.name}: test/repeats has {len(keys)} cells, the responses {n_cells}."
                    )
                trials = [np.asarray(f["test/repeats"][k], dtype=np.float64) for k in keys]
                shapes = {t.shape for t in trials}
                if (
                    len(shapes) != 1
                    or trials[0].ndim != 2
                    or trials[0].shape[1] != test_stim.shape[0]
                ):
                    raise ValueError(
                        f"{path.name}: every test/repeats/cellXX must be (n_repeats, "
                        f"{test_stim.shape[0]}), got shapes {sorted(shapes)}."
                    )
                test_responses = np.stack(trials, axis=-1)  # (n_repeats, T, n_cells)
                cells = list(keys)
            test = (test_stim, test_responses)
    neuron_meta = pd.DataFrame({"area": ["RGC"] * n_cells, "cell": cells})
    train_ds = NeuralDataset(
        responses=train_rate.T[None],
        stimuli=train_stim,
        stimulus_meta=_frame_table(train_stim.shape[0]),
        neuron_meta=neuron_meta,
        name=f"{name}_train",
    )
    test_ds = None
    if test is not None:
        test_ds = NeuralDataset(
            responses=test[1],
            stimuli=test[0],
            stimulus_meta=_frame_table(test[0].shape[0]),
            neuron_meta=neuron_meta.copy(),
            name=f"{name}_test",
        )
    return RetinaRecording(train=train_ds, test=test_ds)


def _deep_retina_group(group, filename: str, label: str) -> tuple[np.ndarray, np.ndarray]:
    if (
        "stimulus" not in group
        or "response" not in group
        or "firing_rate_10ms" not in group["response"]
    ):
        raise ValueError(
            f"{filename}: group '{label}' needs 'stimulus' and 'response/firing_rate_10ms'; it has "
            f"{list(group.keys())}."
        )
    stim = np.asarray(group["stimulus"])
    rate = np.asarray(group["response/firing_rate_10ms"], dtype=np.float64)
    if stim.ndim != 3:
        raise ValueError(
            f"{filename}: {label}/stimulus must be (n_frames, H, W), got {stim.shape}."
        )
    if rate.ndim == 1:
        rate = rate[None]
    if rate.ndim != 2 or rate.shape[1] != stim.shape[0]:
        raise ValueError(
            f"{filename}: {label}/response/firing_rate_10ms must be (n_cells, {stim.shape[0]}), "
            f"got {rate.shape}."
        )
    return stim, rate


def _frame_table(n_frames: int) -> pd.DataFrame:
    return pd.DataFrame({"frame": np.arange(n_frames), "time": np.arange(n_frames) * 0.01})


def _natural_key(text: str):
    return [int(tok) if tok.isdigit() else tok for tok in re.split(r"(\d+)", text)]
