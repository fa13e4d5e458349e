"""A whole term on real parts: Unix accounts, nbgrader's exchange, ``course-tools grade``.

One instructor and two students, real accounts created for the test. The instructor releases the
fixture assignment through the exchange configured as the hub configures it
(``hub/everyone/nbgrader_config.py``); each student fetches it and submits, one the solution and
one with a biased variance; the instructor collects, grades with ``course-tools grade``, and
returns the feedback as the instructor guide says; each student fetches the feedback and sees
their score. Everything runs once (a module fixture); the tests read its results.
"""

from __future__ import annotations

import csv
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from fixtures.accounts import (
    FIXTURE_COURSE_ID,
    Account,
    CourseAccounts,
    course_accounts,
    course_env,
    exchange_in,
    instructor_course,
    readable_by_everyone,
    run_as,
    shared_folder,
    user_env,
)
from fixtures.grading_helpers import edit_cell

from course_tools.grading.notebooks import read_notebook, solution_submission

# Both modules create Unix accounts and open /root to them for a while: one xdist worker runs
# them one after the other (tests/conftest.py groups by module otherwise).
pytestmark = [pytest.mark.grading, pytest.mark.slow, pytest.mark.xdist_group("unix_accounts")]

ASSIGNMENT = "mean_variance"
#: Autograded points of the fixture: test_visible 1, test_mean_hidden 2, test_variance_hidden 2;
#: the written answer (1 point) is graded by hand, so it is 0 until the instructor grades it.
MAX_SCORE = 6.0
#: The solution gets every autograded point; the biased variance (ddof=0) keeps the mean's hidden
#: test (2 points) and fails the variance's hidden test and the visible test, whose hidden half
#: compares the worked example's variance with the instructor's recording.
EXPECTED = {"solved": 5.0, "partly": 2.0}


@dataclass
class Term:
    accounts: CourseAccounts
    course: Path
    exchange: Path
    work: dict[str, Path]  # student -> their assignment folder
    submitted_by: dict[str, str]  # student -> "solved" / "partly"
    feedback_html: dict[str, str]  # student -> the feedback page they fetched
    peek: dict[str, int]  # student -> exit status of listing the exchange's inbound folder
    grade_log: str
    seconds: float


def answered(source: nbformat.NotebookNode, fetched: Path, how: str) -> nbformat.NotebookNode:
    """The fetched notebook with the student's answers: the solution, or a biased variance."""
    nb = solution_submission(source, read_notebook(fetched))
    if how == "partly":
        nb = edit_cell(nb, "trial_variance", lambda s: s.replace("ddof=1", "ddof=0"))
        assert "ddof=0" in nb.cells[3].source
    return nb


