"""``course-tools references``: run the solution and record its reference outputs."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from nbclient import NotebookClient

from course_tools.grading.conventions import RECORD_ENV_VAR, REFERENCES_FILE, source_notebooks
from course_tools.grading.course import cell_timeout
from course_tools.grading.notebooks import read_notebook
from course_tools.grading.references import ReferenceChange, compare_reference_files

__all__ = ["record_references"]


def record_references(course_root: str | Path, assignment: str) -> list[ReferenceChange]:
    """Execute the assignment's source notebooks and rewrite ``references.npz`` from them.

    Every :func:`~course_tools.grading.check_reference` call records its value instead of
    comparing it. The file is replaced only when every cell ran without error, so a broken
    solution never destroys good references.

    Returns
    -------
    list of ReferenceChange
        What changed compared with the previous file.

    Raises
    ------
    RuntimeError
        A cell raised; the message names it.
    ValueError
        No cell called ``check_reference`` (there is nothing to record).
    """
    notebooks = source_notebooks(course_root, assignment)
    folder = notebooks[0].parent
    target = folder / REFERENCES_FILE
    timeout = cell_timeout(course_root)
    with tempfile.TemporaryDirectory(prefix="references-") as scratch:
        recorded = Path(scratch) / REFERENCES_FILE
        env = {**os.environ, RECORD_ENV_VAR: str(recorded)}
        for path in notebooks:
            nb = read_notebook(path)
            client = NotebookClient(
                nb,
                timeout=int(timeout),
                allow_errors=True,
                resources={"metadata": {"path": str(folder)}},
            )
            client.execute(env=env)
            for index, cell in enumerate(nb.cells):
                for output in cell.get("outputs", []):
                    if output.get("output_type") == "error":
                        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", index)
                        raise RuntimeError(
                            f"{path.name} cell {grade_id} raised {output.get('ename')}: "
                            f"{output.get('evalue')}. References were not changed."
                        )
        if not recorded.is_file():
            raise ValueError(
                f"No cell of {assignment!r} called check_reference: nothing to record. Hidden "
                "tests should compare results on held-out inputs with check_reference(...)."
            )
        changes = compare_reference_files(target if target.is_file() else None, recorded)
        if any(c.status != "unchanged" for c in changes) or not target.is_file():
            shutil.copyfile(recorded, target)
    return changes
