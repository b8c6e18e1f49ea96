"""The annotated CSV and JSON Lines sinks, line by line against what their formats specify.

Annotated CSV: InfluxData's "Annotated CSV" and "Extended annotated CSV" pages and the
csv2lp README (quoted in multivac/sinks/influx_csv.py). Checked here line by line, then
read by InfluxData's own JavaScript client and by Go's encoding/csv and time.Parse (what
csv2lp is built on) where those are installed.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import unicodedata
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from multivac import ingest
from multivac.errors import SinkError
from multivac.model import JobRecord, format_time_ns, tag_safe
from multivac.sinks import Format, build_sink
from multivac.sinks.influx_csv import RESERVED, InfluxCsvSink, quote
from multivac.sinks.jsonl import JsonLinesSink
from multivac.sinks.lineproto import to_line

HERE = Path(__file__).resolve().parent
T0 = 1_767_323_045_123_456_789  # 2026-01-02T03:04:05.123456789Z
URL = "https://github.com/octo/app/actions/runs/1/job/2"


def rec(
    measurement: str = "successful_jobs",
    time_ns: int = T0,
    tags: dict[str, str] | None = None,
    fields: dict[str, Any] | None = None,
) -> JobRecord:
    return JobRecord.from_point(
        measurement,
        time_ns,
        {"repository": "octo/app"} if tags is None else tags,
        {"queued_s": 1.5, "html_url": URL} if fields is None else fields,
    )


def influx_csv(*batches: list[JobRecord]) -> str:
    out = io.StringIO()
    sink = InfluxCsvSink(out)
    for batch in batches:
        sink.write(batch)
    sink.close()
    return out.getvalue()


def cells(text: str) -> list[list[str]]:
    """The file as RFC 4180 rows (empty rows kept as [])."""
    return list(csv.reader(io.StringIO(text, newline="")))


def tables(text: str) -> list[list[list[str]]]:
    """The file split at empty rows: one list of rows per table."""
    out: list[list[list[str]]] = [[]]
    for row in cells(text):
        if not row:
            out.append([])
        else:
            out[-1].append(row)
    return out


# ---------------------------------------------------------------------------- layout


def test_one_table_line_by_line() -> None:
    records = [
        rec("test_failure", T0, {"repository": "octo/app"}, {"queued_s": 1.5, "html_url": URL}),
        rec(
            "test_failure",
            T0 + 1_000_000_000,
            {"repository": "octo/app", "flaky": "true"},
            {"queued_s": 2.0, "html_url": URL, "failure_step": "Run tests"},
        ),
    ]
    lines = influx_csv(records).split("\n")
    assert lines == [
        "#group,false,true,false,false,false,false,false",
        "#datatype,dateTime:RFC3339,measurement,tag,tag,double,string,string",
        "#default,,,,,,,",
        ",time,measurement,repository,flaky,queued_s,html_url,failure_step",
        f",2026-01-02T03:04:05.123456789Z,test_failure,octo/app,,1.5,{URL},",
        f",2026-01-02T03:04:06.123456789Z,test_failure,octo/app,true,2.0,{URL},Run tests",
        "",
    ]


def test_every_table_has_the_three_annotations_then_a_header_of_the_same_width() -> None:
    text = influx_csv(
        [rec("successful_jobs"), rec("test_failure", fields={"rule": "pytest", "queued_s": 2.0})],
        [rec("cancelled", tags={"repository": "octo/app", "branch": "main"})],
    )
    found = tables(text)
    assert [table[4][2] for table in found] == ["successful_jobs", "test_failure", "cancelled"]
    for table in found:
        group, datatype, default, header, *rows = table
        assert [group[0], datatype[0], default[0]] == ["#group", "#datatype", "#default"]
        # the annotation column: empty on the header and on every record row
        assert header[0] == "" and all(row[0] == "" for row in rows)
        assert len({len(row) for row in table}) == 1, "a row of another width"
        assert datatype[1:3] == ["dateTime:RFC3339", "measurement"]
        assert header[1:3] == ["time", "measurement"]
        assert group[1:] == ["false", "true"] + ["false"] * (len(header) - 3)
        assert set(default[1:]) == {""}
        assert rows and all(row[2] == table[4][2] for row in rows), "one measurement a table"
    # tables are separated by exactly one empty row, and the file ends with a row
    assert "\n\n\n" not in text and text.count("\n\n") == 2 and text.endswith("\n")
    assert not text.endswith("\n\n")


def test_a_tag_set_that_differs_between_rows_shares_one_table_with_empty_cells() -> None:
    records = [
        rec(tags={"repository": "octo/app", "branch": "main"}),
        rec(tags={"repository": "octo/app", "runner_label": "ubuntu-latest"}),
        rec(tags={"repository": "octo/app"}),
    ]
    [table] = tables(influx_csv(records))
    header, rows = table[3], table[4:]
    assert header == [
        "",
        "time",
        "measurement",
        "repository",
        "branch",
        "runner_label",
        "queued_s",
        "html_url",
    ]
    by_label = [dict(zip(header, row, strict=True)) for row in rows]
    assert [r["branch"] for r in by_label] == ["main", "", ""]
    assert [r["runner_label"] for r in by_label] == ["", "ubuntu-latest", ""]


def test_a_key_whose_type_changes_starts_another_table() -> None:
    text = influx_csv([rec(fields={"n": 1}), rec(fields={"n": 1.5}), rec(fields={"n": 2})])
    found = tables(text)
    assert [t[1] for t in found] == [
        ["#datatype", "dateTime:RFC3339", "measurement", "tag", "long"],
        ["#datatype", "dateTime:RFC3339", "measurement", "tag", "double"],
    ]
    assert [[row[4] for row in t[4:]] for t in found] == [["1", "2"], ["1.5"]]


def test_a_later_batch_continues_the_last_table_when_its_columns_fit() -> None:
    text = influx_csv([rec(), rec(tags={"repository": "octo/app", "branch": "main"})], [rec()])
    assert len(tables(text)) == 1
    assert text.count("#datatype") == 1
    assert len(cells(text)) == 7


@pytest.mark.parametrize(
    ("second", "why"),
    [
        (rec(tags={"repository": "octo/app", "platform": "linux"}), "a new tag"),
        (rec("cancelled"), "another measurement"),
        (rec(fields={"queued_s": 1, "html_url": URL}), "a field that turned integer"),
    ],
)
def test_a_later_batch_starts_a_table_when_its_columns_do_not_fit(
    second: JobRecord, why: str
) -> None:
    assert len(tables(influx_csv([rec()], [second]))) == 2, why


# ---------------------------------------------------------------------------- quoting


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("plain", "plain"),
        ("", ""),
        ("a,b", '"a,b"'),
        ('say "hi"', '"say ""hi"""'),
        ('"', '""""'),
        ("line\nbreak", '"line\nbreak"'),
        ("carriage\rreturn", '"carriage\rreturn"'),
        ("crlf\r\nend", '"crlf\r\nend"'),
        ("a=b c", "a=b c"),
        ("#leading", "#leading"),
        ("back\\slash", "back\\slash"),
        ("naïve 日本 😀", "naïve 日本 😀"),
        (" spaced ", " spaced "),
    ],
)
def test_cells_are_quoted_as_rfc_4180_says(value: str, cell: str) -> None:
    assert quote(value) == cell
    # and any RFC 4180 reader gets the value back
    assert cells(f",{cell}\n") == [["", value]]


