"""Writing records where an earlier write may stand: the one place that decides which
old points a new record supersedes.

A job's point can change identity after it was written: it turns flaky when a later
attempt succeeds (a new tag), `reclassify` gives it another failure type (a new
measurement), or a job left pending during an outage is written with its real type.
The old point must then go, or the job counts twice; InfluxDB's delete reports success
even when its predicate matches nothing, so both sides use `PointKey`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING

from multivac.model import TESTS_BUCKET, JobRecord, PointKey, Record

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


def _test_sets(records: Sequence[Record], tested: Collection[int]) -> dict[int, set[PointKey]]:
    """The keys of the test records of each job in `tested` (its complete set, maybe
    empty): a job's test points, kept apart from its job point."""
    sets: dict[int, set[PointKey]] = {job_id: set() for job_id in tested}
    for record in records:
        if record.BUCKET == TESTS_BUCKET and record.job_id in sets:
            sets[record.job_id].add(record.key)
    return sets


def superseded_tests(
    sets: Mapping[int, set[PointKey]], store: Store
) -> tuple[list[PointKey], dict[int, set[PointKey]]]:
    """Test points written earlier for these jobs that their complete sets no longer
    hold (a test whose status changed: failed, then flaky once another attempt passed
    it; or one that stopped failing), and the sets that differ from what was written."""
    from multivac.testresults.store import TestStore

    before = TestStore(store).points(sets)
    stale: list[PointKey] = []
    changed: dict[int, set[PointKey]] = {}
    for job_id, keys in sets.items():
        old = before.get(job_id, set())
        stale.extend(sorted(old - keys, key=PointKey.to_json))
        if old != keys:
            changed[job_id] = keys
    return stale, changed


def publish(
    sink: Sink,
    records: Sequence[Record],
    store: Store | None,
    *,
    tested: Collection[int] = (),
) -> None:
    """Retract what these records supersede, write them, and remember the jobs' keys.
    For the jobs in `tested`, the test records given are the job's complete set."""
    if not records and not tested:
        return
    jobs = _job_records(records) if store is not None else []
    sets = _test_sets(records, tested) if store is not None else {}
    changed: dict[int, set[PointKey]] = {}
    if store is not None and (jobs or sets):
        stale_tests, changed = superseded_tests(sets, store) if sets else ([], {})
        stale = superseded(jobs, store) + stale_tests
        if stale:
            sink.retract(stale)
    if records:
        sink.write(records)
    if store is not None and jobs:
        store.note_emitted(jobs)
    if store is not None and changed:
        from multivac.testresults.store import TestStore

        TestStore(store).note_points(changed)
