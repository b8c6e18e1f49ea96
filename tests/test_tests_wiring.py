"""The pieces that carry test results from a log to a sink and the store: records,
families (flaky across jobs), artifacts to jobs, buckets, publishing, the store."""

from __future__ import annotations

import io
import sqlite3
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from multivac.classify import load_catalog
from multivac.gather import Gatherer, GatherOptions
from multivac.model import (
    TEST_SCHEMA,
    TESTS_BUCKET,
    PointKey,
    Record,
    TestRecord,
    TestSummaryRecord,
    bucket_role,
    record_type,
)
from multivac.publish import publish
from multivac.sinks.lineproto import to_line
from multivac.store import Store
from multivac.testresults import TestSummary, load_parsers
from multivac.testresults.artifacts import ArtifactRef, assign_artifacts
from multivac.testresults.flaky import FamilyJob, family_statuses
from multivac.testresults.model import TestResult
from multivac.testresults.records import build_test_records, result_offset_ns
from multivac.testresults.runs import JobTests
from multivac.testresults.store import TestStore
from tests.factories import BASE, MemorySource, make_job, make_run
from tests.servers import InfluxDB1Database

CATALOG = load_catalog()
PARSERS = load_parsers()


def result(test: str, status: str = "failed", **more: object) -> TestResult:
    values: dict[str, object] = {"framework": "pytest", "test": test, "status": status}
    values.update(more)
    return TestResult(**values)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- records


def test_only_non_passing_results_become_points() -> None:
    run, job = make_run(1), make_job(7, 1, "failure")
    results = [
        result("a", "failed", message="x" * 900, duration_s=0.5),
        result("b", "passed"),
        result("c", "skipped"),
        result("d", "hung"),
        result("e", "flaky", configuration="vinyl"),
    ]
    records = build_test_records(run, job, results)
    assert [(r.tags["test"], r.tags["status"]) for r in records] == [
        ("a", "failed"),
        ("d", "hung"),
        ("e", "flaky"),
    ]
    first = records[0]
    assert isinstance(first, TestRecord) and first.measurement == "tests"
    assert first.BUCKET == TESTS_BUCKET
    assert len(str(first.fields["message"])) == 500
    assert first.fields["duration_s"] == 0.5
    assert first.fields["job_id"] == 7 and isinstance(first.fields["job_id"], int)
    assert records[2].tags["configuration"] == "vinyl"
    assert "configuration" not in first.tags  # an empty tag is left out
    assert set(first.tags) | set(first.fields) <= set(TEST_SCHEMA.tags) | set(TEST_SCHEMA.fields)


def test_the_summary_point_counts_by_status() -> None:
    run, job = make_run(1), make_job(7, 1, "failure")
    summary = TestSummary(passed=3, failed=1, skipped=2, hung=0, flaky=1, dropped=9)
    (point,) = build_test_records(run, job, [], summary=summary)
    assert isinstance(point, TestSummaryRecord) and point.measurement == "test_summary"
    assert {k: point.fields[k] for k in ("passed", "failed", "skipped", "hung")} == {
        "passed": 3,
        "failed": 1,
        "skipped": 2,
        "hung": 0,
    }
    assert point.fields["flaky_tests"] == 1 and point.fields["dropped"] == 9


def test_two_jobs_queued_in_one_second_stay_apart_in_milliseconds() -> None:
    """The same test in a push run and a pull_request run of one commit: same tags,
    same second; VictoriaMetrics keeps milliseconds, so the job id's share is there."""
    same = result("tests/test_a.py::test_x")
    one = build_test_records(make_run(1), make_job(1001, 1, "failure"), [same])[0]
    two = build_test_records(make_run(2), make_job(2002, 2, "failure"), [same])[0]
    assert one.tags == two.tags
    assert one.time_ns // 1_000_000 != two.time_ns // 1_000_000


