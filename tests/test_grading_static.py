"""Grading checks that need no kernel: notebook metadata, leak check, tamper scan, feedback."""

from __future__ import annotations

import shutil

import nbformat
import pytest
from fixtures.grading_helpers import FIXTURE_COURSE, REAL_COURSE, all_assignments, assignment_ids
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_tools.grading.feedback import HideHiddenTests, find_feedback_leaks
from course_tools.grading.hooks import output_folder, remove_instructor_files
from course_tools.grading.leakcheck import find_release_leaks, secret_lines
from course_tools.grading.notebooks import (
    graded_cells,
    read_notebook,
    solution_submission,
    validate_source_notebook,
)
from course_tools.grading.readymade import find_ready_made
from course_tools.grading.submissions import stage_submission
from course_tools.grading.tamper import scan_notebook

FIXTURE = FIXTURE_COURSE / "source" / "mean_variance"
NOTEBOOK = FIXTURE / "mean_variance.ipynb"
REAL_SOURCE = REAL_COURSE / "source"


@pytest.mark.parametrize(("course", "assignment"), all_assignments(), ids=assignment_ids())
def test_every_source_notebook_has_valid_metadata_and_no_outputs(course, assignment):
    notebooks = sorted((course / "source" / assignment).glob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        assert validate_source_notebook(path) == []
    assert (course / "source" / assignment / "mutants.py").is_file()
    assert (course / "source" / assignment / "references.npz").is_file()


def _meta(grade_id, **flags):
    meta = {
        "grade": False,
        "solution": False,
        "locked": False,
        "schema_version": 3,
        "grade_id": grade_id,
    }
    meta.update(flags)
    return {"nbgrader": meta}


def _write(tmp_path, cells, name="bad.ipynb"):
    path = tmp_path / name
    nbformat.write(new_notebook(cells=cells), path)
    return path


def test_validation_finds_each_problem(tmp_path):
    with_output = new_code_cell("1", metadata=_meta("a", grade=True, locked=True, points=1))
    with_output.outputs = [nbformat.v4.new_output("stream", text="1")]
    cells = [
        with_output,
        new_code_cell("x = 1", metadata=_meta("a", grade=True, locked=True, points=0)),
        new_code_cell("### BEGIN SOLUTION\nx = 1", metadata=_meta("b", locked=True)),
        new_code_cell("### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS", metadata={}),
        new_code_cell("y = 2", metadata=_meta("c", schema_version=2)),
    ]
    problems = "\n".join(validate_source_notebook(_write(tmp_path, cells)))
    assert "has outputs" in problems
    assert "grade_id also used" in problems
    assert "positive 'points'" in problems
    assert "not a solution cell" in problems
    assert "without '### END SOLUTION'" in problems
    assert "without nbgrader metadata" in problems
    assert "schema_version 2" in problems
    assert "cell 0 (a): an autograded test cell must record what it checks" in problems


def test_graded_cells_of_fixture():
    cells = {c.grade_id: c for c in graded_cells(read_notebook(NOTEBOOK))}
    assert set(cells) == {"test_visible", "test_mean_hidden", "test_variance_hidden", "answer_ddof"}
    # Every test cell's points rest on values the grader compares: the visible one records too.
    assert [cells[k].hidden for k in ("test_visible", "test_mean_hidden")] == [True, True]
    assert cells["answer_ddof"].autograded is False
    assert sum(c.points for c in cells.values()) == 6


def _release_like(source_nb):
    """What nbgrader's release looks like: solutions stubbed, hidden tests removed."""
    nb = nbformat.from_dict(source_nb)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            cell.source = "# YOUR CODE HERE\nraise NotImplementedError()"
        lines, hidden = [], False
        for line in cell.source.split("\n"):
            if "BEGIN HIDDEN TESTS" in line:
                hidden = True
            elif "END HIDDEN TESTS" in line:
                hidden = False
            elif not hidden:
                lines.append(line)
        cell.source = "\n".join(lines)
    return nb


def test_leak_check_accepts_clean_release_and_names_each_leak(tmp_path):
    release = tmp_path / "release"
    release.mkdir()
    nbformat.write(_release_like(read_notebook(NOTEBOOK)), release / NOTEBOOK.name)
    assert find_release_leaks(FIXTURE, release) == []

    leaky = _release_like(read_notebook(NOTEBOOK))
    leaky.cells[2].source = read_notebook(NOTEBOOK).cells[2].source  # solution kept
    leaky.cells[
        5
    ].source += '\ncheck_reference("trial_mean_held_out", trial_mean(held_out), rtol=1e-9)'
    nbformat.write(leaky, release / NOTEBOOK.name)
    shutil.copy(FIXTURE / "references.npz", release)
    (release / "gradebook.db").write_text("")
    reasons = {(leak.path, leak.reason) for leak in find_release_leaks(FIXTURE, release)}
    text = "\n".join(f"{p}: {r}" for p, r in sorted(reasons))
    assert "references.npz: instructor-only file" in text
    assert "gradebook.db: not a file of the assignment's source folder" in text
    assert "marker '### BEGIN SOLUTION'" in text
    assert "solution text: 'return np.mean(responses, axis=0)'" in text
    assert "hidden test text" in text


def test_secret_lines_skip_lines_that_are_also_public():
    secrets = secret_lines(NOTEBOOK)
    assert "return np.var(responses, axis=0, ddof=1)" in secrets["solution"]
    assert "held_out = rng.normal(loc=2.0, scale=3.0, size=(19, 6))" in secrets["hidden test"]
    assert "import numpy as np" not in secrets["solution"] | secrets["hidden test"]


def test_solution_submission_fills_answers_without_markers():
    source = read_notebook(NOTEBOOK)
    filled = solution_submission(source, _release_like(source))
    text = "\n".join(c.source for c in filled.cells)
    answers = "\n".join(c.source for c in filled.cells if c.metadata.nbgrader.get("solution"))
    assert "return np.var(responses, axis=0, ddof=1)" in answers
    assert "BEGIN SOLUTION" not in text and "NotImplementedError" not in answers
    assert "held_out" not in text  # hidden tests stay out


def _submission(*extra_cells, edit=None):
    nb = solution_submission(read_notebook(NOTEBOOK), _release_like(read_notebook(NOTEBOOK)))
    if edit:
        edit(nb)
    nb.cells.extend(extra_cells)
    return nb


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (
            "np.testing.assert_allclose = lambda *a, **k: None",
            "assigns to np.testing.assert_allclose",
        ),
        (
            "import numpy.testing as npt\nnpt.assert_allclose = print",
            "assigns to npt.assert_allclose",
        ),
        ("check_reference = print", "redefines 'check_reference'"),
        ("def check_reference(*args, **kwargs):\n    pass", "redefines 'check_reference'"),
        ("AssertionError = Warning", "redefines the builtin 'AssertionError'"),
        ("import builtins\nbuiltins.round = lambda x: 0", "assigns to builtins.round"),
        ("__builtins__.abs = lambda x: 0", "uses __builtins__"),
        ("setattr(np.testing, 'assert_allclose', print)", "calls setattr on np.testing"),
        (
            "from unittest import mock\nmock.patch('numpy.testing.assert_allclose').start()",
            "monkeypatches with mock.patch",
        ),
        ("exec('check_' + 'reference = print')", "runs code from a string with exec()"),
        ("import pandas as np", "imports pandas as 'np'"),
        ("globals()['check_reference'] = print", "assigns to globals()['check_reference']"),
        ("def assert_allclose(*a, **k):\n    pass", "defines 'assert_allclose'"),
    ],
)
def test_tamper_scan_flags_each_trick(tmp_path, code, reason):
    path = tmp_path / NOTEBOOK.name
    nbformat.write(_submission(new_code_cell(code)), path)
    reasons = [f.reason for f in scan_notebook(path, NOTEBOOK, student="eve")]
    assert any(r.startswith(reason) for r in reasons), reasons


