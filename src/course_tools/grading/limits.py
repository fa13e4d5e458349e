"""Output limited in bytes: a cell or a notebook cannot carry megabytes into the gradebook.

nbgrader's ``LimitOutput`` counts *lines*: one 20 MB line passes whole into the autograded
notebook and the feedback. :class:`LimitOutputBytes` runs after it in autograde and caps the text
of every output (streams, ``text/*`` data, error values and tracebacks, base64 images) at
``max_cell_bytes`` per cell and ``max_notebook_bytes`` for the whole notebook; what is cut is
replaced by a line that says how much was cut.
"""

from __future__ import annotations

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Integer

__all__ = ["LimitOutputBytes", "limit_outputs"]

#: Default budgets (UTF-8 bytes).
MAX_CELL_BYTES = 100_000
MAX_NOTEBOOK_BYTES = 2_000_000


def _cut(text: str, budget: int) -> tuple[str, int]:
    """Text cut to at most ``budget`` UTF-8 bytes; also return its size before the cut."""
    raw = text.encode("utf-8", errors="replace")
    if len(raw) <= budget:
        return text, len(raw)
    kept = raw[: max(budget, 0)].decode("utf-8", errors="ignore")
    return kept + f"\n... output truncated: {len(raw) - budget} bytes cut ...\n", len(raw)


def _fields(output) -> list[tuple[object, object]]:
    """(container, key) of every text field of an output."""
    kind = output.get("output_type")
    fields = []
    if kind == "stream":
        fields.append((output, "text"))
    elif kind in {"display_data", "execute_result", "update_display_data"}:
        fields += [(output["data"], key) for key in list(output.get("data", {}))]
    elif kind == "error":
        fields.append((output, "evalue"))
        fields += [(output["traceback"], i) for i in range(len(output.get("traceback", [])))]
    return fields


def limit_outputs(nb, *, max_cell_bytes: int, max_notebook_bytes: int) -> int:
    """Cut the outputs of a notebook in place to the byte budgets; return the bytes cut."""
    left_in_notebook = max_notebook_bytes
    cut_total = 0
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        left_in_cell = min(max_cell_bytes, left_in_notebook)
        for output in cell.get("outputs", []):
            for container, key in _fields(output):
                value = container[key]
                if isinstance(value, list):  # multi-line strings as lists of lines
                    value = "".join(str(v) for v in value)
                if not isinstance(value, str):
                    continue  # JSON data (small, or a recording already removed)
                kept, size = _cut(value, left_in_cell)
                if size > left_in_cell:
                    cut_total += size - left_in_cell
                container[key] = kept
                left_in_cell -= min(size, left_in_cell)
        left_in_notebook -= min(max_cell_bytes, left_in_notebook) - left_in_cell
    return cut_total


class LimitOutputBytes(NbGraderPreprocessor):
    """nbgrader preprocessor: cap outputs at a number of bytes per cell and per notebook."""

    max_cell_bytes = Integer(MAX_CELL_BYTES, help="Bytes of output kept per cell.").tag(config=True)
    max_notebook_bytes = Integer(MAX_NOTEBOOK_BYTES, help="Bytes of output kept per notebook.").tag(
        config=True
    )

    def preprocess(self, nb, resources):
        cut = limit_outputs(
            nb, max_cell_bytes=self.max_cell_bytes, max_notebook_bytes=self.max_notebook_bytes
        )
        if cut:
            self.log.warning("Cut %d bytes of output over the limits", cut)
        return nb, resources
