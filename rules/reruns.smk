from etm import rerun

# missing_chips: rerun. The model is rerun once per missing (tile, chip, year), then the
# checkpoint lets Snakemake look at that tile-year's chips again before its mosaics run.
# A rerun's output is a marker, never a chip: no Snakemake cleanup can delete a chip.


rule rerun_chip:
    output:
        marker=temp(kept(rerun.MARKER)),
    log:
        kept("rerun_chip/{tile}/{year}/{chip}.log"),
    conda:
        "../envs/etm.yaml"
    resources:
        **plan.CONTAINER,
    params:
        command=RUN.rerun_command,
    script:
        "../scripts/rerun_chip.py"


checkpoint chips_rerun:
    input:
        markers=RUN.rerun_markers,
    output:
        record=kept(rerun.RECORD),
    log:
        kept("chips_rerun/{tile}/{year}.log"),
    localrule: True
    conda:
        "../envs/etm.yaml"
    script:
        "../scripts/chips_rerun.py"
