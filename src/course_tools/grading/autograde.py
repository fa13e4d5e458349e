"""Autograde students in parallel, one gradebook copy per worker, merged without loss.

nbgrader autogrades one student after another (nbgrader issue 174) and its SQLite gradebook does
not take concurrent writers. Here each worker process copies the gradebook, stages a student's
submission (:mod:`.submissions`), runs nbgrader's own ``autograde`` (and ``generate_feedback``)
for that student against its copy, and takes the next student. When all are done, one worker
merges every student into the course gradebook, one after another, with nbgrader's API:

* the submission timestamp, the late penalty of each notebook,
* ``auto_score`` and ``needs_manual_grade`` of every graded cell, ``auto_comment`` of answers.

These are exactly the fields nbgrader's autograde writes, and each copy started from the course
gradebook, so the result equals a serial ``nbgrader autograde`` (manual grades already entered
are kept). Workers are forked from a server that imported nbgrader once (:mod:`.pool`); this
process imports neither nbgrader nor nbformat, which keeps it cheap on a busy hub.

With ``cluster=`` the same grading of one submission (:func:`grade_one`) runs as a task on a Dask
cluster (:mod:`.cluster`); each task returns what autograde wrote (:func:`read_submission`) and
this side writes it (:func:`write_submission`), student by student, after all tasks are done.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import sqlite3
import tempfile
import time
import traceback
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tqdm.auto import tqdm

from course_tools.grading.conventions import check_course_root, source_notebooks
from course_tools.grading.course import course_config, gradebook_url
from course_tools.grading.pool import worker_context
from course_tools.grading.submissions import (
    STAGING_DIR,
    SubmissionNote,
    find_students,
    stage_submission,
)

__all__ = [
    "AutogradeRun",
    "SandboxUnavailable",
    "StudentOutcome",
    "SubmissionRecord",
    "autograde_students",
    "export_grades",
    "grade_one",
    "merge_submission",
    "read_submission",
    "run_nbgrader_app",
    "write_submission",
]


@dataclass
class StudentOutcome:
    """How grading one student went.

    Attributes
    ----------
    student : str
    success : bool
        nbgrader autograded (and wrote feedback for) every submitted notebook.
    seconds : float
        Wall time of this student's autograde and feedback.
    notes : list of SubmissionNote
        Renamed or missing notebooks, deleted cells.
    log : str
        nbgrader's log (its tail is shown when grading failed).
    worker : str
        The Dask worker that graded it (empty in the local pool).
    """

    student: str
    success: bool
    seconds: float
    notes: list[SubmissionNote] = field(default_factory=list)
    log: str = ""
    worker: str = ""


@dataclass
class AutogradeRun:
    """Result of :func:`autograde_students`.

    Attributes
    ----------
    assignment : str
    jobs : int
        Submissions graded at once: local processes, or the Dask workers present at the start.
    seconds : float
    outcomes : list of StudentOutcome
        In student order.
    sandboxed : bool
    cluster : str
        Where a Dask run graded (``"local Dask cluster"`` or ``"Dask cluster at <address>"``);
        empty for the local pool.
    """

    assignment: str
    jobs: int
    seconds: float
    outcomes: list[StudentOutcome]
    sandboxed: bool = True
    cluster: str = ""

    @property
    def failed(self) -> list[StudentOutcome]:
        """Students whose autograde failed as a whole."""
        return [o for o in self.outcomes if not o.success]


def _sqlite_path(url: str) -> Path:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ValueError(
            f"Parallel grading copies the gradebook, which needs a SQLite file; db_url is {url!r}. "
            "Use plain `nbgrader autograde` with another database."
        )
    return Path(url[len(prefix) :])


def _copy_sqlite(src: Path, dest: Path) -> None:
    source, target = sqlite3.connect(src), sqlite3.connect(dest)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()


class SandboxUnavailable(RuntimeError):
    """Grading was asked to sandbox student code, and the sandbox cannot start here."""


# ---- worker process -------------------------------------------------------------------------

_WORKER: dict[str, str] = {}


def _init_worker(course_root: str, main_db: str, scratch: str) -> None:
    """Copy the gradebook for this worker and send its stderr to a file (logs are captured)."""
    os.chdir(course_root)
    db = Path(scratch) / f"gradebook-{os.getpid()}.db"
    _copy_sqlite(Path(main_db), db)
    _WORKER.update(root=course_root, db=str(db))
    err = os.open(Path(scratch) / f"worker-{os.getpid()}.stderr", os.O_WRONLY | os.O_CREAT)
    os.dup2(err, 2)


def run_nbgrader_app(app_class: type, argv: list[str]) -> tuple[bool, str]:
    """Run an nbgrader application in this process; return (success, captured log).

    Command-line options take priority over ``nbgrader_config.py`` (traitlets' rule), so
    ``--CourseDirectory.db_url`` here always wins over a db_url in the course config.
    """
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    app = app_class()
    success = True
    try:
        app.initialize(argv)
        for old in list(app.log.handlers):
            app.log.removeHandler(old)
        app.log.addHandler(handler)
        app.start()
    except SystemExit as stop:
        success = stop.code in (0, None)
    except Exception:
        success = False
        buffer.write(traceback.format_exc())
    finally:
        app.log.removeHandler(handler)
    return success, buffer.getvalue()


def grade_one(
    course_root: str,
    db: str,
    assignment: str,
    student: str,
    *,
    feedback: bool,
    notebooks: list[Path],
    sandbox: bool = True,
) -> tuple[bool, float, str, list[SubmissionNote]]:
    """Stage one submission, autograde it against the gradebook file ``db``, write feedback.

    The autograded notebooks go to ``<course_root>/autograded/<student>/<assignment>/`` (and
    ``feedback/``); the grades go to ``db`` only, a copy of the course gradebook that the caller
    merges (:func:`merge_submission`). Runs in a grading worker: a process of the local pool or a
    task on a Dask cluster (:mod:`.cluster`).

    Returns
    -------
    success : bool
    seconds : float
    log : str
    notes : list of SubmissionNote
    """
    from nbgrader.apps import AutogradeApp, GenerateFeedbackApp

    start = time.perf_counter()
    notes = stage_submission(course_root, assignment, student, notebooks)
    common = [
        f"--student={student}",
        "--force",
        f"--CourseDirectory.root={course_root}",
        f"--CourseDirectory.db_url=sqlite:///{db}",
    ]
    success, log = run_nbgrader_app(
        AutogradeApp,
        [
            assignment,
            *common,
            f"--CourseDirectory.submitted_directory={STAGING_DIR}",
            f"--ExecuteSurvivingCrashes.sandbox={'bwrap' if sandbox else 'none'}",
        ],
    )
    graded = Path(course_root, "autograded", student, assignment).is_dir()
    if feedback and graded:
        ok, feedback_log = run_nbgrader_app(GenerateFeedbackApp, [assignment, *common])
        success, log = success and ok, log + feedback_log
    return success, time.perf_counter() - start, log, notes


def _grade_in_worker(
    assignment: str, student: str, feedback: bool, notebooks: list[Path], sandbox: bool = True
) -> tuple[str, bool, float, str, str, list[SubmissionNote]]:
    """:func:`grade_one` in a process of the local pool, against this worker's gradebook copy."""
    success, seconds, log, notes = grade_one(
        _WORKER["root"],
        _WORKER["db"],
        assignment,
        student,
        feedback=feedback,
        notebooks=notebooks,
        sandbox=sandbox,
    )
    return student, success, seconds, log, _WORKER["db"], notes


def export_grades(course_root: str, csv_path: str) -> tuple[bool, str]:
    """``nbgrader export --to csv_path`` in this process (the pipeline runs it in a worker)."""
    from nbgrader.apps import ExportApp

    return run_nbgrader_app(ExportApp, ["--to", csv_path, f"--CourseDirectory.root={course_root}"])


# ---- merging --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmissionRecord:
    """What nbgrader's autograde wrote into a gradebook for one submission (plain data).

    Attributes
    ----------
    timestamp : datetime or None
        The submission time (late penalties depend on it).
    notebooks : tuple of (name, late_submission_penalty, grades, comments)
        ``grades``: tuple of (cell, auto_score, needs_manual_grade); ``comments``: tuple of
        (cell, auto_comment).
    """

    timestamp: datetime | None
    notebooks: tuple


def read_submission(db_url: str, assignment: str, student: str) -> SubmissionRecord | None:
    """What autograde wrote for one student in the gradebook ``db_url`` (None: nothing graded)."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gb:
        try:
            graded = gb.find_submission(assignment, student)
        except MissingEntry:
            return None
        return SubmissionRecord(
            timestamp=graded.timestamp,
            notebooks=tuple(
                (
                    nb.name,
                    nb.late_submission_penalty,
                    tuple((g.name, g.auto_score, g.needs_manual_grade) for g in nb.grades),
                    tuple((c.name, c.auto_comment) for c in nb.comments),
                )
                for nb in graded.notebooks
            ),
        )


def write_submission(
    main_url: str, assignment: str, student: str, record: SubmissionRecord | None
) -> int:
    """Write one student's autograde results into the course gradebook; return grades written.

    Keyed by student: the submission is created or updated, and every cell's autograder fields
    are *replaced*, so writing the same record twice leaves the gradebook as writing it once
    (manual grades already entered are kept).
    """
    if record is None:
        return 0
    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings(), Gradebook(main_url) as dst:
        # nbgrader's add_submission triggers harmless autoflush warnings (serial autograde too).
        warnings.simplefilter("ignore", SAWarning)
        try:
            dst.find_student(student)
        except MissingEntry:
            dst.add_student(student)
        kwargs = {"timestamp": record.timestamp} if record.timestamp is not None else {}
        target = dst.update_or_create_submission(assignment, student, **kwargs)
        written = 0
        by_name = {nb.name: nb for nb in target.notebooks}
        for name, penalty, graded_cells, auto_comments in record.notebooks:
            dest_nb = by_name[name]
            dest_nb.late_submission_penalty = penalty
            grades = {g.name: g for g in dest_nb.grades}
            for cell, auto_score, needs_manual_grade in graded_cells:
                grades[cell].auto_score = auto_score
                grades[cell].needs_manual_grade = needs_manual_grade
                written += 1
            comments = {c.name: c for c in dest_nb.comments}
            for cell, auto_comment in auto_comments:
                comments[cell].auto_comment = auto_comment
        dst.db.commit()
    return written


def merge_submission(main_url: str, worker_url: str, assignment: str, student: str) -> int:
    """Copy what autograde wrote for one student from a worker gradebook into the course's.

    Returns
    -------
    int
        Number of grades written.
    """
    return write_submission(
        main_url, assignment, student, read_submission(worker_url, assignment, student)
    )


def _add_students(main_url: str, students: list[str]) -> None:
    """Add every student to the course gradebook, so that the exported grades have their row
    even when nothing could be graded (an empty or unreadable submission)."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(main_url) as gb:
        for student in students:
            try:
                gb.find_student(student)
            except MissingEntry:
                gb.add_student(student)


def _merge_all(
    main_url: str, assignment: str, graded_in: dict[str, str], students: list[str] = ()
) -> int:
    """Merge each student from the worker gradebook that graded it; return grades written."""
    _add_students(main_url, students)
    return sum(
        merge_submission(main_url, f"sqlite:///{db}", assignment, student)
        for student, db in sorted(graded_in.items())
    )


def _write_all(
    main_url: str,
    assignment: str,
    records: dict[str, SubmissionRecord | None],
    students: list[str] = (),
) -> int:
    """Write each student's returned record, in student order; return grades written."""
    _add_students(main_url, students)
    return sum(
        write_submission(main_url, assignment, student, record)
        for student, record in sorted(records.items())
    )


# ---- parent ---------------------------------------------------------------------------------


def _check_assignment_in_gradebook(db: Path, assignment: str) -> None:
    """Fail early, without importing nbgrader, if generate_assignment never ran."""
    found = 0
    if db.is_file():
        connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            found = connection.execute(
                "SELECT COUNT(*) FROM notebook JOIN assignment "
                "ON notebook.assignment_id = assignment.id WHERE assignment.name = ?",
                (assignment,),
            ).fetchone()[0]
        except sqlite3.DatabaseError:
            found = 0
        finally:
            connection.close()
    if not found:
        raise ValueError(
            f"Assignment {assignment!r} is not in the gradebook {db}. Release it first "
            f"(`course-tools release {assignment}`), which records its cells and points."
        )


def autograde_students(
    course_root: str | Path,
    assignment: str,
    *,
    jobs: int = 2,
    students: list[str] | None = None,
    feedback: bool = False,
    progress: bool = True,
    sandbox: bool = True,
    cluster: int | str | None = None,
) -> AutogradeRun:
    """Autograde every submission of an assignment, ``jobs`` students at a time.

    Parameters
    ----------
    course_root : path
        The nbgrader course directory.
    assignment : str
        Assignment name (a folder of ``source/``).
    jobs : int, default=2
        Worker processes (each runs one kernel at a time). Not used with ``cluster``.
    students : list of str, optional
        Grade only these students (default: everyone in ``submitted/``).
    feedback : bool, default=False
        Also run nbgrader's generate_feedback for each student, in the same worker, right
        after autograding (``feedback/<student>/<assignment>/``).
    progress : bool, default=True
        Show a progress bar.
    sandbox : bool, default=True
        Run each student's kernel in a bubblewrap sandbox (:mod:`.sandbox`). False runs student
        code as the grader: only for machines without bubblewrap, and only on purpose.
    cluster : int or str, optional
        Grade on a Dask cluster (:mod:`.cluster`, needs ``course-tools[cluster]``) instead of
        the local pool: an int starts a local cluster of that many single-threaded worker
        processes, a str is the address of a running scheduler (``"tcp://host:8786"``), whose
        workers see the course folder at the same path. One task per submission; this process
        alone writes the gradebook, after all tasks are done.

    Returns
    -------
    AutogradeRun
        One outcome per student, in student order.

    Raises
    ------
    SandboxUnavailable
        ``sandbox=True`` but the sandbox cannot start here (or on a worker of ``cluster``); the
        message says why and how to fix.
    course_tools.grading.cluster.ClusterError
        ``distributed`` is missing, the scheduler does not answer, or a worker cannot grade.
    """
    if cluster is None:
        if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
            raise ValueError(f"jobs must be a positive integer, got {jobs!r}.")
    else:
        from course_tools.grading.cluster import check_cluster

        check_cluster(cluster)
    if sandbox and not isinstance(cluster, str):  # a scheduler's workers are checked there
        from course_tools.grading.sandbox import sandbox_problem

        problem = sandbox_problem()
        if problem:
            raise SandboxUnavailable(
                f"Refusing to grade: student code must run in a sandbox, and {problem}"
            )
    root = check_course_root(course_root)
    course_config(root)
    notebooks = source_notebooks(root, assignment)
    url = gradebook_url(root)
    main_db = _sqlite_path(url)
    _check_assignment_in_gradebook(main_db, assignment)
    available = find_students(root, assignment)
    if students is None:
        students = available
    unknown = sorted(set(students) - set(available))
    if unknown:
        raise ValueError(
            f"No submission of {assignment!r} for {unknown}: expected folders "
            f"submitted/<student>/{assignment}/ in {root}."
        )
    start = time.perf_counter()
    (root / ".course_tools").mkdir(exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="grading-", dir=root / ".course_tools")
    where = ""
    try:
        if cluster is None:
            outcomes = _grade_in_pool(
                root,
                assignment,
                students,
                url=url,
                main_db=main_db,
                scratch=scratch,
                jobs=jobs,
                feedback=feedback,
                notebooks=notebooks,
                sandbox=sandbox,
                progress=progress,
            )
        else:
            from course_tools.grading.cluster import grade_on_cluster

            snapshot = Path(scratch) / "gradebook-snapshot.db"
            _copy_sqlite(main_db, snapshot)
            on_cluster = grade_on_cluster(
                cluster,
                root,
                assignment,
                students,
                snapshot=snapshot,
                feedback=feedback,
                notebooks=notebooks,
                sandbox=sandbox,
                progress=progress,
            )
            outcomes, jobs, where = on_cluster.outcomes, on_cluster.workers, on_cluster.where
            # This process alone writes the course gradebook (nbgrader imported in a child).
            with ProcessPoolExecutor(max_workers=1, mp_context=worker_context()) as pool:
                pool.submit(_write_all, url, assignment, on_cluster.records, students).result()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        for student in students:
            shutil.rmtree(root / STAGING_DIR / student / assignment, ignore_errors=True)
    return AutogradeRun(
        assignment=assignment,
        jobs=jobs,
        seconds=time.perf_counter() - start,
        outcomes=[outcomes[s] for s in students],
        sandboxed=sandbox,
        cluster=where,
    )


def _grade_in_pool(
    root: Path,
    assignment: str,
    students: list[str],
    *,
    url: str,
    main_db: Path,
    scratch: str,
    jobs: int,
    feedback: bool,
    notebooks: list[Path],
    sandbox: bool,
    progress: bool,
) -> dict[str, StudentOutcome]:
    """Grade in a local process pool, then merge every student from the workers' copies."""
    outcomes: dict[str, StudentOutcome] = {}
    graded_in: dict[str, str] = {}
    with ProcessPoolExecutor(
        max_workers=min(jobs, max(len(students), 1)),
        mp_context=worker_context(),
        initializer=_init_worker,
        initargs=(str(root), str(main_db), scratch),
    ) as pool:
        futures = {
            pool.submit(_grade_in_worker, assignment, s, feedback, notebooks, sandbox): s
            for s in students
        }
        bar = tqdm(total=len(futures), desc=f"autograde {assignment}", disable=not progress)
        for future in as_completed(futures):
            student = futures[future]
            try:
                _, success, seconds, log, worker_db, notes = future.result()
            except Exception as error:  # a worker process died
                outcomes[student] = StudentOutcome(
                    student, False, 0.0, [], f"worker failed: {error!r}"
                )
            else:
                graded_in[student] = worker_db
                outcomes[student] = StudentOutcome(student, success, seconds, notes, log)
            bar.update()
        bar.close()
        # One worker merges every student, one after another, into the course gradebook.
        pool.submit(_merge_all, url, assignment, graded_in, students).result()
    return outcomes
