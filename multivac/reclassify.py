"""Reclassification: the current rules over the evidence kept in the store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from multivac.archive import DamagedLog
from multivac.model import (
    CANCELLED,
    FAILED_CONCLUSIONS,
    JOB_CANCELLED,
    UNKNOWN_FAILURE,
    Classification,
    Job,
    JobRecord,
    Run,
    build_record,
    flaky_job_ids,
    measurement_for,
)
from multivac.store import Store, StoredJob
from multivac.testresults.runs import JobTests

if TYPE_CHECKING:
    from multivac.archive import LogArchive
    from multivac.classify import Catalog
    from multivac.testresults.parsers import ParserSet


@dataclass(frozen=True)
class Change:
    job_id: int
    old_measurement: str
    classification: Classification
    record: JobRecord


@dataclass(frozen=True)
class TestsChange:
    """A job whose test results, read again, differ from the stored ones."""

    __test__ = False

    run: Run
    job: Job
    tests: JobTests  # the job's own results, the new ones


@dataclass(frozen=True)
class Reclassified:
    changes: list[Change]
    tests: list[TestsChange]


def _excerpt_tests(old: Classification, parsers: ParserSet) -> JobTests | None:
    """Test results in the kept excerpt (a few lines around the evidence): found in
    pieces of a log, their line numbers mean nothing."""
    from multivac.testresults.collector import parse_log_chunks

    text = old.excerpt or old.evidence
    if not text:
        return None
    collector = parse_log_chunks([text.encode("utf-8") + b"\n"], parsers)
    found = tuple(replace(r, line_number=None) for r in collector.results())
    return JobTests(found, 0, frozenset({"log"})) if found else None


def _again(
    item: StoredJob,
    catalog: Catalog,
    archive: LogArchive | None = None,
    parsers: ParserSet | None = None,
) -> tuple[Classification | None, JobTests | None, bool]:
    """The classification the current rules give the job's archived log, else its stored
    evidence (None to keep the old one); the test results read in the same pass (None:
    nothing read), and whether they come from the whole log."""
    from multivac import classify
    from multivac.testresults.collector import TestCollector

    old = item.classification
    if old is None:
        return None, None, False
    if item.job.conclusion == JOB_CANCELLED:
        if not old.evidence:
            return None, None, False
        found = classify.classify_annotations([old.evidence], catalog)
        return found or Classification(CANCELLED, "", None, None, ""), None, False
    if item.job.conclusion not in FAILED_CONCLUSIONS:
        return None, None, False
    log = archive.read(item.job.id) if archive is not None else None
    if log is not None:
        failed = item.job.failed_step
        collector = TestCollector(parsers) if parsers is not None else None
        try:
            found, context = classify.scan_log(
                log,
                catalog,
                steps=[step.name for step in item.job.steps],
                failed_step_number=failed.number if failed else None,
                listeners=[collector] if collector is not None else (),
            )
        except DamagedLog:
            pass  # half a log would move the job to whatever its first half shows
        else:
            tests = JobTests.from_collector(collector) if collector is not None else None
            if found is None:
                context_only = Classification(UNKNOWN_FAILURE, "", old.step, None, "", context)
                return context_only, tests, True
            return found, tests, True
    tests = _excerpt_tests(old, parsers) if parsers is not None else None
    return _from_evidence(old, catalog), tests, False


def _from_evidence(old: Classification, catalog: Catalog) -> Classification | None:
    from multivac import classify

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


def _tests_changed(
    item: StoredJob, read: JobTests, whole: bool, stored: dict[int, JobTests]
) -> JobTests | None:
    """The job's new own results when they differ from the stored ones. A whole log
    replaces what the log gave before (results from JUnit artifacts merged in again);
    an excerpt only adds tests the store does not have."""
    from multivac.testresults.artifacts import merge_job_results

    before = stored.get(item.job.id)
    if whole:
        junit = [r for r in before.results if r.source.startswith("junit")] if before else []
        merged = merge_job_results(read.results, junit) if junit else list(read.results)
        sources = read.sources | (before.sources if before is not None else frozenset())
        new = JobTests(tuple(merged), read.dropped, sources)
    else:
        known = {r.key for r in before.results} if before is not None else set()
        extra = tuple(r for r in read.results if r.key not in known)
        if not extra:
            return None
        base = before or JobTests((), 0, frozenset({"log"}))
        new = JobTests(base.results + extra, base.dropped, base.sources | read.sources)
    if before is not None and before.results == new.results:
        return None
    return new


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
    """Jobs whose measurement changes under the current rules, with their new records."""
    return reclassify_all(store, catalog, repos, since, until, lean=lean, archive=archive).changes


def reclassify_all(
    store: Store,
    catalog: Catalog,
    repos: Sequence[str],
    since: datetime | None,
    until: datetime | None,
    *,
    lean: bool = False,
    archive: LogArchive | None = None,
    parsers: ParserSet | None = None,
) -> Reclassified:
    """Jobs whose measurement changes under the current rules, with their new records;
    and, with `parsers`, jobs whose test results read again (from the archived log in the
    same pass, else from the kept excerpt) differ from the stored ones. Which old point
    each new record supersedes is decided where it is written (`multivac.publish`), from
    the keys the store remembers."""
    from multivac.testresults.store import TestStore

    tests_store = TestStore(store)
    by_run: dict[int, list[StoredJob]] = {}
    for item in store.stored_jobs(repos, since, until):
        by_run.setdefault(item.run.id, []).append(item)
    changes: list[Change] = []
    tests: list[TestsChange] = []
    for run_items in by_run.values():
        flaky = flaky_job_ids([i.job for i in run_items])
        stored = tests_store.tests_of(run_items[0].run.id) if parsers is not None else {}
        for item in run_items:
            new, read, whole = _again(item, catalog, archive, parsers)
            if read is not None:
                changed = _tests_changed(item, read, whole, stored)
                if changed is not None:
                    tests.append(TestsChange(item.run, item.job, changed))
            if new is None:
                continue
            old_measurement = measurement_for(item.job, item.classification)
            if old_measurement is None or measurement_for(item.job, new) == old_measurement:
                continue
            record = build_record(item.run, item.job, new, lean=lean, flaky=item.job.id in flaky)
            if record is not None:
                changes.append(Change(item.job.id, old_measurement, new, record))
    return Reclassified(changes, tests)
