"""Self-test of one assignment: the proofs that its grading is right.

1. The solution, submitted through the release notebook, autogrades to full marks.
2. The unmodified release autogrades to zero, without crashing, with no cell timing out.
3. Every mutant (plausible wrong answer, ``mutants.py``) fails the test cells it names and at
   least one hidden test; every hidden test cell fails for at least one mutant.
4. The release holds no solution text, no hidden test text and no instructor-only file.
5. The slowest solution cell needs at most half the per-cell timeout (room for slower code).

Proofs 1, 2 and 4 run nbgrader itself (generate_assignment, then our parallel autograde) in a
scratch copy of the course. Proof 3 executes the source notebook *once* with nbclient and then,
in the same kernel, swaps in each mutant and re-runs only the test cells.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from course_tools.grading.autograde import AutogradeRun, autograde_students
from course_tools.grading.conventions import MUTANTS_FILE, REFERENCES_FILE, source_notebooks
from course_tools.grading.course import cell_timeout, gradebook_url
from course_tools.grading.gradebook import read_scores
from course_tools.grading.leakcheck import Leak
from course_tools.grading.mutants import load_mutants
from course_tools.grading.notebooks import graded_cells, read_notebook, solution_submission
from course_tools.grading.release import check_source, copy_course, generate_release

__all__ = ["Check", "SelfTestReport", "format_table", "run_mutants", "self_test"]

SOLUTION_STUDENT = "solution-check"
RELEASE_STUDENT = "release-check"


@dataclass(frozen=True)
class Check:
    """One line of the self-test table."""

    name: str
    passed: bool
    detail: str


@dataclass
class MutantRun:
    """Outcome of executing a notebook once and its test cells against each mutant.

    Attributes
    ----------
    solution_errors : dict
        ``{cell label: error line}`` for cells of the solution that raised (should be empty).
    cell_seconds : dict
        ``{cell label: seconds}`` for every code cell of the solution run.
    failures : dict
        ``{mutant name: set of grade ids of the test cells that failed}``.
    mutant_errors : dict
        ``{mutant name: message}`` when a mutant could not be installed.
    """

    solution_errors: dict[str, str] = field(default_factory=dict)
    cell_seconds: dict[str, float] = field(default_factory=dict)
    failures: dict[str, set[str]] = field(default_factory=dict)
    mutant_errors: dict[str, str] = field(default_factory=dict)


@dataclass
class SelfTestReport:
    """All checks of :func:`self_test` for one assignment."""

    assignment: str
    checks: list[Check]
    seconds: float
    autograde: AutogradeRun | None = None
    mutants: MutantRun | None = None
    leaks: list[Leak] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(c.passed for c in self.checks)

    def failed(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if not c.passed]

    def table(self) -> str:
        """The checks as a text table."""
        return format_table(
            ["check", "result", "details"],
            [[c.name, "PASS" if c.passed else "FAIL", c.detail] for c in self.checks],
        )


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Plain-text table with aligned columns (the last column is not padded)."""
    cells = [header, *rows]
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(header) - 1)]
    lines = []
    for n, row in enumerate(cells):
        parts = [str(v).ljust(w) for v, w in zip(row[:-1], widths, strict=False)]
        lines.append("  ".join([*parts, str(row[-1])]).rstrip())
        if n == 0:
            lines.append("  ".join(["-" * w for w in widths] + ["-" * len(str(header[-1]))]))
    return "\n".join(lines)


def _error_line(cell) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename')}: {output.get('evalue', '')}"[:200]
    return None


