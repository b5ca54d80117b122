from etm.rerun import rerun_command

# missing_chips: rerun. The model is rerun once per missing (tile, chip, year), then the
# checkpoint lets Snakemake look at that tile-year's chips again before its mosaics run.
# A rerun's output is a marker, never a chip: no Snakemake cleanup can delete a chip.


rule rerun_chip:
    output:
        marker=temp("reruns/{tile}/{year}/{chip}.json"),
    log:
        "logs/rerun_chip/{tile}/{year}/{chip}.log",
    conda:
        "../envs/etm.yaml"
    resources:
        containers=1,
    params:
        command=lambda wildcards: rerun_command(
            SETTINGS.chip_rerun_command,
            prefix=RUN.named(SETTINGS.tiles[wildcards.tile].prefixes[0]),
            **wildcards,
        ),
    message:
        "Rerun the model for tile {wildcards.tile}, {wildcards.chip}, {wildcards.year}"
    script:
        "../scripts/rerun_chip.py"


checkpoint chips_rerun:
    input:
        markers=lambda wildcards: [
            f"reruns/{wildcards.tile}/{wildcards.year}/{chip}.json"
            for chip in RUN.policy.rerun_chips(wildcards.tile, int(wildcards.year))
        ],
    output:
        record="reruns/{tile}/{year}.json",
    log:
        "logs/chips_rerun/{tile}/{year}.log",
    localrule: True
    conda:
        "../envs/etm.yaml"
    message:
        "Look again at tile {wildcards.tile}'s chips of {wildcards.year}"
    script:
        "../scripts/chips_rerun.py"
