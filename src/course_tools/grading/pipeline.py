"""``course-tools grade``: parallel autograde, feedback without hidden tests, CSV, tamper report."""

from __future__ import annotations

import csv
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from course_tools.grading.autograde import AutogradeRun, autograde_students, export_grades
from course_tools.grading.conventions import check_course_root, source_notebooks
from course_tools.grading.course import NbgraderError
from course_tools.grading.pool import worker_context
from course_tools.grading.tamper import TamperFinding, scan_submissions

__all__ = [
    "FeedbackReport",
    "GradeReport",
    "annotate_grades",
    "feedback_assignment",
    "grade_assignment",
    "remove_feedback_leaks",
    "write_tamper_report",
]


@dataclass
class GradeReport:
    """Everything ``course-tools grade`` did for one assignment.

    Attributes
    ----------
    autograde : AutogradeRun
    feedback_dir : Path
    feedback_problems : list of str
        Feedback files that showed hidden tests or instructor files (they were deleted).
    grades_csv : Path
    tamper : list of TamperFinding
    tamper_csv : Path
    seconds : float
    """

    autograde: AutogradeRun
    feedback_dir: Path
    grades_csv: Path
    tamper_csv: Path
    tamper: list[TamperFinding] = field(default_factory=list)
    feedback_problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


def write_tamper_report(findings: list[TamperFinding], path: str | Path) -> Path:
    """Write tamper findings as CSV (student, notebook, cell, line, reason)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "notebook", "cell", "line", "reason"])
        for f in findings:
            writer.writerow([f.student, f.notebook, f.cell, f.line, f.reason])
    return path


def _reasons(outcome) -> str:
    """What an instructor must know about one submission's grade, in one line."""
    reasons = [f"{n.notebook}: {n.kind}: {n.message}" for n in outcome.notes]
    if not outcome.success:
        tail = outcome.log.strip().splitlines()[-1:] or ["no log"]
        reasons.append(f"autograde failed: {tail[0][:200]}")
    return " | ".join(reasons)


def annotate_grades(csv_path: str | Path, assignment: str, run: AutogradeRun) -> Path:
    """Add a ``notes`` column to nbgrader's exported grades, with why a grade needs a look.

    An empty submission (no notebook), an unreadable notebook, a renamed notebook, restored
    metadata or a failed autograde is written next to the student's row (which nbgrader exports
    with score 0 when nothing could be graded).
    """
    path = Path(csv_path)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields, rows = list(reader.fieldnames or []), list(reader)
    notes = {o.student: _reasons(o) for o in run.outcomes}
    if "notes" not in fields:
        fields.append("notes")
    for row in rows:
        if row.get("assignment") == assignment and row.get("student_id") in notes:
            row["notes"] = notes[row["student_id"]]
        row.setdefault("notes", "")
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def remove_feedback_leaks(course: Path, assignment: str, students: list[str]) -> list[str]:
    """Scan the feedback of these students; delete every file that leaks, return the problems."""
    from course_tools.grading.feedback import find_feedback_leaks

    notebooks = source_notebooks(course, assignment)
    problems: list[str] = []
    for student in students:
        folder = course / "feedback" / student / assignment
        if folder.is_dir():
            problems += find_feedback_leaks(folder, notebooks)
    for problem in problems:
        leaked = Path(problem.split(": ", 1)[0])
        if leaked.is_file():
            leaked.unlink()
    return problems


def _finish(
    root: str, assignment: str, students: list[str], grades_csv: str
) -> tuple[list[str], tuple[bool, str], list[TamperFinding]]:
    """Feedback leak check (leaking files are deleted), grade export, tamper scan."""
    course = Path(root)
    problems = remove_feedback_leaks(course, assignment, students)
    export = export_grades(root, grades_csv)
    return problems, export, scan_submissions(course, assignment, students=students)


@dataclass
class FeedbackReport:
    """What ``course-tools feedback`` did.

    Attributes
    ----------
    students : list of str
        Students whose feedback was (re)generated.
    problems : list of str
        Feedback files that leaked hidden tests or instructor files (deleted, never released).
    released : bool
        The checked feedback was handed to nbgrader's exchange.
    log : str
    """

    students: list[str]
    problems: list[str]
    released: bool
    log: str = ""


