"""Tests of the real-data loaders on tiny fixture files written in the real formats.

No test touches the network: a fixture makes every socket connection fail, downloads are
replaced by copying fixture bytes, and the registry hashes are set to the fixtures' hashes.
"""

import hashlib
import io
import pickle
import socket
import zipfile

import h5py
import numpy as np
import pandas as pd
import pooch
import pytest
import xarray as xr
from PIL import Image

import course_tools.datasets.real as real
from course_tools.datasets import (
    DataLicenseNotice,
    DatasetDownloadError,
    load_cadena2019,
    load_deep_retina_h5,
    load_majajhong2015,
)
from course_tools.datasets.real import RemoteFile


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every attempt to reach the network fails (and is recorded)."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


def sha1(data: bytes) -> str:
    return "sha1:" + hashlib.sha1(data).hexdigest()


def fake_downloads(monkeypatch, payloads: dict):
    """Serve ``payloads[url]`` instead of downloading."""

    def download(self, url, output_file, pooch_obj, check_only=False):
        data = payloads[url]
        if hasattr(output_file, "write"):
            output_file.write(data)
        else:
            with open(output_file, "wb") as f:
                f.write(data)

    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", download)


# ------------------------------------------------------------- MajajHong2015
IDS = ["8a72e2bf", "0c1e7b53", "f3a9d011", "5d6b2c44", "a0b1c2d3"]
REPEATS = [3, 3, 2, 3, 1]  # presentations per image: images shown fewer times are NaN-padded
CATEGORIES = ["Animals", "Cars", "Animals", "Cars", "Faces"]
OBJECTS = ["bear", "astra", "cow", "beetle", "face0001"]
VARIATION = [0, 0, 3, 3, 3]
IMAGE_PIXELS = 16


def hvm_images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(5, IMAGE_PIXELS, IMAGE_PIXELS), dtype=np.uint8)


def hvm_csv(id_column):
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            id_column: IDS,
            "object_name": OBJECTS,
            "category_name": CATEGORIES,
            "variation": VARIATION,
            "ty": rng.normal(size=5),
            "tz": rng.normal(size=5),
            "s": rng.uniform(0.7, 1.3, size=5),
            "rxy": rng.normal(size=5),
            "rxz": rng.normal(size=5),
            "ryz": rng.normal(size=5),
            "rxy_semantic": rng.normal(size=5),
            "size": IMAGE_PIXELS,
            "background_id": [f"bg{i}" for i in range(5)],
            "filename": [
                f"{o}_{i}_{IMAGE_PIXELS}x{IMAGE_PIXELS}.png"
                for o, i in zip(OBJECTS, IDS, strict=True)
            ],
            "id": np.arange(1, 6),
        }
    )


