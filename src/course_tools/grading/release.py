"""Generate the student version of an assignment with nbgrader, then check it for leaks."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from course_tools.grading.conventions import assignment_dir, assignment_names, check_course_root
from course_tools.grading.course import CONFIG_FILE, run_nbgrader
from course_tools.grading.leakcheck import Leak, find_release_leaks
from course_tools.grading.notebooks import validate_source_notebook

__all__ = ["ReleaseResult", "copy_course", "export_student_versions", "generate_release"]


@dataclass
class ReleaseResult:
    """A generated release and what the leak check found in it."""

    assignment: str
    release_dir: Path
    leaks: list[Leak]
    seconds: float

    @property
    def clean(self) -> bool:
        """True when nothing leaked."""
        return not self.leaks


def check_source(course_root: str | Path, assignment: str) -> None:
    """Raise ValueError listing every metadata problem of the assignment's source notebooks."""
    folder = assignment_dir(course_root, assignment)
    problems = [p for nb in sorted(folder.glob("*.ipynb")) for p in validate_source_notebook(nb)]
    if problems:
        raise ValueError(
            f"The source of {assignment!r} is not ready for nbgrader:\n  " + "\n  ".join(problems)
        )


def generate_release(course_root: str | Path, assignment: str) -> ReleaseResult:
    """``nbgrader generate_assignment`` (into ``release/<a>``, and the gradebook), then leak check.

    Raises
    ------
    ValueError
        A source notebook has invalid nbgrader metadata or outputs.
    NbgraderError
        nbgrader failed.
    """
    root = check_course_root(course_root)
    check_source(root, assignment)
    start = time.perf_counter()
    run_nbgrader(["generate_assignment", assignment, "--force"], root)
    release_dir = root / "release" / assignment
    leaks = find_release_leaks(root / "source" / assignment, release_dir)
    return ReleaseResult(assignment, release_dir, leaks, time.perf_counter() - start)


def copy_course(course_root: str | Path, assignments: list[str], dest: str | Path) -> Path:
    """Copy the course config and the sources of some assignments into a fresh course folder."""
    root = check_course_root(course_root)
    dest = Path(dest)
    (dest / "source").mkdir(parents=True, exist_ok=True)
    shutil.copy2(root / CONFIG_FILE, dest / CONFIG_FILE)
    for name in assignments:
        shutil.copytree(
            assignment_dir(root, name),
            dest / "source" / name,
            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
        )
    return dest


def export_student_versions(
    course_root: str | Path, output_dir: str | Path, assignments: list[str] | None = None
) -> dict[str, Path]:
    """Write the released (student) version of each assignment for the book to link to.

    For each assignment ``<a>`` this writes ``<output>/<a>/`` (the release folder: notebooks and
    data files) and ``<output>/<a>.zip``. The course folder itself is not touched: the release
    is generated in a scratch copy. Nothing is written for any assignment if one of them leaks.

    Returns
    -------
    dict
        ``{assignment: path of its zip}``.

    Raises
    ------
    RuntimeError
        A release leaks; the message lists the leaks.
    """
    root = check_course_root(course_root)
    names = assignment_names(root) if assignments is None else list(assignments)
    output_dir = Path(output_dir)
    with tempfile.TemporaryDirectory(prefix="course-release-") as scratch:
        course = copy_course(root, names, Path(scratch) / "course")
        results = [generate_release(course, name) for name in names]
        leaking = [r for r in results if not r.clean]
        if leaking:
            details = "\n  ".join(
                f"{r.assignment}/{x.path}: {x.reason}" for r in leaking for x in r.leaks
            )
            raise RuntimeError(f"Release leak check failed; nothing exported:\n  {details}")
        output_dir.mkdir(parents=True, exist_ok=True)
        zips = {}
        for result in results:
            target = output_dir / result.assignment
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(result.release_dir, target)
            archive = shutil.make_archive(
                str(output_dir / result.assignment),
                "zip",
                root_dir=result.release_dir.parent,
                base_dir=result.assignment,
            )
            zips[result.assignment] = Path(archive)
    return zips