def test_tamper_scan_is_quiet_for_honest_code(tmp_path):
    honest = new_code_cell(
        "import matplotlib.pyplot as plt\nfrom numpy.testing import assert_allclose\n"
        "def helper(x):\n    max = x.max()\n    return max\n"
        "result = trial_mean(np.ones((2, 3)))\nassert_allclose(result, 1.0)\n%matplotlib inline"
    )
    path = tmp_path / NOTEBOOK.name
    nbformat.write(_submission(honest), path)
    assert scan_notebook(path, NOTEBOOK) == []


def test_tamper_scan_reports_edited_and_deleted_locked_cells(tmp_path):
    def edit(nb):
        nb.cells[4].source = "pass"  # the visible test
        del nb.cells[6]  # the variance hidden test cell

    path = tmp_path / NOTEBOOK.name
    nbformat.write(_submission(edit=edit), path)
    found = {(f.cell, f.reason) for f in scan_notebook(path, NOTEBOOK)}
    assert found == {
        ("test_visible", "locked cell edited"),
        ("test_variance_hidden", "locked cell deleted"),
    }


def test_hide_hidden_tests_keeps_visible_part_and_error_line():
    cell = new_code_cell(
        "assert f(1) == 1\n### BEGIN HIDDEN TESTS\nsecret = 42\ncheck_reference('x', f(secret))\n"
        "### END HIDDEN TESTS",
        metadata=_meta("t", grade=True, locked=True, points=1),
    )
    cell.outputs = [
        nbformat.v4.new_output("stream", text="42\n"),
        nbformat.v4.new_output(
            "error",
            ename="ReferenceMismatch",
            evalue="x is off",
            traceback=["---> 4 check_reference('x', f(secret))"],
        ),
    ]
    out, _ = HideHiddenTests().preprocess_cell(cell, {}, 0)
    assert "secret" not in out.source and out.source.startswith("assert f(1) == 1\n# (hidden")
    assert [o.output_type for o in out.outputs] == ["error"]
    assert out.outputs[0].traceback == ["ReferenceMismatch: x is off"]


