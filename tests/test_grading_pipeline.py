"""Proof 5 and the grade pipeline: bad submissions are graded, the batch goes on, parallel
grades equal serial nbgrader's, feedback hides hidden tests, grades reach the CSV, tampering is
reported."""

from __future__ import annotations

import csv
import shutil
from collections import Counter

import pytest
from fixtures.grading_helpers import (
    FIXTURE_COURSE,
    all_assignments,
    assignment_ids,
    delete_cell,
    edit_cell,
    scratch_course,
    solution_notebooks,
    submit,
)

from course_tools.grading.course import gradebook_url, run_nbgrader
from course_tools.grading.feedback import hidden_test_lines
from course_tools.grading.gradebook import read_scores
from course_tools.grading.notebooks import graded_cells, nbgrader_meta, read_notebook
from course_tools.grading.pipeline import grade_assignment
from course_tools.grading.release import generate_release

pytestmark = [pytest.mark.grading, pytest.mark.slow]
#: One xdist group per graded course (conftest.py): the fixture's and the real assignment's
#: proof 5 run side by side, each graded once.
XDIST_SPLIT_BY = "graded"


def _cells(course, assignment, *, solution=False, hidden=False):
    out = []
    for source in sorted((course / "source" / assignment).glob("*.ipynb")):
        nb = read_notebook(source)
        if solution:
            out += [
                (source.name, nbgrader_meta(c)["grade_id"])
                for c in nb.cells
                if nbgrader_meta(c).get("solution") and c.cell_type == "code"
            ]
        else:
            out += [(source.name, c.grade_id) for c in graded_cells(nb) if c.hidden or not hidden]
    return out


SLEEPING_LOOP = "import time\nwhile True:\n    time.sleep(1)\n"


def _bad_submissions(course, assignment, *, spin: bool):
    """The solution broken in each way proof 5 names, and the solution under another name.

    The renamed solution doubles as the good submission (full marks), which keeps the batch at
    five notebook executions per assignment.
    """
    good = solution_notebooks(course, assignment)
    answers = _cells(course, assignment, solution=True)
    first_nb, first = answers[0]
    last_nb, last = answers[-1]
    hidden_nb, hidden = _cells(course, assignment, hidden=True)[0]

    def changed(name, grade_id, fn):
        return {**good, name: fn(good[name], grade_id)}

    # A real assignment's per-cell timeout is two minutes: its endless loop sleeps, so that it
    # holds one grading job for that long without also taking a CPU core from the other tests
    # (the fixture's loop spins, for its 10 s).
    loop = "while True:\n    pass\n" if spin else SLEEPING_LOOP
    return {
        "endless-loop": changed(
            first_nb, first, lambda nb, g: edit_cell(nb, g, lambda s: loop + s)
        ),
        "exception": changed(
            last_nb,
            last,
            lambda nb, g: edit_cell(
                nb, g, lambda s: "raise RuntimeError('simulated student bug')\n" + s
            ),
        ),
        "kernel-death": changed(
            last_nb, last, lambda nb, g: edit_cell(nb, g, lambda s: "import os\nos._exit(1)\n" + s)
        ),
        "deleted-cell": changed(hidden_nb, hidden, delete_cell),
        "renamed": {f"Copy of {name}": nb for name, nb in good.items()},
    }


def _proof5_cases() -> list:
    """Proof 5 on the fixture assignment in ``make test``, on every real one in ``make test-all``.

    Proof 5 checks the pipeline (every submission graded once, bad parts at zero, feedback
    without hidden tests, the CSV); the fixture proves it cell by cell in about 30 s. On a real
    assignment the same five submissions take about 150 s and 100 s of CPU, so they are marked
    ``exhaustive``; in ``make test`` every real assignment still meets proofs 1-4
    (test_grading_proofs.py), and ``make bench`` grades eight ``architectures`` submissions
    serially, in two jobs and on Dask with identical grades.
    """
    return [
        pytest.param(
            case, id=case_id, marks=() if case[0] == FIXTURE_COURSE else pytest.mark.exhaustive
        )
        for case, case_id in zip(all_assignments(), assignment_ids(), strict=True)
    ]


@pytest.fixture(scope="module", params=_proof5_cases())
def graded(request, tmp_path_factory):
    course_root, assignment = request.param
    course = scratch_course(course_root, assignment, tmp_path_factory.mktemp("course"))
    generate_release(course, assignment)
    submissions = _bad_submissions(course, assignment, spin=course_root == FIXTURE_COURSE)
    for student, notebooks in submissions.items():
        submit(course, assignment, student, notebooks)
    report = grade_assignment(course, assignment, jobs=2, progress=False)
    return course, assignment, report, course_root == FIXTURE_COURSE


def _by_student(course, assignment):
    rows = read_scores(gradebook_url(course), assignment)
    out = {}
    for r in rows:
        out.setdefault(r.student, {})[r.cell] = r
    return rows, out


def test_proof5_every_submission_is_graded_once(graded):
    course, assignment, report, _ = graded
    assert [o.student for o in report.autograde.outcomes] == sorted(
        ["endless-loop", "exception", "kernel-death", "deleted-cell", "renamed"]
    )
    assert all(o.success for o in report.autograde.outcomes), [
        (o.student, o.log[-500:]) for o in report.autograde.failed
    ]
    rows, _ = _by_student(course, assignment)
    keys = Counter((r.student, r.notebook, r.cell) for r in rows)
    assert max(keys.values()) == 1  # nothing duplicated
    expected_cells = len(_cells(course, assignment))
    assert len(keys) == 5 * expected_cells  # nothing lost


