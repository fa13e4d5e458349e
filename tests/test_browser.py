"""The built book as a reader meets it: served on localhost, opened in Debian's Chromium, offline.

One browser, one context, one tab visits every page of ``_build/html`` once (the ``tour``); the
tests then check what it saw: no console error and no failed request, nothing loaded from another
host, every equation typeset by MathJax, every image loaded, every internal link and anchor
resolved, search finding each page, and each assignment's download being the student version.

Chromium is Debian's ``/usr/bin/chromium`` (``make test`` installs it through
``.ci/system-packages`` when it runs as root), driven by Playwright's Python package; Playwright
never downloads a browser here. The browser cannot resolve any host but the local server, as on
a hub without internet.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import nbformat
import pytest
import yaml

pytestmark = pytest.mark.book

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
CHROMIUM_ARGS = [
    "--no-sandbox",  # required as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
    # As on a hub without internet: every name but the local server's address fails to resolve.
    f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {HOST}",
]
TIMEOUT_MS = 120_000  # generous: the machine may be busy
# Folders of the build that hold assets, not pages.
ASSET_DIRS = {"_static", "_sources", "_images", "_downloads", "_sphinx_design_static"}
SECRETS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def _chromium() -> str:
    """Debian's Chromium, or a failure that says why the browser tests cannot run and what to do."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    why = (
        "The browser tests need Chromium (Debian package `chromium`, command `chromium`), which is "
        "not installed. `make test` installs it through .ci/system-packages when run as root with "
        "apt-get; otherwise run `sudo apt-get install chromium` (or your system's equivalent)."
    )
    if os.environ.get("CI", "").lower() == "true":
        why += " Under CI=true the browser tests must run: install it in the CI image."
    pytest.fail(why, pytrace=False)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