def hvm_zip(csv: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for k, (name, pixels) in enumerate(zip(csv["filename"], hvm_images(), strict=True)):
            image = Image.fromarray(pixels, mode="L")
            if k % 2:  # HvM pngs come in more than one mode; both must load as RGB
                image = image.convert("RGB")
            png = io.BytesIO()
            image.save(png, format="PNG")
            archive.writestr(name, png.getvalue())
    return buffer.getvalue()


def hvm_presentations(id_column):
    """Presentation order of the assembly: shuffled images, repetition counted per image."""
    rng = np.random.default_rng(2)
    rows = [(img, rep) for img, n in enumerate(REPEATS) for rep in range(n)]
    order = rng.permutation(len(rows))
    return pd.DataFrame(
        {
            id_column: [IDS[rows[i][0]] for i in order],
            "repetition": [rows[i][1] for i in order],
            "stimulus": [rows[i][0] for i in order],
            "object_name": [OBJECTS[rows[i][0]] for i in order],
            "variation": [VARIATION[rows[i][0]] for i in order],
        }
    )


def hvm_assembly(id_column, engine, path):
    """A tiny assembly with the Brain-Score layout: neuroid x presentation x time_bin."""
    pres = hvm_presentations(id_column)
    rng = np.random.default_rng(3)
    values = rng.normal(size=(4, len(pres), 2)).astype(np.float32)
    coords = {name: ("presentation", pres[name].to_numpy()) for name in pres.columns}
    coords.update(
        {
            "neuroid_id": (
                "neuroid",
                ["Chabo_L_M_5_9", "Chabo_L_M_5_8", "Tito_L_P_1_0", "Tito_L_P_2_0"],
            ),
            "arr": ("neuroid", ["M", "M", "P", "P"]),
            "col": ("neuroid", [9, 8, 0, 0]),
            "row": ("neuroid", [5, 5, 1, 2]),
            "hemisphere": ("neuroid", ["L"] * 4),
            "subregion": ("neuroid", ["cIT", "pIT", "V4", "V4"]),
            "animal": ("neuroid", ["Chabo", "Chabo", "Tito", "Tito"]),
            "region": ("neuroid", ["IT", "IT", "V4", "V4"]),
            "x": ("neuroid", [1.8, 1.4, -0.2, 0.2]),
            "y": ("neuroid", [0.2, 0.6, 1.0, 1.4]),
            "time_bin_start": ("time_bin", [70, 170]),
            "time_bin_end": ("time_bin", [170, 270]),
        }
    )
    da = xr.DataArray(
        values,
        dims=("neuroid", "presentation", "time_bin"),
        coords=coords,
        name="dicarlo.MajajHong2015.public",
    )
    da.to_netcdf(path, engine=engine)
    return pres, values


def expected_responses(pres, values, id_column):
    """Group presentations into repeats by hand: (n_repeats, n_images, n_neurons)."""
    out = np.full((max(REPEATS), 5, 4), np.nan)
    for img, image_id in enumerate(IDS):
        rows = pres.index[pres[id_column] == image_id]
        rows = sorted(rows, key=lambda r: pres.loc[r, "repetition"])
        for rep, row in enumerate(rows):
            out[rep, img] = values[:, row, 0]
    return out


@pytest.fixture
def majaj_files(tmp_path, monkeypatch, request):
    id_column, engine = getattr(request, "param", ("image_id", "h5netcdf"))
    folder = tmp_path / "majaj"
    folder.mkdir()
    csv = hvm_csv(id_column)
    csv.to_csv(folder / "image_dicarlo_hvm-public.csv", index=False)
    (folder / "image_dicarlo_hvm-public.zip").write_bytes(hvm_zip(csv))
    pres, values = hvm_assembly(id_column, engine, folder / "assy_dicarlo_MajajHong2015_public.nc")
    for key, remote in real.MAJAJHONG2015_FILES.items():
        data = (folder / remote.name).read_bytes()
        monkeypatch.setitem(
            real.MAJAJHONG2015_FILES, key, RemoteFile(remote.name, remote.url, sha1(data))
        )
    return folder, csv, pres, values, id_column


@pytest.mark.parametrize(
    "majaj_files",
    [("image_id", "h5netcdf"), ("stimulus_id", "h5netcdf"), ("image_id", "scipy")],
    indirect=True,
)
def test_majajhong2015_reads_the_brainscore_layout(majaj_files, no_network):
    folder, csv, pres, values, id_column = majaj_files
    ds = load_majajhong2015(data_dir=folder, download=False, progress=False)
    assert ds.name == "MajajHong2015.public"
    np.testing.assert_array_equal(ds.responses, expected_responses(pres, values, id_column))
    assert ds.responses.shape == (3, 5, 4)
    assert np.isnan(ds.responses[1:, 4]).all() and np.isnan(ds.responses[2, 2]).all()
    meta = ds.stimulus_meta
    assert list(meta["stimulus_id"]) == IDS
    assert list(meta["category"]) == CATEGORIES and list(meta["object"]) == OBJECTS
    np.testing.assert_allclose(meta["x"], csv["ty"])
    np.testing.assert_allclose(meta["y"], csv["tz"])
    np.testing.assert_allclose(meta["scale"], csv["s"])
    np.testing.assert_allclose(meta["rotation_xy"], csv["rxy"])
    np.testing.assert_allclose(meta["rotation_xz"], csv["rxz"])
    np.testing.assert_allclose(meta["rotation_yz"], csv["ryz"])
    assert list(meta["variation"]) == VARIATION
    # presentation-level columns that vary within an image are not image metadata
    assert "repetition" not in meta and "stimulus" in meta
    neurons = ds.neuron_meta
    assert list(neurons["area"]) == ["IT", "IT", "V4", "V4"]
    assert list(neurons["array"]) == ["M", "M", "P", "P"]
    assert list(neurons["column"]) == [9, 8, 0, 0]
    np.testing.assert_allclose(neurons["array_x"], [1.8, 1.4, -0.2, 0.2])
    assert ds.stimuli.shape == (5, IMAGE_PIXELS, IMAGE_PIXELS, 3) and ds.stimuli.dtype == np.uint8
    for channel in range(3):
        np.testing.assert_array_equal(ds.stimuli[..., channel], hvm_images())
    assert not no_network


def test_majajhong2015_selects_areas_variation_and_time_bin(majaj_files):
    folder, _, pres, values, id_column = majaj_files
    it = load_majajhong2015(data_dir=folder, download=False, areas="IT", progress=False)
    np.testing.assert_array_equal(
        it.responses, expected_responses(pres, values, id_column)[..., :2]
    )
    v3 = load_majajhong2015(data_dir=folder, download=False, variation=3, load_images=False)
    assert list(v3.stimulus_meta["stimulus_id"]) == IDS[2:] and v3.stimuli is None
    late = load_majajhong2015(
        data_dir=folder, download=False, time_bin=(170, 270), load_images=False
    )
    np.testing.assert_array_equal(
        late.responses[0, 0],
        values[
            :,
            pres.index[pres[id_column] == IDS[0]][
                np.argmin(pres.loc[pres[id_column] == IDS[0], "repetition"].to_numpy())
            ],
            1,
        ],
    )
    small = load_majajhong2015(data_dir=folder, download=False, image_size=8, progress=False)
    assert small.stimuli.shape == (5, 8, 8, 3)
    expected = np.asarray(Image.fromarray(hvm_images()[0]).resize((8, 8), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(small.stimuli[0, ..., 0], expected)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"areas": "V1"}, r"Unknown area\(s\) \['V1'\]"),
        ({"variation": 6}, r"Unknown variation level\(s\) \[6\]"),
        ({"time_bin": (0, 50)}, r"available: \[\(70, 170\), \(170, 270\)\]"),
        ({"image_size": 0}, "image_size"),
    ],
)
def test_majajhong2015_bad_selection(majaj_files, kwargs, message):
    folder = majaj_files[0]
    with pytest.raises(ValueError, match=message):
        load_majajhong2015(data_dir=folder, download=False, progress=False, **kwargs)


