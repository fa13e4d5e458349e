"""The nbgrader course: its configuration, its gradebook, and running nbgrader commands."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from course_tools.grading.conventions import check_course_root

__all__ = ["NbgraderError", "course_config", "gradebook_url", "nbgrader_env", "run_nbgrader"]

CONFIG_FILE = "nbgrader_config.py"


class NbgraderError(RuntimeError):
    """An nbgrader command failed; the message ends with the tail of its log."""


def course_config(course_root: str | Path) -> Config:
    """Load ``<course>/nbgrader_config.py`` and fail loudly if it does not load.

    nbgrader itself only logs an error and goes on without the file, which would silently drop
    the settings that keep reference outputs out of the release.

    Raises
    ------
    FileNotFoundError
        The course has no ``nbgrader_config.py``.
    RuntimeError
        The file raises when executed.
    """
    root = check_course_root(course_root)
    if not (root / CONFIG_FILE).is_file():
        raise FileNotFoundError(
            f"{root} has no {CONFIG_FILE}. The course directory needs one (course id, timeout, "
            "files kept out of the release); copy assignments/nbgrader_config.py."
        )
    try:
        return PyFileConfigLoader(CONFIG_FILE, path=str(root)).load_config()
    except Exception as error:
        raise RuntimeError(f"{root / CONFIG_FILE} does not load: {error!r}") from error


def cell_timeout(course_root: str | Path) -> float:
    """Per-cell execution timeout in seconds from the course config (nbgrader's default: 30)."""
    config = course_config(course_root)
    if "Execute" in config and "timeout" in config.Execute:
        return float(config.Execute.timeout)
    return 30.0


#: The instructor's own runs (recording references, executing mutants) are trusted code that must
#: not fail because the machine is busy: they get this many times the students' per-cell timeout.
INSTRUCTOR_TIMEOUT_FACTOR = 5


def instructor_timeout(course_root: str | Path) -> float:
    """Per-cell timeout for the instructor's own executions (:data:`INSTRUCTOR_TIMEOUT_FACTOR`)."""
    return INSTRUCTOR_TIMEOUT_FACTOR * cell_timeout(course_root)


def gradebook_url(course_root: str | Path) -> str:
    """The gradebook's database URL: ``CourseDirectory.db_url`` or ``<course>/gradebook.db``."""
    root = check_course_root(course_root)
    config = course_config(root)
    if "CourseDirectory" in config and "db_url" in config.CourseDirectory:
        return str(config.CourseDirectory.db_url)
    return f"sqlite:///{root / 'gradebook.db'}"


def nbgrader_env() -> dict[str, str]:
    """The environment for nbgrader subprocesses: this Python's ``bin/`` first on PATH.

    nbgrader starts ``alembic`` as a subprocess when it creates a gradebook, so the folder of
    the running interpreter must be on PATH.
    """
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


@dataclass(frozen=True)
class NbgraderRun:
    """Outcome of one nbgrader command."""

    args: tuple[str, ...]
    returncode: int
    log: str


def run_nbgrader(
    args: list[str], course_root: str | Path, *, check: bool = True, timeout: float | None = None
) -> NbgraderRun:
    """Run ``nbgrader ARGS`` in the course directory (so its ``nbgrader_config.py`` applies).

    Parameters
    ----------
    args : list of str
        Subcommand and options, e.g. ``["generate_assignment", "ps1", "--force"]``.
    course_root : path
        The course directory.
    check : bool, default=True
        Raise :class:`NbgraderError` when nbgrader exits non-zero.
    timeout : float, optional
        Seconds before the command is killed.
    """
    root = check_course_root(course_root)
    course_config(root)
    command = [sys.executable, "-m", "nbgrader", *args]
    proc = subprocess.run(
        command,
        cwd=root,
        env=nbgrader_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    log = proc.stdout + proc.stderr
    if check and proc.returncode != 0:
        tail = "\n".join(log.strip().splitlines()[-25:])
        raise NbgraderError(f"`nbgrader {' '.join(args)}` failed in {root}:\n{tail}")
    return NbgraderRun(tuple(args), proc.returncode, log)
