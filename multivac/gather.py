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
from dataclasses import dataclass, field, replace
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
from multivac.testresults.runs import JobTests, RunArtifacts, TestTally

if TYPE_CHECKING:
    from multivac.archive import LogArchive
    from multivac.classify import Catalog
    from multivac.minutes.billing import PriceTable
    from multivac.store import KnownRun, Store
    from multivac.testresults.artifacts import ArtifactRef
    from multivac.testresults.parsers import ParserSet

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

    def artifacts(self, repo: str, run_id: int) -> list[ArtifactRef]:
        """A run's artifacts (for `--junit-artifacts`)."""
        ...

    def read_artifact(
        self, repo: str, artifact_id: int, consume: Callable[[Iterator[bytes]], T]
    ) -> T | None:
        """`consume` over an artifact's zip; None when it expired or is gone."""
        ...


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
    junit_artifacts: str | None = None  # a glob over artifact names (opt-in)
    test_summary: bool = False  # a test_summary point per job with test results
    #: also write a `steps` point per completed step of each written job
    steps: bool = False
    #: also write a `runs` point per run attempt
    runs: bool = True
    #: bills the jobs' minutes (default: the packaged price table)
    prices: PriceTable | None = None
    #: repositories found by --org: one the token cannot read (403, 404) is skipped with
    #: a warning, not the end of the gather of all the others
    optional: frozenset[str] = frozenset()


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
    tests: TestTally = field(default_factory=TestTally)
    #: optional repositories skipped because GitHub refused them
    unreadable: list[str] = field(default_factory=list)
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
    tests: dict[int, JobTests] = field(default_factory=dict)  # from logs read now
    artifacts: RunArtifacts | None = None  # None: not listed this time
    #: jobs whose test records in `records` are their complete set: a test point such a
    #: job wrote before and no longer has is retracted (`publish`)
    tested: frozenset[int] = frozenset()


class _Pending(Exception):
    """Internal: this job's log could not be read now."""


