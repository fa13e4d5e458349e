"""The table of contents and the book folder agree, and the book never reaches course material."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PAGE_SUFFIXES = (".md", ".ipynb")


def _toc_files(node) -> list[str]:
    files = []
    if isinstance(node, dict):
        for key in ("root", "file"):
            if key in node:
                files.append(node[key])
        for value in node.values():
            if isinstance(value, dict | list):
                files.extend(_toc_files(value))
    elif isinstance(node, list):
        for item in node:
            files.extend(_toc_files(item))
    return files


def _resolve(entry: str) -> Path | None:
    for suffix in ("", *PAGE_SUFFIXES):
        path = ROOT / f"{entry}{suffix}"
        if path.is_file():
            return path
    return None


def test_every_toc_entry_exists():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    entries = _toc_files(toc)
    assert entries, "_toc.yml lists no pages"
    missing = [e for e in entries if _resolve(e) is None]
    assert not missing, f"_toc.yml lists pages that do not exist: {missing}"


def test_every_book_page_is_in_the_toc():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    listed = {_resolve(e).resolve() for e in _toc_files(toc)}
    pages = {
        p.resolve()
        for p in (ROOT / "book").rglob("*")
        if p.suffix in PAGE_SUFFIXES
        and "_build" not in p.parts
        and ".ipynb_checkpoints" not in p.parts
    }
    orphans = sorted(str(p.relative_to(ROOT)) for p in pages - listed)
    assert not orphans, f"pages in book/ missing from _toc.yml: {orphans}"


def test_config_is_strict_and_keeps_course_material_out():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["only_build_toc_files"] is True
    assert config["execute"]["execute_notebooks"] == "cache"
    assert config["execute"]["raise_on_error"] is True
    excluded = " ".join(config["exclude_patterns"])
    for folder in ("assignments", "tests", "benchmarks"):
        assert f"{folder}/*" in excluded
    assert config["html"]["use_download_button"] is True
    assert "jupyterhub_url" in config["launch_buttons"]
    assert config["launch_buttons"]["binderhub_url"]


def test_book_pages_are_committed_without_outputs():
    import nbformat

    for nb_path in (ROOT / "book").rglob("*.ipynb"):
        nb = nbformat.read(nb_path, as_version=4)
        with_output = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.outputs]
        assert not with_output, f"{nb_path} has outputs in cells {with_output}"
