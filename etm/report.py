"""The verifier's reports: a grouped summary for the terminal, CSV lists, completeness heatmaps."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from etm.grid import chip_order
from etm.inventory import ChipMonth, Verification

MISSING_CSV = "missing_chips.csv"
TRUNCATED_CSV = "truncated_chips.csv"
DUPLICATES_CSV = "duplicate_chips.csv"
FINDINGS_CSV = "chip_findings.csv"
#: Published tile-months whose chips changed since they were built (etm.provenance).
OUTDATED_CSV = "outdated_months.csv"
SUMMARY_TXT = "verifier.txt"
#: The HTML report's opening page (Snakemake's global ``report:``).
SUMMARY_RST = "summary.rst"
SNAPSHOT_JSON = "verification.json"
HEATMAPS = "heatmaps"
PRESENT, MISSING, TRUNCATED, SUSPECT, REFUSED, NEVER_RUN = 0, 1, 2, 3, 4, 5
#: The status, in the findings' list, of a chip file of a chip listed in unproduced_chips.
LEFT_OUT = "left out"
#: How a finding's status shows on the heatmaps.
FINDING_STATUS = {"suspect": SUSPECT, "refused": REFUSED}

log = logging.getLogger(__name__)


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


def _years_runs(years: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for year in sorted(years):
        if runs and year == runs[-1][-1] + 1:
            runs[-1].append(year)
        else:
            runs.append([year])
    return runs


def diagnoses(verification: Verification) -> tuple[list[str], set[ChipMonth]]:
    """Systematic gaps as one line each, and the missing chip files they explain.

    A product with no chip file in any tile, years with no chip file at all, and a chip
    with no file for any product or month (it never ran) each get one line, so that the
    per-chip lines are left for the scattered gaps.

    Parameters
    ----------
    verification : Verification

    Returns
    -------
    tuple of (list of str, set of ChipMonth)
    """
    settings = verification.settings
    found = [key for inventory in verification.inventories.values() for key in inventory.files]
    products = {product for _chip, product, _year, _month in found}
    years = {year for _chip, _product, year, _month in found}
    lines, explained = [], set()
    for product in settings.products:
        if product not in products:
            lines.append(
                f"no {product} chips at all in any tile: is {product} among this run's products?"
            )
            explained |= {m for m in verification.missing if m.product == product}
    gaps = [year for year in settings.years if year not in years]
    for run in _years_runs(gaps) if len(gaps) < len(settings.years) else []:
        lines.append(f"{_years_text(run)}: no chips in any tile")
        explained |= {m for m in verification.missing if m.year in run}
    per_chip: dict[tuple, int] = defaultdict(int)
    for m in verification.missing:
        per_chip[(m.tile, m.chip)] += 1
    every = len(settings.products) * len(settings.years) * len(settings.months)
    for (tile, chip), count in sorted(
        per_chip.items(), key=lambda item: (item[0][0], chip_order(item[0][1]))
    ):
        if count == every and found:
            lines.append(
                f"{tile} {chip}: no file for any product or month: the model never ran for "
                "this chip; rerun it, or list the chip under unproduced_chips if it never "
                "will be produced"
            )
            explained |= {m for m in verification.missing if (m.tile, m.chip) == (tile, chip)}
    return lines, explained


def summary_lines(verification: Verification) -> list[str]:
    """The verifier's findings as lines for a person: totals, warnings, missing chips.

    Systematic gaps come first, one line each (:func:`diagnoses`); the per-chip lines of
    the other missing files follow.

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
    left_out = Counter((m.tile, m.chip) for m in verification.left_out)
    for (tile, chip), count in sorted(left_out.items()):
        lines.append(
            f"warning: {tile} {chip} is listed in unproduced_chips but has "
            f"{_plural(count, 'chip file')}: left out of every mosaic (its months' COGs have "
            "a hole there); remove it from unproduced_chips to publish it (list: "
            f"{os.path.join(settings.reports_dir, FINDINGS_CSV)})"
        )
    for tile, strays in verification.unexpected.items():
        if strays:
            lines.append(
                f"warning: tile {tile} has chips outside its configured chips, ignored: "
                f"{', '.join(c.name for c in strays)}"
            )
    if verification.truncated:
        lines.append(
            f"warning: {_plural(len(verification.truncated), 'chip file')} smaller than the "
            "other files of their chip (likely truncated uploads: a month whose file cannot be "
            "read in full fails; re-upload those; list: "
            f"{os.path.join(settings.reports_dir, TRUNCATED_CSV)}):"
        )
        lines.extend(
            f"truncated {line}" for line in missing_lines(verification.truncated, settings.months)
        )
    lines.extend(finding_lines(verification))
    systematic, explained = diagnoses(verification)
    lines.extend(systematic)
    scattered = [m for m in verification.missing if m not in explained]
    lines.extend(missing_lines(scattered, settings.months))
    return lines