HOSTILE = [
    "build, test = all",
    'say "hi" \\o/',
    "C:\\dir\\file",
    "trailing\\",
    "naïve ü 日本 😀",
    "#not a comment",
    "=starts with equals",
    "two  spaces",
    "line\nbreak",
    "tab\there",
    "e\u0301 decomposed",
    "   padded   ",
    "comma,at,end,",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_tag_value_is_one_cell_holding_what_line_protocol_would_store(
    value: str,
) -> None:
    record = rec(tags={"repository": "octo/app", "job_name": value})
    [table] = tables(influx_csv([record]))
    header, row = table[3], table[4]
    got = dict(zip(header, row, strict=True))["job_name"]
    assert got == unicodedata.normalize("NFC", tag_safe(value))
    assert "\n" not in got and "\r" not in got
    # the same tag value as the line protocol sink sends (NFC aside)
    [back] = ingest.read_records(_file(influx_csv([record]), "x.csv"))
    assert unicodedata.normalize("NFC", to_line(record)) == to_line(back)


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_tag_key_or_measurement_is_cleaned_as_line_protocol_cleans_it(
    value: str,
) -> None:
    record = rec(f"m {value}", tags={f"k {value}": "v"}, fields={f"f {value}": 1.0})
    [back] = ingest.read_records(_file(influx_csv([record]), "x.csv"))
    assert unicodedata.normalize("NFC", to_line(record)) == to_line(back)


def test_a_measurement_never_starts_with_a_hash() -> None:
    [table] = tables(influx_csv([rec("#comment-like")]))
    assert table[4][2] == "comment-like"


def test_a_newline_in_a_string_field_never_breaks_a_row() -> None:
    text = influx_csv([rec(fields={"evidence": "first\nsecond\r\nthird", "queued_s": 1.0})])
    assert len(text.split("\n")) == 6  # 3 annotations, header, row, and the final newline
    assert tables(text)[0][4][4] == "first second third"


def test_unicode_is_written_in_normal_form_c() -> None:
    text = influx_csv([rec(fields={"evidence": "cafe\u0301", "queued_s": 1.0})])
    assert "café" in text and "e\u0301" not in text


# ---------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("value", "datatype", "cell"),
    [
        (12.0, "double", "12.0"),
        (0.1, "double", "0.1"),
        (1e-07, "double", "1e-07"),
        (-2.5e20, "double", "-2.5e+20"),
        (3, "long", "3"),
        (-3, "long", "-3"),
        (2**63 - 1, "long", str(2**63 - 1)),
        (True, "boolean", "true"),
        (False, "boolean", "false"),
        ("text", "string", "text"),
    ],
)
def test_each_field_keeps_its_type_in_its_column(value: Any, datatype: str, cell: str) -> None:
    [table] = tables(influx_csv([rec(fields={"value": value})]))
    assert table[1][4] == datatype
    assert table[4][4] == cell
    [back] = ingest.read_records(_file(influx_csv([rec(fields={"value": value})]), "x.csv"))
    assert back.fields["value"] == value and type(back.fields["value"]) is type(value)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "an empty cell means no value"),
        ("   ", "cleaned to nothing"),
        (float("nan"), "line protocol has no NaN"),
        (float("inf"), "nor infinity"),
    ],
)
def test_a_field_that_cannot_be_written_is_left_out(value: Any, why: str) -> None:
    [table] = tables(influx_csv([rec(fields={"queued_s": 1.0, "odd": value})]))
    assert "odd" not in table[3], why


