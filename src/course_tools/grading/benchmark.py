"""Benchmark: ``course-tools grade --jobs 2`` against serial ``nbgrader autograde``.

Eight simulated submissions of one assignment (three correct, one endless loop, one exception,
one kernel death, one deleted test cell, one untouched release) are graded twice in two scratch
copies of the course: by plain ``nbgrader autograde`` (serial), and by ``course-tools grade``
(parallel autograde + feedback + CSV export + tamper report). Both run as command-line
subprocesses, so start-up costs count. The grades must be identical and ``course-tools grade``
must be faster. Run::

    python -m course_tools.grading.benchmark --course tests/fixtures/course \
        --assignment mean_variance

Exit status 1 when grades differ or the target is missed.
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


def _edit(nb, grade_id, edit):
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        if nbgrader_meta(cell).get("grade_id") == grade_id:
            cell.source = edit(cell.source)
    return nb


def simulated_submissions(course: Path, assignment: str) -> dict[str, dict[str, object]]:
    """Eight submissions ``{student: {notebook file name: notebook}}`` built from the release."""
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
    students = {f"student{i}": good for i in (1, 2, 3)}
    students.update({f"student-{k}": v for k, v in broken.items()})
    return students


def _prepare(course_root: Path, assignment: str, dest: Path) -> Path:
    course = copy_course(course_root, [assignment], dest)
    generate_release(course, assignment)
    release = course / "release" / assignment
    for student, notebooks in simulated_submissions(course, assignment).items():
        folder = course / "submitted" / student / assignment
        shutil.copytree(release, folder, ignore=shutil.ignore_patterns("*.ipynb"))
        for name, nb in notebooks.items():
            nbformat.write(nb, folder / name)
        (folder / "timestamp.txt").write_text("2026-11-20 10:00:00.000000 UTC")
    return course


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table; return 1 if grades differ or it is not faster."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--course", type=Path, default=Path("tests/fixtures/course"))
    parser.add_argument("--assignment", default="mean_variance")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="grading-bench-") as scratch:
        serial = _prepare(args.course, args.assignment, Path(scratch) / "serial")
        parallel = _prepare(args.course, args.assignment, Path(scratch) / "parallel")

        start = time.perf_counter()
        run_nbgrader(["autograde", args.assignment], serial, check=False)
        serial_s = time.perf_counter() - start

        script = Path(sys.executable).parent / "course-tools"
        command = [str(script), "grade", args.assignment, "--jobs", str(args.jobs), "--quiet"]
        start = time.perf_counter()
        proc = subprocess.run(
            [*command, "--course", str(parallel)],
            capture_output=True,
            text=True,
            env=nbgrader_env(),
            check=False,
        )
        parallel_s = time.perf_counter() - start
        if proc.returncode != 0:
            print(proc.stdout + proc.stderr)
        same = read_scores(gradebook_url(serial), args.assignment) == read_scores(
            gradebook_url(parallel), args.assignment
        )
        n = len({r.student for r in read_scores(gradebook_url(parallel), args.assignment)})
    rows = [
        ["nbgrader autograde (serial)", f"{serial_s:.1f}", "1.00"],
        [
            f"course-tools grade --jobs {args.jobs} (+feedback, csv, tamper)",
            f"{parallel_s:.1f}",
            f"{serial_s / parallel_s:.2f}",
        ],
    ]
    print(f"{n} submissions of {args.assignment}; grades identical: {same}")
    print(format_table(["run", "seconds", "speed-up"], rows))
    ok = same and parallel_s < serial_s and proc.returncode == 0
    print("target met" if ok else "TARGET MISSED (grades must match and grade must be faster)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
