"""The conda environment and the job image stay in step with the pinned requirements."""

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
#: conda-forge names of PyPI packages (matplotlib-base: matplotlib without a GUI toolkit).
PYPI_NAMES = {"matplotlib-base": "matplotlib"}


def pip_pins(lines) -> dict[str, str]:
    pins = dict(re.match(r"^([\w.\[\]-]+)==(\S+)$", ln).groups() for ln in lines)
    return {package.lower(): version for package, version in pins.items()}


def requirement_lines(name: str) -> list[str]:
    lines = (REPO / name).read_text().splitlines()
    return [ln for ln in lines if ln and not ln.startswith("#")]


def test_conda_environment_pins_every_runtime_requirement_at_the_same_version():
    environment = yaml.safe_load((REPO / "envs" / "etm.yaml").read_text())
    conda = dict(
        d.split("=", 1) for d in environment["dependencies"] if isinstance(d, str) and "=" in d
    )
    conda = {PYPI_NAMES.get(name, name): version for name, version in conda.items()}
    assert conda.pop("python") == "3.11"
    (pip,) = [d["pip"] for d in environment["dependencies"] if isinstance(d, dict)]
    assert pip[-1] == "--no-deps ../.."  # the etm package itself
    pinned = {**conda, **pip_pins(pip[:-1])}
    assert pinned == pip_pins(requirement_lines("requirements.txt"))


def test_job_image_installs_exactly_the_locked_requirements_and_the_package_on_a_pinned_base():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(
        r"^ARG BASE=docker.io/library/python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}$",
        dockerfile,
        re.M,
    )
    assert "FROM ${BASE}" in dockerfile
    assert "RUN pip install --require-hashes -r requirements.lock\n" in dockerfile
    assert "RUN pip install --no-deps . && etm check-image\n" in dockerfile
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    for folder in packages["packages"]:
        assert f"COPY {folder} ./{folder}" in dockerfile
    # The build context holds only what the image needs.
    assert (REPO / ".dockerignore").read_text().splitlines()[1] == "*"


def test_lock_pins_every_requirement_at_its_version_with_hashes():
    lock = (REPO / "requirements.lock").read_text()
    entries = re.findall(r"^([\w.-]+)==(\S+)((?: \\\n    --hash=sha256:[0-9a-f]{64})+)", lock, re.M)
    locked = {name.lower(): version for name, version, _ in entries}
    packages = re.findall(r"^[\w.-]+==", lock, re.M)
    assert len(entries) == len(packages)  # every package has its hashes
    required = pip_pins(requirement_lines("requirements.txt"))
    assert {name: locked.get(name) for name in required} == required