def _feedback_in_worker(
    root: str, assignment: str, students: list[str], release: bool
) -> tuple[bool, list[str], bool, str]:
    from nbgrader.apps import GenerateFeedbackApp, ReleaseFeedbackApp

    from course_tools.grading.autograde import run_nbgrader_app

    course = Path(root)
    log = ""
    ok = True
    for student in students:
        done, text = run_nbgrader_app(
            GenerateFeedbackApp,
            [assignment, f"--student={student}", "--force", f"--CourseDirectory.root={root}"],
        )
        ok, log = ok and done, log + text
    problems = remove_feedback_leaks(course, assignment, students)
    released = False
    if release and ok:
        done, text = run_nbgrader_app(
            ReleaseFeedbackApp, [assignment, f"--CourseDirectory.root={root}"]
        )
        released, log = done, log + text
    return ok, problems, released, log


def feedback_assignment(
    course_root: str | Path,
    assignment: str,
    *,
    students: list[str] | None = None,
    release: bool = False,
) -> FeedbackReport:
    """The return step: (re)generate feedback, scan it for leaks, then optionally release it.

    ``nbgrader generate_feedback`` alone writes the autograded notebook as HTML and nothing
    checks it; here every file it writes is scanned (:func:`.find_feedback_leaks`) and a leaking
    file is deleted before ``nbgrader release_feedback`` can copy it to the exchange.

    Raises
    ------
    NbgraderError
        generate_feedback failed.
    ValueError
        No student of this assignment has been autograded.
    """
    root = check_course_root(course_root)
    graded = sorted(
        p.parent.name for p in (root / "autograded").glob(f"*/{assignment}") if p.is_dir()
    )
    students = graded if students is None else students
    if not graded or not set(students) <= set(graded):
        raise ValueError(
            f"No autograded submission of {assignment!r} for "
            f"{sorted(set(students) - set(graded)) or 'anyone'}: run `course-tools grade "
            f"{assignment}` first."
        )
    with ProcessPoolExecutor(max_workers=1, mp_context=worker_context()) as pool:
        ok, problems, released, log = pool.submit(
            _feedback_in_worker, str(root), assignment, students, release
        ).result()
    if not ok:
        raise NbgraderError(f"nbgrader generate_feedback failed:\n{log.strip()[-2000:]}")
    return FeedbackReport(students, problems, released, log)


def grade_assignment(
    course_root: str | Path,
    assignment: str,
    *,
    jobs: int = 2,
    students: list[str] | None = None,
    grades_csv: str | Path | None = None,
    progress: bool = True,
    sandbox: bool = True,
    cluster: int | str | None = None,
) -> GradeReport:
    """Autograde, generate feedback, check it, export grades and scan for tampering.

    Parameters
    ----------
    course_root : path
        The nbgrader course directory.
    assignment : str
    jobs : int, default=2
        Students graded at the same time.
    students : list of str, optional
        Only these students (default: every submission).
    grades_csv : path, optional
        Where to write the grades (default ``<course>/grades.csv``; nbgrader's export format).
    progress : bool, default=True
    sandbox : bool, default=True
        Run student code in the bubblewrap sandbox; see :func:`.autograde_students`.
    cluster : int or str, optional
        Autograde on a Dask cluster instead of ``jobs`` local processes: a number of local
        workers, or a scheduler's address (:mod:`.cluster`). Feedback is written by the same
        tasks; the checks, export and scan below run here.

    Returns
    -------
    GradeReport
    """
    start = time.perf_counter()
    root = check_course_root(course_root)
    run = autograde_students(
        root,
        assignment,
        jobs=jobs,
        students=students,
        feedback=True,
        progress=progress,
        sandbox=sandbox,
        cluster=cluster,
    )
    grades_csv = Path(grades_csv) if grades_csv is not None else root / "grades.csv"
    grades_csv.parent.mkdir(parents=True, exist_ok=True)
    graded = [o.student for o in run.outcomes]
    # One worker forked from the grading fork server (nbgrader already imported) checks the
    # feedback, exports the grades and scans for tampering.
    with ProcessPoolExecutor(max_workers=1, mp_context=worker_context()) as pool:
        problems, (ok, log), findings = pool.submit(
            _finish, str(root), assignment, graded, str(grades_csv.resolve())
        ).result()
    if not ok:
        raise NbgraderError(f"nbgrader export failed:\n{log.strip()[-2000:]}")
    annotate_grades(grades_csv, assignment, run)
    tamper_csv = write_tamper_report(findings, root / f"tamper_{assignment}.csv")
    return GradeReport(
        autograde=run,
        feedback_dir=root / "feedback",
        grades_csv=grades_csv,
        tamper_csv=tamper_csv,
        tamper=findings,
        feedback_problems=problems,
        seconds=time.perf_counter() - start,
    )
