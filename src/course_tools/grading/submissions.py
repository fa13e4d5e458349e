"""Look at submissions before grading: renamed notebooks, missing notebooks, deleted cells.

nbgrader grades a notebook only under its exact name: a student who renamed ``ps1.ipynb`` to
``ps1 (1).ipynb`` gets nothing, and the submission fails. Grading works on a *staged* copy of each
submission (the student's folder is never changed): when exactly one expected notebook is missing
and exactly one unexpected notebook was submitted, the copy is graded under the expected name and
the report says so. Deleted graded cells are reported too (nbgrader scores them zero and flags
them for manual review).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from course_tools.grading.notebooks import graded_cells, nbgrader_meta, read_notebook

__all__ = ["SubmissionNote", "find_students", "stage_submission"]

STAGING_DIR = ".course_tools/staged"


@dataclass(frozen=True)
class SubmissionNote:
    """Something about a submission the instructor should know.

    Attributes
    ----------
    student : str
    notebook : str
        Notebook file name the note is about.
    kind : str
        ``"renamed"``, ``"missing"``, ``"unexpected"``, ``"unreadable"`` or ``"deleted-cell"``.
    message : str
    """

    student: str
    notebook: str
    kind: str
    message: str


def find_students(course_root: str | Path, assignment: str) -> list[str]:
    """Students with a folder ``submitted/<student>/<assignment>/``, sorted."""
    submitted = Path(course_root) / "submitted"
    if not submitted.is_dir():
        return []
    return sorted(p.parent.name for p in submitted.glob(f"*/{assignment}") if p.is_dir())


def _ignore(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n in {".ipynb_checkpoints", "__pycache__"}}


def stage_submission(
    course_root: str | Path, assignment: str, student: str, source_notebooks: list[Path]
) -> list[SubmissionNote]:
    """Copy ``submitted/<student>/<assignment>`` to the staging area and repair what can be.

    Returns
    -------
    list of SubmissionNote
        What was found and done.
    """
    root = Path(course_root)
    src = root / "submitted" / student / assignment
    dest = root / STAGING_DIR / student / assignment
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest, ignore=_ignore)
    expected = {p.name: p for p in source_notebooks}
    present = {p.name for p in dest.glob("*.ipynb")}
    missing = sorted(set(expected) - present)
    unexpected = sorted(present - set(expected))
    notes = []
    if len(missing) == 1 and len(unexpected) == 1:
        (dest / unexpected[0]).rename(dest / missing[0])
        notes.append(
            SubmissionNote(
                student,
                missing[0],
                "renamed",
                f"submitted as {unexpected[0]!r}; graded as {missing[0]!r}",
            )
        )
        missing, unexpected = [], []
    notes += [
        SubmissionNote(student, name, "missing", "notebook not submitted: all its points are 0")
        for name in missing
    ]
    notes += [
        SubmissionNote(student, name, "unexpected", "not part of the assignment: not graded")
        for name in unexpected
    ]
    for name in sorted(set(expected) & {p.name for p in dest.glob("*.ipynb")}):
        notes += _deleted_cells(student, dest / name, expected[name])
    return notes


def _deleted_cells(student: str, submitted: Path, source: Path) -> list[SubmissionNote]:
    try:
        nb = read_notebook(submitted)
    except Exception as error:  # nbformat raises several types for broken JSON
        return [SubmissionNote(student, submitted.name, "unreadable", f"cannot be read: {error}")]
    present = {nbgrader_meta(c).get("grade_id") for c in nb.cells}
    source_nb = read_notebook(source)
    points = {c.grade_id: c.points for c in graded_cells(source_nb)}
    notes = []
    for cell in source_nb.cells:
        meta = nbgrader_meta(cell)
        grade_id = meta.get("grade_id")
        if grade_id is None or grade_id in present:
            continue
        if meta.get("grade"):
            message = (
                f"graded cell {grade_id!r} deleted: 0 of {points[grade_id]:g} points, flagged "
                "for manual review in the gradebook"
            )
        elif meta.get("solution"):
            message = f"answer cell {grade_id!r} deleted: tests that need it score 0"
        else:
            continue
        notes.append(SubmissionNote(student, submitted.name, "deleted-cell", message))
    return notes
