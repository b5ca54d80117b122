"""The workflow on a real S3 HTTP server (moto, loopback) through profiles/ec2 and profiles/aws."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import (
    JULY,
    LIVE_LOCK,
    LIVE_RUN,
    REPO,
    TILE5,
    TILE6,
    assert_chip_in_cog,
    job_counts,
    rewrite_chip,
)
from rio_cogeo.cogeo import cog_validate
from s3server import assert_no_credentials
from s3workspace import BUCKETS, FILLED_IN, OUTPUT

from etm.config import output_key
from etm.provenance import LEDGER
from etm.web import page_files

pytestmark = pytest.mark.slow  # end-to-end runs on S3 or several runs each (make test-fast)


def test_dry_run_lists_missing_chips_from_two_listings(s3ws):
    missing = [
        s3ws.chip_key(TILE5, "chip45.4N-114.8E", "etasw", 2020, JULY),
        s3ws.chip_key(TILE6, "chip41.4N-100.8E", "netet", 2021, JULY),
    ]
    year_folder = s3ws.chip_key(TILE5, "chip43.4N-112.8E", "etasw", 2021, JULY).rsplit("/", 1)[0]
    missing += list(s3ws.objects("ws-out", year_folder + "/"))
    for key in missing:
        s3ws.s3.delete_object(Bucket="ws-out", Key=key)
    # As the AWS CLI spells prefixes.
    s3ws.config["unmosaicked_inputs"] = ["s3://" + p for p in s3ws.config["unmosaicked_inputs"]]
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


def item_reads(s3ws) -> set[str]:
    """The published Items read (GET) in the last run, relative to the output prefix."""
    under = f"/ws-enduser/{OUTPUT}/"
    return {
        path.removeprefix(under)
        for method, path, _ in s3ws.server.requests
        if method == "GET" and path.startswith(under) and path.endswith(".json")
        and path.count("/") > under.count("/") + 1  # Items are in folders; the catalog is not
    }  # fmt: skip


def kept_reads(s3ws) -> list[str]:
    """The objects the work area keeps Items' texts in that were read (GET) in the last run,
    relative to the output prefix's folder there."""
    under = f"/ws-work/etm/stac_items/ws-enduser/{OUTPUT}"
    return sorted(
        path.removeprefix(under)
        for method, path, _ in s3ws.server.requests
        if method == "GET" and path.startswith(under)
    )


INDEX_NDJSON, INDEX_PARQUET = "etasw-monthly/items.ndjson", "etasw-monthly/items.parquet"


def catalog_log(s3ws, name: str = "stac_catalog") -> str:
    key = f"etm/logs/{output_key(f'ws-enduser/{OUTPUT}', local=False)}/{name}.log"
    return s3ws.s3.get_object(Bucket="ws-work", Key=key)["Body"].read().decode()


