"""Read nbgrader cells of a notebook: ids, points, hidden tests, and metadata checks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # nbformat is imported where it is used: the grading parent stays light
    from nbformat.notebooknode import NotebookNode

from course_tools.grading.conventions import (
    BEGIN_HIDDEN_TESTS,
    BEGIN_SOLUTION,
    END_HIDDEN_TESTS,
    END_SOLUTION,
)

__all__ = [
    "GradedCell",
    "graded_cells",
    "nbgrader_meta",
    "read_notebook",
    "solution_submission",
    "validate_source_notebook",
]

SCHEMA_VERSION = 3


def read_notebook(path: str | Path) -> NotebookNode:
    """Read a notebook as nbformat 4."""
    import nbformat

    return nbformat.read(str(path), as_version=4)


def nbgrader_meta(cell: NotebookNode) -> dict:
    """The cell's ``metadata.nbgrader`` dict (empty when the cell has none)."""
    return dict(cell.get("metadata", {}).get("nbgrader", {}))


@dataclass(frozen=True)
class GradedCell:
    """A cell that earns points.

    Attributes
    ----------
    grade_id : str
        nbgrader's cell id.
    points : float
        Maximum score.
    autograded : bool
        True for test cells (code, not a solution), False for answers graded by hand.
    hidden : bool
        True when the cell contains a hidden test region.
    index : int
        Position in the notebook.
    """

    grade_id: str
    points: float
    autograded: bool
    hidden: bool
    index: int


def graded_cells(nb: NotebookNode) -> list[GradedCell]:
    """All cells with ``grade: true``, in notebook order."""
    cells = []
    for index, cell in enumerate(nb.cells):
        meta = nbgrader_meta(cell)
        if not meta.get("grade"):
            continue
        cells.append(
            GradedCell(
                grade_id=meta["grade_id"],
                points=float(meta.get("points", 0)),
                autograded=cell.cell_type == "code" and not meta.get("solution", False),
                hidden=BEGIN_HIDDEN_TESTS in cell.source,
                index=index,
            )
        )
    return cells


def _strip_markers(source: str) -> str:
    markers = (BEGIN_SOLUTION, END_SOLUTION)
    return "\n".join(line for line in source.split("\n") if line.strip() not in markers)


def solution_submission(source_nb: NotebookNode, release_nb: NotebookNode) -> NotebookNode:
    """The release notebook with every answer cell filled in from the solution.

    This is what a student who wrote exactly the instructor's solution would submit: locked cells
    and tests come from the release, answers from the source (``### BEGIN/END SOLUTION`` lines
    dropped).
    """
    import nbformat

    solutions = {
        nbgrader_meta(cell)["grade_id"]: _strip_markers(cell.source)
        for cell in source_nb.cells
        if nbgrader_meta(cell).get("solution")
    }
    submission = nbformat.from_dict(release_nb)
    for cell in submission.cells:
        meta = nbgrader_meta(cell)
        if meta.get("solution") and meta.get("grade_id") in solutions:
            cell.source = solutions[meta["grade_id"]]
    return submission


def _region_problems(label: str, source: str, begin: str, end: str) -> list[str]:
    depth, problems = 0, []
    for line in source.split("\n"):
        if begin in line:
            depth += 1
            if depth > 1:
                problems.append(f"{label}: nested '{begin}'")
        elif end in line:
            depth -= 1
            if depth < 0:
                problems.append(f"{label}: '{end}' without '{begin}'")
                depth = 0
    if depth:
        problems.append(f"{label}: '{begin}' without '{end}'")
    return problems


def _records_in_hidden_region(source: str) -> bool:
    inside = False
    for line in source.split("\n"):
        if BEGIN_HIDDEN_TESTS in line:
            inside = True
        elif END_HIDDEN_TESTS in line:
            inside = False
        elif inside and "check_reference(" in line:
            return True
    return False


def validate_source_notebook(path: str | Path) -> list[str]:
    """Check that a source notebook is ready for nbgrader; return the problems found.

    Checks: valid nbformat; no outputs or execution counts; every cell with solution or hidden
    test markers carries nbgrader metadata of schema 3; grade ids unique; grade cells have
    positive points; solution regions only in solution cells and hidden tests only in test cells;
    regions balanced; at least one autograded test cell; every autograded test cell records a
    value with ``check_reference`` in its hidden region (the grader decides its points).

    Returns
    -------
    list of str
        Human-readable problems, empty when the notebook is fine.
    """
    import nbformat

    path = Path(path)
    try:
        nb = read_notebook(path)
        nbformat.validate(nb)
    except Exception as error:  # nbformat raises several unrelated types
        return [f"{path.name}: not a valid notebook ({error})"]
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, cell in enumerate(nb.cells):
        label = f"{path.name} cell {index}"
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count")):
            problems.append(f"{label}: has outputs; commit source notebooks cleared")
        meta = nbgrader_meta(cell)
        has_solution = BEGIN_SOLUTION in cell.source
        has_hidden = BEGIN_HIDDEN_TESTS in cell.source
        if not meta:
            if has_solution or has_hidden:
                problems.append(
                    f"{label}: solution or hidden test region without nbgrader metadata"
                )
            continue
        label = f"{path.name} cell {index} ({meta.get('grade_id', '?')})"
        if meta.get("schema_version") != SCHEMA_VERSION:
            problems.append(f"{label}: schema_version {meta.get('schema_version')!r}, expected 3")
        for key in ("grade", "solution", "locked"):
            if not isinstance(meta.get(key), bool):
                problems.append(f"{label}: '{key}' must be true or false")
        grade_id = meta.get("grade_id")
        if not isinstance(grade_id, str) or not grade_id:
            problems.append(f"{label}: missing grade_id")
        elif grade_id in seen:
            problems.append(f"{label}: grade_id also used by cell {seen[grade_id]}")
        else:
            seen[grade_id] = index
        if meta.get("grade"):
            points = meta.get("points")
            if not isinstance(points, int | float) or isinstance(points, bool) or points <= 0:
                problems.append(f"{label}: grade cell needs positive 'points', got {points!r}")
        if has_solution and not meta.get("solution"):
            problems.append(f"{label}: solution region in a cell that is not a solution cell")
        if has_hidden and not (meta.get("grade") and not meta.get("solution")):
            problems.append(f"{label}: hidden tests outside an autograded test cell")
        if meta.get("solution") and meta.get("locked"):
            problems.append(f"{label}: a solution cell cannot be locked")
        if (
            meta.get("grade")
            and not meta.get("solution")
            and cell.cell_type == "code"
            and not _records_in_hidden_region(cell.source)
        ):
            problems.append(
                f"{label}: an autograded test cell must record what it checks: call "
                "check_reference(...) between the hidden test markers, so the grader (not the "
                "student's kernel) decides its points"
            )
        problems += _region_problems(label, cell.source, BEGIN_SOLUTION, END_SOLUTION)
        problems += _region_problems(label, cell.source, BEGIN_HIDDEN_TESTS, END_HIDDEN_TESTS)
    if not any(c.autograded for c in graded_cells(nb)):
        problems.append(f"{path.name}: no autograded test cell")
    return problems
