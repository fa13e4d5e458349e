"""Every attack on grading that issue 14 lists, replayed on the fixture course in one grading run.

Each submission below is the honest solution with one attack built in, the way a student would
write it in an answer cell. The whole class is graded once (``course-tools grade --jobs 2``, in
the sandbox) and each test states its attack in its name and checks the points (no more than a
blank notebook would earn, unless the attack is honest work) and the flag an instructor sees.
"""

from __future__ import annotations

import uuid

import pytest
from fixtures.attacks import (
    BIG_OUTPUT_CODE,
    NETWORK_CODE,
    Target,
    auto_points,
    detached_code,
    digest,
    edit_points,
    exported_row,
    flags,
    flip_solution_flag,
    grade_class,
    graded_outputs,
    markdown_cell,
    monkeypatch,
    notes,
    overwrite_code,
    prepend,
    probe_code,
    read_values_code,
    regenerate_with_leak,
    rename_grade_id,
    replace,
    survivors,
)
from fixtures.grading_helpers import FIXTURE_COURSE, scratch_course, solution_notebooks

from course_tools.grading.release import generate_release

pytestmark = [pytest.mark.grading, pytest.mark.slow]

ASSIGNMENT = "mean_variance"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
AUTOGRADED_POINTS = 5.0  # test_visible 1 + test_mean_hidden 2 + test_variance_hidden 2
MARKER = f"ct-attack-{uuid.uuid4().hex[:12]}"  # names the detached process of this run


TARGET = Target(
    assignment=ASSIGNMENT,
    notebook=NOTEBOOK,
    function="trial_mean(responses)",
    function_cell="trial_mean",
    reference_key="trial_mean_held_out",
    wrong_answers={
        "trial_mean": "def trial_mean(responses):\n    return _np.ones(_np.shape(responses)[1])\n"
    },
)


def _attacks(course) -> dict:
    """student id -> function that turns the solution notebook into the attack."""
    return {
        "honest": lambda nb: nb,
        "reads-instructor-files": prepend("trial_mean", probe_code(course, TARGET)),
        "returns-reference-values": replace("trial_mean", read_values_code(course, TARGET)),
        "overwrites-references-and-neighbours": prepend(
            "trial_mean", overwrite_code(course, TARGET)
        ),
        "monkeypatches-numpy-and-checks": monkeypatch(TARGET),
        "detached-process": prepend("trial_mean", detached_code(MARKER)),
        "no-network": prepend("trial_mean", NETWORK_CODE),
        "big-output": prepend("trial_mean", BIG_OUTPUT_CODE),
        "careless-solution-flag": flip_solution_flag("test_visible"),
        "careless-renamed-grade-id": rename_grade_id("trial_variance", "my_variance"),
        "careless-edited-points": edit_points("test_mean_hidden", 100),
        "careless-cell-type": markdown_cell("test_variance_hidden"),
    }


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    course = scratch_course(FIXTURE_COURSE, ASSIGNMENT, tmp_path_factory.mktemp("attacks"))
    generate_release(course, ASSIGNMENT)
    solution = solution_notebooks(course, ASSIGNMENT)[NOTEBOOK]
    submissions = {student: attack(solution) for student, attack in _attacks(course).items()}
    report, scores, instructor_files = grade_class(
        course, TARGET, submissions, linked="reads-instructor-files"
    )
    return course, report, scores, instructor_files


def test_honest_work_gets_full_marks_in_the_sandbox(attacked):
    course, report, scores, _ = attacked
    assert report.autograde.sandboxed
    assert auto_points(scores, "honest") == AUTOGRADED_POINTS
    assert not flags(report, "honest") and not notes(report, "honest")


def test_attack_reading_instructor_files_sees_nothing(attacked):
    course, report, scores, _ = attacked
    outputs = graded_outputs(course, TARGET, "reads-instructor-files")
    assert "PROBED" in outputs  # the attack ran
    assert "LEAK" not in outputs  # references, mutants, source, gradebook, classmates, home
    assert (
        auto_points(scores, "reads-instructor-files") == AUTOGRADED_POINTS
    )  # the answers are honest


