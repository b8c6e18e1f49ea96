"""The test results of each gathered run, from worker to sink and store (main thread).

A worker brings a run's fresh results: the logs it read (collected in the
classification pass) and the JUnit artifacts it read. Here they meet what the store
already holds for the run (jobs parsed by an earlier gather are never parsed again),
the artifacts are merged into their jobs (the artifact wins), each job family decides
which failures are flaky (`flaky.py`), and the records are written, each job's as a
complete set (`publish(..., tested=...)`), before the run is remembered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from multivac.model import SKIPPED, SUCCEEDED, Job, Record, Run
from multivac.testresults.flaky import FamilyJob, family_statuses
from multivac.testresults.model import TestResult
from multivac.testresults.records import build_test_records, summarize
from multivac.testresults.runs import JobTests, RunArtifacts

if TYPE_CHECKING:
    from multivac.gather import GatherOptions, RunResult, Summary
    from multivac.store import Store
    from multivac.testresults.store import StoredTests

__all__ = ["Decided", "TestPublisher", "job_family", "records_for"]


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


@dataclass(frozen=True)
class Decided:
    """What a run's test results came to, kept until its records are written."""

    run: Run
    jobs: tuple[Job, ...]
    fresh: dict[int, JobTests]  # parsed now (logs, artifacts): stored anew
    statuses: dict[int, list[TestResult]]  # the written statuses of the run's jobs
    kept: dict[int, list[TestResult]]  # stored jobs (this run's and others') with new statuses
    artifacts: RunArtifacts | None


class TestPublisher:
    """Adds each run's test records to its result, and stores them once written; one
    per gather, in the calling thread (it reads and writes the store)."""

    __test__ = False

    def __init__(
        self, store: Store | None, options: GatherOptions, summary: Summary, parsing: bool
    ) -> None:
        self.store = store
        self.options = options
        self.summary = summary
        # with a store, jobs parsed before keep their test points whatever the flags
        self.active = parsing or bool(options.junit_artifacts) or store is not None

    def prepare(self, result: RunResult) -> tuple[RunResult, Decided | None]:
        """The result with its test records (and the jobs whose sets they complete):
        log and artifact results merged (the artifact wins), the store's results of jobs
        parsed before, flaky decided by each job's family, and the jobs of other runs of
        the commit whose points that changes."""
        if not self.active or result.vanished:
            return result, None
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
        # the other runs of the commit matter when this run has results of its own, or
        # a job that succeeded: either can make a stored failure flaky
        succeeded = any(job.conclusion == SUCCEEDED for job in result.jobs)
        peers = tests.family(run) if tests is not None and (own or succeeded) else []
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
        with self.summary.lock:
            tally = self.summary.tests
            for job_id, job_tests in fresh.items():
                tally.add_job(job_tests, statuses.get(job_id, []))
            if found is not None:
                tally.add_notes(found.notes)
        kept = {k: v for k, v in statuses.items() if k in own and k not in fresh}
        kept.update({peer.job.id: peer.statuses for peer in moved})
        decided = Decided(run, result.jobs, fresh, statuses, kept, found)
        added = tuple(record for records in by_job.values() for record in records)
        # a job of the run parsed now or before has its complete set here, none or more
        tested = frozenset(own) & frozenset(jobs) | frozenset(p.job.id for p in moved)
        return replace(result, records=result.records + added, tested=tested), decided

    def save(self, decided: Decided | None) -> None:
        """Store what `prepare` decided, once the records are written."""
        if decided is None or self.store is None:
            return
        from multivac.testresults.store import TestStore

        tests = TestStore(self.store)
        tests.save(decided.run, decided.jobs, decided.fresh, decided.statuses)
        if decided.kept:
            tests.set_statuses(decided.kept)
        if decided.artifacts is not None and self.options.junit_artifacts:
            tests.note_artifacts(
                decided.run.id, self.options.junit_artifacts, decided.artifacts.notes
            )

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
