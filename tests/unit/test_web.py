"""The map page's files, published whole, with the content types static hosts serve."""

import pytest

from etm.errors import EtmError
from etm.s3 import content_type
from etm.web import PAGE, page_files, write_page


def built(root):
    for path in PAGE.values():
        (root / "web" / path).parent.mkdir(parents=True, exist_ok=True)
        (root / "web" / path).write_text(path)


def test_an_unbuilt_page_stops_the_run_saying_how_to_build_it(tmp_path):
    built(tmp_path)
    (tmp_path / "web" / "dist" / "map.js").unlink()
    with pytest.raises(
        EtmError, match=r"map page is not built \(.*dist/map.js missing\): run `make web`"
    ):
        page_files(str(tmp_path))


def test_the_page_is_published_whole_under_its_names(tmp_path):
    built(tmp_path)
    files = page_files(str(tmp_path))
    assert list(files) == ["index.html", "map.js", "map.css", "boundaries.json"]
    out = tmp_path / "out"
    out.mkdir()
    write_page(list(files.values()), [str(out / name) for name in files])
    assert {p.name: p.read_text() for p in out.iterdir()} == {
        "index.html": "index.html", "map.js": "dist/map.js", "map.css": "dist/map.css",
        "boundaries.json": "dist/boundaries.json",
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