def test_run_publishes_valid_cogs_then_does_nothing_then_redoes_exactly_a_reuploaded_month(s3ws):
    result, requests = s3ws.snakemake()
    assert result.returncode == 0, result.stderr
    # Whether each output exists, its time and size: from listings of its folder, not a
    # HEAD each (824 HEADs of this run before, 2026-12-07).
    assert requests["HEAD"] == 0
    assert s3ws.published() == s3ws.expected_cogs()
    items = {cog.removesuffix(".tif") + ".json" for cog in s3ws.expected_cogs()}
    # The first catalog reads no Item: each region period's job kept its period's Items.
    assert item_reads(s3ws) == set()
    region_periods = sorted(
        "/" + cog.removesuffix(".tif") + ".ndjson"
        for cog in s3ws.expected_cogs()
        if "mosaic/" in cog
    )
    assert kept_reads(s3ws) == [".ndjson", *region_periods]
    regions = len(region_periods)
    assert (
        f"{len(items)} Items: 0 kept by the last catalog, {len(items)} by region jobs "
        f"(objects read: {regions}), 0 read one by one" in catalog_log(s3ws)
    )
    for cog in s3ws.published():
        path = s3ws.download("ws-enduser", f"{OUTPUT}/{cog}")
        assert cog_validate(path, quiet=True)[0], cog
    # Beside every COG its STAC Item, beside every region COG its quicklook; the catalog,
    # its Collections and their indexes, a region one's periods; the map page's boundaries.
    stac = {"catalog.json", *s3ws.expected_collections()}
    folders = {href.removesuffix("/collection.json") for href in s3ws.expected_collections()}
    periods = {f"{folder}/periods.json" for folder in folders if "-tiles-" not in folder}
    assert s3ws.published((".json",)) == items | stac | periods | {
        "states.json", "counties.json",
    }  # fmt: skip
    for suffix in (".ndjson", ".parquet"):
        assert s3ws.published((suffix,)) == {f"{folder}/items{suffix}" for folder in folders}
    assert s3ws.published((".png",)) == {
        cog.removesuffix(".tif") + ".png" for cog in s3ws.expected_cogs() if "mosaic/" in cog
    }
    # The map page, with content types a static host serves it by (S3 website hosting).
    assert s3ws.published((".html", ".css")) == {"index.html", "map.css"}
    assert s3ws.published((".js",)) == {n for n in page_files(str(REPO)) if n.endswith(".js")}
    # Without public_url, the index names every file by its S3 URL: objects that are there.
    index = s3ws.s3.get_object(Bucket="ws-enduser", Key=f"{OUTPUT}/{INDEX_NDJSON}")
    for line in map(json.loads, index["Body"].read().decode().splitlines()):
        self = line["links"][0]
        assert self["rel"] == "self"
        assert self["href"] == line["assets"]["data"]["href"].removesuffix(".tif") + ".json"
        hrefs = [link["href"] for link in line["links"]]
        for href in hrefs + [asset["href"] for asset in line["assets"].values()]:
            assert href.startswith(f"s3://ws-enduser/{OUTPUT}/"), href
            s3ws.s3.head_object(Bucket="ws-enduser", Key=href.removeprefix("s3://ws-enduser/"))
    cog = sorted(s3ws.expected_cogs())[0]
    types = {
        name: s3ws.s3.head_object(Bucket="ws-enduser", Key=f"{OUTPUT}/{name}")["ContentType"]
        for name in ("index.html", "map.js", INDEX_NDJSON, INDEX_PARQUET, cog)
    }
    assert types == {
        "index.html": "text/html; charset=utf-8",
        "map.js": "text/javascript; charset=utf-8",
        INDEX_NDJSON: "application/x-ndjson",
        INDEX_PARQUET: "application/vnd.apache.parquet",
        cog: "image/tiff; application=geotiff; profile=cloud-optimized",
    }
    key = s3ws.chip_key(TILE6, "chip43.4N-102.8E", "netet", 2021, JULY)
    chip = s3ws.download("ws-out", key)
    assert_chip_in_cog(
        chip, s3ws.download("ws-enduser", f"{OUTPUT}/tiles/{TILE6}/netet/2021/netet_202107.tif")
    )

    assert not [key for key in s3ws.objects("ws-enduser") if "lock" in key]  # released
    second, requests = s3ws.snakemake("-n")
    assert second.returncode == 0 and "Nothing to be done" in second.stdout + second.stderr
    # The two tile prefixes, the output prefix, the tiles' baselines and the provenance
    # records in the work area; the provenance ledger beside the COGs.
    assert requests == {"LIST": 5, "GET": 1}
    before = s3ws.objects("ws-enduser", OUTPUT + "/")

    rewrite_chip(Path(chip), scale=1.01)
    s3ws.s3.upload_file(chip, "ws-out", key)  # the model re-uploads one chip
    dry, _ = s3ws.snakemake("-n")
    assert job_counts(dry.stdout) == {
        "mosaic_tile": 1, "mosaic_region": 1, "stac_catalog": 1, "quicklooks": 1, "all": 1,
        "total": 5,
    }  # fmt: skip
    # The Items' texts are kept in the work area, not on this machine.
    kept = f"etm/stac_items/ws-enduser/{OUTPUT}"
    assert sorted(k for k in s3ws.objects("ws-work") if "stac_items" in k) == [
        f"{kept}{name}" for name in (".ndjson", *region_periods)
    ]
    shutil.rmtree(s3ws.root / "reports")  # as from another machine
    rerun, _ = s3ws.snakemake()
    assert rerun.returncode == 0, rerun.stderr
    # From one listing of the prefix, the catalog finds the month's two Items changed, and
    # reads them from what their region job kept, not one by one.
    assert item_reads(s3ws) == set()
    assert kept_reads(s3ws) == [".ndjson", "/mosaic/netet/2021/netet_202107.ndjson"]
    assert (
        f"{len(items)} Items: {len(items) - 2} kept by the last catalog, 2 by region jobs "
        "(objects read: 1), 0 read one by one" in catalog_log(s3ws)
    )
    # The month's quicklook only is drawn again (after the 4 of the first run, in the log the
    # work area keeps); the others are read from their copies in the work area.
    drawn = [line for line in catalog_log(s3ws, "quicklooks").splitlines() if " drew " in line]
    assert [line.rpartition("/")[2] for line in drawn][4:] == ["netet_202107.png"]
    after = s3ws.objects("ws-enduser", OUTPUT + "/")
    # The month's COGs, Items and quicklook, and the index holding the new Items; the
    # catalog, Collections and periods lists are rewritten, their content the same.
    assert {k for k in after if after[k] != before[k]} == {
        f"{OUTPUT}/{name}.{suffix}"
        for name in (f"tiles/{TILE6}/netet/2021/netet_202107", "mosaic/netet/2021/netet_202107")
        for suffix in ("tif", "json")
    } | {
        f"{OUTPUT}/mosaic/netet/2021/netet_202107.png",
        *(
            f"{OUTPUT}/netet-{kind}/items.{suffix}"
            for kind in ("monthly", "tiles-monthly")
            for suffix in ("ndjson", "parquet")
        ),
        f"{OUTPUT}/{LEDGER}",
    }


