"""Self-tests of the real-server fixtures, and what they teach about line protocol.

The ``test_point_*`` tests pin down how influxdb-client's ``Point`` escapes
names and values and how the two real parsers (InfluxDB 1.x and
VictoriaMetrics) read them back. multivac's sinks sanitise values according
to them: text without backslashes and control characters survives in every
position; backslashes in names and tag values, newlines anywhere, empty tag
values and a leading ``#`` in a measurement do not.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator

import pytest
import urllib3
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write.point import Point
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from tests.servers import (
    FIELD_SEPARATOR,
    InfluxDB1,
    InfluxDB1Database,
    InfluxDB1Error,
    StoredPoint,
    VictoriaMetrics,
    quote_ident,
    quote_literal,
    to_points,
)

# tests of the test servers themselves: `pytest -m 'not testservers'` skips them
pytestmark = pytest.mark.testservers

T0 = 1_700_000_000_123_000_000  # 2023-11-14, on a whole millisecond
MS = 1_000_000


def client_for(server: VictoriaMetrics, timeout_ms: int = 10_000) -> InfluxDBClient:
    return InfluxDBClient(url=server.url, token="t", org="o", enable_gzip=True, timeout=timeout_ms)


def write_points(server: VictoriaMetrics, points: list[Point]) -> None:
    with client_for(server) as client:
        client.write_api(write_options=SYNCHRONOUS).write(bucket="b", record=points)


# --- VictoriaMetrics -------------------------------------------------------


def test_vm_starts_empty_for_each_test(vm: VictoriaMetrics) -> None:
    assert vm.export() == []
    vm.write("leftover,t=a f=1 1700000000000000000\nnot line protocol")
    assert len(vm.export()) == 1
    assert len(vm.invalid_lines()) == 1


def test_vm_starts_empty_again(vm: VictoriaMetrics) -> None:
    assert vm.export() == []
    assert vm.invalid_lines() == []


def test_vm_round_trip_with_influxdb_client(vm: VictoriaMetrics) -> None:
    job = "build (ubuntu, 3.12), grüße 日本 🎉 a=b \"q\" 'q' #1"
    points = [
        Point("successful_jobs")
        .tag("repository", "octo/hello-world")
        .tag("job_name", job)
        .field("queued_s", 12.0)
        .field("in_progress_s", 301.25)
        .field("attempt", 2)
        .field("ok", True)
        .field("html_url", "https://example.invalid/x")
        .time(T0),
        Point("test_failure").tag("repository", "octo/hello-world").field("queued_s", 0.5).time(T0),
    ]
    write_points(vm, points)

    names = {row["metric"]["__name__"] for row in vm.export()}
    assert names == {
        f"successful_jobs{FIELD_SEPARATOR}{f}"
        for f in ("queued_s", "in_progress_s", "attempt", "ok", "html_url")
    } | {f"test_failure{FIELD_SEPARATOR}queued_s"}

    assert vm.points(fields=["queued_s", "in_progress_s", "attempt", "ok"]) == [
        StoredPoint(
            "successful_jobs",
            {"job_name": job, "repository": "octo/hello-world"},
            {"attempt": 2.0, "in_progress_s": 301.25, "ok": 1.0, "queued_s": 12.0},
            T0,
        ),
        StoredPoint("test_failure", {"repository": "octo/hello-world"}, {"queued_s": 0.5}, T0),
    ]
    # String fields are kept as a series of zeros, not as text.
    assert vm.points(fields=["html_url"])[0].fields == {"html_url": 0.0}
    assert vm.invalid_lines() == []


def test_vm_keeps_milliseconds_only(vm: VictoriaMetrics) -> None:
    write_points(
        vm,
        [
            Point("m").tag("k", "a").field("f", 1.0).time(T0 + 456_789),
            Point("m").tag("k", "b").field("f", 1.0).time(T0 + 400_000),
            Point("m").tag("k", "b").field("f", 2.0).time(T0 + 700_000),
        ],
    )
    # Cut to the millisecond; two points of one series in it become one.
    assert [(p.tags["k"], p.time_ns) for p in vm.points()] == [("a", T0), ("b", T0)]


def test_vm_deduplicates_a_point_written_twice(vm: VictoriaMetrics) -> None:
    point = Point("m").tag("k", "a").field("f", 3.5).time(T0)
    write_points(vm, [point])
    write_points(vm, [point, point])
    rows = vm.export()
    assert [(r["values"], r["timestamps"]) for r in rows] == [([3.5], [T0 // MS])]


def test_vm_accepts_old_points_and_up_to_two_days_ahead(vm: VictoriaMetrics) -> None:
    now_ns = time.time_ns() // MS * MS
    day = 86_400 * 10**9
    times = {
        "2020": 1_577_836_800_000_000_000,
        "2024": 1_704_067_200_000_000_000,
        "now": now_ns,
        "tomorrow": now_ns + day,
    }
    before = vm.row_counters()
    lines = [f"ts,at={name} f=1 {ns}" for name, ns in times.items()]
    lines.append(f"ts,at=in3days f=1 {now_ns + 3 * day}")
    vm.write("\n".join(lines))
    assert {p.tags["at"]: p.time_ns for p in vm.points()} == times
    after = vm.row_counters()
    assert after["too_new"] - before["too_new"] == 1
    assert after["too_old"] == before["too_old"]
    assert any("too big timestamp" in m for m in vm.log_messages())


def test_vm_skips_malformed_lines_but_answers_204(vm: VictoriaMetrics) -> None:
    with client_for(vm) as client:
        client.write_api(write_options=SYNCHRONOUS).write(
            bucket="b", record='good,k=a f=1 1700000000000000000\nbad "line" here\n'
        )
    assert [p.measurement for p in vm.points()] == ["good"]
    assert vm.invalid_lines() == ['bad "line" here']


def test_vm_accepts_int_then_float_for_one_field(vm: VictoriaMetrics) -> None:
    vm.write(f"m f=1i {T0}\nm f=1.5 {T0 + MS}")
    assert [p.fields for p in vm.points()] == [{"f": 1.0}, {"f": 1.5}]


def test_vm_loses_a_point_whose_string_field_has_a_newline(vm: VictoriaMetrics) -> None:
    write_points(
        vm,
        [
            Point("m").tag("k", "nl").field("evidence", "line 1\nline 2").field("f", 1.0).time(T0),
            Point("m").tag("k", "ok").field("evidence", "line 1 line 2").field("f", 1.0).time(T0),
        ],
    )
    # The line splits in two; the first half is rejected, the second ("line
    # 2",f=1 ...) even parses into a junk series.
    assert [p.tags.get("k") for p in vm.points() if p.measurement == "m"] == ["ok"]
    assert vm.invalid_lines() == ['m,k=nl evidence="line 1']


def test_vm_has_no_buckets_api_but_answers_ping(vm: VictoriaMetrics) -> None:
    with client_for(vm) as client:
        assert client.ping() is True
        with pytest.raises(ApiException) as err:
            client.buckets_api().find_bucket_by_name("b")
    assert err.value.status == 400
    assert "unsupported path requested" in str(err.value.body)


def test_to_points_merges_fields_and_drops_the_db_label() -> None:
    rows = [
        {
            "metric": {"__name__": f"m{FIELD_SEPARATOR}f", "db": "x", "k": "a"},
            "values": [1.0, 2.0],
            "timestamps": [1, 2],
        },
        {
            "metric": {"__name__": f"m{FIELD_SEPARATOR}g", "k": "a"},
            "values": [3],
            "timestamps": [1],
        },
        {"metric": {"__name__": "nomeasurement"}, "values": [4], "timestamps": [1]},
    ]
    assert to_points(rows) == [
        StoredPoint("", {}, {"nomeasurement": 4.0}, 1 * MS),
        StoredPoint("m", {"k": "a"}, {"f": 1.0, "g": 3.0}, 1 * MS),
        StoredPoint("m", {"k": "a"}, {"f": 2.0}, 2 * MS),
    ]


def test_vm_restart_keeps_data_and_port(vm: VictoriaMetrics) -> None:
    url = vm.url
    write_points(vm, [Point("m").tag("k", "before").field("f", 1.0).time(T0)])
    vm.restart()
    assert vm.url == url
    write_points(vm, [Point("m").tag("k", "after").field("f", 1.0).time(T0)])
    assert [p.tags["k"] for p in vm.points()] == ["after", "before"]


def test_vm_stopped_refuses_then_accepts_after_start(vm: VictoriaMetrics) -> None:
    vm.stop()
    point = Point("m").tag("k", "a").field("f", 1.0).time(T0)
    with pytest.raises(urllib3.exceptions.HTTPError):
        write_points(vm, [point])
    vm.start()
    write_points(vm, [point])
    assert len(vm.points()) == 1


def test_vm_paused_times_out(vm: VictoriaMetrics) -> None:
    point = Point("m").tag("k", "a").field("f", 1.0).time(T0)
    with vm.paused(), client_for(vm, timeout_ms=300) as client:
        started = time.monotonic()
        with pytest.raises(urllib3.exceptions.HTTPError):
            client.write_api(write_options=SYNCHRONOUS).write(bucket="b", record=point)
        assert time.monotonic() - started < 5
    write_points(vm, [point])
    assert len(vm.points()) == 1


def test_vm_fixture_restarts_a_server_a_test_stopped(
    victoriametrics: VictoriaMetrics,
) -> None:
    victoriametrics.reset()
    victoriametrics.write("m,t=a v=1 1700000000000000000")
    victoriametrics.stop()
    assert not victoriametrics.running
    victoriametrics.reset()  # what the `vm` fixture does before each test
    assert victoriametrics.running
    assert victoriametrics.export() == []


# --- how Point's line protocol reads back ----------------------------------

# Text with no backslash and no control character: Point escapes it so that
# both parsers read it back unchanged in every position.
SAFE_TEXT = {
    "space": "a b",
    "comma": "a,b",
    "equals": "a=b",
    "double_quote": 'say "hi"',
    "single_quote": "it's",
    "non_ascii": "grüße ü 日本 🎉",
    "leading_trailing_space": " a ",
    "hash": "a #1",
    "brackets": "{}[]()<>/|",
    "escape_lookalike": "a/nb",
}


@pytest.mark.parametrize("value", SAFE_TEXT.values(), ids=SAFE_TEXT.keys())
def test_point_safe_text_round_trips_through_influxd(
    influxdb1_db: InfluxDB1Database, value: str
) -> None:
    measurement = f"job {value}"
    point = (
        Point(measurement)
        .tag(f"tag {value}", value)
        .field(f"field {value}", value)
        .field("n", 1.5)
        .time(T0 + 456_789)
    )
    influxdb1_db.write(point.to_line_protocol())

    [tag_row] = influxdb1_db.query(
        f"SHOW TAG VALUES FROM {quote_ident(measurement)} WITH KEY = {quote_ident('tag ' + value)}"
    )
    assert tag_row["value"] == value
    [row] = influxdb1_db.query(
        f"SELECT * FROM {quote_ident(measurement)} WHERE {quote_ident('tag ' + value)} = "
        f"{quote_literal(value)}"
    )
    assert row["time"] == T0 + 456_789
    assert row[f"field {value}"] == value
    assert influxdb1_db.points() == [
        StoredPoint(
            measurement,
            {f"tag {value}": value},
            {f"field {value}": value, "n": 1.5},
            T0 + 456_789,
        )
    ]


def test_point_safe_text_round_trips_through_victoriametrics(vm: VictoriaMetrics) -> None:
    write_points(
        vm,
        [
            Point(f"job {value}")
            .tag(f"tag {value}", value)
            .field(f"field {value}", 1.5)
            .field("s", value)
            .time(T0 + i * MS)
            for i, value in enumerate(SAFE_TEXT.values())
        ],
    )
    assert vm.invalid_lines() == []
    assert vm.points() == [
        StoredPoint(
            f"job {value}", {f"tag {value}": value}, {f"field {value}": 1.5, "s": 0.0}, T0 + i * MS
        )
        for i, value in enumerate(SAFE_TEXT.values())
    ]


STRING_FIELDS = {
    "backslashes": "C:\\dir\\ a\\,b a\\=b ends with \\",
    "quote_backslash": '\\"',
    "newline": "line 1\nline 2",
    "crlf": "line 1\r\nline 2",
    "tab": "a\tb",
    "empty": "",
    "long_70k": "x" * 70_000,
}


@pytest.mark.parametrize("value", STRING_FIELDS.values(), ids=STRING_FIELDS.keys())
def test_point_string_fields_round_trip_through_influxd(
    influxdb1_db: InfluxDB1Database, value: str
) -> None:
    influxdb1_db.write(Point("m").tag("k", "a").field("s", value).time(T0).to_line_protocol())
    assert influxdb1_db.points() == [StoredPoint("m", {"k": "a"}, {"s": value}, T0)]


def test_point_field_types_survive_influxd(influxdb1_db: InfluxDB1Database) -> None:
    point = (
        Point("m")
        .tag("k", "a")
        .field("whole_float", 12.0)
        .field("int", 12)
        .field("flag", False)
        .field("text", "12")
        .field("nan", float("nan"))
        .time(T0)
    )
    assert point.to_line_protocol() == f'm,k=a flag=false,int=12i,text="12",whole_float=12 {T0}'
    influxdb1_db.write(point.to_line_protocol())
    [stored] = influxdb1_db.points()
    assert stored.fields == {"flag": False, "int": 12, "text": "12", "whole_float": 12.0}
    assert isinstance(stored.fields["whole_float"], float)
    assert isinstance(stored.fields["int"], int)


def test_point_without_fields_is_empty() -> None:
    assert Point("m").tag("k", "a").field("f", float("inf")).to_line_protocol() == ""


def test_point_drops_empty_tags_which_influxd_would_reject(influxdb1_db: InfluxDB1Database) -> None:
    point = Point("m").tag("empty", "").tag("none", None).tag("k", "a").field("f", 1.0).time(T0)
    assert point.to_line_protocol() == f"m,k=a f=1 {T0}"
    with pytest.raises(InfluxDB1Error, match="missing tag value"):
        influxdb1_db.write(f"m,empty=,k=a f=1 {T0}")


# Where Point's output does not read back as written: each row is the value
# Point was given and what InfluxDB 1.x and VictoriaMetrics stored.
REJECTED = "<rejected>"  # the server refused the line (influxd 400; VM logged it, 204)
LOST = "<lost>"  # answered 204, yet no point can be read back
ABSENT = "<absent>"  # the point was stored without this tag

POSITIONS = ("measurement", "tag_key", "tag_value", "field_key", "string_field")
# (position, value, influxd reads, VictoriaMetrics reads)
PITFALLS = [
    ("measurement", "a\\ b", LOST, REJECTED),
    ("measurement", "a\\,b", LOST, REJECTED),
    ("measurement", "a\\=b", "a=b", "a=b"),
    ("measurement", "a\\\\b", "a\\\\b", "a\\b"),
    ("measurement", 'a\\"b', 'a"b', 'a\\"b'),
    ("measurement", "ab\\", "ab,t=x", "ab,t=x"),  # the tags become part of the name
    ("measurement", "a\nb", "a\\nb", "a\\nb"),
    ("measurement", "#a", LOST, LOST),  # a comment line; Point only warns
    ("tag_key", "a\\ b", "a\\ b", REJECTED),
    ("tag_key", "a\\,b", "a\\,b", REJECTED),
    ("tag_key", "a\\\\b", "a\\\\b", "a\\b"),
    ("tag_key", "ab\\", REJECTED, REJECTED),
    ("tag_key", "a\nb", "a\\nb", "a\\nb"),
    ("tag_value", "a\\ b", "a\\ b", REJECTED),
    ("tag_value", "a\\,b", "a\\,b", REJECTED),
    ("tag_value", "a\\\\b", "a\\\\b", "a\\b"),
    ("tag_value", "ab\\", "ab ", "ab "),  # Point appends a space after the backslash
    ("tag_value", "a\nb", "a\\nb", "a\\nb"),
    ("tag_value", "a\rb", "a\\rb", "a\\rb"),
    ("tag_value", "a\tb", "a\\tb", "a\\tb"),
    ("tag_value", "", ABSENT, ABSENT),
    ("field_key", "a\\ b", REJECTED, REJECTED),
    ("field_key", "a\\,b", REJECTED, REJECTED),
    ("field_key", "a\\\\b", "a\\\\b", "a\\b"),
    ("field_key", "ab\\", REJECTED, REJECTED),
    ("field_key", "a\nb", "a\\nb", "a\\nb"),
    ("string_field", "a\nb", "a\nb", REJECTED),
]
# A lone backslash before an ordinary character survives everywhere.
FINE = [(pos, "C:\\dir", "C:\\dir", "C:\\dir") for pos in POSITIONS]


def pitfall_point(position: str, value: str) -> Point:
    if position == "measurement":
        point = Point(value).tag("t", "x").field("f", 1.0)
    elif position == "tag_key":
        point = Point("m").tag(value, "x").field("f", 1.0)
    elif position == "tag_value":
        point = Point("m").tag("t", value).field("f", 1.0)
    elif position == "field_key":
        point = Point("m").tag("t", "x").field(value, 1.0)
    else:
        point = Point("m").tag("t", "x").field("s", value).field("f", 1.0)
    timed: Point = point.time(T0)
    return timed


def read_back(position: str, points: list[StoredPoint]) -> str:
    if not points:
        return LOST
    [p] = points
    if position == "measurement":
        return p.measurement
    if position == "tag_key":
        return next(iter(p.tags))
    if position == "tag_value":
        return p.tags.get("t", ABSENT)
    if position == "field_key":
        return next(iter(p.fields))
    return str(p.fields["s"])


def line_of(position: str, value: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)  # Point warns about "#a"
        line: str = pitfall_point(position, value).to_line_protocol()
        return line


@pytest.mark.parametrize(("position", "value", "influxd", "victoria"), PITFALLS + FINE)
def test_point_pitfalls_in_influxd(
    influxdb1_db: InfluxDB1Database, position: str, value: str, influxd: str, victoria: str
) -> None:
    try:
        influxdb1_db.write(line_of(position, value))
    except InfluxDB1Error as err:
        assert err.status == 400
        got = REJECTED
    else:
        got = read_back(position, influxdb1_db.points())
    assert got == influxd


def test_point_pitfalls_in_victoriametrics(vm: VictoriaMetrics) -> None:
    got = {}
    for position, value, _, _ in PITFALLS + FINE:
        vm.reset()
        vm.write(line_of(position, value))
        stored = vm.points()
        if vm.invalid_lines():
            got[(position, value)] = REJECTED
        elif position == "string_field":  # VM keeps no text: is the point there?
            got[(position, value)] = value if stored else LOST
        else:
            got[(position, value)] = read_back(position, stored)
    assert got == {(pos, value): victoria for pos, value, _, victoria in PITFALLS + FINE}


def test_point_tag_value_ending_in_backslash_cannot_be_written(
    influxdb1_db: InfluxDB1Database,
) -> None:
    assert line_of("tag_value", "ab\\") == f"m,t=ab\\  f=1 {T0}"
    for raw in ("m,t=ab\\ f=1", "m,t=ab\\\\ f=1"):
        with pytest.raises(InfluxDB1Error, match="invalid tag format"):
            influxdb1_db.write(raw)


# --- InfluxDB 1.x fixture behaviour -----------------------------------------


def test_influxdb1_db_is_fresh(influxdb1_db: InfluxDB1Database) -> None:
    assert influxdb1_db.points() == []
    assert influxdb1_db.query("SHOW MEASUREMENTS") == []


def test_influxdb1_errors_carry_the_server_message(influxdb1_db: InfluxDB1Database) -> None:
    with pytest.raises(InfluxDB1Error) as err:
        influxdb1_db.write("not line protocol")
    assert err.value.status == 400
    assert "unable to parse 'not line protocol'" in err.value.message

    influxdb1_db.write(f"m f=1i {T0}")
    with pytest.raises(InfluxDB1Error, match="field type conflict"):
        influxdb1_db.write(f"m f=1.5 {T0 + 1}")

    with pytest.raises(InfluxDB1Error) as err:
        influxdb1_db.server.write(f"m f=1 {T0}", db="no_such_db")
    assert err.value.status == 404

    with pytest.raises(InfluxDB1Error, match="error parsing query"):
        influxdb1_db.query("SELEKT 1")


def test_influxdb1_partial_write_keeps_the_good_lines(influxdb1_db: InfluxDB1Database) -> None:
    with pytest.raises(InfluxDB1Error, match="unable to parse"):
        influxdb1_db.write([f"m,k=a f=1 {T0}", "broken", f"m,k=b f=1 {T0}"])
    assert [p.tags["k"] for p in influxdb1_db.points()] == ["a", "b"]


def test_influxdb1_keeps_nanoseconds_and_far_timestamps(influxdb1_db: InfluxDB1Database) -> None:
    times = [1_577_836_800_000_000_001, T0 + 456_789, 1_924_905_600_999_999_999]  # 2020..2030
    influxdb1_db.write([f"m,i={i} f=1 {ns}" for i, ns in enumerate(times)])
    assert [p.time_ns for p in influxdb1_db.points()] == times


def test_influxdb1_merges_fields_of_the_same_point(influxdb1_db: InfluxDB1Database) -> None:
    influxdb1_db.write([f"m,k=a f=1 {T0}", f"m,k=a g=2 {T0}", f"m,k=a f=3 {T0}"])
    assert influxdb1_db.points() == [StoredPoint("m", {"k": "a"}, {"f": 3.0, "g": 2.0}, T0)]


def test_influxdb1_precision_seconds(influxdb1_db: InfluxDB1Database) -> None:
    influxdb1_db.write("m f=1 1700000000", precision="s")
    assert [p.time_ns for p in influxdb1_db.points()] == [1_700_000_000 * 10**9]


def test_influxdb1_restart_keeps_data(influxdb1: InfluxDB1) -> None:
    influxdb1.write(f"restart,k=a f=1 {T0}")
    influxdb1.restart()
    rows = influxdb1.query("SELECT f FROM restart")
    assert [r["time"] for r in rows] == [T0]
    influxdb1.query("DROP MEASUREMENT restart")


def test_point_time_takes_nanoseconds() -> None:
    # The sink hands ints to Point.time(); they must be nanoseconds.
    point = Point("m").field("f", 1.0).time(T0, WritePrecision.NS)
    assert point.to_line_protocol().endswith(f" {T0}")


@pytest.fixture
def two_dbs(influxdb1: InfluxDB1) -> Iterator[tuple[str, str]]:
    for name in ("iso_a", "iso_b"):
        influxdb1.create_database(name)
    yield "iso_a", "iso_b"
    for name in ("iso_a", "iso_b"):
        influxdb1.drop_database(name)


def test_influxdb1_databases_are_isolated(influxdb1: InfluxDB1, two_dbs: tuple[str, str]) -> None:
    a, b = two_dbs
    influxdb1.write(f"m f=1 {T0}", db=a)
    assert len(influxdb1.points(db=a)) == 1
    assert influxdb1.points(db=b) == []
