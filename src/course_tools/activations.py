"""Read out what the layers of a network compute for a set of images.

Two functions are the whole public interface:

- :func:`list_layers` gives the layer names of a model, in the order the forward pass computes them.
- :func:`extract` runs images through the model and returns one array per requested layer,
  shape ``(n_images, n_features)``.

How it works
------------
A layer is a named sub-module of a ``torch.nn.Module`` (``"features.2"``, ``"layer1.0"``,
``"encoder.layers.encoder_layer_0"``). :func:`extract` puts a *forward hook* on each requested
module; the hook copies the module's output as soon as it is computed. When the last requested
module has fired, its hook raises a private exception that ends the forward pass, so reading an
early layer costs only the early part of the network. Everything runs in eval mode under
``torch.inference_mode()``; the training flags, the device and the hooks of the model are restored
afterwards, also when something goes wrong.

Which modules count as layers is decided by running the model once, with hooks on every module,
and recording the order in which the modules *finish* (a forward hook fires when a module
returns). A block therefore comes right after its last sub-module: ``layer1.0.conv1, ...,
layer1.0, layer1.1.conv1, ..., layer1.1, layer1``. A real forward pass was chosen over
``torch.fx`` tracing because it shows what the model really does: it works for code with Python
control flow that fx cannot trace, it drops modules that are registered but never called
(``nn.MultiheadAttention.out_proj`` is one), and it notices modules called more than once per
pass (ResNet blocks reuse one ``relu``), whose "output" would be ambiguous. Such modules are
not layers.

A module whose output is a tuple, such as ``nn.MultiheadAttention`` (which returns
``(attn_output, attn_weights)``), contributes its first element.
"""

from __future__ import annotations

import difflib
import io
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np
import torch
from numpy.lib.format import dtype_to_descr, open_memmap, write_array_header_1_0
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset
from tqdm.auto import tqdm

__all__ = ["extract", "list_layers"]

ImageInput = np.ndarray | torch.Tensor | Dataset | DataLoader
_OUTPUT_DTYPE = np.dtype(np.float32)
_SUPPORTED_INPUTS = (
    "a numpy array or torch tensor of shape (N, H, W, C) uint8 or (N, C, H, W) float, "
    "a torch Dataset (items: image tensors or (image, label) tuples) or a torch DataLoader"
)


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def list_layers(model: nn.Module, *, input_shape: tuple[int, int, int] | None = None) -> list[str]:
    """Names of the layers of ``model`` in the order the forward pass computes them.

    Runs one forward pass on a random dummy image with hooks on all modules. A module is listed
    once it has returned, so a block comes after its sub-modules (``layer1.0.conv1`` before
    ``layer1.0``).
    Modules that are never called, called more than once per pass (a reused ``relu``), or that do
    not return a tensor are left out: they have no single output to extract.

    Parameters
    ----------
    model : torch.nn.Module
        The network. Its training flags are restored afterwards.
    input_shape : tuple of int (C, H, W), optional
        Shape of one dummy image. By default C is the ``in_channels`` of the first ``Conv2d`` (or 3)
        and H = W = ``model.image_size`` if the model has it (torchvision ViTs) else 224. Pass it
        when the model needs another size (for example a Linear layer after a flatten).

    Returns
    -------
    list of str
        Dotted module names, each usable as ``layers=`` in :func:`extract`.

    Examples
    --------
    >>> import torchvision
    >>> list_layers(torchvision.models.resnet18(weights=None))[:3]
    ['conv1', 'bn1', 'relu']
    """
    _check_model(model)
    shape = _default_input_shape(model) if input_shape is None else _check_input_shape(input_shape)
    device, dtype = _model_device(model), _model_dtype(model)
    generator = torch.Generator().manual_seed(0)
    dummy = torch.rand((1, *shape), generator=generator).to(device=device, dtype=dtype)
    with _evaluation_mode(model, device=None):
        calls = _trace_module_calls(model, dummy, hint="pass input_shape=(C, H, W) that it accepts")
    return [call.name for call in calls if call.is_layer]


