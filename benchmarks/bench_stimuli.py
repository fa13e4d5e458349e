"""Throughput of course_tools.stimuli on one core.

Targets (from the stimuli issue):

- ``object_scenes`` at 64 px: at least 1000 images per second on one core;
- ``naturalistic_images`` at 40 px: thousands of images in seconds (target 1000 per second);
- both movies: at least 10 times faster than real time (1000 frames per second at 50 px).

Rates are measured in CPU time of this process (``time.process_time``) with every numerical
library limited to one thread, so that other jobs on a shared machine do not distort them;
wall-clock rates are printed beside them. Each measurement is the best of three runs. As a
peer measured in the same run, the table also shows how many times longer a generator takes
than drawing the same number of plain ``numpy.random`` images of the same shape.

Run: ``.venv/bin/python benchmarks/bench_stimuli.py``; exits 1 when a target is missed.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from course_tools.stimuli import (  # noqa: E402
    naturalistic_images,
    naturalistic_movie,
    object_scenes,
    white_noise_movie,
)

REPEATS = 3


def best_time(function: Callable[[], object]) -> tuple[float, float]:
    """Smallest CPU time and smallest wall time over ``REPEATS`` runs, in seconds."""
    cpu, wall = [], []
    for _ in range(REPEATS):
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        function()
        cpu.append(time.process_time() - cpu_start)
        wall.append(time.perf_counter() - wall_start)
    return min(cpu), min(wall)


def plain_random(shape: tuple[int, ...], dtype: type) -> Callable[[], object]:
    rng = np.random.default_rng(0)
    if dtype is np.uint8:
        return lambda: rng.integers(0, 256, size=shape, dtype=np.uint8)
    return lambda: rng.random(shape, dtype=np.float32)


def main() -> int:
    object_scenes(8)  # build and cache the object rasters once, outside the timings
    cases = [
        # name, items, unit, generator, peer shape and dtype, target items per CPU second
        *(
            (
                f"object_scenes 64 px, {variation}",
                2000,
                "images",
                lambda v=variation: object_scenes(2000, variation=v, seed=1),
                ((2000, 64, 64, 3), np.uint8),
                1000.0,
            )
            for variation in ("low", "medium", "high")
        ),
        (
            "naturalistic_images 40 px",
            2000,
            "images",
            lambda: naturalistic_images(2000, seed=1),
            ((2000, 40, 40), np.float32),
            1000.0,
        ),
        (
            "white_noise_movie 50 px",
            10000,
            "frames",
            lambda: white_noise_movie(10000, seed=1),
            ((10000, 50, 50), np.float32),
            1000.0,
        ),
        (
            "naturalistic_movie 50 px",
            10000,
            "frames",
            lambda: naturalistic_movie(10000, seed=1),
            ((10000, 50, 50), np.float32),
            1000.0,
        ),
    ]
    header = (
        f"{'generator':<32} {'items':>6} {'CPU rate /s':>12} {'wall rate /s':>13} "
        f"{'x plain random':>15} {'target /s':>10}  result"
    )
    print(header)
    print("-" * len(header))
    failed = False
    for name, items, unit, generator, (peer_shape, peer_dtype), target in cases:
        cpu, wall = best_time(generator)
        peer_cpu, _ = best_time(plain_random(peer_shape, peer_dtype))
        rate = items / cpu
        passed = rate >= target
        failed |= not passed
        print(
            f"{name:<32} {items:>6} {rate:>12.0f} {items / wall:>13.0f} "
            f"{cpu / peer_cpu:>15.1f} {target:>10.0f}  {'ok' if passed else 'MISSED'} ({unit})"
        )
    print()
    print("CPU rate: items per second of this process's CPU time, one thread (the target).")
    print("x plain random: time relative to drawing numpy.random arrays of the same shape.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
