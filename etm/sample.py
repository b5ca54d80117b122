"""A small, realistic sample of the model's chips, for the demo, the tests and benchmarks.

Chips are written the way the model writes them: 2-degree squares cut from one master
pixel lattice with outward rounding, as ``rasterio.mask(crop=True)`` cuts them (so a
chip's corner lies up to a pixel west and north of its name's, and neighbours overlap by
a pixel); float64, uncompressed, one-row strips, NaN for missing pixels and no nodata
tag, at ``<root>/ws-out/USA/<run>/run_<tile>/<tile>/chip<N>N<E>E/<YYYY>/<product>_<YYYYMM>.tif``.

Usage: ``python -m etm.sample <root> [--pixel DEG] [--months 1 2 ...] [--rounding inward]``
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine

from etm.grid import Chip

#: The model's pixel size in degrees (about 250 m).
MODEL_PIXEL = 0.0020810045
#: Upper-left corner of the master lattice every chip is cut from.
MASTER_ORIGIN = (-180.0, 90.0)
#: Adjacent 10-degree tiles of the team's tile grid, by their upper-left chip (tenths of a
#: degree). The demo has the first two.
TILE_CORNERS = {
    "r50.0_tile5": Chip(474, -1168), "r50.0_tile6": Chip(474, -1068),
    "r50.0_tile7": Chip(474, -968),
}  # fmt: skip
SAMPLE_TILES = ("r50.0_tile5", "r50.0_tile6")
RUN = "Run08_18_2021"
LAKES = ((-112.6, 41.1, 0.6), (-110.4, 44.45, 0.35), (-100.5, 38.6, 0.25))


def tile_prefix(root: str, tile: str, run: str = RUN) -> str:
    """The prefix of a tile's chips, as the team writes it in ``unmosaicked_inputs``."""
    return os.path.join(root, "ws-out", "USA", run, f"run_{tile}", tile)


def tile_chips(
    tile: str, chips_per_side: int = 5, corners: Mapping[str, Chip] = TILE_CORNERS
) -> list[Chip]:
    """The chips of a sample tile, in reading order, from its upper-left chip in ``corners``."""
    corner = corners[tile]
    return [
        Chip(corner.north - 20 * row, corner.west + 20 * col)
        for row in range(chips_per_side)
        for col in range(chips_per_side)
    ]


@dataclass(frozen=True)
class ChipGrid:
    """A chip's pixel window on the master lattice."""

    transform: Affine
    lons: np.ndarray
    lats: np.ndarray


#: How a chip's window on the master lattice is rounded from its named square: outward
#: (floor of the start, ceiling of the end: ``rasterio.mask(crop=True)``, ``gdalwarp -tap``),
#: nearest start with the end at the first lattice line at or past the square, or inward.
ROUNDINGS = {
    "outward": (math.floor, math.ceil),
    "nearest": (round, lambda end: math.ceil(end - 1e-9)),
    "inward": (math.ceil, math.floor),
}


def chip_grid(
    chip: Chip, pixel: float, size_deg: float = 2.0, rounding: str = "outward"
) -> ChipGrid:
    """The master-lattice pixels of a chip's named square, rounded to whole pixels.

    With the default outward rounding a chip covers its square and up to a pixel more on
    each side, so neighbours overlap by a pixel; inward rounding leaves the pixel where
    two chips meet to neither.
    """
    start, end = ROUNDINGS[rounding]
    x0, y0 = MASTER_ORIGIN
    north, west = chip.north / 10, chip.west / 10
    first_col, last_col = start((west - x0) / pixel), end((west + size_deg - x0) / pixel)
    first_row, last_row = start((y0 - north) / pixel), end((y0 - north + size_deg) / pixel)
    cols, rows = np.arange(first_col, last_col), np.arange(first_row, last_row)
    transform = Affine(pixel, 0, x0 + first_col * pixel, 0, -pixel, y0 - first_row * pixel)
    return ChipGrid(transform, x0 + (cols + 0.5) * pixel, y0 - (rows + 0.5) * pixel)


