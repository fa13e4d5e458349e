"""Networks by name: :func:`load_model`, model cards and region-to-layer maps.

Available networks
------------------
===================  ===========  ==========================================  ==============
name                 source       what it is                                  offline
===================  ===========  ==========================================  ==============
``course_cnn``       shipped      AlexNet-like CNN, 6 conv + 2 fc layers      yes
``course_resnet``    shipped      small ResNet, 3 stages x 2 basic blocks     yes
``course_vit``       shipped      small ViT, 8 px patches, 6 blocks           yes
``surrogate_brain``  shipped      wider 8-conv-layer CNN that generates       yes
                                  ``simulated_ventral`` (the simulated
                                  brain itself: not for analysis)
``alexnet``          torchvision  AlexNet, ImageNet-1k, ``IMAGENET1K_V1``     after download
``vgg16``            torchvision  VGG-16, ImageNet-1k, ``IMAGENET1K_V1``      after download
``resnet18``         torchvision  ResNet-18, ImageNet-1k, ``IMAGENET1K_V1``   after download
``resnet50``         torchvision  ResNet-50, ImageNet-1k, ``IMAGENET1K_V1``   after download
``vit_b_16``         torchvision  ViT-B/16, ImageNet-1k, ``IMAGENET1K_V1``    after download
===================  ===========  ==========================================  ==============

The shipped networks were trained on the 8-way categorisation of
:func:`course_tools.stimuli.object_scenes` by ``scripts/train_shipped.py`` (which reproduces
them from a seed); their weights (float16) and model cards live in ``course_tools/weights``.
The weights file is checked against the SHA-256 in its card every time it is loaded.

Every model returned by :func:`load_model` takes float images ``(N, 3, H, W)`` in ``[0, 1]``
and is in eval mode. The shipped networks standardise the channels themselves (module
``normalize``); the torchvision networks get an ``input_transform`` module, run by a forward
pre-hook, that resizes the images to 224 x 224 px (bilinear, antialiased) and applies the
ImageNet normalisation. So pass plain [0, 1] images to every model, and do not normalise
them again.

``pretrained=False`` gives the *untrained twin*: the same architecture with random weights
drawn with ``seed`` (the "trained vs random" control); it needs no file and no network.

Region-to-layer maps
--------------------
:func:`region_layers` maps V1, V2, V4 and IT to one layer name per model, usable by
:func:`course_tools.activations.extract`; :func:`region_layer_table` says where each choice
comes from:

- ``"measured"``: a layer commitment published in Brain-Score (``brain-score/vision``), found
  by scoring every layer on public neural benchmarks. alexnet and vgg16: the plug-ins
  ``models/alexnet`` and ``models/vgg_16`` (trained with torchvision's weights). resnet18 and
  resnet50: the plug-ins ``models/resnet18_imagenet_full`` and ``models/resnet50_imagenet_full``,
  the torchvision architectures trained on ImageNet by the Brain-Score team (not torchvision's
  own weights, so the choice transfers only approximately). These maps are not monotonic in
  depth (resnet18 V2 sits deeper than V4): layer selection is noisy and the measured
  differences between neighbouring layers are small. Brain-Score's resnet50 IT layer
  ``layer4.0.relu`` is a ReLU module that the block calls three times; its last output, which
  Brain-Score records, is the block output ``layer4.0`` used here.
- ``"conventional"``: no commitment was found (vit_b_16) or the network is ours. The rule
  follows the lecture's slide (credited there to D. Bear and J. Kubilius; not a result of
  Yamins et al. 2014, whose model has four layers): V4 about the 6th of ~10 layers, IT the
  last ones, which of them depending on the site's position along IT. With the network's
  ``n`` processing stages in order (conv blocks, residual blocks or transformer blocks; not
  the stem, pooling or readout), V1 = stage 1, V2 = stage 2, V4 = stage ``round(0.6 n)``,
  IT = stage ``n``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from course_tools._config import data_home
from course_tools.models.zoo import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    CourseCNN,
    CourseResNet,
    CourseViT,
    SurrogateBrainCNN,
    check_image_batch,
)

__all__ = [
    "ImageNetInput",
    "WeightsDownloadError",
    "WeightsIntegrityError",
    "available_models",
    "build_model",
    "load_model",
    "model_card",
    "region_layer_table",
    "region_layers",
    "shipped_weights_dir",
]

REGIONS = ("V1", "V2", "V4", "IT")
TORCHVISION_INPUT_SIZE = 224


class WeightsDownloadError(RuntimeError):
    """Pretrained torchvision weights could not be downloaded (for example: no network)."""


class WeightsIntegrityError(RuntimeError):
    """A weights file does not match its recorded checksum or cannot be read."""


# --------------------------------------------------------------------------------------------
# the catalogue
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Entry:
    name: str
    source: str  # "shipped" or "torchvision"
    family: str
    description: str
    role: str
    regions: dict[str, str]
    basis: str  # "measured" or "conventional"
    basis_source: str
    builder: Callable[[], nn.Module] | None = None  # shipped
    torchvision_name: str = ""  # torchvision
    torchvision_weights: str = ""
    shipped_alternative: str = ""


def _conventional(stages: list[str]) -> dict[str, str]:
    """V1 = stage 1, V2 = stage 2, V4 = stage round(0.6 n), IT = stage n (1-based)."""
    n = len(stages)
    return {
        "V1": stages[0],
        "V2": stages[1],
        "V4": stages[int(np.floor(0.6 * n + 0.5)) - 1],
        "IT": stages[-1],
    }


_CONVENTION = "lecture rule: V1 = stage 1, V2 = stage 2, V4 = stage round(0.6 n), IT = stage n"
_ANALYSIS = "analysis"

_ENTRIES: tuple[_Entry, ...] = (
    _Entry(
        name="course_cnn",
        source="shipped",
        family="CNN",
        description="AlexNet-like CNN: 6 conv blocks (32-64-96-128-128-128, batchnorm, "
        "3 max-pools) + fc7, fc8; trained on object_scenes",
        role=_ANALYSIS,
        regions=_conventional([f"conv{i}" for i in range(1, 7)]),
        basis="conventional",
        basis_source=_CONVENTION + " over conv1..conv6",
        builder=CourseCNN,
    ),
    _Entry(
        name="course_resnet",
        source="shipped",
        family="ResNet",
        description="small ResNet: stem + 3 stages x 2 basic blocks (32, 64, 128 channels); "
        "trained on object_scenes",
        role=_ANALYSIS,
        regions=_conventional([f"layer{s}.{b}" for s in (1, 2, 3) for b in (0, 1)]),
        basis="conventional",
        basis_source=_CONVENTION + " over the residual blocks layer1.0..layer3.1",
        builder=CourseResNet,
    ),
    _Entry(
        name="course_vit",
        source="shipped",
        family="ViT",
        description="small Vision Transformer: 8 px patches (64 tokens + CLS, convolutional "
        "patch embedding), 6 pre-norm blocks, 4 heads, explicit attention; trained on "
        "object_scenes",
        role=_ANALYSIS,
        regions=_conventional([f"blocks.{i}" for i in range(6)]),
        basis="conventional",
        basis_source=_CONVENTION + " over the transformer blocks blocks.0..blocks.5",
        builder=CourseViT,
    ),
    _Entry(
        name="surrogate_brain",
        source="shipped",
        family="CNN",
        description="wider 8-conv-layer CNN that generates simulated_ventral's V4 and IT "
        "(the simulated brain itself; analyse the course_* networks instead)",
        role="surrogate brain",
        regions=_conventional([f"conv{i}" for i in range(1, 9)]),
        basis="conventional",
        basis_source=_CONVENTION + " over conv1..conv8 (the layers simulated_ventral reads)",
        builder=SurrogateBrainCNN,
    ),
    _Entry(
        name="alexnet",
        source="torchvision",
        family="CNN",
        description="AlexNet (Krizhevsky et al. 2012), ImageNet-1k",
        role=_ANALYSIS,
        regions={"V1": "features.2", "V2": "features.7", "V4": "features.7", "IT": "features.12"},
        basis="measured",
        basis_source="Brain-Score commitment, brain-score/vision models/alexnet",
        torchvision_name="alexnet",
        torchvision_weights="IMAGENET1K_V1",
        shipped_alternative="course_cnn",
    ),
    _Entry(
        name="vgg16",
        source="torchvision",
        family="CNN",
        description="VGG-16 (Simonyan & Zisserman 2015), ImageNet-1k",
        role=_ANALYSIS,
        regions={
            "V1": "features.16",
            "V2": "features.16",
            "V4": "features.16",
            "IT": "features.23",
        },
        basis="measured",
        basis_source="Brain-Score commitment, brain-score/vision models/vgg_16",
        torchvision_name="vgg16",
        torchvision_weights="IMAGENET1K_V1",
        shipped_alternative="course_cnn",
    ),
    _Entry(
        name="resnet18",
        source="torchvision",
        family="ResNet",
        description="ResNet-18 (He et al. 2016), ImageNet-1k",
        role=_ANALYSIS,
        regions={
            "V1": "layer1.0.bn1",
            "V2": "layer3.0.conv2",
            "V4": "layer2.0.bn2",
            "IT": "layer4.0.bn1",
        },
        basis="measured",
        basis_source="Brain-Score commitment for the same architecture trained by Brain-Score, "
        "brain-score/vision models/resnet18_imagenet_full",
        torchvision_name="resnet18",
        torchvision_weights="IMAGENET1K_V1",
        shipped_alternative="course_resnet",
    ),
    _Entry(
        name="resnet50",
        source="torchvision",
        family="ResNet",
        description="ResNet-50 (He et al. 2016), ImageNet-1k",
        role=_ANALYSIS,
        regions={
            "V1": "layer1.0.conv1",
            "V2": "layer3.5.bn3",
            "V4": "layer3.0.conv1",
            "IT": "layer4.0",
        },
        basis="measured",
        basis_source="Brain-Score commitment for the same architecture trained by Brain-Score, "
        "brain-score/vision models/resnet50_imagenet_full (IT layer4.0.relu = block layer4.0)",
        torchvision_name="resnet50",
        torchvision_weights="IMAGENET1K_V1",
        shipped_alternative="course_resnet",
    ),
    _Entry(
        name="vit_b_16",
        source="torchvision",
        family="ViT",
        description="ViT-B/16 (Dosovitskiy et al. 2021), ImageNet-1k",
        role=_ANALYSIS,
        regions=_conventional([f"encoder.layers.encoder_layer_{i}" for i in range(12)]),
        basis="conventional",
        basis_source=_CONVENTION + " over the 12 encoder layers (no Brain-Score commitment "
        "for torchvision's vit_b_16 was found)",
        torchvision_name="vit_b_16",
        torchvision_weights="IMAGENET1K_V1",
        shipped_alternative="course_vit",
    ),
)
_CATALOGUE: dict[str, _Entry] = {entry.name: entry for entry in _ENTRIES}
SHIPPED_MODELS: tuple[str, ...] = tuple(e.name for e in _ENTRIES if e.source == "shipped")
TORCHVISION_MODELS: tuple[str, ...] = tuple(e.name for e in _ENTRIES if e.source == "torchvision")


def _entry(name) -> _Entry:
    if not isinstance(name, str):
        raise TypeError(f"name must be a string such as 'course_cnn', got {type(name).__name__}.")
    if name in _CATALOGUE:
        return _CATALOGUE[name]
    close = difflib.get_close_matches(name.lower(), list(_CATALOGUE), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"unknown model {name!r}.{hint} Available models: {', '.join(_CATALOGUE)} "
        "(see available_models())."
    )


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------
def shipped_weights_dir() -> Path:
    """Folder of the shipped weights (``<name>.pt``) and model cards (``<name>.json``, ``.md``)."""
    return Path(str(resources.files("course_tools") / "weights"))


def build_model(name: str, *, seed: int = 0) -> nn.Module:
    """The architecture of ``name`` with random initial weights drawn with ``seed``.

    The global torch random state is left untouched. Torchvision models get their
    ``input_transform`` (resize to 224 px, ImageNet normalisation).

    Parameters
    ----------
    name : str
        One of :func:`available_models`.
    seed : int, default=0

    Returns
    -------
    torch.nn.Module
        In training mode, as a freshly built network is.
    """
    entry = _entry(name)
    seed = _check_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if entry.source == "shipped":
            return entry.builder()
        import torchvision

        model = torchvision.models.get_model(entry.torchvision_name, weights=None)
    _attach_input_transform(model)
    return model


def load_model(
    name: str,
    *,
    pretrained: bool = True,
    seed: int = 0,
    weights_dir: str | Path | None = None,
    progress: bool = True,
) -> nn.Module:
    """A network by name, trained or as its untrained twin, in eval mode.

    Parameters
    ----------
    name : str
        ``"course_cnn"``, ``"course_resnet"``, ``"course_vit"``, ``"surrogate_brain"`` (shipped,
        work offline) or ``"alexnet"``, ``"vgg16"``, ``"resnet18"``, ``"resnet50"``,
        ``"vit_b_16"`` (torchvision; pretrained weights are downloaded once into
        ``data_home() / "torch" / "hub" / "checkpoints"``, their hash checked by torchvision).
    pretrained : bool, default=True
        False gives the untrained twin: same architecture, random weights drawn with ``seed``.
    seed : int, default=0
        Seed of the random initial weights; used only when ``pretrained=False``.
    weights_dir : str or Path, optional
        Shipped networks only: read ``<name>.pt`` and its card ``<name>.json`` from this folder
        instead of the package's (for networks retrained with ``scripts/train_shipped.py
        --out-dir``). The weights are checked against the card's SHA-256 either way.
    progress : bool, default=True
        Show a download progress bar (torchvision weights).

    Returns
    -------
    torch.nn.Module
        In eval mode, on the CPU. It takes float images (N, 3, H, W) in [0, 1].

    Raises
    ------
    ValueError
        Unknown name (the message lists the available names and close matches), bad seed.
    FileNotFoundError
        A shipped weights file or card is missing.
    WeightsIntegrityError
        The weights file does not match the SHA-256 in its card, or cannot be read.
    WeightsDownloadError
        Torchvision weights could not be downloaded; the message names the shipped alternative.

    Examples
    --------
    >>> net = load_model("course_cnn")                        # trained, ships with the package
    >>> twin = load_model("course_cnn", pretrained=False, seed=0)  # same architecture, random
    """
    entry = _entry(name)
    if not isinstance(pretrained, bool | np.bool_):
        raise TypeError(f"pretrained must be True or False, got {pretrained!r}.")
    if weights_dir is not None and entry.source != "shipped":
        raise ValueError(
            f"weights_dir applies to the shipped networks {SHIPPED_MODELS} only, not to "
            f"torchvision's {name!r}."
        )
    model = build_model(name, seed=seed)
    if pretrained:
        if entry.source == "shipped":
            state = _load_shipped_state(name, weights_dir)
        else:
            state = _load_torchvision_state(entry, progress)
        model.load_state_dict(state)
    return model.eval()


def model_card(name: str, *, weights_dir: str | Path | None = None) -> dict:
    """What is known about a network: architecture, training data, accuracy, provenance.

    Parameters
    ----------
    name : str
        One of :func:`available_models`.
    weights_dir : str or Path, optional
        Shipped networks: read the card from this folder instead of the package's.

    Returns
    -------
    dict
        Shipped networks: the JSON card written by ``scripts/train_shipped.py`` (architecture,
        data, seed, epochs, optimiser, held-out accuracy on a fresh ``object_scenes`` seed,
        training time, versions, the weights' SHA-256). Torchvision networks: the weights'
        metadata from torchvision (no download needed). Both include ``region_layers``.
    """
    entry = _entry(name)
    if entry.source == "shipped":
        card = _read_card(name, _weights_dir(weights_dir))
    else:
        card = _torchvision_card(entry)
    card["region_layers"] = dict(entry.regions)
    card["region_layers_basis"] = f"{entry.basis}: {entry.basis_source}"
    return card


def available_models() -> pd.DataFrame:
    """One row per network :func:`load_model` knows.

    Returns
    -------
    pandas.DataFrame
        Columns ``name``, ``source`` ("shipped" / "torchvision"), ``family`` (CNN, ResNet,
        ViT), ``role`` ("analysis" or "surrogate brain"), ``trained_on``, ``accuracy``
        (held-out object_scenes accuracy for shipped networks, ImageNet-1k top-1 for
        torchvision), ``n_parameters``, ``weights_mb`` (file size), ``offline`` (pretrained
        weights available without network) and ``description``.
    """
    rows = []
    for entry in _ENTRIES:
        if entry.source == "shipped":
            path = shipped_weights_dir() / f"{entry.name}.json"
            card = json.loads(path.read_text()) if path.exists() else {}
            accuracy = card.get("evaluation", {}).get("accuracy", np.nan)
            n_params = card.get("architecture", {}).get("n_parameters", np.nan)
            size = card.get("weights", {}).get("bytes", np.nan) / 1e6
            trained_on = "object_scenes (8 categories, 64 px)"
            offline = path.exists()
        else:
            meta = _torchvision_weights(entry).meta
            accuracy = meta["_metrics"]["ImageNet-1K"]["acc@1"] / 100
            n_params = meta["num_params"]
            size = meta.get("_file_size", np.nan)
            trained_on = "ImageNet-1k (1000 categories, 224 px)"
            offline = _torchvision_cached(entry)
        rows.append(
            {
                "name": entry.name,
                "source": entry.source,
                "family": entry.family,
                "role": entry.role,
                "trained_on": trained_on,
                "accuracy": float(accuracy),
                "n_parameters": n_params,
                "weights_mb": round(float(size), 2),
                "offline": bool(offline),
                "description": entry.description,
            }
        )
    return pd.DataFrame(rows)


def region_layers(name: str) -> dict[str, str]:
    """Which layer stands for V1, V2, V4 and IT in network ``name``.

    Parameters
    ----------
    name : str
        One of :func:`available_models`.

    Returns
    -------
    dict of str to str
        ``{"V1": layer, "V2": layer, "V4": layer, "IT": layer}``; every layer is a name
        accepted by :func:`course_tools.activations.extract`. See :func:`region_layer_table`
        (and this module's docstring) for how each was chosen.

    Examples
    --------
    >>> region_layers("alexnet")["IT"]
    'features.12'
    """
    return dict(_entry(name).regions)


def region_layer_table() -> pd.DataFrame:
    """Every model's region-to-layer map with its basis.

    Returns
    -------
    pandas.DataFrame
        One row per (model, region): ``model``, ``region``, ``layer``, ``basis``
        ("measured": a Brain-Score commitment; "conventional": the lecture's depth rule) and
        ``source`` (where the choice comes from).
    """
    rows = [
        {
            "model": entry.name,
            "region": region,
            "layer": entry.regions[region],
            "basis": entry.basis,
            "source": entry.basis_source,
        }
        for entry in _ENTRIES
        for region in REGIONS
    ]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# torchvision input handling
# --------------------------------------------------------------------------------------------
class ImageNetInput(nn.Module):
    """Resize [0, 1] images to ``size`` x ``size`` px and apply the ImageNet normalisation.

    Attached to torchvision models as ``model.input_transform`` and run by a forward pre-hook,
    so that every model of the course takes the same plain [0, 1] images.

    Parameters
    ----------
    size : int, default=224
        Side length the torchvision networks were trained at.
    """

    def __init__(self, size: int = TORCHVISION_INPUT_SIZE):
        super().__init__()
        self.size = size
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> (N, 3, size, size), standardised."""
        check_image_batch(x)
        if tuple(x.shape[-2:]) != (self.size, self.size):
            x = nn.functional.interpolate(
                x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True
            )
        return (x - self.mean) / self.std


def _apply_input_transform(model: nn.Module, args: tuple) -> tuple:
    return (model.input_transform(args[0]), *args[1:])


def _attach_input_transform(model: nn.Module) -> None:
    model.input_transform = ImageNetInput()
    model.register_forward_pre_hook(_apply_input_transform)


# --------------------------------------------------------------------------------------------
# weights
# --------------------------------------------------------------------------------------------
def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    return int(seed)


def _weights_dir(weights_dir) -> Path:
    return shipped_weights_dir() if weights_dir is None else Path(weights_dir)


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_card(name: str, folder: Path) -> dict:
    path = folder / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(
            f"no model card {path}. The shipped weights of {name!r} are missing from this "
            f"installation; recreate them with `python scripts/train_shipped.py --model {name}` "
            "(from the course repository) or reinstall course_tools."
        )
    return json.loads(path.read_text())


def _load_shipped_state(name: str, weights_dir) -> dict[str, torch.Tensor]:
    folder = _weights_dir(weights_dir)
    card = _read_card(name, folder)
    path = folder / card["weights"]["file"]
    if not path.exists():
        raise FileNotFoundError(
            f"weights file {path} (named in the model card) does not exist; recreate it with "
            f"`python scripts/train_shipped.py --model {name}`."
        )
    expected = card["weights"]["sha256"]
    actual = sha256_file(path)
    if actual != expected:
        raise WeightsIntegrityError(
            f"the weights file {path} is corrupt or was changed: its SHA-256 is {actual}, but "
            f"the model card records {expected}. Reinstall course_tools or recreate the weights "
            f"with `python scripts/train_shipped.py --model {name}`."
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def _torchvision_weights(entry: _Entry):
    from torchvision.models import get_model_weights

    return get_model_weights(entry.torchvision_name)[entry.torchvision_weights]


def _torchvision_checkpoint_dir() -> Path:
    return data_home() / "torch" / "hub" / "checkpoints"


def _torchvision_cached(entry: _Entry) -> bool:
    filename = Path(_torchvision_weights(entry).url).name
    return (data_home(create=False) / "torch" / "hub" / "checkpoints" / filename).exists()


def _load_torchvision_state(entry: _Entry, progress: bool) -> dict[str, torch.Tensor]:
    weights = _torchvision_weights(entry)
    folder = _torchvision_checkpoint_dir()
    cached = folder / Path(weights.url).name
    try:
        return weights.get_state_dict(
            progress=progress, check_hash=True, model_dir=str(folder), weights_only=True
        )
    except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
        reason = getattr(err, "reason", err)
        message = (
            f"could not download the pretrained weights of {entry.name} from {weights.url} "
            f"(no network? {reason}). Use load_model({entry.shipped_alternative!r}), which "
            "ships with the package and works offline, or load_model("
            f"{entry.name!r}, pretrained=False) for the untrained architecture. To use "
            f"{entry.name} offline later, download it once where there is network; it is cached "
            f"in {folder}."
        )
        raise WeightsDownloadError(message) from None
    except RuntimeError as err:
        if "hash" in str(err).lower() and not cached.exists():
            raise WeightsIntegrityError(
                f"the downloaded weights of {entry.name} failed torchvision's hash check "
                f"({err}); try again, the partial file was discarded."
            ) from None
        if cached.exists():
            raise _unreadable(entry, cached, err) from None
        raise
    except Exception as err:  # pickle, zip or EOF errors of a damaged cached file
        if cached.exists():
            raise _unreadable(entry, cached, err) from None
        raise


def _unreadable(entry: _Entry, cached: Path, err: Exception) -> WeightsIntegrityError:
    return WeightsIntegrityError(
        f"the cached weights file {cached} of {entry.name} cannot be read "
        f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); delete it and "
        "load the model again to download a fresh copy."
    )


def _torchvision_card(entry: _Entry) -> dict:
    import torchvision

    weights = _torchvision_weights(entry)
    meta = weights.meta
    return {
        "name": entry.name,
        "source": "torchvision",
        "description": entry.description,
        "architecture": {
            "torchvision_builder": f"torchvision.models.{entry.torchvision_name}",
            "n_parameters": meta["num_params"],
        },
        "weights": {
            "enum": f"{type(weights).__name__}.{entry.torchvision_weights}",
            "url": weights.url,
            "sha256_prefix": Path(weights.url).stem.rsplit("-", 1)[-1],
            "file_size_mb": meta.get("_file_size"),
            "cached": _torchvision_cached(entry),
            "cache_dir": str(_torchvision_checkpoint_dir()),
        },
        "training": {"data": "ImageNet-1k", "recipe": meta.get("recipe")},
        "evaluation": {
            "dataset": "ImageNet-1k validation",
            "accuracy": meta["_metrics"]["ImageNet-1K"]["acc@1"] / 100,
            "top5_accuracy": meta["_metrics"]["ImageNet-1K"]["acc@5"] / 100,
        },
        "input": (
            "float images (N, 3, H, W) in [0, 1]; input_transform resizes to 224 x 224 px and "
            f"applies the ImageNet normalisation (mean {IMAGENET_MEAN}, std {IMAGENET_STD})"
        ),
        "torchvision_version": torchvision.__version__,
    }