def test_a_failed_rebuild_keeps_the_month_and_output_deletion_spares_the_input_bucket(s3ws):
    s3ws.config.update(end_year=2020)
    first, _ = s3ws.snakemake()
    assert first.returncode == 0, first.stderr
    published = s3ws.objects("ws-enduser", OUTPUT + "/")
    key = s3ws.chip_key(TILE6, "chip43.4N-102.8E", "etasw", 2020, JULY)
    data = s3ws.s3.get_object(Bucket="ws-out", Key=key)["Body"].read()
    s3ws.s3.put_object(Bucket="ws-out", Key=key, Body=data[: len(data) // 2])  # interrupted upload
    failed, _ = s3ws.snakemake()
    assert failed.returncode != 0
    assert "etm error: chip " in failed.stderr and "cannot be read in full" in failed.stderr
    # The month's COGs and Items as they were: Snakemake removed them neither before their
    # jobs nor after these failed, and the catalog's links still lead to them.
    after = s3ws.objects("ws-enduser", OUTPUT + "/")
    kept = {k: after.get(k) for k in published if k.endswith((".tif", ".json"))}
    assert kept == {k: v for k, v in published.items() if k.endswith((".tif", ".json"))}
    for flag in ("--delete-all-output", "--delete-temp-output"):
        result, _ = s3ws.snakemake(flag)
        assert result.returncode == 0, result.stderr
    assert s3ws.published() == set()
    listed = {b["Name"] for b in s3ws.s3.list_buckets()["Buckets"]}
    assert listed == set(BUCKETS)  # the S3 plugin would delete an emptied bucket; etm-s3 never


def test_output_prefix_overlapping_an_input_prefix_is_refused(s3ws):
    s3ws.config["enduser_cog_output"] = "s3://" + s3ws.prefix(TILE5) + "cogs/"
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


def test_the_teams_own_file_runs_as_written(s3ws):
    s3ws.config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert {"max_cpu_percent", "min_memory_available", "sleep_time"} <= set(s3ws.config)
    result, requests = s3ws.snakemake("-n")
    lines = result.stderr.splitlines()
    for key in ("max_cpu_percent", "min_memory_available", "sleep_time"):
        assert any(
            line.startswith(
                f"etm: config key '{key}' is from the old orchestrator and has no effect"
            )
            for line in lines
        ), result.stderr
    # Verified as written: every month of 2020-2021, of which the sample has July only.
    assert (
        "etm: 2 tiles, 50 chips, 2 products, 12 months of 2020-2021: 2400 chip files expected, "
        "200 found, 2200 missing"
    ) in lines
    assert result.returncode == 1 and "no job was started" in result.stderr
    assert not [line for line in lines if line.startswith("etm error")]
    assert requests == {"LIST": 2}


def test_aws_profile_resolves_offline(s3ws):
    result, requests = s3ws.snakemake("-n", profile="aws")
    assert result.returncode == 0, result.stderr
    # A tile's two years (here July of 2 products; 2 jobs at once, as --cores is 2), the
    # region's product-year (a month), a tile baseline.
    assert (
        "etm: 8 containers to submit (6 of 1 vCPU and 1,024 MiB, 2 of 2 vCPUs and 2,048 MiB), "
        "each running as many of its jobs at once as it has vCPUs; at most 60 at once (--jobs, "
        "max_concurrent_containers), 2 cores in flight (--cores): up to 2 cores busy"
    ) in result.stderr.splitlines(), result.stderr
    # 8 tile and 4 region months, 2 tile baselines, the STAC catalog, the quicklooks, the
    # heatmaps, the map page, all.
    assert job_counts(result.stdout)["total"] == 19
    assert requests == {"LIST": 5, "GET": 1}  # as the ec2 profile's (above)


def test_remote_jobs_on_s3_and_no_credentials_in_any_log(s3ws):
    result, _ = s3ws.snakemake(
        "--executor", "cluster-generic", "--cluster-generic-submit-cmd", "bash",
        "--jobs", "4", "--seconds-between-status-checks", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert s3ws.published() == s3ws.expected_cogs()
    logs = s3ws.job_logs()
    mosaics = [text for key, text in logs.items() if "/mosaic_" in key]
    assert len(mosaics) == len(s3ws.expected_cogs())
    for text in mosaics:  # every mosaic log names its sources and its COG as the user knows them
        assert "read s3://ws-" in text and "wrote valid COG s3://ws-enduser/USA/TBD/" in text
    assert_no_credentials(*s3ws.logs(), result.stdout, result.stderr)


def test_the_output_lock_on_s3_is_one_conditional_put(s3ws, monkeypatch):
    from etm.lock import LOCK_NAME, OutputLock, OutputLockedError

    for name, value in s3ws.server.environment.items():
        monkeypatch.setenv(name, value)
    prefix = f"ws-enduser/{OUTPUT}"
    first = OutputLock(prefix, on_s3=True, label=f"s3://{prefix}")
    first.acquire()
    assert f"{OUTPUT}/{LOCK_NAME}" in s3ws.objects("ws-enduser")
    with pytest.raises(OutputLockedError, match=f"^output prefix s3://{prefix} is being written"):
        OutputLock(prefix, on_s3=True, label=f"s3://{prefix}").acquire()
    first.release()
    assert s3ws.objects("ws-enduser") == {}


@pytest.mark.parametrize(
    "profile, filled, key",
    [("aws", ["--default-storage-prefix", "s3://ws-work/etm"], "etm-batch-region"),
     ("ec2", [], "default-storage-prefix")],
)  # fmt: skip
def test_a_profile_value_left_as_its_placeholder_stops_even_a_dry_run(s3ws, profile, filled, key):
    command, environment = s3ws.command("-n", profile=profile)
    for flag in FILLED_IN[profile]:
        command.remove(flag)
    command[1:1] = filled
    result = subprocess.run(command, cwd=s3ws.root, env=environment, capture_output=True, text=True)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("etm error")]
    assert len(errors) == 1 and errors[0].startswith(
        f"etm error: profile key '{key}' is still the placeholder '"
    ), result.stderr
    assert "FILL-IN-" in errors[0]


def store_puts(s3ws) -> list[str]:
    """The series store's objects written (PUT) in the last run, in order."""
    under = f"/ws-enduser/{OUTPUT}/series/etasw.zarr/"
    return [
        p.removeprefix(under)
        for m, p, _ in s3ws.server.requests
        if m == "PUT" and p.startswith(under)
    ]


def s3_series(s3ws, lon: float, lat: float) -> list[list[str]]:
    """`etm timeseries` at a point of the published prefix on S3: its CSV rows."""
    _, environment = s3ws.command()
    result = subprocess.run(
        [str(Path(REPO) / ".venv/bin/etm"), "timeseries", "--product", "etasw", "--lon",
         str(lon), "--lat", str(lat), f"s3://ws-enduser/{OUTPUT}"],
        cwd=s3ws.root, capture_output=True, text=True, env=environment,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert_no_credentials(result.stdout, result.stderr)
    return [line.split(",") for line in result.stdout.splitlines()]


def test_the_series_store_on_s3_is_published_then_updated_for_a_month_redone(s3ws):
    import rasterio

    s3ws.config.update(products=["etasw"], series_store=True)
    result, _ = s3ws.snakemake()
    assert result.returncode == 0, result.stderr
    first = store_puts(s3ws)
    assert first[-1] == "zarr.json" and "etasw/c/0/0/0" in first
    point, href = (-102.3, 42.1), "mosaic/etasw/2021/etasw_202107.tif"

    def cog_value() -> str:
        with rasterio.open(s3ws.download("ws-enduser", f"{OUTPUT}/{href}")) as cog:
            return f"{next(cog.sample([point]))[0]:.9g}"

    series = s3_series(s3ws, *point)
    assert series[-1] == ["2021-07", cog_value(), href] and len(series) == 3
    before = series[-1][1]

    key = s3ws.chip_key(TILE6, "chip43.4N-102.8E", "etasw", 2021, JULY)
    chip = s3ws.download("ws-out", key)
    rewrite_chip(Path(chip), scale=1.5)
    s3ws.s3.upload_file(chip, "ws-out", key)  # the model redoes one chip of July 2021
    result, _ = s3ws.snakemake()
    assert result.returncode == 0, result.stderr
    again = store_puts(s3ws)
    # The month's shards and the group's metadata, last; not the whole store again.
    assert again[-1] == "zarr.json" and len(again) < len(first), (first, again)
    series = s3_series(s3ws, *point)
    assert series[-1] == ["2021-07", cog_value(), href] and series[-1][1] != before
    assert_no_credentials(*s3ws.logs())


@pytest.mark.parametrize("other", ["USA", f"{OUTPUT}/sub"], ids=["around", "inside"])
def test_a_run_on_s3_is_refused_while_a_live_run_writes_a_prefix_around_or_inside(s3ws, other):
    from etm.lock import LOCK_NAME

    s3ws.server.client().put_object(
        Bucket="ws-enduser", Key=f"{other}/{LOCK_NAME}", Body=LIVE_LOCK.encode()
    )
    result, _ = s3ws.snakemake()
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("etm error:")]
    assert errors == [
        f"etm error: output prefix s3://ws-enduser/{OUTPUT} overlaps s3://ws-enduser/{other}, "
        f"which is being written by {LIVE_RUN}; one run at a time writes a folder and the "
        "folders in it: wait for it, or, if that run is gone, remove its lock: "
        f"etm unlock s3://ws-enduser/{other}"
    ], result.stderr
    assert set(s3ws.objects("ws-enduser")) == {f"{other}/{LOCK_NAME}"}


def test_a_work_area_inside_a_live_runs_output_prefix_on_s3_is_refused(s3ws):
    from etm.lock import LOCK_NAME

    s3ws.server.client().put_object(
        Bucket="ws-work", Key=f"etm/{LOCK_NAME}", Body=LIVE_LOCK.encode()
    )
    result, _ = s3ws.snakemake()
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("etm error:")]
    assert len(errors) == 1 and errors[0].startswith("etm error: the log folder ws-work/etm/logs/")
    assert errors[0].endswith(
        f" is inside the output prefix s3://ws-work/etm, which is being written by {LIVE_RUN}; "
        "keep it apart from every output prefix"
    ), result.stderr
    assert not [key for key in s3ws.objects("ws-work") if "/logs/" in key]
    assert s3ws.objects("ws-enduser") == {}


def test_a_work_area_inside_an_input_prefix_is_one_line_before_any_job(s3ws):
    # Each job failed with Snakemake's nested lines (the plugin refused its writes).
    command, environment = s3ws.command()
    at = command.index("--default-storage-prefix")
    tile = s3ws.prefix(TILE5).rstrip("/")
    command[at + 1] = f"s3://{tile}/work"
    result = subprocess.run(
        command, cwd=s3ws.root, env=environment, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("etm error:")]
    assert len(errors) == 1 and errors[0].startswith(
        f"etm error: the work area s3://{tile}/work (--default-storage-prefix) is inside "
        f"the input prefix s3://{tile}; "
    ), result.stderr
    assert not [key for key in s3ws.objects("ws-out") if "/work/" in key]
