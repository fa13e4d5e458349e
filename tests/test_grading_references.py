"""check_reference records and compares reference outputs; Mutant definitions are validated."""

from __future__ import annotations

import nbformat
import numpy as np
import pytest

from course_tools.grading import Mutant, ReferenceMismatch, check_reference, load_mutants
from course_tools.grading.conventions import RECORD_ENV_VAR, REFERENCES_ENV_VAR
from course_tools.grading.references import compare_reference_files, load_references


@pytest.fixture()
def recorded(tmp_path, monkeypatch):
    """A references file with two quantities, recorded through the public API."""
    path = tmp_path / "references.npz"
    monkeypatch.setenv(RECORD_ENV_VAR, str(path))
    check_reference("variance", np.array([1.0, 4.0, 9.0]))
    check_reference("flags", np.array([True, False]))
    monkeypatch.delenv(RECORD_ENV_VAR)
    monkeypatch.setenv(REFERENCES_ENV_VAR, str(path))
    return path


def test_record_writes_exact_values(recorded):
    values = load_references(recorded)
    assert sorted(values) == ["flags", "variance"]
    np.testing.assert_array_equal(values["variance"], [1.0, 4.0, 9.0])


def test_recording_a_name_twice_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv(RECORD_ENV_VAR, str(tmp_path / "r.npz"))
    check_reference("x", 1.0)
    with pytest.raises(ValueError, match="recorded twice"):
        check_reference("x", 2.0)


def test_values_within_tolerance_pass(recorded):
    check_reference("variance", np.array([1.0, 4.0, 9.0]) * (1 + 1e-9), rtol=1e-6)
    check_reference("flags", [True, False])


def test_mismatch_names_quantity_and_error_but_not_reference(recorded):
    with pytest.raises(ReferenceMismatch) as info:
        check_reference("variance", np.array([1.0, 4.5, 9.0]), rtol=1e-6, atol=0)
    message = str(info.value)
    assert isinstance(info.value, AssertionError)
    assert "variance is off" in message
    assert "max absolute error 0.5" in message
    assert "max relative error 0.125" in message  # 0.5 / 4, computed by hand
    assert "rtol=1e-06" in message and "1 of 3 values" in message
    for secret in ("4.0", "9.0", "[1."):
        assert secret not in message


def test_shape_mismatch_says_shapes(recorded):
    with pytest.raises(ReferenceMismatch, match=r"shape \(1, 3\) but should have shape \(3,\)"):
        check_reference("variance", np.array([[1.0, 4.0, 9.0]]))


def test_nan_in_wrong_place(recorded):
    with pytest.raises(ReferenceMismatch, match="1 unexpected NaN"):
        check_reference("variance", np.array([1.0, np.nan, 9.0]))


def test_boolean_mismatch(recorded):
    with pytest.raises(ReferenceMismatch, match="1 of 2 True/False"):
        check_reference("flags", [True, True])


def test_bad_inputs_raise_clear_errors(recorded):
    with pytest.raises(TypeError, match="numeric"):
        check_reference("variance", "not a number")
    with pytest.raises(ValueError, match="identifiers"):
        check_reference("my variance", 1.0)
    with pytest.raises(ValueError, match="Tolerances"):
        check_reference("variance", [1.0, 4.0, 9.0], rtol=-1)
    with pytest.raises(KeyError, match="No reference named 'missing'"):
        check_reference("missing", 1.0)


def test_students_without_references_get_an_explanation(tmp_path, monkeypatch):
    monkeypatch.delenv(REFERENCES_ENV_VAR, raising=False)
    monkeypatch.delenv(RECORD_ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="only for instructors and for grading"):
        check_reference("anything", 1.0)


def test_compare_reference_files(tmp_path):
    old, new = tmp_path / "old.npz", tmp_path / "new.npz"
    np.savez(old, same=np.arange(3.0), moved=np.zeros(2), gone=np.ones(1))
    np.savez(new, same=np.arange(3.0), moved=np.array([0.0, 0.25]), fresh=np.ones(1))
    changes = {c.name: c for c in compare_reference_files(old, new)}
    assert {n: c.status for n, c in changes.items()} == {
        "fresh": "new",
        "gone": "removed",
        "moved": "changed",
        "same": "unchanged",
    }
    assert changes["moved"].max_abs_change == pytest.approx(0.25)


def _wrong(x):
    return x


