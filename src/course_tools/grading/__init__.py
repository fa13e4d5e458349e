"""Grading for the course: reference outputs, mutants, release, self-test, parallel autograde.

nbgrader does the work; this package adds what it lacks. The ``course-tools`` command line wraps it
(``course-tools --help``). Notebooks import only the light part::

    from course_tools.grading import check_reference

Conventions for an assignment ``<a>`` in the nbgrader course directory (``assignments/``)
-------------------------------------------------------------------------------------------
``source/<a>/<a>.ipynb``
    Source notebook, committed without outputs, nbgrader metadata schema 3. Answers sit between
    ``### BEGIN SOLUTION`` / ``### END SOLUTION`` in solution cells; hidden tests between
    ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS`` in locked test cells. Hidden tests draw
    held-out inputs from their own seeds and call :func:`check_reference`.
``source/<a>/references.npz``
    Reference outputs and which test cell records each (with its tolerances), written by
    ``course-tools references <a>`` from what the solution's ``check_reference`` calls recorded.
    Never released, never visible to a student's kernel: the grader compares.
``source/<a>/mutants.py``
    ``MUTANTS = [Mutant(...)]``: plausible wrong answers, each naming the hidden test cells that
    must catch it (:mod:`course_tools.grading.mutants`). Never released.
other files in ``source/<a>/``
    Released to students with the notebook.

``nbgrader_config.py`` keeps the two instructor-only files out of the release with
``c.GenerateAssignmentApp.CourseDirectory.ignore = release_ignore_patterns()`` (a plain
``CourseDirectory.ignore`` would also hide them from autograde) and sets the per-cell timeout.

Modules
-------
light (imported by notebooks): :mod:`~course_tools.grading.references` (check and record),
:mod:`~course_tools.grading.mutants`, :mod:`~course_tools.grading.conventions`.
instructor side: :mod:`~course_tools.grading.recording` (``references``),
:mod:`~course_tools.grading.verdict` (the grader compares recorded values with the references),
:mod:`~course_tools.grading.sandbox` (each kernel in bubblewrap),
:mod:`~course_tools.grading.limits` (output in bytes), :mod:`~course_tools.grading.readymade`
(ready-made calls in write-it-yourself functions),
:mod:`~course_tools.grading.release` and :mod:`~course_tools.grading.leakcheck` (``release``),
:mod:`~course_tools.grading.selftest` (``check``), :mod:`~course_tools.grading.pipeline`
(``grade``: :mod:`~course_tools.grading.autograde`, :mod:`~course_tools.grading.cluster` (on
Dask), :mod:`~course_tools.grading.submissions`,
:mod:`~course_tools.grading.feedback`, :mod:`~course_tools.grading.tamper`),
nbgrader plug-ins (:mod:`~course_tools.grading.execute`, :mod:`~course_tools.grading.hooks`),
and :mod:`~course_tools.grading.benchmark` (parallel ``grade`` against serial nbgrader).
"""

from course_tools.grading.mutants import Mutant, load_mutants
from course_tools.grading.references import ReferenceMismatch, check_reference

__all__ = ["Mutant", "ReferenceMismatch", "check_reference", "load_mutants"]
