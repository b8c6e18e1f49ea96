"""The gatherer's logic over an in-memory source: no HTTP, no GitHub test server."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from multivac.classify import load_catalog
from multivac.errors import GitHubError, LogPending
from multivac.gather import Gatherer, GatherOptions
from multivac.model import JobRecord, PointKey, RunRecord, Step
from multivac.store import Store
from tests.factories import BASE, MemorySource, make_job, make_run

CATALOG = load_catalog()
TEST_LOG = b"##[group]Run pytest\nFAILED tests/test_a.py::test_x - assert 1 == 2\n" + (
    b"##[error]Process completed with exit code 1.\n"
)


class RecordingSink:
    """Keeps every call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[object]]] = []

    def write(self, records: Iterable[JobRecord]) -> None:
        self.calls.append(("write", list(records)))

    def retract(self, keys: Sequence[PointKey]) -> None:
        self.calls.append(("retract", list(keys)))

    def close(self) -> None:
        pass

    @property
    def records(self) -> dict[int, JobRecord]:
        return {
            r.job_id: r
            for kind, items in self.calls
            if kind == "write"
            for r in items
            if isinstance(r, JobRecord)
        }


def gatherer(source: MemorySource, store: Store | None = None) -> Gatherer:
    options = GatherOptions(repos=("octo/app",), since=None, until=BASE + timedelta(days=1))
    return Gatherer(source, options, CATALOG, store=store)


def test_one_record_per_finished_job_attempt() -> None:
    source = MemorySource()
    source.add(
        make_run(1),
        make_job(10, 1, "success"),
        make_job(11, 1, "skipped"),
        make_job(12, 1, "failure", name="lint"),
        make_job(13, 1, None, status="in_progress"),
        logs={12: TEST_LOG},
    )
    sink = RecordingSink()
    summary = gatherer(source).run(sink)
    assert {i: r.measurement for i, r in sink.records.items()} == {
        10: "successful_jobs",
        12: "test_failure",
    }
    assert (summary.skipped_jobs, summary.unfinished_jobs, summary.records) == (1, 1, 2)
    assert sink.records[12].fields["evidence"].startswith("FAILED tests/test_a.py::test_x")
    assert source.log_reads == [12]


def test_a_failed_attempt_retried_with_success_is_flaky() -> None:
    source = MemorySource()
    source.add(
        make_run(1, run_attempt=2),
        make_job(10, 1, "failure", run_attempt=1),
        make_job(11, 1, "success", run_attempt=2),
        logs={10: TEST_LOG},
    )
    sink = RecordingSink()
    gatherer(source).run(sink)
    assert sink.records[10].tags["flaky"] == "true"
    assert "flaky" not in sink.records[11].tags


@pytest.mark.parametrize(
    ("log", "measurement", "pending"),
    [
        (None, "log_unavailable", False),  # GitHub says the log is gone (404, 410)
        (
            GitHubError("GitHub refused access to the log (403 Forbidden)."),
            "log_unavailable",
            False,
        ),
        (LogPending("GitHub's log storage kept failing (HTTP 503)"), None, True),
    ],
    ids=["gone", "refused", "outage"],
)
def test_what_a_failed_log_download_leaves(
    log: Exception | None, measurement: str | None, pending: bool
) -> None:
    source = MemorySource()
    logs: dict[int, bytes | Exception] = {12: log} if log is not None else {}
    source.add(make_run(1), make_job(10, 1, "success"), make_job(12, 1, "failure"), logs=logs)
    sink = RecordingSink()
    summary = gatherer(source).run(sink)
    written = sink.records.get(12)
    assert (written.measurement if written else None) == measurement
    assert summary.pending_jobs == int(pending)
    assert 10 in sink.records  # the rest of the run is written either way


def test_a_pending_job_is_read_again_by_the_next_gather(tmp_path: Path) -> None:
    source = MemorySource()
    source.add(
        make_run(1),
        make_job(10, 1, "success"),
        make_job(12, 1, "failure"),
        logs={12: LogPending("the log host kept failing")},
    )
    with Store.open(tmp_path) as store:
        first = RecordingSink()
        assert gatherer(source, store).run(first).pending_jobs == 1
        assert set(first.records) == {10}
        assert store.pending_jobs() == 1

        source.logs[12] = TEST_LOG  # GitHub is healthy again; the run did not change
        source.log_reads.clear()
        second = RecordingSink()
        summary = gatherer(source, store).run(second)
    assert source.log_reads == [12]  # only the pending job's log, not the whole run again
    assert second.records[12].measurement == "test_failure"
    assert summary.pending_jobs == 0
    assert [kind for kind, _ in second.calls] == ["write"]  # nothing was written before


def test_a_point_written_under_another_key_is_retracted_first(tmp_path: Path) -> None:
    source = MemorySource()
    run = make_run(1)
    job = make_job(12, 1, "failure", steps=(Step(1, "Run pytest", "failure"),))
    source.add(run, job, logs={12: None})  # the log is gone: log_unavailable
    with Store.open(tmp_path) as store:
        gatherer(source, store).run(RecordingSink())
        # a later gather reads the log (say an older multivac had filed it wrongly)
        store.db.execute("DELETE FROM classifications")
        store.db.execute("UPDATE runs SET updated_at = NULL")
        source.logs[12] = TEST_LOG
        sink = RecordingSink()
        gatherer(source, store).run(sink)
        (kind, keys), (kind2, records) = sink.calls
        assert (kind, kind2) == ("retract", "write")
        (old,) = keys
        assert isinstance(old, PointKey)
        assert old.measurement == "log_unavailable"
        assert old.predicate_tags == (("job_id", "12"),)
        new, run_point = records  # the job, then its run's point
        assert isinstance(new, JobRecord) and new.measurement == "test_failure"
        assert isinstance(run_point, RunRecord) and run_point.fields["failed_jobs"] == 1
        assert store.emitted([12])[12].key == new.key


def test_a_cancelled_job_past_its_timeout_is_keyed_timeout() -> None:
    source = MemorySource()
    source.add(make_run(1), make_job(12, 1, "cancelled"), make_job(13, 1, "cancelled"))
    source.notes[12] = [
        "The job running on runner GitHub Actions 3 has exceeded the maximum execution "
        "time of 30 minutes."
    ]
    sink = RecordingSink()
    gatherer(source).run(sink)
    assert sink.records[12].measurement == "timeout"
    assert sink.records[13].measurement == "cancelled"
    assert source.log_reads == []  # a cancelled job's cause is in its annotations