def test_a_record_without_a_writable_field_is_left_out_and_counted() -> None:
    out = io.StringIO()
    sink = InfluxCsvSink(out)
    sink.write([rec(fields={"x": float("nan")}), rec()])
    assert sink.skipped == 1
    assert len(tables(out.getvalue())[0]) == 5


def test_an_absent_tag_is_an_empty_cell_never_a_default() -> None:
    [table] = tables(influx_csv([rec(tags={"repository": "octo/app", "branch": ""}), rec()]))
    assert "branch" not in table[3]  # an empty tag is no tag at all
    assert set(table[2][1:]) == {""}


@pytest.mark.parametrize("key", [*sorted(RESERVED), "", "   "])
def test_a_key_that_would_be_misread_is_refused(key: str) -> None:
    with pytest.raises(SinkError, match="tag or field"):
        influx_csv([rec(tags={"repository": "octo/app", key: "x"})])


def test_a_key_both_tag_and_field_is_refused() -> None:
    with pytest.raises(SinkError, match="both as a tag and as a"):
        influx_csv([rec(tags={"k": "v"}, fields={"k": 1.0})])


def test_an_integer_past_64_bits_is_refused_with_its_name() -> None:
    with pytest.raises(SinkError, match="'big'"):
        influx_csv([rec(fields={"big": 2**63})])


# ---------------------------------------------------------------------------- real readers


def _file(text: str, name: str) -> Path:
    path = Path(name).resolve()
    path.write_text(text, encoding="utf-8", newline="")
    return path


