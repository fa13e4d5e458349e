"""environment.yml (for JupyterHub / Binder images) and pyproject.toml list the same packages."""

import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _normalise(spec: str) -> tuple[str, str]:
    req = Requirement(spec)
    return req.name.lower().replace("_", "-"), str(req.specifier)


def _pyproject_requirements() -> set[tuple[str, str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"]) + list(project["optional-dependencies"]["test"])
    return {_normalise(s) for s in specs}


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


def test_environment_pins_exactly_what_pyproject_requires():
    env_specs, _, _ = _environment_requirements()
    py_specs = _pyproject_requirements()
    assert env_specs == py_specs, (
        "environment.yml and pyproject.toml disagree.\n"
        f"only in environment.yml: {sorted(env_specs - py_specs)}\n"
        f"only in pyproject.toml: {sorted(py_specs - env_specs)}"
    )


def test_environment_uses_the_same_python_and_installs_the_package():
    _, conda, editable = _environment_requirements()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "python=3.11" in conda
    assert project["requires-python"].startswith(">=3.11")
    assert editable == ["-e ."], "environment.yml must install course_tools itself (-e .)"


def test_torch_pins_are_the_measured_pair():
    py = dict(_pyproject_requirements())
    assert py["torch"] == "==2.14.1"
    assert py["torchvision"] == "==0.29.1"
    assert "<2" in py["jupyter-book"]
