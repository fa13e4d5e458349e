"""nbgrader's Execute preprocessor, made to survive a kernel that dies and to run it in a sandbox.

When student code kills the kernel (``os._exit``, a segfault in a C extension, the kernel running
out of memory), nbgrader abandons the whole submission: no cell is graded. This subclass marks the
cell that killed the kernel with a ``KernelDied`` error, starts a fresh kernel, runs the cells
above again (their outputs are kept as first recorded) and goes on: only the parts that depend on
the crashing cell lose points. ``nbgrader_config.py`` puts it in place of nbgrader's Execute::

    from course_tools.grading.conventions import autograde_preprocessors

    c.Autograde.autograde_preprocessors = autograde_preprocessors()

With ``sandbox = "bwrap"`` (the course default, :func:`~.conventions.configure_grading`) the
kernel runs in a bubblewrap sandbox (:mod:`course_tools.grading.sandbox`) on a private copy of
the submission folder without the instructor-only files; the copy and the sandbox are gone when
the notebook is done, before anything is graded.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from pathlib import Path

import nbformat
from nbclient.exceptions import DeadKernelError
from nbclient.util import run_sync
from nbgrader.preprocessors import Execute
from traitlets import Enum, Integer

__all__ = ["ExecuteSurvivingCrashes"]


def _error(ename: str, evalue: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_output(
        "error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]
    )


class ExecuteSurvivingCrashes(Execute):
    """Execute every cell; after a kernel death, restart, replay the cells above and continue."""

    max_kernel_restarts = Integer(
        3, help="Kernel deaths tolerated per notebook before the remaining cells are skipped."
    ).tag(config=True)

    sandbox = Enum(
        ["bwrap", "none"],
        default_value="none",
        help="Run the kernel in a bubblewrap sandbox ('bwrap') or as the grader ('none').",
    ).tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._restarts = 0
        self._skip_from: int | None = None
        self._done: list[int] = []
        if self.sandbox == "none" or km is not None:
            return super().preprocess(nb, resources, km)
        from course_tools.grading.sandbox import (
            SandboxedKernelManager,
            private_copy,
            sandbox_problem,
        )

        problem = sandbox_problem()
        if problem:
            raise RuntimeError(f"Cannot grade in a sandbox: {problem}")
        folder = Path(resources.get("metadata", {}).get("path") or ".").resolve()
        scratch = Path(tempfile.mkdtemp(prefix="ct-"))
        try:
            scratch.chmod(0o755)
            self._sandbox_dirs = (private_copy(folder, scratch / "work"), scratch / "run")
            self._hidden = [str(Path.cwd()), str(Path.home()), str(folder)]
            self.kernel_manager_class = SandboxedKernelManager
            resources = {**resources, "metadata": {**resources.get("metadata", {})}}
            resources["metadata"]["path"] = str(self._sandbox_dirs[0])
            return super().preprocess(nb, resources, km)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        if self.sandbox != "none" and hasattr(km, "runtime_dir"):
            km.workdir, km.runtime_dir = (str(p) for p in self._sandbox_dirs)
            km.hidden = ":".join(self._hidden)
        return km

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return super().preprocess_cell(cell, resources, index)
        if self._skip_from is not None:
            cell.outputs = [
                _error(
                    "KernelDied",
                    f"Not run: the kernel died {self._restarts} times (last in cell "
                    f"{self._skip_from}), so grading stopped here.",
                )
            ]
            return cell, self.resources
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            cell.outputs = [
                _error(
                    "KernelDied",
                    "The kernel died while running this cell (the process crashed, exited or ran "
                    "out of memory). The cells above were run again in a new kernel.",
                )
            ]
            self._recover(index)
            return cell, self.resources
        self._done.append(index)
        return cell, resources

    def _recover(self, index: int) -> None:
        if self._restarts >= self.max_kernel_restarts:
            self._skip_from = index
            return
        self._restarts += 1
        self.log.warning(
            "Kernel died in cell %d: restarting and replaying %d cells", index, len(self._done)
        )
        try:
            if self.kc is not None:
                self.kc.stop_channels()
            run_sync(self.km.restart_kernel)(now=True)
            self.start_new_kernel_client()
            for earlier in list(self._done):
                replay = copy.deepcopy(self.nb.cells[earlier])
                self.execute_cell(replay, earlier, store_history=False)
        except DeadKernelError:
            self._recover(index)
