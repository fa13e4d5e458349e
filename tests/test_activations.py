"""course_tools.activations: layer names in forward order and activations equal to torchvision's.

References are independent of our code: torchvision's ``create_feature_extractor`` (torch.fx),
``get_graph_node_names``, and direct calls of the modules. No pretrained weights, no network.
"""

import warnings
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler, TensorDataset
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

from course_tools.activations import extract, list_layers

ATOL = 1e-5


# ------------------------------------------------------------------------------------------------
# Models and images
# ------------------------------------------------------------------------------------------------


def make_cnn() -> nn.Sequential:
    """A small AlexNet-like network: conv/relu/pool features, then a classifier."""
    torch.manual_seed(0)
    features = nn.Sequential(
        nn.Conv2d(3, 8, kernel_size=5, stride=2, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )
    classifier = nn.Sequential(
        nn.Dropout(0.5), nn.Linear(16 * 2 * 2, 32), nn.ReLU(), nn.Linear(32, 10)
    )
    return nn.Sequential(
        OrderedDict(
            features=features,
            pool=nn.AdaptiveAvgPool2d(2),
            flatten=nn.Flatten(),
            classifier=classifier,
        )
    )


def make_resnet() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None)


def make_vit() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64
    )


def float_images(n: int, size: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).random((n, channels, size, size), dtype=np.float32)


def uint8_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def fx_reference(model: nn.Module, images: np.ndarray, layers: list[str]) -> dict:
    """Activations from torchvision's torch.fx feature extractor, the independent reference."""
    model.eval()
    with torch.no_grad():
        out = create_feature_extractor(model, return_nodes=layers)(torch.from_numpy(images))
    return {name: value.numpy() for name, value in out.items()}


def assert_model_is_clean(model: nn.Module, training_flags: list[bool]) -> None:
    """No hooks left on any module and every module's training flag as before."""
    for module in model.modules():
        assert not module._forward_hooks
        assert not module._forward_pre_hooks
    assert [m.training for m in model.modules()] == training_flags


CASES = {
    "cnn": (
        make_cnn,
        32,
        ["features.0", "features.2", "features.4", "features", "classifier.1", "classifier"],
    ),
    "resnet": (
        make_resnet,
        64,
        ["conv1", "layer1.0", "layer1", "layer2.1", "layer3", "layer4.0", "layer4", "fc"],
    ),
    "vit": (
        make_vit,
        32,
        ["conv_proj", "encoder.layers.encoder_layer_0", "encoder.layers.encoder_layer_1", "heads"],
    ),
}


# ------------------------------------------------------------------------------------------------
# Values: equal to torchvision's feature extractor
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_values_match_torchvision_feature_extractor(case):
    make, size, layers = CASES[case]
    model = make()
    images = float_images(6, size)
    reference = fx_reference(make(), images, layers)

    flat = extract(model, images, layers, batch_size=4, progress=False)
    shaped = extract(model, images, layers, batch_size=4, flatten=False, progress=False)

    assert list(flat) == layers
    for name in layers:
        assert flat[name].dtype == np.float32
        assert shaped[name].shape == reference[name].shape
        assert flat[name].shape == (6, reference[name][0].size)
        np.testing.assert_allclose(shaped[name], reference[name], atol=ATOL, rtol=0)
        np.testing.assert_allclose(flat[name], reference[name].reshape(6, -1), atol=ATOL, rtol=0)


def test_vit_encoder_layers_give_token_outputs():
    images = float_images(3, 32)
    out = extract(
        make_vit(), images, "encoder.layers.encoder_layer_1", flatten=False, progress=False
    )
    # 16 patches of 8x8 plus the class token, hidden_dim 32.
    assert out["encoder.layers.encoder_layer_1"].shape == (3, 17, 32)


