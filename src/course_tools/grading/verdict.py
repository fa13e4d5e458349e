"""The grader decides the points: recorded values are compared outside the student's kernel.

In a kernel, :func:`~course_tools.grading.check_reference` only publishes the value it was given
(a display output of type :data:`~course_tools.grading.references.RECORDING_MIME`). This module
runs in the grader process, which alone holds ``references.npz``. For every autograded test cell
it reads the recordings back out of the cell's outputs and compares each quantity the references'
manifest assigns to that cell:

* a quantity that was not recorded in its own cell (the kernel died, the student's code stopped
  the cell early, or a patched function never recorded) fails the cell;
* a recording of the wrong shape, the wrong values (beyond the tolerance the *instructor's*
  solution recorded, never the one the kernel claims), or one that cannot be decoded, fails it.

A failing cell gets an error output first in its outputs (so nbgrader scores it 0), with the
same message :func:`~course_tools.grading.check_reference` gives: the quantity, the size of the
error and the tolerance, never the reference values. The recordings themselves are removed from
the notebook (the feedback must not carry values), and so are ``execute_result`` outputs of test
cells, which nbgrader would read as partial credit.

Faking a pass from inside the kernel therefore means knowing the reference values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat
import numpy as np
from nbgrader.preprocessors import NbGraderPreprocessor

from course_tools.grading.conventions import REFERENCES_FILE
from course_tools.grading.references import (
    RECORDING_MIME,
    decode_array,
    describe_mismatch,
    load_manifest,
    load_references,
)

__all__ = ["CellVerdict", "DecideFromRecordings", "judge_cell", "judge_notebook", "recordings"]

#: A recording larger than this many bytes is refused (the largest reference is far smaller).
MAX_RECORDING_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class CellVerdict:
    """The grader's decision for one test cell.

    Attributes
    ----------
    grade_id : str
    problems : list of str
        Why the cell fails (empty when every recorded quantity matches its reference).
    """

    grade_id: str
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems


def _output_data(output) -> dict:
    if output.get("output_type") not in {"display_data", "update_display_data", "execute_result"}:
        return {}
    return output.get("data", {}) or {}


def recordings(outputs: list) -> list[tuple[str, object]]:
    """The ``(name, payload)`` pairs recorded in a cell's outputs, in order."""
    found = []
    for output in outputs:
        payload = _output_data(output).get(RECORDING_MIME)
        if isinstance(payload, dict) and isinstance(payload.get("name"), str):
            found.append((payload["name"], payload.get("npy")))
    return found


def judge_cell(
    grade_id: str,
    outputs: list,
    expected: dict[str, dict],
    references: dict[str, np.ndarray],
) -> CellVerdict:
    """Compare the quantities a test cell recorded with their references.

    Parameters
    ----------
    grade_id : str
        The cell's nbgrader id (for the verdict).
    outputs : list
        The cell's outputs, as the kernel produced them.
    expected : dict
        ``{name: {"rtol": float, "atol": float, ...}}``: what this cell must record, from the
        references' manifest.
    references : dict
        ``{name: array}`` from ``references.npz``.
    """
    recorded: dict[str, list[object]] = {}
    for name, payload in recordings(outputs):
        recorded.setdefault(name, []).append(payload)
    problems = []
    for name, spec in sorted(expected.items()):
        if name not in recorded:
            problems.append(
                f"{name}: no value was recorded (the cell stopped before its check, or the "
                "kernel died)."
            )
            continue
        reference = references[name]
        limit = min(MAX_RECORDING_BYTES, 64 * reference.nbytes + 65536)
        for payload in recorded[name]:
            try:
                value = decode_array(payload, max_bytes=limit)
            except Exception:  # any malformed payload is a failed check, never a crash
                problems.append(f"{name}: the recorded value is not a readable numeric array.")
                break
            if value.dtype.kind not in "biufc":
                problems.append(f"{name}: the recorded value is not numeric.")
                break
            message = describe_mismatch(
                name, value, reference, float(spec["rtol"]), float(spec["atol"])
            )
            if message is not None:
                problems.append(message)
                break
    return CellVerdict(grade_id, tuple(problems))


def _failure_output(problems: tuple[str, ...]):
    evalue = " ".join(problems)
    return nbformat.v4.new_output(
        "error",
        ename="ReferenceMismatch",
        evalue=evalue,
        traceback=[f"ReferenceMismatch: {evalue}"],
    )


def judge_notebook(nb, notebook_name: str, references_path: str | Path) -> list[CellVerdict]:
    """Judge every autograded test cell of an executed notebook in place.

    Recordings and ``execute_result`` outputs are removed from test cells; a failing cell gets
    an error output first. Cells the manifest does not name are left to their own outputs.

    Returns
    -------
    list of CellVerdict
        One per test cell that the manifest names.
    """
    from course_tools.grading.notebooks import nbgrader_meta

    references = load_references(references_path)
    manifest = load_manifest(references_path)
    by_cell: dict[str, dict[str, dict]] = {}
    for name, spec in manifest.items():
        if spec.get("notebook") in (None, notebook_name):
            by_cell.setdefault(spec["cell"], {})[name] = spec
    verdicts = []
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if cell.cell_type != "code" or not meta.get("grade") or meta.get("solution"):
            continue
        outputs = list(cell.get("outputs", []))
        verdict = judge_cell(
            meta.get("grade_id", ""), outputs, by_cell.get(meta.get("grade_id"), {}), references
        )
        kept = [
            o
            for o in outputs
            if o.get("output_type") != "execute_result" and RECORDING_MIME not in _output_data(o)
        ]
        if meta.get("grade_id") in by_cell:
            verdicts.append(verdict)
            if not verdict.passed:
                kept.insert(0, _failure_output(verdict.problems))
        cell.outputs = kept
    return verdicts


class DecideFromRecordings(NbGraderPreprocessor):
    """nbgrader autograde step, right after execution: the grader judges every test cell.

    It reads ``references.npz`` from ``source/<assignment>/`` of the course (the working
    directory of nbgrader), never from the folder the student's kernel ran in.
    """

    def preprocess(self, nb, resources):
        info = resources.get("nbgrader", {})
        assignment, notebook = info.get("assignment"), info.get("notebook")
        path = Path.cwd() / "source" / str(assignment) / REFERENCES_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"The grader needs {path} to decide the points of {assignment!r}. Create it with "
                f"`course-tools references {assignment}`."
            )
        verdicts = judge_notebook(nb, f"{notebook}.ipynb", path)
        failed = [v.grade_id for v in verdicts if not v.passed]
        if failed:
            self.log.info("Test cells failing their references: %s", ", ".join(failed))
        return nb, resources
