"""Run a student's kernel in a bubblewrap sandbox, as an unprivileged user, with no network.

nbgrader executes submissions in a kernel that runs as the grader, in the assignment folder,
next to ``references.npz``, the gradebook and every other student's work. Here only the *kernel*
moves into a sandbox (bubblewrap, https://github.com/containers/bubblewrap); nbgrader, the
references and the gradebook stay in the grader process, which talks to the kernel over Unix
sockets in a private runtime folder. Inside the sandbox the kernel

* runs as ``nobody`` (uid 65534) when the grader is root, otherwise as the grader's user in a
  user namespace;
* sees the system (``/usr``, ``/etc``...), the Python environment and the ``course_tools``
  package read-only, its own *private copy* of the submission (notebook and released data files,
  never ``references.npz`` or ``mutants.py``) read-write, and an empty private ``/tmp`` and
  ``$HOME``; the course folder, the gradebook, the other submissions and the grader's home are
  not there at all;
* has no network (``--unshare-net``) and its own PID namespace (``--unshare-pid
  --die-with-parent``): when the kernel stops, every process it started is killed by the kernel
  of the operating system, detached or not.

:func:`sandbox_problem` says why the sandbox cannot start on this machine (no ``bwrap``, no user
namespaces, not Linux) and how to fix it; ``course-tools grade`` refuses to grade then unless
given ``--no-sandbox``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import Unicode

from course_tools.grading.conventions import is_instructor_only

__all__ = [
    "NOBODY",
    "SandboxedKernelManager",
    "bwrap_command",
    "private_copy",
    "sandbox_problem",
]

#: The unprivileged user the kernel runs as when the grader is root.
NOBODY = 65534
#: System folders the kernel may read (when they exist).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
#: Environment variables passed into the sandbox (everything else is dropped).
KEPT_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONHASHSEED", "OMP_NUM_THREADS")


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _readable_dirs() -> list[Path]:
    """The Python environment and the course_tools package (read-only in the sandbox)."""
    import course_tools

    dirs = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix)}
    dirs.add(Path(course_tools.__file__).resolve().parent)
    found = []
    for path in sorted({d.resolve() for d in dirs}):
        if path.is_dir() and not any(str(path).startswith(s + "/") for s in SYSTEM_DIRS):
            found.append(path)
    return found


def bwrap_command(
    command: list[str],
    *,
    workdir: str | Path,
    runtime_dir: str | Path,
    hide: list[str | Path] = (),
) -> list[str]:
    """Wrap ``command`` so it runs in a bubblewrap sandbox.

    Parameters
    ----------
    command : list of str
        What to run inside (e.g. the kernel's command line).
    workdir : path
        The private folder the command works in (read-write, the working directory).
    runtime_dir : path
        Folder of the kernel's connection file and sockets (read-write, same path inside).
    hide : list of paths
        Folders to cover with an empty tmpfs should a readable folder contain them (the course
        folder, the grader's home).

    Returns
    -------
    list of str
        The full command line.
    """
    args = ["bwrap"]
    for folder in SYSTEM_DIRS:
        if os.path.islink(folder):
            args += ["--symlink", os.readlink(folder), folder]
        elif os.path.isdir(folder):
            args += ["--ro-bind", folder, folder]
    created: set[str] = set()

    def parents(folder: Path) -> list[str]:
        """Parents the sandbox creates for a mount are private to root unless made traversable."""
        out = []
        for parent in reversed(folder.parents[:-1]):
            if str(parent) not in created and not _under(str(parent), SYSTEM_DIRS):
                out += ["--perms", "0755", "--dir", str(parent)]
                created.add(str(parent))
        return out

    for folder in _readable_dirs():
        args += [*parents(folder), "--ro-bind", str(folder), str(folder)]
    readable = [*SYSTEM_DIRS, *map(str, _readable_dirs())]
    for secret in hide:
        secret = str(Path(secret).resolve())
        if _under(secret, readable):
            args += ["--tmpfs", secret]
    home = "/tmp/home"
    args += [
        "--dev", "/dev",
        "--perms", "1777", "--tmpfs", "/dev/shm",  # private shared memory (semaphores, joblib)
        "--proc", "/proc",
        "--tmpfs", "/tmp",
        "--perms", "0777", "--dir", home,
    ]  # fmt: skip
    created.add("/tmp")
    for folder in (Path(workdir), Path(runtime_dir)):
        args += [*parents(folder), "--bind", str(folder), str(folder)]
    args += [
        "--chdir", str(workdir),
        "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
    ]  # fmt: skip
    for name in KEPT_ENV:
        if name in os.environ:
            args += ["--setenv", name, os.environ[name]]
    args += ["--setenv", "HOME", home, "--setenv", "MPLBACKEND", "Agg"]
    args += ["--setenv", "PYTHONDONTWRITEBYTECODE", "1"]
    if _as_root():
        # bwrap keeps only the two capabilities setpriv needs to become nobody, which drops them
        # all: the kernel holds no privilege and owns nothing outside its private folders.
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--"]
        args += ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        args += ["--inh-caps=-all", "--"]
    else:
        args += ["--unshare-user", "--"]
    return [*args, *command]


def _under(path: str, folders) -> bool:
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)


@cache
def sandbox_problem() -> str | None:
    """Why a bubblewrap sandbox cannot start here (with how to fix it), or None when it can."""
    if not sys.platform.startswith("linux"):
        return (
            f"the sandbox needs Linux (bubblewrap), this is {sys.platform}. Grade on a Linux "
            "machine, or pass --no-sandbox to grade without it (student code then runs as you)."
        )
    missing = [tool for tool in ("bwrap", "setpriv" if _as_root() else "") if tool]
    missing = [tool for tool in missing if shutil.which(tool) is None]
    if missing:
        return (
            f"{' and '.join(missing)} not found. Install bubblewrap (Debian/Ubuntu: `apt-get "
            "install bubblewrap`; Fedora: `dnf install bubblewrap`), or pass --no-sandbox."
        )
    with tempfile.TemporaryDirectory(prefix="ct-probe-") as scratch:
        os.chmod(scratch, 0o777)
        probe = bwrap_command(["/bin/sh", "-c", "true"], workdir=scratch, runtime_dir=scratch)
        try:
            done = subprocess.run(probe, capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"bubblewrap did not start ({error}). Pass --no-sandbox to grade without it."
    if done.returncode != 0:
        return (
            f"bubblewrap cannot create its namespaces here ({done.stderr.strip()[-300:]}). "
            "Allow unprivileged user namespaces (`sysctl -w kernel.unprivileged_userns_clone=1`"
            " or `user.max_user_namespaces` > 0; in a container run it with --privileged or a "
            "seccomp profile that allows them), or pass --no-sandbox."
        )
    return None


def private_copy(folder: str | Path, dest: str | Path) -> Path:
    """Copy a submission for the sandbox: every file but instructor-only files and links."""
    folder, dest = Path(folder), Path(dest)

    def ignore(where: str, names: list[str]) -> set[str]:
        # A symbolic link could point at an instructor file: links are never followed.
        return {
            n
            for n in names
            if is_instructor_only(n)
            or n == "gradebook.db"
            or os.path.islink(os.path.join(where, n))
        }

    shutil.copytree(folder, dest, ignore=ignore, symlinks=False, dirs_exist_ok=True)
    if _as_root():
        for path in [dest, *dest.rglob("*")]:
            os.chown(path, NOBODY, NOBODY, follow_symlinks=False)
    return dest


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel runs in :func:`bwrap_command`'s sandbox.

    It talks to the kernel over Unix sockets in ``runtime_dir`` (no network inside), interrupts
    it with a message (a signal would reach bubblewrap, not the kernel) and, when it stops the
    kernel, stops bubblewrap, which takes every process of the sandbox with it.
    """

    workdir = Unicode("", help="Private folder the kernel works in.").tag(config=True)
    runtime_dir = Unicode("", help="Folder of the connection file and sockets.").tag(config=True)
    hidden = Unicode("", help="os.pathsep-separated folders the kernel must not see.").tag(
        config=True
    )

    def _prepare_runtime(self) -> None:
        runtime = Path(self.runtime_dir)
        runtime.mkdir(parents=True, exist_ok=True)
        if _as_root():
            os.chown(runtime, NOBODY, NOBODY)
        self.transport = "ipc"
        self.ip = str(runtime / "kernel")
        self.connection_file = str(runtime / "kernel.json")

    def write_connection_file(self, **kwargs) -> None:
        if not self.runtime_dir:
            raise RuntimeError("SandboxedKernelManager needs runtime_dir and workdir.")
        if self.transport != "ipc":
            self._prepare_runtime()
        super().write_connection_file(**kwargs)
        if _as_root():
            os.chown(self.connection_file, NOBODY, NOBODY)

    async def _async_pre_start_kernel(self, **kw):
        self._prepare_runtime()
        self.kernel_spec.interrupt_mode = "message"
        kw["cwd"] = self.workdir
        return await super()._async_pre_start_kernel(**kw)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        command = super().format_kernel_cmd(extra_arguments)
        hide = [p for p in self.hidden.split(os.pathsep) if p]
        return bwrap_command(command, workdir=self.workdir, runtime_dir=self.runtime_dir, hide=hide)