def test_tuple_output_gives_its_first_element():
    torch.manual_seed(0)

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Conv2d(3, 8, kernel_size=4, stride=4)
            self.attention = nn.MultiheadAttention(8, num_heads=2, batch_first=True)

        def forward(self, x):
            tokens = self.embed(x).flatten(2).transpose(1, 2)
            return self.attention(tokens, tokens, tokens)[0].mean(1)

    model = Attention().eval()
    images = float_images(5, 16)
    with torch.no_grad():
        tokens = model.embed(torch.from_numpy(images)).flatten(2).transpose(1, 2)
        expected, weights = model.attention(tokens, tokens, tokens)

    out = extract(model, images, "attention", flatten=False, progress=False)["attention"]

    assert out.shape == expected.shape == (5, 16, 8)
    assert weights.shape != expected.shape
    np.testing.assert_allclose(out, expected.numpy(), atol=ATOL, rtol=0)


# ------------------------------------------------------------------------------------------------
# list_layers
# ------------------------------------------------------------------------------------------------


def test_list_layers_of_a_sequential_model_in_forward_order():
    assert list_layers(make_cnn(), input_shape=(3, 32, 32)) == [
        "features.0",
        "features.1",
        "features.2",
        "features.3",
        "features.4",
        "features.5",
        "features",
        "pool",
        "flatten",
        "classifier.0",
        "classifier.1",
        "classifier.2",
        "classifier.3",
        "classifier",
    ]


def test_list_layers_follows_call_order_not_registration_order():
    class Backwards(nn.Module):
        def __init__(self):
            super().__init__()
            self.late = nn.Conv2d(4, 4, 1)  # registered first, called second
            self.early = nn.Conv2d(3, 4, 1)
            self.unused = nn.Linear(3, 3)

        def forward(self, x):
            return self.late(self.early(x))

    layers = list_layers(Backwards(), input_shape=(3, 8, 8))

    assert [n for n, _ in Backwards().named_children()] == ["late", "early", "unused"]
    assert layers == ["early", "late"]


def test_list_layers_of_resnet_agree_with_the_fx_graph_order():
    model = make_resnet()
    layers = list_layers(model, input_shape=(3, 64, 64))
    _, fx_nodes = get_graph_node_names(model)  # fx call order; leaf modules keep their names

    leaves = [name for name in layers if name in fx_nodes]
    assert leaves == [node for node in fx_nodes if node in set(leaves)]
    assert len(leaves) > 40
    # Blocks come right after their last sub-module; a reused module (relu) is no layer.
    assert layers.index("layer1.0") == layers.index("layer1.0.bn2") + 1
    assert layers.index("layer1") == layers.index("layer1.1") + 1
    assert "layer1.0.relu" not in layers
    assert layers[-2:] == ["avgpool", "fc"]


def test_list_layers_of_vit_without_input_shape():
    layers = list_layers(make_vit())  # the dummy image size comes from model.image_size

    assert layers[0] == "conv_proj"
    assert "encoder.layers.encoder_layer_0.self_attention" in layers
    assert "encoder.layers.encoder_layer_0.self_attention.out_proj" not in layers  # never called
    assert layers.index("encoder.layers.encoder_layer_0") < layers.index(
        "encoder.layers.encoder_layer_1"
    )
    assert layers[-3:] == ["encoder", "heads.head", "heads"]


def test_list_layers_restores_the_model_and_explains_a_bad_dummy_size():
    model = make_cnn()
    model.train()
    flags = [m.training for m in model.modules()]
    fixed_size = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 38 * 38, 2))

    list_layers(model)
    with pytest.raises(ValueError, match=r"failed in module '2' \(Linear.*input_shape"):
        list_layers(fixed_size)

    assert_model_is_clean(model, flags)
    assert list_layers(fixed_size, input_shape=(1, 40, 40)) == ["0", "1", "2"]
    with pytest.raises(ValueError, match="three positive integers"):
        list_layers(model, input_shape=(32, 32))


# ------------------------------------------------------------------------------------------------
# Early stop, eval mode, hooks
# ------------------------------------------------------------------------------------------------


