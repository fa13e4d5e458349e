"""The package imports, knows its version, its data cache and how to seed."""

import random

import numpy as np
import pytest
import torch

import course_tools
from course_tools import check_random_state, data_home, seed_everything


def test_version_matches_the_installed_metadata():
    from importlib.metadata import version

    assert course_tools.__version__ == version("course-tools")


def test_data_home_follows_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_TOOLS_DATA", str(tmp_path / "cache"))
    path = data_home()
    assert path == (tmp_path / "cache").resolve()
    assert path.is_dir()


def test_data_home_defaults_to_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_TOOLS_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert data_home(create=False) == (tmp_path / "course_tools").resolve()
    assert not (tmp_path / "course_tools").exists()


def test_seed_everything_makes_python_numpy_and_torch_repeatable():
    def draw():
        legacy = np.random.rand()  # noqa: NPY002 (the legacy global state is what is seeded)
        return random.random(), legacy, torch.rand(1).item()

    seed_everything(3)
    first = draw()
    seed_everything(3)
    assert draw() == first
    seed_everything(4)
    assert draw() != first


def test_check_random_state():
    assert check_random_state(5).random() == np.random.default_rng(5).random()
    rng = np.random.default_rng(1)
    assert check_random_state(rng) is rng
    with pytest.raises(TypeError, match="seed must be an int"):
        check_random_state("1")
    with pytest.raises(ValueError, match="non-negative"):
        check_random_state(-1)
    with pytest.raises(ValueError, match="non-negative"):
        seed_everything(-2)
