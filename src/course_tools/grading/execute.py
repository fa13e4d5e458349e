"""nbgrader's Execute preprocessor, made to survive a kernel that dies.

When student code kills the kernel (``os._exit``, a segfault in a C extension, the kernel running
out of memory), nbgrader abandons the whole submission: no cell is graded. This subclass marks the
cell that killed the kernel with a ``KernelDied`` error, starts a fresh kernel, runs the cells
above again (their outputs are kept as first recorded) and goes on: only the parts that depend on
the crashing cell lose points. ``nbgrader_config.py`` puts it in place of nbgrader's Execute::

    from course_tools.grading.conventions import autograde_preprocessors

    c.Autograde.autograde_preprocessors = autograde_preprocessors()
"""

from __future__ import annotations

import copy

import nbformat
from nbclient.exceptions import DeadKernelError
from nbclient.util import run_sync
from nbgrader.preprocessors import Execute
from traitlets import Integer

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

    def preprocess(self, nb, resources=None, km=None):
        self._restarts = 0
        self._skip_from: int | None = None
        self._done: list[int] = []
        return super().preprocess(nb, resources, km)

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