def test_forward_pass_stops_after_the_last_requested_layer():
    model = make_resnet()
    batch_sizes: dict[str, list[int]] = {"layer1.1.conv2": [], "layer2.0.conv1": [], "fc": []}
    handles = [
        model.get_submodule(name).register_forward_hook(
            lambda m, args, out, name=name: batch_sizes[name].append(args[0].shape[0])
        )
        for name in batch_sizes
    ]
    extract(model, float_images(10, 64), "layer1", batch_size=4, progress=False)
    for handle in handles:
        handle.remove()

    # Only the one-image trial pass that finds the layer order reaches beyond layer1.
    assert batch_sizes["layer1.1.conv2"] == [1, 4, 4, 2]
    assert batch_sizes["layer2.0.conv1"] == [1]
    assert batch_sizes["fc"] == [1]


def test_training_flags_and_hooks_are_restored_after_success():
    model = make_resnet()
    model.train()
    model.layer2.eval()  # a mixed state must come back exactly
    flags = [m.training for m in model.modules()]
    seen_training = []
    handle = model.conv1.register_forward_hook(lambda m, a, o: seen_training.append(m.training))

    extract(model, float_images(3, 64), ["layer1", "layer3"], progress=False)

    handle.remove()
    assert seen_training and not any(seen_training)  # ran in eval mode
    assert_model_is_clean(model, flags)


@pytest.mark.parametrize("failure", ["unknown layer", "forward error", "nan in second batch"])
def test_training_flags_and_hooks_are_restored_after_an_error(failure, tmp_path):
    model = make_cnn()
    model.train()
    flags = [m.training for m in model.modules()]
    images = float_images(6, 32)
    layers = ["features.2", "classifier.1"]
    if failure == "unknown layer":
        layers = ["features.9"]
    elif failure == "forward error":
        images = float_images(6, 32, channels=1)
    else:
        images[5, 0, 3, 3] = np.nan

    with pytest.raises(ValueError):
        extract(model, images, layers, batch_size=4, progress=False, out_dir=tmp_path / "out")

    assert_model_is_clean(model, flags)
    out = tmp_path / "out"
    assert not out.exists() or list(out.iterdir()) == []  # neither finished nor partial files


# ------------------------------------------------------------------------------------------------
# Inputs
# ------------------------------------------------------------------------------------------------


def test_uint8_hwc_input_equals_float_chw_input_divided_by_255():
    model = make_resnet()
    pixels = uint8_images(5, 64)
    as_float = pixels.transpose(0, 3, 1, 2).astype(np.float32) / 255

    from_uint8 = extract(model, pixels, ["conv1", "layer2"], progress=False)
    from_float = extract(model, as_float, ["conv1", "layer2"], progress=False)
    from_tensor = extract(model, torch.from_numpy(pixels), ["conv1", "layer2"], progress=False)

    for name in ["conv1", "layer2"]:
        np.testing.assert_allclose(from_uint8[name], from_float[name], atol=ATOL, rtol=0)
        np.testing.assert_array_equal(from_tensor[name], from_uint8[name])


def test_read_only_memory_mapped_images_are_accepted_without_warnings(tmp_path):
    model = make_cnn()
    images = float_images(5, 32)
    np.save(tmp_path / "images.npy", images)
    mapped = np.load(tmp_path / "images.npy", mmap_mode="r")

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = extract(model, mapped, "features", batch_size=2, progress=False)

    expected = extract(model, images, "features", batch_size=2, progress=False)
    np.testing.assert_array_equal(out["features"], expected["features"])


class PlainImages(Dataset):
    """Items are bare image tensors."""

    def __init__(self, images: np.ndarray):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self.images[index])


class StreamedImages(IterableDataset):
    """A stream of (image, label) pairs without a length."""

    def __init__(self, images: np.ndarray):
        self.images = images

    def __iter__(self):
        for index, image in enumerate(self.images):
            yield torch.from_numpy(image), index


