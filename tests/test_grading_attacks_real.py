"""Issue 14's attacks on grading, replayed against the real ``architectures`` assignment.

``test_grading_attacks.py`` replays every attack on the small fixture course; this module replays
the same attacks (:mod:`fixtures.attacks`) where they matter most: a real assignment, with torch,
shipped models and 16 points, graded once with ``--jobs 2`` in the sandbox. The blank release is
graded in the same run, as the baseline: an attack must earn no point, cell by cell, that the
blank notebook does not earn, unless the attack sits on top of honest work, which must then earn
exactly what the honest solution earns. Each full solution costs about half a minute of CPU, so
attacks that cannot change each other's verdicts share a notebook; each test still names its
attack and asserts its points and its flag. Marked ``exhaustive``: ``make test-all`` only.
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
from fixtures.grading_helpers import REAL_COURSE, scratch_course, solution_notebooks

from course_tools.grading.notebooks import nbgrader_meta, read_notebook
from course_tools.grading.release import generate_release

pytestmark = [pytest.mark.grading, pytest.mark.slow, pytest.mark.exhaustive]

ASSIGNMENT = "architectures"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
#: test_blocks 1 + 2, test_gradient_norms 1 + 2, test_attention 1 + 3, test_erf 1 + 2; the
#: remaining 3 points (answer_interpretation) are graded by hand.
AUTOGRADED_POINTS = 13.0
TOTAL_POINTS = 16.0
MARKER = f"ct-attack-real-{uuid.uuid4().hex[:12]}"  # names the detached process of this run

#: Wrong answers with the right shapes and types: with numpy's and torch's comparisons patched,
#: every assertion in the kernel passes.
WRONG_ANSWERS = {
    "blocks": """
class PlainBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        return torch.ones_like(x)


class ResidualBlock(PlainBlock):
    pass
""",
    "gradient_norms": """
def layer_gradient_norms(model, images, labels):
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    return _np.ones(len(layers))
""",
    "attention_distance": """
def mean_attention_distance(attention, patch_size):
    return _np.ones(_np.shape(attention)[1])
""",
    "erf": """
def effective_rf_size(network, images):
    return 1.0
""",
}

TARGET = Target(
    assignment=ASSIGNMENT,
    notebook=NOTEBOOK,
    function="mean_attention_distance(attention, patch_size)",
    function_cell="attention_distance",
    reference_key="attention_distance_local",
    wrong_answers=WRONG_ANSWERS,
)

#: The careless metadata edits, all in one notebook (each cell is restored on its own).
CARELESS = {
    "test_blocks_visible": flip_solution_flag("test_blocks_visible"),
    "gradient_norms": rename_grade_id("gradient_norms", "my_gradient_norms"),
    "test_attention_hidden": edit_points("test_attention_hidden", 100),
    "test_erf_hidden": markdown_cell("test_erf_hidden"),
}

#: Honest answers with the attacks that must not change them: read the instructor's files, then
#: overwrite every references file it can reach (its own, the instructor's, the classmate graded
#: beside it), start a detached process, try the network; print 20 MB in another cell.
HOSTILE = "honest-plus-attacks"


def _hostile(course):
    attacks = probe_code(course, TARGET) + overwrite_code(course, TARGET)
    attacks += detached_code(MARKER) + NETWORK_CODE

    def attack(nb):
        nb = prepend("blocks", attacks)(nb)
        return prepend("gradient_norms", BIG_OUTPUT_CODE)(nb)

    return attack


def _careless(nb):
    for edit in CARELESS.values():
        nb = edit(nb)
    return nb


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    course = scratch_course(REAL_COURSE, ASSIGNMENT, tmp_path_factory.mktemp("attacks_real"))
    generate_release(course, ASSIGNMENT)
    solution = solution_notebooks(course, ASSIGNMENT)[NOTEBOOK]
    blank = read_notebook(course / "release" / ASSIGNMENT / NOTEBOOK)
    reads_references = replace(TARGET.function_cell, read_values_code(course, TARGET))
    submissions = {
        "honest": solution,
        "blank": blank,
        HOSTILE: _hostile(course)(solution),
        "returns-reference-values": reads_references(blank),
        "monkeypatches-numpy-torch-and-checks": monkeypatch(TARGET)(blank),
        "careless-metadata": _careless(solution),
    }
    report, scores, instructor_files = grade_class(course, TARGET, submissions, linked=HOSTILE)
    return course, report, scores, instructor_files


def _per_cell(scores, student) -> dict[str, float | None]:
    """Autograded points of every test cell."""
    return {c: r.auto_score for c, r in scores[student].items() if c.startswith("test_")}


def _errors(course, student) -> dict[str, set[str]]:
    """Names of the errors shown in every test cell of the student's graded notebook."""
    nb = read_notebook(course / "autograded" / student / ASSIGNMENT / NOTEBOOK)
    return {
        nbgrader_meta(c)["grade_id"]: {o.get("ename") for o in c.get("outputs", []) if "ename" in o}
        for c in nb.cells
        if nbgrader_meta(c).get("grade_id", "").startswith("test_")
    }


def test_blank_release_earns_nothing_and_honest_work_full_marks(attacked):
    _, report, scores, _ = attacked
    assert report.autograde.sandboxed
    broken = {"empty-submission", "unreadable-json"}  # expected to fail (a row with the reason)
    assert [o.student for o in report.autograde.failed] == sorted(broken), [
        (o.student, o.log[-500:]) for o in report.autograde.failed if o.student not in broken
    ]
    assert auto_points(scores, "blank") == 0
    assert auto_points(scores, "honest") == AUTOGRADED_POINTS
    assert not flags(report, "honest") and not notes(report, "honest")


