"""The test results of each gathered run, from worker to sink and store (main thread).

A worker brings a run's fresh results: the logs it read (collected in the
classification pass) and the JUnit artifacts it read. Here they meet what the store
already holds for the run (jobs parsed by an earlier gather are never parsed again),
the artifacts are merged into their jobs (the artifact wins), each job family decides
which failures are flaky (`flaky.py`), and the records are written, each job's as a
complete set (`publish_tests`), before the run is remembered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from multivac.model import SKIPPED, Job, Record, Run
from multivac.publish import publish_tests
from multivac.testresults.flaky import FamilyJob, family_statuses
from multivac.testresults.model import TestResult
from multivac.testresults.records import build_test_records, summarize
from multivac.testresults.runs import JobTests

if TYPE_CHECKING:
    from multivac.gather import GatherOptions, RunResult, Summary
    from multivac.sinks.base import Sink
    from multivac.store import Store
    from multivac.testresults.store import StoredTests

__all__ = ["TestPublisher", "job_family", "records_for"]


def job_family(run: Run, job: Job) -> tuple[str, str]:
    """The jobs that ran the same code, within one commit and event (`flaky.py`)."""
    return (run.workflow_path or run.workflow, job.name)


def records_for(
    run: Run, job: Job, tests: JobTests, statuses: Sequence[TestResult], *, summary: bool
) -> list[Record]:
    """A job's test records with its written statuses (and its `test_summary` point)."""
    counts = summarize(statuses, tests.dropped) if summary and (statuses or tests.dropped) else None
    return build_test_records(run, job, statuses, summary=counts)


@dataclass
class _Changed:
    run: Run
    job: Job
    tests: JobTests
    statuses: list[TestResult]


class TestPublisher:
    """Writes and stores each run's test results; one per gather."""

    __test__ = False

    def __init__(
        self, store: Store | None, options: GatherOptions, summary: Summary, parsing: bool
    ) -> None:
        self.store = store
        self.options = options
        self.summary = summary
        self.active = parsing or bool(options.junit_artifacts)

    def publish(self, sink: Sink | None, result: RunResult) -> None:
        """Merge, decide, write (unless `sink` is None: the store alone is updated, and
        the next write of these jobs retracts what they wrote before) and store."""
        if not self.active or result.vanished:
            return
        from multivac.testresults.store import TestStore

        run = result.run
        jobs = {job.id: job for job in result.jobs}
        tests = TestStore(self.store) if self.store is not None else None
        own: dict[int, JobTests] = tests.tests_of(run.id) if tests is not None else {}
        fresh: dict[int, JobTests] = {k: v for k, v in result.tests.items() if k in jobs}
        own.update(fresh)
        found = result.artifacts
        if found is not None:
            for job_id, extra in found.by_job.items():
                if job_id in jobs:
                    base = own.get(job_id, JobTests())
                    merged = base.with_artifacts(extra, found.dropped.get(job_id, 0))
                    own[job_id] = fresh[job_id] = merged
        peers = tests.family(run) if tests is not None else []
        statuses, moved = self._families(run, result.jobs, own, peers)

        by_job: dict[int, list[Record]] = {}
        for job_id, job_tests in own.items():
            if job_id not in jobs:
                continue
            by_job[job_id] = records_for(
                run,
                jobs[job_id],
                job_tests,
                statuses.get(job_id, []),
                summary=self.options.test_summary,
            )
        for peer in moved:
            by_job[peer.job.id] = records_for(
                peer.run, peer.job, peer.tests, peer.statuses, summary=self.options.test_summary
            )
        if sink is not None:
            publish_tests(sink, by_job, self.store)

        with self.summary.lock:
            tally = self.summary.tests
            for job_id, job_tests in fresh.items():
                tally.add_job(job_tests, statuses.get(job_id, []))
            if found is not None:
                tally.add_notes(found.notes)
            self.summary.measurements.update(
                record.measurement for records in by_job.values() for record in records
            )
        if tests is not None:
            tests.save(run, result.jobs, fresh, statuses)
            kept = {k: v for k, v in statuses.items() if k in own and k not in fresh}
            kept.update({peer.job.id: peer.statuses for peer in moved})
            if kept:
                tests.set_statuses(kept)
            if found is not None and self.options.junit_artifacts:
                tests.note_artifacts(run.id, self.options.junit_artifacts, found.notes)

    @staticmethod
    def _families(
        run: Run,
        jobs: Sequence[Job],
        own: dict[int, JobTests],
        peers: Sequence[StoredTests],
    ) -> tuple[dict[int, list[TestResult]], list[_Changed]]:
        """The written statuses of this run's jobs, and the stored jobs of other runs
        whose written statuses this run changes."""
        families: dict[tuple[str, str], list[FamilyJob]] = {}
        for job in jobs:
            if job.status != "completed" or job.conclusion in (None, SKIPPED):
                continue
            results = own[job.id].results if job.id in own else ()
            families.setdefault(job_family(run, job), []).append(
                FamilyJob(job.id, job.conclusion, results)
            )
        others: dict[int, StoredTests] = {}
        for peer in peers:
            family = families.get(job_family(peer.run, peer.job))
            if family is None or peer.job.conclusion in (None, SKIPPED):
                continue
            family.append(FamilyJob(peer.job.id, peer.job.conclusion, peer.tests.results))
            others[peer.job.id] = peer
        statuses: dict[int, list[TestResult]] = {}
        moved: list[_Changed] = []
        for family in families.values():
            decided = family_statuses(family)
            for member in family:
                stored = others.get(member.job_id)
                new = decided[member.job_id]
                if stored is None:
                    statuses[member.job_id] = new
                elif any(r.status != stored.statuses.get(r.key, r.status) for r in new):
                    moved.append(_Changed(stored.run, stored.job, stored.tests, new))
        return statuses, moved
