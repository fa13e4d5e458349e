"""Cost of course_tools.activations.extract compared with a bare forward pass of the same batches.

Run: ``.venv/bin/python benchmarks/bench_extraction.py [--quick]`` (about 4 minutes; --quick about
1). Three targets, each a ratio against a peer measured in the same run:

1. extracting every residual block of resnet18 (weights=None, the 8 blocks ``layer1.0`` ...
   ``layer4.1``) costs at most 5% more than the bare forward pass of the same batches;
2. the same extraction costs at most 5% more than the shortest hand-written way to get the same
   arrays (hooks that copy each block's output into pre-allocated arrays). This isolates the
   overhead of ``extract`` itself (checks, the one-image trial pass that finds the layer order,
   the bookkeeping) from the price of the result: the kernel has to hand out and zero about
   1 MB of fresh memory per 128-px image, which no extraction method can avoid;
3. extracting only an early layer costs at most 0.6 of the bare pass: the forward pass stops
   once that layer has fired;
4. with ``out_dir`` the peak memory for 4N images is at most 1.25 times that for N images. Each
   size runs in a fresh process; in-memory extraction is measured beside it as a control that
   shows the measurement can see growth.

Timing: one warm-up, then repeats of paired runs (bare pass and extractions back to back, in
rotating order) with a fixed number of torch threads; a ratio is the median of the per-repeat
ratios. The ratios use the process's CPU time, which the other busy processes of a shared
machine disturb far less than the wall clock; the wall-clock ratios are printed beside them.

Which early layer: at 128 px the layers up to ``layer1`` take about 0.55 of a full resnet18
pass on a CPU even with no extraction at all (the early maps are the largest, and their
memory-bound batch norms and poolings weigh more than their share of multiply-adds), which
leaves a 0.6 target no room. The benchmark therefore uses the first residual block,
``layer1.0``, and also times a hand-written forward pass up to that block, the floor that an
early stop can reach.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torchvision
from _common import (
    Check,
    current_rss_mib,
    median,
    peak_rss_mib,
    print_table,
    report,
    reset_peak_rss,
    timed,
)
from torch.utils.data import Dataset

from course_tools.activations import extract

BATCH_SIZE = 64
# The 8 residual blocks (BasicBlock) of resnet18, in forward order.
ALL_BLOCKS = [f"layer{stage}.{block}" for stage in range(1, 5) for block in (0, 1)]
EARLY = "layer1.0"
MEMORY_IMAGE_SIZE = 96


class SyntheticImages(Dataset):
    """Random images made on demand, so the input itself takes no memory that grows with N."""

    def __init__(self, n_images: int, size: int):
        self.n_images, self.size = n_images, size

    def __len__(self) -> int:
        return self.n_images

    def __getitem__(self, index: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(index)
        return torch.rand((3, self.size, self.size), generator=generator)


def make_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None).eval()


def bare_forward(model: torch.nn.Module, images: np.ndarray) -> None:
    """The peer: the same batches through the whole model, nothing kept."""
    with torch.inference_mode():
        for start in range(0, len(images), BATCH_SIZE):
            model(torch.from_numpy(images[start : start + BATCH_SIZE]))


def store_by_hand(model: torch.nn.Module, images: np.ndarray) -> dict[str, np.ndarray]:
    """The peer that keeps the same arrays: hooks copying each block into pre-allocated arrays."""
    n_images, position, outputs = len(images), [0], {}

    def keep(name: str):
        def hook(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
            if name not in outputs:
                outputs[name] = np.empty((n_images, output[0].numel()), np.float32)
            start = position[0]
            outputs[name][start : start + len(output)] = output.reshape(len(output), -1).numpy()

        return hook

    handles = [model.get_submodule(name).register_forward_hook(keep(name)) for name in ALL_BLOCKS]
    try:
        with torch.inference_mode():
            for start in range(0, n_images, BATCH_SIZE):
                position[0] = start
                model(torch.from_numpy(images[start : start + BATCH_SIZE]))
    finally:
        for handle in handles:
            handle.remove()
    return outputs


def forward_to_first_block(model: torch.nn.Module, images: np.ndarray) -> None:
    """The floor for an early stop: the modules up to ``layer1.0`` called by hand."""
    stem = torch.nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool, model.layer1[0])
    with torch.inference_mode():
        for start in range(0, len(images), BATCH_SIZE):
            stem(torch.from_numpy(images[start : start + BATCH_SIZE]))


def time_extraction(args: argparse.Namespace) -> tuple[list[Check], list[list[str]]]:
    model = make_model()
    images = np.random.default_rng(0).random((args.n_images, 3, args.size, args.size), np.float32)
    runs = {
        "bare forward": lambda: bare_forward(model, images),
        "extract all blocks": lambda: extract(model, images, ALL_BLOCKS, progress=False),
        "all blocks by hand": lambda: store_by_hand(model, images),
        f"extract {EARLY}": lambda: extract(model, images, EARLY, progress=False),
        f"forward to {EARLY} by hand": lambda: forward_to_first_block(model, images),
    }
    warm = images[:BATCH_SIZE]
    bare_forward(model, warm)
    extract(model, warm, ALL_BLOCKS, progress=False)

    timings: dict[str, list] = {name: [] for name in runs}
    names = list(runs)
    for repeat in range(args.repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            timings[name].append(timed(runs[name]))
        line = ", ".join(f"{n} {t[-1].cpu:.1f}/{t[-1].wall:.1f} s" for n, t in timings.items())
        print(f"repeat {repeat + 1}/{args.repeats} (cpu/wall): {line}", flush=True)

    def ratios(name: str, peer: str, kind: str = "cpu") -> list[float]:
        pairs = zip(timings[name], timings[peer], strict=True)
        return [getattr(run, kind) / getattr(other, kind) for run, other in pairs]

    def check(name: str, peer: str, target: float, label: str) -> Check:
        cpu = " ".join(f"{r:.3f}" for r in ratios(name, peer))
        wall = median(ratios(name, peer, "wall"))
        return Check(label, median(ratios(name, peer)), target, f"cpu {cpu}; wall {wall:.3f}")

    bare, all_blocks, by_hand, early = names[0], names[1], names[2], names[3]
    checks = [
        check(all_blocks, bare, 1.05, "all 8 blocks / bare forward"),
        check(all_blocks, by_hand, 1.05, "all 8 blocks / same arrays by hand"),
        check(early, bare, 0.6, f"{EARLY} only / bare forward"),
    ]
    rows = [
        [
            name,
            f"{median([t.cpu for t in values]):.2f}",
            f"{median([t.system for t in values]):.2f}",
            f"{median([t.wall for t in values]):.2f}",
            f"{median(ratios(name, bare)):.3f}",
        ]
        for name, values in timings.items()
    ]
    return checks, rows


def child_memory(n_images: int, mode: str, threads: int) -> dict:
    """Run one extraction in a fresh Python process; return its memory numbers (MiB)."""
    with tempfile.TemporaryDirectory(prefix="bench_extraction_") as folder:
        command = [
            sys.executable, __file__, "--memory-child", mode, "--n-images", str(n_images),
            "--threads", str(threads), "--out-dir", folder,
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"memory measurement failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def memory_child(args: argparse.Namespace) -> int:
    """In the fresh process: extract all blocks of N synthetic images; print memory as JSON."""
    torch.set_num_threads(args.threads)
    model = make_model()
    images = SyntheticImages(args.n_images, MEMORY_IMAGE_SIZE)
    extract(model, images[0][None], ALL_BLOCKS, progress=False)  # imports and allocator warm
    reset = reset_peak_rss()  # so the peak below is that of the extraction, not of the imports
    before = current_rss_mib()
    out_dir = Path(args.out_dir) if args.memory_child == "out_dir" else None
    features = extract(
        model, images, ALL_BLOCKS, batch_size=BATCH_SIZE, progress=False, out_dir=out_dir
    )
    peak = peak_rss_mib()
    stored = sum(values.nbytes for values in features.values()) / 2**20
    print(json.dumps({"before": before, "peak": peak, "stored": stored, "reset": reset}))
    return 0


def measure_memory(args: argparse.Namespace) -> tuple[list[Check], list[list[str]], bool]:
    n = args.memory_images
    rows, peaks, reset = [], {}, True
    for mode in ("out_dir", "memory"):
        for count in (n, 4 * n):
            result = child_memory(count, mode, args.threads)
            peaks[mode, count] = result["peak"]
            reset = reset and result["reset"]
            rows.append([
                "out_dir" if mode == "out_dir" else "in memory (control)", str(count),
                f"{result['before']:.0f}", f"{result['peak']:.0f}",
                f"{result['peak'] - result['before']:+.0f}", f"{result['stored']:.0f}",
            ])  # fmt: skip
            print(f"memory ({' | '.join(rows[-1])})", flush=True)
    control = peaks["memory", 4 * n] / peaks["memory", n]
    check = Check(
        f"out_dir peak RSS, {4 * n} / {n} images",
        peaks["out_dir", 4 * n] / peaks["out_dir", n],
        1.25,
        f"in-memory control: {control:.2f}",
    )
    return [check], rows, reset


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images (about a minute)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, fixed (default 1)")
    parser.add_argument("--size", type=int, default=128, help="image size for the timing")
    parser.add_argument("--n-images", type=int, default=None, help="images per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-child", choices=["out_dir", "memory"], help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.n_images is None:
        args.n_images = 128 if args.quick else 512
    args.memory_images = 64 if args.quick else 256
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_child:
        return memory_child(args)
    torch.set_num_threads(args.threads)
    print(
        f"resnet18 (weights=None), {args.n_images} images of {args.size} px, batch {BATCH_SIZE}, "
        f"{args.threads} torch thread(s), {args.repeats} repeats"
    )
    time_checks, time_rows = time_extraction(args)
    memory_checks, memory_rows, reset = measure_memory(args)

    print("\nMedian seconds per run")
    print_table(["run", "cpu s", "of it kernel s", "wall s", "cpu / bare"], time_rows)
    print(
        f"\nMemory (MiB) of extracting all blocks of resnet18 at {MEMORY_IMAGE_SIZE} px, "
        "one fresh process each"
    )
    print_table(["mode", "images", "RSS before", "peak RSS", "growth", "activations"], memory_rows)
    notes = []
    if args.size != 224:
        notes.append(
            f"timed images are {args.size} px, not 224 px, to keep the run to a few minutes on "
            "2 shared cores; --size 224 runs the full size."
        )
    if not reset:
        notes.append("the peak could not be reset after imports, so it includes them.")
    return report("course_tools.activations.extract", time_checks + memory_checks, notes)


if __name__ == "__main__":
    sys.exit(main())
