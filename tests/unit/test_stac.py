"""STAC periods, relative links, checksums and the index."""

import hashlib
import subprocess
import sys
from datetime import UTC, datetime

from etm.stac import (
    indexed,
    is_published,
    item_texts,
    keep_items,
    multihash_sha256,
    period_bounds,
    period_list,
    relative_link,
)


def test_periods_span_the_whole_month_or_year():
    assert period_bounds("202002") == (
        datetime(2020, 2, 1, tzinfo=UTC),
        datetime(2020, 2, 29, 23, 59, 59, tzinfo=UTC),
    )
    assert period_bounds("2021") == (
        datetime(2021, 1, 1, tzinfo=UTC),
        datetime(2021, 12, 31, 23, 59, 59, tzinfo=UTC),
    )


def test_links_are_relative_to_the_linking_file():
    item = "tiles/r50.0_tile6/etasw/2020/etasw_202007.json"
    assert relative_link("root", "catalog.json", item).href == "../../../../catalog.json"
    child = relative_link("child", "etasw/collection.json", "catalog.json")
    assert child.href == "./etasw/collection.json"
    assert relative_link("item", item, "etasw/collection.json").href == f"../{item}"


def test_the_checksum_is_a_sha256_multihash(tmp_path):
    data = bytes(range(256)) * 5000  # over one read block
    (tmp_path / "f").write_bytes(data)
    assert multihash_sha256(str(tmp_path / "f")) == "1220" + hashlib.sha256(data).hexdigest()


def test_an_index_line_names_every_file_absolutely_under_the_base_with_a_self_link():
    item = {
        "id": "x",
        "collection": "etasw-tiles-monthly",
        "links": [{"rel": "root", "href": "../../../../catalog.json", "type": "application/json"},
                  {"rel": "collection", "href": "../../../../etasw-tiles-monthly/collection.json"},
                  {"rel": "license", "href": "https://example.org/terms"}],
        "assets": {"data": {"href": "./etasw_202007.tif"}},
    }  # fmt: skip
    href = "tiles/r50.0_tile6/etasw/2020/etasw_202007.json"
    base = "https://d111111abcdef8.cloudfront.net/USA/demo"
    line = indexed(item, href, base)
    assert line["links"] == [
        {"rel": "self", "href": f"{base}/{href}", "type": "application/json"},
        {"rel": "root", "href": f"{base}/catalog.json", "type": "application/json"},
        {"rel": "collection", "href": f"{base}/etasw-tiles-monthly/collection.json"},
        {"rel": "license", "href": "https://example.org/terms"},
    ]
    assert line["assets"]["data"]["href"] == f"{base}/tiles/r50.0_tile6/etasw/2020/etasw_202007.tif"
    assert item["assets"]["data"]["href"] == "./etasw_202007.tif"  # the Item is unchanged
    assert [link["rel"] for link in item["links"]] == ["root", "collection", "license"]
    assert indexed(item, href, "/data/out")["links"][1]["href"] == "/data/out/catalog.json"


def region_item(start: str, period: str, name: str, low: float, high: float) -> tuple:
    """(href, Item) of a region period as published: its COG beside it."""
    statistics = {"minimum": low, "maximum": high, "mean": (low + high) / 2}
    asset = {"href": f"./{name}.tif", "raster:bands": [{"statistics": statistics}]}
    item = {
        "properties": {"start_datetime": start, "etm:period": period},
        "assets": {"data" if period == "month" else "year": asset, "thumbnail": {"href": "x"}},
    }
    return f"mosaic/etasw/{start[:4]}/{name}.json", item


def test_a_region_collections_periods_are_in_time_order_with_their_cog_and_range():
    items = [
        region_item("2020-07-01T00:00:00Z", "month", "etasw_202007", 0.5, 180.25),
        region_item("2019-12-01T00:00:00Z", "month", "etasw_201912", 0.0, 12.0),
    ]
    # The COG relative to the list in the Collection's folder, whatever the index's base.
    assert period_list(items, "etasw-monthly") == {
        "periods": [
            {"period": "2019-12", "cog": "../mosaic/etasw/2019/etasw_201912.tif", "minimum": 0.0,
             "maximum": 12.0},
            {"period": "2020-07", "cog": "../mosaic/etasw/2020/etasw_202007.tif", "minimum": 0.5,
             "maximum": 180.25},
        ]
    }  # fmt: skip
    year = region_item("2020-01-01T00:00:00Z", "year", "etasw_2020", 1.0, 900.0)
    assert period_list([year], "etasw-yearly")["periods"] == [
        {"period": "2020", "cog": "../mosaic/etasw/2020/etasw_2020.tif", "minimum": 1.0,
         "maximum": 900.0}
    ]  # fmt: skip


