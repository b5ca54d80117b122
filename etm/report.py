"""The verifier's reports: a compact grouped summary for the terminal, full lists as CSV."""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from datetime import UTC, datetime

from etm.grid import chip_order
from etm.inventory import ChipMonth, Verification

MISSING_CSV = "missing_chips.csv"
DUPLICATES_CSV = "duplicate_chips.csv"
SUMMARY_TXT = "verifier.txt"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _months_text(months: set[int], configured: tuple[int, ...]) -> str:
    if months == set(configured) and len(configured) > 1:
        return f"all {len(configured)} months"
    return ", ".join(f"{m:02d}" for m in sorted(months))


def _years_text(years: list[int]) -> str:
    return f"{years[0]}" if len(years) == 1 else f"{years[0]}-{years[-1]}"


def missing_lines(missing: list[ChipMonth], months: tuple[int, ...]) -> list[str]:
    """Group missing chip files into one line per tile, chip, product and run of years.

    Consecutive years missing the same months share a line, e.g.
    ``r50.0_tile6 chip47.4N-106.8E etasw 2009-2011: all 12 months``.

    Parameters
    ----------
    missing : list of ChipMonth
    months : tuple of int
        The configured months, to say "all N months".

    Returns
    -------
    list of str
    """
    by_chip: dict[tuple, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
    for m in missing:
        by_chip[(m.tile, m.chip, m.product)][m.year].add(m.month)
    lines = []
    for (tile, chip, product), years in sorted(
        by_chip.items(), key=lambda item: (item[0][0], chip_order(item[0][1]), item[0][2])
    ):
        runs: list[list[int]] = []
        for year in sorted(years):
            if runs and year == runs[-1][-1] + 1 and years[year] == years[runs[-1][-1]]:
                runs[-1].append(year)
            else:
                runs.append([year])
        lines.extend(
            f"{tile} {chip} {product} {_years_text(run)}: {_months_text(years[run[0]], months)}"
            for run in runs
        )
    return lines


def summary_lines(verification: Verification) -> list[str]:
    """The verifier's findings as lines for a person: totals, warnings, missing chips.

    Parameters
    ----------
    verification : Verification

    Returns
    -------
    list of str
    """
    settings = verification.settings
    chips = sum(len(c) for c in verification.expected.values())
    expected = chips * len(settings.products) * len(settings.years) * len(settings.months)
    lines = [
        f"{_plural(len(verification.expected), 'tile')}, {_plural(chips, 'chip')}, "
        f"{_plural(len(settings.products), 'product')}, "
        f"{_plural(len(settings.months), 'month')} of {_years_text(list(settings.years))}: "
        f"{expected} chip files expected, {expected - len(verification.missing)} found, "
        f"{len(verification.missing)} missing"
    ]
    duplicates = sum(len(i.duplicates) for i in verification.inventories.values())
    if duplicates:
        lines.append(
            f"{duplicates} chip files exist under more than one run prefix; the newest was "
            f"used (list: {os.path.join(settings.reports_dir, DUPLICATES_CSV)})"
        )
    for tile, holes in verification.holes.items():
        if holes:
            lines.append(
                f"warning: tile {tile} has no chip at {', '.join(c.name for c in holes)}, "
                "inside its chips' bounding box; if the tile should have it, list the tile's "
                "chips under 'tiles' so that it is verified"
            )
    for tile, strays in verification.unexpected.items():
        if strays:
            lines.append(
                f"warning: tile {tile} has chips outside its configured chips, ignored: "
                f"{', '.join(c.name for c in strays)}"
            )
    lines.extend(missing_lines(verification.missing, settings.months))
    return lines


def _iso(mtime: float) -> str:
    return datetime.fromtimestamp(mtime, UTC).isoformat(timespec="seconds")


def write_reports(verification: Verification) -> str:
    """Write the missing and duplicate chip CSVs and the summary into the reports folder.

    Every run rewrites all three, so no stale list survives a fixed problem.

    Parameters
    ----------
    verification : Verification

    Returns
    -------
    str
        The path of the missing chips CSV.
    """
    folder = verification.settings.reports_dir
    os.makedirs(folder, exist_ok=True)
    missing_csv = os.path.join(folder, MISSING_CSV)
    with open(missing_csv, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["tile", "chip", "product", "year", "month", "expected_path"])
        for m in verification.missing:
            writer.writerow(
                [m.tile, m.chip, m.product, m.year, m.month, verification.expected_path(m)]
            )
    with open(os.path.join(folder, DUPLICATES_CSV), "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(
            ["tile", "chip", "product", "year", "month", "used_path", "used_mtime", "other_paths"]
        )
        for inventory in verification.inventories.values():
            for d in inventory.duplicates:
                chip, product, year, month = d.key
                others = ";".join(o.path for o in d.others)
                writer.writerow(
                    [d.tile, chip, product, year, month, d.kept.path, _iso(d.kept.mtime), others]
                )
    with open(os.path.join(folder, SUMMARY_TXT), "w") as stream:
        stream.writelines(f"{line}\n" for line in summary_lines(verification))
    return missing_csv
