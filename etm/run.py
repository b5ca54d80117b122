"""A run as each Snakemake process sees it, for ``rules/common.smk``.

The main process verifies the archive when the workflow loads, locks the output prefix
when jobs start, gathers the chips' findings and notifies when it ends. Job processes
parse the Snakefile again; they find a tile-month's chips from a narrow listing.
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from snakemake_interface_logger_plugins.common import LogEvent

from etm import batch, findings, plan, provenance, rerun, s3
from etm.config import Settings
from etm.errors import ConfigError, LedgerError, say
from etm.files import check_output_folders, read_regular, remove_leftovers, whole
from etm.inventory import JobInventories, Verification, verify, year_inventory
from etm.joblog import logged_errors
from etm.listing import LocalListing, StoredObject
from etm.lock import LOCK_NAME, RUN_VARIABLE, Holder, LockLostError, OutputLock
from etm.notify import error_message, failed_jobs, send, success_message
from etm.report import (
    FINDINGS_CSV,
    OUTDATED_CSV,
    SNAPSHOT_JSON,
    adopt_reports,
    heatmaps_behind,
    outdated_csv,
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


class OnJobStats(logging.Handler):
    """Says ``lines()`` once, when Snakemake logs its job stats: its DAG is built then, and
    its groups of jobs formed, in a dry run too (which calls no ``onstart``)."""

    def __init__(self, lines: Callable[[], list[str]]):
        super().__init__()
        self.lines, self.said = lines, False

    def emit(self, record: logging.LogRecord) -> None:
        is_stats = getattr(record, "event", None) == LogEvent.RUN_INFO and hasattr(record, "stats")
        if self.said or not is_stats:
            return
        self.said = True
        say(self.lines())


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

    #: Whether jobs run from the process's start: on S3, Snakemake's removals of published
    #: objects then leave them in place (:func:`etm.s3.replace_only`).
    runs_jobs = True

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
            if self.runs_jobs:
                s3.replace_only(settings.output)
        self.policy = plan.Policy()
        #: What the run publishes; known in the main process only (after verify).
        self.publications: list[plan.Publication] = []
        #: Names of the published tile-months to build again; known in the main process only.
        self.outdated: set[str] = set()
        self._chips: dict[tuple[str, str, int, int], tuple[list[str], list[str]]] = {}
        self.job_inventories = JobInventories(settings, self.listing)

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
    def index_files(self) -> list[str]:
        """Config paths of the Collections' indexes (:func:`etm.plan.index_hrefs`), each
        Collection's in turn."""
        output = self.settings.output
        return [f"{output}/{href}" for c in self.collections for href in plan.index_hrefs(c)]

    @property
    def catalog_options(self) -> dict:
        """The named parameters of :func:`etm.stac.write_catalog` known before the run:
        the Items' hrefs (in the order of the rule's inputs), where they are read from,
        the Collections, the license, and where the indexes say the output prefix is. On
        S3, the Items' texts are kept in the work area (:data:`etm.plan.KEPT_ITEMS`), for a
        catalog run from any machine."""
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
            base=plan.index_base(output, on_s3=self.on_s3, public_url=self.settings.public_url),
        )

    @property
    def regions(self) -> list[plan.Publication]:
        """The region periods the run publishes, each with its quicklook."""
        return [p for p in self.publications if p.tile is None]

    @property
    def quicklook_options(self) -> dict:
        """The named parameters of :func:`etm.quicklook.render_all` known before the run
        but its quicklooks: each region period's COG (read where it is, from S3 too),
        product, period and aggregation, in the order of :attr:`regions`; the tiles' COGs of
        one period, for their outlines; on S3, where a copy of each quicklook is kept."""
        regions, settings = self.regions, self.settings
        kept = plan.KEPT_QUICKLOOKS.format(work=self.work_prefix, output=settings.output)
        first = (
            plan.region_sources(settings, regions[0].product, regions[0].period)[0]
            if regions
            else []
        )
        return dict(
            cogs=[self.named(plan.published(settings, p.name, "tif")) for p in regions],
            products=[p.product for p in regions],
            periods=[str(p.period) for p in regions],
            aggregations=[plan.aggregation(settings, p.product, p.period) for p in regions],
            tiles=[self.named(path) for path in first],
            kept=[f"{kept}/{p.name}.png" for p in regions] if self.on_s3 else None,
        )

    def baseline_options(self, wildcards: dict[str, str]) -> dict:
        """The named parameters of :func:`etm.checks.write_baseline` for a tile's chips."""
        tile = wildcards["tile"]
        return dict(
            prefixes=[self.named(p) for p in self.settings.tiles[tile].prefixes],
            product=self.settings.products[0],
            chips=plan.chip_names(self.settings, tile),
            chip_size=self.settings.chip_size,
        )

    def rerun_command(self, wildcards: dict[str, str]) -> str:
        """The model's command line rerunning one chip and year (a rule's params)."""
        chip_rerun = self.chip_rerun(wildcards["tile"], int(wildcards["year"]))
        return chip_rerun.command(wildcards["chip"])

    def chip_rerun(self, tile: str, year: int) -> rerun.ChipRerun:
        """How the model is rerun for a chip of a tile-year (missing_chips: rerun)."""
        prefix = self.named(self.settings.tiles[tile].prefixes[0])
        return rerun.ChipRerun(self.settings.chip_rerun_command, tile, year, prefix)

    def rerun_markers(self, wildcards: dict[str, str]) -> list[str]:
        """The markers of a tile-year's chip reruns (an input function)."""
        tile, year = wildcards["tile"], wildcards["year"]
        chips = self.policy.rerun_chips(tile, int(year))
        marker = plan.kept(self.settings, rerun.MARKER)
        return [marker.format(tile=tile, year=year, chip=chip) for chip in chips]

    def month_chips(
        self, tile: str, product: str, year: int, month: int, after_reruns: AfterReruns
    ) -> tuple[list[StoredObject], list[str]]:
        """(chip files, config paths of chips still missing) of a tile-month."""
        at = (tile, product, year, month)
        if at not in self._chips:
            self._chips[at] = self._find_chips(*at, after_reruns)
        return self._chips[at]

    def _find_chips(
        self, tile: str, product: str, year: int, month: int, after_reruns: AfterReruns
    ) -> tuple[list[StoredObject], list[str]]:
        return self.job_inventories.month_files(tile, product, year, month), []

    def sources(
        self, tile: str | None, product: str, period: plan.Period, after_reruns: AfterReruns
    ) -> tuple[list[str], str]:
        """Config paths of a tile or (``tile`` None) region period's sources and COG."""
        if tile is None:
            return plan.region_sources(self.settings, product, period)

        def chip_files(month: int) -> list[str]:
            chips = self.month_chips(tile, product, period.year, month, after_reruns)[0]
            return [chip.path for chip in chips]

        return plan.tile_sources(self.settings, tile, product, period, chip_files)

    def outdated_inputs(
        self, tile: str | None, product: str, period: plan.Period, after_reruns: AfterReruns
    ) -> list[str]:
        """For a published tile-month whose chips changed since it was built, the list of
        such months the run keeps (:meth:`MainProcess._compare_provenance`): newer than its
        COG, it makes Snakemake build the month again (an input function)."""
        name = plan.Publication(product, period, tile).name
        return [plan.kept(self.settings, OUTDATED_CSV)] if name in self.outdated else []

    def period_plan(
        self, tile: str | None, product: str, period: plan.Period, after_reruns: AfterReruns
    ) -> plan.PeriodPlan:
        """The plan of a tile or (``tile`` None) region period (:class:`etm.plan.PeriodPlan`)."""
        paths, destination = self.sources(tile, product, period, after_reruns)
        sources, missing = [plan.Source(self.named(path)) for path in paths], []
        chip_rerun = None
        if tile and period.is_month:
            at = (tile, product, period.year, period.month)
            chips, missing = self.month_chips(*at, after_reruns)
            sources = [plan.Source(self.named(c.path), c.identity, c.mtime) for c in chips]
            if self.settings.missing_chips == "rerun":  # a chip deleted mid-run, too
                chip_rerun = self.chip_rerun(tile, period.year)
        tiles = [tile] if tile else list(self.settings.tiles)
        prefixes = [p for name in tiles for p in self.settings.tiles[name].prefixes]
        return plan.period_plan(
            self.settings, plan.Publication(product, period, tile), sources=sources,
            destination=self.named(destination), missing=[self.named(p) for p in missing],
            prefixes=[self.named(p) for p in prefixes], kept=self.kept, rerun=chip_rerun,
        )  # fmt: skip


