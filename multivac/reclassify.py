"""Reclassification: the current rules over the evidence kept in the store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from multivac.gather import flaky_job_ids
from multivac.model import (
    CANCELLED,
    FAILED_CONCLUSIONS,
    LEAN_KEYS,
    UNKNOWN_FAILURE,
    Classification,
    JobRecord,
    build_record,
    measurement_for,
)
from multivac.store import Store, StoredJob

if TYPE_CHECKING:
    from multivac.classify import Catalog


@dataclass(frozen=True)
class Change:
    job_id: int
    old_measurement: str
    old_time_ns: int | None
    identity: dict[str, str]  # tags that single out the old point
    classification: Classification
    record: JobRecord


def _again(item: StoredJob, catalog: Catalog) -> Classification | None:
    """The classification the current rules give the stored evidence, or None to keep."""
    from multivac import classify

    old = item.classification
    if old is None:
        return None
    if item.job.conclusion == "cancelled":
        if not old.evidence:
            return None
        found = classify.classify_annotations([old.evidence], catalog)
        return found or Classification(CANCELLED, "", None, None, "")
    if item.job.conclusion not in FAILED_CONCLUSIONS:
        return None
    if old.excerpt:
        found = classify.classify_text(old.excerpt, catalog)
    elif old.evidence:
        found = classify.classify_text(old.evidence, catalog)
        if found is None and old.line_number is None:
            found = classify.classify_annotations([old.evidence], catalog)
    else:
        return None  # nothing kept (log unavailable): nothing to re-read
    if found is None:
        return Classification(UNKNOWN_FAILURE, "", old.step, None, "", old.excerpt)
    if not found.excerpt and old.excerpt:
        found = Classification(
            found.type,
            found.rule,
            found.step or old.step,
            found.line_number,
            found.evidence,
            old.excerpt,
        )
    return found


def reclassify(
    store: Store,
    catalog: Catalog,
    repos: list[str],
    since: datetime | None,
    until: datetime | None,
    *,
    lean: bool = False,
) -> list[Change]:
    """Jobs whose measurement changes under the current rules, with their new records."""
    items = list(store.stored_jobs(repos, since, until))
    by_run: dict[int, list[StoredJob]] = {}
    for item in items:
        by_run.setdefault(item.run.id, []).append(item)
    emitted = store.emitted(item.job.id for item in items)
    changes: list[Change] = []
    for run_items in by_run.values():
        flaky = flaky_job_ids([i.job for i in run_items])
        for item in run_items:
            new = _again(item, catalog)
            if new is None:
                continue
            old_measurement = measurement_for(item.job, item.classification)
            new_measurement = measurement_for(item.job, new)
            if old_measurement is None or new_measurement == old_measurement:
                continue
            record = build_record(item.run, item.job, new, lean=lean, flaky=item.job.id in flaky)
            if record is None:
                continue
            previous = emitted.get(item.job.id)
            old_record = build_record(
                item.run, item.job, item.classification, lean=lean, flaky=item.job.id in flaky
            )
            identity = dict(old_record.tags) if old_record is not None else {}
            if not lean:
                identity = {k: v for k, v in identity.items() if k in ("job_id", "repository")}
            else:
                identity = {k: v for k, v in identity.items() if k not in LEAN_KEYS}
            changes.append(
                Change(
                    job_id=item.job.id,
                    old_measurement=previous[0] if previous else old_measurement,
                    old_time_ns=previous[1]
                    if previous
                    else (old_record.time_ns if old_record else None),
                    identity=identity,
                    classification=new,
                    record=record,
                )
            )
    return changes
