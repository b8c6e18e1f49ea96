"""Test results in the local store (the tables are in multivac.store's schema).

- `test_results`: one row per result kept for a job: `own_status` is what the job's
  own log and reports said, `status` what the family of jobs that ran the same code
  makes of it (`flaky.py`), the status its point is written with. Indexed by test and
  by time, so `tests stats`, `tests last-seen` and `report` run offline. Passing
  results are kept only for jobs that did not succeed: a successful job's conclusion
  already says that its tests passed, and its passes would be most of the rows.
- `test_jobs`: a job whose tests were parsed, with its counts (so a repeated gather
  does not parse it again, and `--test-summary` can be written again from the store).
- `test_points`: the keys of the points last written for a job's tests, so that a
  point whose status changed (failed, then flaky) is retracted before its new one.
- `artifacts`, `artifact_listings`: artifacts already read (each is read once) and the
  runs whose artifacts were listed, with the `--junit-artifacts` pattern.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from multivac.model import SUCCEEDED, Job, PointKey, Run
from multivac.store import JOB_COLUMNS, RUN_COLUMNS, Store, _prefixed, _ts
from multivac.testresults.model import NON_PASSING, PASSED, TestResult
from multivac.testresults.runs import ArtifactNote, JobTests

__all__ = ["StoredTest", "StoredTests", "TestStore"]

_RESULT_COLUMNS = (
    "framework, test, configuration, own_status, suite, line_number, duration_s, message, source"
)
_RUNS = len(RUN_COLUMNS.split(","))
_JOBS = len(JOB_COLUMNS.split(","))


@dataclass(frozen=True)
class StoredTests:
    """A stored job's tests: its own results, and the statuses its points carry."""

    run: Run
    job: Job
    tests: JobTests
    statuses: Mapping[tuple[str, str, str | None], str]


@dataclass(frozen=True)
class StoredTest:
    """One stored result with its run and job; `result.status` is the written status
    (flaky across the family included)."""

    run: Run
    job: Job
    result: TestResult


def _result(row: Sequence[Any], status: str | None = None) -> TestResult:
    framework, test, configuration, own, suite, line_number, duration, message, source = row
    return TestResult(
        framework=framework,
        test=test,
        status=status or own,
        suite=suite,
        configuration=configuration or None,
        line_number=line_number,
        duration_s=duration,
        message=message,
        source=source,
    )


