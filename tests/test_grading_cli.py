"""The ``course-tools`` command line: help texts, errors, references, release --output, tamper."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest
from fixtures.grading_helpers import FIXTURE_COURSE, scratch_course

from course_tools.cli import build_parser, main
from course_tools.grading.references import load_references

COMMANDS = ["references", "release", "check", "grade", "feedback", "tamper"]


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_explains_itself(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert f"course-tools {command}" in text
    assert "--course PATH" in text
    assert len(text) > 400  # a real explanation, not just the usage line


def test_top_level_help_walks_through_a_term(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for command in COMMANDS[:5]:
        assert f"course-tools {command} ps1" in text


def test_console_script_is_installed():
    script = shutil.which(
        "course-tools", path=str(__import__("pathlib").Path(sys.executable).parent)
    )
    assert script is not None
    proc = subprocess.run([script, "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "nbgrader" in proc.stdout


def test_unknown_assignment_and_course_give_clear_errors(tmp_path, capsys):
    assert main(["check", "nope", "--course", str(FIXTURE_COURSE)]) == 2
    err = capsys.readouterr().err
    assert "Unknown assignment 'nope'" in err and "mean_variance" in err
    assert main(["release", "x", "--course", str(tmp_path)]) == 2
    assert "not an nbgrader course directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["grade", "mean_variance", "--jobs", "0", "--course", str(FIXTURE_COURSE)])


def test_parser_defaults():
    args = build_parser().parse_args(["grade", "ps1"])
    assert args.jobs == 2 and args.csv is None and args.student is None
    assert args.no_sandbox is False


def test_grade_refuses_without_a_sandbox_and_says_how_to_fix(tmp_path, monkeypatch, capsys):
    from course_tools.grading import sandbox

    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on this PATH
    problem = sandbox.sandbox_problem.__wrapped__()
    assert "not found" in problem and "apt-get install bubblewrap" in problem
    assert "--no-sandbox" in problem
    monkeypatch.setattr(sandbox, "sandbox_problem", lambda: problem)
    course = scratch_course(FIXTURE_COURSE, "mean_variance", tmp_path / "course")
    assert main(["grade", "mean_variance", "--course", str(course)]) == 2
    err = capsys.readouterr().err
    assert "Refusing to grade: student code must run in a sandbox" in err
    assert "apt-get install bubblewrap" in err


def test_grade_no_sandbox_is_passed_on_and_printed(monkeypatch, capsys, tmp_path):
    from course_tools.grading import pipeline
    from course_tools.grading.autograde import AutogradeRun

    seen = {}

    def fake_grade(root, name, **kwargs):
        seen.update(kwargs)
        run = AutogradeRun(name, 2, 1.0, [], sandboxed=kwargs["sandbox"])
        return pipeline.GradeReport(run, tmp_path, tmp_path / "g.csv", tmp_path / "t.csv")

    monkeypatch.setattr(pipeline, "grade_assignment", fake_grade)
    course = str(FIXTURE_COURSE)
    assert main(["grade", "mean_variance", "--no-sandbox", "--course", course]) == 0
    assert seen["sandbox"] is False
    assert "WARNING: graded WITHOUT a sandbox (--no-sandbox)" in capsys.readouterr().out
    assert main(["grade", "mean_variance", "--course", course]) == 0
    assert seen["sandbox"] is True
    assert "Sandbox: bubblewrap" in capsys.readouterr().out


@pytest.mark.grading
def test_references_reproduces_the_committed_file(tmp_path, capsys):
    course = scratch_course(FIXTURE_COURSE, "mean_variance", tmp_path / "course")
    refs = course / "source" / "mean_variance" / "references.npz"
    before = {k: v.copy() for k, v in load_references(refs).items()}
    assert main(["references", "mean_variance", "--course", str(course)]) == 0
    out = capsys.readouterr().out
    assert "trial_mean_held_out" in out and "unchanged" in out and "changed " not in out
    after = load_references(refs)
    assert sorted(after) == sorted(before)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name])
    # An independent check of one recorded value: the mean of the held-out draw.
    held_out = np.random.default_rng(52017).normal(loc=2.0, scale=3.0, size=(19, 6))
    np.testing.assert_allclose(after["trial_mean_held_out"], held_out.mean(axis=0), rtol=1e-12)


@pytest.mark.grading
def test_references_keeps_old_file_when_solution_breaks(tmp_path, capsys):
    course = scratch_course(FIXTURE_COURSE, "mean_variance", tmp_path / "course")
    path = course / "source" / "mean_variance" / "mean_variance.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[3].source = nb.cells[3].source.replace("ddof=1", "ddof=oops")
    nbformat.write(nb, path)
    refs = path.parent / "references.npz"
    stamp = refs.stat().st_mtime_ns
    assert main(["references", "mean_variance", "--course", str(course)]) == 2
    assert "cell test_visible raised NameError" in capsys.readouterr().err
    assert refs.stat().st_mtime_ns == stamp


@pytest.mark.grading
def test_release_output_writes_student_versions_only(tmp_path, capsys):
    out = tmp_path / "downloads"
    assert main(["release", "--all", "--output", str(out), "--course", str(FIXTURE_COURSE)]) == 0
    files = sorted(p.name for p in (out / "mean_variance").iterdir())
    assert files == ["mean_variance.ipynb"]
    text = (out / "mean_variance" / "mean_variance.ipynb").read_text()
    assert "raise NotImplementedError()" in text
    assert "BEGIN SOLUTION" not in text and "default_rng(52017)" not in text
    with zipfile.ZipFile(out / "mean_variance.zip") as archive:
        assert archive.namelist() == ["mean_variance/", "mean_variance/mean_variance.ipynb"]
    assert not (FIXTURE_COURSE / "release").exists()  # the course folder is untouched
    assert not (FIXTURE_COURSE / "gradebook.db").exists()


def test_tamper_command_lists_the_cell(tmp_path, capsys):
    course = scratch_course(FIXTURE_COURSE, "mean_variance", tmp_path / "course")
    folder = course / "submitted" / "eve" / "mean_variance"
    folder.mkdir(parents=True)
    nb = nbformat.read(course / "source" / "mean_variance" / "mean_variance.ipynb", as_version=4)
    nb.cells[2].source += "\nAssertionError = Warning"
    nbformat.write(nb, folder / "mean_variance.ipynb")
    assert main(["tamper", "mean_variance", "--course", str(course)]) == 0
    out = capsys.readouterr().out
    assert "eve" in out and "trial_mean" in out and "redefines the builtin 'AssertionError'" in out


@pytest.mark.grading
def test_formgrader_generate_button_does_not_leak(tmp_path, monkeypatch):
    """The formgrader calls nbgrader's API, which ignores the app-scoped ignore list: the
    course's post-convert hook must still keep instructor files out of the release."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    from course_tools.grading.course import course_config
    from course_tools.grading.leakcheck import find_release_leaks

    course = scratch_course(FIXTURE_COURSE, "mean_variance", tmp_path / "course")
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    config = course_config(course)
    api = NbGraderAPI(CourseDirectory(config=config, root=str(course)), config=config)
    assert api.generate_assignment("mean_variance", force=True)["success"]
    release = course / "release" / "mean_variance"
    assert sorted(p.name for p in release.iterdir()) == ["mean_variance.ipynb"]
    assert find_release_leaks(course / "source" / "mean_variance", release) == []
