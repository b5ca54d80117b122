"""Shared fixtures: a copy of a small generated sample per test, and the real snakemake CLI."""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.windows
import yaml

from etm.config import Settings, load_settings, read_schema
from etm.plan import collection_href, collections, publications
from etm.provenance import LEDGER
from etm.sample import tile_prefix, write_sample

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
TILE5, TILE6 = "r50.0_tile5", "r50.0_tile6"
#: The demo's output prefix, whose folders under reports/ and logs/ are named after it.
DEMO_OUTPUT = "sample_ws-enduser_USA_demo"


def kept_folder(root: Path, top: str, readable: str) -> Path:
    """The folder a run keeps for an output prefix under ``top`` (reports or logs): named
    after the prefix (``readable``, ``/`` as ``_``) and a hash of where it is."""
    (folder,) = (root / top).glob(f"{readable}-????????")
    return folder


#: The workspace sample: both tiles, two products, July of two years (12 jobs a run).
YEARS, MONTHS = (2020, 2021), (7,)
JULY = MONTHS[0]
SCHEMA = read_schema(REPO)


#: A lock of an output prefix held by this test's own process: a live run of this machine.
LIVE_LOCK = json.dumps(
    dict(run="r", host=socket.gethostname(), pid=os.getpid(), directory="/w",
         started="2026-12-07T10:00:00+00:00")
)  # fmt: skip
#: How etm names that run.
LIVE_RUN = (
    f"the run started 2026-12-07T10:00:00+00:00 on host {socket.gethostname()} (process "
    f"{os.getpid()}, in /w)"
)


def snakemake_command(
    *args: str,
    cores: int = 2,
    profile: str | None = None,
    configfile: str = "test.yaml",
    workflow: Path = REPO,
) -> list[str]:
    """The real snakemake command line of every test: the workflow (this repository, or a
    checkout of it) with a profile of its own, or none."""
    profiles = ["--profile", str(workflow / "profiles" / profile)] if profile else []
    return [
        str(SNAKEMAKE), "--snakefile", str(workflow / "Snakefile"), *profiles,
        "--cores", str(cores), *args, "--configfile", configfile,
    ]  # fmt: skip


def job_counts(dry_run_output: str) -> dict[str, int]:
    """The "Job stats" table of a dry run, as {rule: count}."""
    table = dry_run_output.split("Job stats:", 1)[1].split("Reasons:", 1)[0]
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


