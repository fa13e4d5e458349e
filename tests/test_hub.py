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
import re
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
    course_env,
    exchange_in,
    instructor_course,
    readable_by_everyone,
    require,
    run_as,
    shared_folder,
    stop_processes,
)

# Both modules create Unix accounts and open /root to them for a while: one xdist worker runs
# them one after the other (tests/conftest.py groups by module otherwise).
pytestmark = [pytest.mark.grading, pytest.mark.slow, pytest.mark.xdist_group("unix_accounts")]

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
SLOW_MS = 240_000

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
#: The status bar's kernel item once the kernel is connected and waiting.
KERNEL_IDLE = re.compile(r"Python 3 \(ipykernel\) \| Idle")


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
        family = []
        with contextlib.suppress(psutil.Error):
            family += [psutil.Process(hub.pid)]
            family += psutil.Process(hub.pid).children(recursive=True)
        pid_file = state / "jupyterhub-proxy.pid"
        with contextlib.suppress(ValueError, OSError, psutil.Error):
            family.append(psutil.Process(int(pid_file.read_text().strip())))
        with contextlib.suppress(ProcessLookupError):
            hub.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            hub.wait(timeout=60)
        # ...and whatever is left of them is stopped here (psutil checks that each is still the
        # same process; the accounts' own processes go when the accounts are removed).
        stop_processes(family)
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


def log_in(page, url: str, account: Account) -> None:
    page.goto(f"{url}/hub/login")
    page.fill("#username_input", account.name)
    page.fill("#password_input", account.password)
    page.click("#login_submit")
    page.wait_for_url(f"**/user/{account.name}/lab**")
    page.wait_for_selector("#jp-main-dock-panel")


def open_nbgrader_menu(page) -> list[str]:
    """Open the *Nbgrader* menu of JupyterLab's menu bar; return its items (it stays open)."""
    page.get_by_role("menuitem", name="Nbgrader", exact=True).click()
    menu = page.locator(".lm-Menu").last
    menu.locator(".lm-Menu-itemLabel").first.wait_for()
    items = [t.strip() for t in menu.locator(".lm-Menu-itemLabel").all_inner_texts()]
    return [item for item in items if item]


#: A code cell's editor: shown once the notebook is rendered. (A markdown cell's editor is hidden
#: once JupyterLab renders the markdown, so waiting for the first of every cell's editors to be
#: visible can time out when the notebook opens with a markdown cell.)
CODE_EDITOR = ".jp-NotebookPanel .jp-CodeCell .cm-content"


def open_notebook(page, url: str, account: Account, path: str) -> None:
    page.goto(f"{url}/user/{account.name}/lab/tree/{path}")
    page.wait_for_selector(CODE_EDITOR)


def run_all_cells(page, *, first_code_cell) -> None:
    """*Run > Run All Cells*, until the first code cell has started.

    On a busy machine JupyterLab has dropped the command once (every cell stayed unnumbered, the
    kernel idle), presumably because it arrived while the kernel's connection was still being set
    up; a user would click again, and so does this (at most three times).
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    prompt = first_code_cell.locator(".jp-InputPrompt")
    for _ in range(3):
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()
        with contextlib.suppress(PlaywrightTimeout):
            prompt.filter(has_text=re.compile(r"\[(\*|\d+)\]")).wait_for(timeout=60_000)
            return
    raise AssertionError("Run All Cells did not start the notebook's cells, three times")


def has_create_assignment(page) -> bool:
    """nbgrader's *Create Assignment* panel is in the right side bar (its id is spelled so)."""
    return page.locator("#nbgrader-create_assignemnt").count() > 0


def formgrader_status(page, url: str, account: Account) -> int:
    return page.request.get(f"{url}/user/{account.name}/formgrader").status


