"""Where course_tools keeps downloaded data."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "COURSE_TOOLS_DATA"


def data_home(create: bool = True) -> Path:
    """Return the directory where datasets and downloaded weights are cached.

    The location is ``$COURSE_TOOLS_DATA`` when that variable is set, otherwise
    ``$XDG_CACHE_HOME/course_tools`` (``~/.cache/course_tools`` by default).

    Parameters
    ----------
    create : bool, default=True
        Create the directory (and its parents) when it does not exist yet.

    Returns
    -------
    pathlib.Path
        Absolute path of the cache directory.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env).expanduser()
    else:
        cache_root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        path = Path(cache_root).expanduser() / "course_tools"
    path = path.resolve()
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
