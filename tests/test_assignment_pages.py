"""Every assignment of the course has a book page that a student can rely on.

For each folder of ``assignments/source/``: the page ``book/assignments/<name>.md`` exists, sits in
the table of contents under a chapter, offers the released notebook for download, and states the
same point total as the notebook's graded cells (autograded and manual).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import yaml

from course_tools.grading.notebooks import graded_cells

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "assignments" / "source"
ASSIGNMENTS = sorted(p.name for p in SOURCE.iterdir() if (p / f"{p.name}.ipynb").exists())


def _toc_sections() -> dict[str, list[str]]:
    """Chapter file -> the files of its sections."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return {
        chapter["file"]: [section["file"] for section in chapter.get("sections", [])]
        for part in toc["parts"]
        for chapter in part["chapters"]
    }


def test_there_are_assignments():
    assert len(ASSIGNMENTS) >= 4, ASSIGNMENTS


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_page_is_a_section_of_a_chapter(name):
    page = f"book/assignments/{name}"
    assert (ROOT / f"{page}.md").exists(), f"{page}.md is missing: every assignment needs a page"
    parents = [chapter for chapter, sections in _toc_sections().items() if page in sections]
    assert parents, f"{page} must be listed in _toc.yml as a section of the chapter it goes with"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_page_offers_the_released_notebook(name):
    text = (ROOT / "book" / "assignments" / f"{name}.md").read_text()
    target = f"../../_build/student_notebooks/{name}/{name}.ipynb"
    assert f"{{download}}`{name}.ipynb <{target}>`" in text, (
        f"book/assignments/{name}.md needs a Download section linking {target}"
    )


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_page_total_matches_the_notebook(name):
    text = (ROOT / "book" / "assignments" / f"{name}.md").read_text()
    total = re.search(r"\*\*Total\*\* \| \| \*\*(\d+)\*\*", text)
    assert total is not None, f"book/assignments/{name}.md needs a **Total** row in its table"
    nb = nbformat.read(SOURCE / name / f"{name}.ipynb", as_version=4)
    assert int(total.group(1)) == sum(cell.points for cell in graded_cells(nb))