def extract(
    model: nn.Module,
    images: ImageInput,
    layers: str | Sequence[str],
    *,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
    flatten: bool = True,
    progress: bool = True,
    out_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> dict[str, np.ndarray]:
    """Activations of the requested layers of ``model`` for ``images``.

    Parameters
    ----------
    model : torch.nn.Module
        The network. It runs in eval mode under ``torch.inference_mode()``; its training flags,
        device and hooks are as before when the function returns or raises.
    images : ndarray, Tensor, Dataset or DataLoader
        - array or tensor, shape (n_images, height, width, channels), dtype uint8 (0-255): scaled
          to [0, 1] and moved channels-first, nothing else;
        - array or tensor, shape (n_images, channels, height, width), floating dtype: reaches the
          model as given (only cast to the model's dtype, usually float32);
        - a ``torch.utils.data.Dataset`` whose items are images in one of the layouts above (without
          the first axis) or ``(image, label, ...)`` tuples; batched with ``batch_size``;
        - a ``torch.utils.data.DataLoader`` yielding such batches or ``(images, labels, ...)``
          tuples; its own batching is used and ``batch_size`` is ignored.
    layers : str or sequence of str
        Module names from :func:`list_layers`, for example ``"layer1"`` or
        ``["features.2", "features.7"]``.
    batch_size : int, default=64
        Images per forward pass (array, tensor and Dataset input).
    device : str or torch.device, default="cpu"
        Where the forward pass runs. The model is moved there and back if needed.
    preprocess : callable, optional
        Applied to every float batch, a tensor of shape (batch, channels, height, width) on
        ``device``, before the model; for example
        ``torchvision.transforms.v2.Normalize(mean, std)``. With ``None`` no normalisation happens.
    flatten : bool, default=True
        Return (n_images, n_features) arrays; with False each layer keeps its own shape, e.g.
        (n_images, channels, height, width) for a conv layer or (n_images, tokens, dim) for a
        ViT encoder layer.
    progress : bool, default=True
        Show a progress bar over batches.
    out_dir : str or path-like, optional
        Write each layer to ``out_dir/<layer>.npy`` batch by batch and return read-only
        memory-maps of those files, so memory use does not grow with the number of images.
    overwrite : bool, default=False
        With ``out_dir``: replace existing ``.npy`` files instead of raising FileExistsError.

    Returns
    -------
    dict of str to ndarray
        One float32 array per layer, in the order of ``layers``: shape (n_images, n_features)
        when ``flatten`` else (n_images, *layer_output_shape). With ``out_dir`` the arrays are
        read-only ``numpy.memmap`` objects.

    Raises
    ------
    ValueError
        For unknown layer names (close matches are suggested), images of the wrong rank, dtype or
        channel order, NaN or inf values, empty input, or when the model's forward pass fails on
        the images (the original error is chained).
    FileExistsError
        When ``out_dir`` already holds a file for a requested layer and ``overwrite`` is False.

    Notes
    -----
    Before the batches, the first image goes through the whole model once, alone, with hooks on
    every module: this trial pass finds the order of the layers (so the real passes can stop after
    the last requested one) and checks that each requested module is called exactly once. It
    costs about one image's forward pass.

    Examples
    --------
    >>> import numpy as np, torchvision
    >>> net = torchvision.models.resnet18(weights=None)
    >>> images = np.zeros((10, 64, 64, 3), dtype=np.uint8)
    >>> features = extract(net, images, ["layer1", "layer4"], progress=False)
    >>> features["layer4"].shape
    (10, 2048)
    """
    _check_model(model)
    names = _check_layer_names(layers)
    _check_positive_int(batch_size, "batch_size")
    target_device = _check_device(device)
    if preprocess is not None and not callable(preprocess):
        raise TypeError(
            f"preprocess must be a callable taking and returning a (N, C, H, W) tensor, "
            f"got {type(preprocess).__name__}."
        )
    source = _image_source(images, batch_size)
    files = _output_files(out_dir, names, overwrite) if out_dir is not None else None
    prepare = _BatchPreparer(target_device, _model_dtype(model), preprocess)

    with _evaluation_mode(model, device=target_device):
        batches = iter(source.batches)
        first_batch = next(batches, None)
        if first_batch is None:
            raise ValueError(f"images is empty: {source.description} yielded no images.")
        first_input = prepare(first_batch, start=0)
        calls = _trace_module_calls(
            model, first_input[:1], hint="check the image size and number of channels"
        )
        last_layer = _check_requested_layers(names, calls, model)
        sinks = {
            name: _NpySink(files[name], source.n_images)
            if files is not None
            else _MemorySink(source.n_images)
            for name in names
        }
        recorder = _LayerRecorder(model, sinks, last_layer=last_layer, flatten=flatten)
        bar = tqdm(
            total=source.n_batches,
            desc=f"extract {len(names)} layer(s)",
            unit="batch",
            disable=not progress,
        )
        try:
            with recorder, bar:
                start = 0
                for index, raw in enumerate(chain([first_batch], batches)):
                    batch = first_input if index == 0 else prepare(raw, start=start)
                    recorder.run(batch, start=start)
                    start += batch.shape[0]
                    bar.update(1)
            return {name: sink.finish() for name, sink in sinks.items()}
        except BaseException:
            for sink in sinks.values():
                sink.abort()
            raise


# --------------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------------


def _check_model(model: object) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")


def _check_positive_int(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def _check_input_shape(shape: object) -> tuple[int, int, int]:
    if (
        not isinstance(shape, tuple | list)
        or len(shape) != 3
        or not all(isinstance(s, int | np.integer) and s > 0 for s in shape)
    ):
        raise ValueError(
            f"input_shape must be three positive integers (channels, height, width), got {shape!r}."
        )
    return tuple(int(s) for s in shape)


def _check_layer_names(layers: object) -> list[str]:
    names = [layers] if isinstance(layers, str) else layers
    if not isinstance(names, Sequence) or not all(isinstance(n, str) for n in names):
        raise TypeError(
            f"layers must be a layer name or a list of layer names (str), got {layers!r}."
        )
    if len(names) == 0:
        raise ValueError("layers is empty: name at least one layer (see list_layers(model)).")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"layers lists {repeated} more than once; name each layer once.")
    return list(names)


def _check_device(device: object) -> torch.device:
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be like 'cpu' or 'cuda', got {device!r}.") from err
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was asked for, but no CUDA GPU is available; use 'cpu'."
        )
    return target


