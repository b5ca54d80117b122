"""Prefixes that would publish elsewhere than they say, and plans too large for memory, are
refused before any job with one line; output folders that cannot be written are named; a
chip's header is read before its pixels. Through the real snakemake CLI."""

from __future__ import annotations

import resource
import shutil
import subprocess

import pytest
import rasterio
from conftest import JULY, TILE5, TILE6, snakemake_command, unwritable

from etm.errors import MAX_LINE


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("etm error:")]


def refused(workspace, *args: str) -> str:
    """The one etm error line of a run that must stop before any job."""
    result = workspace.snakemake(*args)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    (line,) = error_lines(result)
    return line


def test_an_output_prefix_ending_in_whitespace_is_refused(workspace):
    workspace.config["enduser_cog_output"] = "out/ "
    assert refused(workspace) == (
        "etm error: config key 'enduser_cog_output': 'out/ ' has a folder name that begins or "
        "ends in whitespace (' '); write the prefix without it, or rename the folder"
    )
    assert not (workspace.root / "out").exists()


@pytest.mark.parametrize("odd", ["\u200b", "\n", "\x7f"], ids=["zero-width", "newline", "del"])
def test_an_output_prefix_holding_an_invisible_or_control_character_is_refused(workspace, odd):
    workspace.config["enduser_cog_output"] = f"ou{odd}t/"
    assert refused(workspace) == (
        f"etm error: config key 'enduser_cog_output': {f'ou{odd}t/'!r} has a folder name "
        f"holding U+{ord(odd):04X}, a control, invisible or unusual space character "
        f"({f'ou{odd}t'!r}); write the prefix without it, or rename the folder"
    )
    assert [path.name for path in workspace.root.iterdir() if path.name.startswith("ou")] == []


def test_an_output_prefix_that_is_a_url_is_refused_without_its_password(workspace):
    # It was a local folder `https:/user:PWSECRET9@...`, printed 29 times.
    workspace.config["enduser_cog_output"] = "https://user:PWSECRET9@hooks.example.com/x"
    result = workspace.snakemake("-n")
    assert result.returncode == 1 and "PWSECRET9" not in result.stdout + result.stderr
    assert error_lines(result) == [
        "etm error: config key 'enduser_cog_output': https://***@hooks.example.com/x is a "
        "https:// URL; a prefix is a local folder or s3://bucket/prefix"
    ]


def test_a_prefix_too_long_to_read_is_said_in_a_short_line(workspace):
    workspace.config["enduser_cog_output"] = "o" * 300_000 + "/"
    line = refused(workspace)
    assert len(line) < MAX_LINE + 100 and "characters left out]..." in line, line[:300]
    assert line.startswith("etm error: cannot list ooo") and line.endswith("File name too long")


@pytest.mark.parametrize("tail", ["..", "."])
def test_an_input_prefix_ending_in_a_dot_folder_is_refused(workspace, tail):
    prefix = workspace.prefix(TILE6) + tail
    workspace.config["unmosaicked_inputs"][1] = prefix
    assert refused(workspace, "-n") == (
        f"etm error: config key 'unmosaicked_inputs': {prefix!r} has a folder named {tail!r}; "
        "write the prefix without it, or rename the folder"
    )


def test_a_tile_folder_that_is_no_plain_name_is_refused(workspace):
    plain = workspace.root / workspace.prefix(TILE6)
    odd = plain.with_name("-tile6")
    plain.rename(odd)
    prefix = workspace.prefix(TILE6).replace(TILE6 + "/", "-tile6/")
    workspace.config["unmosaicked_inputs"][1] = prefix
    assert refused(workspace, "-n") == (
        f"etm error: config key 'unmosaicked_inputs': {prefix.rstrip('/')} holds tile "
        "'-tile6', which is not a plain folder name (letters, digits, '_', '.', '+', '-'; not "
        "starting with '.', '+' or '-'); rename the tile's folder"
    )


