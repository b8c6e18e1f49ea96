"""Test results as records: a `tests` point per failed, hung or flaky test, and with
`--test-summary` a `test_summary` point per job (the schemas live in multivac.model).

Passing and skipped results never become points: every distinct `test` tag is a series,
and the passing ones are most of them (docs/tests.md, "Cardinality advice").
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence

from multivac.model import (
    TEST_MEASUREMENT,
    TEST_SUMMARY_MEASUREMENT,
    Job,
    Record,
    Run,
    TestRecord,
    TestSummaryRecord,
    clean,
    lean_offset_ns,
    platform,
    tag_safe,
    to_ns,
)
from multivac.testresults.collector import TestSummary
from multivac.testresults.model import NON_PASSING, TestResult, clip_message

__all__ = ["build_test_records", "result_offset_ns", "summarize"]

MAX_TEST_TAG = 1024  # parametrized ids run long; cutting them at 256 would merge tests


def result_offset_ns(job_id: int, result: TestResult) -> int:
    """Where in its second a test's point sits (GitHub's times are whole seconds).

    Tests of one job differ in their `test` tag (or configuration), so they are distinct
    series and never one point. What can collide is the *same* test in two jobs queued
    in the same second with the same tags: a push run and a pull_request run of one
    commit. The milliseconds come from the job id, because VictoriaMetrics keeps only
    milliseconds; below them a hash of the test's identity spreads one job's tests
    apart for servers that keep nanoseconds. Both are stable, so a test written again
    lands on the same point.
    """
    identity = f"{result.framework}\x00{result.test}\x00{result.configuration or ''}"
    return (job_id % 1000) * 1_000_000 + zlib.crc32(identity.encode("utf-8")) % 1_000_000


def _job_tags(run: Run, job: Job) -> dict[str, str]:
    return {
        "repository": run.repository,
        "workflow": run.workflow or job.workflow,
        "job_name": job.name,
        "branch": run.branch or job.branch,
        "platform": platform(job.labels),
        "runner_label": ",".join(job.labels),
    }


def _id_fields(run: Run, job: Job) -> dict[str, float | int | str]:
    fields: dict[str, float | int | str] = {
        "job_id": job.id,
        "run_id": run.id,
        "run_attempt": job.run_attempt or run.run_attempt,
    }
    sha = run.commit_sha or job.commit_sha
    if sha:
        fields["commit_sha"] = clean(sha)
    fields["html_url"] = (
        clean(job.html_url or run.html_url)
        or f"https://github.com/{run.repository}/actions/runs/{run.id}"
    )
    return fields


def summarize(results: Iterable[TestResult], dropped: int = 0) -> TestSummary:
    """Counts by status of one job's results (`dropped`: past the cap, counted only)."""
    counts = {"passed": 0, "failed": 0, "skipped": 0, "hung": 0, "flaky": 0}
    for result in results:
        if result.status in counts:
            counts[result.status] += 1
    return TestSummary(dropped=dropped, **counts)


def build_test_records(
    run: Run,
    job: Job,
    results: Sequence[TestResult],
    *,
    summary: TestSummary | None = None,
) -> list[Record]:
    """The points of one job's test results: one per non-passing result, and the job's
    `test_summary` point when `summary` is given. A job without a queue time (and no
    run time to fall back on) gets none, as it gets no job record."""
    queued_at = job.created_at or job.started_at or run.created_at
    if queued_at is None:
        return []
    base_ns = to_ns(queued_at)
    job_tags = _job_tags(run, job)
    ids = _id_fields(run, job)
    records: list[Record] = []
    for result in results:
        if result.status not in NON_PASSING:
            continue
        tags = {
            **job_tags,
            "framework": result.framework,
            "status": result.status,
            "configuration": result.configuration or "",
        }
        tags = {key: tag_safe(value) for key, value in tags.items()}
        tags["test"] = tag_safe(result.test, MAX_TEST_TAG)
        fields = dict(ids)
        if result.duration_s is not None:
            fields["duration_s"] = float(result.duration_s)
        message = clip_message(result.message)
        if message:
            fields["message"] = message
        records.append(
            TestRecord(
                measurement=TEST_MEASUREMENT,
                time_ns=base_ns + result_offset_ns(job.id, result),
                tags={key: value for key, value in tags.items() if value},
                fields=fields,
                job_id=job.id,
            )
        )
    if summary is not None:
        tags = {key: tag_safe(value) for key, value in job_tags.items()}
        counts: dict[str, float | int | str] = {
            "passed": summary.passed,
            "failed": summary.failed,
            "skipped": summary.skipped,
            "hung": summary.hung,
            "flaky_tests": summary.flaky,
            "dropped": summary.dropped,
        }
        records.append(
            TestSummaryRecord(
                measurement=TEST_SUMMARY_MEASUREMENT,
                time_ns=base_ns + lean_offset_ns(job.id),
                tags={key: value for key, value in tags.items() if value},
                fields={**counts, **ids},
                job_id=job.id,
            )
        )
    return records
