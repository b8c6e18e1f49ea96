"""The gather pipeline: source -> classify -> records -> sink, with a summary.

Runs are listed in the calling thread; each run's jobs (and failed jobs' logs) are
fetched by a bounded pool of workers, and records reach the sink in run order, run by
run, so an interruption keeps everything finished before it. The gatherer knows its
source only through the `Source` protocol: GitHub in production, memory in unit tests.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, TypeVar

from multivac.errors import GitHubError, LogPending
from multivac.model import (
    CANCELLED,
    FAILED_CONCLUSIONS,
    JOB_CANCELLED,
    LOG_UNAVAILABLE,
    SKIPPED,
    UNKNOWN_FAILURE,
    USUAL_CONCLUSIONS,
    Anomalies,
    Classification,
    Job,
    JobRecord,
    Record,
    Run,
    build_record,
    flaky_job_ids,
    packaged_prices,
)
from multivac.publish import publish
from multivac.sinks.base import Sink

if TYPE_CHECKING:
    from multivac.archive import LogArchive
    from multivac.classify import Catalog
    from multivac.minutes.billing import PriceTable
    from multivac.store import KnownRun, Store

T = TypeVar("T")


class Source(Protocol):
    """Where runs, jobs, logs and annotations come from."""

    def workflow_ids(self, repo: str, wanted: list[str]) -> list[tuple[int, str]]: ...

    def runs(
        self,
        repo: str,
        since: datetime | None,
        until: datetime,
        *,
        branches: list[str] | None = None,
        workflows: list[int] | None = None,
        event: str | None = None,
        latest: int | None = None,
    ) -> Iterator[Run]: ...

    def jobs(self, repo: str, run_id: int) -> list[Job] | None:
        """Every attempt's jobs of a run; None when the run was deleted."""
        ...

    def read_log(self, repo: str, job_id: int, consume: Callable[[Iterator[bytes]], T]) -> T | None:
        """`consume` over the log's bytes; None when the log is gone (expired, deleted).
        Raises `LogPending` when it cannot be read now, GitHubError when refused."""
        ...

    def annotations(self, repo: str, job_id: int) -> list[str]: ...


@dataclass(frozen=True)
class GatherOptions:
    repos: tuple[str, ...]
    since: datetime | None
    until: datetime
    latest: int | None = None
    branches: tuple[str, ...] = ()
    workflows: tuple[str, ...] = ()
    event: str | None = None
    lean: bool = False
    concurrency: int = 4
    fetch_logs: bool = True
    #: also write a `steps` point per completed step of each written job
    steps: bool = False
    #: also write a `runs` point per run attempt
    runs: bool = True
    #: bills the jobs' minutes (default: the packaged price table)
    prices: PriceTable | None = None


@dataclass
class Summary:
    runs: int = 0
    jobs: int = 0
    skipped_jobs: int = 0
    unfinished_jobs: int = 0
    vanished_runs: int = 0
    unchanged_runs: int = 0
    logs_unavailable: int = 0
    pending_jobs: int = 0
    #: job records by measurement
    measurements: Counter[str] = field(default_factory=Counter)
    #: points of the other record types (runs, steps) by measurement
    points: Counter[str] = field(default_factory=Counter)
    #: label sets of jobs billed as self-hosted for want of a known runner → jobs
    unknown_labels: Counter[str] = field(default_factory=Counter)
    anomalies: Anomalies = field(default_factory=Anomalies)
    odd_conclusions: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def records(self) -> int:
        return sum(self.measurements.values())


@dataclass(frozen=True)
class RunResult:
    run: Run
    jobs: tuple[Job, ...]
    records: tuple[Record, ...]
    classifications: dict[int, Classification]
    pending: dict[int, str] = field(default_factory=dict)  # job id -> why its log is unread
    vanished: bool = False
    fetched: bool = True  # False when it came from the store unchanged


class _Pending(Exception):
    """Internal: this job's log could not be read now."""


