"""The job image, really built: ``make image`` with podman, on a Debian base built here.

This machine has no Docker engine and no Docker Hub, so the base the Dockerfile builds on
is Debian bookworm from Debian's own mirrors (``mmdebstrap --variant=minbase`` with
python3), imported into podman. A test-only layer adds this machine's extra CA
certificates, if any, for pip; the Dockerfile itself does not depend on them. podman's
layer cache makes a second build on one machine take seconds.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEBIAN = "localhost/etm-test-debian:bookworm"
BASE = "localhost/etm-test-base:bookworm"
#: What works on these machines: runc (crun fails on setrlimit with hybrid cgroups),
#: cgroupfs, host networking, raised limits.
CONTAINERS_CONF = """\
[containers]
netns = "host"
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
"""
EXTRA_CAS = Path("/usr/local/share/ca-certificates")


def environment() -> dict[str, str]:
    """The environment podman runs with here (its configuration in a temporary folder)."""
    folder = Path(tempfile.gettempdir()) / "etm-podman"
    folder.mkdir(exist_ok=True)
    (folder / "containers.conf").write_text(CONTAINERS_CONF)
    return {**os.environ, "CONTAINERS_CONF": str(folder / "containers.conf")}


def podman(*args: str, check: bool = True, **options) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["podman", *args], env=environment(), check=check, capture_output=True, text=True,
        **options,
    )  # fmt: skip


def _exists(image: str) -> bool:
    return podman("image", "exists", image, check=False).returncode == 0


def _certificates() -> list[Path]:
    return sorted(EXTRA_CAS.glob("*.crt")) if EXTRA_CAS.is_dir() else []


def base_image() -> str:
    """Debian bookworm with python3 (and this machine's extra CAs, for pip)."""
    cas = _certificates()
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in cas)).hexdigest()[:12]
    tagged = f"{BASE}-{digest}"
    if _exists(tagged):
        return tagged
    if not _exists(DEBIAN):
        with tempfile.TemporaryDirectory() as scratch:
            tarball = Path(scratch) / "debian.tar"
            subprocess.run(
                ["mmdebstrap", "--quiet", "--variant=minbase",
                 "--include=python3,python3-venv,ca-certificates", "bookworm", str(tarball)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            podman("import", str(tarball), DEBIAN)
    with tempfile.TemporaryDirectory() as context:
        (Path(context) / "ca").mkdir()
        for path in cas:
            shutil.copy(path, Path(context) / "ca" / path.name)
        (Path(context) / "Containerfile").write_text(
            f"FROM {DEBIAN}\n"
            "COPY ca/ /usr/local/share/ca-certificates/\n"
            "RUN update-ca-certificates\n"
            "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt\n"
        )
        podman("build", "--quiet", "--tag", tagged, context)
    return tagged


def job_image() -> str:
    """``make image`` on the test base: the Dockerfile as shipped, built by podman."""
    version = next(
        line.split('"')[1]
        for line in (REPO / "pyproject.toml").read_text().splitlines()
        if line.startswith("version = ")
    )
    image = f"localhost/etm-test:{version}"
    subprocess.run(
        ["make", "--no-print-directory", "image", "CONTAINER=podman",
         f"BASE={base_image()}", f"IMAGE={image}"],
        cwd=REPO, env=environment(), check=True, capture_output=True, text=True,
    )  # fmt: skip
    return image
