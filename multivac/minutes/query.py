"""Read `UsageJob`s straight from the SQLite store, fast enough for 100,000 jobs.

`Store.stored_jobs` builds full `Run`, `Job` and `Classification` objects (steps
included) for every row; usage and capacity need a dozen columns, so this reads
those alone and lets SQLite turn the timestamps into POSIX seconds.

The lead may move `_SQL` into store.py with the other report queries; it reads the
jobs table's `runner_group` column when the schema has one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime

from multivac.errors import StoreError
from multivac.minutes.jobs import UsageJob, measurement_of
from multivac.store import Store

# Skipped and unfinished jobs have no record (model.measurement_for): leave them out
# in SQL already. A run's jobs are all created after the run, so `r.created_at <=
# until` may use the runs index; the job's own time decides the rest.
_SQL = """
SELECT j.id, j.run_id, j.run_attempt, j.name, j.status, j.conclusion,
       CAST(strftime('%s', j.created_at) AS INTEGER),
       CAST(strftime('%s', j.started_at) AS INTEGER),
       CAST(strftime('%s', j.completed_at) AS INTEGER),
       j.labels, {runner_group}, r.repository,
       CASE WHEN r.workflow != '' THEN r.workflow ELSE j.workflow END,
       c.type,
       CAST(strftime('%s', r.created_at) AS INTEGER)
FROM jobs j
JOIN runs r ON r.id = j.run_id
LEFT JOIN classifications c ON c.job_id = j.id
WHERE j.status = 'completed' AND j.conclusion IS NOT NULL AND j.conclusion != 'skipped'
{where}
"""


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _has_runner_group(db: sqlite3.Connection) -> bool:
    return any(row[1] == "runner_group" for row in db.execute("PRAGMA table_info(jobs)"))


def _load(store: Store, where: list[str], params: list[object]) -> list[UsageJob]:
    db = store.db
    try:
        group = "j.runner_group" if _has_runner_group(db) else "''"
        sql = _SQL.format(
            runner_group=group, where="".join(f"  AND {clause}\n" for clause in where)
        )
        rows = db.execute(sql, params).fetchall()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the local store {store.path}: {exc}.") from None
    labels_of: dict[str, tuple[str, ...]] = {}
    jobs = []
    for (
        job_id,
        run_id,
        attempt,
        name,
        status,
        conclusion,
        created,
        started,
        completed,
        labels_text,
        runner_group,
        repository,
        workflow,
        kind,
        run_created,
    ) in rows:
        measurement = measurement_of(status, conclusion, kind)
        at = created if created is not None else started if started is not None else run_created
        if measurement is None or at is None:
            continue
        labels = labels_of.get(labels_text)
        if labels is None:
            labels = labels_of[labels_text] = tuple(json.loads(labels_text))
        jobs.append(
            UsageJob(
                job_id=job_id,
                run_id=run_id,
                run_attempt=attempt,
                repository=repository,
                workflow=workflow,
                job_name=name,
                conclusion=conclusion,
                failure_type=measurement,
                labels=labels,
                runner_group=runner_group or "",
                created_s=created,
                started_s=started,
                completed_s=completed,
                at_s=at,
            )
        )
    return jobs


def _repos(repositories: Iterable[str], where: list[str], params: list[object]) -> None:
    repos = list(repositories)
    if repos:
        where.append(f"r.repository IN ({','.join('?' * len(repos))})")
        params.extend(repos)


_AT = "COALESCE(j.created_at, j.started_at, r.created_at)"


def usage_jobs(
    store: Store,
    repositories: Iterable[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[UsageJob]:
    """Jobs whose record time (`created_at`) is in [since, until], both inclusive."""
    where: list[str] = []
    params: list[object] = []
    _repos(repositories, where, params)
    if since is not None:
        where.append(f"{_AT} >= ?")
        params.append(_ts(since))
    if until is not None:
        where += ["r.created_at <= ?", f"{_AT} <= ?"]
        params += [_ts(until), _ts(until)]
    return _load(store, where, params)


def capacity_jobs(
    store: Store,
    repositories: Iterable[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[UsageJob]:
    """Jobs that were waiting or running at some moment of [since, until]."""
    where: list[str] = []
    params: list[object] = []
    _repos(repositories, where, params)
    if since is not None:
        where.append("COALESCE(j.completed_at, j.started_at, j.created_at) >= ?")
        params.append(_ts(since))
    if until is not None:
        where += ["r.created_at <= ?", f"{_AT} <= ?"]
        params += [_ts(until), _ts(until)]
    return _load(store, where, params)
