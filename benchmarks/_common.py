"""Helpers shared by the benchmarks: timing, peak memory, and the table of checks they print.

A benchmark compares our code with a peer measured in the same run (a ratio), prints one table
row per check, and exits 1 when a target is missed::

    checks = [Check("extract / bare forward", ratio, target=1.05)]
    sys.exit(report("Extraction", checks))
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """One measured number and the target it must not exceed."""

    name: str
    value: float
    target: float
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.value <= self.target


@dataclass(frozen=True)
class Timing:
    """Seconds of one call: wall clock, and CPU time of this process (all its threads).

    On a machine shared with other busy processes the CPU time is the steadier measure of the
    work done; the wall clock is what a user waits. ``system`` is the part of ``cpu`` spent in
    the kernel (page faults, file writes) when it was measured.
    """

    wall: float
    cpu: float
    system: float | None = None


def timed(function: Callable[[], object]) -> Timing:
    """Time one call of ``function``."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    system = resource.getrusage(resource.RUSAGE_SELF).ru_stime - before.ru_stime
    return Timing(wall, cpu, system)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def _proc_status_mib(field: str) -> float | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024  # the value is in kB
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Make the peak resident memory start again from the current one (Linux 4.0+).

    Returns False when the system does not allow it; :func:`peak_rss_mib` then still counts
    everything since the process started (imports included).
    """
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def current_rss_mib() -> float:
    """Resident memory of this process now, in MiB."""
    rss = _proc_status_mib("VmRSS")
    return rss if rss is not None else peak_rss_mib()


def peak_rss_mib() -> float:
    """Peak resident memory of this process (since start or :func:`reset_peak_rss`), in MiB."""
    peak = _proc_status_mib("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return maxrss / 1024 if sys.platform.startswith("linux") else maxrss / 2**20


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print ``rows`` as left-aligned text columns under ``headers``."""
    cells = [[str(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    print("\n".join(line.rstrip() for line in lines))


def report(title: str, checks: Sequence[Check], notes: Sequence[str] = ()) -> int:
    """Print the checks as a table (with ``notes`` under it); return the exit code, 0 or 1."""
    print(f"\n{title}")
    print_table(
        ["check", "measured", "target", "result", "detail"],
        [
            [c.name, f"{c.value:.3f}", f"<= {c.target:g}", "PASS" if c.passed else "FAIL", c.detail]
            for c in checks
        ],
    )
    for note in notes:
        print(f"note: {note}")
    failed = [c.name for c in checks if not c.passed]
    print(
        f"\n{len(checks) - len(failed)} of {len(checks)} targets met"
        + (f"; missed: {failed}" if failed else "")
    )
    return 1 if failed else 0
