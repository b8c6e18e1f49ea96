"""Reading files back into records: every sink's output reads back to exactly the records
written; formats are detected; bad input is one sentence with the file and the line."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from multivac import ingest
from multivac.errors import IngestError
from multivac.ingest import InputFormat, parse_line, parse_time, read_records, record_from_dict
from multivac.model import Classification, Job, JobRecord, Record, Run, Step, build_record
from multivac.sinks import Format, build_sink
from multivac.sinks.lineproto import to_line
from tests.conftest import Invoke
from tests.ghserver import FakeGitHub

DATA = Path(__file__).resolve().parent / "data" / "annotated_csv"
T = datetime(2026, 10, 1, 12, 0, 0, tzinfo=UTC)
NAMES = ["build", "build, test = all", 'say "hi" \\o/', "C:\\dir\\file", "naïve ü 日本 😀", "#x"]


def job_records(lean: bool) -> list[JobRecord]:
    """Records as gather builds them: every measurement, failure fields, flaky, odd names."""
    out: list[JobRecord] = []
    for i, name in enumerate(NAMES):
        run = Run(
            id=9_000_000_000 + i,
            repository="octo/app",
            workflow='CI, "nightly"',
            workflow_path=".github/workflows/ci.yml",
            run_attempt=1 + i % 2,
            branch=f"feature/{name}",
            commit_sha=f"{i:040x}",
            event="push",
            status="completed",
            conclusion="failure",
            created_at=T,
            updated_at=T,
            html_url=f"https://github.com/octo/app/actions/runs/{9_000_000_000 + i}",
        )
        for j, conclusion in enumerate(("success", "failure", "cancelled", "failure")):
            job = Job(
                id=30_000_000_000 + 10 * i + j,
                run_id=run.id,
                run_attempt=run.run_attempt,
                name=f"{name} {j}",
                status="completed",
                conclusion=conclusion,
                created_at=T + timedelta(minutes=i, seconds=j),
                started_at=None if j == 3 else T + timedelta(minutes=i, seconds=j + 7.25),
                completed_at=T + timedelta(minutes=i + 3),
                labels=("ubuntu-latest",) if j % 2 else ("self-hosted", "linux", "ARM64"),
                runner_name=f"runner {name}",
                html_url=f"https://github.com/octo/app/actions/runs/{run.id}/job/{j}",
                steps=(Step(1, "Set up job", "success"), Step(2, f"Run {name}", "failure")),
            )
            cls = (
                Classification("test_failure", "pytest", f"Run {name}", 12, 'E  assert "a,b"')
                if j == 1
                else None
            )
            record = build_record(run, job, cls, lean=lean, flaky=(j == 0 and i % 2 == 1))
            assert record is not None
            out.append(record)
    return out


SUFFIX = {
    Format.csv: ".csv",
    Format.json: ".json",
    Format.jsonl: ".jsonl",
    Format.influx_csv: ".csv",
    Format.line_protocol: ".lp",
}


def write(fmt: Format, records: list[JobRecord], path: Path, lean: bool, batch: int = 5) -> None:
    with ExitStack() as stack:
        sink = build_sink(fmt, stack=stack, output=path, lean=lean)
        for start in range(0, len(records), batch):
            sink.write(records[start : start + batch])
        sink.close()


def key(record: Record) -> tuple[int, str, tuple[tuple[str, str], ...]]:
    return record.time_ns, record.measurement, tuple(sorted(record.tags.items()))


@pytest.mark.parametrize("lean", [False, True], ids=["tags", "lean"])
@pytest.mark.parametrize("fmt", list(SUFFIX), ids=[f.value for f in SUFFIX])
def test_a_file_reads_back_to_exactly_the_records_written(
    fmt: Format, lean: bool, tmp_path: Path
) -> None:
    records = job_records(lean)
    path = tmp_path / f"out{SUFFIX[fmt]}"
    write(fmt, records, path, lean)
    assert ingest.detect_format(path).value == fmt.value
    back = list(read_records(path))
    if fmt is Format.influx_csv:  # tables group a batch by measurement
        back.sort(key=key)
        records = sorted(records, key=key)
    assert back == records
    for got, want in zip(back, records, strict=True):
        assert {k: type(v) for k, v in got.fields.items()} == {
            k: type(v) for k, v in want.fields.items()
        }
    if lean:
        assert all(type(r.fields["job_id"]) is int for r in back)
        assert all("job_id" not in r.tags for r in back)


def test_every_gathered_format_reads_back_to_the_same_records(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    repo = ghserver.add_repo("octo/formats")
    workflow = repo.add_workflow('CI, "nightly" = yes', ".github/workflows/ci.yml")
    now = datetime.now(UTC).replace(microsecond=0)
    for i, name in enumerate(NAMES):
        run = repo.add_run(workflow, now - timedelta(hours=2, minutes=i), branch=f"f/{name}")
        run.add_job(name, conclusion="success", runner_name=f"runner {name}")
        run.add_job(f"{name} 2", conclusion="failure")
    env = {"GITHUB_API_URL": ghserver.url}
    found: dict[str, list[Record]] = {}
    for lean in (False, True):
        for fmt in SUFFIX:
            path = tmp_path / f"{fmt.value}-{lean}{SUFFIX[fmt]}"
            extra = ["--lean-tags"] if lean else []
            state = ["--state-dir", str(tmp_path / f"state-{fmt.value}-{lean}")]
            result = cli(
                "gather", "octo/formats", "--no-logs", "--steps", "-f", fmt.value,
                "-o", str(path), *extra, *state, env=env,
            )  # fmt: skip
            assert result.exit_code == 0, result.stderr
            found[f"{fmt.value}-{lean}"] = sorted(read_records(path), key=key)
    for lean in (False, True):
        reference = found[f"jsonl-{lean}"]
        kinds = Counter(type(record).__name__ for record in reference)
        # two jobs of four steps each per run, one run point per run
        assert kinds == {
            "JobRecord": 2 * len(NAMES),
            "StepRecord": 8 * len(NAMES),
            "RunRecord": len(NAMES),
        }
        for fmt in SUFFIX:
            assert found[f"{fmt.value}-{lean}"] == reference, fmt.value


# ---------------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("a.csv", "time,measurement,repository\n", InputFormat.csv),
        ("a.csv", "#group,false,true\n#datatype,dateTime:RFC3339,measurement\n", "influx-csv"),
        ("a.csv", "#datatype measurement,tag,double,dateTime:RFC3339\n", "influx-csv"),
        ("a.csv", "sep=;\nm|measurement;v|double\n", "influx-csv"),
        ("a.csv", "m|measurement,temp|double,time|dateTime:RFC3339\n", "influx-csv"),
        ("a.json", "[\n  {}\n]\n", "json"),
        ("a.json", '{"measurement": "m"}\n', "jsonl"),
        ("a.jsonl", "anything\n", "jsonl"),
        ("a.ndjson", "", "jsonl"),
        ("a.lp", "", "line-protocol"),
        ("a.txt", "# comment\nm,t=1 v=1 1\n", "line-protocol"),
        ("noext", "m v=1i 1\n", "line-protocol"),
        ("noext", "\ufefftime,measurement,a\n", "csv"),
        ("noext", '  [{"a": 1}]', "json"),
        ("noext", '{"a": 1}\n', "jsonl"),
        ("a.csv.gz", "time,measurement,repository\n", "csv"),
        ("a.lp.gz", "whatever\n", "line-protocol"),
        ("empty", "", "line-protocol"),
        ("empty.csv", "\n\n", "csv"),
    ],
)
def test_the_format_is_told_by_extension_then_by_content(
    name: str, text: str, expected: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    assert ingest.detect_format(path) == InputFormat(expected)


@pytest.mark.parametrize(
    ("name", "text"),
    [("notes.txt", "hello world\n"), ("a.csv", "a,b,c\n1,2,3\n"), ("a.json", "hello\n")],
)
def test_an_unknown_format_is_one_sentence_naming_the_file(
    name: str, text: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(IngestError) as caught:
        ingest.detect_format(path)
    assert str(path) in str(caught.value)
    assert str(caught.value).endswith(".") and "\n" not in str(caught.value)


def test_a_missing_file_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"cannot read .*missing\.lp"):
        list(read_records(tmp_path / "missing.lp"))


def test_gzip_files_stream_through(tmp_path: Path) -> None:
    records = job_records(False)
    plain = tmp_path / "out.jsonl"
    write(Format.jsonl, records, plain, False)
    packed = tmp_path / "out.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert list(read_records(packed)) == records


# ---------------------------------------------------------------------------- bad input


GOOD_LP = "m,t=a v=1 1\n"
GOOD_JSONL = '{"measurement": "m", "tags": {}, "fields": {"v": 1.0}, "time": 1}\n'
GOOD_ANNOTATED = "#datatype,measurement,double,dateTime:number\n,m,v,time\n,m,1,1\n"


@pytest.mark.parametrize(
    ("name", "text", "line", "words"),
    [
        ("a.lp", GOOD_LP + "m v=1\n", 2, "no timestamp"),
        ("a.lp", GOOD_LP + "\n# c\nm v=abc 1\n", 4, "not a line protocol field value"),
        ("a.lp", GOOD_LP + 'm v="open 1\n', 2, "not closed"),
        ("a.lp", GOOD_LP + "m,t= v=1 1\n", 2, "empty value"),
        ("a.lp", GOOD_LP + "m,t v=1 1\n", 2, "no value"),
        ("a.lp", GOOD_LP + "m\n", 2, "no field"),
        ("a.lp", GOOD_LP + "m v=1 12:00\n", 2, "not an integer"),
        ("a.lp", GOOD_LP + "m v=99999999999999999999i 1\n", 2, "64-bit"),
        ("a.jsonl", GOOD_JSONL + "{not json}\n", 2, "not JSON"),
        ("a.jsonl", GOOD_JSONL + "[1]\n", 2, "expected a JSON object"),
        ("a.jsonl", GOOD_JSONL + '{"measurement": "m", "fields": {"v": 1}}\n', 2, "time"),
        ("a.jsonl", GOOD_JSONL + '{"measurement": "m", "fields": {}, "time": 1}\n', 2, "field"),
        (
            "a.jsonl",
            GOOD_JSONL + '{"measurement": "m", "fields": {"v": []}, "time": 1}\n',
            2,
            "list",
        ),
        (
            "a.jsonl",
            GOOD_JSONL + '{"measurement": "m", "field": {"v": 1}, "time": 1}\n',
            2,
            "neither",
        ),
        (
            "a.jsonl",
            GOOD_JSONL + '{"measurement": "m", "fields": {"v": 1}, "time": 1, "tag": 2}\n',
            2,
            "unknown key 'tag'",
        ),
        (
            "a.jsonl",
            GOOD_JSONL + '{"measurement": "m", "fields": {"v": 1}, "time": "noon"}\n',
            2,
            "RFC 3339",
        ),
        ("a.json", "[\n" + GOOD_JSONL.strip() + ",\n  {bad}\n]\n", 3, "not JSON"),
        ("a.json", "[\n" + GOOD_JSONL.strip() + "\n" + GOOD_JSONL.strip() + "]", 3, "comma"),
        ("a.json", "[\n" + GOOD_JSONL.strip() + ",\n", 3, "not closed"),
        ("a.json", "[" + GOOD_JSONL.strip() + "]\n[]\n", 2, "more after"),
        ("a.json", '[{"time": "2026-01-01T00:00:00Z", "measurement": "m", "x": 1}]', 1, "neither"),
        ("a.csv", "time,measurement,nope\n", 1, "layout multivac writes"),
        ("b.csv", GOOD_ANNOTATED + ",m,x,2\n", 4, "not a number"),
        ("b.csv", GOOD_ANNOTATED + ",,1,2\n", 4, "measurement is empty"),
        ("b.csv", GOOD_ANNOTATED + ",m,,2\n", 4, "no field"),
        ("b.csv", GOOD_ANNOTATED + ",m,1,\n", 4, "no time"),
        ("b.csv", "#constant measurement,m\n", 1, "#constant"),
        ("b.csv", "#datatype,tag,double\n,t,v\n", 2, "no measurement column"),
        ("b.csv", "#datatype,measurement,double:.\n,m,v\n,m,1\n", 3, "format"),
        ("b.csv", "#datatype,measurement,base64Binary,time\n,m,b,t\n", 2, "base64Binary"),
        ("b.csv", "#datatype,measurement,weird\n,m,w\n", 2, "unknown datatype"),
        ("b.csv", '#datatype,measurement,double,time\n,m,v,t\n,m,"1\n', 3, "CSV"),
    ],
)
def test_bad_input_is_one_sentence_with_the_file_and_line_after_the_good_records(
    name: str, text: str, line: int, words: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    got: list[JobRecord] = []
    with pytest.raises(IngestError) as caught:
        got.extend(read_records(path))
    message = str(caught.value)
    assert message.startswith(f"{path} line {line}: ") or message.startswith(
        f"{path} near line {line}: "
    ), message
    assert words in message
    assert message.endswith(".") and "\n" not in message
    # what came before the bad line was handed on: nothing gathered is lost
    element = GOOD_JSONL.strip()
    starts_good = (GOOD_LP, GOOD_JSONL, GOOD_ANNOTATED, "[\n" + element, "[" + element)
    assert len(got) == (1 if text.startswith(starts_good) else 0)


def test_text_that_is_not_utf8_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "a.lp"
    path.write_bytes(b"m v=1 1\n" + b"m v=\xff 2\n")
    with pytest.raises(IngestError, match="not UTF-8"):
        list(read_records(path))


def test_a_damaged_gzip_file_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "a.lp.gz"
    path.write_bytes(gzip.compress(b"m v=1 1\n" * 1000)[:-20])
    with pytest.raises(IngestError, match=r"a\.lp\.gz"):
        list(read_records(path))


# ---------------------------------------------------------------------------- line protocol


@pytest.mark.parametrize(
    ("line", "measurement", "tags", "fields", "time_ns"),
    [
        ("m v=1 1", "m", {}, {"v": 1.0}, 1),
        ("m v=1i -5", "m", {}, {"v": 1}, -5),
        ("m v=18446744073709551615u 1", "m", {}, {"v": 2**64 - 1}, 1),
        ("m v=-1.5e-3,w=.5,x=1. 1", "m", {}, {"v": -0.0015, "w": 0.5, "x": 1.0}, 1),
        ("m a=t,b=T,c=true,d=True,e=TRUE 1", "m", {}, dict.fromkeys("abcde", True), 1),
        ("m a=f,b=F,c=false,d=False,e=FALSE 1", "m", {}, dict.fromkeys("abcde", False), 1),
        ('m s="a, b=c d" 1', "m", {}, {"s": "a, b=c d"}, 1),
        ('m s="say \\"hi\\" \\\\o/" 1', "m", {}, {"s": 'say "hi" \\o/'}, 1),
        ('m s="C:\\dir" 1', "m", {}, {"s": "C:\\dir"}, 1),
        ('m s="" 1', "m", {}, {"s": ""}, 1),
        ("my\\ m\\,x,k=v v=1 1", "my m,x", {"k": "v"}, {"v": 1.0}, 1),
        ("m,k\\ 1=v\\,\\=\\ x v=1 1", "m", {"k 1": "v,= x"}, {"v": 1.0}, 1),
        ("m,k=C:\\dir\\file v=1 1", "m", {"k": "C:\\dir\\file"}, {"v": 1.0}, 1),
        ("m,k=naïve\\ 日本 v\\=x=1 1", "m", {"k": "naïve 日本"}, {"v=x": 1.0}, 1),
        ("m,b=2,a=1 v=1 1", "m", {"a": "1", "b": "2"}, {"v": 1.0}, 1),
        ("m=x v=1 1", "m=x", {}, {"v": 1.0}, 1),
    ],
)
def test_line_protocol_lines_parse_to_typed_records(
    line: str, measurement: str, tags: dict[str, str], fields: dict[str, object], time_ns: int
) -> None:
    record = parse_line(line)
    assert record == JobRecord(measurement, time_ns, tags, fields)
    assert {k: type(v) for k, v in record.fields.items()} == {k: type(v) for k, v in fields.items()}


@pytest.mark.parametrize(
    "line",
    [
        "m",
        "m v=1",
        "m v= 1",
        "m v=1x 1",
        "m v=nan 1",
        "m v=inf 1",
        "m v=1.2.3 1",
        "m v=tru 1",
        'm v="open 1',
        'm v="a"b" 1',
        "m,k v=1 1",
        "m,=v v=1 1",
        "m, v=1 1",
        "m =1 1",
        "m v=1 1 2",
        "m v=1 1.5",
        "m v=-1u 1",
        ",k=v v=1 1",
    ],
)
def test_near_miss_line_protocol_is_refused(line: str) -> None:
    with pytest.raises(IngestError):
        parse_line(line)


def test_every_line_the_line_protocol_sink_writes_parses_back() -> None:
    for record in job_records(False) + job_records(True):
        assert parse_line(to_line(record)) == record


# ---------------------------------------------------------------------------- annotated CSV


@pytest.mark.parametrize("name", sorted(p.stem for p in DATA.glob("*.csv")))
def test_influxdatas_documented_examples_read_as_the_documented_line_protocol(
    name: str,
) -> None:
    csv_file, expected = DATA / f"{name}.csv", DATA / f"{name}.lp"
    assert ingest.detect_format(csv_file) is InputFormat.influx_csv
    assert list(read_records(csv_file)) == list(read_records(expected))


def test_documented_unsigned_and_duration_values_keep_their_numbers() -> None:
    first, second = read_records(DATA / "defaults.csv")
    assert first.fields == {"s": "str1", "d": 1.0, "b": True, "l": 1, "ul": 1, "dur": 1_000_000}
    assert second.time_ns == 1_578_737_410_000_000_000
    assert second.fields["dur"] == 2000


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("t", True),
        ("Yes", True),
        ("1", True),
        ("f", False),
        ("No", False),
        ("0", False),
    ],
)
def test_annotated_booleans_read_as_csv2lp_reads_them(
    cell: str, value: bool, tmp_path: Path
) -> None:
    path = tmp_path / "b.csv"
    path.write_text(f"#datatype,measurement,boolean,dateTime:number\n,m,b,time\n,m,{cell},1\n")
    [record] = read_records(path)
    assert record.fields == {"b": value}


def test_the_last_datetime_column_is_the_time_and_ignored_columns_are_left_out(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "#datatype,measurement,dateTime:RFC3339,ignored,long,dateTime:number\n"
        ",m,first,skip,v,second\n"
        ",m,2020-01-01T00:00:00Z,x,3,7\n"
    )
    assert list(read_records(path)) == [JobRecord("m", 7, {}, {"v": 3})]


@pytest.mark.parametrize(
    ("duration", "ns"),
    [
        ("1ns", 1),
        ("2us", 2000),
        ("3µs", 3000),
        ("1.5h", 5_400_000_000_000),
        ("1h2m3s", 3_723_000_000_000),
        ("-1ms", -1_000_000),
        ("0", 0),
    ],
)
def test_go_durations_become_integer_nanoseconds(duration: str, ns: int, tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text(
        f"#datatype,measurement,duration,dateTime:number\n,m,d,time\n,m,{duration},1\n",
        encoding="utf-8",
    )
    [record] = read_records(path)
    assert record.fields == {"d": ns}


@pytest.mark.parametrize("duration", ["1", "1x", "h", "1h2", "1.h.", "--1s"])
def test_near_miss_durations_are_refused(duration: str, tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text(f"#datatype,measurement,duration,dateTime:number\n,m,d,time\n,m,{duration},1\n")
    with pytest.raises(IngestError, match="line 3"):
        list(read_records(path))


# ---------------------------------------------------------------------------- times and dicts


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2026-01-02T03:04:05.123456789Z", 1_767_323_045_123_456_789),
        ("2026-01-02T03:04:05.1Z", 1_767_323_045_100_000_000),
        ("2026-01-02T04:04:05+01:00", 1_767_323_045_000_000_000),
        ("2026-01-02t03:04:05z", 1_767_323_045_000_000_000),
        ("1969-12-31T23:59:59.5Z", -500_000_000),
    ],
)
def test_rfc3339_times_read_to_the_nanosecond(text: str, ns: int) -> None:
    assert parse_time(text) == ns


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-02",
        "2026-01-02T03:04:05",
        "2026-01-02 03:04:05Z",
        "2026-02-30T00:00:00Z",
        "2026-01-02T03:04:05.1234567891Z",
        "2026-01-02T25:00:00Z",
        "yesterday",
    ],
)
def test_near_miss_times_are_refused(text: str) -> None:
    with pytest.raises(IngestError, match="time"):
        parse_time(text)


def test_a_plain_dict_becomes_a_record_as_the_original_connector_took_it() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    record = record_from_dict(
        {
            "measurement": "telescope",
            "tags": {"station": "north", "dome": 2, "open": True, "gone": None},
            "fields": {"temp": 21.5, "count": 3, "ok": False, "note": "clear", "none": None},
            "time": moment,
        }
    )
    assert record == JobRecord(
        "telescope",
        1_767_323_045_123_456_000,
        {"station": "north", "dome": "2", "open": "true"},
        {"temp": 21.5, "count": 3, "ok": False, "note": "clear"},
    )
    assert (
        record_from_dict({"measurement": "m", "fields": {"v": 1}}, default_time_ns=5).time_ns == 5
    )


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"measurement": "m", "fields": {"v": 1}}, "time is missing"),
        ({"measurement": 3, "fields": {"v": 1}, "time": 1}, "measurement"),
        ({"measurement": "m", "fields": {"v": float("nan")}, "time": 1}, "finite"),
        ({"measurement": "m", "fields": {"v": 1}, "time": 1.5}, "nanoseconds"),
        ({"measurement": "m", "fields": {"v": 1}, "time": True}, "boolean"),
        ({"measurement": "m", "tags": {"t": [1]}, "fields": {"v": 1}, "time": 1}, "tag 't'"),
        ({"measurement": "m", "tags": [], "fields": {"v": 1}, "time": 1}, "must be objects"),
    ],
)
def test_a_bad_dict_is_one_sentence(data: dict[str, object], words: str) -> None:
    with pytest.raises(IngestError, match=words) as caught:
        record_from_dict(data)
    assert str(caught.value).endswith(".")


def test_a_json_array_streams_element_by_element(tmp_path: Path) -> None:
    """Elements larger than the read size, and any layout of whitespace, read back."""
    records = [
        JobRecord("m", i, {"t": "x" * 70_000}, {"v": float(i), "s": "é" * 40_000}) for i in range(3)
    ]
    objects = [
        json.loads(
            json.dumps(
                {
                    "measurement": r.measurement,
                    "tags": dict(r.tags),
                    "fields": dict(r.fields),
                    "time": r.time_ns,
                }
            )
        )
        for r in records
    ]
    path = tmp_path / "big.json"
    path.write_text(json.dumps(objects, indent=3), encoding="utf-8")
    assert list(read_records(path)) == records


def test_reading_stops_early_without_reading_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "a.lp"
    path.write_text("m v=1 1\n" * 10 + "garbage\n")
    stream = read_records(path)
    assert next(stream) == JobRecord("m", 1, {}, {"v": 1.0})
    stream.close()  # no error: the bad line was never reached


QUICK_CASES = [
    # (line, True when the quick path must take it, False when it must leave it)
    ('my\\ m\\,x,k\\ 1=v\\,\\=\\ x v\\=x=1,s="say \\"hi\\" \\\\o/" 1', True),
    ("m\\=x v=1 1", True),
    ("m v=1 1", True),
    ('m,t=a"b v="",w="x, y=z",n=2i,b=true 3', True),
    ("m=x,k=v f=1.5 -7", True),
    ("m,k=C:\\dir\\file,j=a\\\\,l=x v=1 1", False),  # a literal backslash before `\,`
    ("m v=1 1 ", False),
    ("m v=1,,w=2 1", False),
    ('m v="a"b 1', False),
    ("m v=1=2 1", False),
    ("m,t= v=1 1", False),
    ("m v=1 1 2", False),
]


@pytest.mark.parametrize(("line", "quick"), QUICK_CASES)
def test_the_quick_path_and_the_careful_parser_agree(line: str, quick: bool) -> None:
    fast = ingest._parse_line_fast(line)
    assert (fast is not None) is quick
    if fast is not None:
        assert fast == ingest._parse_line_careful(line)


def test_every_gathered_line_takes_the_quick_path_to_the_same_record() -> None:
    for record in job_records(False) + job_records(True):
        assert ingest._parse_line_fast(to_line(record)) == record