def test_attack_returning_reference_values_earns_what_blank_earns(attacked):
    _, _, scores, _ = attacked
    cells = scores["returns-reference-values"]
    # trial_mean raises (no references anywhere): its tests score 0; trial_variance is honest.
    assert cells["test_mean_hidden"].auto_score == 0
    assert cells["test_visible"].auto_score == 0
    assert cells["test_variance_hidden"].auto_score == 2


def test_attack_overwriting_references_and_neighbours_changes_nothing(attacked):
    course, report, scores, instructor_files = attacked
    outputs = graded_outputs(course, TARGET, "overwrites-references-and-neighbours")
    # Its private copy is writable (and thrown away); nothing of the course is.
    assert "WROTE references.npz" in outputs  # the attack ran, in its private folder
    assert f"WROTE {course}" not in outputs and "WROTE gradebook" not in outputs
    assert {p: digest(p) for p in instructor_files} == instructor_files
    assert auto_points(scores, "honest") == AUTOGRADED_POINTS  # graded beside it with --jobs 2
    assert auto_points(scores, "overwrites-references-and-neighbours") == AUTOGRADED_POINTS


def test_attack_monkeypatching_numpy_and_checks_earns_nothing_and_is_flagged(attacked):
    _, report, scores, _ = attacked
    cells = scores["monkeypatches-numpy-and-checks"]
    # Wrong trial_mean with numpy's comparisons and check_reference patched: the grader, not the
    # kernel, compares, and nothing was recorded.
    assert cells["test_mean_hidden"].auto_score == 0
    assert cells["test_visible"].auto_score == 0
    assert any("globals()" in f for f in flags(report, "monkeypatches-numpy-and-checks"))


def test_attack_detached_process_dies_with_the_sandbox(attacked):
    course, _, scores, _ = attacked
    assert "STARTED detached" in graded_outputs(course, TARGET, "detached-process")
    assert survivors(MARKER) == []
    assert auto_points(scores, "detached-process") == AUTOGRADED_POINTS
    assert all(r.manual_score is None for r in scores["detached-process"].values())


def test_attack_network_is_unreachable(attacked):
    course, _, _, _ = attacked
    outputs = graded_outputs(course, TARGET, "no-network")
    assert "NO NETWORK" in outputs and "NETWORK reachable" not in outputs


def test_attack_big_output_is_cut_in_bytes(attacked):
    course, _, scores, _ = attacked
    graded = course / "autograded" / "big-output" / ASSIGNMENT / NOTEBOOK
    assert graded.stat().st_size < 500_000  # 20 MB printed, 100 kB kept per cell
    assert "output truncated" in graded.read_text()
    feedback = next((course / "feedback" / "big-output" / ASSIGNMENT).glob("*.html"))
    assert feedback.stat().st_size < 1_500_000
    assert auto_points(scores, "big-output") == AUTOGRADED_POINTS


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
    assert auto_points(scores, student) == AUTOGRADED_POINTS
    assert sum(r.max_score for r in scores[student].values()) == 6  # points as the instructor set
    assert "metadata-restored" in notes(report, student)


@pytest.mark.parametrize("student", ["empty-submission", "unreadable-json"])
def test_empty_or_unreadable_submission_has_a_zero_row_with_the_reason(attacked, student):
    _, report, _, _ = attacked
    row = exported_row(report, student)
    assert float(row["score"]) == 0
    reason = "missing" if student == "empty-submission" else "unreadable"
    assert reason in row["notes"]


def test_feedback_return_step_rescans_regenerated_feedback(attacked):
    course, _, _, _ = attacked
    # The documented return step regenerates feedback and scans it again: a hidden test line that
    # reached the graded notebook (as exfiltrated output would) is caught and its HTML deleted.
    line = "held_out = rng.normal(loc=2.0, scale=3.0, size=(19, 6))"
    report = regenerate_with_leak(course, TARGET, "honest", line)
    assert any("shows hidden test line" in p for p in report.problems)
    assert not list((course / "feedback" / "honest" / ASSIGNMENT).glob("*.html"))
