"""Grading a class on a Dask cluster (``course-tools grade --workers N / --scheduler ADDRESS``).

On localhost, with one local cluster of two single-threaded worker processes for the module: the
grades equal plain serial nbgrader's (a correct, a wrong, a blank and a cheating submission) and
nothing is doubled; a worker killed while it grades a submission leaves the run complete, that
submission graded again on another worker; writing a student twice changes nothing; and the
errors say what to fix.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
from distributed import WorkerPlugin
from fixtures.grading_helpers import (
    FIXTURE_COURSE,
    edit_cell,
    scratch_course,
    solution_notebooks,
    submit,
)

from course_tools.cli import main
from course_tools.grading import cluster as dask_grading
from course_tools.grading.autograde import (
    SandboxUnavailable,
    autograde_students,
    read_submission,
    write_submission,
)
from course_tools.grading.course import gradebook_url, run_nbgrader
from course_tools.grading.gradebook import read_scores
from course_tools.grading.notebooks import read_notebook
from course_tools.grading.release import generate_release
from course_tools.grading.submissions import STAGING_DIR

pytestmark = [pytest.mark.grading, pytest.mark.slow]

ASSIGNMENT = "mean_variance"
#: The submission whose worker is killed mid-run in the crash test.
VICTIM = "bo"


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """The fixture course released, with four submissions: right, wrong, blank, cheating."""
    course = scratch_course(FIXTURE_COURSE, ASSIGNMENT, tmp_path_factory.mktemp("dask") / "course")
    generate_release(course, ASSIGNMENT)
    good = solution_notebooks(course, ASSIGNMENT)
    name = f"{ASSIGNMENT}.ipynb"
    students = {
        "ada": good,
        "bo": {
            name: edit_cell(good[name], "trial_variance", lambda s: s.replace("ddof=1", "ddof=0"))
        },
        "gus": {name: read_notebook(course / "release" / ASSIGNMENT / name)},
        "hal": {
            name: edit_cell(
                good[name], "trial_variance", lambda s: s + "\nnp.testing.assert_allclose = print"
            )
        },
    }
    for student, notebooks in students.items():
        submit(course, ASSIGNMENT, student, notebooks)
    return course


def _copy(course: Path, dest: Path) -> Path:
    shutil.copytree(course, dest)
    return dest


@pytest.fixture(scope="module")
def serial(released, tmp_path_factory):
    """Plain serial ``nbgrader autograde`` of the same course: the reference grades."""
    course = _copy(released, tmp_path_factory.mktemp("serial") / "course")
    run_nbgrader(["autograde", ASSIGNMENT], course)
    return course


@pytest.fixture(scope="module")
def scheduler():
    """One local Dask cluster (2 workers, one thread each) for the module, as a running cluster
    that ``--scheduler`` would name."""
    with dask_grading.connect(2) as client:
        yield client


def _scores(course: Path):
    return read_scores(gradebook_url(course), ASSIGNMENT)


def _assert_same_as_serial(course: Path, serial: Path) -> None:
    rows = _scores(course)
    keys = Counter((r.student, r.notebook, r.cell) for r in rows)
    assert max(keys.values()) == 1, "a grade was written twice"
    assert len(rows) == 4 * 4  # 4 students x 4 graded cells: nothing lost
    assert rows == _scores(serial)


def test_dask_grades_equal_serial_nbgrader(released, serial, scheduler, tmp_path, capsys):
    course = _copy(released, tmp_path / "course")
    address = scheduler.scheduler.address
    argv = ["grade", ASSIGNMENT, "--scheduler", address, "--quiet", "--course", str(course)]
    status = main(argv)
    out = capsys.readouterr().out
    assert status == 0, out
    assert f"on the Dask cluster at {address} (2 worker(s))" in out
    assert "Sandbox: bubblewrap" in out
    _assert_same_as_serial(course, serial)
    # The cheater is reported; the feedback and the grades file come from the same run.
    assert "hal" in (course / f"tamper_{ASSIGNMENT}.csv").read_text()
    for student in ("ada", "bo", "gus", "hal"):
        assert list((course / "feedback" / student / ASSIGNMENT).glob("*.html"))
    assert not list((course / ".course_tools").glob("grading-*"))  # scratch removed
    assert not (course / STAGING_DIR / "ada" / ASSIGNMENT).exists()


class KillWorkerOnce(WorkerPlugin):
    """Kill the worker process (SIGKILL: no clean-up) once it has staged ``student``'s
    submission, the first time any worker runs that task."""

    name = "kill-worker-once"

    def __init__(self, student: str, staged: str, marker: str):
        self.student, self.staged, self.marker = student, staged, marker

    def setup(self, worker):
        self.worker = worker

    def transition(self, key, start, finish, **kwargs):
        if finish != "executing" or f"-{self.student}-" not in str(key):
            return
        try:  # exactly once over all workers and restarts
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        threading.Thread(target=self._kill_when_staged, daemon=True).start()

    def _kill_when_staged(self):
        deadline = time.monotonic() + 600
        while not Path(self.staged).is_dir() and time.monotonic() < deadline:
            time.sleep(0.02)
        Path(self.marker).write_text(f"{self.worker.address} {Path(self.staged).is_dir()}")
        os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_killed_mid_run_loses_and_doubles_nothing(released, serial, scheduler, tmp_path):
    course = _copy(released, tmp_path / "course")
    marker = tmp_path / "killed"
    staged = course / STAGING_DIR / VICTIM / ASSIGNMENT
    before = set(scheduler.run(os.getpid).values())
    scheduler.register_plugin(KillWorkerOnce(VICTIM, str(staged), str(marker)))
    try:
        run = autograde_students(
            course,
            ASSIGNMENT,
            cluster=scheduler.scheduler.address,
            feedback=True,
            progress=False,
        )
    finally:
        scheduler.unregister_worker_plugin(KillWorkerOnce.name)
    killed_address, was_staged = marker.read_text().split()
    assert was_staged == "True"  # the worker died while it graded the victim
    scheduler.wait_for_workers(2, timeout=300)  # the nanny restarted it
    assert set(scheduler.run(os.getpid).values()) != before
    assert [o.student for o in run.outcomes] == ["ada", "bo", "gus", "hal"]
    assert all(o.success for o in run.outcomes), [(o.student, o.log[-500:]) for o in run.failed]
    victim = next(o for o in run.outcomes if o.student == VICTIM)
    assert victim.worker and victim.worker != killed_address  # graded again elsewhere
    assert run.cluster == f"Dask cluster at {scheduler.scheduler.address}" and run.jobs == 2
    _assert_same_as_serial(course, serial)
    # The grader writes a student keyed by student: writing the same result again (a task that
    # Dask ran twice) changes nothing.
    url = gradebook_url(course)
    record = read_submission(gradebook_url(serial), ASSIGNMENT, VICTIM)
    assert write_submission(url, ASSIGNMENT, VICTIM, record) == 4
    _assert_same_as_serial(course, serial)


def test_workers_start_a_local_cluster_of_that_size(released, monkeypatch):
    """``--workers N`` asks for a local cluster of N workers (:func:`connect` with an int, which
    the module's ``scheduler`` fixture runs), in place of ``--jobs``."""
    from course_tools.grading import pipeline

    asked = {}

    def record(*args, **kwargs):
        asked.update(kwargs)
        raise RuntimeError("recorded")

    monkeypatch.setattr(pipeline, "grade_assignment", record)
    assert main(["grade", ASSIGNMENT, "--workers", "3", "--course", str(released)]) == 2
    assert asked["cluster"] == 3


def test_command_line_errors_say_what_to_fix(released, capsys):
    course = ["--course", str(released)]
    for args, expected in [
        (["--workers", "2", "--jobs", "2"], "give one of them"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "not allowed with"),
    ]:
        with pytest.raises(SystemExit) as stop:
            main(["grade", ASSIGNMENT, *args, *course])
        assert stop.value.code == 2
        assert expected in capsys.readouterr().err
    for bad in (0, -1, True, "", 2.0):
        with pytest.raises(ValueError, match="cluster|worker|address"):
            autograde_students(released, ASSIGNMENT, cluster=bad)


def test_missing_distributed_names_the_extra(released, monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "distributed", None)
    assert main(["grade", ASSIGNMENT, "--workers", "2", "--course", str(released)]) == 2
    err = capsys.readouterr().err
    assert "needs the `distributed` package" in err
    assert "pip install 'course-tools[cluster]'" in err


def test_unreachable_scheduler_says_what_to_check():
    with socket.socket() as probe:  # a local port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    with (
        pytest.raises(dask_grading.ClusterError) as error,
        dask_grading.connect(address, timeout=2),
    ):
        pass
    message = str(error.value)
    assert address in message and "within 2 s" in message
    assert "scheduler is running" in message and "firewall" in message


def test_a_worker_that_cannot_grade_is_refused(released, tmp_path, monkeypatch):
    from course_tools.grading import sandbox

    snapshot = tmp_path / "snapshot.db"
    snapshot.write_bytes(b"")
    worker = SimpleNamespace(address="tcp://10.0.0.7:40000", state=SimpleNamespace(nthreads=1))
    check = dask_grading._worker_problem
    assert check(str(released), str(snapshot), False, dask_worker=worker) is None
    threaded = SimpleNamespace(address=worker.address, state=SimpleNamespace(nthreads=4))
    kind, message = check(str(released), str(snapshot), False, dask_worker=threaded)
    assert kind == "threads" and "--nthreads 1" in message and "4 threads" in message
    kind, message = check(str(tmp_path / "elsewhere"), str(snapshot), False, dask_worker=worker)
    assert kind == "course" and "same path" in message and "shared filesystem" in message
    monkeypatch.setattr(sandbox, "sandbox_problem", lambda: "bwrap not found: apt-get install")
    problem = check(str(released), str(snapshot), True, dask_worker=worker)
    with pytest.raises(SandboxUnavailable, match="must run in a sandbox.*10.0.0.7.*bwrap"):
        raise dask_grading._refuse([problem])