@contextlib.contextmanager
def browsing(browser, evidence: Path, who: str):
    """A fresh browser context (its own cookies); on failure, a screenshot and the page's text."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(SLOW_MS)
    page = context.new_page()
    try:
        yield page
    except Exception as error:
        shot = evidence / f"{who}.png"
        with contextlib.suppress(Exception):
            page.screenshot(path=shot)
        text = ""
        with contextlib.suppress(Exception):
            text = page.inner_text("body")[-2000:]
        raise AssertionError(
            f"As the {who}, at {page.url}: {error}\nScreenshot: {shot}\nPage text:\n{text}"
        ) from error
    finally:
        context.close()


def student_visit(browser, url: str, student: Account, evidence: Path) -> Visit:
    with browsing(browser, evidence, "student") as page:
        log_in(page, url, student)
        menu = open_nbgrader_menu(page)
        # nbgrader's assignment list: the release is there; fetch it.
        page.locator(".lm-Menu .lm-Menu-itemLabel", has_text="Assignment List").click()
        released = page.locator("#released_assignments_list")
        released.get_by_text(ASSIGNMENT).wait_for()
        released_text = released.inner_text()
        released.get_by_role("button", name="Fetch").click()
        # Fetched: it moves to the downloaded list; expand it and open its notebook from there.
        fetched = page.locator("#fetched_assignments_list .assignment-notebooks-link")
        fetched.filter(has_text=ASSIGNMENT).click()
        notebooks = page.locator(f"#nbgrader-{FIXTURE_COURSE_ID}-{ASSIGNMENT}")
        notebooks.get_by_text(ASSIGNMENT, exact=True).click()
        page.wait_for_selector(CODE_EDITOR)
        # Its kernel has started: the status bar names it and says Idle.
        page.locator(".jp-StatusBar-Widget", has_text=KERNEL_IDLE).first.wait_for()
        cells = page.locator(".jp-NotebookPanel:visible .jp-Cell")
        for index, name in ((2, "trial_mean"), (3, "trial_variance")):
            editor = cells.nth(index).locator(".cm-content")
            editor.click()
            page.keyboard.press("Control+a")
            page.keyboard.insert_text(ANSWERS[name])
        run_all_cells(page, first_code_cell=cells.nth(1))
        visible_test = cells.nth(4).locator(".jp-OutputArea-output")
        visible_test.get_by_text(VISIBLE_MESSAGE).wait_for()
        return Visit(
            nbgrader_menu=menu,
            create_assignment=has_create_assignment(page),
            formgrader_status=formgrader_status(page, url, student),
            released=released_text,
            outputs=cells.nth(4).inner_text(),
            validate_button=page.locator(".validate-button").count() > 0,
        )


def instructor_visit(
    browser, url: str, instructor: Account, notebook: str, evidence: Path
) -> Visit:
    with browsing(browser, evidence, "instructor") as page:
        log_in(page, url, instructor)
        menu = open_nbgrader_menu(page)
        page.keyboard.press("Escape")
        open_notebook(page, url, instructor, notebook)
        return Visit(
            nbgrader_menu=menu,
            create_assignment=has_create_assignment(page),
            formgrader_status=formgrader_status(page, url, instructor),
        )


@pytest.fixture(scope="module")
def visits(tmp_path_factory):
    require_hub_prerequisites()
    evidence = tmp_path_factory.mktemp("hub_screenshots")
    from playwright.sync_api import sync_playwright

    with (
        course_accounts() as accounts,
        shared_folder("course-hub-") as shared,
        readable_by_everyone(),
    ):
        teacher, student = accounts.instructor, accounts.students[0]
        exchange = exchange_in(shared)
        state = shared / "state"
        state.mkdir()
        # The instructor releases the assignment from the command line through the exchange.
        course = instructor_course(teacher, ASSIGNMENT)
        release = ["course-tools", "release", ASSIGNMENT, "--to-exchange"]
        run_as(teacher, release, cwd=course, env=course_env(teacher, exchange))
        with running_hub(accounts, exchange, state) as url, sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            try:
                seen_by_student = student_visit(browser, url, student, evidence)
                seen_by_instructor = instructor_visit(
                    browser,
                    url,
                    teacher,
                    f"course/source/{ASSIGNMENT}/{ASSIGNMENT}.ipynb",
                    evidence,
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
