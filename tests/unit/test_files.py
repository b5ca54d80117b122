"""A published file appears whole or not at all."""

import pytest

from etm.files import copy_whole, write_whole


def test_a_file_is_renamed_into_place_only_once_written(tmp_path):
    write_whole("text", str(tmp_path / "a.json"))
    copy_whole(str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        "a.json": "text",
        "b.json": "text",
    }


def test_a_failed_copy_leaves_neither_the_file_nor_a_hidden_part(tmp_path):
    with pytest.raises(FileNotFoundError):
        copy_whole(str(tmp_path / "absent.js"), str(tmp_path / "map.js"))
    assert list(tmp_path.iterdir()) == []