def test_dataset_and_dataloader_inputs_equal_array_input():
    model = make_cnn()
    images = float_images(7, 32)
    labels = torch.arange(7)
    layers = ["features.2", "classifier.1"]
    expected = extract(model, images, layers, progress=False)

    inputs = {
        "tuple dataset": TensorDataset(torch.from_numpy(images), labels),
        "plain dataset": PlainImages(images),
        "iterable dataset": StreamedImages(images),
        "uint8 dataset": PlainImages(uint8_images(7, 32)),
        "tuple loader": DataLoader(TensorDataset(torch.from_numpy(images), labels), batch_size=3),
        "plain loader": DataLoader(PlainImages(images), batch_size=2),
        "iterable loader": DataLoader(StreamedImages(images), batch_size=4),
    }
    for kind, source in inputs.items():
        out = extract(model, source, layers, batch_size=3, progress=False)
        reference = expected
        if kind == "uint8 dataset":
            reference = extract(model, uint8_images(7, 32), layers, progress=False)
        for name in layers:
            np.testing.assert_allclose(out[name], reference[name], atol=ATOL, rtol=0, err_msg=kind)


def test_batch_size_does_not_change_results():
    model = make_resnet()
    images = float_images(7, 64)
    layers = ["layer1.0", "layer3", "fc"]
    results = [extract(model, images, layers, batch_size=b, progress=False) for b in (1, 3, 64)]
    for other in results[1:]:
        for name in layers:
            np.testing.assert_allclose(other[name], results[0][name], atol=ATOL, rtol=0)


def test_preprocess_is_applied_to_float_batches():
    model = make_cnn()
    pixels = uint8_images(5, 32)
    mean, std = torch.tensor([0.5, 0.4, 0.3]), torch.tensor([0.2, 0.25, 0.3])
    seen = []

    def normalise(batch: torch.Tensor) -> torch.Tensor:
        seen.append((batch.dtype, tuple(batch.shape)))
        return (batch - mean[:, None, None]) / std[:, None, None]

    by_hand = (pixels.transpose(0, 3, 1, 2) / 255 - mean.numpy()[:, None, None]) / std.numpy()[
        :, None, None
    ]
    out = extract(model, pixels, "features", batch_size=2, preprocess=normalise, progress=False)
    expected = extract(model, by_hand.astype(np.float32), "features", progress=False)

    assert seen[0] == (torch.float32, (2, 3, 32, 32))
    np.testing.assert_allclose(out["features"], expected["features"], atol=ATOL, rtol=0)


def test_float64_input_is_cast_to_the_model_dtype():
    model = make_cnn()
    images = float_images(4, 32)
    out64 = extract(model, images.astype(np.float64), "features", progress=False)
    out32 = extract(model, images, "features", progress=False)
    assert out64["features"].dtype == np.float32
    np.testing.assert_allclose(out64["features"], out32["features"], atol=ATOL, rtol=0)


def test_progress_bar_counts_batches(capsys):
    extract(make_cnn(), float_images(5, 32), "features", batch_size=2, progress=True)
    err = capsys.readouterr().err
    assert "extract 1 layer(s)" in err
    assert "3/3" in err


# ------------------------------------------------------------------------------------------------
# out_dir: memory-bounded mode
# ------------------------------------------------------------------------------------------------


def test_out_dir_returns_read_only_memmaps_equal_to_memory_results(tmp_path):
    model = make_resnet()
    images = float_images(9, 64)
    layers = ["layer1", "layer4.0", "fc"]
    in_memory = extract(model, images, layers, batch_size=4, progress=False)

    on_disk = extract(model, images, layers, batch_size=4, progress=False, out_dir=tmp_path)
    shaped = extract(
        model,
        images,
        "layer1",
        batch_size=4,
        flatten=False,
        progress=False,
        out_dir=tmp_path / "shaped",
    )

    assert sorted(p.name for p in tmp_path.glob("*.npy")) == sorted(f"{n}.npy" for n in layers)
    for name in layers:
        assert isinstance(on_disk[name], np.memmap)
        assert not on_disk[name].flags.writeable
        np.testing.assert_array_equal(on_disk[name], in_memory[name])
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}.npy"), in_memory[name])
    assert shaped["layer1"].shape == (9, 64, 16, 16)
    np.testing.assert_array_equal(shaped["layer1"].reshape(9, -1), in_memory["layer1"])


