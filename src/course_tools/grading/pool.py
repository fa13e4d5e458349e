"""Worker processes for parallel grading, started from a fork server that imported nbgrader once.

Importing nbgrader takes seconds. A fork server imports it once, and every worker forked from it
starts with it loaded. The server is a clean single-threaded process, so forking from it is safe
even when the caller runs threads (the self-test executes a kernel while grading). This module
imports nothing heavy, so the command line can start the server first and let it import while
the command line itself is still loading.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context

PRELOAD = [
    "nbgrader.apps",
    "course_tools.grading.autograde",
    "course_tools.grading.execute",
    "course_tools.grading.limits",
    "course_tools.grading.sandbox",
    "course_tools.grading.verdict",
    "course_tools.grading.feedback",
    "course_tools.grading.tamper",
    "IPython.core.inputtransformer2",
]


def worker_context() -> multiprocessing.context.BaseContext:
    """The multiprocessing context for grading workers (forkserver, else spawn)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def start_workers_early() -> None:
    """Start the fork server now, so that it imports nbgrader while the caller does other work."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        from multiprocessing import forkserver

        worker_context()
        forkserver.ensure_running()
