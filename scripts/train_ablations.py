"""Ablate the course ResNet on the object-scene task and save held-out accuracies and curves.

Usage (from the repository root)::

    python scripts/train_ablations.py                      # every ablation, seeds 0 and 1
    python scripts/train_ablations.py --ablations full no_residual --seeds 0 \\
        --n-train 256 --n-test 128 --epochs 1 --out /tmp/ablation_smoke.json   # a smoke run

The chapter "Residual connections and Vision Transformers" cannot train five networks within
its 90-second budget, so it reads the results this script writes to
``src/course_tools/weights/ablation_object_scenes.json``. The JSON records every setting, the
versions of torch and numpy, the command and the time each run took, so a reader can re-run it.

What is ablated
---------------
Every run starts from the architecture of the shipped ``course_resnet``
(:class:`course_tools.models.zoo.CourseResNet`: a stem and three stages of two residual blocks,
batchnorm, ReLU, 13 conv layers) with fresh random weights drawn from the run's seed, and
removes one design principle:

``full``
    Nothing removed.
``no_normalization``
    Every ``BatchNorm2d`` replaced by a learnable per-channel scale and shift
    (:class:`ChannelAffine`): the normalisation goes, the affine parameters it carries stay.
``no_residual``
    Every block's shortcut replaced by zero (:class:`ZeroShortcut`): a plain 13-layer CNN with
    the same parameters minus the three 1x1 shortcut convolutions.
``no_locality``
    A fixed random permutation of the 64 x 64 pixel positions (the same for every image and
    channel) is applied before the network (:class:`FixedPixelPermutation`). The network is
    unchanged, but each first-layer filter now reads 25 pixels scattered over the image: the
    same as a network with non-local, sparse filters on the original image.
``no_rectification``
    Every ReLU replaced by the identity and the stem's max-pool by an average pool, so that
    the network computes an affine function of the image at test time.

Recipe (identical for every run; see ``Settings``): images from
:func:`course_tools.stimuli.object_scenes` at 64 px in the variation mix of the shipped
networks (20 % low, 40 % medium, 40 % high); ``n_train`` training images drawn with seed
``TRAIN_SEED`` (the same images for every run) and ``n_test`` held-out images with the test
seed of ``scripts/train_shipped.py`` (never trained on); AdamW with linear warm-up and cosine
decay; no augmentation, no early stopping: the accuracy after the last epoch is reported.
The run's seed sets the initial weights and the batch order.

Determinism: with the same settings, seeds and number of threads (``--threads``, default 1)
the results are identical (``torch.use_deterministic_algorithms`` is on).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

import course_tools
from course_tools.models.registry import build_model
from course_tools.stimuli import object_scenes

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "src" / "course_tools" / "weights" / "ablation_object_scenes.json"
VARIATION_MIX = {"low": 0.2, "medium": 0.4, "high": 0.4}
TRAIN_SEED = 0
TEST_SEED = 2_000_003  # the held-out seed of scripts/train_shipped.py
PERMUTATION_SEED = 12_345
ABLATIONS = ("full", "no_normalization", "no_residual", "no_locality", "no_rectification")


@dataclass(frozen=True)
class Settings:
    """Everything that defines one ablation study (saved into the JSON)."""

    architecture: str = "course_resnet"
    image_size: int = 64
    n_train: int = 8000
    n_test: int = 2000
    epochs: int = 5
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    warmup_fraction: float = 0.05
    seeds: tuple[int, ...] = (0, 1)
    ablations: tuple[str, ...] = ABLATIONS
    variation_mix: dict = field(default_factory=lambda: dict(VARIATION_MIX))
    train_seed: int = TRAIN_SEED
    test_seed: int = TEST_SEED
    permutation_seed: int = PERMUTATION_SEED


# --------------------------------------------------------------------------------------------
# the ablations
# --------------------------------------------------------------------------------------------
class ChannelAffine(nn.Module):
    """``x * weight[c] + bias[c]`` per channel: batchnorm's affine part without normalisation.

    Parameters
    ----------
    channels : int
    """

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H, W)."""
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class ZeroShortcut(nn.Module):
    """A shortcut that carries nothing: the block's output becomes ``relu(F(x))``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A zero that broadcasts against the residual branch."""
        return x.new_zeros(())