def test_out_dir_with_a_stream_of_unknown_length(tmp_path):
    model = make_cnn()
    images = float_images(7, 32)
    loader = DataLoader(StreamedImages(images), batch_size=3)
    expected = extract(model, images, ["features.0", "classifier"], batch_size=3, progress=False)

    out = extract(model, loader, ["features.0", "classifier"], progress=False, out_dir=tmp_path)

    for name, values in expected.items():
        assert out[name].shape == values.shape
        np.testing.assert_array_equal(out[name], values)
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}.npy"), values)


def test_out_dir_refuses_to_overwrite_unless_asked(tmp_path):
    model = make_cnn()
    first, second = float_images(4, 32, seed=1), float_images(4, 32, seed=2)
    extract(model, first, ["features", "classifier"], progress=False, out_dir=tmp_path)
    kept = np.load(tmp_path / "features.npy").copy()

    with pytest.raises(FileExistsError, match=r"features\.npy.*overwrite=True"):
        extract(model, second, ["features", "classifier"], progress=False, out_dir=tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "features.npy"), kept)

    replaced = extract(model, second, "features", progress=False, out_dir=tmp_path, overwrite=True)
    expected = extract(model, second, "features", progress=False)
    np.testing.assert_array_equal(replaced["features"], expected["features"])
    assert not np.allclose(replaced["features"], kept)


def test_out_dir_that_is_a_file_is_rejected(tmp_path):
    target = tmp_path / "taken"
    target.write_text("not a folder")
    with pytest.raises(ValueError, match="not a folder"):
        extract(make_cnn(), float_images(2, 32), "features", progress=False, out_dir=target)


# ------------------------------------------------------------------------------------------------
# Bad input: clear errors
# ------------------------------------------------------------------------------------------------


def test_unknown_layer_lists_close_matches():
    with pytest.raises(ValueError, match=r"Unknown layer 'layer1\.O'.*Close matches: 'layer1\.1'"):
        extract(make_resnet(), float_images(2, 64), ["layer1", "layer1.O"], progress=False)
    with pytest.raises(ValueError, match=r"Unknown layer 'zzz'.*first layers are 'conv1'"):
        extract(make_resnet(), float_images(2, 64), "zzz", progress=False)


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ("layer1.0.relu", r"called 2 times.*parent 'body\.layer1\.0'"),
        ("unused", "not called in the forward pass"),
        ("pair", "returns a dict, not a tensor"),
        ("pooled", "first axis is the batch"),
    ],
)
def test_modules_without_a_single_batch_output_are_refused(layer, message):
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = make_resnet()
            self.unused = nn.Linear(2, 2)
            self.pair = DictOutput()
            self.pooled = BatchMean()

        def forward(self, x):
            return self.pooled(self.pair(self.body(x))["logits"])

    with pytest.raises(ValueError, match=message):
        extract(Odd(), float_images(3, 64), layer.replace("layer1", "body.layer1"), progress=False)


class DictOutput(nn.Module):
    def forward(self, x):
        return {"logits": x}