def test_tests_of_one_job_are_apart_and_stable() -> None:
    job = make_job(7, 1, "failure")
    records = build_test_records(make_run(1), job, [result(f"t{i}") for i in range(200)])
    assert len({r.time_ns for r in records}) == 200
    assert len({r.key for r in records}) == 200
    again = build_test_records(make_run(1), job, [result(f"t{i}") for i in range(200)][::-1])
    assert {r.key for r in again} == {r.key for r in records}  # order does not move points
    assert all(0 <= result_offset_ns(7, result(f"t{i}")) < 10**9 for i in range(200))


# ---------------------------------------------------------------------------- families


@pytest.mark.parametrize(
    ("family", "want"),
    [
        (  # a later attempt succeeded: the failure was flaky
            [FamilyJob(1, "failure", [result("t")]), FamilyJob(2, "success")],
            {1: ["flaky"], 2: []},
        ),
        (  # another job passed the test though it failed for another reason
            [
                FamilyJob(1, "failure", [result("t")]),
                FamilyJob(2, "failure", [result("t", "passed"), result("u")]),
            ],
            {1: ["flaky"], 2: ["passed", "failed"]},
        ),
        (  # both failed it: failed
            [FamilyJob(1, "failure", [result("t")]), FamilyJob(2, "failure", [result("t")])],
            {1: ["failed"], 2: ["failed"]},
        ),
        (  # a job that succeeded while reporting the test failing is no pass of it
            [
                FamilyJob(1, "failure", [result("t")]),
                FamilyJob(2, "success", [result("t")]),
            ],
            {1: ["failed"], 2: ["failed"]},
        ),
        (  # a hang that passed elsewhere is flaky too
            [FamilyJob(1, "failure", [result("t", "hung")]), FamilyJob(2, "success")],
            {1: ["flaky"], 2: []},
        ),
        (  # a job alone decides nothing about itself
            [FamilyJob(1, "success", [result("t", "passed"), result("u")])],
            {1: ["passed", "failed"]},
        ),
        (  # cancelled is no pass
            [FamilyJob(1, "failure", [result("t")]), FamilyJob(2, "cancelled")],
            {1: ["failed"], 2: []},
        ),
        (  # another configuration is another test
            [
                FamilyJob(1, "failure", [result("t", configuration="memtx")]),
                FamilyJob(2, "failure", [result("t", "passed", configuration="vinyl")]),
            ],
            {1: ["failed"], 2: ["passed"]},
        ),
    ],
)
def test_family_statuses(family: list[FamilyJob], want: dict[int, list[str]]) -> None:
    got = family_statuses(family)
    assert {job: [r.status for r in results] for job, results in got.items()} == want


# ---------------------------------------------------------------------------- artifacts


def ref(aid: int, name: str, minute: float | None) -> ArtifactRef:
    created = BASE + timedelta(minutes=minute) if minute is not None else None
    return ArtifactRef(aid, name, 10, False, "", created)


@pytest.mark.parametrize(
    ("artifact", "owner"),
    [
        (ref(1, "junit-ubuntu-latest-3.12", 30), 11),  # names tell the matrix apart
        (ref(2, "junit-ubuntu-latest-3.11", 30), 12),
        (ref(3, "reports", 30), None),  # two jobs running, no name to tell: nobody
        (ref(4, "reports", 90), 13),  # only `docs` was running then
        (ref(5, "junit-windows", 30), None),  # no job's name says windows
        (ref(6, "junit-docs", None), 13),  # no time: the name decides
    ],
)
def test_which_job_uploaded_an_artifact(artifact: ArtifactRef, owner: int | None) -> None:
    jobs = [
        make_job(11, 1, "failure", name="test (ubuntu-latest, 3.12)", queued=0, ran=3600),
        make_job(12, 1, "success", name="test (ubuntu-latest, 3.11)", queued=0, ran=3600),
        make_job(13, 1, "success", name="docs", created_at=BASE + timedelta(minutes=61), ran=3600),
        make_job(14, 1, "skipped", name="deploy"),
    ]
    # jobs 11 and 12 run from BASE for an hour; docs from minute 61 for an hour
    assert assign_artifacts(jobs, [artifact]) == {artifact.id: owner}


