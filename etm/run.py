"""A run as each Snakemake process sees it, for ``rules/common.smk``.

The main process verifies the archive when the workflow loads, locks the output prefix
when jobs start, gathers the chips' findings and notifies when it ends. Job processes
parse the Snakefile again; they find a tile-month's chips from a narrow listing.
"""

from __future__ import annotations

import atexit
import gc
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from etm import findings, plan, rerun, s3
from etm.config import Settings
from etm.errors import EtmError, say
from etm.inventory import Verification, month_chip_paths, month_inventory, verify
from etm.listing import LocalListing, StoredObject
from etm.lock import OutputLock
from etm.notify import error_message, failed_jobs, send, success_message
from etm.report import (
    FINDINGS_CSV,
    SNAPSHOT_JSON,
    heatmaps_behind,
    render,
    summary_lines,
    terminal_lines,
    write_reports,
)

#: Lines of the verifier's summary printed on the terminal; all are in verifier.txt.
TERMINAL_LINES = 40

#: Called before a tile-month's chips are listed again after reruns of the model; raises
#: (Snakemake's checkpoint) until the reruns ran.
AfterReruns = Callable[[], object]


def or_exit(step: Callable, *arguments, **options):
    """Run a step of the workflow's setup; an etm error becomes one line and exit status 1."""
    try:
        return step(*arguments, **options)
    except EtmError as error:
        say([str(error)], prefix="etm error: ")
        sys.exit(1)


