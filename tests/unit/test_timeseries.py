"""The time series command's pure parts: where the catalog is, and its CSV."""

import math

import pytest

from etm.errors import EtmError
from etm.timeseries import Reading, as_csv, output_prefix, point_series


def test_the_output_prefix_is_found_from_itself_its_catalog_or_its_index():
    assert output_prefix("s3://b/USA/demo/") == "s3://b/USA/demo"
    assert output_prefix("s3://b/USA/demo/catalog.json") == "s3://b/USA/demo"
    assert output_prefix("https://h/x/items.ndjson") == "https://h/x"
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