def test_the_only_job_of_a_run_owns_its_artifacts() -> None:
    jobs = [make_job(11, 1, "success", name="build")]
    assert assign_artifacts(jobs, [ref(1, "whatever", 600)]) == {1: 11}


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


JUNIT = (
    b'<testsuite name="pytest"><testcase classname="tests.test_a" name="test_x">'
    b'<failure message="boom"/></testcase><testcase classname="tests.test_a" name="test_y"/>'
    b"</testsuite>"
)


def test_a_gather_reads_artifacts_of_successful_jobs(tmp_path: Path) -> None:
    source = MemorySource()
    source.add(make_run(1), make_job(10, 1, "success", ran=3600))
    source.artifact_files[1] = [
        (500, "junit", zipped({"r.xml": JUNIT}), BASE + timedelta(minutes=5)),
        (501, "junit-old", None, BASE),
    ]
    options = GatherOptions(
        repos=("octo/app",),
        since=None,
        until=BASE + timedelta(days=1),
        junit_artifacts="junit*",
        test_summary=True,
    )
    sink = RecordingSink()
    with Store.open(tmp_path) as store:
        summary = Gatherer(source, options, CATALOG, store=store, parsers=PARSERS).run(sink)
        again = Gatherer(source, options, CATALOG, store=store, parsers=PARSERS)
        again.run(RecordingSink())
    tests = [r for r in sink.written if r.measurement == "tests"]
    assert [(r.tags["test"], r.tags["status"]) for r in tests] == [
        ("tests.test_a.test_x", "failed")
    ]
    (counts,) = [r for r in sink.written if r.measurement == "test_summary"]
    assert (counts.fields["passed"], counts.fields["failed"]) == (1, 1)
    assert summary.tests.artifacts_read == 1 and summary.tests.expired == ["junit-old"]
    assert source.artifact_reads == [500]  # the expired one is not downloaded; nothing twice


# ---------------------------------------------------------------------------- buckets


@pytest.mark.parametrize(
    ("measurement", "role"),
    [
        ("tests", TESTS_BUCKET),
        ("test_summary", TESTS_BUCKET),
        ("test_failure", "jobs"),  # a failure type is a job's measurement
        ("successful_jobs", "jobs"),
        ("runs", "jobs"),
    ],
)
def test_each_record_type_names_its_bucket(measurement: str, role: str) -> None:
    """A target's tests bucket takes the test records; a key to delete finds the same
    bucket by its measurement."""
    assert bucket_role(measurement) == role
    assert role == record_type(measurement).BUCKET


def test_the_test_measurements_are_reserved() -> None:
    from multivac.classify import RESERVED_TYPES

    assert {"tests", "test_summary"} <= RESERVED_TYPES
    assert TestRecord.BUCKET == TestSummaryRecord.BUCKET == TESTS_BUCKET
    assert Record.BUCKET != TESTS_BUCKET


# ---------------------------------------------------------------------------- publishing


class RecordingSink:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[object]]] = []

    def write(self, records: Iterable[Record]) -> None:
        self.calls.append(("write", list(records)))

    def retract(self, keys: Sequence[PointKey]) -> None:
        self.calls.append(("retract", list(keys)))

    def close(self) -> None:
        pass

    @property
    def written(self) -> list[Record]:
        return [r for kind, items in self.calls if kind == "write" for r in items]  # type: ignore[misc]


