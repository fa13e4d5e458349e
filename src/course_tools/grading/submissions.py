"""Look at submissions before grading: renamed notebooks, missing notebooks, deleted cells.

nbgrader grades a notebook only under its exact name: a student who renamed ``ps1.ipynb`` to
``ps1 (1).ipynb`` gets nothing, and the submission fails. Grading works on a *staged* copy of each
submission (the student's folder is never changed): when exactly one expected notebook is missing
and exactly one unexpected notebook was submitted, the copy is graded under the expected name and
the report says so. Deleted graded cells are reported too (nbgrader scores them zero and flags
them for manual review).

Careless is not cheating: a cell whose nbgrader metadata or type was changed (``solution: true``
flipped on a test cell, points edited, a code cell made markdown) or whose grade id was renamed
makes nbgrader reject the whole notebook. The staged copy gets the instructor's metadata and cell
type back (nbgrader then restores the locked cells' source as usual), the student's answers are
kept, and the note ``"metadata-restored"`` flags the notebook for review.
"""

from __future__ import annotations

import os
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
        ``"renamed"``, ``"missing"``, ``"unexpected"``, ``"unreadable"``, ``"deleted-cell"`` or
        ``"metadata-restored"``.
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
    # Symbolic links are dropped: one could make grading copy an instructor file to the student.
    return {
        n
        for n in names
        if n in {".ipynb_checkpoints", "__pycache__"} or os.path.islink(os.path.join(folder, n))
    }


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
        release = root / "release" / assignment / name
        notes += _restore_metadata(
            student, dest / name, release if release.is_file() else None, expected[name]
        )
        notes += _deleted_cells(student, dest / name, expected[name])
    return notes


_KEYS = ("grade", "solution", "locked", "points", "grade_id")


def _restore_metadata(
    student: str, submitted: Path, release: Path | None, source: Path
) -> list[SubmissionNote]:
    """Give cells with edited nbgrader metadata, type or grade id the instructor's back."""
    import nbformat

    try:
        nb = read_notebook(submitted)
    except Exception:  # unreadable: reported by _deleted_cells
        return []
    original = read_notebook(release or source)
    by_id = {nbgrader_meta(c)["grade_id"]: c for c in original.cells if nbgrader_meta(c)}
    present = {nbgrader_meta(c).get("grade_id") for c in nb.cells}
    # Grade ids the student renamed: unknown ids matched, in order, to the missing ones.
    unknown = [
        c
        for c in nb.cells
        if nbgrader_meta(c).get("grade_id") is not None
        and nbgrader_meta(c)["grade_id"] not in by_id
    ]
    missing = [g for g in by_id if g not in present]
    renamed = {}
    if unknown and len(unknown) == len(missing):
        order = {g: i for i, g in enumerate(by_id)}
        renamed = {id(c): g for c, g in zip(unknown, sorted(missing, key=order.get), strict=True)}
    fixed = []
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        grade_id = renamed.get(id(cell), meta.get("grade_id"))
        if grade_id not in by_id:
            continue
        want = by_id[grade_id]
        want_meta = nbgrader_meta(want)
        changed = [k for k in _KEYS if meta.get(k) != want_meta.get(k)]
        if cell.cell_type != want.cell_type:
            changed.append("cell type")
        if not changed:
            continue
        fresh = nbformat.from_dict(want) if cell.cell_type != want.cell_type else cell
        if cell.cell_type != want.cell_type:
            fresh.source = cell.source  # keep what the student wrote
            cell.clear()
            cell.update(fresh)
        cell.metadata["nbgrader"] = dict(want_meta)
        fixed.append(f"{grade_id} ({', '.join(changed)})")
    if not fixed:
        return []
    nbformat.write(nb, submitted)
    return [
        SubmissionNote(
            student,
            submitted.name,
            "metadata-restored",
            "cells graded with the instructor's metadata (answers kept; check for tampering): "
            + "; ".join(fixed),
        )
    ]


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
