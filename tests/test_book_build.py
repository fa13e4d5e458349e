"""The book builds strictly: every chapter executes and Sphinx emits no warning."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.book
def test_book_builds_strictly_with_zero_warnings():
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
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"make book failed:\n{log[-6000:]}"
    assert (ROOT / "_build" / "html" / "index.html").is_file()
    # Sphinx prints "path: WARNING: message"; the kernel's start-up notice is no build warning.
    warnings = [
        line
        for line in log.splitlines()
        if "WARNING:" in line and not line.lstrip().startswith("[IPKernelApp]")
    ]
    assert not warnings, "Sphinx warnings:\n" + "\n".join(warnings[:20])


@pytest.mark.book
def test_chapters_render_their_computed_figures():
    # Runs after the build above (pytest keeps file order); each figure is an <img> of a PNG.
    page = ROOT / "_build" / "html" / "book" / "goal_driven_modeling.html"
    assert page.is_file(), "build the book first (test_book_builds_strictly_with_zero_warnings)"
    html = page.read_text()
    figures = re.findall(r'<img[^>]+src="[^"]*_images/[^"]+\.png"', html)
    assert len(figures) >= 2, f"the chapter's figures are missing (found {len(figures)})"


@pytest.mark.book
def test_book_offers_only_student_versions_of_assignments():
    # The download links point at the release built by `course-tools release --all` before the
    # book; what readers can download must contain no solution and no hidden test.
    downloads = list((ROOT / "_build" / "html" / "_downloads").rglob("*.ipynb"))
    pages = list((ROOT / "book" / "assignments").glob("*.md"))
    assert len(downloads) >= len(pages), "an assignment page lacks its notebook download"
    for nb in downloads:
        text = nb.read_text()
        for secret in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert secret not in text, f"{nb.name} offers {secret!r} to readers"
