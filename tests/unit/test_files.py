"""A published file appears whole or not at all."""

import pytest
from conftest import unwritable

from etm.errors import OutputError
from etm.files import check_output_folders, copy_whole, remove_leftovers, whole, write_whole
from etm.lock import LOCK_NAME


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


def test_a_folder_that_cannot_be_written_fails_before_the_work(tmp_path):
    folder = tmp_path / "2020"
    folder.mkdir()
    worked = []
    with unwritable(folder), pytest.raises(OutputError) as error:
        with whole(str(folder / "etasw_202007.tif")):
            worked.append(True)
    assert not worked
    assert str(error.value).startswith(f"output folder {folder} cannot be written (")
    assert list(folder.iterdir()) == []


def test_output_folders_are_folders_this_user_can_write(tmp_path):
    out = tmp_path / "out"
    check_output_folders([str(out / "tiles" / "t" / "etasw" / "2020")])  # none exists yet
    (out / "tiles").mkdir(parents=True)
    (out / "tiles" / "t").write_text("")
    with pytest.raises(OutputError, match=f"^output {out}/tiles/t is a file, where the run"):
        check_output_folders([str(out), str(out / "tiles" / "t" / "etasw" / "2020")])
    (out / "tiles" / "t").unlink()
    (out / "tiles" / "t").symlink_to(out / "tiles" / "t")  # a loop
    with pytest.raises(OutputError, match=f"^output {out}/tiles/t is a link that leads to no"):
        check_output_folders([str(out / "tiles" / "t" / "etasw" / "2020")])
    (out / "tiles" / "t").unlink()
    year = out / "tiles" / "t" / "etasw" / "2020"
    year.mkdir(parents=True)
    with unwritable(year), pytest.raises(OutputError, match=f"^output folder {year} cannot be"):
        check_output_folders([str(out), str(year)])


def test_a_scratch_folder_named_after_no_possible_process_is_kept_without_an_error(tmp_path):
    (tmp_path / "etm-99999999999999999999-x").mkdir()
    assert remove_leftovers(str(tmp_path / "out"), str(tmp_path), LOCK_NAME) == (0, 0)
    assert (tmp_path / "etm-99999999999999999999-x").is_dir()


def test_partial_files_in_another_runs_output_prefix_inside_are_left_to_it(tmp_path):
    mine = tmp_path / "out" / "tiles" / "t" / "etasw" / "2020"
    theirs = tmp_path / "out" / "sub" / "tiles" / "t" / "etasw" / "2020"
    for folder in (mine, theirs):
        folder.mkdir(parents=True)
        (folder / ".etasw_202007.tif.0123456789ab.partial").write_text("")
    (tmp_path / "out" / "sub" / LOCK_NAME).write_text("{}")
    assert remove_leftovers(str(tmp_path / "out"), str(tmp_path), LOCK_NAME) == (1, 0)
    assert (theirs / ".etasw_202007.tif.0123456789ab.partial").exists()
