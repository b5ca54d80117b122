"""etm: verify the ET model's chips, then mosaic them into monthly Cloud-Optimized GeoTIFFs.

`snakemake -n` is the verifier: it lists every tile prefix once and reports every
missing chip before any job runs (see config/schema.yaml, key missing_chips).
"""

from snakemake.utils import min_version

min_version("9.27")


configfile: "config/config.yaml"


# Settings validated against config/schema.yaml; the verifier; input functions.
include: "rules/common.smk"
# One COG per tile, product and month; one per product and month for the whole region.
include: "rules/mosaic.smk"


rule all:
    default_target: True
    input:
        all_targets,
