"""The book's launch and repository buttons follow one setting, ``repository.url`` (_ext/)."""

import importlib.util
from pathlib import Path

import pytest
import yaml
from sphinx.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
_EXT = ROOT / "_ext" / "launch_buttons.py"
_spec = importlib.util.spec_from_file_location("launch_buttons", _EXT)
launch_buttons = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(launch_buttons)

SHIPPED = {
    "launch_buttons": {
        "notebook_interface": "jupyterlab",
        "binderhub_url": "https://mybinder.org",
        "jupyterhub_url": "",
        "colab_url": "",
        "thebe": False,
    },
    "repository_url": "",
    "use_repository_button": False,
    "use_issues_button": False,
}


def test_the_kit_ships_without_a_repository_address():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["repository"]["url"] == "", (
        "_config.yml must not show readers a repository that is not theirs: leave repository.url "
        "empty in the kit; an instructor sets it to their fork"
    )
    assert config["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert "launch_buttons" in config["sphinx"]["local_extensions"]
    assert "sphinx-mathjax-offline" in config["sphinx"]["extra_extensions"]


def test_unset_repository_hides_every_launch_and_repository_button():
    options = launch_buttons.launch_theme_options(SHIPPED)
    launch = options["launch_buttons"]
    assert all(launch[key] == "" for key in launch_buttons.LAUNCH_KEYS)
    assert launch["notebook_interface"] == "jupyterlab"
    assert not any(options[key] for key in launch_buttons.REPOSITORY_BUTTONS)
    assert "repository_url" not in options
    assert SHIPPED["launch_buttons"]["binderhub_url"] == "https://mybinder.org", "input changed"


def test_a_repository_shows_its_binder_hub_and_repository_buttons():
    options = dict(SHIPPED, repository_url="https://github.com/my-uni/neuroai-course/")
    options["launch_buttons"] = dict(
        SHIPPED["launch_buttons"], jupyterhub_url="https://hub.my-uni.edu"
    )
    result = launch_buttons.launch_theme_options(options)
    assert result["repository_url"] == "https://github.com/my-uni/neuroai-course"
    assert result["use_repository_button"] is True
    assert result["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert result["launch_buttons"]["jupyterhub_url"] == "https://hub.my-uni.edu"
    assert result["use_issues_button"] is False


@pytest.mark.parametrize(
    ("repository", "hub", "message"),
    [
        ("", "https://hub.my-uni.edu", "repository.url is empty"),
        ("https://gitlab.example.org/my-uni/course", "", "expected the address of a GitHub"),
        ("github.com/my-uni/course", "", "https://github.com/ORG/REPO"),
    ],
)
def test_settings_that_cannot_work_stop_the_build_and_say_what_to_set(repository, hub, message):
    options = dict(SHIPPED, repository_url=repository)
    options["launch_buttons"] = dict(SHIPPED["launch_buttons"], jupyterhub_url=hub)
    with pytest.raises(ConfigError, match=message):
        launch_buttons.launch_theme_options(options)
