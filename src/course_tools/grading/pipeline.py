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

__all__ = ["GradeReport", "grade_assignment", "write_tamper_report"]


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


def _finish(
    root: str, assignment: str, students: list[str], grades_csv: str
) -> tuple[list[str], tuple[bool, str], list[TamperFinding]]:
    """Feedback leak check (leaking files are deleted), grade export, tamper scan."""
    from course_tools.grading.feedback import find_feedback_leaks

    course = Path(root)
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
    export = export_grades(root, grades_csv)
    return problems, export, scan_submissions(course, assignment, students=students)


def grade_assignment(
    course_root: str | Path,
    assignment: str,
    *,
    jobs: int = 2,
    students: list[str] | None = None,
    grades_csv: str | Path | None = None,
    progress: bool = True,
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

    Returns
    -------
    GradeReport
    """
    start = time.perf_counter()
    root = check_course_root(course_root)
    run = autograde_students(
        root, assignment, jobs=jobs, students=students, feedback=True, progress=progress
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
