"""Findings of the chip checks: gathered from the run's logs, kept while their chip is unchanged."""

import json
import os

from etm.findings import ChipFinding, current, gather, load, save
from etm.grid import Chip
from etm.inventory import ChipMonth, TileInventory, Verification
from etm.listing import LocalListing, StoredObject

CHIP = Chip(434, -1028)


def test_logs_of_this_run_are_gathered_and_empty_ones_are_not_read(tmp_path):
    folder = tmp_path / "logs" / "findings"
    (folder / "t" / "2020").mkdir(parents=True)
    record = [{"chip": "c.tif", "status": "suspect", "reason": "why"}]
    (folder / "t" / "2020" / "etasw_202007.json").write_text(json.dumps(record))
    (folder / "t" / "2020" / "etasw_202008.json").write_text("[]")
    old = folder / "t" / "2020" / "etasw_202006.json"
    old.write_text(json.dumps(record))
    os.utime(old, (1000, 1000))
    read = []

    def reader(log: StoredObject) -> str:
        read.append(log.path)
        return open(log.path).read()

    found = gather(LocalListing(), str(folder), 2000, reader)
    assert sorted(found) == ["t/2020/etasw_202007.json", "t/2020/etasw_202008.json"]
    assert found["t/2020/etasw_202008.json"] == []
    assert [f.reason for f in found["t/2020/etasw_202007.json"]] == ["why"]
    assert read == [str(folder / "t" / "2020" / "etasw_202007.json")]


def test_a_finding_holds_until_its_chip_is_written_again(tmp_path):
    key = (CHIP, "etasw", 2020, 7)
    inventory = TileInventory(files={key: StoredObject("c.tif", 10, mtime=500.0)})
    verification = Verification(None, {"t": (CHIP,)}, {"t": inventory}, [], {}, [])
    finding = ChipFinding("c.tif", "refused", "why", recorded=600.0)
    path = str(tmp_path / "findings.json")
    save(path, {"t/2020/etasw_202007.json": [finding], "t/2020/etasw_202008.json": []})
    kept = load(path)
    assert list(kept) == ["t/2020/etasw_202007.json"]
    assert current(kept, verification, str) == {ChipMonth("t", *key): finding}
    inventory.files[key] = StoredObject("c.tif", 10, mtime=700.0)  # re-uploaded since
    assert current(kept, verification, str) == {}