@pytest.fixture(scope="module")
def term():
    start = time.perf_counter()
    with (
        course_accounts() as accounts,
        shared_folder("course-exchange-") as shared,
        readable_by_everyone(),
    ):
        teacher, students = accounts.instructor, accounts.students
        exchange = exchange_in(shared)
        env = {a.name: course_env(a, exchange) for a in accounts.all}
        how = dict(zip((s.name for s in students), ("solved", "partly"), strict=True))

        course = instructor_course(teacher, ASSIGNMENT)

        def instructor(*argv: str):
            return run_as(teacher, argv, cwd=course, env=env[teacher.name])

        def each_student(step):
            """Both students at once, as in a class."""
            with ThreadPoolExecutor(len(students)) as pool:
                return dict(zip((s.name for s in students), pool.map(step, students), strict=True))

        # Release: the student version, leak check, then the exchange.
        instructor("course-tools", "release", ASSIGNMENT, "--to-exchange")

        # Fetch, answer (the solution, or a biased variance) and submit.
        source = read_notebook(course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")

        def work_on(student: Account) -> Path:
            run_as(student, ["nbgrader", "fetch_assignment", ASSIGNMENT], env=env[student.name])
            notebook = student.home / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
            nbformat.write(answered(source, notebook, how[student.name]), notebook)
            shutil.chown(notebook, student.name, student.gid)
            run_as(student, ["nbgrader", "submit", ASSIGNMENT], env=env[student.name])
            return notebook.parent

        work = each_student(work_on)
        # A student may drop work into the inbound folder but not list it.
        inbound = exchange / FIXTURE_COURSE_ID / "inbound"
        peek = {
            s.name: run_as(s, ["ls", str(inbound)], env=user_env(s), check=False).returncode
            for s in students
        }

        # Collect, grade, return: the instructor guide's steps.
        instructor("nbgrader", "collect", ASSIGNMENT)
        grade = instructor("course-tools", "grade", ASSIGNMENT, "--jobs", "2", "--quiet")
        instructor("course-tools", "feedback", ASSIGNMENT, "--release")

        # Each student fetches the feedback and reads it, as that student.
        def read_feedback(student: Account) -> str:
            run_as(student, ["nbgrader", "fetch_feedback", ASSIGNMENT], env=env[student.name])
            pages = sorted((student.home / ASSIGNMENT / "feedback").glob("*/*.html"))
            assert len(pages) == 1, f"{student.name} fetched {pages}"
            return run_as(student, ["cat", str(pages[0])], env=user_env(student)).stdout

        feedback = each_student(read_feedback)
        yield Term(
            accounts=accounts,
            course=course,
            exchange=exchange,
            work=work,
            submitted_by=how,
            feedback_html=feedback,
            peek=peek,
            grade_log=grade.stdout,
            seconds=time.perf_counter() - start,
        )


def shown_score(html: str) -> tuple[float, float]:
    """The total a student reads at the top of nbgrader's feedback page."""
    match = re.search(r"Score:\s*([\d.]+)\s*/\s*([\d.]+)", html)
    assert match, "no score on the feedback page"
    return float(match.group(1)), float(match.group(2))


def test_students_fetch_the_release_without_instructor_files(term):
    for folder in term.work.values():
        assert sorted(p.name for p in folder.iterdir()) == ["feedback", f"{ASSIGNMENT}.ipynb"]


def test_students_cannot_list_the_inbound_submissions(term):
    assert all(status != 0 for status in term.peek.values()), term.peek


def test_collect_brings_one_submission_per_student(term):
    submitted = sorted(p.name for p in (term.course / "submitted").iterdir())
    assert submitted == sorted(term.work)


def test_students_see_their_scores_in_the_feedback(term):
    for name, html in term.feedback_html.items():
        expected = EXPECTED[term.submitted_by[name]]
        assert shown_score(html) == (pytest.approx(expected), pytest.approx(MAX_SCORE)), name
        # The feedback keeps the hidden tests hidden.
        assert "default_rng(61331)" not in html and "BEGIN HIDDEN" not in html
        assert "hidden tests ran here" in html


def test_gradebook_and_exported_csv_agree(term):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{term.course / 'gradebook.db'}") as gb:
        book = {
            name: (
                gb.find_submission(ASSIGNMENT, name).score,
                gb.find_submission(ASSIGNMENT, name).max_score,
            )
            for name in term.work
        }
    with open(term.course / "grades.csv", newline="") as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f)}
    assert sorted(rows) == sorted(term.work)
    for name, (score, max_score) in book.items():
        expected = EXPECTED[term.submitted_by[name]]
        assert score == pytest.approx(expected) and max_score == pytest.approx(MAX_SCORE)
        assert float(rows[name]["score"]) == pytest.approx(score)
        assert float(rows[name]["raw_score"]) == pytest.approx(score)
        assert float(rows[name]["max_score"]) == pytest.approx(max_score)
        assert rows[name]["assignment"] == ASSIGNMENT


def test_grade_reports_every_submission(term):
    assert "Autograded 2 submission(s) of mean_variance" in term.grade_log
