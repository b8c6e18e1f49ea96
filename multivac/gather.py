"""The gather pipeline: source -> classify -> records -> sink, with a summary.

Runs are listed in the calling thread; each run's jobs (and failed jobs' logs) are
fetched by a bounded pool of workers, and records reach the sink in run order, run by
run, so an interruption keeps everything finished before it.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from multivac.errors import GitHubError
from multivac.github import GitHubSource, LogStreamError, RateLimitStop
from multivac.model import (
    CANCELLED,
    FAILED_CONCLUSIONS,
    LOG_UNAVAILABLE,
    UNKNOWN_FAILURE,
    Anomalies,
    Classification,
    Job,
    JobRecord,
    Run,
    build_record,
)
from multivac.sinks.base import Sink

if TYPE_CHECKING:
    from multivac.classify import Catalog
    from multivac.store import Store


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


@dataclass
class Summary:
    runs: int = 0
    jobs: int = 0
    skipped_jobs: int = 0
    unfinished_jobs: int = 0
    vanished_runs: int = 0
    unchanged_runs: int = 0
    logs_unavailable: int = 0
    log_errors: int = 0
    measurements: Counter[str] = field(default_factory=Counter)
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
    records: tuple[JobRecord, ...]
    classifications: dict[int, Classification]
    vanished: bool = False
    fetched: bool = True  # False when it came from the store unchanged


Progress = Callable[[int], None]


def flaky_job_ids(jobs: list[Job] | tuple[Job, ...]) -> set[int]:
    """Failed attempts of a job whose later attempt (same run, same commit) succeeded."""
    succeeded: dict[str, int] = {}
    for job in jobs:
        if job.conclusion == "success":
            succeeded[job.name] = max(succeeded.get(job.name, 0), job.run_attempt)
    return {
        job.id
        for job in jobs
        if job.conclusion in FAILED_CONCLUSIONS and succeeded.get(job.name, 0) > job.run_attempt
    }


def _job_id(record: JobRecord) -> int:
    value = record.tags.get("job_id") or record.fields.get("job_id") or 0
    return int(value)


class Gatherer:
    def __init__(
        self,
        source: GitHubSource,
        options: GatherOptions,
        catalog: Catalog | None,
        *,
        progress: Progress | None = None,
        on_total: Callable[[int], None] | None = None,
        store: Store | None = None,
    ) -> None:
        self.store = store
        self.source = source
        self.options = options
        self.catalog = catalog
        self.summary = Summary()
        self.progress = progress or (lambda _n: None)
        self.on_total = on_total or (lambda _n: None)

    # ------------------------------------------------------------------ classification

    def _from_annotations(self, repo: str, job: Job) -> Classification | None:
        from multivac import classify

        assert self.catalog is not None
        try:
            messages = self.source.annotations(repo, job.id)
        except RateLimitStop:
            raise
        except GitHubError as exc:
            self.source.notify(f"job {job.id}: {exc}")
            return None
        return classify.classify_annotations(messages, self.catalog)

    def _classify(self, repo: str, job: Job) -> Classification | None:
        """Why a failed or cancelled job ended; a placeholder when nothing tells."""
        if self.catalog is None or not self.options.fetch_logs:
            return None
        from multivac import classify

        if job.conclusion == "cancelled":
            # a job past timeout-minutes is reported cancelled: only annotations tell
            cause = self._from_annotations(repo, job)
            return cause or Classification(CANCELLED, "", None, None, "")
        if job.conclusion not in FAILED_CONCLUSIONS:
            return None
        found: Classification | None = None
        context = ""
        log_missing = False
        for _attempt in range(3):
            try:
                download = self.source.open_log(repo, job.id)
                if download is None:
                    log_missing = True
                    break
                failed = job.failed_step
                found, context = classify.scan_log(
                    download.chunks(),
                    self.catalog,
                    steps=[step.name for step in job.steps],
                    failed_step_number=failed.number if failed else None,
                )
                break
            except RateLimitStop:
                raise
            except LogStreamError:
                # broken off or refused by the log host: a new signed URL, a new try
                with self.summary.lock:
                    self.summary.log_errors += 1
                continue
            except GitHubError as exc:
                # GitHub refused this one log (not the budget): the job keeps a record
                self.source.notify(f"job {job.id}: {exc}")
                with self.summary.lock:
                    self.summary.log_errors += 1
                log_missing = True
                break
        else:
            log_missing = True
        if found is None:
            found = self._from_annotations(repo, job)
        if found is None and log_missing:
            with self.summary.lock:
                self.summary.logs_unavailable += 1
            failed = job.failed_step
            return Classification(
                LOG_UNAVAILABLE, LOG_UNAVAILABLE, failed.name if failed else None, None, ""
            )
        if found is None:
            failed = job.failed_step
            return Classification(
                UNKNOWN_FAILURE, "", failed.name if failed else None, None, "", context
            )
        return found

    # ------------------------------------------------------------------ one run

    def process_run(self, run: Run, previous: dict[int, Classification] | None = None) -> RunResult:
        """Fetch a run's jobs (and new failures' logs) and build its records."""
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
        """Records of a run's jobs; classifies the jobs `previous` does not know yet."""
        flaky = flaky_job_ids(jobs)
        records: list[JobRecord] = []
        classifications: dict[int, Classification] = {}
        anomalies = Anomalies()
        skipped = unfinished = 0
        odd: Counter[str] = Counter()
        for job in jobs:
            if job.conclusion == "skipped":
                skipped += 1
                continue
            if job.status != "completed" or job.conclusion is None:
                unfinished += 1
                continue
            if job.id in previous:
                classification: Classification | None = previous[job.id]
            elif fetched:
                classification = self._classify(run.repository, job)
            else:
                classification = None
            if classification is not None:
                classifications[job.id] = classification
            record = build_record(
                run,
                job,
                classification,
                lean=self.options.lean,
                flaky=job.id in flaky,
                anomalies=anomalies,
            )
            if record is None:
                continue
            if job.conclusion not in ("success", "failure", "cancelled", "timed_out"):
                odd[job.conclusion] += 1
            records.append(record)
        with self.summary.lock:
            self.summary.runs += 1
            self.summary.jobs += len(jobs)
            self.summary.skipped_jobs += skipped
            self.summary.unfinished_jobs += unfinished
            self.summary.anomalies.merge(anomalies)
            self.summary.odd_conclusions.update(odd)
        return RunResult(run, tuple(jobs), tuple(records), classifications, fetched=fetched)

    # ------------------------------------------------------------------ all runs

    def runs(self) -> Iterator[Run]:
        opts = self.options
        for repo in opts.repos:
            workflow_ids: list[int] | None = None
            if opts.workflows:
                workflow_ids = [
                    wid for wid, _ in self.source.workflow_ids(repo, list(opts.workflows))
                ]
            listed = self.source.runs(
                repo,
                opts.since,
                opts.until,
                branches=list(opts.branches) or None,
                workflows=workflow_ids,
                event=opts.event,
                latest=opts.latest,
            )
            yield from listed

    def results(self) -> Iterator[RunResult]:
        """Each run's result, in listing order, computed `concurrency` runs at a time."""
        width = max(1, self.options.concurrency)
        pending: deque[Future[RunResult]] = deque()
        store = self.store
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix="multivac") as pool:
            try:
                for run in self.runs():
                    known = store.known_run(run) if store is not None else None
                    if known is not None:
                        done: Future[RunResult] = Future()
                        done.set_result(self.build(run, known[0], known[1], fetched=False))
                        pending.append(done)
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

    def _superseded(self, records: tuple[JobRecord, ...]) -> list[tuple[str, dict[str, str], int]]:
        """Points written before whose series changed since (a job became flaky after a
        successful retry): they must go, or the job would be counted twice."""
        assert self.store is not None
        before = self.store.emitted(_job_id(r) for r in records)
        stale: list[tuple[str, dict[str, str], int]] = []
        for record in records:
            old = before.get(_job_id(record))
            if old is None:
                continue
            measurement, time_ns, flaky = old
            now_flaky = record.tags.get("flaky") == "true"
            if (measurement, time_ns, flaky) == (record.measurement, record.time_ns, now_flaky):
                continue
            if "job_id" in record.tags:
                identity = {"job_id": record.tags["job_id"]}
            else:
                identity = {k: v for k, v in record.tags.items() if k in ("repository", "job_name")}
            stale.append((measurement, identity, time_ns))
        return stale

    def run(self, sink: Sink, on_result: Callable[[RunResult], Any] | None = None) -> Summary:
        """Write each run's records, then remember the run: a kill between the two only
        means the run is fetched and written again (points are idempotent)."""
        retract = getattr(sink, "retract", None)
        for result in self.results():
            if result.records and self.store is not None and retract is not None:
                stale = self._superseded(result.records)
                if stale:
                    retract(stale)
            if result.records:
                sink.write(result.records)
                with self.summary.lock:
                    self.summary.measurements.update(r.measurement for r in result.records)
            if self.store is not None and result.fetched and not result.vanished:
                self.store.save_run(result.run, result.jobs, result.classifications)
            if self.store is not None and result.records:
                self.store.note_emitted(
                    (_job_id(r), r.measurement, r.time_ns, r.tags.get("flaky") == "true")
                    for r in result.records
                )
            if not result.fetched:
                with self.summary.lock:
                    self.summary.unchanged_runs += 1
            if on_result is not None:
                on_result(result)
            self.progress(1)
        return self.summary


__all__ = ["CANCELLED", "GatherOptions", "Gatherer", "RunResult", "Summary", "flaky_job_ids"]
