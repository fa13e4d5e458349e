"""Benchmark: the sandbox's cost, and ``course-tools grade --jobs 2`` against serial nbgrader.

Eight simulated submissions of one assignment (three correct, one endless loop, one exception,
one kernel death, one deleted test cell, one untouched release) are graded in scratch copies of
the course, in one run. In the real assignment's class a fourth correct submission takes the
endless loop's place: one loop held for the two-minute cell timeout among eight submissions of
about 20 s each would measure the timeout, not the parallel grading (it alone is half the serial
time, and no second job can share it); a class of hundreds spreads its few loops over both jobs.
The fixture's class keeps the loop (its timeout is 10 s).

The serial peer is plain nbgrader producing what ``course-tools grade`` produces: ``nbgrader
autograde``, ``nbgrader generate_feedback`` and ``nbgrader export``, one after another, without
the sandbox (``course-tools grade`` also writes feedback and ``grades.csv``, and adds its checks).

1. the fixture assignment (fixed costs dominate): the serial nbgrader peer,
   ``course-tools grade --jobs 2 --no-sandbox`` and ``course-tools grade --jobs 2`` in the
   sandbox; target: the sandbox costs at most :data:`SANDBOX_OVERHEAD_TARGET` times the time;
2. a real assignment (``architectures``): the serial nbgrader peer against sandboxed
   ``course-tools grade --jobs 2``; target :data:`REAL_SPEEDUP_TARGET` (two jobs on two cores);
3. the same real assignment on a local Dask cluster (``course-tools grade --workers 1`` and
   ``--workers 2``, :mod:`.cluster`): submissions per minute, and the ratio of 2 workers to 1
   (reported, no target: the cluster's start-up and per-task copies are part of the cost).

Every run is a command-line subprocess, so start-up costs count, and the grades must be identical.
Run::

    python -m course_tools.grading.benchmark --course tests/fixtures/course \
        --assignment mean_variance --real architectures

Exit status 1 when grades differ or a target is missed.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from course_tools.grading.course import gradebook_url, nbgrader_env, run_nbgrader
from course_tools.grading.gradebook import read_scores
from course_tools.grading.notebooks import nbgrader_meta, read_notebook, solution_submission
from course_tools.grading.release import copy_course, generate_release
from course_tools.grading.selftest import format_table

__all__ = ["simulated_submissions", "main"]

#: ``course-tools grade`` in the sandbox may take at most this many times as long as without it.
SANDBOX_OVERHEAD_TARGET = 1.15
#: ``course-tools grade --jobs 2`` against serial nbgrader on a real assignment (issue 18).
REAL_SPEEDUP_TARGET = 1.7
#: The peer's row label: plain nbgrader, one step after another.
SERIAL_PEER = "nbgrader autograde + generate_feedback + export (serial)"


def _edit(nb, grade_id, edit):
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        if nbgrader_meta(cell).get("grade_id") == grade_id:
            cell.source = edit(cell.source)
    return nb


def simulated_submissions(
    course: Path, assignment: str, *, endless_loop: bool = True
) -> dict[str, dict[str, object]]:
    """Eight submissions ``{student: {notebook file name: notebook}}`` built from the release.

    With ``endless_loop=False`` a fourth correct submission replaces the endless loop.
    """
    release = course / "release" / assignment
    good, broken = {}, {k: {} for k in ("loop", "exception", "crash", "deleted", "blank")}
    for source in sorted((course / "source" / assignment).glob("*.ipynb")):
        source_nb = read_notebook(source)
        release_nb = read_notebook(release / source.name)
        filled = solution_submission(source_nb, release_nb)
        answers = [
            nbgrader_meta(c)["grade_id"]
            for c in source_nb.cells
            if nbgrader_meta(c).get("solution") and c.cell_type == "code"
        ]
        hidden = [
            nbgrader_meta(c)["grade_id"]
            for c in source_nb.cells
            if nbgrader_meta(c).get("grade") and "BEGIN HIDDEN TESTS" in c.source
        ]
        name = source.name
        good[name] = filled
        broken["loop"][name] = _edit(filled, answers[0], lambda s: "while True:\n    pass\n" + s)
        broken["exception"][name] = _edit(
            filled, answers[-1], lambda s: "raise ValueError('simulated bug')\n" + s
        )
        broken["crash"][name] = _edit(filled, answers[-1], lambda s: "import os\nos._exit(1)\n" + s)
        deleted = nbformat.from_dict(filled)
        deleted.cells = [c for c in deleted.cells if nbgrader_meta(c).get("grade_id") != hidden[0]]
        broken["deleted"][name] = deleted
        broken["blank"][name] = release_nb
    if not endless_loop:
        broken.pop("loop")
    n_good = 8 - len(broken)
    students = {f"student{i}": good for i in range(1, n_good + 1)}
    students.update({f"student-{k}": v for k, v in broken.items()})
    return students


def _prepare(course_root: Path, assignment: str, dest: Path, *, endless_loop: bool = True) -> Path:
    course = copy_course(course_root, [assignment], dest)
    generate_release(course, assignment)
    release = course / "release" / assignment
    submissions = simulated_submissions(course, assignment, endless_loop=endless_loop)
    for student, notebooks in submissions.items():
        folder = course / "submitted" / student / assignment
        shutil.copytree(release, folder, ignore=shutil.ignore_patterns("*.ipynb"))
        for name, nb in notebooks.items():
            nbformat.write(nb, folder / name)
        (folder / "timestamp.txt").write_text("2026-11-20 10:00:00.000000 UTC")
    return course


def _grade(
    course: Path, assignment: str, jobs: int | None, *, sandbox: bool, workers: int | None = None
) -> tuple[float, bool, str]:
    """``course-tools grade`` as a subprocess: (seconds, success, output).

    With ``workers``, on a local Dask cluster of that many workers instead of ``jobs`` processes.
    """
    script = Path(sys.executable).parent / "course-tools"
    parallel = ["--jobs", str(jobs)] if workers is None else ["--workers", str(workers)]
    command = [str(script), "grade", assignment, *parallel, "--quiet"]
    command += ["--course", str(course)] + ([] if sandbox else ["--no-sandbox"])
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=nbgrader_env(), check=False)
    return time.perf_counter() - start, proc.returncode == 0, proc.stdout + proc.stderr


def _serial(course: Path, assignment: str) -> float:
    """Plain serial nbgrader without the sandbox: autograde, generate_feedback, export."""
    start = time.perf_counter()
    for step in (
        ["autograde", assignment, "--ExecuteSurvivingCrashes.sandbox=none"],
        ["generate_feedback", assignment],
        ["export"],
    ):
        run_nbgrader(step, course, check=False)
    return time.perf_counter() - start


def _scores(course: Path, assignment: str):
    return read_scores(gradebook_url(course), assignment)


def _dask_rows(
    assignment: str, courses: dict[str, Path], serial_s: float, failures: list[str]
) -> list[list[str]]:
    """Grade on a local Dask cluster of 1 and of 2 workers; rows with submissions per minute."""
    reference = _scores(courses["serial"], assignment)
    n = len({r.student for r in reference})
    rows, rates = [], {}
    for workers in (1, 2):
        course = courses[f"dask-{workers}"]
        seconds, ok, log = _grade(course, assignment, None, sandbox=True, workers=workers)
        if not ok:
            print(log[-3000:])
        if not (ok and _scores(course, assignment) == reference):
            failures.append(f"{assignment}: --workers {workers} grades differ or grading failed")
        rates[workers] = 60 * n / seconds
        note = f"{rates[workers]:.1f} submissions/min"
        if workers == 2:
            note += f"; 2 workers / 1 worker: {rates[2] / rates[1]:.2f}x (no target)"
        rows.append(
            [
                f"{assignment}: grade --workers {workers} (Dask, sandboxed)",
                f"{seconds:.1f}",
                f"{serial_s / seconds:.2f}",
                note,
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table; return 1 if grades differ or a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--course", type=Path, default=Path("tests/fixtures/course"))
    parser.add_argument("--assignment", default="mean_variance")
    parser.add_argument(
        "--real-course", type=Path, default=Path("assignments"), help="course of --real"
    )
    parser.add_argument("--real", default="architectures", help="a real assignment ('' to skip)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    rows, failures = [], []
    with tempfile.TemporaryDirectory(prefix="grading-bench-") as scratch:
        runs = {
            name: _prepare(args.course, args.assignment, Path(scratch) / name)
            for name in ("serial", "unsandboxed", "sandboxed")
        }
        serial_s = _serial(runs["serial"], args.assignment)
        plain_s, plain_ok, plain_log = _grade(
            runs["unsandboxed"], args.assignment, args.jobs, sandbox=False
        )
        boxed_s, boxed_ok, boxed_log = _grade(
            runs["sandboxed"], args.assignment, args.jobs, sandbox=True
        )
        reference = _scores(runs["serial"], args.assignment)
        same = all(_scores(c, args.assignment) == reference for c in runs.values())
        n = len({r.student for r in reference})
        for ok, log in ((plain_ok, plain_log), (boxed_ok, boxed_log)):
            if not ok:
                print(log[-3000:])
        overhead = boxed_s / plain_s
        rows += [
            [f"{args.assignment}: {SERIAL_PEER}", f"{serial_s:.1f}", "1.00", ""],
            [
                f"{args.assignment}: grade --jobs {args.jobs} --no-sandbox",
                f"{plain_s:.1f}",
                f"{serial_s / plain_s:.2f}",
                "",
            ],
            [
                f"{args.assignment}: grade --jobs {args.jobs} (sandboxed)",
                f"{boxed_s:.1f}",
                f"{serial_s / boxed_s:.2f}",
                f"sandbox overhead {overhead:.2f}x (target <= {SANDBOX_OVERHEAD_TARGET})",
            ],
        ]
        if not (same and plain_ok and boxed_ok):
            failures.append(f"{args.assignment}: grades differ or grading failed")
        if overhead > SANDBOX_OVERHEAD_TARGET:
            failures.append(f"sandbox overhead {overhead:.2f}x > {SANDBOX_OVERHEAD_TARGET}x")
        print(f"{n} submissions of {args.assignment}; grades identical in all runs: {same}")
        if args.real:
            real = {
                name: _prepare(
                    args.real_course, args.real, Path(scratch) / f"real-{name}", endless_loop=False
                )
                for name in ("serial", "sandboxed", "dask-1", "dask-2")
            }
            real_serial_s = _serial(real["serial"], args.real)
            real_s, real_ok, real_log = _grade(
                real["sandboxed"], args.real, args.jobs, sandbox=True
            )
            if not real_ok:
                print(real_log[-3000:])
            real_same = _scores(real["serial"], args.real) == _scores(real["sandboxed"], args.real)
            speedup = real_serial_s / real_s
            rows += [
                [f"{args.real}: {SERIAL_PEER}", f"{real_serial_s:.1f}", "1.00", ""],
                [
                    f"{args.real}: grade --jobs {args.jobs} (sandboxed)",
                    f"{real_s:.1f}",
                    f"{speedup:.2f}",
                    f"target >= {REAL_SPEEDUP_TARGET}",
                ],
            ]
            print(f"8 submissions of {args.real} (no endless loop); grades identical: {real_same}")
            if not (real_same and real_ok):
                failures.append(f"{args.real}: grades differ or grading failed")
            if speedup < REAL_SPEEDUP_TARGET:
                failures.append(f"{args.real}: speed-up {speedup:.2f}x < {REAL_SPEEDUP_TARGET}x")
            rows += _dask_rows(args.real, real, real_serial_s, failures)
    print(format_table(["run", "seconds", "speed-up", "target or throughput"], rows))
    for failure in failures:
        print(f"TARGET MISSED: {failure}")
    if not failures:
        print("targets met")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
