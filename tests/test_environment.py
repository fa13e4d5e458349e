"""Dependencies fit their users, and environment.yml (the hub and Binder image) has all of them.

``course-tools`` alone installs what the library needs; the extras ``grading``, ``book`` and
``test`` carry the rest, and ``environment.yml`` lists the library's dependencies plus every extra.
"""

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
NAME = PROJECT["name"]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _normalise(spec: str) -> tuple[str, str]:
    req = Requirement(spec)
    return _canonical(req.name), str(req.specifier)


def _is_self(spec: str) -> bool:
    return _canonical(Requirement(spec).name) == _canonical(NAME)


def _extra(name: str, seen: frozenset = frozenset()) -> set[tuple[str, str]]:
    """The packages an extra installs, with the extras it names ("course-tools[...]") expanded."""
    specs = set()
    for spec in PROJECT["optional-dependencies"][name]:
        if _is_self(spec):
            for inner in Requirement(spec).extras - seen - {name}:
                specs |= _extra(inner, seen | {name})
        else:
            specs.add(_normalise(spec))
    return specs


def _base() -> set[tuple[str, str]]:
    return {_normalise(s) for s in PROJECT["dependencies"]}


# The extras that the hub and Binder image (environment.yml) installs: every kind of user's tools.
IMAGE_EXTRAS = ("grading", "book", "cluster", "test")
# Extras deliberately left out of the image, and why.
NOT_IN_IMAGE = {"bench": "the peers `make bench` measures against; never needed to use the course"}


def _everything() -> set[tuple[str, str]]:
    specs = _base()
    for name in IMAGE_EXTRAS:
        specs |= _extra(name)
    return specs


def _environment_requirements() -> tuple[set[tuple[str, str]], list, list[str]]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = [], []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip.extend(dep["pip"])
        else:
            conda.append(dep)
    editable = [p for p in pip if p.startswith("-e")]
    specs = {_normalise(p) for p in pip if not p.startswith("-")}
    return specs, conda, editable


def test_environment_pins_the_library_and_every_extra():
    env_specs, _, _ = _environment_requirements()
    py_specs = _everything()
    assert env_specs == py_specs, (
        "environment.yml (the hub and Binder image) must list pyproject.toml's dependencies plus "
        f"the extras {IMAGE_EXTRAS}. Add or change the package in both files.\n"
        f"only in environment.yml: {sorted(env_specs - py_specs)}\n"
        f"only in pyproject.toml: {sorted(py_specs - env_specs)}"
    )


def test_extras_fit_their_users():
    extras = PROJECT["optional-dependencies"]
    assert set(extras) == set(IMAGE_EXTRAS) | set(NOT_IN_IMAGE), (
        "a new extra must go into the image (IMAGE_EXTRAS, and environment.yml) or be listed, "
        "with a reason, in NOT_IN_IMAGE"
    )
    for name, specs in extras.items():
        for spec in specs:
            if _is_self(spec):
                unknown = Requirement(spec).extras - set(extras)
                assert not unknown, f"extra {name!r} names unknown extras {sorted(unknown)}"
    base = {n for n, _ in _base()}
    grading, book, test = ({n for n, _ in _extra(x)} for x in ("grading", "book", "test"))
    # The library does not install the toolchains of the instructor, the book or the tests.
    toolchains = {"nbgrader", "jupyter-book", "jupytext", "pytest", "ruff", "playwright"}
    assert not base & toolchains, f"course-tools itself installs {sorted(base & toolchains)}"
    assert {"nbgrader", "nbformat", "nbclient", "ipykernel"} <= grading
    # `make book` releases the assignments (nbgrader) before it builds the book offline.
    assert grading <= book and {"jupyter-book", "sphinx-mathjax-offline"} <= book
    # `make test` installs `.[test]`: everything `make book` and the tests need.
    assert book <= test and grading <= test and {"pytest", "ruff", "playwright"} <= test
    assert set().union(*({n for n, _ in _extra(x)} for x in IMAGE_EXTRAS)) == test, (
        "every extra of the image must reach the test extra, which `make test` installs"
    )


