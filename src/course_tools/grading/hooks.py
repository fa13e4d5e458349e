"""nbgrader post-convert hook that deletes instructor-only files from what students receive.

``nbgrader_config.py`` keeps reference outputs and mutants out of the release with
``c.GenerateAssignmentApp.CourseDirectory.ignore``. The formgrader's *Generate* and
*Generate Feedback* buttons do not read that app-scoped setting, so the same files would reach
``release/`` (and ``feedback/``) from there. This hook, set as ``post_convert_hook`` of
``GenerateAssignment`` and ``GenerateFeedback``, removes them whichever way nbgrader was called.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from course_tools.grading.conventions import is_instructor_only

_LOG = logging.getLogger(__name__)

#: nbgrader step folder -> the folder its output goes to (nbgrader's default names).
_OUTPUT_OF = {"source": "release", "autograded": "feedback"}


def output_folder(notebook: str | Path, course_root: str | Path) -> Path | None:
    """Folder that nbgrader writes for the step whose input notebook is ``notebook``.

    ``source/<a>/x.ipynb`` gives ``release/<a>``; ``autograded/<s>/<a>/x.ipynb`` gives
    ``feedback/<s>/<a>``; anything else gives None.
    """
    root = Path(course_root).resolve()
    try:
        relative = Path(notebook).resolve().parent.relative_to(root)
    except ValueError:
        return None
    if not relative.parts or relative.parts[0] not in _OUTPUT_OF:
        return None
    return root / _OUTPUT_OF[relative.parts[0]] / Path(*relative.parts[1:])


def remove_instructor_files(
    assignment: str = "", student: str = "", notebooks: Sequence[str] = (), **_: object
) -> list[Path]:
    """Delete reference and mutant files from the folder nbgrader just wrote.

    Called by nbgrader (from the course root, which is the working directory) as
    ``hook(assignment=..., student=..., notebooks=[...])``.

    Returns
    -------
    list of Path
        The files removed.
    """
    removed = []
    folders = {output_folder(nb, Path.cwd()) for nb in notebooks}
    for folder in sorted(f for f in folders if f is not None and f.is_dir()):
        for path in folder.rglob("*"):
            if path.is_file() and is_instructor_only(path):
                path.unlink()
                removed.append(path)
                _LOG.warning("Removed instructor-only file %s", path)
    return removed
