"""The course JupyterHub on real parts: hub/jupyterhub_config.py, PAM accounts, Chromium.

The test starts the hub as ``make hub`` does (on free ports of 127.0.0.1, with its state in a
temporary folder), with real accounts: one instructor and two students in the Unix groups the hub
admits. The instructor releases the fixture assignment through the exchange from the command line;
then, in headless Chromium, a student logs in with their password, the hub starts their
JupyterLab, the student finds the assignment in nbgrader's assignment list, fetches it, opens the
notebook, writes answers, runs all cells and sees the visible test's message. The instructor tools
(formgrader, course list, *Create Assignment*) are absent for the student and present for the
instructor. Every process (hub, proxy, servers, browser) is stopped at the end, also on failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from fixtures.accounts import (
    ENV_BIN,
    FIXTURE_COURSE_ID,
    HUB_DIR,
    Account,
    CourseAccounts,
    course_accounts,
    readable_by_everyone,
    require,
    run_as,
    shared_folder,
    user_env,
)
from fixtures.grading_helpers import FIXTURE_COURSE

pytestmark = [pytest.mark.grading, pytest.mark.slow]

ASSIGNMENT = "mean_variance"
CHROMIUM = Path("/usr/bin/chromium")
#: Chromium as root, offline and quiet: no sandbox (root), no GPU, no background traffic.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PROXY = HUB_DIR / "node_modules" / ".bin" / "configurable-http-proxy"
#: Milliseconds the browser waits for a server to start or a page to settle on a busy machine.
SLOW_MS = 60_000

#: What the student types into the two answer cells: a right mean, a variance of the wrong shape,
#: so that the visible test stops with its message.
ANSWERS = {
    "trial_mean": "def trial_mean(responses):\n    return np.mean(responses, axis=0)\n",
    "trial_variance": (
        "def trial_variance(responses):\n"
        "    return np.var(responses, axis=0, ddof=1, keepdims=True)\n"
    ),
}
VISIBLE_MESSAGE = "one variance per neuron"


def require_hub_prerequisites() -> None:
    require(
        CHROMIUM.exists(),
        f"The hub test drives Debian's Chromium, and {CHROMIUM} is missing",
        "Install it as root with `apt-get install chromium` (`make sysdeps` does this)",
    )
    require(
        PROXY.exists(),
        f"JupyterHub's proxy is not installed ({PROXY} is missing)",
        "Run `make proxy` (needs npm: `apt-get install nodejs npm`); `make test` runs it",
    )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        require(False, "Playwright's Python package is missing", "Run `make venv`")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _stop(pids: list[int], timeout: float = 15.0) -> None:
    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            procs.append(psutil.Process(pid))
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=timeout)


@contextlib.contextmanager
def running_hub(accounts: CourseAccounts, exchange: Path, state: Path) -> Iterator[str]:
    """Start the course hub; yield its URL; stop the hub, its proxy and every server."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.update(
        PATH=os.pathsep.join([str(ENV_BIN), env.get("PATH", "/usr/bin:/bin")]),
        COURSE_STUDENTS_GROUP=accounts.students_group,
        COURSE_INSTRUCTORS_GROUP=accounts.instructors_group,
        COURSE_EXCHANGE=str(exchange),
        COURSE_ID=FIXTURE_COURSE_ID,
        COURSE_HUB_STATE=str(state),
    )
    log = state / "jupyterhub.log"
    command = [
        str(ENV_BIN / "jupyterhub"),
        "-f",
        str(HUB_DIR / "jupyterhub_config.py"),
        f"--JupyterHub.bind_url={url}",
        f"--JupyterHub.hub_bind_url=http://127.0.0.1:{free_port()}",
        f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{free_port()}",
    ]
    with open(log, "w") as out:
        hub = subprocess.Popen(
            command,
            cwd=state,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        while True:
            if hub.poll() is not None:
                pytest.fail(f"JupyterHub exited with {hub.returncode}:\n{_tail(log)}", False)
            try:
                with urllib.request.urlopen(f"{url}/hub/api", timeout=5) as reply:
                    if reply.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterHub did not answer on {url} in 180 s:\n{_tail(log)}", False)
            time.sleep(0.5)
        yield url
    finally:
        # The hub stops the servers and the proxy it started when it gets SIGTERM...
        family = [hub.pid]
        with contextlib.suppress(psutil.Error):
            family += [p.pid for p in psutil.Process(hub.pid).children(recursive=True)]
        pid_file = state / "jupyterhub-proxy.pid"
        if pid_file.exists():
            with contextlib.suppress(ValueError):
                family.append(int(pid_file.read_text().strip()))
        with contextlib.suppress(ProcessLookupError):
            hub.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            hub.wait(timeout=60)
        # ...and whatever is left of them is stopped here (the accounts' own processes go when
        # the accounts are removed).
        _stop(family)
        hub.wait(timeout=30)


@dataclass
class Visit:
    """What one user saw in JupyterLab."""

    nbgrader_menu: list[str]
    create_assignment: bool
    formgrader_status: int
    released: str = ""
    outputs: str = ""
    validate_button: bool = False


import sys as _sys
_T0 = time.monotonic()
def mark(what):
    print(f"MARK {time.monotonic()-_T0:6.1f} {what}", file=_sys.stderr)


def log_in(page, url: str, account: Account) -> None:
    mark("login")
    page.goto(f"{url}/hub/login")
    page.fill("#username_input", account.name)
    page.fill("#password_input", account.password)
    page.click("#login_submit")
    page.wait_for_url(f"**/user/{account.name}/lab**", timeout=SLOW_MS)
    mark("spawned")
    page.wait_for_selector("#jp-main-dock-panel", timeout=SLOW_MS)
    mark("lab")


def nbgrader_menu(page) -> list[str]:
    page.get_by_role("menuitem", name="Nbgrader", exact=True).click()
    menu = page.locator(".lm-Menu").last
    menu.wait_for()
    items = [t.strip() for t in menu.locator(".lm-Menu-itemLabel").all_inner_texts()]
    page.keyboard.press("Escape")
    return [item for item in items if item]


def open_notebook(page, url: str, account: Account, path: str) -> None:
    page.goto(f"{url}/user/{account.name}/lab/tree/{path}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell .cm-content", timeout=SLOW_MS)


def has_create_assignment(page) -> bool:
    """nbgrader's *Create Assignment* panel is in the right side bar (its id is spelled so)."""
    return page.locator("#nbgrader-create_assignemnt").count() > 0


def formgrader_status(page, url: str, account: Account) -> int:
    return page.request.get(f"{url}/user/{account.name}/formgrader").status


def student_visit(browser, url: str, student: Account) -> Visit:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        log_in(page, url, student)
        menu = nbgrader_menu(page)
        # nbgrader's assignment list: the release is there; fetch it.
        page.get_by_role("menuitem", name="Nbgrader", exact=True).click()
        page.locator(".lm-Menu-itemLabel", has_text="Assignment List").click()
        released = page.locator("#released_assignments_list")
        released.get_by_text(ASSIGNMENT).wait_for(timeout=SLOW_MS)
        released_text = released.inner_text()
        mark("list")
        released.get_by_role("button", name="Fetch").click()
        # Fetched: it moves to the downloaded list; expand it and open its notebook from there.
        fetched = page.locator("#fetched_assignments_list .assignment-notebooks-link")
        fetched.filter(has_text=ASSIGNMENT).click(timeout=SLOW_MS)
        notebooks = page.locator(f"#nbgrader-{FIXTURE_COURSE_ID}-{ASSIGNMENT}")
        notebooks.get_by_text(ASSIGNMENT, exact=True).click(timeout=SLOW_MS)
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell .cm-content", timeout=SLOW_MS)
        cells = page.locator(".jp-NotebookPanel:visible .jp-Cell")
        for index, name in ((2, "trial_mean"), (3, "trial_variance")):
            editor = cells.nth(index).locator(".cm-content")
            editor.click()
            page.keyboard.press("Control+a")
            page.keyboard.insert_text(ANSWERS[name])
        mark("typed")
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()
        visible_test = cells.nth(4).locator(".jp-OutputArea-output")
        try:
            visible_test.get_by_text(VISIBLE_MESSAGE).wait_for(timeout=SLOW_MS)
        except Exception:
            page.screenshot(path="/tmp/wt19b_shot.png")
            raise
        mark("ran")
        return Visit(
            nbgrader_menu=menu,
            create_assignment=has_create_assignment(page),
            formgrader_status=formgrader_status(page, url, student),
            released=released_text,
            outputs=cells.nth(4).inner_text(),
            validate_button=page.locator(".validate-button").count() > 0,
        )
    finally:
        context.close()


def instructor_visit(browser, url: str, instructor: Account, notebook: str) -> Visit:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        log_in(page, url, instructor)
        menu = nbgrader_menu(page)
        open_notebook(page, url, instructor, notebook)
        return Visit(
            nbgrader_menu=menu,
            create_assignment=has_create_assignment(page),
            formgrader_status=formgrader_status(page, url, instructor),
        )
    finally:
        context.close()


@pytest.fixture(scope="module")
def visits():
    require_hub_prerequisites()
    from playwright.sync_api import sync_playwright

    with (
        course_accounts() as accounts,
        shared_folder("course-hub-") as shared,
        readable_by_everyone(),
    ):
        teacher, student = accounts.instructor, accounts.students[0]
        exchange = shared / "exchange"
        exchange.mkdir()
        exchange.chmod(0o777)
        state = shared / "state"
        state.mkdir()
        # The instructor's course, released from the command line through the exchange.
        course = teacher.home / "course"
        course.mkdir()
        shutil.copy2(FIXTURE_COURSE / "nbgrader_config.py", course / "nbgrader_config.py")
        shutil.copytree(FIXTURE_COURSE / "source" / ASSIGNMENT, course / "source" / ASSIGNMENT)
        for path in [course, *course.rglob("*")]:
            shutil.chown(path, teacher.name, teacher.gid)
        env = user_env(
            teacher,
            JUPYTER_CONFIG_PATH=str(HUB_DIR / "everyone"),
            COURSE_EXCHANGE=str(exchange),
            COURSE_ID=FIXTURE_COURSE_ID,
        )
        run_as(
            teacher,
            ["course-tools", "release", ASSIGNMENT, "--to-exchange"],
            cwd=course,
            env=env,
        )
        mark("released")
        with running_hub(accounts, exchange, state) as url, sync_playwright() as pw:
            mark("hub up")
            browser = pw.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            try:
                seen_by_student = student_visit(browser, url, student)
                seen_by_instructor = instructor_visit(
                    browser, url, teacher, f"course/source/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
                )
            finally:
                browser.close()
        yield {"student": seen_by_student, "instructor": seen_by_instructor}


def test_student_finds_the_release_in_the_assignment_list(visits):
    assert ASSIGNMENT in visits["student"].released
    assert FIXTURE_COURSE_ID in visits["student"].released


def test_student_runs_the_notebook_and_sees_the_visible_test(visits):
    outputs = visits["student"].outputs
    assert "AssertionError" in outputs and VISIBLE_MESSAGE in outputs
    assert visits["student"].validate_button


def test_instructor_tools_are_absent_for_the_student(visits):
    seen = visits["student"]
    assert "Assignment List" in seen.nbgrader_menu
    assert "Formgrader" not in seen.nbgrader_menu and "Course List" not in seen.nbgrader_menu
    assert not seen.create_assignment
    assert seen.formgrader_status == 404


def test_instructor_tools_are_present_for_the_instructor(visits):
    seen = visits["instructor"]
    assert {"Assignment List", "Formgrader", "Course List"} <= set(seen.nbgrader_menu)
    assert seen.create_assignment
    assert seen.formgrader_status == 200
