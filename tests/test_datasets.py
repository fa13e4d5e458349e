"""Tests of the dataset type: validation, mean responses, selection and the xarray round trip."""

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from course_tools.datasets import NeuralDataset, RetinaRecording


def make_dataset(n_repeats=3, n_stimuli=5, n_neurons=4, seed=0, with_truth=True):
    rng = np.random.default_rng(seed)
    responses = rng.poisson(2.0, size=(n_repeats, n_stimuli, n_neurons)).astype(float)
    responses[-1, 1, 0] = np.nan
    truth = None
    if with_truth:
        truth = {
            "rates": rng.random((n_stimuli, n_neurons)),
            "noise_variance": rng.random(n_neurons),
            "params": pd.DataFrame({"gain": np.arange(n_neurons, dtype=float)}),
            "note": "unlabelled entries are copied unchanged",
            "axes": {
                "rates": ("stimulus", "neuron"),
                "noise_variance": ("neuron",),
                "params": ("neuron",),
            },
        }
    return NeuralDataset(
        responses=responses,
        stimuli=rng.integers(0, 256, size=(n_stimuli, 6, 6, 3), dtype=np.uint8),
        stimulus_meta=pd.DataFrame(
            {
                "category": list("aabbc")[:n_stimuli],
                "x": np.linspace(-1, 1, n_stimuli),
                "id": [f"s{i}" for i in range(n_stimuli)],
            }
        ),
        neuron_meta=pd.DataFrame(
            {
                "area": (["V4", "IT"] * n_neurons)[:n_neurons],
                "x": np.arange(n_neurons) * 0.5,
                "animal": ["Tito"] * n_neurons,
            }
        ),
        ground_truth=truth,
        name="toy",
    )


# ----------------------------------------------------------------- construction
def test_sizes_and_repr():
    ds = make_dataset()
    assert (ds.n_repeats, ds.n_stimuli, ds.n_neurons) == (3, 5, 4)
    text = repr(ds)
    assert "n_stimuli=5" in text and "'IT': 2" in text


def test_integer_responses_become_float_and_meta_index_is_reset():
    meta = pd.DataFrame({"area": ["V1", "V1"]}, index=[10, 20])
    ds = NeuralDataset(np.ones((1, 3, 2), dtype=int), None, None, meta)
    assert ds.responses.dtype == np.float64
    assert list(ds.neuron_meta.index) == [0, 1]
    assert len(ds.stimulus_meta) == 3 and ds.stimulus_meta.shape[1] == 0


def test_float32_responses_are_kept():
    ds = NeuralDataset(
        np.ones((1, 2, 1), dtype=np.float32), None, None, pd.DataFrame({"area": ["IT"]})
    )
    assert ds.responses.dtype == np.float32


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"responses": np.ones((5, 4))}, ValueError, r"responses\[None\]"),
        ({"responses": np.ones((1, 1, 5, 4))}, ValueError, "n_repeats, n_stimuli, n_neurons"),
        ({"responses": np.full((1, 5, 4), np.inf)}, ValueError, "inf"),
        ({"responses": np.array([[["a"]]])}, TypeError, "numeric"),
        ({"stimuli": np.zeros((4, 6, 6))}, ValueError, "one entry per stimulus"),
        ({"stimulus_meta": pd.DataFrame({"a": [1, 2]})}, ValueError, "one row per stimulus"),
        ({"stimulus_meta": {"a": [1]}}, TypeError, "DataFrame"),
        ({"neuron_meta": pd.DataFrame({"region": ["V1"] * 4})}, ValueError, "column 'area'"),
        ({"neuron_meta": pd.DataFrame({"area": ["V1"] * 3})}, ValueError, "one row per neuron"),
        ({"neuron_meta": None}, ValueError, "neuron_meta is required"),
        ({"ground_truth": [1, 2]}, TypeError, "ground_truth"),
        ({"name": 3}, TypeError, "name"),
    ],
)
def test_invalid_construction(kwargs, error, message):
    base = {
        "responses": np.ones((1, 5, 4)),
        "stimuli": None,
        "stimulus_meta": None,
        "neuron_meta": pd.DataFrame({"area": ["V1"] * 4}),
    }
    base.update(kwargs)
    with pytest.raises(error, match=message):
        NeuralDataset(**base)