# what one read of a job's log gives: classification, context, test results (if parsed)
_LogRead = tuple[Classification | None, str, JobTests | None]


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
        parsers: ParserSet | None = None,
    ) -> None:
        self.store = store
        self.parsers = parsers  # None: no test results from logs
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

    def _from_log(self, repo: str, job: Job) -> _LogRead | None:
        """(classification, context, test results) from the job's log, in one pass;
        None when the log is gone. Raises _Pending when it cannot be read now."""
        from multivac import classify
        from multivac.testresults.collector import TestCollector

        assert self.catalog is not None
        catalog = self.catalog
        failed = job.failed_step
        parsers = self.parsers
        archive = self.archive

        def scan(chunks: Iterator[bytes]) -> _LogRead:
            # everything per read: a download that breaks off is read again from the top
            if archive is not None:
                chunks = archive.tee(job.id, chunks)  # kept in the same pass
            collector = TestCollector(parsers) if parsers is not None else None
            found, context = classify.scan_log(
                chunks,
                catalog,
                steps=[step.name for step in job.steps],
                failed_step_number=failed.number if failed else None,
                listeners=[collector] if collector is not None else (),
            )
            tests = JobTests.from_collector(collector) if collector is not None else None
            return found, context, tests

        try:
            return self.source.read_log(repo, job.id, scan)
        except LogPending as exc:
            self.notify(f"job {job.id}: {exc}")
            raise _Pending(str(exc)) from None
        except GitHubError as exc:
            # GitHub refused this one log (not the budget): the job keeps a record
            self.notify(f"job {job.id}: {exc}")
            return None

    def _classify(self, repo: str, job: Job) -> tuple[Classification | None, JobTests | None]:
        """Why a failed or cancelled job ended (a placeholder when nothing tells), and
        the test results its log showed when it was read."""
        if self.catalog is None or not self.options.fetch_logs:
            return None, None
        if job.conclusion == JOB_CANCELLED:
            # a job past timeout-minutes is reported cancelled: only annotations tell
            cause = self._from_annotations(repo, job)
            return cause or Classification(CANCELLED, "", None, None, ""), None
        if job.conclusion not in FAILED_CONCLUSIONS:
            return None, None
        read = self._from_log(repo, job)
        found, context, tests = read if read is not None else (None, "", None)
        if found is None:
            found = self._from_annotations(repo, job)
        if found is not None:
            return found, tests
        failed = job.failed_step
        step = failed.name if failed else None
        if read is None:
            with self.summary.lock:
                self.summary.logs_unavailable += 1
            return Classification(LOG_UNAVAILABLE, LOG_UNAVAILABLE, step, None, ""), None
        return Classification(UNKNOWN_FAILURE, "", step, None, "", context), tests

    # ------------------------------------------------------------------ one run

    def process_run(
        self,
        run: Run,
        previous: dict[int, Classification] | None = None,
        known: KnownRun | None = None,
        artifacts_read: frozenset[int] | None = None,
    ) -> RunResult:
        """Fetch a run's jobs (and the logs of failures `previous` does not classify) and
        build its records. A `known` run is unchanged on GitHub: only its pending jobs'
        logs are read again. With `artifacts_read` (the ids read before), its matching
        artifacts are listed and the new ones read. Runs in a worker thread: no store
        access here."""
        if known is not None:
            result = self.build(run, known.jobs, known.classifications, fetched=True)
        else:
            jobs = self.source.jobs(run.repository, run.id)
            if jobs is None:
                with self.summary.lock:
                    self.summary.vanished_runs += 1
                return RunResult(run, (), (), {}, vanished=True)
            result = self.build(run, jobs, previous or {}, fetched=True)
        if artifacts_read is not None and self.options.junit_artifacts:
            found = self._artifacts(run, result.jobs, artifacts_read)
            if found is not None:
                result = replace(result, artifacts=found)
        return result

    def _artifacts(
        self, run: Run, jobs: tuple[Job, ...], read: frozenset[int]
    ) -> RunArtifacts | None:
        """The run's new JUnit artifacts; None when they cannot be listed or read now
        (the next gather tries again)."""
        from multivac.testresults.runs import read_run_artifacts

        assert self.options.junit_artifacts is not None
        try:
            return read_run_artifacts(
                self.source,
                run.repository,
                run.id,
                jobs,
                self.options.junit_artifacts,
                known=read,
                notify=self.notify,
            )
        except (GitHubError, LogPending) as exc:
            self.notify(f"run {run.id}: artifacts not read: {exc}")
            with self.summary.lock:
                self.summary.tests.runs_without_artifacts += 1
            return None

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
        tests: dict[int, JobTests] = {}
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
                    classification, found = self._classify(run.repository, job)
                except _Pending as exc:
                    pending[job.id] = str(exc)
                    continue
                if found is not None:
                    tests[job.id] = found
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
            run,
            tuple(jobs),
            tuple(records),
            classifications,
            pending,
            fetched=fetched,
            tests=tests,
        )

    # ------------------------------------------------------------------ all runs

    def runs(self) -> Iterator[Run]:
        opts = self.options
        for repo in opts.repos:
            workflow_ids: list[int] | None = None
            try:
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
            except GitHubError as exc:
                if not self.skip(repo, exc):
                    raise

    def skip(self, repo: str, error: GitHubError) -> bool:
        """Whether a repository GitHub refused is skipped (one found by --org that the
        token cannot read), with a warning; the gather of the others goes on."""
        if repo not in self.options.optional or error.status not in (403, 404):
            return False
        self.notify(f"warning: skipping {repo}: {error}")
        with self.summary.lock:
            self.summary.unreadable.append(repo)
        return True

    def results(self) -> Iterator[RunResult]:
        """Each run's result, in listing order, computed `concurrency` runs at a time."""
        width = max(1, self.options.concurrency)
        pending: deque[Future[RunResult]] = deque()
        failure: Exception | None = None
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix="multivac") as pool:
            try:
                try:
                    yield from self._submit(pool, pending, width)
                except Exception as exc:
                    failure = exc
                # the runs already under way are finished and written before the error is
                # reported: a refused run (a 403, a rate-limit stop) must not throw away the
                # jobs and logs of the others
                while pending:
                    try:
                        result = pending.popleft().result()
                    except Exception as exc:
                        failure = failure or exc
                        continue
                    yield result
            finally:
                for future in pending:
                    future.cancel()
        if failure is not None:
            raise failure

    def _submit(
        self, pool: ThreadPoolExecutor, pending: deque[Future[RunResult]], width: int
    ) -> Iterator[RunResult]:
        """Submit each listed run, yielding the oldest results as the queue fills."""
        store = self.store
        for run in self.runs():
            known = store.known_run(run) if store is not None else None
            if known is not None and self.options.steps and _lacks_step_times(known):
                known = None  # stored before steps had times: fetch its jobs again
            read = self._artifacts_to_skip(run, known)
            if known is not None and not known.pending and read is None:
                done: Future[RunResult] = Future()
                done.set_result(self.build(run, known.jobs, known.classifications, fetched=False))
                pending.append(done)
            elif known is not None:
                pending.append(pool.submit(self.process_run, run, None, known, read))
            else:
                previous = store.classifications_of(run.id) if store is not None else {}
                pending.append(pool.submit(self.process_run, run, previous, None, read))
            self.on_total(1)
            while len(pending) >= width * 2:
                yield pending.popleft().result()

    def _artifacts_to_skip(self, run: Run, known: KnownRun | None) -> frozenset[int] | None:
        """The artifacts of a run read before, when its artifacts are to be listed now;
        None when they are not (no --junit-artifacts, or an unchanged run listed
        before with the same pattern)."""
        pattern = self.options.junit_artifacts
        if not pattern:
            return None
        if self.store is None:
            return frozenset()
        from multivac.testresults.store import TestStore

        tests = TestStore(self.store)
        if known is not None and not known.pending and tests.listed(run.id, pattern):
            return None
        return tests.artifacts_read(run.id)

    def stream(self) -> Iterator[RunResult]:
        """Each run's result, for the caller to write before asking for the next; the
        run is remembered in the store only then, so a run whose records were not
        written (an error, a consumer that stopped) is fetched and written again.

        The test records join each result here, in the calling thread: they need the
        store (jobs parsed before, the other runs of the commit)."""
        from multivac.testresults.gathered import TestPublisher

        tests = TestPublisher(self.store, self.options, self.summary, self.parsers is not None)
        for fetched in self.results():
            result, decided = tests.prepare(fetched)
            yield result
            with self.summary.lock:
                for record in result.records:
                    if isinstance(record, JobRecord):
                        self.summary.measurements[record.measurement] += 1
                    else:
                        self.summary.points[record.measurement] += 1
            tests.save(decided)  # before the run: a run stored is never parsed again
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
            publish(sink, result.records, self.store, tested=result.tested)
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
