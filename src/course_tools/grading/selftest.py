"""Self-test of one assignment: the proofs that its grading is right.

1. The solution, submitted through the release notebook, autogrades to full marks.
2. The unmodified release autogrades to zero, without crashing, with no cell timing out.
3. Every mutant (plausible wrong answer, ``mutants.py``) fails the test cells it names and at
   least one hidden test; every hidden test cell fails for at least one mutant.
4. The release holds no solution text, no hidden test text and no instructor-only file.
5. Reported, never failed on a busy machine: the slowest solution cell's wall time and its
   kernel CPU time against the per-cell timeout (the check fails only when a solution cell
   actually ran out of time).

Proofs 1, 2 and 4 run nbgrader itself (generate_assignment, then our parallel autograde) in a
scratch copy of the course. Proof 3 executes the source notebook *once* with nbclient and then,
in the same kernel, swaps in each mutant and re-runs only the test cells. A test cell fails when
it raises or when the grader's comparison of what it recorded fails (:mod:`.verdict`), exactly
as in grading.
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
from course_tools.grading.course import cell_timeout, gradebook_url, instructor_timeout
from course_tools.grading.gradebook import read_scores
from course_tools.grading.leakcheck import Leak
from course_tools.grading.mutants import load_mutants
from course_tools.grading.notebooks import graded_cells, read_notebook, solution_submission
from course_tools.grading.references import load_manifest, load_references
from course_tools.grading.release import check_source, copy_course, generate_release
from course_tools.grading.verdict import judge_cell

__all__ = ["Check", "SelfTestReport", "format_table", "run_mutants", "self_test"]

#: The slowest solution cell should take at most 1/SAFETY_FACTOR of the per-cell timeout on an
#: idle machine, so that slower correct code and a busy machine still finish (reported only).
SAFETY_FACTOR = 2.0
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
        ``{cell label: seconds}`` (wall time) for every code cell of the solution run.
    cell_cpu_seconds : dict
        ``{cell label: seconds}`` of kernel CPU time (all threads) for the same cells.
    failures : dict
        ``{mutant name: set of grade ids of the test cells that failed}``.
    mutant_errors : dict
        ``{mutant name: message}`` when a mutant could not be installed.
    """

    solution_errors: dict[str, str] = field(default_factory=dict)
    cell_seconds: dict[str, float] = field(default_factory=dict)
    cell_cpu_seconds: dict[str, float] = field(default_factory=dict)
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


def _kernel_process(client):
    """The kernel's process (psutil), or None when it cannot be found."""
    try:
        import psutil

        return psutil.Process(client.km.provisioner.process.pid)
    except Exception:  # another provisioner, or psutil missing: CPU times are not reported
        return None


def _cpu_seconds(process) -> float | None:
    """User + system CPU seconds of a process and its children so far."""
    if process is None:
        return None
    try:
        times = process.cpu_times()
        return times.user + times.system + times.children_user + times.children_system
    except Exception:  # the kernel died: no CPU time for this cell
        return None


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
    references_path = notebook_path.parent / REFERENCES_FILE
    references = load_references(references_path)
    expected: dict[str, dict[str, dict]] = {}
    for name, spec in load_manifest(references_path).items():
        if spec.get("notebook") in (None, notebook_path.name):
            expected.setdefault(spec["cell"], {})[name] = spec

    def failure(cell, grade_id: str | None) -> str | None:
        """Why a cell fails as the grader sees it: its own error, else its recordings."""
        error = _error_line(cell)
        if error or grade_id not in expected:
            return error
        verdict = judge_cell(grade_id, cell.get("outputs", []), expected[grade_id], references)
        return None if verdict.passed else "ReferenceMismatch: " + " ".join(verdict.problems)

    client = NotebookClient(
        nb,
        timeout=int(timeout),
        allow_errors=True,
        record_timing=True,
        resources={"metadata": {"path": str(notebook_path.parent)}},
    )
    client.reset_execution_trackers()
    with client.setup_kernel():
        kernel = _kernel_process(client)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            cpu_before = _cpu_seconds(kernel)
            client.execute_cell(cell, index)
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            label = grade_id or f"cell {index}"
            error = failure(cell, grade_id)
            if error:
                result.solution_errors[label] = error
            seconds = _seconds(cell)
            if seconds is not None:
                result.cell_seconds[label] = seconds
            if cpu_before is not None and (cpu_after := _cpu_seconds(kernel)) is not None:
                result.cell_cpu_seconds[label] = cpu_after - cpu_before

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
                if failure(replay, test.grade_id):
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
            mutant_runs = [
                run_mutants(nb, mutants_file, timeout=instructor_timeout(course))
                for nb in notebooks
            ]
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
        merged.cell_cpu_seconds.update(run.cell_cpu_seconds)
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


def _timeout_check(run: MutantRun, timeout: float) -> Check:
    """How close the slowest solution cell comes to the per-cell timeout, reported.

    Wall time depends on how busy the machine is, so it never fails the check: a machine running
    other work can make any cell slow. The check fails only when a solution cell did run out of
    time (its CellTimeoutError is also a solution error). The report gives the slowest cell's
    wall time and its kernel CPU time (all threads: on 2 cores up to twice the wall time of an
    idle machine) and says whether the wall time left the documented safety factor of 2.
    """
    slowest = max(run.cell_seconds.items(), key=lambda kv: kv[1], default=("-", 0.0))
    cpu = run.cell_cpu_seconds.get(slowest[0])
    timed_out = [k for k, v in run.solution_errors.items() if "CellTimeoutError" in v]
    detail = f"slowest cell {slowest[0]}: {slowest[1]:.1f} s wall"
    if cpu is not None:
        detail += f", {cpu:.1f} s kernel CPU"
    detail += f"; limit {timeout:g} s per cell"
    if slowest[1] > timeout / SAFETY_FACTOR:
        detail += (
            f"; above 1/{SAFETY_FACTOR:g} of the limit on this run (a busy machine, or raise "
            "c.Execute.timeout)"
        )
    if timed_out:
        detail += f"; timed out: {', '.join(timed_out)}"
    return Check("timeout sized to the assignment (reported)", not timed_out, detail)


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
    checks.append(_timeout_check(merged, timeout))
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
