"""Every attack on grading that issue 14 lists, replayed on the fixture course in one grading run.

Each submission below is the honest solution with one attack built in, the way a student would
write it in an answer cell. The whole class is graded once (``course-tools grade --jobs 2``, in
the sandbox) and each test states its attack in its name and checks the points (no more than a
blank notebook would earn, unless the attack is honest work) and the flag an instructor sees.
"""

from __future__ import annotations

import csv
import hashlib
import json
import uuid

import nbformat
import psutil
import pytest
from fixtures.grading_helpers import (
    FIXTURE_COURSE,
    edit_cell,
    scratch_course,
    solution_notebooks,
    submit,
)

from course_tools.grading.course import gradebook_url
from course_tools.grading.gradebook import read_scores
from course_tools.grading.notebooks import nbgrader_meta, read_notebook
from course_tools.grading.pipeline import feedback_assignment, grade_assignment
from course_tools.grading.release import generate_release

pytestmark = [pytest.mark.grading, pytest.mark.slow]

ASSIGNMENT = "mean_variance"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
AUTOGRADED_POINTS = 5.0  # test_visible 1 + test_mean_hidden 2 + test_variance_hidden 2
MARKER = f"ct-attack-{uuid.uuid4().hex[:12]}"  # names the detached process of this run


def _prepend(code: str):
    """Put attack code at the top of the trial_mean answer cell (it runs when the cell runs)."""
    return lambda nb: edit_cell(nb, "trial_mean", lambda s: code + "\n" + s)


def _replace(grade_id: str, code: str):
    return lambda nb: edit_cell(nb, grade_id, lambda s: code)