def checksums(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under a folder, by relative path."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


class SampleWorkspace:
    """The workspace sample's config, and what a run of it publishes: the base of the
    local :class:`Workspace` and of ``s3workspace.S3Workspace``, which say where a tile's
    chips are (``prefix``)."""

    def __init__(self, root: Path, output: str):
        self.root = root
        self.config = {
            "products": ["etasw", "netet"],
            "start_year": YEARS[0],
            "end_year": YEARS[-1],
            "months": list(MONTHS),
            "unmosaicked_inputs": [self.prefix(TILE5), self.prefix(TILE6)],
            "enduser_cog_output": f"{output}/",
            "max_concurrent_containers": 60,
            "tiles": {TILE5: {"bounds": [-116.8, 37.4, -106.8, 47.4]}},
        }

    def expected_cogs(self, incomplete: set[tuple] = frozenset()) -> set[str]:
        """The COGs a run publishes, by path under the output prefix, as etm.plan derives
        them, leaving out incomplete (tile, product, year, month)s."""
        return {f"{p.name}.tif" for p in publications(self.settings(), frozenset(incomplete))}

    def expected_collections(self) -> set[str]:
        """The STAC Collections' files a complete run publishes, as etm.plan derives them."""
        settings = self.settings()
        return {collection_href(c) for c in collections(settings, publications(settings))}

    def settings(self) -> Settings:
        # A copy: load_settings fills the defaults in, and test.yaml is written from config.
        return load_settings(copy.deepcopy(self.config), SCHEMA, local=False)

    def write_config(self) -> None:
        (self.root / "test.yaml").write_text(yaml.safe_dump(self.config))


class Workspace(SampleWorkspace):
    """A working directory with its own copy of the sample chips and a config."""

    def __init__(self, root: Path):
        self.chips_root = root / "sample" / "ws-out"
        self.output = root / "out"
        super().__init__(root, "out")

    @property
    def reports(self) -> Path:
        """The verifier's reports of the output prefix ``out``."""
        return kept_folder(self.root, "reports", "out")

    @property
    def logs(self) -> Path:
        """The job logs, records and baselines of the output prefix ``out``."""
        return kept_folder(self.root, "logs", "out")

    def prefix(self, tile: str, run: str = "Run08_18_2021") -> str:
        """A tile prefix as the config writes it, relative to the workspace, with a slash."""
        return os.path.relpath(tile_prefix(str(self.root / "sample"), tile, run), self.root) + "/"

    def chip(self, tile: str, chip: str, product: str, year: int, month: int, **kw) -> Path:
        """Path of one chip file."""
        return (
            self.root
            / self.prefix(tile, **kw)
            / chip
            / f"{year}"
            / f"{product}_{year}{month:02d}.tif"
        )

    def tile_cog(self, tile: str, product: str, year: int, month: int) -> Path:
        return (
            self.output / "tiles" / tile / product / f"{year}" / f"{product}_{year}{month:02d}.tif"
        )

    def region_cog(self, product: str, year: int, month: int) -> Path:
        return self.output / "mosaic" / product / f"{year}" / f"{product}_{year}{month:02d}.tif"

    def published(self) -> set[str]:
        """Every COG under the output prefix, hidden partial ones included, by relative path.

        STAC JSON, the indexes, quicklook PNGs, the map page and the provenance ledger are left
        out (tests/workflow/test_publishing.py).
        """
        if not self.output.exists():
            return set()
        return {
            str(p.relative_to(self.output))
            for p in self.output.rglob("*")
            if p.is_file()
            and p.suffix not in (".json", ".png", ".ndjson", ".parquet", ".html", ".js", ".css")
            and p.name != LEDGER
        }

    def snakemake(
        self,
        *args: str,
        profile: str | None = None,
        timeout: float = 600,
        chips_added: bool = False,
    ) -> subprocess.CompletedProcess:
        """Run the real snakemake CLI here; every chip must be byte-identical afterwards.

        With ``chips_added`` (the model rerun through missing_chips: rerun), new chips may
        appear; every chip that was there is still byte-identical.
        """
        self.write_config()
        before = checksums(self.chips_root)
        result = subprocess.run(
            snakemake_command(*args, profile=profile),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        after = checksums(self.chips_root)
        if chips_added:
            after = {path: after.get(path) for path in before}
        assert after == before, "a snakemake command modified or deleted a chip"
        return result


@contextlib.contextmanager
def unwritable(folder: Path) -> Iterator[None]:
    """A folder this user cannot write into: read-only, and immutable for root, whom
    permissions do not stop (skipped where root cannot make it so)."""
    folder.chmod(0o555)
    immutable = os.geteuid() == 0
    if immutable and subprocess.run(["chattr", "+i", str(folder)], check=False).returncode:
        folder.chmod(0o755)
        pytest.skip("root cannot make a folder immutable here (chattr +i)")
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def generate(root: Path, **kwargs) -> Path:
    write_sample(str(root / "sample"), **kwargs)
    return root


@pytest.fixture(scope="session")
def pristine(tmp_path_factory) -> Path:
    """The workspace sample, generated once per test session."""
    return generate(tmp_path_factory.mktemp("pristine"), years=YEARS, months=MONTHS)


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Path:
    """The full sample (2 tiles x 25 chips, 2 products, 12 months) run as `make demo` does,
    once per test run: pytest-xdist's workers share it (their base folders' parent)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if "PYTEST_XDIST_WORKER" in os.environ else base
    root = shared / "demo"
    with open(shared / "demo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other workers wait for the first one's run
        if not (root / "demo.done").exists():
            generate(root)
            shutil.copy(REPO / "config" / "sample.yaml", root / "sample.yaml")
            before = checksums(root / "sample" / "ws-out")
            result = subprocess.run(
                snakemake_command(configfile="sample.yaml"),
                cwd=root,
                capture_output=True,
                text=True,
                timeout=900,
            )
            assert result.returncode == 0, result.stderr
            assert checksums(root / "sample" / "ws-out") == before
            (root / "demo.done").touch()
    return root


@pytest.fixture
def workspace(tmp_path, pristine) -> Workspace:
    """A fresh copy of the workspace sample."""
    shutil.copytree(pristine / "sample", tmp_path / "sample")
    return Workspace(tmp_path)


@pytest.fixture
def s3_out(monkeypatch):
    """A loopback S3 server with bucket ``out``, reached through the environment only."""
    from s3server import S3Server

    server = S3Server()
    for name, value in server.environment.items():
        monkeypatch.setenv(name, value)
    server.client().create_bucket(Bucket="out")
    yield server
    server.stop()


def tile_year(generated: Path, folder: Path, year: int) -> Workspace:
    """A copy of a generated sample in ``folder``, set to etasw's twelve months of one year
    on tile 6 alone."""
    shutil.copytree(generated / "sample", folder / "sample")
    workspace = Workspace(folder)
    workspace.config.update(
        products=["etasw"], start_year=year, end_year=year, months=list(range(1, 13)),
        unmosaicked_inputs=[workspace.prefix(TILE6)], tiles={},
    )  # fmt: skip
    return workspace


def assert_chip_in_cog(chip, cog) -> None:
    """A chip's pixels are in a COG, at the chip's place (to float32 precision)."""
    with rasterio.open(chip) as src, rasterio.open(cog) as out:
        col = round((src.transform.c - out.transform.c) / out.transform.a)
        row = round((out.transform.f - src.transform.f) / out.transform.a)
        window = rasterio.windows.Window(col, row, src.width, src.height)
        np.testing.assert_allclose(out.read(1, window=window), src.read(1), rtol=1e-6)


def rewrite_chip(path: Path, **changes) -> None:
    """Rewrite a chip in place (as a re-upload would), changing its values or georeferencing.

    ``scale`` multiplies the values inside the chip: its outermost rows and columns, which
    its neighbours share, keep theirs (or its neighbours would refuse it). ``crs`` and
    ``transform`` replace the georeferencing.
    """
    with rasterio.open(path) as src:
        profile, values = src.profile, src.read(1)
    values[1:-1, 1:-1] *= changes.pop("scale", 1.0)
    profile.update(changes)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values, 1)


@pytest.fixture
def s3ws(tmp_path, pristine):
    """The workspace sample's chips on a fresh loopback S3 server (tests/s3workspace.py)."""
    from s3server import S3Server
    from s3workspace import S3Workspace  # it imports this module's constants

    server = S3Server()
    yield S3Workspace(tmp_path, server, pristine / "sample")
    server.stop()
