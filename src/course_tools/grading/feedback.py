"""Feedback that shows students their results but not the hidden tests.

nbgrader's feedback is the autograded notebook as HTML, hidden tests included (by design, see
nbgrader issues 917 and 1363). :class:`HideHiddenTests` is an nbgrader preprocessor added to
``c.GenerateFeedback.preprocessors``: in every test cell it removes the lines between
``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` and reduces the outputs of those cells to
the exception line (``ReferenceMismatch: fev_held_out is off: max absolute error ...``), because a
traceback quotes the hidden source and printed output could show reference values.
:func:`find_feedback_leaks` checks the HTML afterwards.
"""

from __future__ import annotations

import html
from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode
from nbgrader import utils as nbgrader_utils
from nbgrader.preprocessors import ClearHiddenTests
from traitlets import Unicode

from course_tools.grading.conventions import (
    BEGIN_HIDDEN_TESTS,
    END_HIDDEN_TESTS,
    is_instructor_only,
)
from course_tools.grading.leakcheck import secret_lines

__all__ = ["HideHiddenTests", "find_feedback_leaks", "hidden_test_lines"]


class HideHiddenTests(ClearHiddenTests):
    """Remove hidden tests, and the tracebacks and prints of the cells that had them."""

    placeholder = Unicode(
        "# (hidden tests ran here when your notebook was graded)",
        help="Line that replaces each hidden test region in the feedback.",
    ).tag(config=True)

    def preprocess_cell(self, cell: NotebookNode, resources: dict, cell_index: int):
        if cell.cell_type != "code" or not nbgrader_utils.is_grade(cell):
            return cell, resources
        if BEGIN_HIDDEN_TESTS not in cell.source:
            return cell, resources
        lines = cell.source.split("\n")
        start = next(i for i, line in enumerate(lines) if self.begin_test_delimeter in line)
        indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
        self._remove_hidden_test_region(cell)
        kept = cell.source.split("\n")
        kept.insert(min(start, len(kept)), indent + self.placeholder)
        cell.source = "\n".join(kept).rstrip("\n")
        cell.outputs = [
            _short_error(out) for out in cell.get("outputs", []) if out.output_type == "error"
        ]
        return cell, resources


def _short_error(output: NotebookNode) -> NotebookNode:
    ename, evalue = output.get("ename", "Error"), output.get("evalue", "")
    return nbformat.v4.new_output(
        "error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]
    )


def hidden_test_lines(notebook: str | Path | NotebookNode) -> list[str]:
    """The non-blank lines inside hidden test regions of a source notebook (stripped)."""
    nb = notebook if isinstance(notebook, NotebookNode) else nbformat.read(notebook, as_version=4)
    found = []
    for cell in nb.cells:
        inside = False
        for line in cell.source.split("\n"):
            if BEGIN_HIDDEN_TESTS in line:
                inside = True
            elif END_HIDDEN_TESTS in line:
                inside = False
            elif inside and line.strip() and not line.strip().startswith("#"):
                found.append(line.strip())
    return found


def find_feedback_leaks(feedback_dir: str | Path, source_notebooks: list[Path]) -> list[str]:
    """Problems in a feedback folder: hidden test lines in the HTML, or instructor-only files.

    Parameters
    ----------
    feedback_dir : path
        ``<course>/feedback`` (all students) or one student's ``feedback/<s>/<a>``.
    source_notebooks : list of Path
        The assignment's source notebooks, whose hidden test lines must not appear.

    Returns
    -------
    list of str
        One message per leak, empty when the feedback is clean.
    """
    # A line counts only when it is unique to hidden tests: lines that also stand in public cells
    # or in solutions (which the student may well have written identically, e.g.
    # ``with torch.no_grad():``) and bare punctuation reveal nothing.
    secrets = set()
    for nb in source_notebooks:
        found = secret_lines(nb)
        secrets |= found["hidden test"] - found["solution"]
    secrets = sorted(secrets)
    problems = []
    for path in sorted(Path(feedback_dir).rglob("*")):
        if not path.is_file():
            continue
        if is_instructor_only(path):
            problems.append(f"{path}: instructor-only file in the feedback")
        elif path.suffix == ".html":
            text = path.read_text(encoding="utf-8", errors="replace")
            shown = {line.strip() for line in html.unescape(_strip_tags(text)).splitlines()}
            problems.extend(
                f"{path}: shows hidden test line {line!r}" for line in secrets if line in shown
            )
    return problems


def _strip_tags(text: str) -> str:
    """Drop HTML tags (syntax highlighting splits code into many spans)."""
    out, inside = [], False
    for char in text:
        if char == "<":
            inside = True
        elif char == ">":
            inside = False
        elif not inside:
            out.append(char)
    return "".join(out)