class Gatherer:
    def __init__(
        self,
        source: Source,
        options: GatherOptions,
        catalog: Catalog | None,
        *,
        summary: Summary | None = None,
        archive: LogArchive | None = None,
        notify: Callable[[str], None] | None = None,
        progress: Callable[[int], None] | None = None,
        on_total: Callable[[int], None] | None = None,
        store: Store | None = None,
    ) -> None:
        self.store = store
        self.source = source
        self.options = options
        self.catalog = catalog
        self.summary = summary if summary is not None else Summary()
        self.archive = archive
        self.notify = notify or (lambda _message: None)
        self.progress = progress or (lambda _n: None)
        self.on_total = on_total or (lambda _n: None)

    # ------------------------------------------------------------------ classification

    def _from_annotations(self, repo: str, job: Job) -> Classification | None:
        from multivac import classify

        assert self.catalog is not None
        try:
            messages = self.source.annotations(repo, job.id)
        except GitHubError as exc:
            self.notify(f"job {job.id}: {exc}")
            return None
        return classify.classify_annotations(messages, self.catalog)

    def _from_log(self, repo: str, job: Job) -> tuple[Classification | None, str] | None:
        """(classification, context) from the job's log; None when the log is gone.
        Raises _Pending when it cannot be read now."""
        from multivac import classify

        assert self.catalog is not None
        catalog = self.catalog
        failed = job.failed_step

        archive = self.archive

        def scan(chunks: Iterator[bytes]) -> tuple[Classification | None, str]:
            if archive is not None:
                chunks = archive.tee(job.id, chunks)  # kept in the same pass
            return classify.scan_log(
                chunks,
                catalog,
                steps=[step.name for step in job.steps],
                failed_step_number=failed.number if failed else None,
            )

        try:
            return self.source.read_log(repo, job.id, scan)
        except LogPending as exc:
            self.notify(f"job {job.id}: {exc}")
            raise _Pending(str(exc)) from None
        except GitHubError as exc:
            # GitHub refused this one log (not the budget): the job keeps a record
            self.notify(f"job {job.id}: {exc}")
            return None

    def _classify(self, repo: str, job: Job) -> Classification | None:
        """Why a failed or cancelled job ended; a placeholder when nothing tells."""
        if self.catalog is None or not self.options.fetch_logs:
            return None
        if job.conclusion == JOB_CANCELLED:
            # a job past timeout-minutes is reported cancelled: only annotations tell
            cause = self._from_annotations(repo, job)
            return cause or Classification(CANCELLED, "", None, None, "")
        if job.conclusion not in FAILED_CONCLUSIONS:
            return None
        read = self._from_log(repo, job)
        found, context = read if read is not None else (None, "")
        if found is None:
            found = self._from_annotations(repo, job)
        if found is not None:
            return found
        failed = job.failed_step
        step = failed.name if failed else None
        if read is None:
            with self.summary.lock:
                self.summary.logs_unavailable += 1
            return Classification(LOG_UNAVAILABLE, LOG_UNAVAILABLE, step, None, "")
        return Classification(UNKNOWN_FAILURE, "", step, None, "", context)

    # ------------------------------------------------------------------ one run

    def process_run(
        self,
        run: Run,
        previous: dict[int, Classification] | None = None,
        known: KnownRun | None = None,
    ) -> RunResult:
        """Fetch a run's jobs (and the logs of failures `previous` does not classify) and
        build its records. A `known` run is unchanged on GitHub: only its pending jobs'
        logs are read again. Runs in a worker thread: no store access here."""
        if known is not None:
            return self.build(run, known.jobs, known.classifications, fetched=True)
        jobs = self.source.jobs(run.repository, run.id)
        if jobs is None:
            with self.summary.lock:
                self.summary.vanished_runs += 1
            return RunResult(run, (), (), {}, vanished=True)
        return self.build(run, jobs, previous or {}, fetched=True)

    def build(
        self,
        run: Run,
        jobs: list[Job],
        previous: dict[int, Classification],
        *,
        fetched: bool,
    ) -> RunResult:
        """Records of a run's jobs; classifies (when `fetched`) the jobs `previous` does
        not know yet. A job whose log cannot be read now gets no record: it is pending.
        With the options' `steps` and `runs`, the records also hold the written jobs'
        steps and the run's attempts."""
        from multivac.minutes.records import run_records, step_records

        opts = self.options
        prices = opts.prices or packaged_prices()
        flaky = flaky_job_ids(jobs)
        records: list[Record] = []
        classifications: dict[int, Classification] = {}
        pending: dict[int, str] = {}
        anomalies = Anomalies()
        skipped = unfinished = 0
        odd: Counter[str] = Counter()
        unknown: Counter[str] = Counter()
        for job in jobs:
            if job.conclusion == SKIPPED:
                skipped += 1
                continue
            if job.status != "completed" or job.conclusion is None:
                unfinished += 1
                continue
            classification: Classification | None = previous.get(job.id)
            if classification is None and fetched:
                try:
                    classification = self._classify(run.repository, job)
                except _Pending as exc:
                    pending[job.id] = str(exc)
                    continue
            if classification is not None:
                classifications[job.id] = classification
            record = build_record(
                run,
                job,
                classification,
                lean=opts.lean,
                flaky=job.id in flaky,
                anomalies=anomalies,
                prices=prices,
            )
            if record is None:
                continue
            if job.conclusion not in USUAL_CONCLUSIONS:
                odd[job.conclusion] += 1
            if prices.runner(job.labels, job.runner_group).unknown:
                unknown[",".join(job.labels) or "(no labels)"] += 1
            records.append(record)
            if opts.steps:
                records.extend(step_records(job, record, lean=opts.lean))
        if opts.runs:
            known = {**previous, **classifications}
            records.extend(run_records(run, jobs, known, prices=prices, anomalies=anomalies))
        with self.summary.lock:
            self.summary.runs += 1
            self.summary.jobs += len(jobs)
            self.summary.skipped_jobs += skipped
            self.summary.unfinished_jobs += unfinished
            self.summary.pending_jobs += len(pending)
            self.summary.anomalies.merge(anomalies)
            self.summary.odd_conclusions.update(odd)
            self.summary.unknown_labels.update(unknown)
        return RunResult(
            run, tuple(jobs), tuple(records), classifications, pending, fetched=fetched
        )

    # ------------------------------------------------------------------ all runs

    def runs(self) -> Iterator[Run]:
        opts = self.options
        for repo in opts.repos:
            workflow_ids: list[int] | None = None
            if opts.workflows:
                workflow_ids = [
                    wid for wid, _ in self.source.workflow_ids(repo, list(opts.workflows))
                ]
            yield from self.source.runs(
                repo,
                opts.since,
                opts.until,
                branches=list(opts.branches) or None,
                workflows=workflow_ids,
                event=opts.event,
                latest=opts.latest,
            )

    def results(self) -> Iterator[RunResult]:
        """Each run's result, in listing order, computed `concurrency` runs at a time."""
        width = max(1, self.options.concurrency)
        pending: deque[Future[RunResult]] = deque()
        store = self.store
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix="multivac") as pool:
            try:
                for run in self.runs():
                    known = store.known_run(run) if store is not None else None
                    if known is not None and self.options.steps and _lacks_step_times(known):
                        known = None  # stored before steps had times: fetch its jobs again
                    if known is not None and not known.pending:
                        done: Future[RunResult] = Future()
                        done.set_result(
                            self.build(run, known.jobs, known.classifications, fetched=False)
                        )
                        pending.append(done)
                    elif known is not None:
                        pending.append(pool.submit(self.process_run, run, None, known))
                    else:
                        previous = store.classifications_of(run.id) if store is not None else {}
                        pending.append(pool.submit(self.process_run, run, previous))
                    self.on_total(1)
                    while len(pending) >= width * 2:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:
                for future in pending:
                    future.cancel()

    def stream(self) -> Iterator[RunResult]:
        """Each run's result, for the caller to write before asking for the next; the
        run is remembered in the store only then, so a run whose records were not
        written (an error, a consumer that stopped) is fetched and written again."""
        for result in self.results():
            yield result
            with self.summary.lock:
                for record in result.records:
                    if isinstance(record, JobRecord):
                        self.summary.measurements[record.measurement] += 1
                    else:
                        self.summary.points[record.measurement] += 1
            if self.store is not None and result.fetched and not result.vanished:
                self.store.save_run(result.run, result.jobs, result.classifications, result.pending)
            if not result.fetched:
                with self.summary.lock:
                    self.summary.unchanged_runs += 1
            self.progress(1)

    def run(self, sink: Sink) -> Summary:
        """Write each run's records, then remember the run: a kill between the two only
        means the run is fetched and written again (points are idempotent)."""
        for result in self.stream():
            publish(sink, result.records, self.store)
        return self.summary


def _lacks_step_times(known: KnownRun) -> bool:
    """True for a run stored by a multivac that kept no step times."""
    return any(
        step.conclusion is not None and step.started_at is None
        for job in known.jobs
        for step in job.steps
    )


__all__ = [
    "GatherOptions",
    "Gatherer",
    "RunResult",
    "Source",
    "Summary",
]
