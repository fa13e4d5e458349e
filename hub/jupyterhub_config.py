"""JupyterHub configuration of the course "Deep CNNs and the ventral visual stream".

One machine, local Unix accounts, one course. Start it as root from the repository root with
``make hub`` (or ``jupyterhub -f hub/jupyterhub_config.py``); hub/README.md walks through it.

- Login: the machine's own accounts and passwords (PAM). Members of the Unix group of students or
  of instructors may log in; nobody else.
- Servers: each user's JupyterLab runs as that user, from the Python environment that runs the hub
  (the course environment: nbgrader, ``course_tools``, the kernels students use).
- nbgrader: every server reads ``hub/everyone/nbgrader_config.py`` (course id and exchange folder);
  students' servers also read ``hub/students/``, which switches off the instructor tools (the
  formgrader, the course list and the *Create Assignment* side bar). Instructors keep them.

Settings an administrator changes, each an environment variable of the hub process:

``COURSE_STUDENTS_GROUP`` / ``COURSE_INSTRUCTORS_GROUP``
    Unix groups of students and instructors (default ``course-students``, ``course-instructors``).
``COURSE_EXCHANGE``
    nbgrader's exchange folder, shared by all users (default ``/srv/nbgrader/exchange``).
``COURSE_ID``
    nbgrader course id (default ``neuroai-ventral-stream``, as in the course's own
    ``assignments/nbgrader_config.py``).
``COURSE_HUB_STATE``
    Folder of the hub's database, cookie secret and proxy pid file (default ``hub/state``).

Address and ports are ordinary JupyterHub options; the default is http://127.0.0.1:8000 (this
machine only). Put the hub behind HTTPS before opening it to a network
(``--JupyterHub.bind_url=https://...`` with ``ssl_cert`` and ``ssl_key``, or a reverse proxy).
"""

from __future__ import annotations

import grp
import os
import pwd
import sys
from pathlib import Path

c = get_config()  # noqa: F821 (JupyterHub provides get_config when it loads this file)

HUB_DIR = Path(__file__).resolve().parent
ENV_BIN = Path(sys.executable).parent  # the environment that runs the hub runs the servers too

STUDENTS_GROUP = os.environ.get("COURSE_STUDENTS_GROUP", "course-students")
INSTRUCTORS_GROUP = os.environ.get("COURSE_INSTRUCTORS_GROUP", "course-instructors")
EXCHANGE = os.environ.get("COURSE_EXCHANGE", "/srv/nbgrader/exchange")
COURSE_ID = os.environ.get("COURSE_ID", "neuroai-ventral-stream")
STATE = Path(os.environ.get("COURSE_HUB_STATE", HUB_DIR / "state")).resolve()

#: Jupyter configuration folders that every server reads, and those only students' servers read.
EVERYONE_CONFIG = HUB_DIR / "everyone"
STUDENTS_CONFIG = HUB_DIR / "students"


def check_setup() -> None:
    """Stop with an explanation when the machine is not ready for this hub."""
    problems = []
    for group in (STUDENTS_GROUP, INSTRUCTORS_GROUP):
        try:
            grp.getgrnam(group)
        except KeyError:
            problems.append(f"the Unix group {group!r} does not exist (groupadd {group})")
    exchange = Path(EXCHANGE)
    if not exchange.is_dir():
        problems.append(
            f"the exchange folder {exchange} does not exist "
            f"(mkdir -p {exchange} && chmod ugo+rw {exchange})"
        )
    elif exchange.stat().st_mode & 0o777 != 0o777:
        problems.append(f"the exchange folder {exchange} is not writable by all (chmod ugo+rw)")
    if problems:
        sys.exit(
            "The course hub cannot start: " + "; ".join(problems) + ". See hub/README.md, or set "
            "COURSE_STUDENTS_GROUP, COURSE_INSTRUCTORS_GROUP and COURSE_EXCHANGE."
        )


def is_instructor(username: str) -> bool:
    """True when the Unix account ``username`` belongs to the instructors' group."""
    account = pwd.getpwnam(username)
    gid = grp.getgrnam(INSTRUCTORS_GROUP).gr_gid
    return gid in os.getgrouplist(username, account.pw_gid)


def jupyter_config_path(username: str) -> str:
    """``JUPYTER_CONFIG_PATH`` of a user's server: the course's settings, by role."""
    folders = [EVERYONE_CONFIG] if is_instructor(username) else [STUDENTS_CONFIG, EVERYONE_CONFIG]
    return os.pathsep.join(str(folder) for folder in folders)


def set_role(spawner) -> None:
    """Before a server starts: give it the settings of the user's role."""
    spawner.environment = {
        **spawner.environment,
        "JUPYTER_CONFIG_PATH": jupyter_config_path(spawner.user.name),
    }
    role = "instructor" if is_instructor(spawner.user.name) else "student"
    spawner.log.info("Starting %s's server as a %s of %s", spawner.user.name, role, COURSE_ID)


check_setup()
STATE.mkdir(parents=True, exist_ok=True)

# The hub: this machine only, until an administrator sets an address and HTTPS.
c.JupyterHub.bind_url = "http://127.0.0.1:8000"
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")

# The proxy: installed into hub/node_modules by `make proxy`, else the one on PATH.
proxy = HUB_DIR / "node_modules" / ".bin" / "configurable-http-proxy"
c.ConfigurableHTTPProxy.command = [str(proxy) if proxy.exists() else "configurable-http-proxy"]
c.ConfigurableHTTPProxy.pid_file = str(STATE / "jupyterhub-proxy.pid")

# Login with the machine's accounts, for the course's two groups only.
c.JupyterHub.authenticator_class = "pam"
c.PAMAuthenticator.allowed_groups = {STUDENTS_GROUP, INSTRUCTORS_GROUP}

# Each user's JupyterLab runs as that user, from the course environment.
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [str(ENV_BIN / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.environment = {
    # nbgrader starts `alembic` as a subprocess: the environment's bin/ comes first on PATH.
    "PATH": os.pathsep.join([str(ENV_BIN), "/usr/local/bin", "/usr/bin", "/bin"]),
    "COURSE_EXCHANGE": EXCHANGE,
    "COURSE_ID": COURSE_ID,
}
c.Spawner.pre_spawn_hook = set_role
# A server imports nbgrader and JupyterLab; on two busy cores that can take a while.
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180