def test_an_output_year_folder_that_cannot_be_written_is_named_before_any_job(workspace):
    year = workspace.tile_cog(TILE6, "etasw", 2020, JULY).parent
    year.mkdir(parents=True)
    with unwritable(year):
        line = refused(workspace)
    assert line == (
        f"etm error: output folder out/tiles/{TILE6}/etasw/2020 cannot be written (permission "
        "denied); make it writable, or choose another enduser_cog_output"
    )
    assert workspace.published() == set()


def test_an_output_prefix_that_is_a_file_is_named_before_any_job(workspace):
    workspace.output.write_text("")
    assert refused(workspace, "-n") == (
        "etm error: output out is a file, where the run needs a folder; move the file away, or "
        "choose another enduser_cog_output"
    )


def test_tile_bounds_larger_than_a_tile_are_refused(workspace):
    """15,931 chips of one tile took 3.2 GB before a dry run died."""
    workspace.config["tiles"][TILE5]["bounds"] = [-180, -60, 180, 60]
    assert refused(workspace, "-n") == (
        f"etm error: config key 'tiles.{TILE5}.bounds': [-180, -60, 180, 60] span 360 x 120 "
        "degrees, more than a tile of the grid (10 x 10, tile_grid.size_deg); give the tile's "
        "own bounds"
    )


def test_a_tile_grid_of_too_many_chips_is_refused(workspace):
    workspace.config["tile_grid"] = {"size_deg": 200}
    assert refused(workspace, "-n") == (
        f"etm error: config: tile {TILE6} has up to 10,000 chips, x 2 products x 2 months: more "
        "than its completeness heatmap can draw (5,000 chips x products, 200,000 chip-months); "
        "check tile_grid.size_deg, chip_size_deg and the tile's bounds, or split the run by "
        "products or years"
    )


def test_a_plan_of_too_many_chip_months_is_refused(workspace):
    """300 tiles of 900 chips (30-degree tiles of 1-degree chips, say), a year of one product."""
    workspace.config.update(
        unmosaicked_inputs=[f"chips/tile{number}/" for number in range(300)],
        tiles={},
        tile_grid={"size_deg": 60},
        products=["etasw"],
        end_year=2020,
        months=list(range(1, 13)),
    )
    assert refused(workspace, "-n") == (
        "etm error: config: 3,240,000 chip-months (270,000 chips x 1 products x 12 months) are "
        "more than one run can plan (3,000,000); check tile_grid.size_deg and the tiles' "
        "bounds, or split the run by years or products"
    )


def declare_pixels(chip, size: int) -> None:
    """Rewrite a chip as a sparse file of ``size`` x ``size`` pixels of its own pixel size,
    from its own corner: a few hundred KB on disk, GBs once read."""
    with rasterio.open(chip) as source:
        profile = source.profile
    profile.update(width=size, height=size, tiled=True, blockxsize=512, blockysize=512)
    with rasterio.open(chip, "w", **profile, sparse_ok=True):
        pass


#: Address space of the Snakemake process (its jobs run in its threads): a run of the
#: workspace needs under a GiB; reading the declared pixels needs 6.7 GiB.
ADDRESS_SPACE = 3 << 30


def test_a_chip_declaring_too_many_pixels_is_refused_before_any_is_read(workspace):
    """A baseline month of 60,000 x 60,000 pixels: left out of its tile's baseline, and
    refused by its month's mosaic, by their headers."""
    workspace.config.update(products=["etasw"], end_year=2020)
    chip = workspace.chip(TILE6, "chip43.4N-102.8E", "etasw", 2020, JULY)
    declare_pixels(chip, 60_000)
    workspace.write_config()
    result = subprocess.run(
        snakemake_command(profile="local"),
        cwd=workspace.root,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE,) * 2),
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr
    name = str(chip.relative_to(workspace.root))
    assert error_lines(result) == [
        f"etm error: chip {name}: is 60000 x 60000 pixels: its east edge is 59903.1 pixels "
        "beyond its 2-degree square's (at most one pixel either way, as cut from the master "
        "lattice): it is cut short or padded, not this chip's file"
    ]
    baseline_log = workspace.logs / "chip_baseline" / f"{TILE6}.log"
    assert f"chip {name}: left out of the baseline: is 60000 x 60000 pixels" in (
        baseline_log.read_text()
    )
    assert workspace.published() == {f"tiles/{TILE5}/etasw/2020/etasw_202007.tif"}


