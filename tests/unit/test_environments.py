"""The conda environment and the job image stay in step with the pinned requirements."""

import re
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


def test_job_image_installs_exactly_the_requirements_and_the_package():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "FROM python:3.11" in dockerfile
    assert "RUN pip install -r requirements.txt\n" in dockerfile
    assert "pip install --no-deps ." in dockerfile
    for folder in ("etm", "snakemake_storage_plugin_etm_s3"):
        assert f"COPY {folder} ./{folder}" in dockerfile
