"""The verifier's grouped summary."""

from etm.grid import Chip
from etm.inventory import ChipMonth
from etm.report import missing_lines

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