def _attacks(course) -> dict:
    """student id -> function that turns the solution notebook into the attack."""
    root = str(course)
    secrets = [
        "references.npz",
        "linked.npz",  # a symbolic link to the references, planted in the submission
        f"{root}/source/{ASSIGNMENT}/references.npz",
        f"{root}/source/{ASSIGNMENT}/mutants.py",
        f"{root}/source/{ASSIGNMENT}/{NOTEBOOK}",
        f"{root}/gradebook.db",
        f"{root}/submitted/honest/{ASSIGNMENT}/{NOTEBOOK}",
        "/root/.bash_history",
    ]
    probe = f"""
import base64, glob
for _p in {secrets!r} + glob.glob({root!r} + "/**/references.npz", recursive=True):
    try:
        print("LEAK", _p, base64.b64encode(open(_p, "rb").read()[:64]).decode())
    except OSError:
        pass
print("PROBED")
"""
    overwrite = f"""
import glob, numpy as _np
for _p in ["references.npz", {root!r} + "/source/{ASSIGNMENT}/references.npz",
           *glob.glob({root!r} + "/autograded/*/{ASSIGNMENT}/references.npz"),
           *glob.glob({root!r} + "/.course_tools/**/references.npz", recursive=True)]:
    try:
        _np.savez(_p, trial_mean_held_out=_np.zeros(6), trial_variance_held_out=_np.zeros(5))
        print("WROTE", _p)
    except OSError:
        pass
try:
    open({root!r} + "/gradebook.db", "ab").write(b"x")
    print("WROTE gradebook")
except OSError:
    pass
"""
    read_values = f"""
def trial_mean(responses):
    import numpy as np
    for path in ["references.npz", {root!r} + "/source/{ASSIGNMENT}/references.npz"]:
        try:
            return np.load(path)["trial_mean_held_out"]
        except OSError:
            pass
    raise NotImplementedError()
"""
    patch_everything = """
import importlib, builtins
_np = importlib.import_module("numpy")
setattr(_np, "allclose", lambda *a, **k: True)
setattr(_np, "isclose", lambda *a, **k: True)
setattr(importlib.import_module("numpy.testing"), "assert_allclose", lambda *a, **k: None)
_refs = importlib.import_module("course_tools.grading.references")
_refs.describe_mismatch = lambda *a, **k: None
_refs.check_reference = lambda *a, **k: None
globals()["check_reference"] = lambda *a, **k: None
"""
    wrong_answers = "\n\ndef trial_mean(responses):\n    return _np.ones(_np.shape(responses)[1])\n"
    detached = f"""
import subprocess, sys
subprocess.Popen([sys.executable, "-c",
                  "import time\\nwhile True: time.sleep(0.5)", "{MARKER}"],
                 start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print("STARTED detached")
"""
    network = """
import socket
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3)
    print("NETWORK reachable")
except OSError:
    print("NO NETWORK")
"""

    def flip_solution_flag(nb):
        nb = nbformat.from_dict(nb)
        for cell in nb.cells:
            if nbgrader_meta(cell).get("grade_id") == "test_visible":
                cell.metadata["nbgrader"]["solution"] = True
        return nb

    def rename_grade_id(nb):
        nb = nbformat.from_dict(nb)
        for cell in nb.cells:
            if nbgrader_meta(cell).get("grade_id") == "trial_variance":
                cell.metadata["nbgrader"]["grade_id"] = "my_variance"
        return nb

    def edit_points(nb):
        nb = nbformat.from_dict(nb)
        for cell in nb.cells:
            if nbgrader_meta(cell).get("grade_id") == "test_mean_hidden":
                cell.metadata["nbgrader"]["points"] = 100
        return nb

    def markdown_test_cell(nb):
        nb = nbformat.from_dict(nb)
        for index, cell in enumerate(nb.cells):
            if nbgrader_meta(cell).get("grade_id") == "test_variance_hidden":
                nb.cells[index] = nbformat.v4.new_markdown_cell(cell.source, metadata=cell.metadata)
        return nb

    return {
        "honest": lambda nb: nb,
        "reads-instructor-files": _prepend(probe),
        "returns-reference-values": lambda nb: _replace("trial_mean", read_values)(nb),
        "overwrites-references-and-neighbours": _prepend(overwrite),
        "monkeypatches-numpy-and-checks": _replace("trial_mean", patch_everything + wrong_answers),
        "detached-process": _prepend(detached),
        "no-network": _prepend(network),
        "big-output": _prepend('print("x" * 20_000_000)'),
        "careless-solution-flag": flip_solution_flag,
        "careless-renamed-grade-id": rename_grade_id,
        "careless-edited-points": edit_points,
        "careless-cell-type": markdown_test_cell,
    }


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    course = scratch_course(FIXTURE_COURSE, ASSIGNMENT, tmp_path_factory.mktemp("attacks"))
    generate_release(course, ASSIGNMENT)
    solution = solution_notebooks(course, ASSIGNMENT)[NOTEBOOK]
    for student, attack in _attacks(course).items():
        submit(course, ASSIGNMENT, student, {NOTEBOOK: attack(solution)})
    link = course / "submitted" / "reads-instructor-files" / ASSIGNMENT / "linked.npz"
    link.symlink_to(course / "source" / ASSIGNMENT / "references.npz")
    # An empty submission folder and a notebook that is not JSON.
    submit(course, ASSIGNMENT, "empty-submission", {})
    broken = submit(course, ASSIGNMENT, "unreadable-json", {})
    (broken / NOTEBOOK).write_text('{"cells": [ not json')
    instructor_files = {
        p: _digest(p) for p in (course / "source" / ASSIGNMENT).iterdir() if p.is_file()
    }
    report = grade_assignment(course, ASSIGNMENT, jobs=2, progress=False)
    scores: dict[str, dict[str, object]] = {}
    for row in read_scores(gradebook_url(course), ASSIGNMENT):
        scores.setdefault(row.student, {})[row.cell] = row
    return course, report, scores, instructor_files


def _auto(scores, student) -> float:
    return sum(r.auto_score or 0.0 for r in scores[student].values() if r.cell.startswith("test_"))


def _outputs(course, student) -> str:
    nb = read_notebook(course / "autograded" / student / ASSIGNMENT / NOTEBOOK)
    return json.dumps([c.get("outputs", []) for c in nb.cells])


def _notes(report, student) -> list[str]:
    outcome = next(o for o in report.autograde.outcomes if o.student == student)
    return [n.kind for n in outcome.notes]


def _flags(report, student) -> list[str]:
    return [f.reason for f in report.tamper if f.student == student]


def test_honest_work_gets_full_marks_in_the_sandbox(attacked):
    course, report, scores, _ = attacked
    assert report.autograde.sandboxed
    assert _auto(scores, "honest") == AUTOGRADED_POINTS
    assert not _flags(report, "honest") and not _notes(report, "honest")


def test_attack_reading_instructor_files_sees_nothing(attacked):
    course, report, scores, _ = attacked
    outputs = _outputs(course, "reads-instructor-files")
    assert "PROBED" in outputs  # the attack ran
    assert "LEAK" not in outputs  # references, mutants, source, gradebook, classmates, home
    assert _auto(scores, "reads-instructor-files") == AUTOGRADED_POINTS  # the answers are honest


