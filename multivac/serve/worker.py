"""The classification worker: reads failed jobs' logs, in the background.

Its queue is the store's `pending` table, the same list a gather keeps of failed jobs
whose log is still to be read: the event loop adds a row in the transaction that
stores the job, and the worker takes the row off only once the job's record is
written. A restart therefore resumes where it stopped and loses nothing, and a gather
of the window classifies whatever serve has not. Classification is the gather's own
(`Gatherer.build`): the same rules, the same GitHub source with its rate governor and
retry policy, the same placeholders when a log is gone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from multivac.archive import LogArchive
from multivac.classify import Catalog
from multivac.config import ServePlan, redact
from multivac.errors import MultivacError
from multivac.gather import Gatherer, GatherOptions
from multivac.github import GitHubSource
from multivac.serve.emitter import Emitter
from multivac.serve.metrics import Metrics
from multivac.serve.records import attempt_records, run_records_of
from multivac.store import Store
from multivac.testresults import load_parsers
from multivac.testresults.gathered import TestPublisher

#: a job whose log or annotations could not be read is tried again after this long,
#: doubling up to the cap
RETRY_S = 30.0
RETRY_CAP_S = 900.0
IDLE_S = 60.0  # how often an idle worker looks at the queue anyway
WRITE_WAIT_S = 120.0  # how long a classified record may wait for the output


class Worker:
    """Start with `start()`, `wake()` when a job was queued, `stop()` to end after the
    job at hand (what is left stays queued in the store)."""

    def __init__(
        self,
        plan: ServePlan,
        catalog: Catalog,
        emitter: Emitter,
        metrics: Metrics,
        log: Callable[[str], None],
    ) -> None:
        self.plan = plan
        self.catalog = catalog
        self.emitter = emitter
        self.metrics = metrics
        self.log = log
        self.backlog = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._retry_at: dict[int, float] = {}  # job id -> when to try again
        self._failures: dict[int, int] = {}
        self._thread = threading.Thread(target=self._run, name="multivac-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self.backlog += 1
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> bool:
        """Ask the worker to stop; True when it did within `timeout` (a log download
        in progress is left to die with the process: its job stays queued)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        try:
            with Store.open(self.plan.state_dir, github=self.plan.github.api_url) as store:
                source = GitHubSource(
                    self.plan.github, policy=self.plan.policy, notify=self.log, concurrency=1
                )
                gatherer = Gatherer(
                    source,
                    # classification only: records are built here (attempt_records),
                    # the runs' points when a run is whole
                    GatherOptions(
                        repos=(),
                        since=None,
                        until=datetime.now(UTC),
                        lean=self.plan.lean,
                        runs=False,
                        prices=self.plan.prices,
                        test_summary=self.plan.test_summary,
                    ),
                    self.catalog,
                    archive=LogArchive(
                        self.plan.state_dir / "logs", self.plan.log_archive_mb << 20
                    ),
                    notify=self.log,
                    parsers=load_parsers(self.plan.rules),  # test results, as a gather
                )
                self._loop(store, gatherer)
        except MultivacError as exc:
            self.log(f"error: the classification worker stopped: {redact(str(exc))}")

    def _loop(self, store: Store, gatherer: Gatherer) -> None:
        while not self._stop.is_set():
            queued = store.pending_queue()
            self.backlog = len(queued)
            now = time.monotonic()
            due = [(job_id, run_id) for job_id, run_id in queued if self._due(job_id, now)]
            if not due:
                later = [self._retry_at[j] - now for j, _ in queued if j in self._retry_at]
                self._wake.wait(min([IDLE_S, *later]))
                self._wake.clear()
                continue
            job_id, run_id = due[0]
            try:
                self._classify(store, gatherer, job_id, run_id)
            except MultivacError as exc:
                self._later(job_id, redact(str(exc)))

    def _due(self, job_id: int, now: float) -> bool:
        return self._retry_at.get(job_id, 0.0) <= now

    def _later(self, job_id: int, why: str) -> None:
        failures = self._failures.get(job_id, 0) + 1
        self._failures[job_id] = failures
        wait = min(RETRY_CAP_S, RETRY_S * 2 ** (failures - 1))
        self._retry_at[job_id] = time.monotonic() + wait
        self.log(f"job {job_id}: {why} (trying again in {wait:.0f}s)")

    def _classify(self, store: Store, gatherer: Gatherer, job_id: int, run_id: int) -> None:
        job = store.job_of(job_id)
        run = store.run_of(run_id)
        if job is None or run is None:
            store.drop_pending(job_id)  # a row without its job: nothing to read
            return
        attempts = store.attempts_of(run_id, job.name)
        ids = [attempt.id for attempt in attempts]
        known = store.classifications_for(ids)
        waiting = store.pending_of(ids)
        result = gatherer.build(run, attempts, known, fetched=True)
        # the test results the logs showed, as a gather writes and stores them
        publisher = TestPublisher(store, gatherer.options, gatherer.summary, True)
        prepared, decided = publisher.prepare(result)
        test_records = list(prepared.records[len(result.records) :])
        for pending_id, why in result.pending.items():
            self._later(pending_id, redact(why))
        found = {i: c for i, c in result.classifications.items() if i not in known}
        if job_id in known:
            found[job_id] = known[job_id]  # classified meanwhile (a gather): take it off
        classes = {**known, **result.classifications}
        still = waiting - set(found)
        run = store.run_of(run_id) or run  # the run itself may have come in meanwhile
        # the newly classified jobs (with their steps) and the attempts they make flaky
        records = attempt_records(self.plan, run, attempts, classes, waiting=still, steps_of=found)
        completed, whole = store.run_completion(run_id) or (False, False)
        if completed and whole:  # what the run's points count may have changed
            records += run_records_of(self.plan, store, run)
        ticket = self.emitter.submit(records + test_records, tested=prepared.tested)
        if not ticket.wait(WRITE_WAIT_S):
            self._later(job_id, "its record could not be written")
            return
        publisher.save(decided)
        if found:
            store.settle(found)
            self.metrics.classified.inc(len([i for i in found if i not in known]))
        if job_id not in found and job_id not in result.pending:
            store.drop_pending(job_id)  # nothing to classify (not a failure after all)
        for settled in found:
            self._retry_at.pop(settled, None)
            self._failures.pop(settled, None)