# ------------------------------------------------------------------- analysis
def test_mean_responses_ignores_missing_repeats():
    ds = make_dataset()
    expected = np.empty((ds.n_stimuli, ds.n_neurons))
    for s in range(ds.n_stimuli):
        for n in range(ds.n_neurons):
            trials = [v for v in ds.responses[:, s, n] if not np.isnan(v)]
            expected[s, n] = sum(trials) / len(trials)
    np.testing.assert_allclose(ds.mean_responses(), expected)


def test_mean_responses_all_missing_gives_nan_without_warning():
    r = np.ones((2, 2, 1))
    r[:, 0, 0] = np.nan
    ds = NeuralDataset(r, None, None, pd.DataFrame({"area": ["V1"]}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean = ds.mean_responses()
    assert np.isnan(mean[0, 0]) and mean[1, 0] == 1.0


# ------------------------------------------------------------------ selection
def test_select_by_positions_subsets_everything_consistently():
    ds = make_dataset()
    sub = ds.select(stimuli=[4, 0], neurons=[1])
    np.testing.assert_array_equal(sub.responses, ds.responses[:, [4, 0]][:, :, [1]])
    np.testing.assert_array_equal(sub.stimuli, ds.stimuli[[4, 0]])
    assert list(sub.stimulus_meta["id"]) == ["s4", "s0"]
    assert list(sub.stimulus_meta.index) == [0, 1]
    assert list(sub.neuron_meta["x"]) == [0.5]
    np.testing.assert_array_equal(
        sub.ground_truth["rates"], ds.ground_truth["rates"][[4, 0]][:, [1]]
    )
    np.testing.assert_array_equal(
        sub.ground_truth["noise_variance"], ds.ground_truth["noise_variance"][[1]]
    )
    assert list(sub.ground_truth["params"]["gain"]) == [1.0]
    assert sub.ground_truth["note"] == ds.ground_truth["note"]
    assert sub.name == "toy"


def test_select_returns_copies():
    ds = make_dataset()
    sub = ds.select()
    sub.responses[0, 0, 0] = -1.0
    sub.ground_truth["rates"][0, 0] = -1.0
    assert ds.responses[0, 0, 0] != -1.0 and ds.ground_truth["rates"][0, 0] != -1.0


def test_select_by_mask_slice_and_area():
    ds = make_dataset()
    mask = np.array([True, False, True, False, False])
    np.testing.assert_array_equal(ds.select(stimuli=mask).responses, ds.responses[:, mask])
    np.testing.assert_array_equal(ds.select(stimuli=slice(1, 3)).responses, ds.responses[:, 1:3])
    it = ds.select(neurons="IT")
    assert it.n_neurons == 2 and set(it.neuron_meta["area"]) == {"IT"}
    np.testing.assert_array_equal(it.responses, ds.responses[:, :, [1, 3]])
    assert ds.select(neurons=["IT", "V4"]).n_neurons == 4
    assert ds.select(neurons=np.array(["V4"])).n_neurons == 2
    np.testing.assert_array_equal(ds.select(neurons=[-1]).responses, ds.responses[:, :, [3]])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"neurons": "V1"}, ValueError, r"areas \['IT', 'V4'\]"),
        ({"stimuli": np.array([True, False])}, ValueError, r"shape \(5,\)"),
        ({"stimuli": [0.5, 1.0]}, TypeError, "integer positions"),
        ({"neurons": [7]}, IndexError, "positions must lie"),
    ],
)
def test_select_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        make_dataset().select(**kwargs)


# --------------------------------------------------------------------- xarray
def assert_same_dataset(a: NeuralDataset, b: NeuralDataset):
    np.testing.assert_array_equal(a.responses, b.responses)
    pd.testing.assert_frame_equal(a.stimulus_meta, b.stimulus_meta, check_dtype=False)
    pd.testing.assert_frame_equal(a.neuron_meta, b.neuron_meta, check_dtype=False)
    assert a.name == b.name


def test_to_xarray_labels():
    ds = make_dataset()
    da = ds.to_xarray()
    assert da.dims == ("repeat", "stimulus", "neuron")
    assert da.shape == (3, 5, 4)
    # "x" is a column of both tables: it gets a dimension prefix on both
    assert list(da["stimulus_x"].values) == list(ds.stimulus_meta["x"])
    assert list(da["neuron_x"].values) == list(ds.neuron_meta["x"])
    assert list(da["category"].values) == list(ds.stimulus_meta["category"])
    assert da["area"].dims == ("neuron",)
    # labelled selection works like in Brain-Score assemblies
    it = da.where(da["area"] == "IT", drop=True)
    np.testing.assert_array_equal(it.values, ds.responses[:, :, [1, 3]])


