"""Reclassification: the current rules over the evidence kept in the store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from multivac.model import (
    CANCELLED,
    FAILED_CONCLUSIONS,
    JOB_CANCELLED,
    UNKNOWN_FAILURE,
    Classification,
    JobRecord,
    build_record,
    flaky_job_ids,
    measurement_for,
)
from multivac.store import Store, StoredJob

if TYPE_CHECKING:
    from multivac.archive import LogArchive
    from multivac.classify import Catalog


@dataclass(frozen=True)
class Change:
    job_id: int
    old_measurement: str
    classification: Classification
    record: JobRecord


def _again(
    item: StoredJob, catalog: Catalog, archive: LogArchive | None = None
) -> Classification | None:
    """The classification the current rules give the job's archived log, else its stored
    evidence; None to keep the old one."""
    from multivac import classify

    old = item.classification
    if old is None:
        return None
    if item.job.conclusion == JOB_CANCELLED:
        if not old.evidence:
            return None
        found = classify.classify_annotations([old.evidence], catalog)
        return found or Classification(CANCELLED, "", None, None, "")
    if item.job.conclusion not in FAILED_CONCLUSIONS:
        return None
    log = archive.read(item.job.id) if archive is not None else None
    if log is not None:
        failed = item.job.failed_step
        found, context = classify.scan_log(
            log,
            catalog,
            steps=[step.name for step in item.job.steps],
            failed_step_number=failed.number if failed else None,
        )
        if found is None:
            return Classification(UNKNOWN_FAILURE, "", old.step, None, "", context)
        return found
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
        found = replace(found, step=found.step or old.step, excerpt=old.excerpt)
    return found


def reclassify(
    store: Store,
    catalog: Catalog,
    repos: Sequence[str],
    since: datetime | None,
    until: datetime | None,
    *,
    lean: bool = False,
    archive: LogArchive | None = None,
) -> list[Change]:
    """Jobs whose measurement changes under the current rules, with their new records.
    Which old point each new record supersedes is decided where it is written
    (`multivac.publish`), from the keys the store remembers."""
    by_run: dict[int, list[StoredJob]] = {}
    for item in store.stored_jobs(repos, since, until):
        by_run.setdefault(item.run.id, []).append(item)
    changes: list[Change] = []
    for run_items in by_run.values():
        flaky = flaky_job_ids([i.job for i in run_items])
        for item in run_items:
            new = _again(item, catalog, archive)
            if new is None:
                continue
            old_measurement = measurement_for(item.job, item.classification)
            if old_measurement is None or measurement_for(item.job, new) == old_measurement:
                continue
            record = build_record(item.run, item.job, new, lean=lean, flaky=item.job.id in flaky)
            if record is not None:
                changes.append(Change(item.job.id, old_measurement, new, record))
    return changes
