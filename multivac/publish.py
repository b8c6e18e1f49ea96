"""Writing records where an earlier write may stand: the one place that decides which
old points a new record supersedes.

A job's point can change identity after it was written: it turns flaky when a later
attempt succeeds (a new tag), `reclassify` gives it another failure type (a new
measurement), or a job left pending during an outage is written with its real type.
The old point must then go, or the job counts twice; InfluxDB's delete reports success
even when its predicate matches nothing, so both sides use `PointKey`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from multivac.model import JobRecord, PointKey, Record

if TYPE_CHECKING:
    from multivac.sinks.base import Sink
    from multivac.store import Emitted, Store


def _old_key(record: JobRecord, before: Emitted) -> PointKey:
    """The key of what was written before. Stores older than PointKey kept only the
    measurement, the time and the flaky flag; every other tag comes from the job's
    stored facts, which do not change, so the new record supplies them."""
    if before.key is not None:
        return before.key
    tags = {k: v for k, v in record.tags.items() if k != "flaky"}
    if before.flaky:
        tags["flaky"] = "true"
    return PointKey.identify(before.measurement, tags, before.time_ns)


def _job_records(records: Sequence[Record]) -> list[JobRecord]:
    """The records that stand for a job: the store remembers one key per job."""
    return [r for r in records if isinstance(r, JobRecord) and r.job_id]


def superseded(records: Sequence[JobRecord], store: Store) -> list[PointKey]:
    """Points written earlier for these records' jobs under another key."""
    before = store.emitted(r.job_id for r in records)
    stale: list[PointKey] = []
    for record in records:
        old = before.get(record.job_id)
        if old is None:
            continue
        key = _old_key(record, old)
        if key != record.key:
            stale.append(key)
    return stale


def publish(sink: Sink, records: Sequence[Record], store: Store | None) -> None:
    """Retract what these records supersede, write them, and remember the jobs' keys."""
    if not records:
        return
    jobs = _job_records(records) if store is not None else []
    if store is not None and jobs:
        stale = superseded(jobs, store)
        if stale:
            sink.retract(stale)
    sink.write(records)
    if store is not None and jobs:
        store.note_emitted(jobs)


def publish_tests(
    sink: Sink, records_by_job: Mapping[int, Sequence[Record]], store: Store | None
) -> None:
    """Write each job's test records as that job's complete set. A job's test points
    change identity when a test's status changes (failed, then flaky once another
    attempt passed it) or a test stops failing (an artifact says it passed): the points
    the job wrote before under keys it no longer has are retracted first."""
    records = [record for found in records_by_job.values() for record in found]
    if store is None:
        if records:
            sink.write(records)
        return
    from multivac.testresults.store import TestStore

    tests = TestStore(store)
    before = tests.points(records_by_job)
    stale: list[PointKey] = []
    changed: dict[int, set[PointKey]] = {}
    for job_id, found in records_by_job.items():
        keys = {record.key for record in found}
        old = before.get(job_id, set())
        stale.extend(sorted(old - keys, key=PointKey.to_json))
        if keys != old:
            changed[job_id] = keys
    if stale:
        sink.retract(stale)
    if records:
        sink.write(records)
    if changed:
        tests.note_points(changed)