def summary_rst(verification: Verification, limit: int = 40) -> str:
    """The HTML report's opening page: chip files per tile and product, then the verifier's
    summary (systematic gaps one line each), then where the heatmaps and quicklooks are."""
    settings = verification.settings
    periods = len(settings.years) * len(settings.months)
    missing = Counter((m.tile, m.product) for m in verification.missing)
    flagged = Counter((m.tile, m.product) for m in verification.findings)
    header = ["tile", "product", "expected", "found", "missing", "refused or suspect"]
    rows = [
        [tile, product, n := len(chips) * periods, n - missing[tile, product],
         missing[tile, product], flagged[tile, product]]
        for tile, chips in verification.expected.items()
        for product in settings.products
    ]  # fmt: skip
    table = "".join(
        "   * - " + "\n     - ".join(str(cell) for cell in row) + "\n" for row in [header, *rows]
    )
    lines = summary_lines(verification)
    more = len(lines) - limit
    shown = lines[:limit] + ([f"... {more} more lines in {SUMMARY_TXT}"] if more > 0 else [])
    return (
        f"Completeness of {settings.output}\n{'=' * (16 + len(settings.output))}\n\n"
        ".. list-table:: Chip files per tile and product\n   :header-rows: 1\n\n"
        f"{table}\n"
        "The verifier's summary::\n\n" + "".join(f"   {line}\n" for line in shown) + "\n"
        "The heatmaps (chips down, months across) are under **Completeness**, the region's "
        "quicklooks under **Quicklooks**.\n"
    )


def finding_lines(verification: Verification) -> list[str]:
    """Chips refused or found suspect by their month's last mosaic: a count, then one line
    each with why."""
    findings = verification.findings
    if not findings:
        return []
    counts = {
        status: sum(1 for f in findings.values() if f.status == status)
        for status in ("refused", "suspect")
    }
    where = os.path.join(verification.settings.reports_dir, FINDINGS_CSV)
    lines = [
        f"{_plural(counts['refused'], 'chip file')} refused and {counts['suspect']} suspect "
        f"when their month was last mosaicked (list: {where}):"
    ]
    for m, finding in sorted(
        findings.items(),
        key=lambda item: (
            item[0].tile,
            chip_order(item[0].chip),
            item[0].product,
            item[0].year,
            item[0].month,
        ),
    ):
        lines.append(
            f"{finding.status} {m.tile} {m.chip} {m.product} {m.year}-{m.month:02d}: "
            f"{finding.reason}"
        )
    return lines


def terminal_lines(lines: list[str], limit: int, full_list: str) -> list[str]:
    """At most ``limit`` lines, and where the rest are when some are left out."""
    if len(lines) <= limit:
        return lines
    return [*lines[:limit], f"... {len(lines) - limit} more lines in {full_list}"]


def _iso(mtime: float) -> str:
    return datetime.fromtimestamp(mtime, UTC).isoformat(timespec="seconds")


def statuses(verification: Verification, tile: str) -> dict[str, list[list[int]]]:
    """Per product, one row per chip (reading order) and one status per month: PRESENT,
    MISSING, TRUNCATED, SUSPECT or REFUSED; NEVER_RUN in every month of a chip that has
    no file of the product at all (the model never ran it)."""
    settings = verification.settings
    periods = [(y, m) for y in settings.years for m in settings.months]
    known = {
        (m.chip, m.product, m.year, m.month): MISSING
        for m in verification.missing
        if m.tile == tile
    }
    known.update(
        {
            (t.chip, t.product, t.year, t.month): TRUNCATED
            for t in verification.truncated
            if t.tile == tile
        }
    )
    known.update(
        {
            (m.chip, m.product, m.year, m.month): FINDING_STATUS[finding.status]
            for m, finding in verification.findings.items()
            if m.tile == tile
        }
    )

    def row(chip, product) -> list[int]:
        found = [known.get((chip, product, year, month), PRESENT) for year, month in periods]
        return [NEVER_RUN] * len(found) if set(found) == {MISSING} else found

    return {
        product: [row(chip, product) for chip in verification.expected[tile]]
        for product in settings.products
    }