def test_feedback_leak_scan(tmp_path):
    (tmp_path / "ok.html").write_text("<pre><span>assert</span> trial_mean(x)</pre>")
    assert find_feedback_leaks(tmp_path, [NOTEBOOK]) == []
    (tmp_path / "bad.html").write_text(
        "<span>rng</span> = np.random.default_rng(<span>52017</span>)"
    )
    (tmp_path / "mutants.py").write_text("")
    problems = "\n".join(find_feedback_leaks(tmp_path, [NOTEBOOK]))
    assert "shows hidden test line 'rng = np.random.default_rng(52017)'" in problems
    assert "mutants.py: instructor-only file" in problems


def test_hook_removes_instructor_files_from_release(tmp_path, monkeypatch):
    release = tmp_path / "release" / "a"
    release.mkdir(parents=True)
    (release / "references.npz").write_text("")
    (release / "data.csv").write_text("")
    (tmp_path / "source" / "a").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert output_folder(tmp_path / "source" / "a" / "a.ipynb", tmp_path) == release
    assert output_folder(tmp_path / "autograded" / "s" / "a" / "a.ipynb", tmp_path) == (
        tmp_path / "feedback" / "s" / "a"
    )
    removed = remove_instructor_files(notebooks=[str(tmp_path / "source" / "a" / "a.ipynb")])
    assert removed == [release / "references.npz"]
    assert (release / "data.csv").exists()


def test_staging_renames_a_single_renamed_notebook(tmp_path):
    folder = tmp_path / "submitted" / "ann" / "mean_variance"
    folder.mkdir(parents=True)
    nbformat.write(_submission(), folder / "Copy of mean_variance.ipynb")
    notes = stage_submission(tmp_path, "mean_variance", "ann", [NOTEBOOK])
    assert [(n.kind, n.notebook) for n in notes] == [("renamed", "mean_variance.ipynb")]
    staged = tmp_path / ".course_tools" / "staged" / "ann" / "mean_variance"
    assert sorted(p.name for p in staged.iterdir()) == ["mean_variance.ipynb"]
    assert (folder / "Copy of mean_variance.ipynb").exists()  # the submission is untouched


def test_staging_reports_missing_unexpected_and_deleted_cells(tmp_path):
    folder = tmp_path / "submitted" / "bob" / "mean_variance"
    folder.mkdir(parents=True)
    other = tmp_path / "source" / "other.ipynb"
    other.parent.mkdir()
    shutil.copy(NOTEBOOK, other)
    nbformat.write(_submission(edit=lambda nb: nb.cells.pop(5)), folder / "mean_variance.ipynb")
    nbformat.write(new_notebook(cells=[new_markdown_cell("hi")]), folder / "a.ipynb")
    nbformat.write(new_notebook(cells=[new_markdown_cell("hi")]), folder / "b.ipynb")
    notes = stage_submission(tmp_path, "mean_variance", "bob", [NOTEBOOK, other])
    kinds = sorted((n.kind, n.notebook) for n in notes)
    assert kinds == [
        ("deleted-cell", "mean_variance.ipynb"),
        ("missing", "other.ipynb"),
        ("unexpected", "a.ipynb"),
        ("unexpected", "b.ipynb"),
    ]
    deleted = next(n for n in notes if n.kind == "deleted-cell")
    assert "'test_mean_hidden' deleted: 0 of 2 points" in deleted.message