def mixed_records() -> list[JobRecord]:
    return [
        rec(tags={"repository": "octo/app", "job_name": name}, fields={"queued_s": 1.0 + i})
        for i, name in enumerate(HOSTILE)
    ] + [
        rec("test_failure", T0 + 5, fields={"evidence": 'E   assert "a,b" == 1', "job_id": 7}),
        rec("cancelled", T0 + 6, fields={"ok": True, "html_url": URL}),
    ]


JS_CLIENT = "@influxdata/influxdb-client@1.35.0"


@pytest.fixture(scope="session")
def js_client() -> Path:
    """InfluxDB's JavaScript client, installed from npm into a cache once per machine."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are not installed")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "multivac-tests" / "js"
    if not (cache / "node_modules" / "@influxdata" / "influxdb-client").is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [npm, "install", "--prefix", str(cache), "--no-audit", "--no-fund", JS_CLIENT],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            pytest.skip(f"npm could not install {JS_CLIENT}: {done.stderr.strip()[-300:]}")
    return cache


def test_influxdatas_javascript_client_reads_every_record(js_client: Path) -> None:
    records = mixed_records()
    path = _file(influx_csv(records[:5], records[5:]), "mixed.csv")
    done = subprocess.run(
        ["node", str(HERE / "js" / "read_annotated_csv.cjs"), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NODE_PATH": str(js_client / "node_modules")},
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert len(rows) == len(records)
    for row, record in zip(rows, records, strict=True):
        assert row["time"] == ["dateTime:RFC3339", False, format_time_ns(record.time_ns)]
        assert row["measurement"][:2] == ["measurement", True]
        assert row["measurement"][2] == record.measurement
        tags = {k: v[2] for k, v in row.items() if v[0] == "tag" and v[2]}
        want_tags = {k: unicodedata.normalize("NFC", tag_safe(v)) for k, v in record.tags.items()}
        assert tags == {k: v for k, v in want_tags.items() if v}
        fields = {k: v[2] for k, v in row.items() if v[0] not in ("tag", "measurement")}
        fields = {k: v for k, v in fields.items() if v is not None and k != "time"}
        assert fields == dict(record.fields)
        types = {k: v[0] for k, v in row.items() if k in record.fields}
        assert types == {k: _datatype(v) for k, v in record.fields.items()}


def _datatype(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {int: "long", float: "double", str: "string"}[type(value)]


GO_CHECK = """\
package main

// Prints the cells Go's encoding/csv reads (set up as csv2lp sets it up) and, for every
// cell of a dateTime:RFC3339 column, the nanoseconds Go's time.Parse(time.RFC3339) reads.
import (
	"encoding/csv"
	"encoding/json"
	"os"
	"time"
)

