"""Read scores out of an nbgrader gradebook."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CellScore", "read_scores"]


@dataclass(frozen=True)
class CellScore:
    """The gradebook's entry for one graded cell of one student.

    Attributes
    ----------
    student, notebook, cell : str
    auto_score : float or None
        Autograder score (None: not autograded, e.g. a written answer or a deleted cell).
    manual_score : float or None
    max_score : float
    needs_manual_grade : bool
    """

    student: str
    notebook: str
    cell: str
    auto_score: float | None
    manual_score: float | None
    max_score: float
    needs_manual_grade: bool


def read_scores(db_url: str, assignment: str) -> list[CellScore]:
    """Every graded cell of every submission of an assignment, sorted by student, notebook, cell.

    A student appears once per graded cell: a duplicate or a missing row is a grading bug.
    """
    from nbgrader.api import Gradebook, MissingEntry

    rows = []
    with Gradebook(db_url) as gb:
        try:
            found = gb.find_assignment(assignment)
        except MissingEntry:
            return []
        for submission in found.submissions:
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    rows.append(
                        CellScore(
                            student=submission.student.id,
                            notebook=notebook.name,
                            cell=grade.name,
                            auto_score=grade.auto_score,
                            manual_score=grade.manual_score,
                            max_score=float(grade.max_score),
                            needs_manual_grade=bool(grade.needs_manual_grade),
                        )
                    )
    return sorted(rows, key=lambda r: (r.student, r.notebook, r.cell))
