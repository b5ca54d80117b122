"""COG writing: validity, overviews, statistics, precision, and publishing only when valid."""

import ctypes
import os
import platform
import subprocess
import sys
import threading

import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate
from test_mosaic import write

from etm.cog import Metadata, build_cog, cache_bytes
from etm.errors import ChipReadError
from etm.files import partial_path
from etm.grid import Chip
from etm.sample import chip_grid, field

COG = dict(compress="DEFLATE", level=6, predictor="FLOATING_POINT", blocksize=128, gdal_cache_mb=64)


def quadrants(tmp_path, size=128):
    """Four rasters of size x size forming a 2size x 2size square, with NaN holes."""
    rng = np.random.default_rng(7)
    paths = []
    for row in (0, 1):
        for col in (0, 1):
            values = 50 + 100 * rng.random((size, size))
            values[rng.random((size, size)) < 0.2] = np.nan
            paths.append(write(tmp_path / f"q{row}{col}.tif", values, col * size, row * size))
    return paths


def test_cog_is_valid_with_nan_nodata_statistics_and_average_overviews(tmp_path):
    destination = str(tmp_path / "out" / "m.tif")
    os.makedirs(os.path.dirname(destination))
    build_cog(quadrants(tmp_path), destination, dtype="float32", **COG)
    assert cog_validate(destination, quiet=True) == (True, [], [])
    assert os.listdir(tmp_path / "out") == ["m.tif"]  # no partial, no .aux.xml sidecar
    with rasterio.open(destination) as cog:
        assert cog.dtypes == ("float32",) and np.isnan(cog.nodata)
        assert cog.overviews(1) == [2]
        full = cog.read(1)
        overview = cog.read(1, out_shape=(cog.height // 2, cog.width // 2))
        assert float(cog.tags(1)["STATISTICS_MAXIMUM"]) == pytest.approx(np.nanmax(full))
        assert float(cog.tags(1)["STATISTICS_VALID_PERCENT"]) < 90  # NaN is nodata, not data
    blocks = full.reshape(128, 2, 128, 2)
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning, match="Mean of empty"):
        expected = np.nanmean(blocks, axis=(1, 3))
    np.testing.assert_allclose(overview, expected, rtol=1e-6)


def test_the_cog_carries_its_band_description_unit_and_metadata(tmp_path):
    destination = str(tmp_path / "m.tif")
    metadata = Metadata(
        "Net ET (netet), tile <a & b>, 2020-07", "mm", {"ETM_RUN_PREFIXES": "s3://b/R&D <1>"}
    )
    build_cog(quadrants(tmp_path), destination, dtype="float32", metadata=metadata, **COG)
    assert cog_validate(destination, quiet=True) == (True, [], [])
    with rasterio.open(destination) as cog:
        assert cog.descriptions == ("Net ET (netet), tile <a & b>, 2020-07",)
        assert cog.units == ("mm",)
        assert cog.tags()["ETM_RUN_PREFIXES"] == "s3://b/R&D <1>"
        assert "STATISTICS_MEAN" in cog.tags(1)  # the driver's own band metadata too


def test_float64_output_is_exact(tmp_path):
    sources = quadrants(tmp_path, size=32)
    destination = str(tmp_path / "m.tif")
    build_cog(sources, destination, dtype="float64", **COG)
    with rasterio.open(sources[0]) as chip, rasterio.open(destination) as cog:
        np.testing.assert_array_equal(cog.read(1)[:32, :32], chip.read(1))


def test_float32_error_on_model_values_is_below_the_readme_bound():
    grid = chip_grid(Chip(474, -1068), 0.0208)
    values = np.concatenate([field(p, 2020, 7, grid.lons, grid.lats) for p in ("etasw", "etc")])
    error = np.nanmax(np.abs(values.astype(np.float32).astype(np.float64) - values))
    assert np.nanmax(values) < 512 and error <= 2.0**-16  # half the float32 spacing below 512


def test_failed_mosaic_publishes_nothing(tmp_path):
    sources = quadrants(tmp_path, size=32)
    data = open(sources[-1], "rb").read()
    open(sources[-1], "wb").write(data[: len(data) // 2])
    destination = tmp_path / "out.tif"
    with pytest.raises(ChipReadError):
        build_cog(sources, str(destination), dtype="float32", **COG)
    assert not destination.exists() and not os.path.exists(partial_path(str(destination)))


def gdal_cache_max() -> int:
    """GDAL's block cache limit in bytes, from the libgdal this process loaded."""
    with open("/proc/self/maps") as maps:
        path = next(line.split()[-1] for line in maps if "libgdal" in line)
    gdal = ctypes.CDLL(path)
    gdal.GDALGetCacheMax64.restype = ctypes.c_int64
    return gdal.GDALGetCacheMax64()


def test_the_block_cache_is_the_configured_megabytes_in_a_jobs_thread_too():
    # rasterio hands GDAL_CACHEMAX to GDAL as bytes: 64 would be 64 bytes, and jobs in one
    # process would then contend for a cache of nothing.
    seen = []

    def job() -> None:
        with rasterio.Env(GDAL_CACHEMAX=cache_bytes(64)):
            seen.append(gdal_cache_max())

    job()
    thread = threading.Thread(target=job)
    thread.start()
    thread.join()
    assert seen == [64 * 2**20, 64 * 2**20]


MAPPED_BYTES = """
import ctypes, sys
import numpy as np
from etm.cog import tune_allocator

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "fixed":
    tune_allocator()
before = libc.mallinfo2().hblkhd
buffer = np.ones(12 << 20, np.uint8)
print(libc.mallinfo2().hblkhd - before)
"""


def in_new_process(script: str, *arguments: str) -> str:
    """Run a script in a new Python process (the allocator's settings are process-wide)."""
    run = subprocess.run(
        [sys.executable, "-c", script, *arguments], capture_output=True, text=True, check=True
    )
    return run.stdout


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")
def test_band_sized_buffers_come_from_the_heap_not_new_mappings():
    # A mapping per buffer costs a page fault per 4 KB at every band: a third of a tile's time.
    assert int(in_new_process(MAPPED_BYTES, "default")) >= 12 << 20
    assert int(in_new_process(MAPPED_BYTES, "fixed")) == 0


HEAPS_IN_USE = """
import ctypes, sys, threading
import numpy as np
from etm.cog import tune_allocator

libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
if sys.argv[1] == "fixed":
    tune_allocator()
buffers = []
reader = threading.Thread(target=lambda: buffers.append(np.ones(1 << 20, np.uint8)))
reader.start()
reader.join()
report = libc.fopen(sys.argv[2].encode(), b"w")
libc.malloc_info(0, ctypes.c_void_p(report))
libc.fclose(ctypes.c_void_p(report))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")
def test_threads_share_one_heap(tmp_path):
    # A heap per thread keeps its own free memory: the workflow's jobs and readers are threads.
    def heaps(mode: str) -> int:
        report = tmp_path / f"{mode}.xml"
        in_new_process(HEAPS_IN_USE, mode, str(report))
        return report.read_text().count("<heap nr=")

    assert heaps("default") >= 2
    assert heaps("fixed") == 1


def test_files_beside_a_chip_are_never_read_as_its_sidecars(tmp_path):
    # GDAL looked for a file's overviews, mask and metadata beside it: a pipe there waited
    # for a writer forever, in the baseline, the header check and the mosaic.
    from etm.checks import ChipExpectation, chip_header, nan_share
    from etm.grid import Chip

    sources = quadrants(tmp_path, size=32)
    for source in sources:
        for suffix in (".ovr", ".msk", ".aux.xml"):
            os.mkfifo(f"{source}{suffix}")
    done = []

    def read_them() -> None:
        nan_share(sources[0])
        chip_header(sources[0], "c", ChipExpectation(Chip(434, -1028), 20))
        build_cog(sources, str(tmp_path / "out.tif"), dtype="float32", **COG)
        done.append(True)

    reading = threading.Thread(target=read_them, daemon=True)
    reading.start()
    reading.join(120)
    assert done, "a read waited on a pipe beside a chip"
