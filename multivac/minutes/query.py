"""Read usage and capacity inputs straight from the SQLite store, fast enough for 100,000 jobs.

`Store.stored_jobs` builds full `Run`, `Job` and `Classification` objects (steps
included) for every row; usage needs a dozen columns and capacity five, so these
queries read those alone and let SQLite turn timestamps into POSIX seconds.

The lead may move the SQL into store.py with the other report queries. It reads the
jobs table's `runner_group` column when the schema has one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from multivac.errors import StoreError
from multivac.minutes.jobs import JobTimes, UsageJob, measurement_of
from multivac.store import Store

# unixepoch() (SQLite 3.38) is twice as fast as strftime('%s'), which older systems have
_EPOCH = (
    "unixepoch({})"
    if sqlite3.sqlite_version_info >= (3, 38, 0)
    else "CAST(strftime('%s', {}) AS INTEGER)"
)

# Skipped and unfinished jobs have no record (model.measurement_for): leave them out
# in SQL already.
_RECORDED = "j.status = 'completed' AND j.conclusion IS NOT NULL AND j.conclusion != 'skipped'"

_USAGE_SQL = f"""
SELECT j.id, j.run_id, j.run_attempt, j.name, j.conclusion,
       {_EPOCH.format("j.created_at")}, {_EPOCH.format("j.started_at")},
       {_EPOCH.format("j.completed_at")}, j.labels, {{runner_group}}, r.repository,
       CASE WHEN r.workflow != '' THEN r.workflow ELSE j.workflow END,
       c.type, {_EPOCH.format("r.created_at")}
FROM jobs j
JOIN runs r ON r.id = j.run_id
LEFT JOIN classifications c ON c.job_id = j.id
WHERE {_RECORDED}
"""

_CAPACITY_SQL = f"""
SELECT j.labels, {{runner_group}}, {_EPOCH.format("j.created_at")},
       {_EPOCH.format("j.started_at")}, {_EPOCH.format("j.completed_at")}
FROM jobs j
{{join}}
WHERE {_RECORDED}
"""

# A job's record time, as build_record takes it
_AT = "COALESCE(j.created_at, j.started_at, r.created_at)"


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _execute(store: Store, sql: str, where: list[str], params: list[object]) -> list[Any]:
    db = store.db
    try:
        has_group = any(row[1] == "runner_group" for row in db.execute("PRAGMA table_info(jobs)"))
        text = sql.format(
            runner_group="j.runner_group" if has_group else "''",
            join="JOIN runs r ON r.id = j.run_id" if any("r." in c for c in where) else "",
        ) + "".join(f"  AND {clause}\n" for clause in where)
        return db.execute(text, params).fetchall()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the local store {store.path}: {exc}.") from None


def _filters(
    repositories: Iterable[str], since_clause: str, since: datetime | None, until: datetime | None
) -> tuple[list[str], list[object]]:
    where: list[str] = []
    params: list[object] = []
    repos = list(repositories)
    if repos:
        where.append(f"r.repository COLLATE NOCASE IN ({','.join('?' * len(repos))})")
        params.extend(repos)
    if since is not None:
        where.append(f"{since_clause} >= ?")
        params.append(_ts(since))
    if until is not None:
        where.append(f"{_AT} <= ?")
        params.append(_ts(until))
    return where, params


class _Labels(dict[str, tuple[tuple[str, ...], str]]):
    """Stored labels JSON → (labels, joined): a store holds few distinct label sets."""

    def __missing__(self, text: str) -> tuple[tuple[str, ...], str]:
        labels = tuple(json.loads(text))
        value = self[text] = (labels, ",".join(labels))
        return value


def usage_jobs(
    store: Store,
    repositories: Iterable[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[UsageJob]:
    """Recorded jobs whose record time (`created_at`) is in [since, until], both inclusive."""
    where, params = _filters(repositories, _AT, since, until)
    labels_of = _Labels()
    jobs = []
    for (
        job_id,
        run_id,
        attempt,
        name,
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
    ) in _execute(store, _USAGE_SQL, where, params):
        measurement = measurement_of("completed", conclusion, kind)
        at = created if created is not None else started if started is not None else run_created
        if measurement is None or at is None:
            continue
        labels, label = labels_of[labels_text]
        jobs.append(
            UsageJob(
                job_id,
                run_id,
                attempt,
                repository,
                workflow,
                name,
                conclusion,
                measurement,
                labels,
                label,
                runner_group or "",
                created,
                started,
                completed,
                at,
            )
        )
    return jobs


def capacity_jobs(
    store: Store,
    repositories: Iterable[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[JobTimes]:
    """Recorded jobs that were waiting or running at some moment of [since, until]."""
    where, params = _filters(
        repositories, "COALESCE(j.completed_at, j.started_at, j.created_at)", since, until
    )
    labels_of = _Labels()
    return [
        JobTimes(labels_of[labels_text][1], runner_group or "", created, started, completed)
        for labels_text, runner_group, created, started, completed in _execute(
            store, _CAPACITY_SQL, where, params
        )
    ]
