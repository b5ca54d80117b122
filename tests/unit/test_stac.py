"""STAC periods, relative links, checksums and the index."""

import hashlib
from datetime import UTC, datetime

from etm.products import colour_scale
from etm.stac import indexed, multihash_sha256, period_bounds, relative_link


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


def test_a_yearly_sum_has_a_twelve_times_larger_colour_scale():
    assert colour_scale("etasw", annual=None) == (0.0, 250)
    assert colour_scale("etasw", annual="sum") == (0.0, 3000)
    assert colour_scale("swi", annual="mean") == (0.0, 300)


def test_the_checksum_is_a_sha256_multihash(tmp_path):
    data = bytes(range(256)) * 5000  # over one read block
    (tmp_path / "f").write_bytes(data)
    assert multihash_sha256(str(tmp_path / "f")) == "1220" + hashlib.sha256(data).hexdigest()


def test_an_index_line_has_its_hrefs_from_the_output_prefix():
    item = {
        "id": "x",
        "links": [{"rel": "root", "href": "../../../../catalog.json"},
                  {"rel": "license", "href": "https://example.org/terms"}],
        "assets": {"data": {"href": "./etasw_202007.tif"}},
    }  # fmt: skip
    line = indexed(item, "tiles/r50.0_tile6/etasw/2020/etasw_202007.json")
    assert [link["href"] for link in line["links"]] == [
        "./catalog.json", "https://example.org/terms",
    ]  # fmt: skip
    assert line["assets"]["data"]["href"] == "./tiles/r50.0_tile6/etasw/2020/etasw_202007.tif"
    assert item["assets"]["data"]["href"] == "./etasw_202007.tif"  # the Item is unchanged
