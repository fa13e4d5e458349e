"""Where things live in the nbgrader course directory, and which files students never see.

One assignment ``<a>`` is the folder ``<course>/source/<a>/``:

``<a>.ipynb``
    The source notebook (solutions and hidden tests included). More notebooks are allowed.
``references.npz``
    Reference outputs recorded by ``course-tools references <a>`` (instructor only).
``mutants.py``
    Plausible wrong answers used by ``course-tools check <a>`` (instructor only).
anything else
    Data files the students need; they are released with the notebook.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

#: File of recorded reference outputs inside ``source/<a>/``.
REFERENCES_FILE = "references.npz"
#: File of mutants (plausible wrong answers) inside ``source/<a>/``.
MUTANTS_FILE = "mutants.py"
#: Files that autograde needs but a release, a student or a feedback folder must never contain.
INSTRUCTOR_ONLY_FILES = (REFERENCES_FILE, MUTANTS_FILE)
#: nbgrader's own ignore patterns (its default ``CourseDirectory.ignore``).
NBGRADER_IGNORE = (".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback")
#: Set by ``course-tools references``: the path where reference outputs are recorded.
RECORD_ENV_VAR = "COURSE_TOOLS_RECORD_REFERENCES"
#: Optional: where :func:`check_reference` reads references (default: ``references.npz`` in the
#: working directory, which is the assignment folder while grading).
REFERENCES_ENV_VAR = "COURSE_TOOLS_REFERENCES"

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN_TESTS = "### BEGIN HIDDEN TESTS"
END_HIDDEN_TESTS = "### END HIDDEN TESTS"


def is_instructor_only(path: str | Path) -> bool:
    """Return True when a file name matches :data:`INSTRUCTOR_ONLY_FILES`."""
    name = Path(path).name
    return any(fnmatch.fnmatch(name, pattern) for pattern in INSTRUCTOR_ONLY_FILES)


#: nbgrader 0.9's autograde preprocessors, with Execute replaced by one that survives kernel deaths
#: (and runs the kernel in a sandbox), followed by the grader's own comparison of the recorded
#: values with the references (:mod:`course_tools.grading.verdict`).
AUTOGRADE_PREPROCESSORS = (
    "course_tools.grading.execute.ExecuteSurvivingCrashes",
    "course_tools.grading.verdict.DecideFromRecordings",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "course_tools.grading.limits.LimitOutputBytes",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
)


def autograde_preprocessors() -> list[str]:
    """Value for ``c.Autograde.autograde_preprocessors`` (names, so the config loads fast)."""
    return list(AUTOGRADE_PREPROCESSORS)


def release_ignore_patterns() -> list[str]:
    """Patterns for ``c.GenerateAssignmentApp.CourseDirectory.ignore`` (release only)."""
    return [*NBGRADER_IGNORE, *INSTRUCTOR_ONLY_FILES]


def configure_grading(c) -> None:
    """Apply the course's grading settings to an nbgrader config object ``c``.

    Every course (the real one and the tests' fixture course) calls this from its
    ``nbgrader_config.py`` and sets only its course id and per-cell timeout itself. It sets:

    - ``Autograde.autograde_preprocessors``: a kernel that dies (``os._exit``, a segfault, out of
      memory) costs only the cells that need it; plain nbgrader gives the whole submission 0;
      the grader, not the kernel, compares recorded values with the references; the kernel
      runs in a bubblewrap sandbox (``ExecuteSurvivingCrashes.sandbox``; ``course-tools grade
      --no-sandbox`` turns it off) and gets 300 s to start and 60 s for its last output on a
      loaded machine;
    - ``GenerateAssignmentApp`` / ``GenerateFeedbackApp.CourseDirectory.ignore``:
      ``references.npz`` and ``mutants.py`` stay out of the release and the feedback, but
      autograde still copies them in (a plain ``CourseDirectory.ignore`` would hide them there);
    - ``GenerateAssignment`` / ``GenerateFeedback.post_convert_hook``: the same for the
      formgrader's buttons, which do not read the app-scoped settings above;
    - ``GenerateFeedback.preprocessors``: feedback shows the visible part of each test cell
      only; hidden tests, their tracebacks and anything they printed are removed.
    """
    hook = "course_tools.grading.hooks.remove_instructor_files"
    c.Autograde.autograde_preprocessors = autograde_preprocessors()
    c.ExecuteSurvivingCrashes.sandbox = "bwrap"
    # A kernel that starts slowly, or whose last output arrives late, on a loaded machine is not a
    # failed submission (nbgrader raises after 4 s of iopub silence by default).
    c.ExecuteSurvivingCrashes.startup_timeout = 300
    c.ExecuteSurvivingCrashes.iopub_timeout = 60
    c.GenerateAssignmentApp.CourseDirectory.ignore = release_ignore_patterns()
    c.GenerateFeedbackApp.CourseDirectory.ignore = release_ignore_patterns()
    c.GenerateAssignment.post_convert_hook = hook
    c.GenerateFeedback.post_convert_hook = hook
    c.GenerateFeedback.preprocessors = [
        "nbgrader.preprocessors.GetGrades",
        "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
        "course_tools.grading.feedback.HideHiddenTests",
    ]


def check_course_root(course_root: str | Path) -> Path:
    """Return the course root as an absolute path, or explain why it is not one.

    A course directory holds ``nbgrader_config.py`` or a ``source/`` folder (git does not keep
    an empty ``source/``, so a fresh clone of a course without assignments has only the config).

    Raises
    ------
    FileNotFoundError
        When the folder has neither.
    """
    root = Path(course_root).expanduser().resolve()
    if not (root / "source").is_dir() and not (root / "nbgrader_config.py").is_file():
        raise FileNotFoundError(
            f"{root} is not an nbgrader course directory: it has no nbgrader_config.py and no "
            "source/ folder. Pass --course PATH pointing at the folder that holds them."
        )
    return root


def assignment_names(course_root: str | Path) -> list[str]:
    """Names of the assignments in ``<course>/source/``, sorted."""
    root = check_course_root(course_root)
    if not (root / "source").is_dir():
        return []
    return sorted(
        p.name
        for p in (root / "source").iterdir()
        if p.is_dir() and not p.name.startswith((".", "_")) and any(p.glob("*.ipynb"))
    )


def assignment_dir(course_root: str | Path, assignment: str) -> Path:
    """The folder ``<course>/source/<assignment>``, checked to exist and to hold a notebook."""
    root = check_course_root(course_root)
    path = root / "source" / assignment
    if not path.is_dir() or not any(path.glob("*.ipynb")):
        known = ", ".join(assignment_names(root)) or "none"
        raise ValueError(
            f"Unknown assignment {assignment!r}: {path} does not exist or holds no notebook. "
            f"Assignments in this course: {known}."
        )
    return path


def source_notebooks(course_root: str | Path, assignment: str) -> list[Path]:
    """The source notebooks of one assignment, sorted by name."""
    folder = assignment_dir(course_root, assignment)
    return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