def test_a_test_whose_status_changed_is_retracted_before_the_new_point(tmp_path: Path) -> None:
    run, job = make_run(1), make_job(7, 1, "failure")
    failed = build_test_records(run, job, [result("t"), result("u")])
    with Store.open(tmp_path) as store:
        first = RecordingSink()
        publish(first, failed, store, tested={7})
        assert [kind for kind, _ in first.calls] == ["write"]
        again = RecordingSink()
        publish(again, failed, store, tested={7})
        assert [kind for kind, _ in again.calls] == ["write"]  # the same keys: nothing stale
        flaky = build_test_records(run, job, [result("t", "flaky"), result("u")])
        later = RecordingSink()
        publish(later, flaky, store, tested={7})
        assert [kind for kind, _ in later.calls] == ["retract", "write"]
        assert later.calls[0][1] == [failed[0].key]
        untested = RecordingSink()
        publish(untested, [], store)  # a job not in `tested` keeps what it wrote
        assert untested.calls == []
        gone = RecordingSink()
        publish(gone, [], store, tested={7})  # every test of the job passes now
        want = sorted([flaky[0].key, flaky[1].key], key=PointKey.to_json)
        assert gone.calls == [("retract", want)]


# ---------------------------------------------------------------------------- store


def test_the_store_keeps_results_but_not_the_passes_of_successful_jobs(tmp_path: Path) -> None:
    run = make_run(1)
    bad = make_job(7, 1, "failure")
    good = make_job(8, 1, "success", name="other")
    own = {
        7: JobTests((result("t"), result("p", "passed")), 3, frozenset({"log"})),
        8: JobTests((result("q", "passed"), result("f", "flaky")), 0, frozenset({"junit"})),
    }
    with Store.open(tmp_path) as store:
        store.save_run(run, [bad, good], {})
        tests = TestStore(store)
        tests.save(run, [bad, good], own, {7: [result("t", "flaky"), result("p", "passed")]})
        back = tests.tests_of(1)
        assert [r.test for r in back[7].results] == ["t", "p"]
        assert [r.status for r in back[7].results] == ["failed", "passed"]  # own statuses
        assert back[7].dropped == 3 and back[7].sources == frozenset({"log"})
        assert [r.test for r in back[8].results] == ["f"]  # the pass is in the counts only
        failing = list(tests.failing([], None, None))
        assert [(f.result.test, f.result.status) for f in failing] == [
            ("t", "flaky"),  # the written status
            ("f", "flaky"),
        ]
        counts = store.db.execute("SELECT passed, flaky FROM test_jobs WHERE job_id = 8")
        assert counts.fetchone() == (1, 1)


def test_an_old_store_gains_the_test_tables(tmp_path: Path) -> None:
    from tests.test_store import V1_TABLES

    with sqlite3.connect(tmp_path / Store.FILENAME) as db:
        db.executescript(V1_TABLES)
    with Store.open(tmp_path) as store:
        assert TestStore(store).tests_of(1) == {}
        indexes = {row[1] for row in store.db.execute("PRAGMA index_list(test_results)")}
        assert "test_results_by_test" in indexes


def test_a_gather_keeps_a_job_parsed_once(tmp_path: Path) -> None:
    log = (
        b"2026-10-01T06:00:01.0000000Z ##[group]Run pytest\n"
        b"2026-10-01T06:00:02.0000000Z FAILED tests/test_a.py::test_x - boom\n"
        b"2026-10-01T06:00:03.0000000Z ##[error]Process completed with exit code 1.\n"
    )
    source = MemorySource()
    source.add(make_run(1), make_job(7, 1, "failure"), logs={7: log})
    options = GatherOptions(repos=("octo/app",), since=None, until=BASE + timedelta(days=1))
    with Store.open(tmp_path) as store:
        first = RecordingSink()
        Gatherer(source, options, CATALOG, store=store, parsers=PARSERS).run(first)
        second = RecordingSink()
        Gatherer(source, options, CATALOG, store=store, parsers=PARSERS).run(second)
    assert source.log_reads == [7]
    tests = [r for r in first.written if r.measurement == "tests"]
    assert [r.tags["test"] for r in tests] == ["tests/test_a.py::test_x"]
    assert [r.key for r in second.written if r.measurement == "tests"] == [tests[0].key]