def test_attack_returning_reference_values_earns_what_blank_earns(attacked):
    _, _, scores, _ = attacked
    cells = scores["returns-reference-values"]
    # trial_mean raises (no references anywhere): its tests score 0; trial_variance is honest.
    assert cells["test_mean_hidden"].auto_score == 0
    assert cells["test_visible"].auto_score == 0
    assert cells["test_variance_hidden"].auto_score == 2


def test_attack_overwriting_references_and_neighbours_changes_nothing(attacked):
    course, report, scores, instructor_files = attacked
    outputs = _outputs(course, "overwrites-references-and-neighbours")
    # Its private copy is writable (and thrown away); nothing of the course is.
    assert "WROTE references.npz" in outputs  # the attack ran, in its private folder
    assert f"WROTE {course}" not in outputs and "WROTE gradebook" not in outputs
    assert {p: _digest(p) for p in instructor_files} == instructor_files
    assert _auto(scores, "honest") == AUTOGRADED_POINTS  # graded beside it with --jobs 2
    assert _auto(scores, "overwrites-references-and-neighbours") == AUTOGRADED_POINTS


def test_attack_monkeypatching_numpy_and_checks_earns_nothing_and_is_flagged(attacked):
    _, report, scores, _ = attacked
    cells = scores["monkeypatches-numpy-and-checks"]
    # Wrong trial_mean with numpy's comparisons and check_reference patched: the grader, not the
    # kernel, compares, and nothing was recorded.
    assert cells["test_mean_hidden"].auto_score == 0
    assert cells["test_visible"].auto_score == 0
    assert any("globals()" in f for f in _flags(report, "monkeypatches-numpy-and-checks"))


def test_attack_detached_process_dies_with_the_sandbox(attacked):
    course, _, scores, _ = attacked
    assert "STARTED detached" in _outputs(course, "detached-process")
    survivors = [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if MARKER in " ".join(p.info["cmdline"] or [])
    ]
    assert survivors == []
    assert _auto(scores, "detached-process") == AUTOGRADED_POINTS
    assert all(r.manual_score is None for r in scores["detached-process"].values())


def test_attack_network_is_unreachable(attacked):
    course, _, _, _ = attacked
    outputs = _outputs(course, "no-network")
    assert "NO NETWORK" in outputs and "NETWORK reachable" not in outputs


def test_attack_big_output_is_cut_in_bytes(attacked):
    course, _, scores, _ = attacked
    graded = course / "autograded" / "big-output" / ASSIGNMENT / NOTEBOOK
    assert graded.stat().st_size < 500_000  # 20 MB printed, 100 kB kept per cell
    assert "output truncated" in graded.read_text()
    feedback = next((course / "feedback" / "big-output" / ASSIGNMENT).glob("*.html"))
    assert feedback.stat().st_size < 1_500_000
    assert _auto(scores, "big-output") == AUTOGRADED_POINTS


@pytest.mark.parametrize(
    "student",
    [
        "careless-solution-flag",
        "careless-renamed-grade-id",
        "careless-edited-points",
        "careless-cell-type",
    ],
)
def test_careless_metadata_edit_grades_with_instructor_cells_and_flags(attacked, student):
    _, report, scores, _ = attacked
    assert _auto(scores, student) == AUTOGRADED_POINTS
    assert sum(r.max_score for r in scores[student].values()) == 6  # points as the instructor set
    assert "metadata-restored" in _notes(report, student)


@pytest.mark.parametrize("student", ["empty-submission", "unreadable-json"])
def test_empty_or_unreadable_submission_has_a_zero_row_with_the_reason(attacked, student):
    _, report, _, _ = attacked
    with report.grades_csv.open() as handle:
        rows = {r["student_id"]: r for r in csv.DictReader(handle)}
    assert float(rows[student]["score"]) == 0
    reason = "missing" if student == "empty-submission" else "unreadable"
    assert reason in rows[student]["notes"]


def test_feedback_return_step_rescans_regenerated_feedback(attacked):
    course, _, _, _ = attacked
    # The documented return step regenerates feedback and scans it again: a hidden test line that
    # reached the graded notebook (as exfiltrated output would) is caught and its HTML deleted.
    graded = course / "autograded" / "honest" / ASSIGNMENT / NOTEBOOK
    nb = read_notebook(graded)
    nb.cells.append(
        nbformat.v4.new_markdown_cell("held_out = rng.normal(loc=2.0, scale=3.0, size=(19, 6))")
    )
    nbformat.write(nb, graded)
    report = feedback_assignment(course, ASSIGNMENT, students=["honest"])
    assert any("shows hidden test line" in p for p in report.problems)
    assert not list((course / "feedback" / "honest" / ASSIGNMENT).glob("*.html"))