def test_proof5_bad_parts_score_zero_and_good_parts_keep_their_points(graded):
    course, assignment, _, is_fixture = graded
    _, scores = _by_student(course, assignment)
    auto = {
        cell
        for _, cell in _cells(course, assignment)
        if not any(
            c.grade_id == cell and not c.autograded
            for p in (course / "source" / assignment).glob("*.ipynb")
            for c in graded_cells(read_notebook(p))
        )
    }

    def total(student):
        return sum(scores[student][c].auto_score or 0 for c in auto)

    full = sum(scores["renamed"][c].max_score for c in auto)
    assert total("renamed") == full
    for student in ("endless-loop", "exception", "kernel-death", "deleted-cell"):
        assert total(student) < full, student
    hidden = _cells(course, assignment, hidden=True)[0][1]
    assert scores["deleted-cell"][hidden].auto_score is None
    assert scores["deleted-cell"][hidden].needs_manual_grade
    if is_fixture:
        _check_fixture_cell_by_cell(scores)


def _check_fixture_cell_by_cell(scores):
    got = {
        s: {c: r.auto_score for c, r in cells.items() if c != "answer_ddof"}
        for s, cells in scores.items()
    }
    # Worked out by hand: the loop breaks trial_mean (the visible test uses it); the exception
    # and the kernel death break trial_variance (the visible test checks its shape).
    assert got["endless-loop"] == {
        "test_visible": 0,
        "test_mean_hidden": 0,
        "test_variance_hidden": 2,
    }
    assert got["exception"] == {"test_visible": 0, "test_mean_hidden": 2, "test_variance_hidden": 0}
    assert got["kernel-death"] == got["exception"]
    # The first test cell with hidden tests is deleted: now the visible one, which records its
    # worked examples for the grader too.
    assert got["deleted-cell"] == {
        "test_visible": None,
        "test_mean_hidden": 2,
        "test_variance_hidden": 2,
    }


def test_renamed_and_deleted_are_reported(graded):
    _, _, report, _ = graded
    notes = {(n.student, n.kind) for o in report.autograde.outcomes for n in o.notes}
    assert ("renamed", "renamed") in notes
    assert ("deleted-cell", "deleted-cell") in notes


def test_feedback_hides_hidden_tests_and_instructor_files(graded):
    course, assignment, report, _ = graded
    assert report.feedback_problems == []
    secrets = [
        line
        for p in (course / "source" / assignment).glob("*.ipynb")
        for line in hidden_test_lines(p)
    ]
    assert secrets
    for student in ("exception", "renamed"):
        folder = course / "feedback" / student / assignment
        html = [p for p in folder.iterdir() if p.suffix == ".html"]
        assert html, student
        assert not list(folder.glob("references.npz")) and not list(folder.glob("mutants.py"))
        text = "".join(p.read_text() for p in html)
        assert "hidden tests ran here" in text


def test_grades_csv_matches_gradebook(graded):
    course, assignment, report, _ = graded
    _, scores = _by_student(course, assignment)
    with report.grades_csv.open() as handle:
        rows = {r["student_id"]: r for r in csv.DictReader(handle) if r["assignment"] == assignment}
    assert sorted(rows) == sorted(scores)
    for student, cells in scores.items():
        expected = sum(
            (r.manual_score if r.manual_score is not None else r.auto_score) or 0
            for r in cells.values()
        )
        assert float(rows[student]["raw_score"]) == pytest.approx(expected)


def test_parallel_grades_equal_serial_nbgrader(tmp_path):
    """8 fixture submissions: course-tools (2 jobs) and plain nbgrader autograde agree exactly."""
    assignment = "mean_variance"
    course = scratch_course(FIXTURE_COURSE, assignment, tmp_path / "parallel")
    generate_release(course, assignment)
    good = solution_notebooks(course, assignment)
    name = f"{assignment}.ipynb"

    def variant(grade_id, fn):
        return {name: edit_cell(good[name], grade_id, fn)}

    students = {
        "ada": good,
        "bo": variant("trial_variance", lambda s: s.replace("ddof=1", "ddof=0")),
        "cy": variant("trial_mean", lambda s: s.replace("axis=0", "axis=1")),
        "di": variant("trial_mean", lambda s: "while True:\n    pass\n" + s),
        "ed": variant("trial_variance", lambda s: "import os\nos._exit(1)\n" + s),
        "fay": {name: delete_cell(good[name], "test_variance_hidden")},
        "gus": {name: read_notebook(course / "release" / assignment / name)},
        "hal": variant("trial_variance", lambda s: s + "\nnp.testing.assert_allclose = print"),
    }
    for student, notebooks in students.items():
        submit(course, assignment, student, notebooks)
    # The same course, release and gradebook for plain nbgrader.
    courses = {"parallel": course, "serial": tmp_path / "serial"}
    shutil.copytree(course, courses["serial"])
    report = grade_assignment(courses["parallel"], assignment, jobs=2, progress=False)
    assert not report.autograde.failed
    run_nbgrader(["autograde", assignment], courses["serial"])
    parallel = read_scores(gradebook_url(courses["parallel"]), assignment)
    serial = read_scores(gradebook_url(courses["serial"]), assignment)
    assert len(parallel) == 8 * 4
    assert parallel == serial
    assert {f.student for f in report.tamper} == {"fay", "hal"}
    shutil.rmtree(tmp_path, ignore_errors=True)
