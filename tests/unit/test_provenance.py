"""What each tile-month was built from: digests, records, the ledger, outdated months."""

import gzip
import hashlib
import io
import json
import os
import shutil

import pytest

from etm.errors import ChipChangedError, ChipReadError, LedgerError
from etm.listing import LocalListing, StoredObject, local_identity
from etm.provenance import (
    MAX_LEDGER_BYTES,
    Ledger,
    Outdated,
    build,
    check_unchanged,
    digest,
    expected_etag,
    outdated,
    record,
)

MONTH = "tiles/r50.0_tile6/etasw/2020/etasw_202007"
BUILD = build("float32")


def test_a_digest_changes_with_any_name_identity_or_order():
    sources = [("a.tif", "etag:1"), ("b.tif", "etag:2")]
    assert digest(sources) == digest(list(sources))
    assert len({digest(sources), digest(sources[::-1]), digest([("a.tif", "etag:3"), sources[1]]),
                digest([("c.tif", "etag:1"), sources[1]])}) == 4  # fmt: skip


def test_a_records_etag_is_the_md5_of_its_bytes_and_says_what_it_holds():
    data = record(MONTH, BUILD, "d1")
    assert json.loads(data) == [MONTH, BUILD, "d1"]
    assert expected_etag(MONTH, BUILD, "d1") == hashlib.md5(data).hexdigest()
    assert expected_etag(MONTH, BUILD, "d2") != expected_etag(MONTH, BUILD, "d1")


def test_the_ledger_folds_records_it_can_tell_from_their_etag_without_reading_them():
    folder = "ws-work/etm/logs/k/provenance"
    listed = [
        StoredObject(f"{folder}/{MONTH}.json", 90, 100.0, expected_etag(MONTH, BUILD, "now")),
        StoredObject(f"{folder}/tiles/t/e/2020/e_202008.json", 90, 101.0, "other-etag"),
        StoredObject(f"{folder}/tiles/t/e/2020/e_202009.json", 0, 102.0, "empty"),  # failed job
        StoredObject(f"{folder}/tiles/t/e/2019/e_201901.json", 90, 50.0, "x"),  # folded before
    ]
    current = {MONTH: (BUILD, "now"), "tiles/t/e/2020/e_202008": (BUILD, "now")}
    read = []

    def reader(found):
        read.append(found.path)
        return record("tiles/t/e/2020/e_202008", BUILD, "then")

    ledger = Ledger({"tiles/t/e/2019/e_201901": [BUILD, "old"]}, folded_until=60.0)
    assert ledger.fold(listed, folder, current.get, reader) == 1
    assert read == [listed[1].path]
    assert ledger.periods == {
        "tiles/t/e/2019/e_201901": [BUILD, "old"],
        MONTH: [BUILD, "now"],
        "tiles/t/e/2020/e_202008": [BUILD, "then"],
    }
    assert ledger.folded_until == 101.0
    again = Ledger.parse(ledger.dump(), "L")
    assert (again.periods, again.folded_until) == (ledger.periods, ledger.folded_until)
    assert Ledger.parse(None, "L").periods == {}


def test_records_that_are_not_etms_are_skipped_and_their_months_built_again():
    folder = "logs/k/provenance"
    texts = {"a": b"5", "b": b'["tiles/b", 1, 2]', "c": b"[]", "d": b"x" * 100_000,
             "e": b"[" * 60_000}  # fmt: skip
    listed = [
        StoredObject(f"{folder}/{name}.json", len(t), 100.0, "?") for name, t in texts.items()
    ]
    ledger = Ledger()
    ledger.fold(listed, folder, {}.get, lambda found: texts[found.path[len(folder) + 1 : -5]])
    assert ledger.periods == {}


@pytest.mark.parametrize(
    "data, why",
    [
        (b"not gzip", "Error -3 while decompressing"),
        (gzip.compress(b'{"periods": {}'), "Expecting"),
        (gzip.compress(b"[1, 2, 3]"), "list indices"),
        (gzip.compress(b'{"periods": {"a": 5}, "folded_until": 0}'), "not the ledger etm"),
        (gzip.compress(b'{"periods": {}, "folded_until": "x"}'), "not the ledger etm"),
        (gzip.compress(b"[" * 300_000), ""),
    ],
    ids=["not-gzip", "truncated", "list", "period-number", "time-text", "nested"],
)
def test_a_ledger_etm_did_not_write_is_one_line_naming_it(data, why):
    with pytest.raises(LedgerError, match=r"^the provenance ledger out/L cannot be read \(.*"
                       + why + r".*\): etm keeps in it what each COG"):  # fmt: skip
        Ledger.parse(data, "out/L")


def test_a_ledger_that_unzips_beyond_its_bound_is_refused_unread():
    zipped = io.BytesIO()
    with gzip.GzipFile(fileobj=zipped, mode="wb") as stream:
        for _ in range(MAX_LEDGER_BYTES // 2**20 + 1):
            stream.write(b" " * 2**20)
        stream.write(b'{"periods": {}, "folded_until": 0}')
    with pytest.raises(LedgerError, match=r"\(over 256 MiB unzipped\)"):
        Ledger.parse(zipped.getvalue(), "out/L")


def test_months_whose_record_differs_or_is_missing_are_outdated():
    ledger = Ledger({"a": [BUILD, "d"], "b": [BUILD, "d"], "c": [build("float64"), "d"]})
    current = {"a": (BUILD, "d"), "b": (BUILD, "e"), "c": (BUILD, "d"), "n": (BUILD, "d")}
    assert outdated(ledger, current) == [
        Outdated("b", "its chip files changed since it was built"),
        Outdated("c", "built as pixels-1-float64, now pixels-1-float32"),
        Outdated("n", "no record of the chips it was built from"),
    ]


@pytest.mark.parametrize("change", ["rewrite", "copy_keeping_time", "replace", "touch"])
def test_a_local_chip_changed_in_any_way_is_no_longer_itself(tmp_path, change):
    chip = tmp_path / "chip.tif"
    chip.write_bytes(b"a" * 100)
    identity = local_identity(os.stat(chip))
    (listed,) = LocalListing().walk(str(tmp_path))
    assert listed.identity == identity
    check_unchanged(["chip"], [str(chip)], [identity])
    before = os.stat(chip)
    if change == "rewrite":
        chip.write_bytes(b"b" * 100)
    elif change == "copy_keeping_time":  # cp -p: the same size, inode and times
        (tmp_path / "new").write_bytes(b"c" * 100)
        shutil.copyfile(tmp_path / "new", chip)
        os.utime(chip, ns=(before.st_atime_ns, before.st_mtime_ns))
    elif change == "replace":  # rsync -a: a new file renamed over it, old times kept
        (tmp_path / "new").write_bytes(b"a" * 100)
        os.utime(tmp_path / "new", ns=(before.st_atime_ns, before.st_mtime_ns))
        os.replace(tmp_path / "new", chip)
    else:
        os.utime(chip)
    with pytest.raises(ChipChangedError, match="^chip chip: was rewritten while its month"):
        check_unchanged(["chip"], [str(chip)], [identity])


def test_a_local_chip_deleted_while_its_month_is_built_is_one_line(tmp_path):
    chip = tmp_path / "chip.tif"
    chip.write_bytes(b"a" * 100)
    identity = local_identity(os.stat(chip))
    chip.unlink()
    with pytest.raises(ChipReadError, match="^chip chip: was deleted while its month was built"):
        check_unchanged(["chip"], [str(chip)], [identity])