class BatchMean(nn.Module):
    def forward(self, x):
        return x.mean(0)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (float_images(2, 32).transpose(0, 2, 3, 1), r"looks channels-last.*\(N, C, H, W\)"),
        (uint8_images(2, 32).transpose(0, 3, 1, 2), r"looks channels-first.*\(N, H, W, C\)"),
        (float_images(1, 32)[0], r"3 axes.*images\[None\]"),
        (float_images(2, 32).reshape(2, -1), "2 axes"),
        (float_images(2, 32).astype(np.int64), r"dtype int64.*uint8.*float"),
        (float_images(2, 32) > 0.5, "dtype bool"),
        (float_images(0, 32), "empty"),
        (np.where(np.arange(2)[:, None, None, None] == 1, np.nan, float_images(2, 32)), "NaN"),
        (np.full((2, 3, 32, 32), np.inf, dtype=np.float32), r"NaN or inf \(first at image 0\)"),
    ],
    ids=["float hwc", "uint8 chw", "one image", "flat", "int64", "bool", "empty", "nan", "inf"],
)
def test_bad_images_are_refused_with_a_clear_message(images, message):
    with pytest.raises(ValueError, match=message):
        extract(make_cnn(), images, "features", progress=False)


def test_empty_dataset_and_loader_are_refused():
    empty = TensorDataset(torch.zeros(0, 3, 32, 32))
    with pytest.raises(ValueError, match="empty Dataset"):
        extract(make_cnn(), empty, "features", progress=False)
    with pytest.raises(ValueError, match="DataLoader yielded no images"):
        extract(make_cnn(), DataLoader(empty, batch_size=2), "features", progress=False)


def test_forward_error_becomes_a_short_value_error_with_the_cause_chained():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 30 * 30, 2))
    with pytest.raises(ValueError, match=r"module '2' \(Linear.*\(3, 64, 64\)") as caught:
        extract(model, float_images(2, 64), "2", progress=False)
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert "\n" not in str(caught.value)


def test_wrong_dataset_items_are_refused():
    class Names(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, index):
            return f"image_{index}.png"

    class MixedSizes(PlainImages):
        def __getitem__(self, index):
            return torch.zeros(3, 32 + 8 * index, 32)

    with pytest.raises(TypeError, match="image tensors or \\(image, label\\) tuples"):
        extract(make_cnn(), Names(), "features", progress=False)
    with pytest.raises(ValueError, match="differ in shape"):
        extract(make_cnn(), MixedSizes(float_images(2, 32)), "features", progress=False)
    with pytest.raises(TypeError, match=r"np\.stack"):
        extract(make_cnn(), list(float_images(2, 32)), "features", progress=False)


class ThreeIndices(Sampler):
    """A sampler that yields indices 0, 1, 2 but announces another length."""

    def __init__(self, announced: int):
        self.announced = announced

    def __iter__(self):
        return iter(range(3))

    def __len__(self) -> int:
        return self.announced


@pytest.mark.parametrize(
    ("announced", "message"),
    [(5, "yielded 3 images but their length announced 5"), (2, "more than the 2 images")],
)
def test_a_loader_whose_length_is_wrong_is_refused(announced, message, tmp_path):
    dataset = PlainImages(float_images(3, 32))
    loader = DataLoader(dataset, batch_size=2, sampler=ThreeIndices(announced))
    with pytest.raises(ValueError, match=message):
        extract(make_cnn(), loader, "features", progress=False)
    with pytest.raises(ValueError, match=message):
        extract(make_cnn(), loader, "features", progress=False, out_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"layers": []}, ValueError, "layers is empty"),
        ({"layers": ["features", "features"]}, ValueError, "more than once"),
        ({"layers": [3]}, TypeError, "layer names"),
        ({"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
        ({"device": "gpu0"}, ValueError, "device must be like"),
        ({"preprocess": "normalise"}, TypeError, "preprocess must be a callable"),
        ({"preprocess": lambda batch: batch.numpy()}, TypeError, "must return a"),
    ],
)
def test_bad_arguments_are_refused(kwargs, error, message):
    arguments = {"layers": "features", **kwargs}
    with pytest.raises(error, match=message):
        extract(make_cnn(), float_images(2, 32), progress=False, **arguments)


def test_a_non_module_model_is_refused():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        extract(lambda x: x, float_images(2, 32), "features", progress=False)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        list_layers("resnet18")