def test_attack_reading_instructor_files_sees_nothing(attacked):
    course, _, scores, _ = attacked
    printed = graded_outputs(course, TARGET, HOSTILE)
    assert "PROBED" in printed  # the attack ran
    assert "LEAK" not in printed  # references, mutants, source, gradebook, classmates, home
    assert _per_cell(scores, HOSTILE) == _per_cell(scores, "honest")  # honest answers


def test_attack_returning_reference_values_earns_what_blank_earns(attacked):
    course, _, scores, _ = attacked
    # No copy of the references is readable: the function raises, as the blank one does.
    assert _per_cell(scores, "returns-reference-values") == _per_cell(scores, "blank")
    shown = _errors(course, "returns-reference-values")["test_attention_hidden"]
    assert "NotImplementedError" in shown


def test_attack_overwriting_references_and_neighbours_changes_nothing(attacked):
    course, _, scores, instructor_files = attacked
    printed = graded_outputs(course, TARGET, HOSTILE)
    assert "WROTE references.npz" in printed  # the attack ran, in its private folder
    assert f"WROTE {course}" not in printed and "WROTE gradebook" not in printed
    assert {p: digest(p) for p in instructor_files} == instructor_files
    # The classmate graded beside it (--jobs 2) keeps every point.
    assert _per_cell(scores, "honest") == {
        "test_blocks_visible": 1,
        "test_blocks_hidden": 2,
        "test_gradient_norms_visible": 1,
        "test_gradient_norms_hidden": 2,
        "test_attention_visible": 1,
        "test_attention_hidden": 3,
        "test_erf_visible": 1,
        "test_erf_hidden": 2,
    }
    assert auto_points(scores, HOSTILE) == AUTOGRADED_POINTS


def test_attack_monkeypatching_numpy_torch_and_checks_earns_what_blank_earns_and_is_flagged(
    attacked,
):
    course, report, scores, _ = attacked
    student = "monkeypatches-numpy-torch-and-checks"
    # Wrong answers in all four parts, with np.allclose, np.isclose, torch.allclose,
    # assert_allclose and check_reference patched: the grader, not the kernel, compares, and
    # nothing was recorded.
    assert _per_cell(scores, student) == _per_cell(scores, "blank")
    assert any("globals()" in f for f in flags(report, student))
    # The patch worked in the kernel: no assertion there failed; only the grader's verdicts show.
    assert all(names == {"ReferenceMismatch"} for names in _errors(course, student).values())


def test_attack_detached_process_dies_with_the_sandbox(attacked):
    course, _, scores, _ = attacked
    assert "STARTED detached" in graded_outputs(course, TARGET, HOSTILE)
    assert survivors(MARKER) == []
    assert all(r.manual_score is None for r in scores[HOSTILE].values())


def test_attack_network_is_unreachable(attacked):
    course, _, _, _ = attacked
    printed = graded_outputs(course, TARGET, HOSTILE)
    assert "NO NETWORK" in printed and "NETWORK reachable" not in printed


def test_attack_big_output_is_cut_in_bytes(attacked):
    course, _, scores, _ = attacked

    def sizes(student):
        graded = course / "autograded" / student / ASSIGNMENT / NOTEBOOK
        feedback = next((course / "feedback" / student / ASSIGNMENT).glob("*.html"))
        return graded, graded.stat().st_size, feedback.stat().st_size

    graded, notebook_size, feedback_size = sizes(HOSTILE)
    _, honest_notebook, honest_feedback = sizes("honest")
    # 20 MB printed, 100 kB kept per cell: beside the honest notebook's figures, a few 100 kB.
    assert notebook_size < honest_notebook + 500_000
    assert feedback_size < honest_feedback + 1_500_000
    assert "output truncated" in graded.read_text()
    assert _per_cell(scores, HOSTILE)["test_gradient_norms_hidden"] == 2


def test_careless_metadata_edits_grade_with_instructor_cells_and_flag(attacked):
    _, report, scores, _ = attacked
    student = "careless-metadata"
    assert _per_cell(scores, student) == _per_cell(scores, "honest")
    assert sum(r.max_score for r in scores[student].values()) == TOTAL_POINTS
    outcome = next(o for o in report.autograde.outcomes if o.student == student)
    (restored,) = [n.message for n in outcome.notes if n.kind == "metadata-restored"]
    for grade_id in CARELESS:
        assert grade_id in restored


@pytest.mark.parametrize("student", ["empty-submission", "unreadable-json"])
def test_empty_or_unreadable_submission_has_a_zero_row_with_the_reason(attacked, student):
    _, report, _, _ = attacked
    row = exported_row(report, student)
    assert float(row["score"]) == 0
    reason = "missing" if student == "empty-submission" else "unreadable"
    assert reason in row["notes"]


def test_feedback_return_step_rescans_regenerated_feedback(attacked):
    course, _, _, _ = attacked
    # Last in this module: it changes the honest student's graded notebook. A hidden test line
    # that reached it (as exfiltrated output would) is caught when feedback is regenerated.
    report = regenerate_with_leak(course, TARGET, "honest", "torch.manual_seed(55102)")
    assert any("shows hidden test line" in p for p in report.problems)
    assert not list((course / "feedback" / "honest" / ASSIGNMENT).glob("*.html"))