def test_xarray_round_trip_in_memory():
    ds = make_dataset()
    back = NeuralDataset.from_xarray(
        ds.to_xarray(), stimuli=ds.stimuli, ground_truth=ds.ground_truth
    )
    assert_same_dataset(ds, back)
    assert list(back.stimulus_meta.columns) == ["category", "x", "id"]
    assert list(back.neuron_meta.columns) == ["area", "x", "animal"]
    np.testing.assert_array_equal(back.stimuli, ds.stimuli)


def test_xarray_round_trip_through_netcdf(tmp_path):
    ds = make_dataset()
    path = tmp_path / "dataset.nc"
    ds.to_xarray().to_netcdf(path, engine="h5netcdf")
    with xr.open_dataarray(path, engine="h5netcdf") as da:
        back = NeuralDataset.from_xarray(da.load())
    assert_same_dataset(ds, back)


def test_meta_column_named_like_a_dimension_round_trips():
    ds = NeuralDataset(
        np.zeros((1, 2, 2)),
        None,
        pd.DataFrame({"stimulus": ["a", "b"]}),
        pd.DataFrame({"area": ["V1", "V1"], "repeat": [3, 4]}),
    )
    back = NeuralDataset.from_xarray(ds.to_xarray())
    assert_same_dataset(ds, back)


def test_from_xarray_accepts_any_dim_order_and_2d():
    ds = make_dataset()
    da = ds.to_xarray().transpose("neuron", "repeat", "stimulus")
    assert_same_dataset(ds, NeuralDataset.from_xarray(da))
    two_d = xr.DataArray(
        np.arange(6.0).reshape(3, 2),
        dims=("stimulus", "neuron"),
        coords={"area": ("neuron", ["IT", "IT"])},
    )
    single = NeuralDataset.from_xarray(two_d, name="means")
    assert single.responses.shape == (1, 3, 2) and single.name == "means"


def test_from_xarray_reads_multiindex_and_dimension_labels():
    responses = np.arange(12.0).reshape(2, 3, 2)
    stimulus_index = pd.MultiIndex.from_arrays(
        [["a", "b", "c"], [0, 0, 3]], names=["stimulus_id", "variation"]
    )
    da = xr.DataArray(
        responses,
        dims=("repeat", "stimulus", "neuron"),
        coords={
            "stimulus": stimulus_index,
            "neuron": ["n1", "n2"],
            "area": ("neuron", ["V4", "IT"]),
        },
    )
    ds = NeuralDataset.from_xarray(da)
    assert list(ds.stimulus_meta["stimulus_id"]) == ["a", "b", "c"]
    assert list(ds.stimulus_meta["variation"]) == [0, 0, 3]
    assert list(ds.neuron_meta["neuron"]) == ["n1", "n2"]
    np.testing.assert_array_equal(ds.responses, responses)


def test_from_xarray_errors():
    with pytest.raises(TypeError, match="DataArray"):
        NeuralDataset.from_xarray(np.zeros((1, 2, 3)))
    brainio_like = xr.DataArray(np.zeros((2, 3)), dims=("neuroid", "presentation"))
    with pytest.raises(ValueError, match="load_majajhong2015"):
        NeuralDataset.from_xarray(brainio_like)
    no_area = xr.DataArray(np.zeros((1, 2, 3)), dims=("repeat", "stimulus", "neuron"))
    with pytest.raises(ValueError, match="column 'area'"):
        NeuralDataset.from_xarray(no_area)


# ------------------------------------------------------------ RetinaRecording
def test_retina_recording_checks_its_parts():
    train = make_dataset(n_repeats=1, with_truth=False)
    test = make_dataset(n_repeats=3, with_truth=False)
    rec = RetinaRecording(train=train, test=test)
    assert rec.test.n_repeats == 3
    assert RetinaRecording(train=train).test is None
    with pytest.raises(TypeError, match="train must be a NeuralDataset"):
        RetinaRecording(train=np.zeros(3))
    with pytest.raises(ValueError, match="same cells"):
        RetinaRecording(train=train, test=make_dataset(n_neurons=2, with_truth=False))