def test_mutant_validation():
    with pytest.raises(ValueError, match="replaces nothing"):
        Mutant("m", "d", {}, ["t"])
    with pytest.raises(ValueError, match="must_fail"):
        Mutant("m", "d", {"f": _wrong}, [])
    with pytest.raises(ValueError, match="must_fail"):
        Mutant("m", "d", {"f": _wrong}, "test_hidden")
    with pytest.raises(TypeError, match="must be a function"):
        Mutant("m", "d", {"f": 3}, ["t"])
    with pytest.raises(ValueError, match="identifiers"):
        Mutant("two words", "d", {"f": _wrong}, ["t"])
    assert Mutant("m", "d", {"f": _wrong}, ["t"]).function_names() == {"f": "_wrong"}


def test_load_mutants_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No mutants file"):
        load_mutants(tmp_path / "mutants.py")
    empty = tmp_path / "empty.py"
    empty.write_text("MUTANTS = []\n")
    with pytest.raises(ValueError, match="non-empty list"):
        load_mutants(empty)
    nested = tmp_path / "nested.py"
    nested.write_text(
        "from course_tools.grading import Mutant\n"
        "def outer():\n    def inner(x):\n        return x\n    return inner\n"
        "MUTANTS = [Mutant('m', 'd', {'f': outer()}, ['t'])]\n"
    )
    with pytest.raises(ValueError, match="not a top-level function"):
        load_mutants(nested)


def _recording(name, value, **payload):
    from course_tools.grading.references import RECORDING_MIME, encode_array

    data = {"name": name, "rtol": 1.0, "atol": 1.0, "npy": encode_array(np.asarray(value))}
    data.update(payload)
    return nbformat.v4.new_output("display_data", data={RECORDING_MIME: data})


SPEC = {"variance": {"rtol": 1e-6, "atol": 0.0, "cell": "t", "notebook": "n.ipynb"}}
REFS = {"variance": np.array([1.0, 4.0, 9.0])}


def test_grader_passes_a_matching_recording_with_its_own_tolerance():
    from course_tools.grading.verdict import judge_cell

    ok = judge_cell("t", [_recording("variance", [1.0, 4.0, 9.0 + 1e-7])], SPEC, REFS)
    assert ok.passed
    # The kernel claims rtol=1 in its payload; the grader uses the instructor's 1e-6.
    off = judge_cell("t", [_recording("variance", [1.0, 4.5, 9.0])], SPEC, REFS)
    assert off.problems and "rtol=1e-06" in off.problems[0]
    assert "4.0" not in off.problems[0] and "9.0" not in off.problems[0]


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ([], "no value was recorded"),
        ([_recording("other", [1.0, 4.0, 9.0])], "no value was recorded"),
        ([_recording("variance", [[1.0, 4.0, 9.0]])], "shape (1, 3) but should have shape (3,)"),
        ([_recording("variance", 0, npy="not base64!")], "not a readable numeric array"),
        (
            [_recording("variance", [1.0, 4.0, 9.0]), _recording("variance", [0.0, 0.0, 0.0])],
            "variance is off",
        ),
    ],
    ids=["nothing", "wrong-name", "wrong-shape", "malformed", "second-recording-wrong"],
)
def test_grader_fails_missing_malformed_or_wrong_recordings(outputs, message):
    from course_tools.grading.verdict import judge_cell

    verdict = judge_cell("t", outputs, SPEC, REFS)
    assert not verdict.passed and message in verdict.problems[0]


def test_grader_marks_the_cell_and_strips_values_and_partial_credit(tmp_path):
    from course_tools.grading.references import save_references
    from course_tools.grading.verdict import judge_notebook

    path = tmp_path / "references.npz"
    save_references(path, REFS, SPEC)
    meta = {"nbgrader": {"grade": True, "solution": False, "locked": True, "grade_id": "t",
                         "points": 2, "schema_version": 3}}  # fmt: skip
    cell = nbformat.v4.new_code_cell("check_reference(...)", metadata=meta)
    cell.outputs = [
        nbformat.v4.new_output("execute_result", data={"text/plain": "2"}, execution_count=1),
        _recording("variance", [1.0, 4.5, 9.0]),
    ]
    nb = nbformat.v4.new_notebook(cells=[cell])
    (verdict,) = judge_notebook(nb, "n.ipynb", path)
    assert not verdict.passed
    kinds = [o.output_type for o in nb.cells[0].outputs]
    assert kinds == ["error"]  # the grader's failure first; no fake partial credit, no values
    assert nb.cells[0].outputs[0].ename == "ReferenceMismatch"
