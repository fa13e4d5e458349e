"""load_model, model cards, region maps: shipped weights, untrained twins, torchvision offline."""

import hashlib
import json
import shutil
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from torchvision.transforms.v2 import functional as tvf

from course_tools.activations import extract, list_layers
from course_tools.models.registry import (
    WeightsDownloadError,
    WeightsIntegrityError,
    available_models,
    build_model,
    load_model,
    model_card,
    region_layer_table,
    region_layers,
    shipped_weights_dir,
)
from course_tools.stimuli import object_scenes

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ["course_cnn", "course_resnet", "course_vit", "surrogate_brain"]
TORCHVISION = ["alexnet", "vgg16", "resnet18", "resnet50", "vit_b_16"]
FRESH_SEED = 777  # not a training, validation or card-test seed of scripts/train_shipped.py


def _fresh_scenes(n_per_level=334, seed=FRESH_SEED):
    images, labels = [], []
    for variation in ("low", "medium", "high"):
        part, meta = object_scenes(n_per_level, variation=variation, seed=seed)
        images.append(part)
        labels.append(meta["category"].cat.codes.to_numpy())
    return np.concatenate(images), np.concatenate(labels)


@pytest.fixture(scope="module")
def fresh_scenes():
    return _fresh_scenes()


def _accuracy(model, images, labels):
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        predicted = torch.cat([model(batch).argmax(1) for batch in x.split(500)]).numpy()
    return float((predicted == labels).mean())


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# Eight balanced categories: chance is 1/8. "Well above chance" is three times chance.
WELL_ABOVE_CHANCE = 3 / 8


# --------------------------------------------------------------------------------------------
# shipped networks
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_network_categorises_fresh_scenes_well_above_chance(name, fresh_scenes):
    model = load_model(name)
    assert not model.training
    accuracy = _accuracy(model, *fresh_scenes)
    assert accuracy > WELL_ABOVE_CHANCE
    # The card's accuracy (another fresh seed) agrees within sampling error.
    assert accuracy == pytest.approx(model_card(name)["evaluation"]["accuracy"], abs=0.06)


@pytest.mark.parametrize("name", SHIPPED)
def test_card_records_the_weights_file_and_the_training(name):
    card = model_card(name)
    path = shipped_weights_dir() / card["weights"]["file"]
    assert card["weights"]["sha256"] == _sha256(path)
    assert card["weights"]["bytes"] == path.stat().st_size < 5_000_000
    assert card["training"]["epochs"] >= 1 and card["training"]["seed"] == 0
    assert card["training"]["data"]["generator"] == "course_tools.stimuli.object_scenes"
    assert card["training"]["optimizer"]["name"] == "AdamW"
    assert card["training"]["train_seconds"] > 0
    assert card["versions"]["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert card["evaluation"]["test_seed"] not in {
        card["training"]["data"]["train_seed"],
        card["training"]["data"]["validation_seed"],
    }
    assert card["region_layers"] == region_layers(name)
    assert (shipped_weights_dir() / f"{name}.md").exists()
    # float16 storage did not cost accuracy
    evaluation = card["evaluation"]
    assert evaluation["accuracy"] == pytest.approx(evaluation["accuracy_float32_weights"], abs=0.01)


def test_untrained_twin_is_random_repeatable_and_leaves_global_rng_alone(fresh_scenes):
    trained = load_model("course_cnn")
    before = torch.random.get_rng_state()
    twin = load_model("course_cnn", pretrained=False, seed=0)
    again = load_model("course_cnn", pretrained=False, seed=0)
    other = load_model("course_cnn", pretrained=False, seed=1)
    assert torch.equal(before, torch.random.get_rng_state())
    assert not twin.training
    weight = "conv1.conv.weight"
    assert torch.equal(twin.state_dict()[weight], again.state_dict()[weight])
    assert not torch.equal(twin.state_dict()[weight], other.state_dict()[weight])
    assert not torch.allclose(twin.state_dict()[weight], trained.state_dict()[weight])
    images, labels = fresh_scenes
    subset = np.random.default_rng(0).choice(len(images), 300, replace=False)
    # a random network is near chance (1/8) on balanced categories
    assert _accuracy(twin, images[subset], labels[subset]) < 0.3