def test_autograde_preprocessors_are_nbgraders_with_execute_replaced():
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute, LimitOutput
    from traitlets.utils.importstring import import_item

    from course_tools.grading.conventions import autograde_preprocessors
    from course_tools.grading.execute import ExecuteSurvivingCrashes
    from course_tools.grading.limits import LimitOutputBytes
    from course_tools.grading.verdict import DecideFromRecordings

    ours = [import_item(name) for name in autograde_preprocessors()]
    default = Autograde.class_traits()["autograde_preprocessors"].default()
    expected = []
    for pp in default:
        if pp is Execute:
            expected += [ExecuteSurvivingCrashes, DecideFromRecordings]
        else:
            expected += [pp, LimitOutputBytes] if pp is LimitOutput else [pp]
    assert ours == expected


def test_parallel_grading_input_errors(tmp_path):
    from course_tools.grading.autograde import _sqlite_path, autograde_students

    with pytest.raises(ValueError, match="needs a SQLite file"):
        _sqlite_path("postgresql://grader@db/gradebook")
    with pytest.raises(ValueError, match="positive integer"):
        autograde_students(FIXTURE_COURSE, "mean_variance", jobs=0)
    course = tmp_path / "course"
    shutil.copytree(FIXTURE_COURSE, course)
    with pytest.raises(ValueError, match="Release it first"):
        autograde_students(course, "mean_variance")


V1 = REAL_SOURCE / "v1_system_identification" / "v1_system_identification.ipynb"


def _v1_with(answer: str) -> tuple[object, object]:
    """The v1 solution with the explainable_variance answer cell replaced by ``answer``."""
    source = read_notebook(V1)
    submitted = nbformat.from_dict(source)
    for cell in submitted.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "explainable_variance":
            cell.source = answer
    return submitted, source


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (
            "from course_tools.metrics import explainable_variance as ev\n"
            "def explainable_variance(responses):\n    return ev(responses)",
            "uses 'ev' from `from course_tools.metrics import explainable_variance as ev`",
        ),
        (
            "import course_tools.metrics as m\n"
            "def explainable_variance(responses):\n    return m.explainable_variance(responses)",
            "uses 'm' from `import course_tools.metrics as m`",
        ),
        (
            "def explainable_variance(responses):\n"
            "    import importlib\n"
            "    mod = importlib.import_module('course_' + 'tools.metrics')\n"
            "    return mod.explainable_variance(responses)",
            "imports a module dynamically",
        ),
        (
            "def explainable_variance(responses):\n"
            "    return __import__('sys').modules['course_tools.metrics'].explainable_variance("
            "responses)",
            "imports a module dynamically",
        ),
        (
            "def _helper(r):\n    from sklearn import metrics\n    return metrics\n"
            "def explainable_variance(responses):\n    return _helper(responses)",
            "imports a ready-made implementation: from sklearn import metrics",
        ),
    ],
)
def test_ready_made_call_is_flagged_with_its_cell_in_any_form(answer, reason):
    submitted, source = _v1_with(answer)
    uses = find_ready_made(submitted, source)
    assert any(u.reason.startswith(reason) for u in uses), uses
    assert {u.function for u in uses} == {"explainable_variance"}
    assert {u.cell for u in uses} == {"explainable_variance"}


def test_ready_made_scan_accepts_own_numpy_code_and_provided_helpers():
    for path in sorted(REAL_SOURCE.glob("*/*.ipynb")):
        source = read_notebook(path)
        assert find_ready_made(nbformat.from_dict(source), source) == [], path.name
    submitted, source = _v1_with(
        "import numpy as np\nfrom numpy import nanvar as v\n"
        "def explainable_variance(responses):\n    return v(responses, axis=0)"
    )
    assert find_ready_made(submitted, source) == []
