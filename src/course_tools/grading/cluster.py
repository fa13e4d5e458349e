"""Grade a class on a Dask cluster: one task per submission, the grader alone writes the gradebook.

``course-tools grade --workers N`` starts a :class:`distributed.LocalCluster` of N single-threaded
worker processes on this machine; ``--scheduler ADDRESS`` uses a cluster that is already running
(dask-jobqueue on Slurm, dask-kubernetes on a Kubernetes hub, or ``dask scheduler`` and
``dask worker --nthreads 1`` started by hand).

Each task (:func:`grade_submission`) grades one submission exactly as a process of the local pool
does (:func:`.autograde.grade_one`: the submission staged, nbgrader's autograde with the student's
kernel in the sandbox, feedback written), against a private copy of the gradebook that the task
makes itself, in its worker's own scratch folder, from a snapshot the grader took before the run.
The task returns what autograde wrote for that student (:class:`.autograde.SubmissionRecord`, a
few hundred bytes) with the outcome, and deletes its copy. Nothing a task does touches the course
gradebook: the grader writes it alone, once every task is done, student by student, and writing a
student replaces that student's autograder fields (:func:`.autograde.write_submission`). Hence

* a worker that dies mid-task loses no grade: Dask's scheduler gives the tasks of a lost worker
  to the other workers by itself (each task may lose ``distributed.scheduler.allowed-failures``
  workers, 3 by default; one more and it fails with ``KilledWorker``, which that student's
  outcome reports). The rerun stages, grades and writes the autograded files again (nbgrader's
  ``--force``) against a fresh copy of the snapshot;
* a task that raises (say, the shared filesystem hiccups) is retried once, on any worker
  (``retries=1``: Dask's retries count exceptions, not dead workers);
* no grade is doubled: the grader keeps one result per student, however often Dask ran the task.

The course folder must be shared (a network filesystem) and mounted at the same path on the
grader and on every worker: tasks read ``source/``, ``submitted/`` and the snapshot there and
write ``autograded/`` and ``feedback/``. SQLite itself never runs on the shared filesystem: a task
copies the snapshot as a plain file to its worker's local disk.

Workers must run the same Python environment (``course-tools[cluster]``, nbgrader, bubblewrap on
the machine) with one thread each: nbgrader's applications log through one logger per class, and
the task changes the working directory of its process. :func:`connect` checks every worker before
the first task (and each task checks its own worker), and refuses with what to fix.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from course_tools.grading.autograde import (
    StudentOutcome,
    SubmissionRecord,
    grade_one,
    read_submission,
)
from course_tools.grading.submissions import STAGING_DIR

__all__ = [
    "CONNECT_TIMEOUT",
    "WORKER_WAIT",
    "ClusterError",
    "ClusterRun",
    "check_cluster",
    "connect",
    "grade_on_cluster",
    "grade_submission",
]

#: Seconds to wait for the scheduler of ``--scheduler ADDRESS`` to answer.
CONNECT_TIMEOUT = 30.0
#: Seconds to wait for a first worker (a batch queue may take a while to start one).
WORKER_WAIT = 600.0
#: Times a task that raised is run again (a dead worker is handled by Dask's rescheduling).
RETRIES = 1

INSTALL_HINT = (
    "pip install 'course-tools[cluster]' (from a clone: pip install -e '.[cluster]'), or the "
    "course environment, environment.yml"
)


class ClusterError(RuntimeError):
    """Grading on a Dask cluster cannot start: ``distributed`` missing, no scheduler, a worker
    that cannot grade. The message says what to fix."""


def check_cluster(cluster: int | str) -> int | str:
    """Validate ``cluster`` (a number of local workers >= 1, or a scheduler address) and check
    that ``distributed`` is installed, before anything is graded."""
    if isinstance(cluster, bool) or not isinstance(cluster, int | str):
        raise ValueError(
            f"cluster must be a number of local Dask workers (an int >= 1) or a scheduler "
            f"address such as 'tcp://host:8786', got {cluster!r}."
        )
    if isinstance(cluster, int) and cluster < 1:
        raise ValueError(f"A local Dask cluster needs at least 1 worker, got {cluster}.")
    if isinstance(cluster, str) and not cluster.strip():
        raise ValueError("The scheduler address is empty: give one such as 'tcp://host:8786'.")
    _distributed()
    return cluster


def _distributed():
    try:
        import distributed
    except ImportError as error:
        raise ClusterError(
            f"Grading on a Dask cluster needs the `distributed` package ({error}): "
            f"{INSTALL_HINT}. Without it, grade on this machine with --jobs N."
        ) from error
    return distributed


@contextmanager
def connect(cluster: int | str, *, timeout: float = CONNECT_TIMEOUT) -> Iterator[object]:
    """A ``distributed.Client`` for ``cluster``; a local cluster is started and closed here.

    Parameters
    ----------
    cluster : int or str
        Number of worker processes of a new local cluster (one thread each, no dashboard), or the
        address of a running scheduler, e.g. ``"tcp://10.0.0.5:8786"``.
    timeout : float, default=CONNECT_TIMEOUT
        Seconds to wait for the scheduler to answer.

    Raises
    ------
    ClusterError
        ``distributed`` is not installed, or the scheduler does not answer in time.
    """
    check_cluster(cluster)
    distributed = _distributed()
    if isinstance(cluster, int):
        import dask

        from course_tools.grading.pool import start_workers_early, worker_context

        # Fork the workers (and their restarts) from the grading fork server, which imported
        # nbgrader once, instead of spawning interpreters that import it again (seconds each).
        method = worker_context().get_start_method()  # spawn where there is no fork server
        start_workers_early()
        with (
            dask.config.set({"distributed.worker.multiprocessing-method": method}),
            distributed.LocalCluster(
                n_workers=cluster,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            ) as local,
            distributed.Client(local) as client,
        ):
            client.wait_for_workers(cluster, timeout=WORKER_WAIT)
            yield client
        return
    try:
        client = distributed.Client(cluster, timeout=timeout)
    except (OSError, TimeoutError) as error:
        raise ClusterError(
            f"Cannot reach the Dask scheduler at {cluster!r} within {timeout:g} s ({error}). "
            "Check that the scheduler is running (`dask scheduler` prints its address; a "
            "dask-jobqueue or dask-kubernetes cluster has it as `cluster.scheduler_address`), "
            "that the address and port are right, and that this machine may connect to it "
            "(firewall; a tls:// address needs the cluster's security settings). Or grade on "
            "this machine with --workers N or --jobs N."
        ) from error
    with client:
        yield client


def _worker_problem(
    course_root: str, snapshot: str, sandbox: bool, dask_worker=None
) -> tuple[str, str] | None:
    """Why this worker cannot grade, as (kind, message); None if it can.

    Runs on a worker: from ``client.run``, which passes the worker as ``dask_worker``, or in a
    task.
    """
    if dask_worker is None:
        from distributed import get_worker

        dask_worker = get_worker()
    threads = dask_worker.state.nthreads
    where = f"worker {dask_worker.address} on {socket.gethostname()}"
    if threads != 1:
        return "threads", (
            f"{where} runs {threads} threads; grading needs one thread per worker process "
            "(`dask worker --nthreads 1 --nworkers N`, SLURMCluster(processes=cores), "
            "LocalCluster(threads_per_worker=1))"
        )
    if not Path(course_root, "source").is_dir() or not Path(snapshot).is_file():
        return "course", (
            f"{where} does not see the course folder {course_root} (or its gradebook snapshot "
            f"{snapshot}): mount the course folder on every worker at the same path as on the "
            "grader (a shared filesystem)"
        )
    if sandbox:
        from course_tools.grading.sandbox import sandbox_problem

        problem = sandbox_problem()
        if problem:
            return "sandbox", f"{where}: {problem}"
    return None


def _refuse(problems: list[tuple[str, str]]) -> Exception:
    """The error for workers that cannot grade: SandboxUnavailable if a sandbox is missing."""
    from course_tools.grading.autograde import SandboxUnavailable

    messages = "; ".join(sorted({message for _, message in problems}))
    if any(kind == "sandbox" for kind, _ in problems):
        return SandboxUnavailable(
            f"Refusing to grade: student code must run in a sandbox, and {messages}"
        )
    return ClusterError(f"Refusing to grade on the cluster: {messages}")


def _check_workers(client, course_root: str, snapshot: str, sandbox: bool) -> int:
    """Wait for a worker, check every worker present; return how many there are."""
    address = client.scheduler.address
    try:
        client.wait_for_workers(1, timeout=WORKER_WAIT)
    except TimeoutError as error:
        raise ClusterError(
            f"No worker joined the Dask scheduler at {address} within {WORKER_WAIT:g} s: start "
            f"workers (`dask worker {address} --nthreads 1`) or scale your cluster "
            "(`cluster.scale(...)`)."
        ) from error
    try:
        found = client.run(_worker_problem, course_root, snapshot, sandbox)
    except Exception as error:  # e.g. course_tools not importable on a worker
        raise ClusterError(
            f"The workers of {address} cannot run course_tools' grading ({error!r}). Start them "
            f"from the same Python environment as the grader: {INSTALL_HINT}."
        ) from error
    problems = [p for p in found.values() if p]
    if problems:
        raise _refuse(problems)
    return len(found)


@contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Send file descriptor 2 of this process to ``path`` for a while."""
    sys.stderr.flush()
    saved = os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.dup2(target, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(target)


def grade_submission(
    course_root: str,
    assignment: str,
    student: str,
    *,
    snapshot: str,
    feedback: bool,
    notebooks: list[Path],
    sandbox: bool = True,
) -> tuple[StudentOutcome, SubmissionRecord | None]:
    """The Dask task: grade one submission against a private copy of the gradebook snapshot.

    Idempotent: the copy is made here, under a name unique to this run of the task, in the
    worker's own scratch folder (which Dask purges if the worker dies), and removed before
    returning; the autograded and feedback files are overwritten by a rerun.

    Returns
    -------
    outcome : StudentOutcome
    record : SubmissionRecord or None
        What autograde wrote for the student (None: nothing could be graded).
    """
    from distributed import get_worker

    problem = _worker_problem(course_root, snapshot, sandbox)
    if problem:  # a worker that joined after the check of :func:`grade_on_cluster`
        raise _refuse([problem])
    worker = get_worker()
    scratch = Path(
        tempfile.mkdtemp(prefix=f"grade-{student}-{uuid.uuid4().hex}-", dir=worker.local_directory)
    )
    here = os.getcwd()
    try:
        db = scratch / "gradebook.db"
        shutil.copyfile(snapshot, db)
        os.chdir(course_root)
        # The kernels inherit this process's stderr: keep their start-up banners out of the
        # worker's log (the local pool does the same); nbgrader's own log is captured.
        with _stderr_to(scratch / "stderr.txt"):
            success, seconds, log, notes = grade_one(
                course_root,
                str(db),
                assignment,
                student,
                feedback=feedback,
                notebooks=notebooks,
                sandbox=sandbox,
            )
        record = read_submission(f"sqlite:///{db}", assignment, student)
    finally:
        os.chdir(here)
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(Path(course_root, STAGING_DIR, student, assignment), ignore_errors=True)
    outcome = StudentOutcome(student, success, seconds, notes, log, worker=worker.address)
    return outcome, record


@dataclass
class ClusterRun:
    """What :func:`grade_on_cluster` brings back to the grader.

    Attributes
    ----------
    outcomes : dict of str to StudentOutcome
    records : dict of str to SubmissionRecord or None
        One per student graded (a student whose task failed has none).
    workers : int
        Workers present when grading started.
    where : str
        ``"local Dask cluster"`` or ``"Dask cluster at <scheduler address>"``.
    """

    outcomes: dict[str, StudentOutcome] = field(default_factory=dict)
    records: dict[str, SubmissionRecord | None] = field(default_factory=dict)
    workers: int = 0
    where: str = ""


def grade_on_cluster(
    cluster: int | str,
    course_root: Path,
    assignment: str,
    students: list[str],
    *,
    snapshot: Path,
    feedback: bool,
    notebooks: list[Path],
    sandbox: bool = True,
    progress: bool = True,
    timeout: float = CONNECT_TIMEOUT,
) -> ClusterRun:
    """Submit one task per student, collect every result; write nothing to the gradebook.

    Parameters
    ----------
    cluster : int or str
        See :func:`connect`.
    course_root : Path
        The course folder, at the same path on every worker.
    assignment : str
    students : list of str
    snapshot : Path
        A copy of the course gradebook in the course folder, not written during the run.
    feedback, notebooks, sandbox
        As for :func:`.autograde.grade_one`.
    progress : bool, default=True
    timeout : float, default=CONNECT_TIMEOUT

    Returns
    -------
    ClusterRun
    """
    distributed = _distributed()
    run = ClusterRun()
    with connect(cluster, timeout=timeout) as client:
        run.where = (
            "local Dask cluster" if isinstance(cluster, int) else f"Dask cluster at {cluster}"
        )
        run.workers = _check_workers(client, str(course_root), str(snapshot), sandbox)
        futures = {}
        try:
            for student in students:
                future = client.submit(
                    grade_submission,
                    str(course_root),
                    assignment,
                    student,
                    snapshot=str(snapshot),
                    feedback=feedback,
                    notebooks=notebooks,
                    sandbox=sandbox,
                    key=f"grade-{assignment}-{student}-{uuid.uuid4().hex}",
                    pure=False,
                    retries=RETRIES,
                )
                futures[future.key] = (student, future)
            bar = tqdm(total=len(futures), desc=f"autograde {assignment}", disable=not progress)
            for future in distributed.as_completed([f for _, f in futures.values()]):
                student, _ = futures.pop(future.key)
                if future.status == "finished":
                    outcome, record = future.result()
                    run.outcomes[student] = outcome
                    run.records[student] = record
                else:  # erred (KilledWorker after repeated deaths, or raised twice) or cancelled
                    error = future.exception() if future.status == "error" else future.status
                    run.outcomes[student] = StudentOutcome(
                        student, False, 0.0, [], f"worker failed: {error!r}"
                    )
                future.release()
                bar.update()
            bar.close()
        finally:
            if futures:  # interrupted: stop the cluster's work on this run
                client.cancel([f for _, f in futures.values()])
    return run