def test_corrupt_weights_are_refused(tmp_path):
    for suffix in (".pt", ".json"):
        shutil.copy(shipped_weights_dir() / f"course_cnn{suffix}", tmp_path)
    intact = load_model("course_cnn", weights_dir=tmp_path)
    reference = load_model("course_cnn")
    assert torch.equal(intact.state_dict()["fc8.weight"], reference.state_dict()["fc8.weight"])

    data = bytearray((tmp_path / "course_cnn.pt").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4] = bytes(b ^ 0xFF for b in data[middle : middle + 4])
    (tmp_path / "course_cnn.pt").write_bytes(bytes(data))
    with pytest.raises(WeightsIntegrityError, match="SHA-256"):
        load_model("course_cnn", weights_dir=tmp_path)
    # The untrained twin needs no file.
    load_model("course_cnn", pretrained=False, weights_dir=tmp_path)


def test_missing_weights_name_the_script(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_shipped.py"):
        load_model("course_vit", weights_dir=tmp_path)
    shutil.copy(shipped_weights_dir() / "course_vit.json", tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model("course_vit", weights_dir=tmp_path)


def test_trained_vit_attention_maps_are_probabilities(fresh_scenes):
    model = load_model("course_vit")
    images = torch.from_numpy(fresh_scenes[0][:5]).permute(0, 3, 1, 2).float() / 255
    maps = model.attention_maps(images)
    assert len(maps) == 6
    for attention in maps:
        assert attention.shape == (5, 4, 65, 65)
        torch.testing.assert_close(attention.sum(-1), torch.ones(5, 4, 65))


def test_all_layers_of_a_shipped_network_extract_on_256_images(fresh_scenes):
    model = load_model("course_resnet")
    layers = list_layers(model, input_shape=(3, 64, 64))
    features = extract(model, fresh_scenes[0][:256], layers, progress=False)
    assert list(features) == layers
    assert all(array.shape[0] == 256 for array in features.values())
    assert features["fc"].shape == (256, 8)


# --------------------------------------------------------------------------------------------
# torchvision networks (no network in tests)
# --------------------------------------------------------------------------------------------
def _refuse_download(url, dst, hash_prefix=None, progress=True):
    raise urllib.error.URLError("[Errno -2] Name or service not known")


def test_offline_torchvision_download_gives_one_clear_error(monkeypatch):
    monkeypatch.setattr(torch.hub, "download_url_to_file", _refuse_download)
    with pytest.raises(WeightsDownloadError) as info:
        load_model("resnet18")
    message = str(info.value)
    assert "could not download" in message and "no network" in message
    assert "load_model('course_resnet')" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    with pytest.raises(WeightsDownloadError, match="course_vit"):
        load_model("vit_b_16")


def test_cached_torchvision_weights_load_without_network(monkeypatch):
    monkeypatch.setattr(torch.hub, "download_url_to_file", _refuse_download)
    source = torchvision.models.resnet18(weights=None)
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    assert not model_card("resnet18")["weights"]["cached"]
    checkpoints = Path(model_card("resnet18")["weights"]["cache_dir"])
    checkpoints.mkdir(parents=True, exist_ok=True)
    torch.save(source.state_dict(), checkpoints / Path(url).name)
    try:
        model = load_model("resnet18")
        assert torch.equal(model.fc.weight, source.fc.weight)
        assert model_card("resnet18")["weights"]["cached"]
        (checkpoints / Path(url).name).write_bytes(b"not a checkpoint")
        with pytest.raises(WeightsIntegrityError, match="delete it"):
            load_model("resnet18")
    finally:
        (checkpoints / Path(url).name).unlink()


def test_torchvision_twin_takes_plain_images_like_the_shipped_networks():
    model = load_model("resnet18", pretrained=False, seed=3)
    again = load_model("resnet18", pretrained=False, seed=3)
    assert torch.equal(model.conv1.weight, again.conv1.weight)
    reference = torchvision.models.resnet18(weights=None).eval()
    reference.load_state_dict(model.state_dict())
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    resized = tvf.resize(x, [224, 224], antialias=True)
    normalized = tvf.normalize(resized, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(normalized), atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="Divide 0-255"):
        model(x * 255)


def test_torchvision_card_works_offline():
    card = model_card("resnet18")
    # torchvision's published ImageNet-1k top-1 accuracy of resnet18 IMAGENET1K_V1
    assert card["evaluation"]["accuracy"] == pytest.approx(0.69758)
    assert card["weights"]["sha256_prefix"] == "f37072fd"
    assert card["region_layers"]["IT"] == "layer4.0.bn1"


# --------------------------------------------------------------------------------------------
# names, errors, tables
# --------------------------------------------------------------------------------------------
def test_available_models_table():
    table = available_models()
    assert table["name"].tolist() == SHIPPED + TORCHVISION
    shipped = table[table["source"] == "shipped"]
    assert shipped["offline"].all() and (shipped["accuracy"] > WELL_ABOVE_CHANCE).all()
    assert (shipped["weights_mb"] < 5).all()
    assert set(table.loc[table["role"] == "surrogate brain", "name"]) == {"surrogate_brain"}
    assert table.set_index("name").loc["vgg16", "n_parameters"] == 138_357_544


def test_unknown_names_list_the_available_ones_and_close_matches():
    with pytest.raises(ValueError, match="Did you mean 'resnet18'") as info:
        load_model("resnet19")
    assert "course_cnn" in str(info.value) and "vit_b_16" in str(info.value)
    with pytest.raises(ValueError, match="unknown model"):
        region_layers("inception_v3")
    with pytest.raises(TypeError, match="string"):
        model_card(3)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="seed"):
        load_model("course_cnn", pretrained=False, seed=-1)
    with pytest.raises(TypeError, match="pretrained"):
        load_model("course_cnn", pretrained="yes")
    with pytest.raises(ValueError, match="weights_dir"):
        load_model("alexnet", weights_dir="/tmp")


def test_region_layers_follow_brain_score_for_alexnet_and_vgg16():
    assert region_layers("alexnet") == {
        "V1": "features.2",
        "V2": "features.7",
        "V4": "features.7",
        "IT": "features.12",
    }
    vgg = region_layers("vgg16")
    assert vgg["V1"] == vgg["V2"] == vgg["V4"] == "features.16" and vgg["IT"] == "features.23"


def test_conventional_maps_follow_the_depth_rule():
    # V1 = stage 1, V2 = stage 2, V4 = stage round(0.6 n), IT = stage n.
    assert region_layers("course_cnn") == {
        "V1": "conv1",
        "V2": "conv2",
        "V4": "conv4",
        "IT": "conv6",
    }
    assert region_layers("course_vit")["V4"] == "blocks.3"
    assert region_layers("surrogate_brain")["V4"] == "conv5"
    assert region_layers("vit_b_16")["V4"] == "encoder.layers.encoder_layer_6"
    table = region_layer_table()
    assert len(table) == 4 * len(SHIPPED + TORCHVISION)
    basis = table.groupby("model")["basis"].first()
    assert set(basis[basis == "measured"].index) == {"alexnet", "vgg16", "resnet18", "resnet50"}


@pytest.mark.parametrize("name", SHIPPED + TORCHVISION)
def test_region_layers_are_layers_that_extract_accepts(name):
    model = build_model(name)
    size = 64 if name in SHIPPED else 224
    layers = set(list_layers(model, input_shape=(3, size, size)))
    assert set(region_layers(name).values()) <= layers


# --------------------------------------------------------------------------------------------
# the training script
# --------------------------------------------------------------------------------------------
def _train_tiny(out_dir):
    command = [
        sys.executable,
        str(ROOT / "scripts" / "train_shipped.py"),
        "--model",
        "course_cnn",
        "--seed",
        "3",
        "--n-train",
        "96",
        "--n-val",
        "48",
        "--epochs",
        "2",
        "--n-test",
        "48",
        "--out-dir",
        str(out_dir),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    return json.loads((out_dir / "course_cnn.json").read_text())


@pytest.mark.slow
def test_training_script_is_deterministic(tmp_path):
    first = _train_tiny(tmp_path / "a")
    second = _train_tiny(tmp_path / "b")
    assert first["weights"]["sha256"] == second["weights"]["sha256"]
    assert _sha256(tmp_path / "a" / "course_cnn.pt") == first["weights"]["sha256"]
    assert first["training"]["seed"] == 3 and first["training"]["data"]["n_train"] == 96
    model = load_model("course_cnn", weights_dir=tmp_path / "a")
    assert not torch.equal(model.fc8.weight, load_model("course_cnn").fc8.weight)
