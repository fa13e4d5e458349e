"""Shared test set-up: no network, a private data cache, a non-interactive plotting backend."""

import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _private_data_cache(tmp_path_factory, monkeypatch):
    """Point COURSE_TOOLS_DATA at a temporary folder so tests never read a user's cache."""
    monkeypatch.setenv("COURSE_TOOLS_DATA", str(tmp_path_factory.getbasetemp() / "data_cache"))


class _NetworkBlocked(OSError):
    pass


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Fail loudly if a test tries to open a network connection (loopback is allowed)."""
    real_connect = socket.socket.connect

    def guarded_connect(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and (
            host.startswith("127.") or host in {"localhost", "::1"} or sock.family == socket.AF_UNIX
        ):
            return real_connect(sock, address)
        raise _NetworkBlocked(f"Tests must not touch the network (tried to connect to {address}).")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


def pytest_configure(config):
    os.environ.setdefault("MPLBACKEND", "Agg")
    _check_xdist_grouping(config)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # Each xdist worker gets one core's worth of threads (and so do the kernels and builds it
        # starts, which inherit the variable): two workers with two OpenMP threads each on two
        # cores spin-wait for each other, and torch then burns about 3x the CPU time.
        os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (it adds "@group" to node ids)
def pytest_collection_modifyitems(config, items):
    """Group and order tests for ``pytest -n N --dist loadgroup --no-loadscope-reorder``.

    Groups: a module's tests stay on one worker, so a module- or session-scoped fixture (a
    trained model, a graded course) is computed once, not once per worker. Every test that reads
    the built book joins one group, whatever its module: ``built_book`` is session-scoped, and
    each worker is a session of its own, so the book is then built once per run. A module that
    marks its own ``xdist_group`` keeps it. A module whose slow tests are independent spreads
    them over the workers with ``XDIST_SPLIT_BY``: ``"test"`` (each test a group of its own) or
    the name of a parametrized fixture (one group per value of it, e.g. per assignment).

    Order: the suite keeps both cores busy, so its length is the longer worker's queue. The
    scheduler hands out groups in the order they are collected, so the longest chain (the book)
    goes first, then the groups with a ``slow`` test, then the many quick ones, which fill the
    gaps at the end (longest first, the classic rule for balancing two queues).
    """
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue  # a test module that chose its group (e.g. tests sharing system state)
        module = item.nodeid.split("::")[0]
        split_by = getattr(item.module, "XDIST_SPLIT_BY", None)
        callspec = getattr(item, "callspec", None)
        if "built_book" in getattr(item, "fixturenames", ()):
            group = "built_book"
        elif split_by == "test":
            group = item.nodeid
        elif split_by and callspec is not None and split_by in callspec.params:
            value = callspec.params[split_by]
            parts = value if isinstance(value, tuple) else (value,)
            # xdist reads the group after the last "@" and only when no "]" follows it
            key = re.sub(r"[@\[\]]", "_", "/".join(str(getattr(p, "name", p)) for p in parts))
            group = f"{module}::{split_by}={key}"
        else:
            group = module
        item.add_marker(pytest.mark.xdist_group(group))

    def group_of(item):
        return item.get_closest_marker("xdist_group").args[0]

    slow_groups = {group_of(item) for item in items if item.get_closest_marker("slow")}

    def rank(item):
        group = group_of(item)
        return 0 if group == "built_book" else 1 if group in slow_groups else 2

    items.sort(key=rank)  # stable: collection order within a rank


def _check_xdist_grouping(config) -> None:
    """Refuse ``--dist loadgroup`` where pytest-xdist would ignore the groups without a word.

    pytest-xdist passes a test's group to its scheduler as an ``@group`` suffix that it writes into
    the node id. pytest 9.2 stores node ids in a structured form, the write is lost, and every test
    is then scheduled on its own (pytest-xdist#1386, pytest-xdist <= 3.8): each worker would build
    the book and train each module's models again. Checked in the controller, before any worker.
    """
    import importlib.metadata

    from packaging.version import Version

    if os.environ.get("PYTEST_XDIST_WORKER") or config.getoption("dist", "no") != "loadgroup":
        return
    pytest_version = Version(pytest.__version__)
    xdist_version = Version(importlib.metadata.version("pytest-xdist"))
    if pytest_version >= Version("9.2") and xdist_version < Version("3.9"):
        raise pytest.UsageError(
            f"pytest {pytest_version} with pytest-xdist {xdist_version} ignores xdist_group "
            "(pytest-xdist#1386): the book and each module's fixtures would run once per worker. "
            "Install the versions pyproject.toml pins (`make venv`), or run serially "
            "(`make test TEST_WORKERS=0`)."
        )


@dataclass(frozen=True)
class BookBuild:
    """One strict ``make book`` run, shared by every test that reads the built book."""

    returncode: int
    log: str
    html: Path


@pytest.fixture(scope="session")
def built_book() -> BookBuild:
    """Build the book once per test session (strict, as ``make book`` does) and share the result.

    Tests that check the build's warnings, its pages, its figures or the site in a browser all use
    this one build; a test asserts ``returncode == 0`` itself, so a broken build fails every test
    that needs it with the build's log, not with a missing file.
    """
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("COURSE_TOOLS_DATA", None)  # the book uses the real default cache location
    env.pop("MPLBACKEND", None)  # the kernel must use its inline backend, or figures vanish
    # Set-up first, so that only the book build's own output is checked for warnings.
    subprocess.run(["make", "--no-print-directory", "venv"], cwd=ROOT, env=env, check=True)
    proc = subprocess.run(
        ["make", "--no-print-directory", "book"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    return BookBuild(proc.returncode, proc.stdout + proc.stderr, ROOT / "_build" / "html")