func main() {
	file, err := os.Open(os.Args[1])
	if err != nil {
		panic(err)
	}
	reader := csv.NewReader(file)
	reader.FieldsPerRecord = -1
	var rows [][]string
	var times []int64
	timeColumn := -1
	for {
		row, err := reader.Read()
		if err != nil {
			if err.Error() == "EOF" {
				break
			}
			panic(err)
		}
		rows = append(rows, row)
		if row[0] == "#datatype" {
			for i, cell := range row {
				if cell == "dateTime:RFC3339" {
					timeColumn = i
				}
			}
		} else if row[0] == "" && len(row) > timeColumn && row[timeColumn] != "time" {
			at, err := time.Parse(time.RFC3339, row[timeColumn])
			if err != nil {
				panic(err)
			}
			times = append(times, at.UnixNano())
		}
	}
	json.NewEncoder(os.Stdout).Encode(map[string]interface{}{"rows": rows, "times": times})
}
"""


def test_gos_csv_reader_and_time_parser_read_what_python_reads(tmp_path: Path) -> None:
    go = shutil.which("go")
    if go is None:
        pytest.skip("go is not installed")
    source = tmp_path / "gocheck" / "main.go"
    source.parent.mkdir()
    source.write_text(GO_CHECK)
    records = mixed_records()
    records.append(rec(time_ns=-500_000_000))  # before 1970, with a fraction
    path = _file(influx_csv(records[:5], records[5:]), "mixed.csv")
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOPROXY": "off", "GO111MODULE": "off"}
    env.setdefault("GOCACHE", str(tmp_path / "gocache"))
    done = subprocess.run(
        [go, "run", str(source), str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=source.parent,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    python_rows = [row for row in cells(path.read_text(encoding="utf-8")) if row]
    assert result["rows"] == python_rows
    assert sorted(result["times"]) == sorted(r.time_ns for r in records)


# ---------------------------------------------------------------------------- JSON Lines


def jsonl(*batches: list[JobRecord]) -> str:
    out = io.StringIO()
    sink = JsonLinesSink(out)
    for batch in batches:
        sink.write(batch)
    sink.close()
    return out.getvalue()


def test_json_lines_are_read_back_by_the_json_module_line_by_line() -> None:
    records = mixed_records()
    text = jsonl(records[:3], records[3:])
    lines = text.split("\n")
    assert lines[-1] == "" and len(lines) == len(records) + 1
    for line, record in zip(lines, records, strict=False):
        data = json.loads(line)
        assert list(data) == ["measurement", "tags", "fields", "time"]
        assert data["measurement"] == record.measurement
        assert data["tags"] == dict(record.tags)
        assert data["fields"] == dict(record.fields)
        assert {k: type(v) for k, v in data["fields"].items()} == {
            k: type(v) for k, v in record.fields.items()
        }
        assert data["time"] == format_time_ns(record.time_ns)
        assert ingest.record_from_dict(data) == record


@pytest.mark.parametrize("breaker", ["\n", "\r", "\r\n", "\u2028", "\u2029", "\u0085", "\x00"])
def test_a_line_break_inside_a_value_keeps_the_record_on_one_line(breaker: str) -> None:
    record = rec(tags={"job_name": f"a{breaker}b"}, fields={"evidence": f"x{breaker}y"})
    text = jsonl([record])
    assert text.count("\n") == 1 and len(text.splitlines()) == 1
    assert json.loads(text) == {
        "measurement": "successful_jobs",
        "tags": {"job_name": f"a{breaker}b"},
        "fields": {"evidence": f"x{breaker}y"},
        "time": format_time_ns(T0),
    }


def test_a_non_finite_float_is_left_out_of_json_lines() -> None:
    data = json.loads(jsonl([rec(fields={"a": float("nan"), "b": float("-inf"), "c": 1.0})]))
    assert data["fields"] == {"c": 1.0}


def test_json_lines_are_on_disk_after_each_batch(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    with open(path, "w", encoding="utf-8") as stream:
        sink = JsonLinesSink(stream)
        sink.write([rec(), rec()])
        assert len(path.read_text(encoding="utf-8").splitlines()) == 2
        sink.write([rec()])
        assert len(path.read_text(encoding="utf-8").splitlines()) == 3
        sink.close()


def test_influx_csv_is_on_disk_after_each_batch(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    with open(path, "w", encoding="utf-8", newline="") as stream:
        sink = InfluxCsvSink(stream)
        sink.write([rec()])
        assert len(list(ingest.read_records(path))) == 1
        sink.write([rec(), rec("cancelled")])
        assert len(list(ingest.read_records(path))) == 3


def test_jq_reads_every_line() -> None:
    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("jq is not installed")
    records = mixed_records()
    done = subprocess.run(
        [jq, "-c", "[.measurement, .tags.job_name, .fields.queued_s, .time]"],
        input=jsonl(records),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    got = [json.loads(line) for line in done.stdout.splitlines()]
    assert got == [
        [r.measurement, r.tags.get("job_name"), r.fields.get("queued_s"), format_time_ns(r.time_ns)]
        for r in records
    ]


# ---------------------------------------------------------------------------- --format


@pytest.mark.parametrize("fmt", [f for f in Format if f is not Format.influxdb])
def test_every_file_format_builds_a_sink_that_writes_and_reads_back(
    fmt: Format, tmp_path: Path
) -> None:
    path = tmp_path / f"out.{fmt.value}"
    record = rec(tags={"repository": "octo/app"}, fields={"queued_s": 1.5, "html_url": URL})
    with ExitStack() as stack:
        sink = build_sink(fmt, stack=stack, output=path)
        sink.write([record])
        sink.close()
    if fmt in (Format.csv, Format.json):
        return  # their flat rows hold the whole job schema: see test_ingest.py
    [back] = ingest.read_records(path, ingest.InputFormat(fmt.value))
    assert back == record
