"""Quicklooks a viewer can place: longitudes and latitudes on the axes, tiles outlined."""

import matplotlib.pyplot as plt
import numpy as np
import rasterio
from affine import Affine
from rasterio.coords import BoundingBox
from rasterio.enums import Resampling

from etm.quicklook import degrees, draw, fitted_scale, nice_ceiling, overview_values


def test_the_map_is_drawn_on_its_degrees_with_each_tile_outlined():
    values = np.linspace(0, 50, 200 * 100).reshape(100, 200)
    values[:10, :10] = np.nan
    region = BoundingBox(-116.8, 37.4, -96.8, 47.4)
    tiles = [BoundingBox(-116.8, 37.4, -106.8, 47.4), BoundingBox(-106.8, 37.4, -96.8, 47.4)]
    figure = draw(values, region, tiles, product="etasw", title="t", scale=(0, 50))
    axes = figure.axes[0]
    figure.canvas.draw()
    assert axes.images[0].get_extent() == [-116.8, -96.8, 37.4, 47.4]
    outlines = [p.get_bbox().bounds for p in axes.patches]
    assert [tuple(round(v, 6) for v in o) for o in outlines] == [
        (-116.8, 37.4, 10, 10),
        (-106.8, 37.4, 10, 10),
    ]
    xlabels = [t.get_text() for t in axes.get_xticklabels() if t.get_text()]
    ylabels = [t.get_text() for t in axes.get_yticklabels() if t.get_text()]
    assert xlabels and all(label.endswith("°W") for label in xlabels)
    assert ylabels and all(label.endswith("°N") for label in ylabels)
    assert figure.axes[1].get_ylabel() == "mm"
    plt.close(figure)


def test_degrees_name_their_hemisphere():
    assert [degrees(-110, "E", "W"), degrees(5.5, "E", "W"), degrees(-3, "N", "S")] == [
        "110°W", "5.5°E", "3°S",
    ]  # fmt: skip


def test_nice_ceiling_rounds_up_to_a_round_number():
    assert [nice_ceiling(v) for v in (1159, 212, 250, 3, 0.07, 0, float("nan"))] == [
        1500, 250, 250, 3, 0.08, 1, 1,
    ]  # fmt: skip


def test_a_fitted_scale_tops_the_pooled_periods_high_percentile_not_their_outliers():
    months = [np.full(1000, 40.0), np.linspace(0, 110, 1000)]
    months[1][-3:] = 5000  # a few extreme pixels
    assert fitted_scale(months) == 150
    assert fitted_scale([np.array([np.nan])]) == 1
    assert fitted_scale([np.linspace(0, 1159, 10_000)]) == 1500


def test_overview_values_are_an_overviews_valid_pixels(tmp_path):
    path = str(tmp_path / "a.tif")
    values = np.arange(256 * 256, dtype="float32").reshape(256, 256)
    values[:128] = np.nan
    profile = dict(driver="GTiff", width=256, height=256, count=1, dtype="float32",
                   tiled=True, blockxsize=64, blockysize=64, nodata=np.nan, crs="EPSG:4326",
                   transform=Affine(0.01, 0, -110, 0, -0.01, 45))  # fmt: skip
    with rasterio.open(path, "w", **profile) as target:
        target.write(values, 1)
        target.build_overviews([2, 4], Resampling.average)
    sample = overview_values(path, longest=64)
    assert sample.size == 64 * 32 and np.isfinite(sample).all()
    assert 128 * 256 <= sample.min() and sample.max() <= values.size
