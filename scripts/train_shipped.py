"""Train the networks that ship with course_tools, from a seed, and write weights + model cards.

Usage (from the repository root)::

    python scripts/train_shipped.py --model course_cnn --seed 0
    python scripts/train_shipped.py --model all              # every shipped network in turn
    python scripts/train_shipped.py --model course_cnn --n-train 512 --epochs 1 \\
        --out-dir /tmp/tiny                                  # a quick smoke run

For each network this writes, into ``--out-dir`` (default: the package's
``src/course_tools/weights``):

- ``<name>.pt``: the trained ``state_dict`` stored as float16 (integer buffers unchanged);
- ``<name>.json``: the model card that :func:`course_tools.models.model_card` returns and
  :func:`course_tools.models.load_model` checks the weights against (SHA-256);
- ``<name>.md``: the same card for people.

Recipe (identical for every network; the numbers per network are in ``RECIPES``):

- data: :func:`course_tools.stimuli.object_scenes`, 64 x 64 px, 8 categories, a mix of
  variation levels (20 % low, 40 % medium, 40 % high). Training images use ``seed``,
  validation images ``seed + 1_000_000`` and the held-out test set the fixed seed
  ``TEST_SEED`` (never used for training), so the test accuracy is on fresh images;
- augmentation: random horizontal flips;
- optimiser: AdamW with a per-step schedule, linear warm-up then cosine decay to zero;
- loop: :func:`course_tools.models.training.fit` (cross-entropy, explicit validation set, no
  early stopping); the weights of the epoch with the lowest validation loss are kept.

Determinism: the same seed, recipe and number of threads (``--threads``, default 1) give
bit-identical weights (``torch.use_deterministic_algorithms`` is on). One thread is the
default because on shared cores two OpenMP threads that wait for each other ran 4-5 times
slower than one (measured here with 8 other processes busy).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

import course_tools
from course_tools.models.registry import (
    SHIPPED_MODELS,
    available_models,
    build_model,
    region_layers,
    sha256_file,
)
from course_tools.models.training import fit
from course_tools.stimuli import object_scenes

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT_DIR = ROOT / "src" / "course_tools" / "weights"
VARIATION_MIX = {"low": 0.2, "medium": 0.4, "high": 0.4}
VALIDATION_SEED_OFFSET = 1_000_000
TEST_SEED = 2_000_003
N_VALIDATION = 2000
N_TEST = 3000


@dataclass(frozen=True)
class Recipe:
    """How one network is trained."""

    n_train: int
    epochs: int
    lr: float
    weight_decay: float
    batch_size: int = 128
    warmup_fraction: float = 0.05


RECIPES: dict[str, Recipe] = {
    "course_cnn": Recipe(n_train=20_000, epochs=5, lr=2e-3, weight_decay=5e-4),
    "course_resnet": Recipe(n_train=20_000, epochs=4, lr=2e-3, weight_decay=5e-4),
    "course_vit": Recipe(n_train=20_000, epochs=6, lr=1e-3, weight_decay=0.05),
    "surrogate_brain": Recipe(n_train=20_000, epochs=3, lr=2e-3, weight_decay=5e-4),
}


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
def scene_mix(n: int, seed: int, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``n`` object scenes in the VARIATION_MIX proportions with their category labels.

    Returns
    -------
    images : ndarray, shape (n, 64, 64, 3), uint8
    labels : ndarray, shape (n,), int64
        Category codes 0..7 in the order of ``course_tools.stimuli`` CATEGORIES.
    """
    counts = {v: int(round(f * n)) for v, f in VARIATION_MIX.items()}
    counts["high"] = n - counts["low"] - counts["medium"]
    images, labels = [], []
    for variation, count in counts.items():
        if count == 0:
            continue
        part, meta = object_scenes(count, variation=variation, seed=seed, progress=progress)
        images.append(part)
        labels.append(meta["category"].cat.codes.to_numpy().astype(np.int64))
    return np.concatenate(images), np.concatenate(labels)


