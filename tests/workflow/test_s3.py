"""The workflow on a real S3 HTTP server (moto, loopback) through profiles/ec2 and profiles/aws."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from conftest import MONTHS, REPO, SNAKEMAKE, TILE5, TILE6, YEARS, rewrite_chip
from rio_cogeo.cogeo import cog_validate
from s3server import FAKE_CREDENTIALS, S3Server

JULY = MONTHS[0]
OUTPUT = "USA/TBD"
BUCKETS = ("ws-out", "ws-enduser", "ws-work")


def job_counts(dry_run_output: str) -> dict[str, int]:
    table = dry_run_output.split("Job stats:", 1)[1].split("Reasons:", 1)[0]
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


class S3Workspace:
    """The workspace sample's chips in bucket ws-out, outputs to ws-enduser, logs to ws-work."""

    def __init__(self, root: Path, server: S3Server, sample: Path):
        self.root, self.server, self.s3 = root, server, server.client()
        for bucket in BUCKETS:
            self.s3.create_bucket(Bucket=bucket)
        server.upload_tree(sample / "ws-out", "ws-out")
        self.config = {
            "products": ["etasw", "netet"],
            "start_year": YEARS[0],
            "end_year": YEARS[-1],
            "months": list(MONTHS),
            "unmosaicked_inputs": [self.prefix(TILE5), self.prefix(TILE6)],
            "enduser_cog_output": f"ws-enduser/{OUTPUT}/",
            "tiles": {TILE5: {"bounds": [-116.8, 37.4, -106.8, 47.4]}},
        }

    @staticmethod
    def prefix(tile: str) -> str:
        return f"ws-out/USA/Run08_18_2021/run_{tile}/{tile}/"

    def chip_key(self, tile, chip, product, year, month) -> str:
        return f"{self.prefix(tile)[len('ws-out/') :]}{chip}/{year}/{product}_{year}{month:02d}.tif"

    def objects(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """{key: ETag} of every object under a prefix."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", ())}

    def published(self, suffixes: tuple[str, ...] = (".tif",)) -> set[str]:
        """Keys under the output prefix (relative) with these suffixes: COGs by default."""
        keys = self.objects("ws-enduser", OUTPUT + "/")
        return {key[len(OUTPUT) + 1 :] for key in keys if key.endswith(suffixes)}

    def expected_cogs(self, incomplete=frozenset()) -> set[str]:
        cogs = set()
        for product in ("etasw", "netet"):
            for year in YEARS:
                tiles = [t for t in (TILE5, TILE6) if (t, product, year, JULY) not in incomplete]
                cogs |= {f"tiles/{t}/{product}/{year}/{product}_{year}07.tif" for t in tiles}
                if len(tiles) == 2:
                    cogs.add(f"mosaic/{product}/{year}/{product}_{year}07.tif")
        return cogs

    def download(self, bucket: str, key: str) -> str:
        path = os.path.join(tempfile.mkdtemp(dir=self.root), os.path.basename(key))
        self.s3.download_file(bucket, key, path)
        return path

    def snakemake(self, *args: str, profile: str = "ec2") -> tuple:
        """Run snakemake with a profile; the input bucket must be identical afterwards.

        Returns the completed process and the server's request counts during the run.
        """
        (self.root / "test.yaml").write_text(yaml.safe_dump(self.config))
        before = self.objects("ws-out")
        self.server.reset_count()
        result = __import__("subprocess").run(
            [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"),
             "--profile", str(REPO / "profiles" / profile), "--cores", "2", *args,
             "--configfile", "test.yaml"],
            cwd=self.root, capture_output=True, text=True, timeout=600,
            env={**os.environ, **self.server.environment},
        )  # fmt: skip
        counts = self.server.count()
        assert self.objects("ws-out") == before, "a snakemake command touched the input bucket"
        return result, counts


@pytest.fixture
def s3ws(tmp_path, pristine):
    server = S3Server()
    yield S3Workspace(tmp_path, server, pristine / "sample")
    server.stop()


def test_dry_run_lists_missing_chips_from_two_listings(s3ws):
    missing = [
        s3ws.chip_key(TILE5, "chip45.4N-114.8E", "etasw", 2020, JULY),
        s3ws.chip_key(TILE6, "chip41.4N-100.8E", "netet", 2021, JULY),
    ]
    year_folder = s3ws.chip_key(TILE5, "chip43.4N-112.8E", "etasw", 2021, JULY).rsplit("/", 1)[0]
    missing += list(s3ws.objects("ws-out", year_folder + "/"))
    for key in missing:
        s3ws.s3.delete_object(Bucket="ws-out", Key=key)
    result, requests = s3ws.snakemake("-n")
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    for expected in (
        f"etm: {TILE5} chip45.4N-114.8E etasw 2020: 07",
        f"etm: {TILE5} chip43.4N-112.8E etasw 2021: 07",
        f"etm: {TILE5} chip43.4N-112.8E netet 2021: 07",
        f"etm: {TILE6} chip41.4N-100.8E netet 2021: 07",
    ):
        assert expected in lines, result.stderr
    assert requests == {"LIST": 2}  # one paginated listing per tile prefix, nothing per chip


def test_run_publishes_valid_cogs_then_does_nothing_then_redoes_exactly_a_reuploaded_month(s3ws):
    result, _ = s3ws.snakemake()
    assert result.returncode == 0, result.stderr
    assert s3ws.published() == s3ws.expected_cogs()
    for cog in s3ws.published():
        path = s3ws.download("ws-enduser", f"{OUTPUT}/{cog}")
        assert cog_validate(path, quiet=True)[0], cog
    # Beside every COG its STAC Item, beside every region COG its quicklook; the catalog.
    stac = {"catalog.json", "etasw/collection.json", "netet/collection.json"}
    items = {cog.removesuffix(".tif") + ".json" for cog in s3ws.expected_cogs()}
    assert s3ws.published((".json",)) == items | stac
    assert s3ws.published((".png",)) == {
        cog.removesuffix(".tif") + ".png" for cog in s3ws.expected_cogs() if "mosaic/" in cog
    }
    key = s3ws.chip_key(TILE6, "chip43.4N-102.8E", "netet", 2021, JULY)
    chip = s3ws.download("ws-out", key)
    with rasterio.open(chip) as src:
        values, transform = src.read(1), src.transform
    with rasterio.open(
        s3ws.download("ws-enduser", f"{OUTPUT}/tiles/{TILE6}/netet/2021/netet_202107.tif")
    ) as cog:
        col = round((transform.c - cog.transform.c) / cog.transform.a)
        row = round((cog.transform.f - transform.f) / cog.transform.a)
        window = cog.read(1, window=rasterio.windows.Window(col, row, *values.shape[::-1]))
    np.testing.assert_allclose(window, values, rtol=1e-6)

    second, requests = s3ws.snakemake("-n")
    assert second.returncode == 0 and "Nothing to be done" in second.stdout + second.stderr
    assert requests == {"LIST": 3}  # two tile prefixes and the output prefix
    before = s3ws.objects("ws-enduser", OUTPUT + "/")

    rewrite_chip(Path(chip), scale=1.01)
    s3ws.s3.upload_file(chip, "ws-out", key)  # the model re-uploads one chip
    dry, _ = s3ws.snakemake("-n")
    assert job_counts(dry.stdout) == {
        "mosaic_tile": 1, "mosaic_region": 1, "stac_catalog": 1, "all": 1, "total": 4,
    }  # fmt: skip
    rerun, _ = s3ws.snakemake()
    assert rerun.returncode == 0, rerun.stderr
    after = s3ws.objects("ws-enduser", OUTPUT + "/")
    # The month's COGs, Items and quicklook; the catalog is rewritten, its content the same.
    assert {k for k in after if after[k] != before[k]} == {
        f"{OUTPUT}/{name}.{suffix}"
        for name in (f"tiles/{TILE6}/netet/2021/netet_202107", "mosaic/netet/2021/netet_202107")
        for suffix in ("tif", "json")
    } | {f"{OUTPUT}/mosaic/netet/2021/netet_202107.png"}


def test_failed_run_and_output_deletion_never_touch_the_input_bucket(s3ws):
    key = s3ws.chip_key(TILE6, "chip43.4N-102.8E", "etasw", 2020, JULY)
    data = s3ws.s3.get_object(Bucket="ws-out", Key=key)["Body"].read()
    s3ws.s3.put_object(Bucket="ws-out", Key=key, Body=data[: len(data) // 2])  # interrupted upload
    failed, _ = s3ws.snakemake()
    assert failed.returncode != 0
    assert "etm error: chip " in failed.stderr and "cannot be read in full" in failed.stderr
    month = {f"tiles/{TILE6}/etasw/2020/etasw_202007.tif", "mosaic/etasw/2020/etasw_202007.tif"}
    assert s3ws.published() == s3ws.expected_cogs() - month, failed.stderr
    for flag in ("--delete-all-output", "--delete-temp-output"):
        result, _ = s3ws.snakemake(flag)
        assert result.returncode == 0, result.stderr
    assert s3ws.published() == set()
    listed = {b["Name"] for b in s3ws.s3.list_buckets()["Buckets"]}
    assert listed == set(BUCKETS)  # the S3 plugin would delete an emptied bucket; etm-s3 never


def test_output_prefix_overlapping_an_input_prefix_is_refused(s3ws):
    s3ws.config["enduser_cog_output"] = s3ws.prefix(TILE5) + "cogs/"
    result, requests = s3ws.snakemake("-n")
    assert result.returncode != 0
    assert "etm error: config key 'enduser_cog_output':" in result.stderr
    assert "overlaps the input prefix" in result.stderr
    assert requests == {}


def test_etm_s3_refuses_to_write_or_delete_under_an_input_prefix(s3ws, tmp_path, monkeypatch):
    import logging

    from snakemake_interface_common.exceptions import WorkflowError

    from etm import s3
    from snakemake_storage_plugin_etm_s3 import StorageProvider, StorageProviderSettings

    for name, value in s3ws.server.environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(s3, "PROTECTED", set())
    s3.protect([s3ws.prefix(TILE5)])
    provider = StorageProvider(
        local_prefix=tmp_path / "storage",
        logger=logging.getLogger(),
        settings=StorageProviderSettings(),
    )
    key = s3ws.chip_key(TILE5, "chip45.4N-114.8E", "etasw", 2020, JULY)
    chip = provider.object(f"s3://ws-out/{key}")
    chip.local_path().parent.mkdir(parents=True)
    chip.local_path().write_bytes(b"not a chip")
    before = s3ws.objects("ws-out")
    with pytest.raises(WorkflowError, match="etm refuses to write s3://ws-out/USA/"):
        chip.store_object()
    with pytest.raises(WorkflowError, match="etm refuses to delete s3://ws-out/USA/"):
        chip.remove()
    assert s3ws.objects("ws-out") == before


def test_aws_profile_resolves_offline(s3ws):
    result, requests = s3ws.snakemake("-n", profile="aws")
    assert result.returncode == 0, result.stderr
    # 8 tile and 4 region months, the STAC catalog, the heatmaps, all.
    assert job_counts(result.stdout)["total"] == 15
    assert requests == {"LIST": 3}


def test_remote_jobs_on_s3_and_no_credentials_in_any_log(s3ws):
    result, _ = s3ws.snakemake(
        "--executor", "cluster-generic", "--cluster-generic-submit-cmd", "bash",
        "--jobs", "4", "--seconds-between-status-checks", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert s3ws.published() == s3ws.expected_cogs()
    logs = {
        k: s3ws.s3.get_object(Bucket="ws-work", Key=k)["Body"].read().decode()
        for k in s3ws.objects("ws-work")
    }
    mosaics = [text for key, text in logs.items() if "/logs/mosaic_" in key]
    assert len(mosaics) == len(s3ws.expected_cogs())
    for text in mosaics:  # every mosaic log names its sources and its COG as the user knows them
        assert "read s3://ws-" in text and "wrote valid COG s3://ws-enduser/USA/TBD/" in text
    logs = list(logs.values())
    local = [
        p.read_text(errors="replace") for p in (s3ws.root / ".snakemake" / "log").glob("*.log")
    ]
    for text in [*logs, *local, result.stdout, result.stderr]:
        for secret in FAKE_CREDENTIALS.values():
            if secret != "us-east-1":
                assert secret not in text
