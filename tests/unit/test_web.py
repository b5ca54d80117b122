"""The map page's files, published whole, with the content types static hosts serve."""

import pytest

from etm.errors import EtmError
from etm.s3 import content_type
from etm.web import PAGE, page_files, write_page


def built(root):
    for path in [*PAGE.values(), "dist/chunks/zstd-B7Q2.js", "dist/chunks/chunk-X4L6.js"]:
        (root / "web" / path).parent.mkdir(parents=True, exist_ok=True)
        (root / "web" / path).write_text(path)


def test_an_unbuilt_page_stops_the_run_saying_how_to_build_it(tmp_path):
    built(tmp_path)
    (tmp_path / "web" / "dist" / "map.js").unlink()
    with pytest.raises(
        EtmError, match=r"map page is not built \(.*dist/map.js missing\): run `make web`"
    ):
        page_files(str(tmp_path))


def test_a_page_built_without_its_chunks_stops_the_run(tmp_path):
    built(tmp_path)
    for chunk in (tmp_path / "web" / "dist" / "chunks").iterdir():
        chunk.unlink()
    with pytest.raises(EtmError, match=r"\(.*dist/chunks/\*\.js missing\): run `make web`"):
        page_files(str(tmp_path))


def test_the_page_is_published_whole_under_its_names_with_its_chunks(tmp_path):
    built(tmp_path)
    files = page_files(str(tmp_path))
    assert list(files) == [
        "index.html", "map.js", "map.css", "states.json", "counties.json",
        "chunks/chunk-X4L6.js", "chunks/zstd-B7Q2.js",
    ]  # fmt: skip
    out = tmp_path / "out"
    (out / "chunks").mkdir(parents=True)
    write_page(list(files.values()), [str(out / name) for name in files])
    assert {str(p.relative_to(out)): p.read_text() for p in out.rglob("*.*")} == {
        "index.html": "index.html", "map.js": "dist/map.js", "map.css": "dist/map.css",
        "states.json": "dist/states.json", "counties.json": "dist/counties.json",
        "chunks/chunk-X4L6.js": "dist/chunks/chunk-X4L6.js",
        "chunks/zstd-B7Q2.js": "dist/chunks/zstd-B7Q2.js",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("index.html", "text/html; charset=utf-8"),
        ("map.js", "text/javascript; charset=utf-8"),
        ("etasw_202007.tif", "image/tiff; application=geotiff; profile=cloud-optimized"),
        ("etasw_202007.json", "application/json"),
        ("items.ndjson", "application/x-ndjson"),
        ("items.parquet", "application/vnd.apache.parquet"),
        ("lock", "binary/octet-stream"),
    ],
)
def test_objects_are_stored_with_the_content_type_of_their_name(name, expected):
    assert content_type(name) == expected
