"""The book builds strictly: every chapter executes and Sphinx emits no warning."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _require_build(built_book):
    assert built_book.returncode == 0, f"make book failed:\n{built_book.log[-6000:]}"
    return built_book.html


@pytest.mark.book
def test_book_builds_strictly_with_zero_warnings(built_book):
    html = _require_build(built_book)
    assert (html / "index.html").is_file()
    # Sphinx prints "path: WARNING: message"; the kernel's start-up notice is no build warning.
    warnings = [
        line
        for line in built_book.log.splitlines()
        if "WARNING:" in line and not line.lstrip().startswith("[IPKernelApp]")
    ]
    assert not warnings, "Sphinx warnings:\n" + "\n".join(warnings[:20])


@pytest.mark.book
def test_chapters_render_their_computed_figures(built_book):
    # Each figure is an <img> of a PNG.
    page = _require_build(built_book) / "book" / "goal_driven_modeling.html"
    html = page.read_text()
    figures = re.findall(r'<img[^>]+src="[^"]*_images/[^"]+\.png"', html)
    assert len(figures) >= 2, f"the chapter's figures are missing (found {len(figures)})"


@pytest.mark.book
def test_book_offers_only_student_versions_of_assignments(built_book):
    # The download links point at the release built by `course-tools release --all` before the
    # book; what readers can download must contain no solution and no hidden test.
    downloads = list((_require_build(built_book) / "_downloads").rglob("*.ipynb"))
    pages = list((ROOT / "book" / "assignments").glob("*.md"))
    assert len(downloads) >= len(pages), "an assignment page lacks its notebook download"
    for nb in downloads:
        text = nb.read_text()
        for secret in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert secret not in text, f"{nb.name} offers {secret!r} to readers"
