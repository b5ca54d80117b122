"""Quicklooks a viewer can place: longitudes and latitudes on the axes, tiles outlined."""

import matplotlib.pyplot as plt
import numpy as np
from rasterio.coords import BoundingBox

from etm.quicklook import degrees, draw


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
