"""``course-tools references``: run the solution and record its reference outputs."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from nbclient import NotebookClient

from course_tools.grading.conventions import REFERENCES_FILE, source_notebooks
from course_tools.grading.course import instructor_timeout
from course_tools.grading.notebooks import nbgrader_meta, read_notebook
from course_tools.grading.references import (
    RECORDING_MIME,
    ReferenceChange,
    compare_reference_files,
    decode_array,
    load_manifest,
    save_references,
)

__all__ = ["record_references"]


def _collect(path: Path, nb, values: dict, manifest: dict) -> None:
    """Take the recordings out of an executed notebook's test cells into values and manifest."""
    for index, cell in enumerate(nb.cells):
        meta = nbgrader_meta(cell)
        grade_id = meta.get("grade_id", index)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                raise RuntimeError(
                    f"{path.name} cell {grade_id} raised {output.get('ename')}: "
                    f"{output.get('evalue')}. References were not changed."
                )
        found = [o.get("data", {}).get(RECORDING_MIME) for o in cell.get("outputs", [])]
        for payload in (p for p in found if p):
            name = payload["name"]
            if not (meta.get("grade") and not meta.get("solution") and cell.cell_type == "code"):
                raise ValueError(
                    f"{path.name} cell {grade_id} records {name!r}, but only autograded test "
                    "cells may call check_reference (the grader scores those cells)."
                )
            if name in values:
                raise ValueError(
                    f"Reference {name!r} is recorded twice (again in {path.name} cell "
                    f"{grade_id}). Each check_reference call in an assignment needs its own name."
                )
            values[name] = decode_array(payload["npy"], max_bytes=1 << 31)
            manifest[name] = {
                "notebook": path.name,
                "cell": grade_id,
                "rtol": float(payload["rtol"]),
                "atol": float(payload["atol"]),
            }


def record_references(course_root: str | Path, assignment: str) -> list[ReferenceChange]:
    """Execute the assignment's source notebooks and rewrite ``references.npz`` from them.

    Every :func:`~course_tools.grading.check_reference` call in a kernel publishes its value;
    this collects them with the test cell that recorded each one and its tolerances (the
    manifest the grader judges by). The file is replaced only when every cell ran without error,
    so a broken solution never destroys good references.

    Returns
    -------
    list of ReferenceChange
        What changed compared with the previous file.

    Raises
    ------
    RuntimeError
        A cell raised; the message names it.
    ValueError
        No cell called ``check_reference`` (there is nothing to record), a name is recorded
        twice, or a cell that is not an autograded test cell records.
    """
    notebooks = source_notebooks(course_root, assignment)
    folder = notebooks[0].parent
    target = folder / REFERENCES_FILE
    timeout = instructor_timeout(course_root)
    values: dict = {}
    manifest: dict = {}
    for path in notebooks:
        nb = read_notebook(path)
        client = NotebookClient(
            nb,
            timeout=int(timeout),
            allow_errors=True,
            resources={"metadata": {"path": str(folder)}},
        )
        client.execute()
        _collect(path, nb, values, manifest)
    if not values:
        raise ValueError(
            f"No cell of {assignment!r} called check_reference: nothing to record. Hidden "
            "tests should compare results on held-out inputs with check_reference(...)."
        )
    with tempfile.TemporaryDirectory(prefix="references-") as scratch:
        recorded = Path(scratch) / REFERENCES_FILE
        save_references(recorded, values, manifest)
        changes = compare_reference_files(target if target.is_file() else None, recorded)
        old_manifest = load_manifest(target) if target.is_file() else None
        if any(c.status != "unchanged" for c in changes) or old_manifest != manifest:
            shutil.copyfile(recorded, target)
    return changes
