"""What a run publishes, from what, and what the missing-chip policy makes of the chips."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from etm.config import load_settings, read_schema
from etm.grid import Chip
from etm.inventory import ChipMonth, Verification
from etm.plan import (
    REGION_CONTAINER,
    TILE_CONTAINER,
    Containers,
    Period,
    Publication,
    Source,
    aggregation,
    collection_kind,
    collections,
    container,
    containers,
    index_base,
    index_hrefs,
    missing_line,
    period_plan,
    periods,
    policy,
    publications,
    region_sources,
)

REPO = Path(__file__).resolve().parents[2]
SCHEMA = read_schema(REPO)
TILE5, TILE6 = "r50.0_tile5", "r50.0_tile6"


def settings(**changes):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    return load_settings({**config, **changes}, SCHEMA)


def verification(config, *missing: ChipMonth) -> Verification:
    return Verification(config, {}, {}, list(missing), {}, [])


def test_a_period_is_a_month_or_a_year():
    assert Period.parse("202007") == Period(2020, 7)
    assert Period.parse("2020") == Period(2020)
    assert Period(2020, 7).is_month and not Period(2020).is_month
    assert (str(Period(2020, 7)), str(Period(2020))) == ("202007", "2020")
    assert (Period(2020, 7).label, Period(2020).label) == ("2020-07", "2020")
    assert Period(2020).months() == [Period(2020, month) for month in range(1, 13)]
    assert Period(2020, 7).months() == [Period(2020, 7)]


@pytest.mark.parametrize("text", ["20207", "2020-07", "July", ""])
def test_anything_else_is_not_a_period(text):
    with pytest.raises(ValueError, match="is not a period"):
        Period.parse(text)


def test_a_year_follows_its_months_and_aggregates_by_product():
    annual = settings(annual=True, months=list(range(1, 13)))
    assert periods(annual, 2020)[-2:] == [Period(2020, 12), Period(2020)]
    assert periods(settings(months=[7]), 2020) == [Period(2020, 7)]
    assert aggregation(annual, "etasw", Period(2020)) == "sum"
    assert aggregation(annual, "snwpk", Period(2020)) == "mean"  # a state, not a flux
    assert aggregation(annual, "etasw", Period(2020, 7)) is None


def test_the_region_is_published_only_where_every_tile_is():
    config = settings(months=[7], end_year=2020, products=["etasw"])
    assert publications(config) == [
        Publication("etasw", Period(2020, 7), TILE5),
        Publication("etasw", Period(2020, 7), TILE6),
        Publication("etasw", Period(2020, 7)),
    ]
    left_out = publications(config, frozenset({(TILE6, "etasw", 2020, 7)}))
    assert left_out == [Publication("etasw", Period(2020, 7), TILE5)]
    assert left_out[0].name == f"tiles/{TILE5}/etasw/2020/etasw_202007"
    assert Publication("etasw", Period(2020)).name == "mosaic/etasw/2020/etasw_2020"


def test_a_year_needs_all_its_months():
    config = settings(annual=True, end_year=2020, products=["etasw"])
    skipped = frozenset({(TILE5, "etasw", 2020, 3)})
    names = {p.name for p in publications(config, skipped)}
    assert f"tiles/{TILE5}/etasw/2020/etasw_2020" not in names
    assert f"tiles/{TILE6}/etasw/2020/etasw_2020" in names
    assert "mosaic/etasw/2020/etasw_2020" not in names
    assert "mosaic/etasw/2020/etasw_202004" in names


def test_the_missing_chip_policy_decides_skips_reruns_and_its_closing_line():
    chip = Chip.parse("chip43.4N-102.8E")
    gone = [ChipMonth(TILE6, chip, "etasw", 2020, 7), ChipMonth(TILE6, chip, "netet", 2020, 8)]
    skip = settings(missing_chips="skip")
    assert policy(skip, verification(skip, *gone)).skipped == {
        (TILE6, "etasw", 2020, 7), (TILE6, "netet", 2020, 8),
    }  # fmt: skip
    rerun = settings(missing_chips="rerun", chip_rerun_command="model {chip} {year}")
    found = policy(rerun, verification(rerun, *gone))
    assert found.rerun_chips(TILE6, 2020) == ("chip43.4N-102.8E",)
    assert found.rerun_chips(TILE5, 2020) == () and not found.skipped
    error = settings()
    assert policy(error, verification(error, *gone)) == policy(error, verification(error))
    assert missing_line(error, 2, "reports/missing.csv") == (
        "2 chip files missing; no job was started; rerun the model for them, or set "
        "missing_chips: skip to build the complete months only. Full list: reports/missing.csv"
    )


def test_the_containers_say_their_shapes_and_the_cores_they_keep_busy():
    found = Containers(((4, 4096),) * 3 + ((1, 1024),) * 2, cores=220, at_once=60)
    assert found.describe() == (
        "5 containers to submit (3 of 4 vCPUs and 4,096 MiB, 2 of 1 vCPU and 1,024 MiB), each "
        "running as many of its jobs at once as it has vCPUs; at most 60 at once (--jobs, "
        "max_concurrent_containers), 220 cores in flight (--cores): up to 220 cores busy"
    )
    assert (
        Containers(((1, 1024),), cores=220, at_once=60).describe().endswith("up to 60 cores busy")
    )


def test_a_tile_month_is_published_from_checked_chips_and_a_region_year_from_its_months():
    config = settings(annual=True)
    chips = [Source(f"ws-out/a/{TILE6}/chip47.4N-106.8E/2020/etasw_202007.tif", "etag:e1")]
    tile = period_plan(
        config, Publication("etasw", Period(2020, 7), TILE6), sources=chips,
        destination="s3://x.tif", missing=[], prefixes=["s3://b/run"],
    )  # fmt: skip
    assert tile.item["href"] == f"tiles/{TILE6}/etasw/2020/etasw_202007.json"
    assert tile.checks.chips == ("chip47.4N-106.8E",)
    assert (tile.combine, tile.item["aggregation"], tile.encoding["level"]) == ("first", None, 9)
    assert (tile.item["collection"], tile.prefixes) == ("etasw-tiles-monthly", ("s3://b/run",))
    assert tile.label == f"tile {TILE6} etasw 2020-07" and tile.sources == tuple(chips)
    region = period_plan(
        config, Publication("etasw", Period(2020)), sources=[], destination="s3://y.tif",
        missing=[], prefixes=[],
    )  # fmt: skip
    assert region.item["collection"] == "etasw-yearly"
    assert region.item["href"] == "mosaic/etasw/2020/etasw_2020.json"
    assert (region.checks, region.combine, region.item["aggregation"]) == (None, "first", "sum")
    assert (region.kept_items, region.tile_items) == (None, ())  # locally
    assert region.label == "region etasw 2020"


def test_on_s3_a_region_job_keeps_its_period_items_for_the_catalog():
    config = settings(annual=True)
    at = dict(missing=[], prefixes=[], kept="w/etm/out")
    year = Period(2020)
    tile = period_plan(
        config, Publication("etasw", year, TILE6), sources=[], destination="s3://x.tif", **at
    )
    assert (tile.kept_items, tile.tile_items) == (None, ())
    sources, _ = region_sources(config, "etasw", year)
    region = period_plan(
        config, Publication("etasw", year), sources=[Source(path) for path in sources],
        destination="s3://y.tif", **at,
    )  # fmt: skip
    assert region.kept_items == "w/etm/out/mosaic/etasw/2020/etasw_2020.ndjson"
    # Each tile's Item as its own job makes it, in the order of the region's sources.
    assert [item["href"].removesuffix(".json") for item in region.tile_items] == [
        source.removeprefix(f"{config.output}/").removesuffix(".tif") for source in sources
    ]
    assert next(item for item in region.tile_items if item["tile"] == TILE6) == tile.item


def test_each_kind_of_period_has_its_collection_the_regions_months_first():
    config = settings(annual=True, products=["etasw", "netet"])
    published = publications(config)
    assert collections(config, published) == [
        f"{product}-{kind}"
        for product in ("etasw", "netet")
        for kind in ("monthly", "yearly", "tiles-monthly", "tiles-yearly")
    ]
    kinds = {(p.collection, p.tile is None, p.period.is_month) for p in published}
    assert ("etasw-monthly", True, True) in kinds and ("netet-tiles-yearly", False, False) in kinds
    assert len({collection for collection, *_ in kinds}) == len(kinds)  # one kind each
    assert [collection_kind(c) for c in collections(config, published)[:4]] == [
        "monthly", "yearly", "tiles-monthly", "tiles-yearly",
    ]  # fmt: skip
    # Without annual: true, and where a tile's months are skipped, only what is published.
    monthly = settings(products=["etasw"])
    skipped = frozenset(
        (tile, "etasw", y, m) for tile in monthly.tiles for y in monthly.years for m in range(1, 13)
    )
    assert collections(monthly, publications(monthly)) == ["etasw-monthly", "etasw-tiles-monthly"]
    assert collections(monthly, publications(monthly, skipped)) == []


def test_a_region_collection_lists_its_periods_beside_its_indexes():
    assert index_hrefs("etasw-monthly") == [
        "etasw-monthly/items.ndjson", "etasw-monthly/items.parquet", "etasw-monthly/periods.json",
    ]  # fmt: skip
    assert index_hrefs("etasw-yearly")[2] == "etasw-yearly/periods.json"
    assert index_hrefs("etasw-tiles-monthly") == [
        "etasw-tiles-monthly/items.ndjson", "etasw-tiles-monthly/items.parquet",
    ]  # fmt: skip


def test_the_index_names_the_output_prefix_by_its_public_url_or_its_own_address(
    tmp_path, monkeypatch
):
    public = "https://d111111abcdef8.cloudfront.net/USA/demo"
    assert index_base("ws-enduser/USA/demo", on_s3=True, public_url=public) == public
    assert index_base("out", on_s3=False, public_url=public) == public
    assert index_base("ws-enduser/USA/demo", on_s3=True, public_url=None) == (
        "s3://ws-enduser/USA/demo"
    )
    # A local folder by its absolute path, as the user wrote it (a link not followed), and
    # as it is: a file URL would escape the space, which rasterio does not read back.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert index_base("link/my out", on_s3=False, public_url=None) == f"{tmp_path}/link/my out"
    assert index_base("/data/out", on_s3=False, public_url=None) == "/data/out"


def test_a_container_holds_a_tiles_years_counted_from_the_first_and_a_regions_year():
    settings = SimpleNamespace(years=tuple(range(2001, 2006)), years_per_container=2)
    held = {year: container(settings, "r50.0_tile6", "etasw", year) for year in range(2001, 2006)}
    assert held == {
        2001: "tile_r50.0_tile6_2001-2002", 2002: "tile_r50.0_tile6_2001-2002",
        2003: "tile_r50.0_tile6_2003-2004", 2004: "tile_r50.0_tile6_2003-2004",
        2005: "tile_r50.0_tile6_2005",
    }  # fmt: skip
    assert container(settings, None, "etasw", 2003) == "region_etasw_2003"
    settings = SimpleNamespace(
        years=(2001, 2002), years_per_container=1, tiles={"t5": None}, products=("etasw",)
    )
    assert containers(settings) == {
        "tile_t5_2001": TILE_CONTAINER, "tile_t5_2002": TILE_CONTAINER,
        "region_etasw_2001": REGION_CONTAINER, "region_etasw_2002": REGION_CONTAINER,
    }  # fmt: skip