class Process:
    """What both kinds of process know: the settings, and what each period is made of.

    Parameters
    ----------
    settings : Settings
    on_s3 : bool
        Whether config paths are ``bucket/prefix`` on S3 (a default storage provider).
    work_prefix : str or None
        Snakemake's default storage prefix (``s3://bucket/prefix``), where job logs go.
    """

    def __init__(self, settings: Settings, *, on_s3: bool, work_prefix: str | None = None):
        self.settings, self.on_s3 = settings, on_s3
        self.work_prefix = (work_prefix or "").removeprefix("s3://").rstrip("/")
        #: Where the STAC catalog's Items are kept in the work area, on S3 only.
        self.kept = (
            plan.KEPT_ITEMS.format(work=self.work_prefix, output=settings.output) if on_s3 else None
        )
        self.listing = s3.S3Listing() if on_s3 else LocalListing()
        if on_s3:  # the chips are read-only for every storage operation of the process
            s3.protect(p for tile in settings.tiles.values() for p in tile.prefixes)
        self.policy = plan.Policy()
        #: What the run publishes; known in the main process only (after verify).
        self.publications: list[plan.Publication] = []
        self._chips: dict[tuple[str, str, int, int], tuple[list[str], list[str]]] = {}

    def named(self, path: str) -> str:
        """A config path as the user knows it: an S3 URL, or a local path."""
        return f"s3://{path}" if self.on_s3 else path

    @property
    def collections(self) -> list[str]:
        """The STAC Collections of what the run publishes (:func:`etm.plan.collections`)."""
        return plan.collections(self.settings, self.publications)

    @property
    def collection_files(self) -> list[str]:
        """Config paths of the Collections' files."""
        return [f"{self.settings.output}/{plan.collection_href(c)}" for c in self.collections]

    @property
    def catalog_options(self) -> dict:
        """The named parameters of :func:`etm.stac.write_catalog` known before the run:
        the Items' hrefs (in the order of the rule's inputs), where they are read from,
        the Collections and the license. On S3, the Items' texts are kept in the work area
        (:data:`etm.plan.KEPT_ITEMS`), for a catalog run from any machine."""
        output = self.settings.output
        return dict(
            hrefs=[f"{p.name}.json" for p in self.publications],
            on_s3=output if self.on_s3 else None,
            kept=self.kept,
            kept_by_region=[p.kept_items(self.kept) for p in self.publications]
            if self.kept
            else None,
            collections=self.collections,
            license=self.settings.license,
            license_url=self.settings.license_url,
        )

    def baseline_options(self, wildcards: dict[str, str]) -> dict:
        """The named parameters of :func:`etm.checks.write_baseline` for a tile's chips."""
        tile = wildcards["tile"]
        return dict(
            prefixes=[self.named(p) for p in self.settings.tiles[tile].prefixes],
            product=self.settings.products[0],
            chips=plan.chip_names(self.settings, tile),
        )

    def rerun_command(self, wildcards: dict[str, str]) -> str:
        """The model's command line rerunning one chip and year (a rule's params)."""
        prefix = self.named(self.settings.tiles[wildcards["tile"]].prefixes[0])
        return rerun.rerun_command(self.settings.chip_rerun_command, prefix=prefix, **wildcards)

    def rerun_markers(self, wildcards: dict[str, str]) -> list[str]:
        """The markers of a tile-year's chip reruns (an input function)."""
        tile, year = wildcards["tile"], wildcards["year"]
        chips = self.policy.rerun_chips(tile, int(year))
        return [rerun.MARKER.format(tile=tile, year=year, chip=chip) for chip in chips]

    def month_chips(
        self, tile: str, product: str, year: int, month: int, after_reruns: AfterReruns
    ) -> tuple[list[str], list[str]]:
        """(chip files, chips still missing) of a tile-month, as config paths."""
        at = (tile, product, year, month)
        if at not in self._chips:
            self._chips[at] = self._find_chips(*at, after_reruns)
        return self._chips[at]

    def _find_chips(
        self, tile: str, product: str, year: int, month: int, after_reruns: AfterReruns
    ) -> tuple[list[str], list[str]]:
        return month_chip_paths(self.settings, self.listing, tile, product, year, month), []

    def sources(
        self, tile: str | None, product: str, period: plan.Period, after_reruns: AfterReruns
    ) -> tuple[list[str], str]:
        """Config paths of a tile or (``tile`` None) region period's sources and COG."""
        if tile is None:
            return plan.region_sources(self.settings, product, period)

        def chip_files(month: int) -> list[str]:
            return self.month_chips(tile, product, period.year, month, after_reruns)[0]

        return plan.tile_sources(self.settings, tile, product, period, chip_files)

    def publish_options(
        self, tile: str | None, product: str, period: plan.Period, after_reruns: AfterReruns
    ) -> dict:
        """The named parameters of :func:`etm.publish.publish` for a tile or region period."""
        sources, destination = self.sources(tile, product, period, after_reruns)
        missing = []
        if tile and period.is_month:
            missing = self.month_chips(tile, product, period.year, period.month, after_reruns)[1]
        tiles = [tile] if tile else list(self.settings.tiles)
        prefixes = [p for name in tiles for p in self.settings.tiles[name].prefixes]
        return plan.publish_options(
            self.settings, tile=tile, product=product, period=period, sources=sources,
            names=[self.named(p) for p in sources], destination=self.named(destination),
            missing=[self.named(p) for p in missing],
            prefixes=[self.named(p) for p in prefixes], kept=self.kept,
        )  # fmt: skip


#: Collections of the younger generations before a full one (Python's default: 10), once
#: jobs run. The main process holds Snakemake's DAG, millions of objects that live until
#: the run ends, and every full collection walks all of them again.
FULL_COLLECTIONS_AFTER = 1000
#: The same while Snakemake builds the DAG: none. Everything it makes then lives on (a dry
#: run of the team's archive made 4 full collections, 5.8 of its 170 s; its peak memory is
#: the same without them).
FULL_COLLECTIONS_WHILE_PLANNING = 2**31 - 1


def exit_promptly() -> None:
    """Once the run has ended, cancel the timers Snakemake's scheduler left waiting.

    With ``max-jobs-per-timespan`` (300/3s in the profiles), each pass of the scheduler
    starts a ``threading.Timer`` of the timespan to wake it again (snakemake 9.27,
    ``JobScheduler._schedule_reevalutation``), and Python waits for the last one before the
    process exits: up to 3 s idle.
    """
    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer):
            thread.cancel()