class SceneDataset(Dataset):
    """uint8 images kept channels-first in memory, served as float [0, 1] tensors.

    Parameters
    ----------
    images : ndarray, shape (n, H, W, 3), uint8
    labels : ndarray, shape (n,)
    flip : bool
        Flip each image left-right with probability 1/2 (uses torch's global random state,
        which :func:`~course_tools.models.training.fit` seeds).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, flip: bool):
        self.images = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
        self.labels = torch.from_numpy(labels)
        self.flip = flip

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index].float() / 255
        if self.flip and bool(torch.rand(()) < 0.5):
            image = image.flip(-1)
        return image, self.labels[index]


# --------------------------------------------------------------------------------------------
# optimisation
# --------------------------------------------------------------------------------------------
class ScheduledAdamW(torch.optim.AdamW):
    """AdamW whose learning rate follows a warm-up + cosine schedule, set at every step.

    Parameters
    ----------
    params : iterable of parameters
    peak_lr : float
    total_steps, warmup_steps : int
    weight_decay : float
    bar : tqdm or None
        Advanced by one per step (progress over all epochs).
    """

    def __init__(self, params, *, peak_lr, total_steps, warmup_steps, weight_decay, bar=None):
        super().__init__(params, lr=peak_lr, weight_decay=weight_decay)
        self.peak_lr = peak_lr
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.n_steps = 0
        self.bar = bar

    def lr_at(self, step: int) -> float:
        """Learning rate of step ``step`` (0-based)."""
        if step < self.warmup_steps:
            return self.peak_lr * (step + 1) / self.warmup_steps
        progress = (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps)
        return self.peak_lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    def step(self, closure=None):
        """Set this step's learning rate, then take an AdamW step."""
        for group in self.param_groups:
            group["lr"] = self.lr_at(self.n_steps)
        self.n_steps += 1
        if self.bar is not None:
            self.bar.update(1)
        return super().step(closure)


@torch.no_grad()
def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray, batch_size=500) -> float:
    """Fraction of ``images`` (n, H, W, 3) uint8 whose predicted category equals ``labels``."""
    model.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(images[start : start + batch_size]).permute(0, 3, 1, 2)
        predicted = model(batch.float() / 255).argmax(1).numpy()
        correct += int((predicted == labels[start : start + batch_size]).sum())
    return correct / len(images)