def test_makefile_installs_the_test_extra():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"pip install .*-e '\.\[test\]'", makefile), (
        "the Makefile must install the project with its test extra (pip install -e '.[test]')"
    )


def test_environment_uses_the_same_python_and_installs_the_package():
    _, conda, editable = _environment_requirements()
    assert "python=3.11" in conda
    assert PROJECT["requires-python"].startswith(">=3.11")
    assert editable == ["-e ."], "environment.yml must install course_tools itself (-e .)"


def test_torch_pins_are_the_measured_pair():
    py = dict(_everything())
    assert py["torch"] == "==2.14.1"
    assert py["torchvision"] == "==0.29.1"
    assert "<2" in py["jupyter-book"]


# Run in a fresh interpreter: every installed distribution that `course-tools` without extras would
# not bring (its dependencies, followed recursively) is made unimportable. Then either every module
# of the library is imported (prints {"failed": {module: error}, "blocked": [...]}), or, with CLI
# arguments, the `course-tools` command runs (prints {"status": int, "stderr": str}).
_WITHOUT_EXTRAS = r"""
import contextlib, importlib, importlib.abc, importlib.metadata as md, importlib.util, io, json
import pkgutil, re, sys
from packaging.requirements import Requirement

def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()

def closure(roots):
    seen, todo = set(), [canonical(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = md.distribution(name).requires or []
        except md.PackageNotFoundError:
            continue
        for spec in requires:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonical(req.name))
    return seen

base = closure([Requirement(s).name for s in json.loads(sys.argv[1])])
blocked = {
    module
    for module, dists in md.packages_distributions().items()
    if module != "course_tools" and not any(canonical(d) in base for d in dists)
}

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None

sys.meta_path.insert(0, Block())
# Libraries probe optional packages with importlib.util.find_spec (xarray: dask): for a package
# that is not installed it returns None rather than raising, and so it must for a blocked one.
_find_spec = importlib.util.find_spec
importlib.util.find_spec = lambda name, package=None: (
    None if name.partition(".")[0] in blocked else _find_spec(name, package)
)
if len(sys.argv) > 2:
    from course_tools.cli import main
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        status = main(json.loads(sys.argv[2]))
    print(json.dumps({"status": status, "stderr": stderr.getvalue()}))
else:
    import course_tools
    failed = {}
    for info in pkgutil.walk_packages(course_tools.__path__, "course_tools."):
        try:
            importlib.import_module(info.name)
        except Exception as error:
            failed[info.name] = f"{type(error).__name__}: {error}"
    print(json.dumps({"failed": failed, "blocked": sorted(blocked)}))
"""

# The instructor's side of course_tools.grading and the command line run nbgrader: they need the
# grading extra. Notebooks import only course_tools.grading's light part.
LIGHT_GRADING = {"references", "mutants", "conventions"}
GRADING_SIDE = re.compile(rf"^course_tools\.grading\.(?!({'|'.join(LIGHT_GRADING)})$).+$")


def _without_extras(*cli_args: str) -> dict:
    argv = [sys.executable, "-c", _WITHOUT_EXTRAS, json.dumps(PROJECT["dependencies"])]
    if cli_args:
        argv.append(json.dumps(list(cli_args)))
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_library_imports_with_its_own_dependencies_only():
    result = _without_extras()
    # The check must really hide the extras' toolchains, or it proves nothing.
    assert {"nbgrader", "nbformat", "nbclient", "jupyter_book", "jupytext", "pytest"} <= set(
        result["blocked"]
    )
    failed = {m: e for m, e in result["failed"].items() if not GRADING_SIDE.match(m)}
    assert not failed, (
        "these modules need a package that `pip install course-tools` does not install; add it to "
        f"pyproject.toml's dependencies, or keep the import on the grading side: {failed}"
    )
    # ... and the grading side really is what needs the extra (else it belongs in the base).
    assert any(GRADING_SIDE.match(m) for m in result["failed"]), result["failed"]


def test_command_line_without_the_grading_extra_says_what_to_install():
    result = _without_extras("release", "--all", "--course", str(ROOT / "assignments"))
    assert result["status"] == 2
    assert "No module named" in result["stderr"]
    assert "pip install 'course-tools[grading]'" in result["stderr"], result["stderr"]