class MainProcess(Process):
    """The run as the main process sees it.

    Parameters
    ----------
    settings : Settings
    on_s3 : bool
        Whether config paths are ``bucket/prefix`` on S3 (a default storage provider).
    work_prefix : str or None
        As for :class:`Process`.
    """

    def __init__(self, settings: Settings, *, on_s3: bool, work_prefix: str | None = None):
        super().__init__(settings, on_s3=on_s3, work_prefix=work_prefix)
        gc.set_threshold(*gc.get_threshold()[:2], FULL_COLLECTIONS_WHILE_PLANNING)
        # At exit, dry runs too: Python's last collection would walk Snakemake's DAG to free
        # memory the process gives back whole (6 of a 40 s dry run at a quarter scale).
        atexit.register(gc.freeze)
        self.started = time.time()
        self.verification: Verification | None = None
        self.lock = OutputLock(settings.output, on_s3=on_s3, label=self.named(settings.output))

    @property
    def reports(self) -> Path:
        return Path(self.settings.reports_dir)

    def verify(self) -> list[str]:
        """List every tile prefix once, compare with the expected chips, write the reports.

        Returns
        -------
        list of str
            The summary for the terminal, its last line saying what the policy does with
            the missing chips.
        """
        verification = verify(self.settings, self.listing)
        kept = findings.load(str(self.reports / findings.RECORDS))
        verification.findings = findings.current(kept, verification, self.named)
        self.verification = verification
        self.policy = plan.policy(self.settings, verification)
        self.publications = plan.publications(self.settings, self.policy.skipped)
        missing_csv = write_reports(verification)
        lines = summary_lines(verification)
        lines = terminal_lines(lines, TERMINAL_LINES, str(self.reports / "verifier.txt"))
        if verification.missing:
            lines.append(plan.missing_line(self.settings, len(verification.missing), missing_csv))
        if self.refuses:
            # No job runs, so the heatmaps are drawn here for the operator.
            render(str(self.reports / SNAPSHOT_JSON), str(self.reports))
        elif self.on_s3:
            # One listing of the outputs, and one of the tiles' baselines in the work area:
            # Snakemake's existence and time checks read them.
            self.listing.snapshot(self.settings.output)
            if self.work_prefix:
                self.listing.snapshot(f"{self.work_prefix}/{plan.BASELINE.split('/')[0]}")
        return lines

    @property
    def refuses(self) -> bool:
        """Whether missing chips stop the run before any job (missing_chips: error)."""
        return bool(self.verification.missing) and self.settings.missing_chips == "error"

    def _find_chips(
        self, tile: str, product: str, year: int, month: int, after_reruns: AfterReruns
    ) -> tuple[list[str], list[str]]:
        """From the verifier's listing; for a month whose chips the model is rerun for
        (missing_chips: rerun), from a new listing of its chips once ``after_reruns``
        returns."""
        verification = self.verification
        if (tile, product, year, month) not in verification.incomplete:
            return verification.chip_paths(tile, product, year, month), []
        after_reruns()
        chips = verification.expected[tile]
        inventory = month_inventory(self.settings, self.listing, tile, chips, product, year)
        found = {chip: inventory.files.get((chip, product, year, month)) for chip in chips}
        return (
            [chip_file.path for chip_file in found.values() if chip_file],
            plan.still_missing(verification, found, tile, product, year, month),
        )

    def start(self) -> str | None:
        """Jobs are about to start: lock the output prefix (see :mod:`etm.lock`), and let
        full garbage collections free what jobs leave (:data:`FULL_COLLECTIONS_AFTER`).

        Snakemake ends a run without ``onerror`` when the storage fails while it schedules
        jobs; the lock is then released, or its removal asked for, at the process's exit.
        """
        note = self.lock.acquire()
        gc.set_threshold(*gc.get_threshold()[:2], FULL_COLLECTIONS_AFTER)
        atexit.register(self._release_at_exit)
        return note

    def _release_lock(self) -> list[str]:
        try:
            self.lock.release()
        except Exception as error:  # the run's outcome stands; the lock can be removed
            return [
                f"the lock of {self.lock.label} was not removed ({error}); remove it with: "
                f"etm unlock {self.lock.label}"
            ]
        return []

    def _release_at_exit(self) -> None:
        say(self._release_lock(), prefix="etm warning: ")

    def unbuilt(self) -> str | None:
        """After a run of every target: a line naming the run's COGs that are still missing.

        Snakemake 9 may leave a tile's months out of a run in which it reran the tile's
        chip_baseline for a changed code or params (their input is ``ancient``, snakemake
        issue #4166), and still end with success.
        """
        cogs = [plan.published(self.settings, p.name, "tif") for p in self.publications]
        if self.on_s3:
            found = {o.path for o in s3.S3Listing().walk(self.settings.output)}
            missing = [cog for cog in cogs if cog not in found]
        else:
            missing = [cog for cog in cogs if not Path(cog).exists()]
        if not missing:
            return None
        return (
            f"{len(missing)} of the run's {len(cogs)} COGs were not built, e.g. "
            f"{self.named(missing[0])}: Snakemake left them out after rerunning a tile's "
            "chip_baseline (snakemake issue #4166); run the same command again to build them"
        )

    def end(self, succeeded: bool, snakemake_logs: Sequence[str]) -> list[str]:
        """The run ended: release the lock, gather findings, redraw the reports, notify,
        then let the process exit at once (:func:`exit_promptly`).

        Returns
        -------
        list of str
            Warnings for the terminal (suspect chips used, failed notifications).
        """
        atexit.unregister(self._release_at_exit)
        lines = self._release_lock()
        try:
            lines += self._gather_findings()
        except Exception as error:  # the run's outcome stands; its reports are only late
            lines.append(f"the chip checks' findings were not gathered: {error}")
        lines += self._notify(succeeded, snakemake_logs)
        exit_promptly()
        return lines

    def _gather_findings(self) -> list[str]:
        folder = plan.FINDINGS_LOG.split("{", 1)[0].rstrip("/")
        if self.on_s3:
            folder = f"{self.work_prefix}/{folder}"
            client = s3.client()

            def read(log: StoredObject) -> str:
                bucket, key = s3.split(log.path)
                return client.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        else:

            def read(log: StoredObject) -> str:
                return Path(log.path).read_text()

        new = findings.gather(self.listing, folder, self.started - 1, read)
        if not new:
            return []
        path = str(self.reports / findings.RECORDS)
        kept = {**findings.load(path), **new}
        findings.save(path, kept)
        verification = self.verification
        verification.findings = findings.current(kept, verification, self.named)
        write_reports(verification)
        if heatmaps_behind(str(self.reports), self.settings.tiles):
            render(str(self.reports / SNAPSHOT_JSON), str(self.reports))
        published = [f for found in new.values() for f in found if f.status == "suspect"]
        if published and self.settings.suspect_chips == "warn":
            return [
                f"{len(published)} suspect chip files were used (suspect_chips: warn); list: "
                f"{self.reports / FINDINGS_CSV}"
            ]
        return []

    def _notify(self, succeeded: bool, snakemake_logs: Sequence[str]) -> list[str]:
        """One message to the config's notify targets; a failure is a warning line."""
        targets = self.settings.notify
        if not targets:
            return []
        missing = len(self.verification.missing)
        output = self.named(self.settings.output)
        try:
            if succeeded:
                skipped = sorted(
                    f"{tile} {product} {year}-{month:02d}"
                    for tile, product, year, month in self.policy.skipped
                )
                message = success_message(output, len(self.publications), skipped, missing)
            else:
                text = "".join(Path(path).read_text() for path in snakemake_logs)
                message = error_message(output, failed_jobs(text), missing, snakemake_logs)
            problems = send(message, targets.get("sns_topic_arn"), targets.get("webhook_url"))
        except Exception as error:  # a notifier never fails the run
            problems = [f"{type(error).__name__}: {error}"]
        return [f"notification failed: {problem}" for problem in problems]