def test_images_are_not_needed_without_load_images(majaj_files):
    folder = majaj_files[0]
    (folder / "image_dicarlo_hvm-public.zip").unlink()
    ds = load_majajhong2015(data_dir=folder, download=False, load_images=False)
    assert ds.stimuli is None and ds.n_stimuli == 5


def test_missing_file_without_download_never_touches_the_network(tmp_path, no_network):
    with pytest.raises(DatasetDownloadError) as info:
        load_majajhong2015(data_dir=tmp_path, download=False)
    message = str(info.value)
    assert "assy_dicarlo_MajajHong2015_public.nc" in message
    assert (
        "https://brainio.dicarlo.s3.amazonaws.com/assy_dicarlo_MajajHong2015_public.nc" in message
    )
    assert str(tmp_path / "assy_dicarlo_MajajHong2015_public.nc") in message
    assert "copy it to" in message and "simulated" in message
    assert not no_network


def test_offline_download_gives_one_clear_error(tmp_path, no_network):
    with pytest.raises(DatasetDownloadError) as info:
        load_majajhong2015(data_dir=tmp_path, download=True, progress=False)
    message = str(info.value)
    assert "Could not download assy_dicarlo_MajajHong2015_public.nc" in message
    assert "https://brainio.dicarlo.s3.amazonaws.com/" in message
    assert str(tmp_path) in message and "simulated" in message
    assert no_network  # pooch really tried, and the failure was turned into the clear error


