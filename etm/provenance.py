"""What each published tile-month was built from, and which are outdated.

A chip file's identity is what a listing says of it (:attr:`etm.listing.StoredObject.identity`):
its ETag on S3, its inode, size, and modification and change times locally. A tile-month's
*digest* is the SHA-256 of its chips' names and identities, in the mosaic's order.

- Each tile-month job records the digest of what it read (:func:`record`): locally, each
  chip's identity when the job starts, checked again once its pixels are read (a chip
  rewritten meanwhile fails the month); on S3, the listed ETags, which the storage plugin
  makes its downloads match (``If-Match``).
- When a run ends, the main process folds the records written since the last fold into the
  ledger kept beside the COGs (:data:`LEDGER`); a run killed before that is folded by the
  next one.
- At every run, the verifier compares the ledger with the digests of its own listing, and
  the months that differ are built again, whatever the files' times say (:func:`outdated`):
  a chip rewritten (even with an older time: ``cp -p``, ``rsync -a``), a newer copy under an
  added run prefix, a copy gone, or a COG with no record.

A record's bytes depend only on its month, build and digest, so on S3 the main process
knows a record holds the digest it expects from the record's listed ETag (its MD5), without
reading it (:func:`expected_etag`).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from etm.errors import ChipChangedError, ChipReadError, LedgerError, one_line
from etm.listing import StoredObject, local_identity

#: The ledger of what each published tile-month was built from, under the output prefix.
LEDGER = ".etm-provenance.json.gz"
#: The most a ledger unzips to (the team's 51,840 tile-months take 5.1 MB) and a record
#: takes (about 150 bytes): beyond, neither is etm's, and is not read into memory.
MAX_LEDGER_BYTES, MAX_RECORD_BYTES = 256 * 2**20, 64 * 2**10
#: Raise when the mosaic's pixels change for the same chips: every month is built again.
PIXELS_VERSION = 1


def build(dtype: str) -> str:
    """What, besides its chips, decides a COG's pixels: etm's pixel rules and the type."""
    return f"pixels-{PIXELS_VERSION}-{dtype}"


def digest(sources: Iterable[tuple[str, str]]) -> str:
    """The SHA-256 (hex) of sources' names and identities, in order."""
    text = "".join(f"{name}\t{identity}\n" for name, identity in sources)
    return hashlib.sha256(text.encode()).hexdigest()


def record(name: str, build_id: str, sources_digest: str) -> bytes:
    """A job's record of what it built a COG (``name``, relative to the output prefix, with
    no suffix) from; the same bytes for the same values (see :func:`expected_etag`)."""
    return json.dumps([name, build_id, sources_digest], separators=(",", ":")).encode()


def expected_etag(name: str, build_id: str, sources_digest: str) -> str:
    """The ETag S3 lists for :func:`record`'s bytes: their MD5."""
    return hashlib.md5(record(name, build_id, sources_digest), usedforsecurity=False).hexdigest()


def check_unchanged(names: Sequence[str], paths: Sequence[str], identities: Sequence[str]) -> None:
    """Refuse local chips whose identity is no longer the one they had when the job began.

    Raises
    ------
    ChipChangedError
        Naming the first chip that changed.
    ChipReadError
        Naming the first chip deleted.
    """
    for name, path, identity in zip(names, paths, identities, strict=True):
        try:
            now = local_identity(os.stat(path))
        except FileNotFoundError:
            raise ChipReadError(
                name,
                "was deleted while its month was built; nothing was published: the next run "
                "finds it missing, and missing_chips says what then",
            ) from None
        if now != identity:
            raise ChipChangedError(
                name,
                "was rewritten while its month was built; nothing was published: run again "
                "to build the month from the new file",
            )


