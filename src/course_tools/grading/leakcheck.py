"""Check a release folder: nothing that students must not see.

A release leaks when it contains solution text, hidden test text, solution or hidden-test
markers, a reference or mutants file, or any file that is not in the assignment's source folder
(build leftovers, checkpoints, a gradebook).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from course_tools.grading.conventions import (
    BEGIN_HIDDEN_TESTS,
    BEGIN_SOLUTION,
    END_HIDDEN_TESTS,
    END_SOLUTION,
    NBGRADER_IGNORE,
    is_instructor_only,
)
from course_tools.grading.notebooks import read_notebook

__all__ = ["Leak", "find_release_leaks", "secret_lines"]

_MARKERS = (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN_TESTS, END_HIDDEN_TESTS)


@dataclass(frozen=True)
class Leak:
    """One thing in a release that students must not get.

    Attributes
    ----------
    path : str
        File, relative to the release folder.
    reason : str
    """

    path: str
    reason: str


def _regions(source: str, begin: str, end: str) -> tuple[list[str], list[str]]:
    """(lines inside begin/end regions, lines outside), stripped and non-blank."""
    inside, outside, depth = [], [], 0
    for line in source.split("\n"):
        if begin in line:
            depth += 1
        elif end in line:
            depth = max(depth - 1, 0)
        elif line.strip():
            (inside if depth else outside).append(line.strip())
    return inside, outside


def secret_lines(source_notebook: str | Path) -> dict[str, set[str]]:
    """Lines of a source notebook that only solutions or hidden tests contain.

    Lines that also occur outside those regions (``import numpy as np``, a lone ``return``)
    are not secret.

    Returns
    -------
    dict
        ``{"solution": {...}, "hidden test": {...}}``.
    """
    nb = read_notebook(source_notebook)
    solution, hidden, public = set(), set(), set()
    for cell in nb.cells:
        sol_in, sol_out = _regions(cell.source, BEGIN_SOLUTION, END_SOLUTION)
        hid_in, hid_out = _regions(cell.source, BEGIN_HIDDEN_TESTS, END_HIDDEN_TESTS)
        solution.update(sol_in)
        hidden.update(hid_in)
        public.update(set(sol_out) & set(hid_out))
    trivial = {"pass", "return", "else:", "try:", ")", "]", "}", '"""'}
    return {
        "solution": {s for s in solution - public if s not in trivial},
        "hidden test": {s for s in hidden - public if s not in trivial},
    }


def _allowed_files(source_dir: Path) -> set[str]:
    allowed = set()
    for path in source_dir.rglob("*"):
        rel = path.relative_to(source_dir)
        if path.is_file() and not _ignored(rel) and not is_instructor_only(path):
            allowed.add(rel.as_posix())
    return allowed


def _ignored(rel: Path) -> bool:
    import fnmatch

    return any(fnmatch.fnmatch(part, pat) for part in rel.parts for pat in NBGRADER_IGNORE)


def find_release_leaks(source_dir: str | Path, release_dir: str | Path) -> list[Leak]:
    """Compare a release with its source folder and list every leak.

    Parameters
    ----------
    source_dir : path
        ``<course>/source/<a>``.
    release_dir : path
        ``<course>/release/<a>`` (or any folder holding a student version).

    Returns
    -------
    list of Leak
        Empty when the release is clean.

    Raises
    ------
    FileNotFoundError
        The release folder does not exist.
    """
    source_dir, release_dir = Path(source_dir), Path(release_dir)
    if not release_dir.is_dir():
        raise FileNotFoundError(f"No release folder at {release_dir}: generate the release first.")
    leaks: list[Leak] = []
    allowed = _allowed_files(source_dir)
    for path in sorted(release_dir.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(release_dir).as_posix()
        if is_instructor_only(path):
            leaks.append(Leak(rel, "instructor-only file (reference outputs or mutants)"))
        elif rel not in allowed:
            leaks.append(Leak(rel, "not a file of the assignment's source folder"))
        elif path.suffix == ".ipynb":
            leaks += _notebook_leaks(rel, path, source_dir / rel)
    return leaks


def _notebook_leaks(rel: str, released: Path, source: Path) -> list[Leak]:
    nb = read_notebook(released)
    secrets = secret_lines(source)
    leaks = []
    for index, cell in enumerate(nb.cells):
        label = f"{rel} cell {index}"
        for marker in _MARKERS:
            if marker in cell.source:
                leaks.append(Leak(label, f"contains the marker '{marker}'"))
        lines = {line.strip() for line in cell.source.split("\n")}
        for kind, secret in secrets.items():
            for line in sorted(lines & secret):
                leaks.append(Leak(label, f"contains {kind} text: {line!r}"))
        if cell.cell_type == "code" and cell.get("outputs"):
            leaks.append(Leak(label, "has outputs (they may show solution results)"))
    return leaks