def test_corrupt_cached_file_is_moved_aside_not_used(majaj_files):
    folder = majaj_files[0]
    assembly = folder / "assy_dicarlo_MajajHong2015_public.nc"
    assembly.write_bytes(b"not a netcdf file")
    with pytest.raises(DatasetDownloadError, match="did not match its checksum") as info:
        load_majajhong2015(data_dir=folder, download=False)
    moved = folder / "assy_dicarlo_MajajHong2015_public.nc.corrupt"
    assert str(moved) in str(info.value)
    assert not assembly.exists() and moved.read_bytes() == b"not a netcdf file"


def test_corrupt_cached_file_offline_is_kept_and_explained(majaj_files):
    folder = majaj_files[0]
    assembly = folder / "assy_dicarlo_MajajHong2015_public.nc"
    assembly.write_bytes(b"truncated")
    with (
        pytest.warns(UserWarning, match="moved aside"),
        pytest.raises(DatasetDownloadError) as info,
    ):
        load_majajhong2015(data_dir=folder, download=True, progress=False)
    assert "Could not download" in str(info.value) and ".corrupt" in str(info.value)
    assert (folder / "assy_dicarlo_MajajHong2015_public.nc.corrupt").read_bytes() == b"truncated"


def test_verified_cached_files_load_with_download_true_offline(majaj_files, no_network):
    folder = majaj_files[0]
    ds = load_majajhong2015(data_dir=folder, download=True, load_images=False, progress=False)
    assert ds.n_stimuli == 5 and not no_network  # pooch checked the hashes, no download


def test_download_is_verified_and_a_bad_download_is_rejected(majaj_files, tmp_path, monkeypatch):
    folder = majaj_files[0]
    payloads = {r.url: (folder / r.name).read_bytes() for r in real.MAJAJHONG2015_FILES.values()}
    fake_downloads(monkeypatch, payloads)
    fresh = tmp_path / "fresh"
    ds = load_majajhong2015(data_dir=fresh, download=True, progress=False)
    assert ds.responses.shape == (3, 5, 4)
    for remote in real.MAJAJHONG2015_FILES.values():
        assert (fresh / remote.name).read_bytes() == payloads[remote.url]
    # a download whose content does not match the registry hash is refused
    bad = {url: data + b"tampered" for url, data in payloads.items()}
    fake_downloads(monkeypatch, bad)
    other = tmp_path / "other"
    with pytest.raises(DatasetDownloadError, match="Could not download"):
        load_majajhong2015(data_dir=other, download=True, progress=False)
    assert not (other / "assy_dicarlo_MajajHong2015_public.nc").exists()


# ---------------------------------------------------------------- Cadena 2019
def cadena_pickle() -> dict:
    rng = np.random.default_rng(4)
    responses = rng.poisson(3.0, size=(4, 6, 3)).astype(float)
    responses[2:, :, 1] = np.nan  # a session with only 2 repeats
    responses[:, 5, 2] = np.nan  # an image this session did not show
    return {
        "images": rng.integers(0, 256, size=(6, 20, 20)).astype(np.float64),
        "responses": responses,
        "repetitions": np.array([4, 2, 4]),
        "image_types": np.array(["original", "conv1", "conv2", "conv3", "conv4", "original"])[
            :, None
        ],
        "image_ids": np.arange(100, 106)[:, None],
        "image_numbers": np.array([1, 1, 1, 1, 1, 2]),
        "subject_id": np.array([1, 1, 2]),
    }