def float16_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with floating-point tensors stored as float16 (integers unchanged)."""
    return {
        key: value.detach().to(torch.float16) if value.is_floating_point() else value.clone()
        for key, value in model.state_dict().items()
    }


# --------------------------------------------------------------------------------------------
# one network
# --------------------------------------------------------------------------------------------
def train_one(name: str, seed: int, recipe: Recipe, out_dir: Path, n_val: int, n_test: int) -> dict:
    """Train network ``name`` with ``recipe``, evaluate it, write weights and cards."""
    start = time.perf_counter()
    log = _logger(name)
    log(f"generating {recipe.n_train} training + {n_val} validation images")
    train_images, train_labels = scene_mix(recipe.n_train, seed)
    val_images, val_labels = scene_mix(n_val, seed + VALIDATION_SEED_OFFSET)
    data_seconds = time.perf_counter() - start

    model = build_model(name, seed=seed)
    n_batches = math.ceil(recipe.n_train / recipe.batch_size)
    total_steps = n_batches * recipe.epochs
    warmup = max(1, int(recipe.warmup_fraction * total_steps))
    bar = tqdm(
        total=total_steps,
        desc=f"{name} steps",
        mininterval=1.0 if sys.stderr.isatty() else 20.0,
        file=sys.stderr,
    )

    def make_optimizer(params):
        return ScheduledAdamW(
            params,
            peak_lr=recipe.lr,
            total_steps=total_steps,
            warmup_steps=warmup,
            weight_decay=recipe.weight_decay,
            bar=bar,
        )

    log(f"training {recipe.epochs} epochs x {n_batches} batches of {recipe.batch_size}")
    train_start = time.perf_counter()
    history = fit(
        model,
        SceneDataset(train_images, train_labels, flip=True),
        val=SceneDataset(val_images, val_labels, flip=False),
        loss="cross_entropy",
        optimizer=make_optimizer,
        batch_size=recipe.batch_size,
        max_epochs=recipe.epochs,
        patience=None,
        seed=seed,
        progress=True,  # one line per epoch with the training and validation loss
    )
    bar.close()
    train_seconds = time.perf_counter() - train_start
    for epoch, row in history.to_frame().iterrows():
        log(f"epoch {epoch}: train loss {row.train_loss:.4f}, val loss {row.val_loss:.4f}")
    log(f"trained in {train_seconds:.0f} s; best epoch {history.best_epoch}")

    del train_images
    test_images, test_labels = scene_mix(n_test, TEST_SEED)
    accuracy_float32 = accuracy(model, test_images, test_labels)
    state = float16_state(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights_path = out_dir / f"{name}.pt"
    torch.save(state, weights_path)
    reloaded = build_model(name, seed=seed)
    reloaded.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    )
    reloaded.eval()
    accuracy_float16 = accuracy(reloaded, test_images, test_labels)
    per_variation = _per_variation_accuracy(reloaded, n_test)
    log(
        f"held-out accuracy {accuracy_float16:.3f} (float16 weights), {accuracy_float32:.3f} "
        f"(float32); per variation {per_variation}"
    )
    if abs(accuracy_float16 - accuracy_float32) > 0.01:
        log("WARNING: float16 storage changed the accuracy by more than 0.01")

    card = _card(
        name=name,
        seed=seed,
        recipe=recipe,
        model=reloaded,
        history=history,
        weights_path=weights_path,
        accuracy_float16=accuracy_float16,
        accuracy_float32=accuracy_float32,
        per_variation=per_variation,
        n_val=n_val,
        n_test=n_test,
        train_seconds=train_seconds,
        data_seconds=data_seconds,
        total_seconds=time.perf_counter() - start,
    )
    (out_dir / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    (out_dir / f"{name}.md").write_text(_markdown(card))
    log(f"wrote {weights_path} ({weights_path.stat().st_size / 1e6:.2f} MB) and its card")
    return card


def _per_variation_accuracy(model: nn.Module, n_test: int) -> dict[str, float]:
    result = {}
    for variation in VARIATION_MIX:
        images, meta = object_scenes(n_test // 3, variation=variation, seed=TEST_SEED + 1)
        labels = meta["category"].cat.codes.to_numpy().astype(np.int64)
        result[variation] = round(accuracy(model, images, labels), 4)
    return result


def _card(**info) -> dict:
    model, recipe, history = info["model"], info["recipe"], info["history"]
    n_batches = math.ceil(recipe.n_train / recipe.batch_size)
    return {
        "name": info["name"],
        "source": "shipped",
        "description": available_models().set_index("name").loc[info["name"], "description"],
        "architecture": {
            "class": f"course_tools.models.zoo.{type(model).__name__}",
            "n_parameters": int(sum(p.numel() for p in model.parameters())),
            "input": "float images (N, 3, 64, 64) in [0, 1]; the module 'normalize' applies "
            "the ImageNet channel mean/std",
            "n_classes": 8,
            "region_layers": region_layers(info["name"]),
        },
        "training": {
            "data": {
                "generator": "course_tools.stimuli.object_scenes",
                "image_size": 64,
                "n_train": recipe.n_train,
                "n_validation": info["n_val"],
                "variation_mix": VARIATION_MIX,
                "train_seed": info["seed"],
                "validation_seed": info["seed"] + VALIDATION_SEED_OFFSET,
                "augmentation": "random horizontal flip",
            },
            "seed": info["seed"],
            "epochs": recipe.epochs,
            "steps": n_batches * recipe.epochs,
            "batch_size": recipe.batch_size,
            "optimizer": {
                "name": "AdamW",
                "peak_lr": recipe.lr,
                "weight_decay": recipe.weight_decay,
                "schedule": f"linear warm-up over {recipe.warmup_fraction:.0%} of the steps, "
                "then cosine decay to 0 (per step)",
            },
            "loss": "cross_entropy",
            "loop": "course_tools.models.training.fit (best validation-loss epoch kept)",
            "best_epoch": history.best_epoch,
            "history": [
                {"epoch": int(r.epoch), "train_loss": r.train_loss, "val_loss": r.val_loss}
                for r in history.to_frame().itertuples()
            ],
            "train_seconds": round(info["train_seconds"], 1),
            "data_seconds": round(info["data_seconds"], 1),
            "total_seconds": round(info["total_seconds"], 1),
            "threads": torch.get_num_threads(),
            "command": f"python scripts/train_shipped.py --model {info['name']} "
            f"--seed {info['seed']}",
        },
        "evaluation": {
            "dataset": "course_tools.stimuli.object_scenes, fresh seed (not used in training)",
            "test_seed": TEST_SEED,
            "n_test": info["n_test"],
            "variation_mix": VARIATION_MIX,
            "accuracy": round(info["accuracy_float16"], 4),
            "accuracy_float32_weights": round(info["accuracy_float32"], 4),
            "accuracy_by_variation": info["per_variation"],
            "accuracy_by_variation_seed": TEST_SEED + 1,
            "chance": 1 / 8,
        },
        "weights": {
            "file": info["weights_path"].name,
            "dtype": "float16",
            "bytes": info["weights_path"].stat().st_size,
            "sha256": sha256_file(info["weights_path"]),
        },
        "versions": {
            "torch": torch.__version__,
            "numpy": np.__version__,
            "course_tools": course_tools.__version__,
            "python": platform.python_version(),
        },
        "created": datetime.date.today().isoformat(),
    }


def _markdown(card: dict) -> str:
    t, e, a = card["training"], card["evaluation"], card["architecture"]
    mix = ", ".join(f"{v} {f:.0%}" for v, f in t["data"]["variation_mix"].items())
    regions = ", ".join(f"{r} `{layer}`" for r, layer in a["region_layers"].items())
    by_variation = ", ".join(f"{v} {acc:.3f}" for v, acc in e["accuracy_by_variation"].items())
    return f"""# Model card: `{card["name"]}`