#: Collections of the younger generations before a full one (Python's default: 10), once
#: jobs run. The main process holds Snakemake's DAG, millions of objects that live until
#: the run ends, and every full collection walks all of them again.
FULL_COLLECTIONS_AFTER = 1000
#: The same while Snakemake builds the DAG: none. Everything it makes then lives on (a dry
#: run of the team's archive made 4 full collections, 5.8 of its 170 s; its peak memory is
#: the same without them).
FULL_COLLECTIONS_WHILE_PLANNING = 2**31 - 1

#: Logs of failed container jobs a failed run reads for their errors, at most (one GET
#: each; a run whose every job failed says the first ones).
FAILED_LOGS_READ = 50


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


def watch_stops(noted: Callable[[str], None]) -> None:
    """Tell ``noted`` of a SIGTERM or an interrupt (Ctrl-C), for the run's end to say it was
    stopped; and run Snakemake's SIGTERM handler in a thread of its own.

    The handler (snakemake 9.27, ``JobScheduler.exit_gracefully``) takes the scheduler's
    lock, which the main thread holds while it uploads a job's outputs to S3: run in the
    main thread then, it waited for itself for good.
    """
    terminate, interrupt = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)

    def on_terminate(*args) -> None:
        noted("SIGTERM")
        if callable(terminate):
            threading.Thread(target=terminate, args=args, daemon=True).start()

    def on_interrupt(*args) -> None:
        noted("an interrupt (Ctrl-C)")
        if callable(interrupt):
            interrupt(*args)

    if callable(terminate):
        signal.signal(signal.SIGTERM, on_terminate)
    if callable(interrupt):
        signal.signal(signal.SIGINT, on_interrupt)