def test_a_chip_declaring_blocks_larger_than_itself_is_refused_before_any_is_read(workspace):
    """GDAL reads a whole block at a time: blocks of 4,096 x 4,096 float64 pixels take 128
    MiB a read, however small the chip."""
    workspace.config.update(products=["etasw"], end_year=2020)
    chip = workspace.chip(TILE6, "chip43.4N-102.8E", "etasw", 2020, JULY)
    with rasterio.open(chip) as source:
        profile, values = source.profile, source.read()
    profile.update(tiled=True, blockxsize=4096, blockysize=4096, compress="deflate")
    with rasterio.open(chip, "w", **profile) as rewritten:
        rewritten.write(values)
    result = workspace.snakemake(profile="local")  # keep-going: the other tile's month too
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    name = str(chip.relative_to(workspace.root))
    size = f"{values.shape[2]} x {values.shape[1]}"
    assert error_lines(result) == [
        f"etm error: chip {name}: declares blocks of 4096 x 4096 pixels, larger than the chip "
        f"itself ({size}): GDAL would take 128 MiB to read one; rewrite it with blocks of at "
        "most its size, or rerun the chip"
    ]
    baseline_log = workspace.logs / "chip_baseline" / f"{TILE6}.log"
    assert f"chip {name}: left out of the baseline: declares blocks" in baseline_log.read_text()
    assert workspace.published() == {f"tiles/{TILE5}/etasw/2020/etasw_202007.tif"}


def test_a_reports_dir_that_is_a_file_is_named_before_any_job(workspace):
    (workspace.root / "reports.txt").write_text("")
    workspace.config["reports_dir"] = "reports.txt"
    assert refused(workspace, "-n") == (
        "etm error: output reports.txt is a file, where the run needs a folder; move the file "
        "away, or choose another reports_dir"
    )


def test_a_file_where_the_logs_folder_goes_is_named_before_any_job(workspace):
    (workspace.root / "logs").write_text("")
    assert refused(workspace, "-n") == (
        "etm error: output logs is a file, where the run needs a folder; move the file away, "
        "or run from another folder"
    )


def test_a_chip_file_whose_name_ends_in_a_newline_is_not_the_chip(workspace):
    # "$" matched before the final newline: it was read, and published, as the chip.
    workspace.config.update(products=["etasw"], end_year=2020)
    chip = workspace.chip(TILE6, "chip43.4N-102.8E", "etasw", 2020, JULY)
    chip.rename(chip.with_name(chip.name + "\n"))
    result = workspace.snakemake("-n")
    assert result.returncode == 1, result.stderr
    assert "1 missing" in result.stderr and "Traceback" not in result.stderr


def test_a_chip_folder_name_holding_a_newline_is_said_on_one_line(workspace):
    workspace.config.update(products=["etasw"], end_year=2020)
    chip = workspace.chip(TILE6, "chip43.4N-102.8E", "etasw", 2020, JULY)
    odd = chip.parents[1].with_name("chip43.4N-102.8E\netm: all fine")
    shutil.copytree(chip.parents[1], odd)
    result = workspace.snakemake("-n")
    assert result.returncode == 1 and "\netm: all fine" not in result.stderr, result.stderr
    (line,) = error_lines(result)
    assert "chip43.4N-102.8E\\netm: all fine" in line