def test_a_test_line_cap_is_counted_in_the_summary() -> None:
    lines = b"".join(
        b"2026-10-01T06:00:02.0000000Z tests/test_%d.py::test_x PASSED  [ 50%%]\n" % i
        for i in range(12_000)
    )
    log = (
        b"2026-10-01T06:00:01.0000000Z ##[group]Run pytest -v\n"
        + lines
        + b"2026-10-01T06:00:03.0000000Z FAILED tests/test_a.py::test_y - boom\n"
        b"2026-10-01T06:00:03.0000000Z ##[error]Process completed with exit code 1.\n"
    )
    source = MemorySource()
    source.add(make_run(1), make_job(7, 1, "failure"), logs={7: log})
    options = GatherOptions(repos=("octo/app",), since=None, until=BASE + timedelta(days=1))
    sink = RecordingSink()
    summary = Gatherer(source, options, CATALOG, parsers=PARSERS).run(sink)
    assert summary.tests.dropped == 12_000 - 5_000  # passes take at most half the cap
    assert summary.tests.capped_jobs == 1
    assert any("past the per-job cap" in note for note in summary.tests.notes())
    tests = [r for r in sink.written if r.measurement == "tests"]
    assert [r.tags["test"] for r in tests] == ["tests/test_a.py::test_y"]  # the failure stays


def test_results_are_frozen() -> None:
    with pytest.raises(AttributeError):
        replace(result("t")).status = "passed"  # type: ignore[misc]


# ---------------------------------------------------------------------------- files


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_a_gathers_file_with_test_records_reads_back(tmp_path: Path, fmt: str) -> None:
    """CSV and JSON carry job, test and summary records; each reads back with its own
    tags and fields (a job's `job_id` tag is a test record's integer field)."""
    from contextlib import ExitStack

    from multivac.ingest import read_records
    from multivac.model import JOB_SCHEMA, TEST_SUMMARY_SCHEMA, build_record
    from multivac.sinks import Format, build_sink

    run, job = make_run(1), make_job(7, 1, "failure")
    job_record = build_record(run, job, None)
    assert job_record is not None
    tests = build_test_records(
        run,
        job,
        [result("t", message="boom", duration_s=1.5), result("u", "hung", configuration="vinyl")],
        summary=TestSummary(passed=2, failed=1, hung=1),
    )
    written: list[Record] = [job_record, *tests]
    out = tmp_path / f"out.{fmt}"
    with ExitStack() as stack:
        sink = build_sink(
            Format(fmt),
            stack=stack,
            output=out,
            schemas=(JOB_SCHEMA, TEST_SCHEMA, TEST_SUMMARY_SCHEMA),
        )
        sink.write(written)
        sink.close()
    back = list(read_records(out))
    assert [(r.measurement, dict(r.tags), dict(r.fields), r.time_ns) for r in back] == [
        (r.measurement, dict(r.tags), dict(r.fields), r.time_ns) for r in written
    ]


ODD_IDS = [
    "tests/test_a.py::test_x[a b, c=d]",
    'tests/test_a.py::test_q["quoted"]',
    "src/x.test.js > auth › session > logs out",
    "C:\\dir\\test",
    "naïve ü 日本 😀",
]


def test_test_points_round_trip_through_influxdbs_parser(influxdb1_db: InfluxDB1Database) -> None:
    """Test ids with spaces, commas, `=`, quotes and backslashes read back unchanged
    from the real InfluxDB parser."""
    run, job = make_run(1), make_job(7, 1, "failure")
    records = build_test_records(
        run, job, [result(test, message='say "no", a=b \\ end') for test in ODD_IDS]
    )
    lines = [to_line(record) for record in records]
    influxdb1_db.write("\n".join(line for line in lines if line) + "\n")
    points = influxdb1_db.points()
    assert sorted(p.tags["test"] for p in points) == sorted(r.tags["test"] for r in records)
    assert {p.fields["message"] for p in points} == {'say "no", a=b \\ end'}
    assert all(p.measurement == "tests" for p in points)
