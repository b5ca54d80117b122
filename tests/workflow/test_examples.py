"""The end users' examples (examples/), run as scripts against the demo's published output,
and what they print checked against the COGs' pixels."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.features
from conftest import REPO

OUTPUT = Path("sample/ws-enduser/USA/demo")
EXAMPLES = REPO / "examples"


def run(demo: Path, script: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), str(demo / OUTPUT), *args],
        cwd=demo, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def region_cog(demo: Path, product: str, month: int) -> Path:
    return demo / OUTPUT / "mosaic" / product / "2020" / f"{product}_2020{month:02d}.tif"


# odc-geo 0.5.3 uses what affine 3 and shapely 2.1 deprecate.
@pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")
@pytest.mark.filterwarnings("ignore:The 'shapely.ops.transform:DeprecationWarning")
@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # the PNG
def test_a_year_loaded_with_odc_stac_is_the_cogs_and_is_plotted(demo, tmp_path):
    png = tmp_path / "year.png"
    printed = run(demo, "plot_year.py", "--product", "netet", "--year", "2020", "--out", str(png))
    assert printed.startswith(f"{png}: 12 months of netet 2020")
    with rasterio.open(png) as picture:
        pixels = picture.read()
    assert picture.width > 500 and len(np.unique(pixels)) > 50  # maps, not a blank page

    sys.path.insert(0, str(EXAMPLES))
    try:
        from plot_year import load_year
    finally:
        sys.path.remove(str(EXAMPLES))
    months = load_year(str(demo / OUTPUT), "netet", 2020)
    assert months.sizes["time"] == 12
    for month in (1, 7):
        with rasterio.open(region_cog(demo, "netet", month)) as cog:
            values = cog.read(1)
            assert months.odc.geobox.affine == cog.transform  # on the COGs' grid
        np.testing.assert_array_equal(months.isel(time=month - 1).values, values)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_year_loaded_with_stackstac_is_the_cogs(demo):
    printed = run(demo, "stackstac_year.py", "--product", "etasw", "--year", "2020")
    assert printed.startswith("12 months of etasw 2020 on epsg:4326")
    sys.path.insert(0, str(EXAMPLES))
    try:
        from stackstac_year import load_year
    finally:
        sys.path.remove(str(EXAMPLES))
    months = load_year(str(demo / OUTPUT), "etasw", 2020)
    with rasterio.open(region_cog(demo, "etasw", 7)) as cog:
        assert months.attrs["transform"] == cog.transform  # on the COGs' grid
        np.testing.assert_array_equal(months.isel(time=6).values, cog.read(1))


def test_a_point_series_is_the_cogs_pixel_every_month(demo):
    lon, lat = -106.7, 45.2
    printed = run(demo, "point_series.py", str(lon), str(lat), "--product", "etasw")
    rows = list(csv.DictReader(io.StringIO(printed.split("#")[0])))
    assert [row["period"] for row in rows] == [f"2020-{m:02d}" for m in range(1, 13)]
    for month, row in enumerate(rows, start=1):
        with rasterio.open(region_cog(demo, "etasw", month)) as cog:
            (value,) = next(cog.sample([(lon, lat)]))
        assert np.float32(row["value_mm"]) == value
    assert "# largest:" in printed


def test_a_polygon_series_is_the_mean_of_the_pixels_it_holds(demo):
    field = json.loads((EXAMPLES / "field.geojson").read_text())["features"][0]["geometry"]
    printed = run(demo, "polygon_series.py", str(EXAMPLES / "field.geojson"))
    rows = list(csv.DictReader(io.StringIO(printed)))
    assert len(rows) == 12
    with rasterio.open(region_cog(demo, "etasw", 7)) as cog:
        values = cog.read(1)
        inside = rasterio.features.geometry_mask([field], values.shape, cog.transform, invert=True)
    picked = values[inside & ~np.isnan(values)]
    july = rows[6]
    assert int(july["valid_pixels"]) == picked.size > 0
    # The mean as float32 sums it (to 1e-6, relatively).
    assert float(july["mean_mm"]) == pytest.approx(picked.mean(dtype=np.float64), rel=1e-6)


def test_the_cogs_record_the_projects_version(demo):
    """ETM_VERSION is pyproject.toml's version, which `etm --version` and the image's tag
    carry too (tests/unit/test_version.py)."""
    expected = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    for cog_path in (region_cog(demo, "etasw", 7), demo / OUTPUT / "tiles" / "r50.0_tile6"
                     / "netet" / "2020" / "netet_2020.tif"):  # fmt: skip
        with rasterio.open(cog_path) as cog:
            assert cog.tags()["ETM_VERSION"] == expected
