"""One version: pyproject.toml's, which the package metadata, `etm --version`, the job image's
tag (Makefile), every COG's ETM_VERSION (etm.publish) and the changelog's latest release
carry. The COGs' is read from the demo's (tests/workflow/test_examples.py)."""

import re
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ETM = Path(sys.executable).with_name("etm")


def project_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_the_installed_package_is_pyprojects_version():
    # The editable install's metadata is written at install: a version bump needs
    # `make .venv/installed` (pyproject.toml is its prerequisite), or ETM_VERSION is stale.
    assert version("etm") == project_version()


def test_etm_version_prints_it():
    result = subprocess.run([str(ETM), "--version"], capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, f"etm {project_version()}\n")


def test_the_image_is_tagged_with_it():
    result = subprocess.run(
        ["make", "--dry-run", "--always-make", "image", "CONTAINER=podman"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert f"--tag etm:{project_version()}" in result.stdout


def test_the_changelog_names_it_as_the_latest_release():
    changelog = (REPO / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", changelog, re.M)
    assert releases and releases[0][0] == project_version()
    assert changelog.index("## [Unreleased]") < changelog.index(f"## [{releases[0][0]}]")
    numbers = [tuple(map(int, release.split("."))) for release, _date in releases]
    assert numbers == sorted(numbers, reverse=True)


@pytest.mark.parametrize("argv", [["--version"]])
def test_the_cli_parser_has_the_version_option(argv, capsys):
    from etm.cli import main

    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"etm {project_version()}\n"