class FixedPixelPermutation(nn.Module):
    """Move every pixel to a fixed random position (the same for every image and channel).

    Parameters
    ----------
    image_size : int
    seed : int
        Seed of the permutation.
    """

    def __init__(self, image_size: int, seed: int):
        super().__init__()
        order = np.random.default_rng(seed).permutation(image_size * image_size)
        self.register_buffer("order", torch.from_numpy(order), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H, W) with the pixels permuted."""
        n, c, h, w = x.shape
        return x.flatten(2)[:, :, self.order].view(n, c, h, w)


def _replace(module: nn.Module, kind: type, make) -> int:
    """Replace every sub-module of type ``kind`` by ``make(old)``; return how many."""
    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, kind):
            setattr(module, name, make(child))
            count += 1
        else:
            count += _replace(child, kind, make)
    return count


def build_ablation(name: str, seed: int, settings: Settings) -> nn.Module:
    """The architecture of ``settings.architecture`` with fresh weights and one principle removed.

    Parameters
    ----------
    name : str
        One of :data:`ABLATIONS`.
    seed : int
        Seed of the initial weights.
    settings : Settings

    Returns
    -------
    torch.nn.Module
        Takes float images (N, 3, 64, 64) in [0, 1].
    """
    if name not in ABLATIONS:
        raise ValueError(f"unknown ablation {name!r}; choose from {ABLATIONS}.")
    model = build_model(settings.architecture, seed=seed)
    if name == "no_normalization":
        _replace(model, nn.BatchNorm2d, lambda bn: ChannelAffine(bn.num_features))
    elif name == "no_residual":
        for block in model.modules():
            if hasattr(block, "shortcut"):
                block.shortcut = ZeroShortcut()
    elif name == "no_locality":
        model = nn.Sequential(
            FixedPixelPermutation(settings.image_size, settings.permutation_seed), model
        )
    elif name == "no_rectification":
        _replace(model, nn.ReLU, lambda _: nn.Identity())
        _replace(model, nn.MaxPool2d, lambda pool: nn.AvgPool2d(pool.kernel_size))
    return model


# --------------------------------------------------------------------------------------------
# data, training, evaluation
# --------------------------------------------------------------------------------------------
def scene_mix(n: int, seed: int, image_size: int, mix: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` object scenes in the proportions ``mix`` with their category labels.

    Returns
    -------
    images : torch.Tensor, shape (n, 3, image_size, image_size), uint8
    labels : torch.Tensor, shape (n,), int64
    """
    counts = {v: int(round(f * n)) for v, f in mix.items()}
    counts["high"] = n - sum(c for v, c in counts.items() if v != "high")
    images, labels = [], []
    for variation, count in counts.items():
        if count == 0:
            continue
        part, meta = object_scenes(count, image_size=image_size, variation=variation, seed=seed)
        images.append(torch.from_numpy(part).permute(0, 3, 1, 2).contiguous())
        labels.append(torch.from_numpy(meta["category"].cat.codes.to_numpy().astype(np.int64)))
    return torch.cat(images), torch.cat(labels)


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of ``images`` (uint8, N x 3 x H x W) classified as ``labels``, in eval mode."""
    model.eval()
    correct = 0
    for start in range(0, len(images), 500):
        batch = images[start : start + 500].float() / 255
        correct += int((model(batch).argmax(1) == labels[start : start + 500]).sum())
    return correct / len(images)


def learning_rate(step: int, total: int, settings: Settings) -> float:
    """Linear warm-up over ``warmup_fraction`` of the steps, then cosine decay to zero."""
    warmup = max(1, int(settings.warmup_fraction * total))
    if step < warmup:
        return settings.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return settings.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def train_run(
    name: str, seed: int, settings: Settings, train: tuple, test: tuple, progress: bool
) -> dict:
    """Train one ablation from one seed; return its held-out accuracy and curves."""
    start = time.perf_counter()
    images, labels = train
    model = build_ablation(name, seed, settings)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    generator = torch.Generator().manual_seed(seed)
    n_batches = math.ceil(len(labels) / settings.batch_size)
    total = n_batches * settings.epochs
    history, step_losses, step = [], [], 0
    bar = tqdm(total=total, desc=f"{name} seed {seed}", disable=not progress, leave=False)
    for epoch in range(settings.epochs):
        model.train()
        order = torch.randperm(len(labels), generator=generator)
        loss_sum = 0.0
        for batch in order.split(settings.batch_size):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, total, settings)
            logits = model(images[batch].float() / 255)
            loss = nn.functional.cross_entropy(logits, labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(batch)
            step_losses.append(round(loss.item(), 5))
            step += 1
            bar.update(1)
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": round(loss_sum / len(labels), 5),
                "test_accuracy": round(accuracy(model, *test), 5),
            }
        )
    bar.close()
    return {
        "seed": seed,
        "test_accuracy": history[-1]["test_accuracy"],
        "history": history,
        "step_loss": step_losses,
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "train_seconds": round(time.perf_counter() - start, 1),
    }


def run_study(settings: Settings, *, command: str = "", progress: bool = True) -> dict:
    """Train every ablation of ``settings`` from every seed; return the JSON-ready results."""
    unknown = sorted(set(settings.ablations) - set(ABLATIONS))
    if unknown:
        raise ValueError(f"unknown ablations {unknown}; choose from {ABLATIONS}.")
    start = time.perf_counter()
    train = scene_mix(settings.n_train, settings.train_seed, settings.image_size, VARIATION_MIX)
    test = scene_mix(settings.n_test, settings.test_seed, settings.image_size, VARIATION_MIX)
    data_seconds = time.perf_counter() - start
    results = {}
    for name in settings.ablations:
        runs = [train_run(name, seed, settings, train, test, progress) for seed in settings.seeds]
        accuracies = [run["test_accuracy"] for run in runs]
        results[name] = {
            "description": ABLATION_DESCRIPTIONS[name],
            "mean_test_accuracy": round(float(np.mean(accuracies)), 5),
            "runs": runs,
        }
        if progress:
            print(f"{name:18s} held-out accuracy {accuracies}", flush=True)
    return {
        "what": "held-out 8-way accuracy of course_resnet ablations on object_scenes",
        "produced_by": "scripts/train_ablations.py",
        "command": command,
        "settings": _settings_dict(settings),
        "chance": 1 / 8,
        "results": results,
        "data_seconds": round(data_seconds, 1),
        "total_seconds": round(time.perf_counter() - start, 1),
        "threads": torch.get_num_threads(),
        "versions": {
            "torch": torch.__version__,
            "numpy": np.__version__,
            "course_tools": course_tools.__version__,
            "python": platform.python_version(),
        },
        "created": datetime.date.today().isoformat(),
    }


ABLATION_DESCRIPTIONS = {
    "full": "course_resnet architecture, nothing removed",
    "no_normalization": "every BatchNorm2d replaced by a learnable per-channel scale and shift",
    "no_residual": "every residual shortcut replaced by zero (a plain 13-layer CNN)",
    "no_locality": "a fixed random permutation of the pixel positions before the network "
    "(each filter reads scattered pixels)",
    "no_rectification": "every ReLU replaced by the identity and max-pooling by average pooling",
}


def _settings_dict(settings: Settings) -> dict:
    values = asdict(settings)
    values["seeds"] = list(settings.seeds)
    values["ablations"] = list(settings.ablations)
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Settings()
    parser.add_argument("--ablations", nargs="+", default=list(ABLATIONS), choices=ABLATIONS)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(defaults.seeds))
    parser.add_argument("--n-train", type=int, default=defaults.n_train)
    parser.add_argument("--n-test", type=int, default=defaults.n_test)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON file to write")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    args = parser.parse_args(argv)
    if min(args.n_train, args.n_test, args.epochs) < 1 or min(args.seeds) < 0:
        parser.error("--n-train, --n-test and --epochs must be positive, seeds non-negative.")

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    settings = Settings(
        n_train=args.n_train,
        n_test=args.n_test,
        epochs=args.epochs,
        seeds=tuple(args.seeds),
        ablations=tuple(args.ablations),
    )
    command = " ".join(
        ["python scripts/train_ablations.py", *(argv if argv is not None else sys.argv[1:])]
    )
    result = run_study(settings, command=command, progress=not args.no_progress)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