def _seconds(cell) -> float | None:
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not start or not end:
        return None
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def run_mutants(
    notebook_path: str | Path, mutants_path: str | Path, *, timeout: float = 60.0
) -> MutantRun:
    """Execute a source notebook once, then re-run its test cells against each mutant.

    Parameters
    ----------
    notebook_path : path
        Source notebook; it runs in its own folder, so ``references.npz`` there is used.
    mutants_path : path
        The assignment's ``mutants.py``.
    timeout : float
        Per-cell timeout in seconds.
    """
    notebook_path, mutants_path = Path(notebook_path), Path(mutants_path)
    mutants = load_mutants(mutants_path)
    nb = read_notebook(notebook_path)
    tests = [c for c in graded_cells(nb) if c.autograded]
    result = MutantRun()
    client = NotebookClient(
        nb,
        timeout=int(timeout),
        allow_errors=True,
        record_timing=True,
        resources={"metadata": {"path": str(notebook_path.parent)}},
    )
    client.reset_execution_trackers()
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            client.execute_cell(cell, index)
            label = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index}"
            error = _error_line(cell)
            if error:
                result.solution_errors[label] = error
            seconds = _seconds(cell)
            if seconds is not None:
                result.cell_seconds[label] = seconds

        def run(code: str) -> str | None:
            nb.cells.append(nbformat.v4.new_code_cell(code))
            try:
                client.execute_cell(nb.cells[-1], len(nb.cells) - 1)
                return _error_line(nb.cells[-1])
            finally:
                nb.cells.pop()

        targets = sorted({t for m in mutants for t in m.replacements})
        setup = run(
            "import importlib.util as _ct_util\n"
            f"_ct_spec = _ct_util.spec_from_file_location('_ct_mutants', {str(mutants_path)!r})\n"
            "_ct_mutants = _ct_util.module_from_spec(_ct_spec)\n"
            "_ct_spec.loader.exec_module(_ct_mutants)\n"
            f"_ct_originals = {{name: globals()[name] for name in {targets!r}}}"
        )
        if setup:
            for mutant in mutants:
                result.mutant_errors[mutant.name] = f"could not install mutants: {setup}"
            return result
        for mutant in mutants:
            swap = "\n".join(
                f"globals()[{target!r}] = _ct_mutants.{function}"
                for target, function in mutant.function_names().items()
            )
            error = run(swap)
            if error:
                result.mutant_errors[mutant.name] = error
                continue
            failed = set()
            for test in tests:
                replay = copy.deepcopy(nb.cells[test.index])
                client.execute_cell(replay, test.index)
                if _error_line(replay):
                    failed.add(test.grade_id)
            result.failures[mutant.name] = failed
            run("globals().update(_ct_originals)")
    return result


def _prepare_submissions(course: Path, assignment: str, release_dir: Path) -> None:
    sources = source_notebooks(course, assignment)
    for student in (SOLUTION_STUDENT, RELEASE_STUDENT):
        folder = course / "submitted" / student / assignment
        shutil.copytree(release_dir, folder)
    for source in sources:
        release_nb = read_notebook(release_dir / source.name)
        filled = solution_submission(read_notebook(source), release_nb)
        nbformat.write(filled, course / "submitted" / SOLUTION_STUDENT / assignment / source.name)


def _timed_out(course: Path, student: str, assignment: str) -> list[str]:
    found = []
    for path in sorted((course / "autograded" / student / assignment).glob("*.ipynb")):
        for index, cell in enumerate(read_notebook(path).cells):
            for output in cell.get("outputs", []):
                if output.get("ename") == "CellTimeoutError":
                    found.append(f"{path.name} cell {index}")
    return found


def self_test(
    course_root: str | Path, assignment: str, *, jobs: int = 2, progress: bool = False
) -> SelfTestReport:
    """Run every proof for one assignment in a scratch copy of the course.

    Parameters
    ----------
    course_root : path
        The nbgrader course directory (only read).
    assignment : str
        Assignment name.
    jobs : int, default=2
        Worker processes for the autograde of the solution and of the release.
    progress : bool, default=False
        Show progress bars.

    Returns
    -------
    SelfTestReport
        ``report.passed`` and ``report.table()``.
    """
    start = time.perf_counter()
    check_source(course_root, assignment)
    timeout = cell_timeout(course_root)
    checks: list[Check] = []
    source_dir = Path(course_root).resolve() / "source" / assignment
    for required, purpose in ((REFERENCES_FILE, "course-tools references"), (MUTANTS_FILE, "")):
        if not (source_dir / required).is_file():
            hint = f"run `{purpose} {assignment}`" if purpose else "define MUTANTS = [Mutant(...)]"
            checks.append(Check(f"{required} present", False, f"missing: {hint}"))
    if checks:
        return SelfTestReport(assignment, checks, time.perf_counter() - start)

    with tempfile.TemporaryDirectory(prefix=f"selftest-{assignment}-") as scratch:
        course = copy_course(course_root, [assignment], Path(scratch) / "course")
        release = generate_release(course, assignment)
        checks.append(
            Check(
                "release has no leaks",
                release.clean,
                "no solution, hidden test or instructor file"
                if release.clean
                else "; ".join(f"{x.path}: {x.reason}" for x in release.leaks[:5]),
            )
        )
        _prepare_submissions(course, assignment, release.release_dir)

        graded: dict[str, object] = {}

        def grade() -> None:
            try:
                graded["run"] = autograde_students(course, assignment, jobs=jobs, progress=progress)
            except BaseException as error:  # re-raised in the main thread below
                graded["error"] = error

        worker = threading.Thread(target=grade)
        worker.start()
        notebooks = source_notebooks(course, assignment)
        mutants_file = course / "source" / assignment / MUTANTS_FILE
        try:
            mutant_runs = [run_mutants(nb, mutants_file, timeout=timeout) for nb in notebooks]
        finally:
            worker.join()
        if "error" in graded:
            raise graded["error"]
        run = graded["run"]
        scores = read_scores(gradebook_url(course), assignment)
        checks += _score_checks(course, assignment, notebooks, run, scores, timeout)
        checks += _mutant_checks(assignment, notebooks, mutant_runs, course, timeout)
    return SelfTestReport(
        assignment,
        checks,
        time.perf_counter() - start,
        autograde=run,
        mutants=mutant_runs[0] if len(mutant_runs) == 1 else _merge_runs(mutant_runs),
        leaks=release.leaks,
    )