class TestStore:
    """Test results over a `Store` (same connection, same thread)."""

    __test__ = False

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db

    # ------------------------------------------------------------------ writing

    def save(
        self,
        run: Run,
        jobs: Sequence[Job],
        tests: Mapping[int, JobTests],
        statuses: Mapping[int, Sequence[TestResult]],
    ) -> None:
        """Replace the stored results of the jobs in `tests` (own statuses, with the
        written ones from `statuses`), in one transaction."""
        by_id = {job.id: job for job in jobs}
        rows: list[tuple[Any, ...]] = []
        counts: list[tuple[Any, ...]] = []
        now = time.time()
        for job_id, found in tests.items():
            job = by_id.get(job_id)
            if job is None:
                continue
            written = {r.key: r.status for r in statuses.get(job_id, ())}
            keep_passes = job.conclusion != SUCCEEDED
            for result in found.results:
                if result.status == PASSED and not keep_passes:
                    continue
                rows.append(
                    (
                        job_id,
                        result.framework,
                        result.test,
                        result.configuration or "",
                        written.get(result.key, result.status),
                        result.status,
                        result.suite,
                        result.line_number,
                        result.duration_s,
                        result.message,
                        result.source,
                        _ts(job.created_at or run.created_at),
                    )
                )
            summary = found.summary()
            counts.append(
                (
                    job_id,
                    run.id,
                    summary.passed,
                    summary.failed,
                    summary.skipped,
                    summary.hung,
                    summary.flaky,
                    summary.dropped,
                    ",".join(sorted(found.sources)),
                    now,
                )
            )
        if not counts:
            return
        with self._transaction():
            self.store._write(
                "DELETE FROM test_results WHERE job_id = ?", [(job_id,) for job_id in tests]
            )
            self.store._write(
                "INSERT OR REPLACE INTO test_results (job_id, framework, test, configuration, "
                "status, own_status, suite, line_number, duration_s, message, source, "
                "created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            self.store._write(
                "INSERT OR REPLACE INTO test_jobs VALUES (?,?,?,?,?,?,?,?,?,?)", counts
            )

    def set_statuses(self, statuses: Mapping[int, Sequence[TestResult]]) -> None:
        """Record the written status of stored results (a family changed them)."""
        with self._transaction():
            self.store._write(
                "UPDATE test_results SET status = ? "
                "WHERE job_id = ? AND framework = ? AND test = ? AND configuration = ?",
                [
                    (r.status, job_id, r.framework, r.test, r.configuration or "")
                    for job_id, results in statuses.items()
                    for r in results
                ],
            )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self.store._transaction():
            yield

    # ------------------------------------------------------------------ reading

    def tests_of(self, run_id: int) -> dict[int, JobTests]:
        """The stored results of a run's jobs that were parsed (own statuses)."""
        found: dict[int, JobTests] = {}
        cursor = self.db.execute(
            "SELECT job_id, dropped, sources FROM test_jobs WHERE run_id = ?", (run_id,)
        )
        meta = {row[0]: (row[1], row[2]) for row in cursor}
        if not meta:
            return {}
        results: dict[int, list[TestResult]] = {job_id: [] for job_id in meta}
        rows = self.store._by_ids(
            f"SELECT job_id, {_RESULT_COLUMNS} FROM test_results WHERE job_id IN ({{marks}}) "
            "ORDER BY job_id, line_number IS NULL, line_number, rowid",
            meta,
        )
        for row in rows:
            results.setdefault(row[0], []).append(_result(row[1:]))
        for job_id, (dropped, sources) in meta.items():
            found[job_id] = JobTests(
                tuple(results.get(job_id, ())),
                dropped,
                frozenset(s for s in sources.split(",") if s),
            )
        return found

    def family(self, run: Run) -> list[StoredTests]:
        """Parsed jobs of *other* runs of the same repository, commit and event (the
        candidates for each of this run's job families; `flaky.py`)."""
        if not run.commit_sha:
            return []
        cursor = self.db.execute(
            f"SELECT {_prefixed(RUN_COLUMNS, 'r')}, {_prefixed(JOB_COLUMNS, 'j')} "
            "FROM runs r JOIN jobs j ON j.run_id = r.id "
            "WHERE r.repository = ? AND r.commit_sha = ? AND r.event = ? AND r.id != ? "
            "ORDER BY r.id, j.rowid",
            (run.repository, run.commit_sha, run.event, run.id),
        )
        pairs = [
            (Store._run(row[:_RUNS]), Store._job(row[_RUNS : _RUNS + _JOBS])) for row in cursor
        ]
        tests: dict[int, JobTests] = {}
        statuses: dict[int, dict[tuple[str, str, str | None], str]] = {}
        for run_id in {r.id for r, _ in pairs}:
            tests.update(self.tests_of(run_id))
        rows = self.store._by_ids(
            "SELECT job_id, framework, test, configuration, status FROM test_results "
            "WHERE job_id IN ({marks})",
            tests,
        )
        for job_id, framework, test, configuration, status in rows:
            statuses.setdefault(job_id, {})[(framework, test, configuration or None)] = status
        return [
            StoredTests(peer_run, job, tests.get(job.id, JobTests()), statuses.get(job.id, {}))
            for peer_run, job in pairs
        ]

    # ------------------------------------------------------------------ points

    def points(self, job_ids: Iterable[int]) -> dict[int, set[PointKey]]:
        """The keys of the test points last written for each job."""
        found: dict[int, set[PointKey]] = {}
        rows = self.store._by_ids(
            "SELECT job_id, key FROM test_points WHERE job_id IN ({marks})", job_ids
        )
        for job_id, key in rows:
            found.setdefault(job_id, set()).add(PointKey.from_json(key))
        return found

    def note_points(self, keys: Mapping[int, Iterable[PointKey]]) -> None:
        """Remember the keys just written for each job (replacing the old ones)."""
        with self._transaction():
            self.store._write("DELETE FROM test_points WHERE job_id = ?", [(j,) for j in keys])
            self.store._write(
                "INSERT OR IGNORE INTO test_points VALUES (?,?)",
                [(job_id, key.to_json()) for job_id, found in keys.items() for key in found],
            )

    # ------------------------------------------------------------------ artifacts

    def artifacts_read(self, run_id: int) -> frozenset[int]:
        rows = self.db.execute("SELECT id FROM artifacts WHERE run_id = ?", (run_id,))
        return frozenset(row[0] for row in rows)

    def listed(self, run_id: int, pattern: str) -> bool:
        """Whether this run's artifacts were listed with this pattern."""
        row = self.db.execute(
            "SELECT 1 FROM artifact_listings WHERE run_id = ? AND pattern = ?", (run_id, pattern)
        ).fetchone()
        return row is not None

    def note_artifacts(self, run_id: int, pattern: str, notes: Sequence[ArtifactNote]) -> None:
        now = time.time()
        with self._transaction():
            self.store._write(
                "INSERT OR REPLACE INTO artifacts VALUES (?,?,?,?,?,?,?)",
                [
                    (n.id, run_id, n.name, n.job_id, n.outcome, json.dumps(list(n.problems)), now)
                    for n in notes
                ],
            )
            self.store._write(
                "INSERT OR REPLACE INTO artifact_listings VALUES (?,?,?)",
                [(run_id, pattern, now)],
            )

    # ------------------------------------------------------------------ reports

    def failing(
        self,
        repositories: Sequence[str],
        since: datetime | None,
        until: datetime | None,
        *,
        branch: str | None = None,
    ) -> Iterator[StoredTest]:
        """Stored failed, hung and flaky results of jobs created in the window (by the
        job's time), oldest first."""
        clauses = [f"t.status IN ({','.join('?' * len(NON_PASSING))})"]
        params: list[Any] = sorted(NON_PASSING)
        if repositories:
            clauses.append(f"r.repository COLLATE NOCASE IN ({','.join('?' * len(repositories))})")
            params.extend(repositories)
        if since is not None:
            clauses.append("t.created_at >= ?")
            params.append(_ts(since))
        if until is not None:
            clauses.append("t.created_at <= ?")
            params.append(_ts(until))
        if branch is not None:
            clauses.append("r.branch = ?")
            params.append(branch)
        columns = ", ".join(f"t.{name.strip()}" for name in _RESULT_COLUMNS.split(","))
        with closing(
            self.db.execute(
                f"SELECT {_prefixed(RUN_COLUMNS, 'r')}, {_prefixed(JOB_COLUMNS, 'j')}, "
                f"{columns}, t.status FROM test_results t "
                "JOIN jobs j ON j.id = t.job_id JOIN runs r ON r.id = j.run_id "
                f"WHERE {' AND '.join(clauses)} ORDER BY t.created_at, t.job_id, t.rowid",
                params,
            )
        ) as cursor:
            for row in cursor:
                run = Store._run(row[:_RUNS])
                job = Store._job(row[_RUNS : _RUNS + _JOBS])
                rest = row[_RUNS + _JOBS :]
                yield StoredTest(run, job, _result(rest[:-1], rest[-1]))