@dataclass
class Ledger:
    """What each published tile-month was built from: its name (relative to the output
    prefix, no suffix) to ``[build, digest]``, and the time up to which records are folded."""

    periods: dict[str, list[str]] = field(default_factory=dict)
    folded_until: float = 0.0

    @classmethod
    def parse(cls, data: bytes | None, name: str) -> Ledger:
        """A ledger from its stored bytes (gzipped JSON); an empty one if there are none.

        Raises
        ------
        LedgerError
            Naming the ledger (``name``): for bytes etm did not write, or more than
            :data:`MAX_LEDGER_BYTES` once unzipped.
        """
        if not data:
            return cls()
        try:
            unzipped = zlib.decompressobj(wbits=31)  # gzip
            text = unzipped.decompress(data, MAX_LEDGER_BYTES + 1)
            if len(text) > MAX_LEDGER_BYTES:
                raise ValueError(f"over {MAX_LEDGER_BYTES // 2**20} MiB unzipped")
            found = json.loads(text)
            periods, folded_until = found["periods"], found["folded_until"]
            if not (
                isinstance(periods, dict)
                and all(_is_record(values, 2) for values in periods.values())
                and type(folded_until) in (int, float)
                and math.isfinite(folded_until)
            ):
                raise ValueError("not the ledger etm writes")
        except (zlib.error, ValueError, TypeError, KeyError, RecursionError) as error:
            raise LedgerError(
                f"the provenance ledger {name} cannot be read ({one_line(error)}): etm keeps "
                "in it what each COG was built from; move it away, and the next run builds "
                "again every month it no longer finds a record of"
            ) from None
        return cls(periods, float(folded_until))

    def dump(self) -> bytes:
        """The ledger's stored bytes."""
        text = json.dumps(
            {"format": 1, "folded_until": self.folded_until, "periods": self.periods},
            separators=(",", ":"),
            sort_keys=True,
        )
        return gzip.compress(text.encode(), mtime=0)

    def fold(
        self,
        records: Iterable[StoredObject],
        folder: str,
        expected: Callable[[str], tuple[str, str] | None],
        read: Callable[[StoredObject], bytes],
    ) -> int:
        """Take in the records written since the last fold.

        Parameters
        ----------
        records : iterable of StoredObject
            Every record under ``folder``, as listed.
        folder : str
            The records' folder, as the listing spells it.
        expected : callable
            A month's (build, digest) as this run's listing has it, or None: a record whose
            ETag is that of those values holds them, and is not read.
        read : callable
            Reads a record's bytes.

        Returns
        -------
        int
            How many records were read.
        """
        reads, latest = 0, self.folded_until
        for found in records:
            if found.mtime < self.folded_until or not found.size:
                continue
            latest = max(latest, found.mtime)
            name = _record_name(found.path, folder)
            values = expected(name)
            if values is None or found.etag != expected_etag(name, *values):
                reads += 1
                if found.size > MAX_RECORD_BYTES:
                    continue
                try:
                    values = json.loads(read(found))
                except (ValueError, RecursionError):  # a job that failed before its record
                    continue  # (Snakemake's empty log): its COG was removed, built again
                if not _is_record(values, 3):  # not etm's: its month is built again
                    continue
                name, *values = values
            self.periods[name] = list(values)
        self.folded_until = latest
        return reads


def _is_record(values: object, length: int) -> bool:
    """Whether ``values`` is a list of ``length`` texts, as records and the ledger hold."""
    return (
        isinstance(values, list)
        and len(values) == length
        and all(isinstance(value, str) for value in values)
    )


def _record_name(path: str, folder: str) -> str:
    """The month a record is of: its path under the records' folder, without ``.json``."""
    return path[len(folder) :].strip("/").removesuffix(".json")


@dataclass(frozen=True)
class Outdated:
    """A published tile-month to build again, and why."""

    name: str
    reason: str


def outdated(ledger: Ledger, current: dict[str, tuple[str, str]]) -> list[Outdated]:
    """Published tile-months whose record is not what their chips are now.

    Parameters
    ----------
    ledger : Ledger
    current : dict
        Each published tile-month's name to its (build, digest) from this run's listing.

    Returns
    -------
    list of Outdated
        In the order of ``current``.
    """
    found = []
    for name, values in current.items():
        recorded = ledger.periods.get(name)
        if recorded is None:
            found.append(Outdated(name, "no record of the chips it was built from"))
        elif recorded[0] != values[0]:
            found.append(Outdated(name, f"built as {recorded[0]}, now {values[0]}"))
        elif recorded[1] != values[1]:
            found.append(Outdated(name, "its chip files changed since it was built"))
    return found
