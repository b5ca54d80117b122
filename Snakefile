"""etm: verify the ET model's chips, then publish monthly (and yearly) COGs with a STAC catalog.

`snakemake -n` is the verifier: it lists every tile prefix once and reports every
missing chip before any job runs (see config/schema.yaml, key missing_chips).
"""

from snakemake.utils import min_version

min_version("9.27")


# The team's settings, unless --configfile names others: never merged with them, so that
# a config of one's own never publishes to the team's prefixes by omission.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# Settings validated against config/schema.yaml; the verifier; what to publish.
include: "rules/common.smk"
# missing_chips: rerun: the model is rerun for missing chips before their months.
include: "rules/reruns.smk"
# Per tile and period (month, or year with annual: true), then per region period:
# a COG and its STAC Item.
include: "rules/mosaic.smk"
# series_store: true. Per product, every published month in one Zarr store for time series.
include: "rules/series.smk"
# Completeness heatmaps; the STAC catalog of every published Item; the region's quicklook
# PNGs; the map page.
include: "rules/reports.smk"


rule all:
    default_target: True
    input:
        [published(p.name, "tif") for p in RUN.publications],
        rules.stac_catalog.output,
        rules.quicklooks.output,
        rules.map_page.output,
        [
            kept("series_store/{product}.json").format(product=product)
            for product in SETTINGS.products
            if SETTINGS.series_store
        ],
        # Local files even with a default storage provider, as the rule declares them.
        [local(str(heatmap)) for heatmap in rules.completeness.output],


# One run at a time writes an output prefix: its lock is taken when jobs start.
onstart:
    say(or_exit(RUN.start, batch_queue(workflow)))


# What each COG was built from into the ledger beside the COGs; findings of the chip checks
# into the reports; how the run ended, to the notify targets.
onsuccess:
    say(RUN.end(True, log), prefix="etm warning: ")


onerror:
    say(RUN.end(False, log), prefix="etm warning: ")