def snapshot(verification: Verification) -> dict:
    """Everything the reports show, as plain data (written as reports/verification.json)."""
    settings = verification.settings

    def row(m: ChipMonth, path: str) -> list:
        return [m.tile, m.chip.name, m.product, m.year, m.month, path]

    return {
        "summary": summary_lines(verification),
        "periods": [f"{y}-{m:02d}" for y in settings.years for m in settings.months],
        "tiles": {
            tile: {"chips": [chip.name for chip in chips], "statuses": statuses(verification, tile)}
            for tile, chips in verification.expected.items()
        },
        "missing": [row(m, verification.expected_path(m)) for m in verification.missing],
        "truncated": [
            [*row(t, verification.found(t).path), verification.found(t).size]
            for t in verification.truncated
        ],
        "findings": [
            [*row(m, finding.chip), finding.status, finding.reason]
            for m, finding in verification.findings.items()
        ] + [
            [*row(m, verification.found(m).path), LEFT_OUT,
             "listed in unproduced_chips, but has this file: not in the mosaic"]
            for m in verification.left_out
        ],
        "duplicates": [
            [d.tile, d.key[0].name, d.key[1], d.key[2], d.key[3], d.kept.path, _iso(d.kept.mtime),
             ";".join(o.path for o in d.others)]
            for inventory in verification.inventories.values()
            for d in inventory.duplicates
        ],
    }  # fmt: skip


def _write_csv(path: str, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)


def write_tables(data: dict, folder: str) -> None:
    """Write the CSV lists and the summary of a verification snapshot into ``folder``."""
    location = ["tile", "chip", "product", "year", "month"]
    _write_csv(os.path.join(folder, MISSING_CSV), [*location, "expected_path"], data["missing"])
    _write_csv(os.path.join(folder, TRUNCATED_CSV), [*location, "path", "size"], data["truncated"])
    _write_csv(
        os.path.join(folder, FINDINGS_CSV),
        [*location, "path", "status", "reason"],
        data["findings"],
    )
    _write_csv(
        os.path.join(folder, DUPLICATES_CSV),
        [*location, "used_path", "used_mtime", "other_paths"],
        data["duplicates"],
    )
    with open(os.path.join(folder, SUMMARY_TXT), "w") as stream:
        stream.writelines(f"{line}\n" for line in data["summary"])


def adopt_reports(output: str, folder: str) -> str | None:
    """Rename the reports folder an earlier etm kept for an output prefix,
    ``reports/<prefix with / as _>`` (a name two prefixes could share), to ``folder``, the
    prefix's own, if that does not exist yet: its findings are kept.

    Returns
    -------
    str or None
        A line saying so.
    """
    old = "reports/" + "_".join(part for part in output.split("/") if part not in ("", "."))
    if not os.path.isdir(old) or os.path.exists(folder):
        return None
    os.replace(old, folder)
    return f"the reports of {output} moved from {old} to {folder}, its own folder"


def outdated_csv(outdated: Iterable) -> str:
    """The published COGs to build again (:class:`etm.provenance.Outdated`), and why."""
    lines = io.StringIO()
    writer = csv.writer(lines)
    writer.writerow(["cog", "reason"])
    writer.writerows([f"{o.name}.tif", o.reason] for o in outdated)
    return lines.getvalue()


def heatmap_path(folder: str, tile: str) -> str:
    """Where a tile's completeness heatmap is written."""
    return os.path.join(folder, HEATMAPS, f"{tile}.png")


def heatmaps_behind(folder: str, tiles: Iterable[str]) -> bool:
    """Whether a tile's heatmap is missing or older than the verification snapshot, which
    is rewritten only when it changes (:func:`write_reports`)."""
    snapshot_time = os.path.getmtime(os.path.join(folder, SNAPSHOT_JSON))
    paths = [heatmap_path(folder, tile) for tile in tiles]
    return any(
        not os.path.exists(path) or os.path.getmtime(path) <= snapshot_time for path in paths
    )


def completeness_files(folder: str, tiles: Iterable[str]) -> list[tuple[str, dict[str, str]]]:
    """The completeness pictures and lists in Snakemake's HTML report, with their labels:
    each tile's heatmap, then the CSV of missing chip files."""
    heatmaps = [
        (heatmap_path(folder, t), {"tile": t, "shows": "chip files by month"}) for t in tiles
    ]
    return heatmaps + [
        (os.path.join(folder, MISSING_CSV), {"tile": "all", "shows": "missing chip files"})
    ]


def render(snapshot_path: str, folder: str) -> None:
    """Write every report file from a verification snapshot: CSVs, summary, heatmaps.

    Parameters
    ----------
    snapshot_path : str
        reports/verification.json, as :func:`write_reports` writes it.
    folder : str
        The reports folder.
    """
    with open(snapshot_path) as stream:
        data = json.load(stream)
    write_tables(data, folder)
    os.makedirs(os.path.join(folder, HEATMAPS), exist_ok=True)
    for tile, layout in data["tiles"].items():
        path = heatmap_path(folder, tile)
        heatmap(path, tile, layout["chips"], data["periods"], layout["statuses"])
        log.info("drew %s", path)


