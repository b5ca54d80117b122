"""The time series command's pure parts: where the catalog is, and its CSV."""

import math
import os

import pytest

from etm.errors import EtmError
from etm.timeseries import (
    Reading,
    as_csv,
    month_span,
    output_prefix,
    point_series,
    read_from,
    resolve,
)


def test_the_output_prefix_is_found_from_itself_or_its_catalog():
    assert output_prefix("s3://b/USA/demo/") == "s3://b/USA/demo"
    assert output_prefix("s3://b/USA/demo/catalog.json") == "s3://b/USA/demo"
    assert output_prefix("catalog.json") == "."


def test_the_csv_gives_back_float32_values_and_leaves_nan_empty():
    cog = "mosaic/etasw/2020/etasw_202007.tif"
    point = as_csv([Reading("202007", 18.143768310546875, cog=cog), Reading("202008", math.nan)])
    assert point == f"period,value_mm,cog\n2020-07,18.1437683,{cog}\n2020-08,,\n"
    polygon = as_csv([Reading("202007", 2.5, 12)])
    assert polygon == "period,mean_mm,valid_pixels\n2020-07,2.5,12\n"


def test_an_s3_prefix_with_a_password_is_refused_without_quoting_it():
    with pytest.raises(EtmError, match=r"^\*\*\*@bucket/out/\S+: an S3 path holds no") as refused:
        point_series("s3://AKIAEXAMPLE:s3cr3t@bucket/out/", "etasw", -106.7, 47.3)
    assert "s3cr3t" not in str(refused.value)


def test_months_are_yyyy_mm_and_in_order():
    assert month_span("2020-07", None) == ("202007", "999912")
    assert month_span(None, "2021-12") == ("000001", "202112")
    for bad in ("2020-7", "2020-00", "2020-13", "202007", "2020-07-01"):
        with pytest.raises(EtmError, match="is not a month: give YYYY-MM"):
            month_span(bad, None)
    with pytest.raises(EtmError, match="^--start 2021-01 is after --end 2020-12"):
        month_span("2021-01", "2020-12")


def test_an_index_href_is_resolved_against_its_folder_as_an_absolute_path_or_url():
    href = "../mosaic/etasw/2020/etasw_202007.tif"
    assert resolve("s3://b/USA/demo/etasw-monthly", href) == (
        "s3://b/USA/demo/mosaic/etasw/2020/etasw_202007.tif"
    )
    assert (
        resolve("https://h/x/etasw-monthly", href)
        == "https://h/x/mosaic/etasw/2020/etasw_202007.tif"
    )
    assert resolve("out/etasw-monthly", href) == os.path.abspath(
        "out/mosaic/etasw/2020/etasw_202007.tif"
    )


def test_an_index_items_files_are_read_from_where_the_index_was():
    """The index names the output prefix as the run was told; a reader may read it elsewhere
    (a copy, or S3 for a public HTTPS address)."""
    public = "https://d111111abcdef8.cloudfront.net/USA/demo"
    item = {
        "id": "x",
        "links": [
            {"rel": "self", "href": f"{public}/mosaic/etasw/2020/etasw_202007.json"},
            {"rel": "root", "href": f"{public}/catalog.json"},
            {"rel": "license", "href": "https://example.org/terms"},
        ],
        "assets": {"data": {"href": f"{public}/mosaic/etasw/2020/etasw_202007.tif", "x": 1}},
    }
    moved = read_from(item, "s3://b/copy")
    assert [link["href"] for link in moved["links"]] == [
        "s3://b/copy/mosaic/etasw/2020/etasw_202007.json",
        "s3://b/copy/catalog.json",
        "https://example.org/terms",
    ]
    assert moved["assets"] == {
        "data": {"href": "s3://b/copy/mosaic/etasw/2020/etasw_202007.tif", "x": 1}
    }
    assert item["assets"]["data"]["href"].startswith(public)  # the line is unchanged
    # An index an earlier etm wrote, its hrefs relative to it, alike.
    earlier = {
        "links": [{"rel": "root", "href": "../catalog.json"}],
        "assets": {"data": {"href": "../mosaic/etasw/2020/etasw_202007.tif"}},
    }
    assert read_from(earlier, "/data/out")["assets"]["data"]["href"] == (
        "/data/out/mosaic/etasw/2020/etasw_202007.tif"
    )
