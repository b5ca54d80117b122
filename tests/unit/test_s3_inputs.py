"""Chips answered from the listing of their (read-only) input prefix, without a request."""

import pytest

from etm import s3
from etm.listing import StoredObject

TILE = "in/Run08_01_2024/run_r50.0_tile6/r50.0_tile6"
CHIP = f"{TILE}/chip47.4N-106.8E/2020/etasw_202001.tif"


@pytest.fixture
def listed(monkeypatch):
    chip = StoredObject(CHIP, 1024, 1.0, etag="e")
    monkeypatch.setattr(s3, "PROTECTED", set())
    monkeypatch.setattr(s3, "SNAPSHOTS", {TILE: {CHIP: chip}})
    s3.protect([f"{TILE}/"])
    return chip


def test_an_input_prefix_protects_itself_and_what_lies_under_it_only(listed):
    assert s3.protected_prefix(TILE) == TILE
    assert s3.protected_prefix(CHIP) == TILE
    assert s3.protected_prefix(f"{TILE}0/chip47.4N-106.8E/2020/etasw_202001.tif") is None
    assert s3.protected_prefix("in/Run08_01_2024") is None
    assert s3.protected_prefix("in") is None


def test_a_chip_is_answered_by_its_prefix_listing_present_or_missing(listed):
    assert s3.listed_input(CHIP) == (True, listed)
    assert s3.listed_input(CHIP.replace("202001", "202002")) == (True, None)
    assert s3.listed_input("out/USA/tiles/r50.0_tile6/etasw/2020/etasw_202001.tif") == (
        False,
        None,
    )


def test_a_listed_prefix_holds_what_lies_under_it_not_itself(listed):
    assert s3.listed_prefix(CHIP) == TILE
    assert s3.listed_prefix(f"{TILE}/") is None  # the prefix itself is a folder, not an object
    assert s3.listed_prefix(f"{TILE}0/chip47.4N-106.8E/2020/etasw_202001.tif") is None
    assert s3.listed_prefix("in") is None