def _default_input_shape(model: nn.Module) -> tuple[int, int, int]:
    first_conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    channels = first_conv.in_channels if first_conv is not None else 3
    size = getattr(model, "image_size", 224)
    size = size if isinstance(size, int) else 224
    return (channels, size, size)


def _model_device(model: nn.Module) -> torch.device:
    tensor = next(chain(model.parameters(), model.buffers()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def _model_dtype(model: nn.Module) -> torch.dtype:
    floating = (p.dtype for p in model.parameters() if p.dtype.is_floating_point)
    return next(floating, torch.float32)


# --------------------------------------------------------------------------------------------------
# Eval mode, device and the trial forward pass that finds the layers
# --------------------------------------------------------------------------------------------------


@contextmanager
def _evaluation_mode(model: nn.Module, device: torch.device | None) -> Iterator[None]:
    """Eval mode and inference mode (and ``device``) inside; every module's flag restored after."""
    flags = [(module, module.training) for module in model.modules()]
    devices = {t.device for t in chain(model.parameters(), model.buffers())}
    move = device is not None and bool(devices) and devices != {device}
    if move and len(devices) > 1:
        raise ValueError(
            f"The model's parameters are spread over several devices {sorted(map(str, devices))}; "
            f"put it on one device first (model.to({str(device)!r}))."
        )
    original_device = next(iter(devices)) if devices else None
    try:
        if move:
            model.to(device)
        model.eval()
        with torch.inference_mode():
            yield
    finally:
        for module, was_training in flags:
            module.training = was_training
        if move:
            model.to(original_device)


@dataclass
class _ModuleCall:
    """One module seen in the trial forward pass, at the position where it first returned."""

    name: str
    module: nn.Module
    n_calls: int = 0
    output_type: str = ""

    @property
    def is_layer(self) -> bool:
        return self.n_calls == 1 and self.output_type == "tensor"


def _first_tensor(output: object) -> torch.Tensor | None:
    """The module's output tensor; for tuple outputs (nn.MultiheadAttention) the first element."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, tuple | list) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return None


def _trace_module_calls(model: nn.Module, example: torch.Tensor, hint: str) -> list[_ModuleCall]:
    """Run ``model(example)`` with hooks on all modules; return them in the order they returned.

    A failure inside the model becomes a short ValueError naming the module that failed and
    the shape it was given (``hint`` says what to do about it).
    """
    calls: dict[str, _ModuleCall] = {}
    running: list[tuple[str, nn.Module, str]] = []  # modules entered but not yet returned

    def before(name: str) -> Callable:
        def hook(module: nn.Module, args: tuple) -> None:
            shape = tuple(args[0].shape) if args and isinstance(args[0], torch.Tensor) else "?"
            running.append((name, module, str(shape)))

        return hook

    def after(name: str) -> Callable:
        def hook(module: nn.Module, args: tuple, output: object) -> None:
            running.pop()
            call = calls.setdefault(name, _ModuleCall(name, module))
            call.n_calls += 1
            call.output_type = (
                "tensor" if _first_tensor(output) is not None else type(output).__name__
            )

        return hook

    handles = []
    try:
        for name, module in model.named_modules():
            if name:  # the model itself is not a layer
                handles.append(module.register_forward_pre_hook(before(name)))
                handles.append(module.register_forward_hook(after(name)))
        model(example)
    except (MemoryError, torch.OutOfMemoryError):
        raise
    except Exception as err:
        where = ""
        if running:
            name, module, shape = running[-1]
            where = f" in module '{name}' ({type(module).__name__}, input shape {shape})"
        raise ValueError(
            f"The forward pass of {type(model).__name__} failed{where} on images of shape "
            f"(C, H, W) = {tuple(example.shape[1:])}: {_first_line(err)}. "
            f"The images may not fit the model: {hint}."
        ) from err
    finally:
        for handle in handles:
            handle.remove()
    return list(calls.values())


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def _check_requested_layers(names: list[str], calls: list[_ModuleCall], model: nn.Module) -> str:
    """Validate the requested names against the trial pass; return the one computed last."""
    layers = [call.name for call in calls if call.is_layer]
    seen = {call.name: call for call in calls}
    modules = dict(model.named_modules())
    for name in names:
        call = seen.get(name)
        if name not in modules:
            close = difflib.get_close_matches(name, layers, n=5, cutoff=0.6)
            suggestion = (
                f"Close matches: {', '.join(repr(c) for c in close)}."
                if close
                else f"The first layers are {', '.join(repr(c) for c in layers[:8])}."
            )
            raise ValueError(
                f"Unknown layer {name!r} for {type(model).__name__}. {suggestion} "
                f"list_layers(model) gives all {len(layers)} layer names."
            )
        if call is None:
            raise ValueError(
                f"Module {name!r} exists but is not called in the forward pass, so it has no "
                "output to extract; pick a layer from list_layers(model)."
            )
        if call.n_calls > 1:
            parent = name.rpartition(".")[0]
            better = f" such as its parent {parent!r}" if parent in layers else ""
            raise ValueError(
                f"Module {name!r} is called {call.n_calls} times in one forward pass (the module "
                f"is reused), so its output is ambiguous; pick a module called once{better} "
                "(see list_layers(model))."
            )
        if call.output_type != "tensor":
            raise ValueError(
                f"Module {name!r} returns a {call.output_type}, not a tensor; pick a layer from "
                "list_layers(model)."
            )
    order = {call.name: i for i, call in enumerate(calls)}
    return max(names, key=order.__getitem__)


# --------------------------------------------------------------------------------------------------
# Images: from any accepted input to float (N, C, H, W) batches
# --------------------------------------------------------------------------------------------------


@dataclass
class _ImageSource:
    batches: Iterable[torch.Tensor]  # raw batches: uint8 (n, H, W, C) or float (n, C, H, W)
    n_images: int | None  # None when the input cannot say in advance
    n_batches: int | None
    description: str


def _image_source(images: object, batch_size: int) -> _ImageSource:
    if isinstance(images, np.ndarray | torch.Tensor):
        _check_layout(tuple(images.shape), _dtype_kind(images.dtype), "images")
        n = images.shape[0]
        if n == 0:
            raise ValueError(f"images is empty (shape {tuple(images.shape)}); pass at least one.")
        starts = range(0, n, batch_size)
        return _ImageSource(
            batches=(_as_tensor(images[i : i + batch_size]) for i in starts),
            n_images=n,
            n_batches=len(starts),
            description=f"the {type(images).__name__}",
        )
    if isinstance(images, DataLoader):
        n = _loader_length(images)
        return _ImageSource(
            batches=(_batch_images(b) for b in images),
            n_images=n,
            n_batches=_safe_len(images),
            description="the DataLoader",
        )
    if isinstance(images, Dataset):
        n = None if isinstance(images, IterableDataset) else _safe_len(images)
        if n == 0:
            raise ValueError("images is an empty Dataset (len 0); pass at least one image.")
        loader = DataLoader(images, batch_size=batch_size, shuffle=False, collate_fn=_collate)
        return _ImageSource(
            batches=loader,
            n_images=n,
            n_batches=None if n is None else -(-n // batch_size),
            description="the Dataset",
        )
    hint = " (stack them first: np.stack(images))" if isinstance(images, list | tuple) else ""
    raise TypeError(f"images must be {_SUPPORTED_INPUTS}; got {type(images).__name__}{hint}.")


def _safe_len(obj: object) -> int | None:
    try:
        return len(obj)
    except TypeError:
        return None


def _loader_length(loader: DataLoader) -> int | None:
    """Number of images a DataLoader yields, when it can be known without iterating."""
    if isinstance(loader.dataset, IterableDataset) or loader.batch_size is None:
        return None
    n_indices = _safe_len(loader.sampler)
    if n_indices is None:
        return None
    return (n_indices // loader.batch_size) * loader.batch_size if loader.drop_last else n_indices


def _dtype_kind(dtype: np.dtype | torch.dtype) -> str:
    """'uint8', 'float', or the dtype's name for anything else."""
    if isinstance(dtype, torch.dtype):
        if dtype == torch.uint8:
            return "uint8"
        return "float" if dtype.is_floating_point else str(dtype).removeprefix("torch.")
    if dtype == np.uint8:
        return "uint8"
    return "float" if np.issubdtype(dtype, np.floating) else str(dtype)


def _check_layout(shape: tuple[int, ...], kind: str, what: str) -> None:
    """Raise a ValueError unless ``shape``/``kind`` is uint8 (N, H, W, C) or float (N, C, H, W)."""
    expected = "(N, H, W, C) uint8 images (0-255) or (N, C, H, W) float images"
    if kind not in ("uint8", "float"):
        raise ValueError(
            f"{what} has dtype {kind}; expected {expected}. Convert with "
            "images.astype(np.uint8) for 0-255 pixel values or images.astype(np.float32)."
        )
    if len(shape) != 4:
        fix = {
            3: "; for one image use images[None], for grayscale (N, H, W) use images[..., None] "
            "(uint8) or images[:, None] (float)",
            2: "; images must not be flattened",
        }.get(len(shape), "")
        raise ValueError(f"{what} has shape {shape} ({len(shape)} axes); expected {expected}{fix}.")
    if kind == "uint8" and shape[-1] > 4 and shape[1] <= 4:
        raise ValueError(
            f"{what} is uint8 with shape {shape}, which looks channels-first; uint8 images must be "
            "(N, H, W, C) with the channels last. Move them with images.transpose(0, 2, 3, 1) "
            "(tensor: images.permute(0, 2, 3, 1)), or pass float (N, C, H, W) values."
        )
    if kind == "float" and shape[1] > 4 and shape[-1] <= 4:
        raise ValueError(
            f"{what} is float with shape {shape}, which looks channels-last (N, H, W, C); float "
            "images must be (N, C, H, W). Move the channels with images.transpose(0, 3, 1, 2) "
            "(tensor: images.permute(0, 3, 1, 2)), or pass uint8 (N, H, W, C) pixels."
        )


def _as_tensor(chunk: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(chunk, torch.Tensor):
        return chunk
    # A copy only when the slice is read-only (e.g. a memory-map) or not contiguous.
    return torch.from_numpy(np.require(chunk, requirements=["C", "W"]))


def _image_of(item: object) -> object:
    return item[0] if isinstance(item, tuple | list) and item else item


def _batch_images(batch: object) -> torch.Tensor:
    """The image tensor of a DataLoader batch (a tensor or an (images, labels, ...) tuple)."""
    images = _image_of(batch)
    if isinstance(images, np.ndarray):
        images = _as_tensor(images)
    if not isinstance(images, torch.Tensor):
        raise TypeError(
            f"The DataLoader yielded a {type(images).__name__}; expected an image tensor or an "
            "(images, labels) tuple. Use transforms that return tensors (e.g. ToTensor())."
        )
    return images


def _collate(items: list) -> torch.Tensor:
    """Stack Dataset items (image tensors/arrays or (image, label) tuples) into one batch."""
    images = []
    for item in items:
        image = _image_of(item)
        if isinstance(image, np.ndarray):
            image = _as_tensor(image)
        if not isinstance(image, torch.Tensor):
            raise TypeError(
                f"Dataset items must be image tensors or (image, label) tuples, got an item of "
                f"type {type(image).__name__}. Add a transform that returns a tensor, e.g. "
                "torchvision.transforms.ToTensor()."
            )
        images.append(image)
    shapes = {tuple(image.shape) for image in images}
    if len(shapes) > 1:
        raise ValueError(
            f"Dataset images differ in shape {sorted(shapes)}; resize or crop them to one size."
        )
    return torch.stack(images)


class _BatchPreparer:
    """Turn one raw batch into the float (N, C, H, W) tensor the model gets, checking it."""

    def __init__(self, device: torch.device, dtype: torch.dtype, preprocess: Callable | None):
        self.device, self.dtype, self.preprocess = device, dtype, preprocess

    def __call__(self, raw: torch.Tensor, start: int) -> torch.Tensor:
        where = f"images[{start}:{start + raw.shape[0]}]" if raw.ndim else "images"
        kind = _dtype_kind(raw.dtype)
        _check_layout(tuple(raw.shape), kind, where)
        if kind == "uint8":
            batch = raw.to(self.device).permute(0, 3, 1, 2).contiguous().to(self.dtype).div_(255)
        else:
            batch = raw.to(device=self.device, dtype=self.dtype)
            finite = torch.isfinite(batch)
            if not bool(finite.all()):
                bad = start + int((~finite).flatten(1).any(1).nonzero()[0, 0])
                raise ValueError(
                    f"{where} contain NaN or inf (first at image {bad}); the model needs finite "
                    "values. Clean or drop those images first."
                )
        if self.preprocess is not None:
            batch = self.preprocess(batch)
            if not isinstance(batch, torch.Tensor) or batch.ndim != 4:
                raise TypeError(
                    f"preprocess must return a (N, C, H, W) tensor, got "
                    f"{getattr(batch, 'shape', type(batch).__name__)}."
                )
        return batch


# --------------------------------------------------------------------------------------------------
# Hooks that copy the requested outputs and stop the forward pass early
# --------------------------------------------------------------------------------------------------


class _StopForward(Exception):
    """Raised by the hook of the last requested layer: nothing after it needs computing."""


class _ExtractionError(ValueError):
    """A problem found while storing outputs, inside a hook: passed on as is, not re-wrapped."""


class _LayerRecorder:
    """Forward hooks on the requested modules that stream each output into its sink.

    Outputs are copied inside the hook, before later in-place operations (``ReLU(inplace=True)``,
    ``out += identity``) can change them.
    """

    def __init__(self, model: nn.Module, sinks: dict, last_layer: str, flatten: bool):
        self.model, self.sinks, self.last_layer, self.flatten = model, sinks, last_layer, flatten
        self.modules = dict(model.named_modules())
        self.handles: list = []
        self.fired: set[str] = set()
        self.batch_size = 0

    def __enter__(self) -> _LayerRecorder:
        for name in self.sinks:
            self.handles.append(self.modules[name].register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc_info: object) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def _hook(self, name: str) -> Callable:
        def hook(module: nn.Module, args: tuple, output: object) -> None:
            tensor = _first_tensor(output)
            if tensor is None or tensor.ndim == 0 or tensor.shape[0] != self.batch_size:
                shape = tuple(tensor.shape) if tensor is not None else type(output).__name__
                raise _ExtractionError(
                    f"Layer {name!r} returned {shape} for a batch of {self.batch_size} images; "
                    "expected a tensor whose first axis is the batch."
                )
            values = tensor.detach().to("cpu", torch.float32).numpy()
            if self.flatten:
                values = values.reshape(values.shape[0], -1)
            self.sinks[name].write(values, layer=name)
            self.fired.add(name)
            if name == self.last_layer:
                raise _StopForward

        return hook

    def run(self, batch: torch.Tensor, start: int) -> None:
        self.batch_size, self.fired = batch.shape[0], set()
        try:
            self.model(batch)
        except _StopForward:
            pass
        except (MemoryError, torch.OutOfMemoryError, _ExtractionError):
            raise
        except Exception as err:
            raise ValueError(
                f"The forward pass failed on images[{start}:{start + batch.shape[0]}] (batch "
                f"shape {tuple(batch.shape)}): {_first_line(err)}."
            ) from err
        missing = [name for name in self.sinks if name not in self.fired]
        if missing:
            raise ValueError(
                f"Layers {missing} did not run for images[{start}:{start + batch.shape[0]}]; the "
                "model takes a different path for these images, so they cannot be extracted."
            )


# --------------------------------------------------------------------------------------------------
# Where the activations go: memory, or .npy files written batch by batch
# --------------------------------------------------------------------------------------------------


class _MemorySink:
    """Collect a layer's batches in one array (pre-sized when the number of images is known)."""

    def __init__(self, n_images: int | None):
        self.n_images, self.n_written = n_images, 0
        self.array: np.ndarray | None = None
        self.chunks: list[np.ndarray] = []

    def write(self, values: np.ndarray, layer: str) -> None:
        _check_row_shape(self.array if self.array is not None else self.chunks, values, layer)
        stop = self.n_written + values.shape[0]
        if self.n_images is None:
            self.chunks.append(values.copy())
        else:
            if self.array is None:
                self.array = np.empty((self.n_images, *values.shape[1:]), _OUTPUT_DTYPE)
            _check_not_too_many(stop, self.n_images)
            self.array[self.n_written : stop] = values
        self.n_written = stop

    def finish(self) -> np.ndarray:
        if self.n_images is None:
            return np.concatenate(self.chunks)
        _check_count(self.n_written, self.n_images)
        return self.array

    def abort(self) -> None:
        self.array, self.chunks = None, []


class _NpySink:
    """Write a layer batch by batch into a ``.npy`` file; return a read-only memory-map of it.

    Batches go through ordinary file writes: pages written through a memory-map would count as
    resident memory of this process until it ends, and memory use would grow with the number of
    images. The file is written under a ``.partial`` name and renamed when complete, so an
    interrupted run never leaves a truncated file under the final name.
    """

    def __init__(self, path: Path, n_images: int | None):
        self.path, self.n_images, self.n_written = path, n_images, 0
        self.partial = path.with_name(path.name + ".partial")
        self.file = None
        self.row_shape: tuple[int, ...] | None = None

    def _open(self, row_shape: tuple[int, ...]) -> None:
        self.row_shape = row_shape
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.n_images is not None:
            # Known length: numpy creates the pre-sized file and its header; we write after it.
            header = open_memmap(
                self.partial, mode="w+", dtype=_OUTPUT_DTYPE, shape=(self.n_images, *row_shape)
            )
            offset = header.offset
            del header
            self.file = open(self.partial, "r+b")  # noqa: SIM115 (closed in finish/abort)
            self.file.seek(offset)
        else:
            # Unknown length: a header for 0 rows now, rewritten in place at the end (numpy
            # pads headers so that the first axis can grow without changing their length).
            self.file = open(self.partial, "wb")  # noqa: SIM115 (closed in finish/abort)
            write_array_header_1_0(self.file, self._header(0))

    def _header(self, n_rows: int) -> dict:
        return {
            "descr": dtype_to_descr(_OUTPUT_DTYPE),
            "fortran_order": False,
            "shape": (n_rows, *self.row_shape),
        }

    def write(self, values: np.ndarray, layer: str) -> None:
        if self.file is None:
            self._open(values.shape[1:])
        if values.shape[1:] != self.row_shape:
            _check_row_shape([np.empty((0, *self.row_shape))], values, layer)
        stop = self.n_written + values.shape[0]
        if self.n_images is not None:
            _check_not_too_many(stop, self.n_images)
        self.file.write(np.ascontiguousarray(values, dtype=_OUTPUT_DTYPE).data)
        self.n_written = stop

    def finish(self) -> np.ndarray:
        if self.n_images is None:
            data_start = _header_length(self._header(0))
            if _header_length(self._header(self.n_written)) != data_start:
                raise RuntimeError(f"Could not finalise the header of {self.path}.")
            self.file.seek(0)
            write_array_header_1_0(self.file, self._header(self.n_written))
        else:
            _check_count(self.n_written, self.n_images)
        self.file.close()
        os.replace(self.partial, self.path)
        return np.load(self.path, mmap_mode="r")

    def abort(self) -> None:
        if self.file is not None:
            self.file.close()
        self.partial.unlink(missing_ok=True)


def _header_length(header: dict) -> int:
    buffer = io.BytesIO()
    write_array_header_1_0(buffer, header)
    return buffer.tell()


def _output_files(out_dir: str | os.PathLike, names: list[str], overwrite: bool) -> dict:
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"out_dir {str(folder)!r} exists and is not a folder.")
    files = {name: folder / f"{name}.npy" for name in names}
    existing = [str(path) for path in files.values() if path.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{', '.join(existing)} already exist; extract never overwrites files silently. "
            "Pass overwrite=True to replace them, or choose another out_dir."
        )
    return files


def _check_row_shape(previous: np.ndarray | list, values: np.ndarray, layer: str) -> None:
    reference = previous if isinstance(previous, np.ndarray) else next(iter(previous), None)
    if reference is not None and reference.shape[1:] != values.shape[1:]:
        raise _ExtractionError(
            f"Layer {layer!r} gave outputs of shape {values.shape[1:]} per image after "
            f"{reference.shape[1:]} for earlier images; all images must have the same size."
        )


def _check_not_too_many(n_seen: int, n_expected: int) -> None:
    if n_seen > n_expected:
        raise _ExtractionError(
            f"The images yielded more than the {n_expected} images their length announced; "
            "check the __len__ of the Dataset."
        )


def _check_count(n_seen: int, n_expected: int) -> None:
    if n_seen != n_expected:
        raise _ExtractionError(
            f"The images yielded {n_seen} images but their length announced {n_expected}; "
            "check the __len__ of the Dataset."
        )