{card["description"]}

| | |
|---|---|
| architecture | `{a["class"]}`, {a["n_parameters"]:,} parameters |
| input | {a["input"]} |
| data | `object_scenes`, {t["data"]["n_train"]:,} training images (64 px; {mix}), seed {t["data"]["train_seed"]}; {t["data"]["n_validation"]:,} validation images, seed {t["data"]["validation_seed"]}; {t["data"]["augmentation"]} |
| training | {t["epochs"]} epochs ({t["steps"]} steps, batch {t["batch_size"]}), AdamW, peak lr {t["optimizer"]["peak_lr"]}, weight decay {t["optimizer"]["weight_decay"]}, {t["optimizer"]["schedule"]}; seed {t["seed"]} |
| held-out accuracy | **{e["accuracy"]:.3f}** on {e["n_test"]:,} fresh images (seed {e["test_seed"]}, same variation mix; chance 0.125); by variation: {by_variation} |
| training time | {t["train_seconds"]:.0f} s with {t["threads"]} torch CPU thread(s) ({t["total_seconds"]:.0f} s with data generation and evaluation) |
| versions | torch {card["versions"]["torch"]}, course_tools {card["versions"]["course_tools"]} |
| weights | `{card["weights"]["file"]}`, {card["weights"]["dtype"]}, {card["weights"]["bytes"] / 1e6:.2f} MB, sha256 `{card["weights"]["sha256"]}` |
| region layers | {regions} |

Reproduce: `{t["command"]}`
"""  # noqa: E501


def _logger(name: str):
    start = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{name} {time.perf_counter() - start:6.0f} s] {message}", flush=True)

    return log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, choices=[*SHIPPED_MODELS, "all"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (default 1; see module doc)"
    )
    parser.add_argument("--n-train", type=int, help="override the recipe's training-set size")
    parser.add_argument("--epochs", type=int, help="override the recipe's number of epochs")
    parser.add_argument(
        "--n-val", type=int, default=N_VALIDATION, help="validation images (default %(default)s)"
    )
    parser.add_argument(
        "--n-test", type=int, default=N_TEST, help="held-out test images (default %(default)s)"
    )
    args = parser.parse_args(argv)
    if args.seed < 0 or args.seed >= VALIDATION_SEED_OFFSET:
        parser.error(f"--seed must be in [0, {VALIDATION_SEED_OFFSET}).")

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    names = SHIPPED_MODELS if args.model == "all" else (args.model,)
    for name in names:
        recipe = RECIPES[name]
        overrides = {"n_train": args.n_train, "epochs": args.epochs}
        recipe = Recipe(**{**asdict(recipe), **{k: v for k, v in overrides.items() if v}})
        train_one(name, args.seed, recipe, args.out_dir, args.n_val, args.n_test)
    return 0


if __name__ == "__main__":
    sys.exit(main())
