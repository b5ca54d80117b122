import re
import sys
from pathlib import Path

import yaml

from etm.config import load_settings
from etm.errors import EtmError
from etm.inventory import month_chip_paths, verify
from etm.listing import LocalListing
from etm.report import summary_lines, write_reports


def or_exit(step, *arguments):
    """Run a load-time step; an etm error becomes one line on stderr and exit status 1."""
    try:
        return step(*arguments)
    except EtmError as error:
        print(f"etm error: {error}", file=sys.stderr)
        sys.exit(1)


SCHEMA = yaml.safe_load((Path(workflow.basedir) / "config" / "schema.yaml").read_text())
SETTINGS = or_exit(load_settings, config, SCHEMA)
LISTING = LocalListing()
TILE_COG = f"{SETTINGS.output}/tiles/{{tile}}/{{product}}/{{year}}/{{product}}_{{year}}{{month}}.tif"
REGION_COG = (
    f"{SETTINGS.output}/mosaic/{{product}}/{{year}}/{{product}}_{{year}}{{month}}.tif"
)


wildcard_constraints:
    tile="|".join(re.escape(tile) for tile in SETTINGS.tiles),
    product="|".join(SETTINGS.products),
    year=r"\d{4}",
    month=r"\d{2}",


def verify_chips():
    """List every tile prefix once; report; stop if chips are missing and that is an error."""
    verification = or_exit(verify, SETTINGS, LISTING)
    missing_csv = write_reports(verification)
    print(
        "\n".join(f"etm: {line}" for line in summary_lines(verification)),
        file=sys.stderr,
    )
    if verification.missing:
        action = (
            "no job was started; rerun the model for them, or set missing_chips: skip "
            "to build the complete months only"
            if SETTINGS.missing_chips == "error"
            else "their months were left out (missing_chips: skip)"
        )
        print(
            f"etm: {len(verification.missing)} chip files missing; {action}. "
            f"Full list: {missing_csv}",
            file=sys.stderr,
        )
        if SETTINGS.missing_chips == "error":
            sys.exit(1)
    return verification


# Job processes parse this file again; only the main process lists the archive.
if workflow.is_main_process:
    VERIFICATION = verify_chips()
    if "containers" not in workflow.global_resources:
        workflow.register_resource("containers", SETTINGS.max_concurrent_containers)


def month_args(wildcards):
    return wildcards.product, int(wildcards.year), int(wildcards.month)


def tile_chips(wildcards):
    """The chips of one tile-month: from the verifier's listing, or in a job, a narrow one."""
    if workflow.is_main_process:
        return VERIFICATION.chip_paths(wildcards.tile, *month_args(wildcards))
    return or_exit(
        month_chip_paths, SETTINGS, LISTING, wildcards.tile, *month_args(wildcards)
    )


def all_targets(wildcards):
    """Every tile and region COG whose chips are complete."""
    incomplete = VERIFICATION.incomplete
    targets = []
    for product in SETTINGS.products:
        for year in SETTINGS.years:
            for month in SETTINGS.months:
                when = dict(product=product, year=year, month=f"{month:02d}")
                tiles = [
                    t
                    for t in SETTINGS.tiles
                    if (t, product, year, month) not in incomplete
                ]
                targets += [TILE_COG.format(tile=tile, **when) for tile in tiles]
                if len(tiles) == len(SETTINGS.tiles):
                    targets.append(REGION_COG.format(**when))
    return targets