def cadena_zip(data: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(real.CADENA2019_MEMBER, pickle.dumps(data))
        archive.writestr("Cadena_PlosCB19_data/README.md", "readme")
    return buffer.getvalue()


def check_cadena(ds, data):
    np.testing.assert_array_equal(ds.responses, data["responses"])
    assert ds.stimuli.dtype == np.uint8
    np.testing.assert_array_equal(ds.stimuli, data["images"].astype(np.uint8))
    assert list(ds.stimulus_meta["image_type"]) == list(data["image_types"].ravel())
    assert list(ds.stimulus_meta["image_id"]) == list(range(100, 106))
    assert list(ds.neuron_meta["area"]) == ["V1"] * 3
    assert list(ds.neuron_meta["n_repeats"]) == [4, 2, 4]
    assert list(ds.neuron_meta["subject_id"]) == [1, 1, 2]
    assert ds.name == "Cadena2019"


def test_cadena2019_hand_placed_archive_records_a_hash(tmp_path):
    data = cadena_pickle()
    archive = tmp_path / real.CADENA2019_ZIP.name
    archive.write_bytes(cadena_zip(data))
    with pytest.warns(UserWarning, match="recorded its sha256"), pytest.warns(DataLicenseNotice):
        ds = load_cadena2019(data_dir=tmp_path, download=False)
    check_cadena(ds, data)
    sidecar = tmp_path / (real.CADENA2019_ZIP.name + ".sha256")
    assert sidecar.read_text().split()[0] == hashlib.sha256(archive.read_bytes()).hexdigest()
    # later loads are checked against the recorded hash
    with pytest.warns(DataLicenseNotice, match="CC BY-NC-ND 4.0"):
        check_cadena(load_cadena2019(data_dir=tmp_path, download=False), data)
    archive.write_bytes(cadena_zip({**data, "subject_id": np.array([9, 9, 9])}))
    with pytest.raises(DatasetDownloadError, match="did not match its checksum"):
        load_cadena2019(data_dir=tmp_path, download=False)
    assert (tmp_path / (real.CADENA2019_ZIP.name + ".corrupt")).exists()


def test_cadena2019_first_download_records_a_hash(tmp_path, monkeypatch):
    data = cadena_pickle()
    payload = cadena_zip(data)
    fake_downloads(monkeypatch, {real.CADENA2019_ZIP.url: payload})
    with pytest.warns(DataLicenseNotice):
        ds = load_cadena2019(data_dir=tmp_path, download=True, progress=False)
    check_cadena(ds, data)
    sidecar = tmp_path / (real.CADENA2019_ZIP.name + ".sha256")
    assert sidecar.read_text().split()[0] == hashlib.sha256(payload).hexdigest()


def test_cadena2019_with_a_known_hash_and_image_type_selection(tmp_path, monkeypatch):
    data = cadena_pickle()
    payload = cadena_zip(data)
    (tmp_path / real.CADENA2019_ZIP.name).write_bytes(payload)
    known = RemoteFile(
        real.CADENA2019_ZIP.name,
        real.CADENA2019_ZIP.url,
        "sha256:" + hashlib.sha256(payload).hexdigest(),
    )
    monkeypatch.setattr(real, "CADENA2019_ZIP", known)
    with pytest.warns(DataLicenseNotice):
        originals = load_cadena2019(data_dir=tmp_path, download=False, image_types="original")
    assert not (tmp_path / (known.name + ".sha256")).exists()
    assert originals.n_stimuli == 2 and list(originals.stimulus_meta["image_id"]) == [100, 105]
    np.testing.assert_array_equal(originals.responses, data["responses"][:, [0, 5]])
    with (
        pytest.warns(DataLicenseNotice),
        pytest.raises(ValueError, match=r"Unknown image type\(s\) \['conv9'\]"),
    ):
        load_cadena2019(data_dir=tmp_path, download=False, image_types=["conv9"])


def test_cadena2019_offline_error_names_the_simulated_alternative(tmp_path):
    with pytest.raises(DatasetDownloadError) as info:
        load_cadena2019(data_dir=tmp_path, download=True, progress=False)
    assert real.CADENA2019_ZIP.url in str(info.value)
    assert "simulated_v1" in str(info.value)


# -------------------------------------------------------------- deep-retina h5
def write_deep_retina(path, *, repeats=True, test=True, n_cells=3):
    rng = np.random.default_rng(5)
    content = {
        "train_stimulus": rng.normal(size=(60, 10, 10)).astype(np.float32),
        "train_rate": rng.random((n_cells, 60)),
        "test_stimulus": rng.normal(size=(30, 10, 10)).astype(np.float32),
        "test_rate": rng.random((n_cells, 30)),
        "repeats": rng.poisson(1.0, size=(n_cells, 5, 30)).astype(float),
    }
    with h5py.File(path, "w") as f:
        f["train/stimulus"] = content["train_stimulus"]
        f["train/response/firing_rate_10ms"] = content["train_rate"]
        f["train/response/binned"] = content["train_rate"]
        if test:
            f["test/stimulus"] = content["test_stimulus"]
            f["test/response/firing_rate_10ms"] = content["test_rate"]
            if repeats:
                for cell in reversed(range(n_cells)):  # written out of order on purpose
                    f[f"test/repeats/cell{cell + 1:02d}"] = content["repeats"][cell]
    return content


def test_deep_retina_h5_with_repeats(tmp_path):
    path = tmp_path / "naturalscene.h5"
    content = write_deep_retina(path)
    rec = load_deep_retina_h5(path)
    assert rec.train.responses.shape == (1, 60, 3)
    np.testing.assert_allclose(rec.train.responses[0], content["train_rate"].T)
    np.testing.assert_array_equal(rec.train.stimuli, content["train_stimulus"])
    assert rec.test.responses.shape == (5, 30, 3)
    for cell in range(3):
        np.testing.assert_array_equal(rec.test.responses[:, :, cell], content["repeats"][cell])
    assert list(rec.test.neuron_meta["cell"]) == ["cell01", "cell02", "cell03"]
    assert set(rec.train.neuron_meta["area"]) == {"RGC"}
    assert rec.train.name == "naturalscene_train"
    np.testing.assert_allclose(rec.test.stimulus_meta["time"], np.arange(30) * 0.01)


def test_deep_retina_h5_without_repeats_or_test(tmp_path):
    content = write_deep_retina(tmp_path / "a.h5", repeats=False)
    rec = load_deep_retina_h5(tmp_path / "a.h5", name="whitenoise")
    assert rec.test.responses.shape == (1, 30, 3) and rec.test.name == "whitenoise_test"
    np.testing.assert_allclose(rec.test.responses[0], content["test_rate"].T)
    write_deep_retina(tmp_path / "b.h5", test=False)
    assert load_deep_retina_h5(tmp_path / "b.h5").test is None


def test_deep_retina_h5_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_deep_retina_h5(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f["stimulus"] = np.zeros((3, 4, 4))
    with pytest.raises(ValueError, match="no 'train' group"):
        load_deep_retina_h5(tmp_path / "empty.h5")
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f["train/stimulus"] = np.zeros((10, 4, 4))
        f["train/response/firing_rate_10ms"] = np.zeros((2, 9))
    with pytest.raises(ValueError, match=r"must be \(n_cells, 10\)"):
        load_deep_retina_h5(tmp_path / "bad.h5")
    write_deep_retina(tmp_path / "c.h5")
    with h5py.File(tmp_path / "c.h5", "a") as f:
        del f["test/repeats/cell03"]
    with pytest.raises(ValueError, match="test/repeats has 2 cells"):
        load_deep_retina_h5(tmp_path / "c.h5")
