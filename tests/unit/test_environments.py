"""The conda environment stays in step with the pinned pip requirements."""

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def pip_pins(name: str) -> dict[str, str]:
    lines = (REPO / name).read_text().splitlines()
    pins = dict(re.match(r"^([\w.-]+)==(\S+)$", ln).groups() for ln in lines if ln and ln[0] != "#")
    return {package.lower(): version for package, version in pins.items()}


def test_conda_environment_pins_every_runtime_requirement_at_the_same_version():
    environment = yaml.safe_load((REPO / "envs" / "etm.yaml").read_text())
    conda = dict(
        d.split("=", 1) for d in environment["dependencies"] if isinstance(d, str) and "=" in d
    )
    assert conda.pop("python") == "3.11"
    assert conda == pip_pins("requirements.txt")
