"""The book's launch and repository buttons, built from one setting: ``repository.url``.

Jupyter Book 1.x (through sphinx-book-theme) builds the *Binder* and *JupyterHub* launch buttons
and the *repository* button from ``repository.url`` in ``_config.yml``. This extension makes that
one setting decide whether readers see them:

* ``repository.url`` empty (the kit as shipped): no launch button and no repository button, so no
  reader is sent to an address that does not exist. Each chapter keeps its ``.ipynb`` and ``.md``
  downloads.
* ``repository.url`` set to a GitHub repository (an instructor's fork): the repository button and
  the Binder button (``launch_buttons.binderhub_url``, https://mybinder.org by default) appear, and
  the JupyterHub button too when ``launch_buttons.jupyterhub_url`` is set.

A JupyterHub button without a repository cannot work (the hub pulls the chapters from the
repository with nbgitpuller), so that combination stops the build with a message saying what to set.

It also drops a duplicate of sphinx-thebe's inline script (thebe is one of the launch options; it
is off here), which otherwise raises an error in the browser on every page.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError

#: Launch providers of sphinx-book-theme; each needs the repository to build its link.
LAUNCH_KEYS = ("binderhub_url", "jupyterhub_url", "colab_url", "deepnote_url", "jupyterlite_url")
#: Header buttons that link into the repository.
REPOSITORY_BUTTONS = (
    "use_repository_button",
    "use_issues_button",
    "use_edit_page_button",
    "use_source_button",
)
_GITHUB_REPOSITORY = re.compile(r"^https://github\.com/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/?$")


def launch_theme_options(options: dict[str, Any]) -> dict[str, Any]:
    """Return sphinx-book-theme options whose buttons follow ``repository_url``.

    Parameters
    ----------
    options : dict
        ``html_theme_options`` as Jupyter Book derives them from ``_config.yml``
        (``repository_url`` from ``repository.url``, ``launch_buttons`` as written there).

    Returns
    -------
    dict
        A copy. Without a repository every launch provider and repository button is switched off;
        with one, the repository button is switched on and the launch providers are kept.

    Raises
    ------
    sphinx.errors.ConfigError
        When the repository address is not a GitHub repository, or a JupyterHub address is set
        without a repository.
    """
    result = dict(options)
    launch = dict(result.get("launch_buttons") or {})
    repository = str(result.get("repository_url") or "").strip()
    if not repository:
        if str(launch.get("jupyterhub_url") or "").strip():
            raise ConfigError(
                "_config.yml sets launch_buttons.jupyterhub_url but repository.url is empty: the "
                "JupyterHub button pulls the chapters from the repository (nbgitpuller). Set "
                "repository.url to your fork, e.g. https://github.com/YOUR-ORG/YOUR-REPO, or "
                'empty jupyterhub_url ("") to hide the button.'
            )
        launch.update(dict.fromkeys(LAUNCH_KEYS, ""))
        result.update(dict.fromkeys(REPOSITORY_BUTTONS, False))
        result.pop("repository_url", None)
    else:
        if not _GITHUB_REPOSITORY.match(repository):
            raise ConfigError(
                f"_config.yml: repository.url is {repository!r}; expected the address of a GitHub "
                "repository, https://github.com/ORG/REPO (the launch buttons support GitHub "
                'only). Set it to your fork, or to "" to hide the launch and repository buttons.'
            )
        result["repository_url"] = repository.rstrip("/")
        result["use_repository_button"] = True
    result["launch_buttons"] = launch
    return result


def _apply(app: Sphinx, config: Config) -> None:
    config.html_theme_options = launch_theme_options(config.html_theme_options)


def _offer_notebook_download(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Offer each executed MyST chapter as ``.ipynb``, with or without launch buttons.

    sphinx-book-theme copies the executed notebook into ``_sources/`` only while it builds launch
    buttons; this does it for every MyST notebook page, before the theme's header buttons are made.
    """
    if "kernelspec" not in app.env.metadata.get(pagename, {}):
        return
    if not str(context.get("sourcename", "")).endswith((".md", ".md.txt")):
        return
    outdir = Path(app.outdir)
    executed = outdir.parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not executed.is_file():
        return
    target = outdir / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executed, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def _drop_duplicate_scripts(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Keep one copy of each script of the page.

    sphinx-thebe (loaded by Jupyter Book even with thebe off) registers its inline configuration
    script twice under Sphinx 7.4, and the browser then fails on the second copy with "Identifier
    'THEBE_JS_URL' has already been declared" on every page.
    """
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, unique = set(), []
    for script in scripts:
        # An inline script is registered once with filename None and once with "" (Sphinx's
        # registry and builder), so the two copies differ only there.
        filename = getattr(script, "filename", script) or ""
        key = (str(filename), repr(getattr(script, "attributes", None)))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("config-inited", _apply)
    # At the default priority: a later handler may return a template name, which ends the event.
    app.connect("html-page-context", _drop_duplicate_scripts)
    # sphinx-book-theme makes its header buttons at priority 501: run before them.
    app.connect("html-page-context", _offer_notebook_download, priority=500)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
