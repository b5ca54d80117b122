"""The verifier's grouped summary and the completeness heatmaps."""

from pathlib import Path

import numpy as np
import yaml
from matplotlib.image import imread

from etm.config import load_settings, read_schema
from etm.grid import Chip
from etm.inventory import ChipMonth, Verification
from etm.report import (
    COLOURS,
    MISSING,
    NEVER_RUN,
    PRESENT,
    ROW,
    completeness_files,
    heatmap,
    heatmap_cell,
    heatmaps_behind,
    missing_lines,
    month_label,
    render,
    statuses,
    summary_rst,
    write_reports,
)

REPO = Path(__file__).resolve().parents[2]

CHIP = Chip(474, -1068)


def test_missing_months_are_grouped_per_chip_product_and_run_of_years():
    missing = [ChipMonth("r50.0_tile6", CHIP, "etasw", 2008, 3)]
    missing += [
        ChipMonth("r50.0_tile6", CHIP, "etasw", y, m)
        for y in (2009, 2010, 2012)
        for m in range(1, 13)
    ]
    missing += [ChipMonth("r50.0_tile5", Chip(474, -1168), "netet", 2008, m) for m in (1, 2)]
    assert missing_lines(missing, tuple(range(1, 13))) == [
        "r50.0_tile5 chip47.4N-116.8E netet 2008: 01, 02",
        "r50.0_tile6 chip47.4N-106.8E etasw 2008: 03",
        "r50.0_tile6 chip47.4N-106.8E etasw 2009-2010: all 12 months",
        "r50.0_tile6 chip47.4N-106.8E etasw 2012: all 12 months",
    ]


def test_a_single_configured_month_is_named_not_counted():
    missing = [ChipMonth("t", CHIP, "etasw", 2020, 7)]
    assert missing_lines(missing, (7,)) == ["t chip47.4N-106.8E etasw 2020: 07"]


def test_a_chip_without_any_file_of_a_product_is_never_run_not_missing():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(start_year=2020, end_year=2020, months=[6, 7])
    settings = load_settings(config, read_schema(REPO), local=False)
    tile = next(iter(settings.tiles))
    never, gap = Chip(474, -1068), Chip(474, -1048)
    missing = [ChipMonth(tile, never, "etasw", 2020, m) for m in (6, 7)]
    missing.append(ChipMonth(tile, gap, "etasw", 2020, 7))
    verification = Verification(settings, {tile: (never, gap)}, {}, missing, {}, [])
    rows = statuses(verification, tile)
    assert rows["etasw"] == [[NEVER_RUN, NEVER_RUN], [PRESENT, MISSING]]
    assert rows[settings.products[1]] == [[PRESENT, PRESENT], [PRESENT, PRESENT]]


def test_months_are_named_by_initial_or_by_quarter():
    assert [month_label(f"2020-{m:02d}", wide=True) for m in range(1, 13)] == list("JFMAMJJASOND")
    narrow = [month_label(f"2020-{m:02d}", wide=False) for m in range(1, 13)]
    assert narrow == ["Q1", None, None, "Q2", None, None, "Q3", None, None, "Q4", None, None]


def test_twenty_years_of_25_chips_draw_every_cell_where_it_is_said_to_be(tmp_path):
    periods = [f"{y}-{m:02d}" for y in range(2001, 2021) for m in range(1, 13)]
    chips = [f"chip{47.4 - 2 * (i // 5):.1f}N-{106.8 + 2 * (i % 5):.1f}E" for i in range(25)]
    rng = np.random.default_rng(3)
    panels = {p: rng.choice(sorted(COLOURS), (25, len(periods))).tolist() for p in ("etasw", "swe")}
    path = tmp_path / "tile.png"
    heatmap(str(path), "r50.0_tile6", chips, periods, panels)
    pixels = imread(path)
    assert pixels.shape[1] < 1700  # narrow columns, quarters named: one screen wide
    for panel, rows in enumerate(panels.values()):
        for row, statuses_of_chip in enumerate(rows):
            for column, status in enumerate(statuses_of_chip):
                x, y = heatmap_cell(panel, row, column, len(chips), len(periods))
                colour = "#{:02x}{:02x}{:02x}".format(*(pixels[y, x, :3] * 255).round().astype(int))
                assert colour == COLOURS[status], (panel, row, column)
    # A row is tall enough for its chip's label in an 8-point font at 100 dpi (11 pixels).
    assert ROW >= 11


def test_the_html_reports_opening_page_counts_chip_files_per_tile_and_product():
    from docutils.core import publish_parts

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(start_year=2020, end_year=2020, months=[6, 7], products=["etasw", "netet"])
    settings = load_settings(config, read_schema(REPO), local=False)
    tile = next(iter(settings.tiles))
    chips = (Chip(474, -1068), Chip(474, -1048))
    missing = [ChipMonth(tile, chips[1], "netet", 2020, 7)]
    verification = Verification(settings, {tile: chips}, {}, missing, {}, [])
    text = summary_rst(verification)
    # Any docutils warning (a malformed table, say) fails the page.
    html = publish_parts(text, writer="html", settings_overrides={"halt_level": 2})["body"]
    cells = [cell.split(">")[-1] for cell in html.split("</td>")[:-1]]
    assert cells == [tile, "etasw", "4", "4", "0", "0", tile, "netet", "4", "3", "1", "0"]
    assert "8 chip files expected, 7 found, 1 missing" in html


def test_the_report_shows_each_tile_heatmap_then_the_missing_chips_list():
    assert completeness_files("reports/x", ["r50.0_tile5", "r50.0_tile6"]) == [
        (
            "reports/x/heatmaps/r50.0_tile5.png",
            {"tile": "r50.0_tile5", "shows": "chip files by month"},
        ),
        (
            "reports/x/heatmaps/r50.0_tile6.png",
            {"tile": "r50.0_tile6", "shows": "chip files by month"},
        ),
        ("reports/x/missing_chips.csv", {"tile": "all", "shows": "missing chip files"}),
    ]


def test_heatmaps_are_redrawn_at_a_runs_end_only_when_missing_or_behind_the_snapshot(tmp_path):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(start_year=2020, end_year=2020, months=[7], products=["etasw"])
    settings = load_settings({**config, "reports_dir": str(tmp_path)}, read_schema(REPO))
    tile = next(iter(settings.tiles))
    present = Verification(settings, {tile: (CHIP,)}, {}, [], {}, [])
    missing = [ChipMonth(tile, CHIP, "etasw", 2020, 7)]
    write_reports(present)
    assert heatmaps_behind(str(tmp_path), [tile])  # never drawn
    render(str(tmp_path / "verification.json"), str(tmp_path))
    assert not heatmaps_behind(str(tmp_path), [tile])
    write_reports(present)  # the same verification: the snapshot is left as it was
    assert not heatmaps_behind(str(tmp_path), [tile])
    write_reports(Verification(settings, {tile: (CHIP,)}, {}, missing, {}, []))
    assert heatmaps_behind(str(tmp_path), [tile])