@pytest.fixture(scope="module")
def site(built_book) -> Iterator[tuple[str, Path]]:
    """The built book served over HTTP on 127.0.0.1 at a free port: ``(base_url, html_dir)``."""
    assert built_book.returncode == 0, f"make book failed:\n{built_book.log[-6000:]}"
    html = built_book.html
    handler = functools.partial(_QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer((HOST, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}/", html
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser_context(site):
    """One headless Chromium and one browser context for the whole module."""
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = browser.new_context(
                accept_downloads=True, viewport={"width": 1280, "height": 900}
            )
            context.set_default_timeout(TIMEOUT_MS)
            yield context
            context.close()
        finally:
            browser.close()
    finally:
        playwright.stop()


@dataclass
class PageVisit:
    """What one page showed and did in the browser."""

    path: str
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    facts: dict = field(default_factory=dict)


# Collected in the page after it loaded and MathJax finished typesetting.
_PAGE_FACTS = r"""
async () => {
  const math = Array.from(document.querySelectorAll("span.math, div.math"));
  if (math.length && window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  // Force lazy images to load, then wait for each to decode (or fail).
  const images = Array.from(document.images);
  images.forEach((img) => { img.loading = "eager"; });
  await Promise.all(images.map((img) => img.decode().catch(() => null)));
  // TeX delimiters left in the reading text (code, scripts and typeset math excluded).
  const raw = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
    acceptNode: (node) => node.parentElement.closest(
      "pre, code, script, style, textarea, mjx-container, .highlight") ?
      NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT,
  });
  while (walker.nextNode()) {
    const text = walker.currentNode.textContent;
    const hit = text.match(/\\\(|\\\)|\\\[|\\\]|\$\$|\\begin\{/);
    if (hit) raw.push(text.slice(Math.max(0, hit.index - 40), hit.index + 60).trim());
  }
  const article = document.querySelector("article") || document.body;
  return {
    math: math.length,
    typeset: math.filter((m) => m.querySelector("mjx-container")).length,
    mjxErrors: document.querySelectorAll("mjx-merror, [data-mjx-error]").length,
    raw: raw,
    images: images.map((img) => ({src: img.currentSrc || img.src,
                                  width: img.complete ? img.naturalWidth : 0})),
    links: Array.from(document.querySelectorAll("a[href]"))
      .map((a) => ({href: a.href, download: a.hasAttribute("download")})),
    ids: Array.from(document.querySelectorAll("[id], a[name]")).map((e) => e.id || e.name),
    prose: Array.from(article.querySelectorAll("p")).map((p) => p.innerText).join("\n"),
    buttons: Array.from(document.querySelectorAll(".article-header-buttons a[href]"))
      .map((a) => a.href),
  };
}
"""


def _is_redirect(page: Path) -> bool:
    return 'http-equiv="refresh"' in page.read_text(errors="replace")[:2000].lower()


def _pages(html: Path) -> list[str]:
    """Every HTML page of the build, except asset folders and redirect stubs (the root index)."""
    pages = []
    for page in sorted(html.rglob("*.html")):
        relative = page.relative_to(html)
        if not ASSET_DIRS & set(relative.parts) and not _is_redirect(page):
            pages.append(relative.as_posix())
    return pages


def _is_local(url: str, base: str) -> bool:
    return url.startswith(base)


@pytest.fixture(scope="module")
def tour(site, browser_context) -> dict[str, PageVisit]:
    """Visit every page once in one tab; record what each page showed and requested."""
    base, html = site
    visits: dict[str, PageVisit] = {}
    current: list[PageVisit] = []
    tab = browser_context.new_page()

    def on_console(message):
        if message.type == "error":
            current[-1].console_errors.append(f"{message.text} ({message.location.get('url')})")

    def on_request(request):
        if not request.url.startswith(("data:", "blob:", "about:")) and not _is_local(
            request.url, base
        ):
            current[-1].foreign_requests.append(request.url)

    def on_failed(request):
        current[-1].failed_requests.append(f"{request.url}: {request.failure}")

    def on_response(response):
        if response.status >= 400:
            current[-1].failed_requests.append(f"{response.url}: HTTP {response.status}")

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: current[-1].console_errors.append(f"uncaught: {error}"))
    tab.on("request", on_request)
    tab.on("requestfailed", on_failed)
    tab.on("response", on_response)
    try:
        for path in _pages(html):
            visit = PageVisit(path)
            current.append(visit)
            tab.goto(base + path, wait_until="load")
            visit.facts = tab.evaluate(_PAGE_FACTS)
            visits[path] = visit
    finally:
        tab.close()
    return visits


def _chapters() -> list[str]:
    """The pages of _toc.yml, as built HTML paths."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc.get("parts", []))
    return [f"{f}.html" for f in files]


def test_every_page_of_the_book_is_visited(site, browser_context, tour):
    missing = [c for c in _chapters() if c not in tour]
    assert not missing, f"pages of _toc.yml missing from the build: {missing}"
    assert len(tour) >= len(_chapters())
    # The site's root sends the reader to the book's first page.
    base, _ = site
    tab = browser_context.new_page()
    try:
        tab.goto(base)
        tab.wait_for_url(base + _chapters()[0])
    finally:
        tab.close()


def test_pages_load_without_console_errors_or_failed_requests(tour):
    problems = {
        path: visit.console_errors + visit.failed_requests
        for path, visit in tour.items()
        if visit.console_errors or visit.failed_requests
    }
    assert not problems, "pages with errors:\n" + json.dumps(problems, indent=1)[:6000]


def test_no_page_loads_anything_from_another_host(tour):
    hosts = Counter(urlsplit(url).hostname for v in tour.values() for url in v.foreign_requests)
    pages = sorted(path for path, v in tour.items() if v.foreign_requests)
    assert not hosts, (
        f"pages load from other hosts {dict(hosts)}, which fails offline; pages: {pages[:10]}"
    )


def test_every_equation_is_typeset(tour):
    with_math = {path: v.facts for path, v in tour.items() if v.facts["math"]}
    # The chapters' equations (FEV/FEVE, receptive fields, ...) must be there to be checked.
    assert "book/v1_system_identification.html" in with_math
    assert sum(f["math"] for f in with_math.values()) >= 20
    untypeset = {
        path: f"{f['typeset']} of {f['math']} typeset, {f['mjxErrors']} MathJax errors"
        for path, f in with_math.items()
        if f["typeset"] != f["math"] or f["mjxErrors"]
    }
    assert not untypeset, f"equations not typeset (MathJax did not run): {untypeset}"
    raw = {path: v.facts["raw"][:3] for path, v in tour.items() if v.facts["raw"]}
    assert not raw, f"raw TeX shown to readers: {raw}"


def test_every_image_has_loaded(tour):
    images = [(path, img) for path, v in tour.items() for img in v.facts["images"]]
    assert len(images) >= 10, f"the chapters' figures are missing (found {len(images)} images)"
    broken = [f"{path}: {img['src']}" for path, img in images if img["width"] <= 0]
    assert not broken, "images that did not load:\n" + "\n".join(broken)


def test_every_internal_link_and_anchor_resolves(site, tour):
    base, html = site
    ids = {path: set(v.facts["ids"]) for path, v in tour.items()}
    broken, checked = [], 0
    for path, visit in tour.items():
        for link in visit.facts["links"]:
            href = link["href"]
            if not _is_local(href, base):
                continue
            checked += 1
            target, fragment = urldefrag(href)
            relative = unquote(urlsplit(target).path).lstrip("/")
            if relative == "" or relative.endswith("/"):
                relative += "index.html"
            if not (html / relative).is_file():
                broken.append(f"{path}: {href} (no such file)")
            elif fragment and relative in ids and unquote(fragment) not in ids[relative]:
                broken.append(f"{path}: {href} (no anchor #{fragment} in {relative})")
    assert checked >= 100, f"only {checked} internal links found: the tour saw too little"
    assert not broken, "broken internal links:\n" + "\n".join(broken[:40])


def _distinctive_word(path: str, tour: dict[str, PageVisit]) -> str:
    """The longest word of the page's prose that no other page's prose contains."""

    def words(text: str) -> set[str]:
        return {w.lower() for w in re.findall(r"[A-Za-z]{6,}", text)}

    others = set().union(*(words(v.facts["prose"]) for p, v in tour.items() if p != path))
    unique = sorted(words(tour[path].facts["prose"]) - others, key=lambda w: (-len(w), w))
    assert unique, f"{path} has no word of its own to search for"
    return unique[0]


def test_search_finds_a_word_from_each_page(site, browser_context, tour):
    base, _ = site
    tab = browser_context.new_page()
    missed = {}
    try:
        for path in _chapters():
            word = _distinctive_word(path, tour)
            tab.goto(f"{base}search.html?q={word}", wait_until="load")
            tab.wait_for_function(
                "() => /Search finished|did not match/.test("
                "(document.querySelector('#search-results .search-summary') || {}).innerText)"
            )
            found = tab.eval_on_selector_all(
                "#search-results ul.search li > a", "links => links.map(a => a.href)"
            )
            if not any(urldefrag(href)[0] == base + path for href in found):
                missed[path] = {"word": word, "found": found[:5]}
    finally:
        tab.close()
    assert not missed, f"search does not find these pages by a word of their own: {missed}"


def test_assignment_downloads_are_student_versions(site, browser_context, tour):
    base, _ = site
    pages = [p for p in tour if p.startswith("book/assignments/")]
    assert len(pages) == len(list((ROOT / "book" / "assignments").glob("*.md")))
    tab = browser_context.new_page()
    try:
        for path in pages:
            tab.goto(base + path, wait_until="load")
            links = tab.locator("a.download[href$='.ipynb']")
            assert links.count() >= 1, f"{path} offers no notebook download"
            with tab.expect_download() as download:
                links.first.click()
            text = Path(download.value.path()).read_text()
            for secret in SECRETS:
                assert secret not in text, f"{path}'s download contains {secret!r}"
            notebook = nbformat.reads(text, as_version=4)
            code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
            assert "raise NotImplementedError" in code, (
                f"{path}'s download {download.value.suggested_filename} is not the blank release"
            )
    finally:
        tab.close()


def test_buttons_open_only_the_configured_repository(site, tour):
    """No launch or repository button while ``repository.url`` is unset; with it, only that one."""
    base, _ = site
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repository = str((config.get("repository") or {}).get("url") or "").rstrip("/")
    chapter = tour["book/v1_system_identification.html"].facts
    assert any(h.endswith(".ipynb") for h in chapter["buttons"]), "the .ipynb download is gone"
    wrong = {}
    for path, visit in tour.items():
        outside = [h for h in visit.facts["buttons"] if not _is_local(h, base)]
        if repository:
            outside = [h for h in outside if repository.split("github.com/")[-1] not in h]
        if outside:
            wrong[path] = outside
    assert not wrong, (
        f"header buttons that open another site (repository.url = {repository!r}): {wrong}"
    )