def write_reports(verification: Verification) -> str:
    """Write the verification snapshot, the CSV lists and the summary.

    The snapshot is rewritten only when it changes, so that the heatmaps drawn from it
    (rule ``completeness``, :func:`render`) are redrawn only then.

    Parameters
    ----------
    verification : Verification

    Returns
    -------
    str
        The path of the missing chips CSV.
    """
    folder = Path(verification.settings.reports_dir)
    folder.mkdir(parents=True, exist_ok=True)
    data = snapshot(verification)
    text = json.dumps(data)
    path = folder / SNAPSHOT_JSON
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    write_tables(data, str(folder))
    (folder / SUMMARY_RST).write_text(summary_rst(verification))
    return str(folder / MISSING_CSV)


# The completeness heatmap: one cell per chip and month, one panel per product, at fixed
# pixel positions (see heatmap_cell). Rows are tall enough for a label read at 100%.
ROW = 12
#: Column width: months named by their initial up to 5 years, by quarter beyond.
WIDE, NARROW, WIDE_PERIODS = 12, 6, 60
LEFT, TOP, AXIS, PANEL_GAP, LEGEND, LEGEND_STEP = 130, 18, 24, 10, 34, 80
COLOURS = {
    PRESENT: "#4575b4", MISSING: "#d73027", TRUNCATED: "#fdae61", SUSPECT: "#984ea3",
    REFUSED: "#1a1a1a", NEVER_RUN: "#bdbdbd",
}  # fmt: skip
LABELS = {
    PRESENT: "present", MISSING: "missing", TRUNCATED: "truncated", SUSPECT: "suspect",
    REFUSED: "refused", NEVER_RUN: "never run",
}  # fmt: skip
MONTH_INITIALS = "JFMAMJJASOND"


def column_width(periods: int) -> int:
    return WIDE if periods <= WIDE_PERIODS else NARROW


def panel_top(panel: int, chips: int) -> int:
    """Pixel row of the first chip row of a panel."""
    return LEGEND + panel * (TOP + chips * ROW + AXIS + PANEL_GAP) + TOP


def heatmap_cell(panel: int, row: int, column: int, chips: int, periods: int) -> tuple[int, int]:
    """Pixel (x, y) from the top-left of a heatmap of the centre of one chip-month cell."""
    width = column_width(periods)
    return LEFT + column * width + width // 2, panel_top(panel, chips) + row * ROW + ROW // 2


def month_label(period: str, wide: bool) -> str | None:
    """What names a column (``YYYY-MM``) under the cells: its month's initial, or its
    quarter on narrow columns (and nothing for the other months of a quarter)."""
    month = int(period[5:])
    if wide:
        return MONTH_INITIALS[month - 1]
    return f"Q{(month + 2) // 3}" if month % 3 == 1 else None


def heatmap(path: str, tile: str, chips: list[str], periods: list[str], panels: dict) -> None:
    """Draw a tile's completeness: chips down, months across, one panel per product."""
    from matplotlib.colors import to_rgb
    from matplotlib.figure import Figure

    cell = column_width(len(periods))
    width = LEFT + max(len(periods) * cell, len(COLOURS) * LEGEND_STEP) + 20
    height = panel_top(len(panels), len(chips)) - TOP
    # A Figure of its own, not pyplot's: the rule completeness draws in a thread.
    figure = Figure(figsize=(width / 100, height / 100), dpi=100)
    palette = np.array([to_rgb(COLOURS[status]) for status in sorted(COLOURS)])
    figure.text(4 / width, 1 - 14 / height, f"{tile}: chip files by month", fontsize=9)
    for index, status in enumerate(sorted(COLOURS)):
        x = LEFT + index * LEGEND_STEP
        figure.figimage(np.tile(palette[status], (10, 10, 1)), xo=x, yo=height - 30)
        figure.text((x + 14) / width, 1 - 29 / height, LABELS[status], fontsize=7)
    for panel, (product, rows) in enumerate(panels.items()):
        top = panel_top(panel, len(chips))
        cells = palette[np.asarray(rows, dtype=int)].repeat(ROW, axis=0).repeat(cell, axis=1)
        figure.figimage(cells, xo=LEFT, yo=height - top - cells.shape[0], origin="upper")
        figure.text(LEFT / width, 1 - (top - 4) / height, product, fontsize=8, weight="bold")
        for row, chip in enumerate(chips):
            y = 1 - (top + row * ROW + ROW - 2) / height
            figure.text(4 / width, y, chip, fontsize=8, family="monospace")
        axis = top + len(chips) * ROW
        for column, period in enumerate(periods):
            x = (LEFT + column * cell + cell / 2) / width
            label = month_label(period, cell == WIDE)
            if label:
                figure.text(x, 1 - (axis + 9) / height, label, fontsize=6, ha="center")
            if column == 0 or period.endswith("-01"):
                x = (LEFT + column * cell) / width
                figure.text(x, 1 - (axis + 20) / height, period[:4], fontsize=7)
    figure.savefig(path, dpi=100)