def _merge_runs(runs: list[MutantRun]) -> MutantRun:
    merged = MutantRun()
    for run in runs:
        merged.solution_errors.update(run.solution_errors)
        merged.cell_seconds.update(run.cell_seconds)
        merged.mutant_errors.update(run.mutant_errors)
        for name, failed in run.failures.items():
            merged.failures.setdefault(name, set()).update(failed)
    return merged


def _score_checks(course, assignment, notebooks, run, scores, timeout) -> list[Check]:
    auto = {
        (nb.stem, c.grade_id)
        for nb in notebooks
        for c in graded_cells(read_notebook(nb))
        if c.autograded
    }
    checks = []
    outcomes = {o.student: o for o in run.outcomes}
    for student, label in ((SOLUTION_STUDENT, "solution"), (RELEASE_STUDENT, "release")):
        rows = [r for r in scores if r.student == student and (r.notebook, r.cell) in auto]
        got = sum(r.auto_score or 0.0 for r in rows)
        total = sum(r.max_score for r in rows)
        outcome = outcomes[student]
        timed_out = _timed_out(course, student, assignment)
        if label == "solution":
            short = [
                f"{r.cell} {r.auto_score}/{r.max_score:g}"
                for r in rows
                if r.auto_score != r.max_score
            ]
            ok = outcome.success and not short and len(rows) == len(auto)
            detail = f"{got:g}/{total:g} autograded points" + (
                f"; short: {', '.join(short)}" if short else ""
            )
            checks.append(Check("solution autogrades to full marks", ok, detail))
        else:
            ok = outcome.success and got == 0 and not timed_out and len(rows) == len(auto)
            detail = f"{got:g}/{total:g} points in {outcome.seconds:.1f} s"
            if timed_out:
                detail += f"; timed out (limit {timeout:g} s/cell): {', '.join(timed_out)}"
            if not outcome.success:
                detail += "; autograde failed: " + outcome.log.strip()[-300:]
            checks.append(Check("release autogrades to zero", ok, detail))
    return checks


def _mutant_checks(assignment, notebooks, runs, course, timeout) -> list[Check]:
    merged = _merge_runs(runs)
    mutants = load_mutants(course / "source" / assignment / MUTANTS_FILE)
    hidden = {c.grade_id for nb in notebooks for c in graded_cells(read_notebook(nb)) if c.hidden}
    checks = [
        Check(
            "solution runs cleanly (nbclient)",
            not merged.solution_errors,
            "no errors"
            if not merged.solution_errors
            else "; ".join(f"{k}: {v}" for k, v in merged.solution_errors.items()),
        )
    ]
    slowest = max(merged.cell_seconds.items(), key=lambda kv: kv[1], default=("-", 0.0))
    checks.append(
        Check(
            "timeout sized to the assignment",
            slowest[1] <= timeout / 2,
            f"slowest cell {slowest[0]}: {slowest[1]:.1f} s; limit {timeout:g} s per cell",
        )
    )
    caught_by: dict[str, list[str]] = {h: [] for h in sorted(hidden)}
    for mutant in mutants:
        if mutant.name in merged.mutant_errors:
            checks.append(Check(f"mutant {mutant.name}", False, merged.mutant_errors[mutant.name]))
            continue
        failed = merged.failures.get(mutant.name, set())
        for h in failed & hidden:
            caught_by[h].append(mutant.name)
        missing = [m for m in mutant.must_fail if m not in failed]
        ok = not missing and bool(failed & hidden)
        detail = f"fails {', '.join(sorted(failed)) or 'nothing'}"
        if missing:
            detail += f"; should also fail {', '.join(missing)}"
        if not failed & hidden:
            detail += "; no hidden test catches it"
        checks.append(Check(f"mutant {mutant.name}", ok, detail))
    for cell, names in caught_by.items():
        checks.append(
            Check(
                f"hidden test {cell} catches a mutant",
                bool(names),
                f"caught: {', '.join(names)}" if names else "no mutant fails it: add one",
            )
        )
    return checks
