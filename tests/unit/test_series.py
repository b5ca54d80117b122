"""The series store: written from small COGs, read back in three reads, kept up to date."""

import math
import os

import numpy as np
import pytest
import rasterio
import xarray
from rangeserver import serving
from rasterio.transform import from_origin

from etm.errors import EtmError
from etm.series import (
    MAX_DOCUMENT_BYTES,
    STORE,
    SourceCog,
    fetch,
    open_metadata,
    read_point,
    update_store,
)

RES = 0.01
WEST, NORTH = -110.0, 45.0


def write_cog(path, values, col=0, row=0, digest="d1"):
    """A float32 GeoTIFF on the test lattice, its upper-left pixel at (col, row)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    transform = from_origin(WEST + col * RES, NORTH - row * RES, RES, RES)
    profile = dict(
        driver="GTiff", width=values.shape[1], height=values.shape[0], count=1,
        dtype="float32", crs="EPSG:4326", transform=transform, nodata=float("nan"),
    )  # fmt: skip
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(values.astype("float32"), 1)
        dataset.update_tags(ETM_SOURCES_DIGEST=digest)


def month_values(month, shape=(600, 530)):
    rows, cols = np.indices(shape)
    return (rows * 0.5 + cols * 0.25 + month * 1000).astype("float32")


def region(tmp_path, months, digest="d1"):
    cogs = []
    for month in months:
        href = f"mosaic/etasw/2020/etasw_2020{month:02d}.tif"
        write_cog(tmp_path / href, month_values(month), digest=digest)
        cogs.append(SourceCog(f"2020{month:02d}", href, str(tmp_path / href)))
    return cogs


def counting(reads):
    def read(url, span):
        data = fetch(url, span)
        reads.append((url.rsplit("/", 1)[-1], span, len(data or b"")))
        return data

    return read


def lonlat(col, row):
    return WEST + (col + 0.5) * RES, NORTH - (row + 0.5) * RES


def test_a_point_series_is_the_cogs_pixels_in_three_reads(tmp_path):
    cogs = region(tmp_path, [1, 2, 3])
    store = tmp_path / STORE.format(product="etasw")
    assert update_store(str(store), "etasw", cogs) == ["202001", "202002", "202003"]
    reads = []
    point = read_point(str(tmp_path), "etasw", *lonlat(520, 590), read=counting(reads))
    assert point.periods == ["202001", "202002", "202003"]
    assert point.values == [float(month_values(m)[590, 520]) for m in (1, 2, 3)]
    assert point.cogs == [cog.href for cog in cogs]
    # The metadata, the shard's index, the inner chunk; no read is a whole shard.
    assert len(reads) == 3
    assert reads[1][1] == 32 * 32 * 16 + 4 and isinstance(reads[2][1], tuple)
    assert sum(size for *_, size in reads) < 40_000


def test_xarray_opens_the_store_with_its_months_and_pixel_centres(tmp_path):
    update_store(str(tmp_path / "s.zarr"), "etasw", region(tmp_path, [1, 2]))
    dataset = xarray.open_zarr(tmp_path / "s.zarr")
    assert [str(t)[:10] for t in dataset.time.values] == ["2020-01-01", "2020-02-01"]
    pixel = dataset.etasw.sel(x=lonlat(7, 9)[0], y=lonlat(7, 9)[1], method="nearest")
    assert pixel.values.tolist() == [float(month_values(m)[9, 7]) for m in (1, 2)]


def test_only_the_months_whose_cog_changed_are_read_again(tmp_path):
    store = str(tmp_path / "s.zarr")
    update_store(store, "etasw", region(tmp_path, [1, 2]))
    assert update_store(store, "etasw", region(tmp_path, [1, 2])) == []
    cogs = region(tmp_path, [1, 2, 3])
    # March is new; February redone (another digest, other values).
    write_cog(tmp_path / cogs[1].href, month_values(7), digest="d2")
    assert update_store(store, "etasw", cogs) == ["202002", "202003"]
    point = read_point(str(tmp_path), "etasw", *lonlat(3, 4), read=counting([]))
    # The store is at tmp_path/s.zarr, not at the prefix's STORE: read it there.
    assert point is None
    os.makedirs(tmp_path / "series")
    os.rename(store, tmp_path / STORE.format(product="etasw"))
    point = read_point(str(tmp_path), "etasw", *lonlat(3, 4))
    assert point.values == [float(month_values(m)[4, 3]) for m in (1, 7, 3)]
    assert not [name for name in os.listdir(tmp_path / "series") if name.startswith(".")]


def test_a_month_without_its_region_cog_comes_from_its_tiles_cogs(tmp_path):
    cogs = region(tmp_path, [1])
    tile = "tiles/t5/etasw/2020/etasw_202002.tif"
    write_cog(tmp_path / tile, month_values(2, (100, 50)), col=20, row=30)
    cogs.append(SourceCog("202002", tile, str(tmp_path / tile)))
    update_store(str(tmp_path / STORE.format(product="etasw")), "etasw", cogs)
    inside = read_point(str(tmp_path), "etasw", *lonlat(25, 40))
    assert inside.values == [float(month_values(1)[40, 25]), float(month_values(2)[10, 5])]
    assert inside.cogs == [cogs[0].href, tile]
    outside = read_point(str(tmp_path), "etasw", *lonlat(5, 5))
    assert math.isnan(outside.values[1]) and outside.cogs[1] == ""


def test_cogs_off_the_lattice_are_one_error(tmp_path):
    cogs = region(tmp_path, [1])
    other = tmp_path / "tiles/t6/etasw/2020/etasw_202002.tif"
    other.parent.mkdir(parents=True)
    profile = dict(
        driver="GTiff", width=4, height=4, count=1, dtype="float32", crs="EPSG:4326",
        transform=from_origin(WEST, NORTH, 0.02, 0.02),
    )  # fmt: skip
    with rasterio.open(other, "w", **profile) as dataset:
        dataset.write(np.ones((1, 4, 4), "float32"))
    cogs.append(SourceCog("202002", "tiles/t6/etasw/2020/etasw_202002.tif", str(other)))
    with pytest.raises(EtmError, match="pixel size .* needs one lattice"):
        update_store(str(tmp_path / "s.zarr"), "etasw", cogs)


def test_a_store_of_another_layout_is_written_anew_without_reading_its_cogs(tmp_path, monkeypatch):
    from etm import series

    store = str(tmp_path / STORE.format(product="etasw"))
    cogs = region(tmp_path, [1, 2])
    monkeypatch.setattr(series, "ZSTD_LEVEL", 1)
    monkeypatch.setattr(series, "LAYOUT", {**series.LAYOUT, "codecs": "shuffle4+zstd1"})
    update_store(store, "etasw", cogs)
    monkeypatch.undo()
    # Nothing changed but the layout: written anew, every month copied from the old store.
    assert update_store(store, "etasw", cogs) == []
    with open(os.path.join(store, "etasw", "zarr.json")) as stream:
        assert '"level": 5' in stream.read()
    point = read_point(str(tmp_path), "etasw", *lonlat(3, 4))
    assert point.values == [float(month_values(m)[4, 3]) for m in (1, 2)]


def test_a_host_that_ignores_ranges_still_gives_the_ranges_asked(tmp_path):
    update_store(str(tmp_path / STORE.format(product="etasw")), "etasw", region(tmp_path, [1]))
    expected = read_point(str(tmp_path), "etasw", *lonlat(100, 200))
    with serving(str(tmp_path)) as (url, requests):
        ranged = read_point(url.rstrip("/"), "etasw", *lonlat(100, 200))
        asked = len(requests)
    with serving(str(tmp_path), ranges=False) as (url, requests):
        whole = read_point(url.rstrip("/"), "etasw", *lonlat(100, 200))
        assert read_point(url.rstrip("/"), "netet", 0, 0) is None  # no store: a 404
    assert ranged == whole == expected and asked == 3


def two_month_shards(monkeypatch):
    """Shards of two months, so that a few months make several blocks along time."""
    from etm import series

    monkeypatch.setattr(series, "MONTHS", 2)
    monkeypatch.setattr(series, "LAYOUT", {**series.LAYOUT, "months": 2})


def writes(server) -> list[tuple[str, str]]:
    """(method, key under the store) of each PUT and DELETE since the last reset, in order."""
    under = "/out/run/series/etasw.zarr/"
    found = [(m, p) for m, p, q in server.requests if m == "PUT" or "delete" in q]
    assert all(p.startswith(under) or p == "/out" for _, p in found), found
    return [(m, p.removeprefix(under)) for m, p in found if p != "/out"]


def test_on_s3_a_month_redone_or_added_writes_its_blocks_shards_then_the_metadata_last(
    tmp_path, s3_out, monkeypatch
):
    two_month_shards(monkeypatch)
    store, prefix = "s3://out/run/series/etasw.zarr", "s3://out/run"
    assert update_store(store, "etasw", region(tmp_path, [1, 2, 3])) == [
        "202001",
        "202002",
        "202003",
    ]
    first = writes(s3_out)
    # 2 blocks of 2×2 shards, 2 time chunks, x and y, 4 arrays' metadata, the group's.
    assert len(first) == 8 + 2 + 2 + 4 + 1 and first[-1] == ("PUT", "zarr.json")
    assert read_point(prefix, "etasw", *lonlat(3, 4)).values == [
        float(month_values(m)[4, 3]) for m in (1, 2, 3)
    ]
    # March redone where its values changed in one shard only: that shard, then the group.
    s3_out.reset_count()
    cogs = region(tmp_path, [1, 2, 3])
    changed = month_values(3)
    changed[:100, :100] += 1
    write_cog(tmp_path / cogs[2].href, changed, digest="d2")
    assert update_store(store, "etasw", cogs) == ["202003"]
    assert writes(s3_out) == [("PUT", "etasw/c/1/0/0"), ("PUT", "zarr.json")]
    assert read_point(prefix, "etasw", *lonlat(3, 4)).values[2] == float(changed[4, 3])
    # April added: block 1's shards and time chunk, the metadata of the arrays it lengthens.
    s3_out.reset_count()
    cogs = [*cogs, *region(tmp_path, [4])]
    assert update_store(store, "etasw", cogs) == ["202004"]
    assert writes(s3_out) == [
        *[("PUT", f"etasw/c/1/{r}/{c}") for r in (0, 1) for c in (0, 1)],
        ("PUT", "time/c/1"), ("PUT", "etasw/zarr.json"), ("PUT", "time/zarr.json"),
        ("PUT", "zarr.json"),
    ]  # fmt: skip
    point = read_point(prefix, "etasw", *lonlat(520, 590))
    assert point.values == [float(month_values(m)[590, 520]) for m in (1, 2)] + [
        float(changed[590, 520]), float(month_values(4)[590, 520])
    ]  # fmt: skip


def test_a_month_inserted_before_the_last_writes_the_store_anew_under_other_chunk_keys(
    tmp_path, s3_out, monkeypatch
):
    two_month_shards(monkeypatch)
    store = "s3://out/run/series/etasw.zarr"
    update_store(store, "etasw", region(tmp_path, [1, 3]))
    s3_out.reset_count()
    assert update_store(store, "etasw", region(tmp_path, [1, 2, 3])) == ["202002"]
    keys = [key for method, key in writes(s3_out) if method == "PUT"]
    # The old chunks (c/...) stay for readers holding the old metadata; the next update
    # removes them.
    assert "etasw/0/0/0" in keys and not any("/c/" in key for key in keys)
    assert keys[-1] == "zarr.json"
    stored = s3_out.client().list_objects_v2(Bucket="out")["Contents"]
    assert any("/etasw/c/0/0/0" in o["Key"] for o in stored)
    point = read_point("s3://out/run", "etasw", *lonlat(3, 4))
    assert point.values == [float(month_values(m)[4, 3]) for m in (1, 2, 3)]
    s3_out.reset_count()
    update_store(store, "etasw", [*region(tmp_path, [1, 2, 3]), *region(tmp_path, [4])])
    stored = s3_out.client().list_objects_v2(Bucket="out")["Contents"]
    assert not any("/c/" in o["Key"] for o in stored)


@pytest.mark.parametrize("on_s3", [False, True])
@pytest.mark.parametrize("months", [[1, 2, 3, 4], [1, 2, 3, 5]], ids=["added", "inserted"])
def test_a_reader_between_any_two_writes_sees_the_old_store_or_the_new(
    tmp_path, s3_out, monkeypatch, on_s3, months
):
    """After every object written, the store read as xarray reads it (local) or as etm
    timeseries does (S3) is the old store or the new one."""
    from etm.objects import Folder

    two_month_shards(monkeypatch)
    prefix = "s3://out/run" if on_s3 else str(tmp_path / "out")
    store = f"{prefix}/{STORE.format(product='etasw')}"
    update_store(store, "etasw", region(tmp_path, [1, 2, 5][: len(months) - 1]))
    points = [(3, 4), (520, 590), (100, 550)]

    def state():
        if on_s3:
            return [read_point(prefix, "etasw", *lonlat(*p)).values for p in points]
        with xarray.open_zarr(store) as dataset:
            return dataset.etasw.values.tolist(), dataset.time.values.tolist()

    old = state()
    seen = []
    put = Folder.put

    def checked(self, key, data):
        written = put(self, key, data)
        seen.append(state())
        return written

    monkeypatch.setattr(Folder, "put", checked)
    update_store(store, "etasw", region(tmp_path, months))
    new = state()
    assert new != old and len(seen) > 3
    assert all(s in (old, new) for s in seen)


def test_a_failed_update_leaves_the_previous_store_readable(tmp_path, s3_out, monkeypatch):
    from etm.errors import StorageError
    from etm.objects import Folder

    two_month_shards(monkeypatch)
    store, prefix = "s3://out/run/series/etasw.zarr", "s3://out/run"
    update_store(store, "etasw", region(tmp_path, [1, 2]))
    before = read_point(prefix, "etasw", *lonlat(3, 4))
    put, calls = Folder.put, []

    def failing(self, key, data):
        calls.append(key)
        if len(calls) == 3:
            raise StorageError(f"cannot write s3://out/run/series/etasw.zarr/{key}: refused")
        return put(self, key, data)

    monkeypatch.setattr(Folder, "put", failing)
    with pytest.raises(StorageError, match="etasw.zarr/"):
        update_store(store, "etasw", region(tmp_path, [1, 2, 3]))
    assert read_point(prefix, "etasw", *lonlat(3, 4)) == before
    monkeypatch.setattr(Folder, "put", put)
    update_store(store, "etasw", region(tmp_path, [1, 2, 3]))
    assert read_point(prefix, "etasw", *lonlat(3, 4)).values[2] == float(month_values(3)[4, 3])


@pytest.mark.parametrize(
    "text", [b'{"attributes": {"etm": 5}}', b"[1]", b'{"attributes": []}', b"null", b"{"]
)
def test_a_store_whose_metadata_is_not_etms_is_no_store(text):
    assert open_metadata("out", "etasw", lambda url, span: text) is None


def test_a_store_file_that_is_a_pipe_or_too_large_is_refused_without_reading_it(tmp_path):
    # A FIFO's open() waited for a writer for good; a 300 MB zarr.json was read whole.
    pipe, large = tmp_path / "zarr.json", tmp_path / "large.json"
    os.mkfifo(pipe)
    with pytest.raises(EtmError, match="zarr.json: cannot be read .*not a regular file"):
        fetch(str(pipe))
    with open(large, "wb") as stream:
        stream.truncate(MAX_DOCUMENT_BYTES + 1)
    with pytest.raises(EtmError, match="large.json: larger than 16 MiB, not a file etm writes"):
        fetch(str(large))
    assert fetch(str(large), (0, 4)) == b"\0" * 4  # a chunk's range is read as before