def field(product: str, year: int, month: int, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    """A smooth seasonal monthly field in mm, NaN over lakes and outside the land mask.

    Parameters
    ----------
    product : str
    year, month : int
    lons, lats : numpy.ndarray
        Pixel-centre coordinates (1-D).

    Returns
    -------
    numpy.ndarray
        float64, shape ``(len(lats), len(lons))``.
    """
    lon, lat = np.meshgrid(lons, lats)
    season = 0.15 + 0.85 * np.sin(np.pi * (month - 0.5) / 12) ** 2
    spatial = 0.75 + 0.25 * np.sin(lon / 2.3) * np.cos(lat / 1.7) + 0.01 * (year - 2000)
    etasw = 140.0 * season * spatial
    etc = etasw * (1.3 + 0.2 * np.cos((lon + lat) / 3.1))
    values = {"etasw": etasw, "etc": etc, "netet": etc - etasw}.get(
        product, (30.0 + 5 * len(product)) * season * spatial
    )
    outside = (lat > 46.6 + 0.5 * np.sin(lon * 1.3)) & (lon < -113.5)
    outside |= lon < -123.4 + 1.5 * np.sin(lat / 2.0)  # Pacific
    outside |= lat < 28.5 + 2.0 * np.cos(lon / 3.0)  # Gulf of Mexico
    outside |= (lon > -80.5 + 3.0 * np.sin(lat / 2.5)) & (lat < 41.0)  # Atlantic
    for lake_lon, lake_lat, radius in LAKES:
        outside |= (lon - lake_lon) ** 2 + (lat - lake_lat) ** 2 < radius**2
    return np.where(outside, np.nan, values)


def write_chip(path: str, grid: ChipGrid, values: np.ndarray) -> None:
    """Write one chip as the model does: float64, uncompressed, one-row strips, no nodata."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    profile = dict(
        driver="GTiff",
        width=values.shape[1],
        height=values.shape[0],
        count=1,
        dtype="float64",
        crs="EPSG:4326",
        transform=grid.transform,
        blockysize=1,
    )
    with rasterio.open(path, "w", **profile) as out:
        out.write(values, 1)


def write_sample(
    root: str,
    *,
    products: tuple[str, ...] = ("etasw", "netet"),
    years: tuple[int, ...] = (2020,),
    months: tuple[int, ...] = tuple(range(1, 13)),
    pixel: float = 10 * MODEL_PIXEL,
    chips_per_side: int = 5,
    decoys: bool = True,
    tiles: tuple[str, ...] = SAMPLE_TILES,
    rounding: str = "outward",
    corners: Mapping[str, Chip] = TILE_CORNERS,
) -> list[str]:
    """Write the sample's chips (and decoys the verifier must ignore).

    Decoys, in every chip's year folder: a daily file (``etasw_YYYYDDD.tif``) and an
    ``etasw5`` file, both full of 1e6 so that using one by mistake shows in the mosaic.

    Parameters
    ----------
    root : str
        Folder to write under (``<root>/ws-out/...``).
    products, years, months
        Which monthly chip files to write.
    pixel : float
        Pixel size in degrees (the default is 10x the model's, so the demo is quick).
    chips_per_side : int
        Chips per tile edge (5 for the model's 25 chips per tile).
    tiles : tuple of str
        Which tiles (of ``corners``).
    decoys : bool
        Also write the decoy files.
    rounding : str
        How chips are cut from the master lattice (:data:`ROUNDINGS`).
    corners : mapping of str to Chip
        Each tile's upper-left chip (default: the team's tiles, :data:`TILE_CORNERS`).

    Returns
    -------
    list of str
        The monthly chip files written.
    """
    written = []
    for tile in tiles:
        for chip in tile_chips(tile, chips_per_side, corners):
            grid = chip_grid(chip, pixel, rounding=rounding)
            for year in years:
                folder = os.path.join(tile_prefix(root, tile), chip.name, f"{year}")
                for product in products:
                    for month in months:
                        path = os.path.join(folder, f"{product}_{year}{month:02d}.tif")
                        values = field(product, year, month, grid.lons, grid.lats)
                        write_chip(path, grid, values)
                        written.append(path)
                if decoys:
                    junk = np.full((len(grid.lats), len(grid.lons)), 1e6)
                    write_chip(os.path.join(folder, f"etasw_{year}001.tif"), grid, junk)
                    write_chip(
                        os.path.join(folder, f"etasw5_{year}{months[0]:02d}.tif"), grid, junk
                    )
    return written


def main() -> None:
    """Command line: write the sample under a folder."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", help="folder to write the sample under")
    parser.add_argument("--pixel", type=float, default=10 * MODEL_PIXEL, help="degrees")
    parser.add_argument("--years", type=int, nargs="+", default=[2020])
    parser.add_argument("--months", type=int, nargs="+", default=list(range(1, 13)))
    parser.add_argument("--products", nargs="+", default=["etasw", "netet"])
    parser.add_argument("--chips-per-side", type=int, default=5)
    parser.add_argument("--rounding", choices=ROUNDINGS, default="outward")
    args = parser.parse_args()
    written = write_sample(
        args.root,
        products=tuple(args.products),
        years=tuple(args.years),
        months=tuple(args.months),
        pixel=args.pixel,
        chips_per_side=args.chips_per_side,
        rounding=args.rounding,
    )
    print(f"wrote {len(written)} chip files under {args.root}")


if __name__ == "__main__":
    main()