def test_a_kept_text_is_the_published_item_by_its_md5_or_the_etag_it_was_kept_with():
    text = '{"id": "a"}'
    md5 = hashlib.md5(text.encode()).hexdigest()
    assert is_published(text, md5, None)  # one PUT, without SSE-KMS: the ETag is the MD5
    assert is_published(text, "5a1e8f0c-kms", "5a1e8f0c-kms")  # SSE-KMS: as last read
    assert not is_published(text, "0b3c-kms", "5a1e8f0c-kms")  # published again since
    assert not is_published('{"id": "b"}', md5, None)
    assert not is_published(text, None, None)  # no longer published


def test_the_catalog_on_s3_reads_an_item_itself_only_if_no_kept_text_is_the_published_one(
    monkeypatch, caplog
):
    from s3server import S3Server

    server = S3Server()
    for name, value in server.environment.items():
        monkeypatch.setenv(name, value)
    s3 = server.client()
    for bucket in ("out", "work"):
        s3.create_bucket(Bucket=bucket)
    published = {href: f'{{"id": "{href}"}}' for href in ("a.json", "b.json", "c.json")}
    for href, text in published.items():
        s3.put_object(Bucket="out", Key=f"run/{href}", Body=text.encode())
    kept = "work/etm/stac_items/out/run"
    # Region period 1's job kept a and an older b; region period 2's kept object is gone.
    keep_items(f"{kept}/p1.ndjson", {"a.json": published["a.json"], "b.json": '{"id": "old"}'})
    hrefs = list(published)
    options = dict(
        on_s3="out/run", kept=kept, kept_by_region=[f"{kept}/p{n}.ndjson" for n in (1, 1, 2)]
    )

    def items_read() -> list[str]:
        return sorted(
            path for method, path, _ in server.requests if method == "GET" and "." in path
        )

    try:
        server.reset_count()
        assert item_texts([], hrefs, **options) == list(published.values())
        assert items_read() == [
            "/out/run/b.json", "/out/run/c.json", f"/{kept}.ndjson", f"/{kept}/p1.ndjson"
        ]  # fmt: skip
        # The next catalog finds every text kept by this one.
        server.reset_count()
        assert item_texts([], hrefs, **options) == list(published.values())
        assert items_read() == [f"/{kept}.ndjson"]
        # A region job that cannot keep its Items says so in its log, and its job goes on.
        keep_items("no-such-bucket/p3.ndjson", {"d.json": "{}"})
        assert "cannot write s3://no-such-bucket/p3.ndjson" in caplog.text
        assert "the catalog will read these 1 Items one by one" in caplog.text
    finally:
        server.stop()


#: In a fresh interpreter: 8 threads migrate a projection v1.1 Item at once, as mosaic
#: jobs in one Snakemake process do; prints how many lost the migration.
MIGRATING_THREADS = """
import threading
import etm.stac
import pystac
item = {
    "type": "Feature", "stac_version": "1.0.0", "id": "x", "geometry": None, "links": [],
    "properties": {"datetime": "2020-01-01T00:00:00Z", "proj:epsg": 4326}, "assets": {},
    "stac_extensions": ["https://stac-extensions.github.io/projection/v1.1.0/schema.json"],
}
start, lost = threading.Barrier(8), []
def migrate():
    start.wait()
    copy = dict(item, properties=dict(item["properties"]))
    if "proj:code" not in pystac.Item.from_dict(copy, migrate=True).properties:
        lost.append(copy)
threads = [threading.Thread(target=migrate) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(len(lost))
"""


def test_items_made_in_threads_at_once_are_all_migrated():
    # pystac-core 1.15.2 finds its extensions lazily and unsafely; etm.stac finds them first.
    for _ in range(3):
        result = subprocess.run(
            [sys.executable, "-c", MIGRATING_THREADS], capture_output=True, text=True
        )
        assert result.stdout.strip() == "0", result.stderr


def test_kept_item_texts_that_are_not_etms_are_left_out_and_read_where_published():
    from etm.stac import _kept_lines, _kept_texts

    good = _kept_lines({"mosaic/a.json": "{}"}, {"x/mosaic/a.json": "e1"})
    data = b"\n".join([b"not json", b"5", b'{"href": 1, "text": "t"}', b'{"text": "t"}', good])
    assert _kept_texts(data) == _kept_texts(good) and len(_kept_texts(good)) == 1