class MainProcess(Process):
    """The run as the main process sees it.

    Parameters
    ----------
    settings : Settings
    on_s3 : bool
        Whether config paths are ``bucket/prefix`` on S3 (a default storage provider).
    work_prefix : str or None
        As for :class:`Process`.
    local_storage : str
        Where Snakemake keeps local copies of the default storage's objects.
    """

    #: Jobs run from :meth:`start` on: until then, ``--delete-all-output`` removes.
    runs_jobs = False

    def __init__(
        self,
        settings: Settings,
        *,
        on_s3: bool,
        work_prefix: str | None = None,
        local_storage: str = ".snakemake/storage",
    ):
        super().__init__(settings, on_s3=on_s3, work_prefix=work_prefix)
        #: Where COGs are written before they are published: the output prefix, or on S3
        #: Snakemake's local copy of it (under ``local_storage``).
        self.staged_output = f"{local_storage}/{settings.output}" if on_s3 else settings.output
        gc.set_threshold(*gc.get_threshold()[:2], FULL_COLLECTIONS_WHILE_PLANNING)
        # At exit, dry runs too: Python's last collection would walk Snakemake's DAG to free
        # memory the process gives back whole (6 of a 40 s dry run at a quarter scale).
        atexit.register(gc.freeze)
        self.started = time.time()
        self.verification: Verification | None = None
        #: What stopped the run before its end (:func:`watch_stops`), if anything did.
        self.stopped_by: str | None = None
        #: Whether jobs run in AWS Batch containers, whose errors the terminal never saw.
        self.in_containers = False
        #: Each published tile-month's (build, digest) from the verifier's listing, and the
        #: ledger of what each was built from (:mod:`etm.provenance`).
        self.current: dict[str, tuple[str, str]] = {}
        self.ledger = provenance.Ledger()
        self.lock = OutputLock(settings.output, on_s3=on_s3, label=self.named(settings.output))
        #: This run, as its lock and its AWS Batch jobs' names will say.
        self.holder = Holder.this_run()
        batch.use_run(self.holder.run)
        os.environ[RUN_VARIABLE] = self.holder.run  # its jobs inherit it

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
        moved = []
        if self.settings.reports_dir == f"reports/{self.settings.key}":
            moved = (
                [note] if (note := adopt_reports(self.settings.output, str(self.reports))) else []
            )
        verification = verify(self.settings, self.listing)
        kept = findings.load(str(self.reports / findings.RECORDS))
        verification.findings = findings.current(kept, verification, self.named)
        self.verification = verification
        self.policy = plan.policy(self.settings, verification)
        self.publications = plan.publications(self.settings, self.policy.skipped)
        if not self.on_s3:  # before Snakemake looks into them
            check_output_folders(self._output_folders())
            check_output_folders([plan.kept(self.settings, "")], "run from another folder")
        check_output_folders([self.settings.reports_dir], "choose another reports_dir")
        self.lock.check_apart([("reports_dir", self.settings.reports_dir, False)])
        missing_csv = write_reports(verification)
        lines = [moved] * bool(moved) + summary_lines(verification)
        lines = terminal_lines(lines, TERMINAL_LINES, str(self.reports / "verifier.txt"))
        if verification.missing:
            lines.append(plan.missing_line(self.settings, len(verification.missing), missing_csv))
        if self.refuses:
            # No job runs, so the heatmaps are drawn here for the operator.
            render(str(self.reports / SNAPSHOT_JSON), str(self.reports))
            return lines
        if self.on_s3:
            # One listing of the outputs, and one of the tiles' baselines in the work area:
            # Snakemake's existence and time checks read them.
            self.listing.snapshot(self.settings.output)
            self.listing.snapshot(self.kept_path(plan.BASELINE.split("/")[0]))
        return lines + self._compare_provenance()

    def _output_folders(self) -> list[str]:
        """The local folders the run publishes files into."""
        published = (plan.published(self.settings, p.name, "tif") for p in self.publications)
        files = [*published, *self.collection_files]
        return [self.settings.output, *dict.fromkeys(os.path.dirname(path) for path in files)]

    def kept_path(self, template: str) -> str:
        """A path the run keeps for its output prefix (:func:`etm.plan.kept`), as the
        listing spells it: in the work area on S3."""
        path = plan.kept(self.settings, template)
        return f"{self.work_prefix}/{path}" if self.on_s3 else path

    def _ledger_path(self) -> str:
        return f"{self.settings.output}/{provenance.LEDGER}"

    def _current(self) -> dict[str, tuple[str, str]]:
        """Each published tile-month's (build, digest), from the verifier's listing."""
        if self.on_s3:
            found = {o.path for o in s3.SNAPSHOTS[self.settings.output].values()}
        else:
            found = {o.path for o in self.listing.walk(self.settings.output)}
        build = provenance.build(self.settings.cog["dtype"])
        current = {}
        for p in self.publications:
            at = (p.tile, p.product, p.period.year, p.period.month)
            cog = plan.published(self.settings, p.name, "tif")
            if (
                p.tile
                and p.period.is_month
                and cog in found
                and at not in self.verification.incomplete
            ):
                chips = self.verification.chip_files(*at)
                sources = ((self.named(chip.path), chip.identity) for chip in chips)
                current[p.name] = (build, provenance.digest(sources))
        return current

    def _read_ledger(self) -> provenance.Ledger:
        """The ledger, with the records written since it was last folded (a run killed before
        its end leaves them)."""
        name = self.named(self._ledger_path())
        if self.on_s3:
            data = s3.read(self._ledger_path(), missing_ok=True)
        else:
            try:  # zipped, it is never larger than unzipped
                data = read_regular(self._ledger_path(), provenance.MAX_LEDGER_BYTES)
            except FileNotFoundError:
                data = None
            except OSError as error:
                raise LedgerError(
                    f"the provenance ledger {name} cannot be read ({error.strerror}): move "
                    "what is in its place away"
                ) from None
        ledger = provenance.Ledger.parse(data, name)
        self._fold(ledger)
        return ledger

    def _fold(self, ledger: provenance.Ledger) -> int:
        folder = self.kept_path(plan.PROVENANCE_LOG.split("/")[0])
        if self.on_s3:
            client = s3.client()

            def read(found: StoredObject) -> bytes:
                return s3.read(found.path, using=client)
        else:

            def read(found: StoredObject) -> bytes:
                return Path(found.path).read_bytes()

        return ledger.fold(self.listing.walk(folder), folder, self.current.get, read)

    def _compare_provenance(self) -> list[str]:
        """Find the published tile-months whose chips are not those they were built from.

        Their list is written in the reports, and beside the run's logs (:attr:`outdated`):
        written now, newer than their COGs, it is an input of those months only, which
        Snakemake then builds again whatever their chips' times say. Its first line names
        this run: Snakemake takes an input whose content it has seen before (the checksums
        of its metadata) as unchanged, however new.
        """
        self.current = self._current()
        self.ledger = self._read_ledger()
        found = provenance.outdated(self.ledger, self.current)
        self.outdated = {o.name for o in found}
        text = outdated_csv(found)
        (self.reports / OUTDATED_CSV).write_text(text)
        if not found:
            return []
        marker, marked = self.kept_path(OUTDATED_CSV), f"# run {self.holder.run}\n{text}"
        if self.on_s3:
            s3.write(marker, marked.encode())
        else:
            Path(marker).parent.mkdir(parents=True, exist_ok=True)
            with whole(marker) as partial:
                Path(partial).write_text(marked)
        first = f"{'e.g. ' if len(found) > 1 else ''}{found[0].name}: {found[0].reason}"
        counted = "tile-month is" if len(found) == 1 else "tile-months are"
        return [
            f"{len(found)} published {counted} outdated, built again: {first} (list: "
            f"{self.reports / OUTDATED_CSV})"
        ]

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
            return verification.chip_files(tile, product, year, month), []
        after_reruns()
        chips = verification.expected[tile]
        inventory = year_inventory(self.settings, self.listing, tile, chips, [product], year)
        found = {chip: inventory.files.get((chip, product, year, month)) for chip in chips}
        return (
            [chip_file for chip_file in found.values() if chip_file],
            plan.still_missing(verification, found, tile, product, year, month),
        )

    def start(self, containers: tuple[str, str] | None = None) -> list[str]:
        """Jobs are about to start: lock the output prefix (see :mod:`etm.lock`), remove
        what a killed run left there, and let full garbage collections free what jobs
        leave (:data:`FULL_COLLECTIONS_AFTER`).

        Snakemake ends a run without ``onerror`` when the storage fails while it schedules
        jobs: the process's exit then says so, releases the lock (or asks for its removal)
        and notifies (:meth:`_end_at_exit`). A SIGTERM ends the run gracefully whenever it
        comes (:func:`watch_stops`).

        Parameters
        ----------
        containers : tuple of str, optional
            With profiles/aws, the region and job queue of the run's containers: the lock
            says so, for a run that finds it left (:meth:`_unended`).

        Returns
        -------
        list of str
            Notes for the terminal: a lock taken over, leftovers removed.
        """
        me = self.holder
        if containers:
            me = replace(me, batch=dict(zip(("region", "queue"), containers, strict=True)))
            self.in_containers = True
        logs = self.kept_path("").rstrip("/")
        if self.on_s3 and (chips := s3.protected_prefix(logs)):
            raise ConfigError(
                f"the work area s3://{self.work_prefix} (--default-storage-prefix) is inside "
                f"the input prefix s3://{chips}; the workflow never writes where chips are: "
                "choose another"
            )
        notes = [self.lock.acquire(me, unended=self._unended)]
        if self.on_s3:
            s3.replace_only(self.settings.output)
        self.lock.check_apart([("log folder", logs, self.on_s3)])
        partials, scratch = remove_leftovers(self.staged_output, tempfile.gettempdir(), LOCK_NAME)
        if partials or scratch:
            notes.append(
                f"removed what a killed run left: {partials} partial files under "
                f"{self.staged_output}, {scratch} scratch folders under {tempfile.gettempdir()}"
            )
        gc.set_threshold(*gc.get_threshold()[:2], FULL_COLLECTIONS_AFTER)
        atexit.register(self._end_at_exit)
        watch_stops(self._stopped)
        return [note for note in notes if note]

    @staticmethod
    def _unended(holder: Holder) -> str | None:
        """The line saying which Batch jobs of a gone run have not ended, if any have."""
        region, queue = holder.batch["region"], holder.batch["queue"]
        found = batch.unended(batch.client(region), queue, holder.run)
        return batch.describe_unended(found, queue, holder.run, region) if found else None

    def _release_lock(self) -> list[str]:
        try:
            self.lock.release()
        except LockLostError as error:
            return [str(error)]
        except Exception as error:  # the run's outcome stands; the lock can be removed
            return [
                f"the lock of {self.lock.label} was not removed ({error}); remove it with: "
                f"etm unlock {self.lock.label}"
            ]
        return []

    def _end_at_exit(self) -> None:
        """The process exits without Snakemake's ``onsuccess`` or ``onerror``: say so,
        release the lock and notify a failed run."""
        say(
            [
                "the run stopped before its end, on Snakemake's error above (the storage not "
                "answering, an interrupt); run again once it is fixed: what was published is kept"
            ],
            prefix="etm error: ",
        )
        say(self._release_lock() + self._notify(False, []), prefix="etm warning: ")

    def _stopped(self, by: str) -> None:
        self.stopped_by = self.stopped_by or by

    def end(self, succeeded: bool, snakemake_logs: Sequence[str]) -> list[str]:
        """The run ended: release the lock, gather findings, redraw the reports, notify,
        then let the process exit at once (:func:`exit_promptly`).

        Returns
        -------
        list of str
            Warnings for the terminal (suspect chips used, failed notifications).
        """
        atexit.unregister(self._end_at_exit)
        if not succeeded and self.stopped_by:
            say(
                [
                    f"the run was stopped by {self.stopped_by} before its end: the months "
                    "whose jobs had not ended are not published"
                    + (" (on S3, those published before keep their last version)" * self.on_s3)
                    + "; run again to build them"
                ],
                prefix="etm error: ",
            )
        lines: list[str] = []
        try:
            if not succeeded and self.in_containers:
                try:
                    say(self._said_in_containers(snakemake_logs), prefix="etm error: ")
                except Exception as error:  # the job logs hold them all the same
                    lines.append(f"the failed jobs' logs were not read: {error}")
            try:
                self._save_ledger()
            except Exception as error:  # the next run folds this run's records
                lines.append(f"the provenance records were not folded into the ledger: {error}")
            lines += self._release_lock()
            try:
                lines += self._gather_findings()
            except Exception as error:  # the run's outcome stands; its reports are only late
                lines.append(f"the chip checks' findings were not gathered: {error}")
            lines += self._notify(succeeded, snakemake_logs)
        except KeyboardInterrupt:
            lines.append(
                "interrupted (Ctrl-C) as the run ended: what it published stands; the next "
                "run folds its records into the ledger and redraws the reports"
            )
            lines += self._release_lock()
        exit_promptly()
        return lines

    def _said_in_containers(self, snakemake_logs: Sequence[str]) -> list[str]:
        """The errors of the jobs that failed in containers, from their logs in the work area
        (the first :data:`FAILED_LOGS_READ`): each said its one line in its container's log
        only."""
        text = "".join(Path(path).read_text() for path in snakemake_logs)
        logs = [path for job in failed_jobs(text) for path in job.logs][:FAILED_LOGS_READ]
        client, said = s3.client(), {}
        for path in logs:
            data = s3.read(path.removeprefix("s3://"), missing_ok=True, using=client) or b""
            said.update(dict.fromkeys(logged_errors(data.decode(errors="replace"))))
        return list(said)

    def _save_ledger(self) -> None:
        """Fold this run's provenance records into the ledger beside the COGs."""
        self._fold(self.ledger)
        data = self.ledger.dump()
        if self.on_s3:
            s3.write(self._ledger_path(), data)
        else:
            with whole(self._ledger_path()) as partial:
                Path(partial).write_bytes(data)

    def _gather_findings(self) -> list[str]:
        folder = self.kept_path(plan.FINDINGS_LOG.split("/")[0])
        if self.on_s3:
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
        """One message to the config's notify targets; a failure is a warning line, and
        the count of failed ones is in the line that sums them up."""
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
            failed = len(problems)
        except Exception as error:  # a notifier never fails the run
            problems, failed = [f"{type(error).__name__}: {error}"], len(targets)
        say([f"notifications of how the run ended: {len(targets) - failed} sent, {failed} failed"])
        return [f"notification failed: {problem}" for problem in problems]
