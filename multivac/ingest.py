"""Files back into records: what `multivac replay FILE` loads into the InfluxDB targets.

Reads every format multivac writes (CSV, JSON, JSON Lines, annotated CSV, line protocol),
and the same formats as InfluxDB's own tools write them, one record at a time, so a file
of any size streams through in constant memory. Types come back as they were written:
a float field stays a float even when written as `12`, an integer stays an integer.

Bad input stops the reading with one sentence naming the file and the line; the records
before that line have already been handed on, so nothing read so far is lost.

The formats and how their records are told apart:

- JSON Lines (sinks/jsonl.py): `{"measurement", "tags", "fields", "time"}` per line,
  the dict the original connector took from code.
- JSON (sinks/json_sink.py) and CSV (sinks/csv_sink.py): flat rows `time, measurement,
  <tags>, <fields>`. A flat row does not say which keys are tags, so its columns must be
  one of the layouts multivac writes (`SCHEMAS`, with and without `--lean-tags`). JSON
  arrays may also hold the nested objects of JSON Lines.
- Annotated CSV: `#datatype` says what each column is; read as `influx write` reads it
  (csv2lp): `measurement`, `tag`, `dateTime`/`time` (the last such column is the time),
  the field types `string`, `double`, `long`, `unsignedLong`, `boolean`, `duration` (as
  integer nanoseconds), untyped columns as line protocol values, `ignored`, `#group` true
  columns as tags, `#default` for empty cells, empty cells as absent, and the
  `_measurement`/`_time`/`_field`/`_value` columns of a Flux query result. `#constant`,
  `#timezone` and custom value formats are refused.
- Line protocol: https://docs.influxdata.com/influxdb/v2/reference/syntax/line-protocol/
  (escapes, `i`/`u` integers, booleans, quoted strings, `#` comments); every line must
  carry a nanosecond timestamp, as multivac writes it.
"""

from __future__ import annotations

import calendar
import csv
import gzip
import io
import itertools
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from multivac.errors import IngestError, os_reason
from multivac.model import (
    _INT_LEAN_KEYS,
    JOB_SCHEMA,
    LOAD_SCHEMA,
    RUN_SCHEMA,
    STEP_SCHEMA,
    TEST_SCHEMA,
    TEST_SUMMARY_SCHEMA,
    Record,
    record_type,
    table_columns,
    to_ns,
)
from multivac.model import Schema as RecordSchema

FieldValue = float | int | str | bool


class InputFormat(StrEnum):
    csv = "csv"
    json = "json"
    jsonl = "jsonl"
    influx_csv = "influx-csv"
    line_protocol = "line-protocol"


class _Bad(Exception):
    """One problem in the input, without its place; the reader adds file and line."""


@dataclass
class _Place:
    line: int = 0


# ---------------------------------------------------------------------------- values

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def parse_time(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time (up to nine fraction digits);
    raises IngestError when it is not one."""
    try:
        return _parse_time(text)
    except _Bad as exc:
        raise IngestError(f"{exc}.") from None


def _parse_time(text: str) -> int:
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        raise _Bad(f"{text!r} is not an RFC 3339 time")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    try:
        datetime(year, month, day, hour, minute, second)  # validates the calendar
    except ValueError:
        raise _Bad(f"{text!r} is not a valid date and time") from None
    offset = 0
    if match.group(9):
        sign = 1 if match.group(9) == "+" else -1
        offset = sign * (int(match.group(10)) * 3600 + int(match.group(11)) * 60)
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) - offset
    return seconds * 1_000_000_000 + int((match.group(7) or "").ljust(9, "0"))


def _finite(value: float, text: str) -> float:
    if not math.isfinite(value):
        raise _Bad(f"{text!r} is not a finite number")
    return value


_INT = re.compile(r"[+-]?\d+")
_INT64 = (-(2**63), 2**63 - 1)


def _int(text: str, unsigned: bool = False) -> int:
    if not _INT.fullmatch(text):
        raise _Bad(f"{text!r} is not an integer")
    value = int(text)
    low, high = (0, 2**64 - 1) if unsigned else _INT64
    if not low <= value <= high:
        raise _Bad(f"{text!r} is outside the {'unsigned ' if unsigned else ''}64-bit range")
    return value


def _float(text: str) -> float:
    try:
        return _finite(float(text), text)
    except ValueError:
        raise _Bad(f"{text!r} is not a number") from None


_TRUE = frozenset({"t", "T", "true", "True", "TRUE"})
_FALSE = frozenset({"f", "F", "false", "False", "FALSE"})


def _record(measurement: str, time_ns: int, tags: dict[str, str], fields: dict[str, Any]) -> Record:
    if not measurement:
        raise _Bad("the measurement is empty")
    if not fields:
        raise _Bad("there is no field value")
    return record_type(measurement).from_point(measurement, time_ns, tags, fields)


# ---------------------------------------------------------------------------- line protocol


def _scan(line: str, start: int, stops: str, escapable: str) -> tuple[str, int]:
    """Text from `start` to the first unescaped stop character. A backslash before an
    escapable character stands for that character; before anything else it is itself
    (Point escapes no backslash outside strings, and model.tag_safe keeps the ambiguous
    ones out of names and tag values)."""
    out: list[str] = []
    i = start
    n = len(line)
    while i < n:
        ch = line[i]
        if ch == "\\" and i + 1 < n and line[i + 1] in escapable:
            out.append(line[i + 1])
            i += 2
            continue
        if ch in stops:
            break
        out.append(ch)
        i += 1
    return "".join(out), i


def parse_field_value(text: str) -> FieldValue:
    """A line protocol field value: `1.5` float, `1i` integer, `1u` unsigned, a boolean,
    or a double-quoted string (`\\"` and `\\\\` unescaped)."""
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"'):
            raise _Bad(f"the string {text!r} is not closed")
        return _unquote(text[1:-1])
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text.endswith("i"):
        return _int(text[:-1])
    if text.endswith("u"):
        return _int(text[:-1], unsigned=True)
    if not text or not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
        raise _Bad(f"{text!r} is not a line protocol field value")
    return _float(text)


def _unquote(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and body[i + 1] in '"\\':
            out.append(body[i + 1])
            i += 2
            continue
        if ch == '"':
            raise _Bad("a string field has an unescaped double quote")
        out.append(ch)
        i += 1
    return "".join(out)


def _field_end(line: str, start: int) -> int:
    """Index just past one field value (a quoted string may hold commas and spaces)."""
    i = start
    if i < len(line) and line[i] == '"':
        i += 1
        while i < len(line):
            if line[i] == "\\":
                i += 2
                continue
            if line[i] == '"':
                return i + 1
            i += 1
        raise _Bad("a string field is not closed")
    while i < len(line) and line[i] not in ", ":
        i += 1
    return i


def parse_line(line: str) -> Record:
    """One line of line protocol as a record; raises IngestError when it is not one."""
    try:
        return _parse_line(line)
    except _Bad as exc:
        raise IngestError(f"{exc}.") from None


_UNESCAPED_SPACE = re.compile(r"(?<!\\) ")
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")
_UNESCAPED_EQUALS = re.compile(r"(?<!\\)=")
_KEY_ESCAPE = re.compile(r"\\([,= ])")
_NAME_ESCAPE = re.compile(r"\\([, ])")
_FAST_FIELD = re.compile(r'((?:[^,= "\\]|\\.)+)=("(?:[^"\\]|\\.)*"|[^, "\\]+)(,?)')
_STRING_ESCAPE = re.compile(r'\\(["\\])')


def _unescape(pattern: re.Pattern[str], text: str) -> str:
    return pattern.sub(r"\1", text) if "\\" in text else text


def _parse_line_fast(line: str) -> Record | None:
    """A well-formed line, parsed with C-speed splits and regexes (the same escapes as
    _scan); None for anything unusual, so that the careful parser names the problem."""
    found = _UNESCAPED_SPACE.search(line)
    if found is None:
        return None
    head, rest = line[: found.start()], line[found.end() :]
    measurement, *pairs = _UNESCAPED_COMMA.split(head)
    if not measurement:
        return None
    tags: dict[str, str] = {}
    for pair in pairs:
        parts = _UNESCAPED_EQUALS.split(pair)
        if len(parts) != 2 or not parts[0] or not parts[1]:
            return None
        tags[_unescape(_KEY_ESCAPE, parts[0])] = _unescape(_KEY_ESCAPE, parts[1])
    fields: dict[str, FieldValue] = {}
    pos = 0
    while True:
        match = _FAST_FIELD.match(rest, pos)
        if match is None:
            return None
        key, text, comma = match.groups()
        try:
            if text[0] == '"':  # the pattern let no unescaped quote in
                value: FieldValue = _unescape(_STRING_ESCAPE, text[1:-1])
            else:
                value = parse_field_value(text)
        except _Bad:
            return None
        fields[_unescape(_KEY_ESCAPE, key)] = value
        pos = match.end()
        if not comma:
            break
    stamp = rest[pos:]
    if not stamp.startswith(" ") or not _INT.fullmatch(stamp[1:]):
        return None
    name = _unescape(_NAME_ESCAPE, measurement)
    return record_type(name).from_point(name, int(stamp[1:]), tags, fields)


def _parse_line(line: str) -> Record:
    record = _parse_line_fast(line)
    return record if record is not None else _parse_line_careful(line)


def _parse_line_careful(line: str) -> Record:
    # measurements escape comma and space; keys and tag values also `=`
    measurement, i = _scan(line, 0, ", ", ", ")
    tags: dict[str, str] = {}
    while i < len(line) and line[i] == ",":
        key, i = _scan(line, i + 1, ",= ", ",= ")
        if i >= len(line) or line[i] != "=" or not key:
            raise _Bad(f"the tag {key!r} has no value")
        value, i = _scan(line, i + 1, ", ", ",= ")
        if not value:
            raise _Bad(f"the tag {key!r} has an empty value")
        tags[key] = value
    if i >= len(line) or line[i] != " ":
        raise _Bad("there is no field after the measurement and tags")
    fields: dict[str, FieldValue] = {}
    i += 1
    while True:
        key, i = _scan(line, i, ",= ", ",= ")
        if i >= len(line) or line[i] != "=" or not key:
            raise _Bad(f"the field {key!r} has no value")
        end = _field_end(line, i + 1)
        fields[key] = parse_field_value(line[i + 1 : end])
        i = end
        if i < len(line) and line[i] == ",":
            i += 1
            continue
        break
    stamp = line[i:].strip()
    if not stamp:
        raise _Bad("the line has no timestamp")
    if not _INT.fullmatch(stamp):
        raise _Bad(f"the timestamp {stamp!r} is not an integer")
    return _record(measurement, int(stamp), tags, fields)


def _read_line_protocol(stream: IO[str], place: _Place) -> Iterator[Record]:
    for number, raw in enumerate(stream, start=1):
        place.line = number
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        yield _parse_line(line.lstrip())


# ---------------------------------------------------------------------------- dicts (JSON)


@dataclass(frozen=True)
class Schema:
    """A flat layout (CSV columns, JSON row keys): which keys are tags, how fields read."""

    tags: tuple[str, ...]
    fields: tuple[str, ...]
    #: field key -> how its CSV text becomes a value; str when absent
    types: Mapping[str, Callable[[str], FieldValue]] = field(default_factory=dict)
    #: a layout of several record types: each type's own layout, by its schema's kind.
    #: A key can be a tag of one type and a field of another (`run_attempt` with
    #: --lean-tags), so a row is read by its measurement's type.
    kinds: Mapping[str, Schema] = field(default_factory=dict)

    @property
    def keys(self) -> tuple[str, ...]:
        return ("time", "measurement", *self.tags, *self.fields)

    def of(self, measurement: str) -> Schema:
        """The layout of one row: its record type's, when the file holds several."""
        return self.kinds.get(record_type(measurement).SCHEMA.kind, self)


def _int_when_digits(text: str) -> FieldValue:
    # build_record moves ids to fields as ints only when they are digits
    return int(text) if text.isdigit() else text


#: how the numeric fields of every record type read from a CSV cell; others are strings
_NUMERIC_FIELDS: dict[str, Callable[[str], FieldValue]] = {
    **dict.fromkeys(("queued_s", "in_progress_s", "runner_min", "cost_usd", "duration_s"), _float),
    **dict.fromkeys(("billable_min", "jobs", "failed_jobs", "pr_number", "queued", "running"), int),
    # the test_summary counts
    **dict.fromkeys(("passed", "failed", "skipped", "hung", "flaky_tests", "dropped"), int),
}


def _layout(schemas: tuple[RecordSchema, ...], lean: bool) -> Schema:
    """The flat layout of a file holding these record types, as the CSV sink heads it."""
    tag_keys = {key for schema in schemas for key in schema.columns(lean)[0]}
    columns = table_columns(schemas, lean)[2:]
    tags = tuple(key for key in columns if key in tag_keys)
    fields = tuple(key for key in columns if key not in tag_keys)
    types = {key: convert for key, convert in _NUMERIC_FIELDS.items() if key in fields}
    # ids written as fields (--lean-tags, and always on test records) are integers
    types.update({key: _int_when_digits for key in _INT_LEAN_KEYS if key in fields})
    kinds = {} if len(schemas) == 1 else {s.kind: _layout((s,), lean) for s in schemas}
    return Schema(tags, fields, types, kinds)


#: the record types one CSV file may hold (a gather's jobs, with its steps and runs or
#: not; capacity's runner load), and each type alone (a JSON row has its own type's keys)
_COMBINATIONS: tuple[tuple[RecordSchema, ...], ...] = (
    (JOB_SCHEMA,),
    (JOB_SCHEMA, RUN_SCHEMA),
    (JOB_SCHEMA, STEP_SCHEMA),
    (JOB_SCHEMA, STEP_SCHEMA, RUN_SCHEMA),
    (STEP_SCHEMA,),
    (RUN_SCHEMA,),
    (LOAD_SCHEMA,),
    (TEST_SCHEMA,),
    (TEST_SUMMARY_SCHEMA,),
)
#: a gather's table also holds its test records (and --test-summary's)
_COMBINATIONS += tuple(
    (*jobs, TEST_SCHEMA, *summary)
    for jobs in _COMBINATIONS[:4]
    for summary in ((), (TEST_SUMMARY_SCHEMA,))
)
#: the flat layouts multivac writes
SCHEMAS: list[Schema] = [
    _layout(schemas, lean) for schemas in _COMBINATIONS for lean in (False, True)
]


def _schema_for(keys: Iterable[str]) -> Schema:
    wanted = list(keys)
    for schema in SCHEMAS:
        if list(schema.keys) == wanted:
            return schema
    as_set = set(wanted)
    for schema in SCHEMAS:
        if set(schema.keys) == as_set and len(as_set) == len(wanted):
            return schema
    shown = ", ".join(wanted[:6]) + (", …" if len(wanted) > 6 else "")
    raise _Bad(f"the columns ({shown}) are not a layout multivac writes")


_NESTED_KEYS = frozenset({"measurement", "tags", "fields", "time"})


def _time_value(value: object) -> int:
    if isinstance(value, bool):
        raise _Bad("the time is a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return _parse_time(value)
    if isinstance(value, datetime):
        return to_ns(value)
    raise _Bad(f"the time {value!r} is neither nanoseconds nor an RFC 3339 string")


def _field_value(key: str, value: object) -> FieldValue | None:
    if value is None:
        return None
    if isinstance(value, float):
        return _finite(value, repr(value))
    if isinstance(value, bool | int | str):
        return value
    raise _Bad(f"the field {key!r} holds a {type(value).__name__}, not a number, string or boolean")


def _tag_value(key: str, value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    raise _Bad(f"the tag {key!r} holds a {type(value).__name__}, not a string")


def _nested(data: Mapping[str, Any], default_time_ns: int | None) -> Record:
    unknown = sorted(set(data) - _NESTED_KEYS)
    if unknown:
        raise _Bad(f"unknown key {unknown[0]!r} (expected measurement, tags, fields, time)")
    measurement = data.get("measurement")
    if not isinstance(measurement, str):
        raise _Bad("the measurement is missing or not a string")
    raw_tags = {} if data.get("tags") is None else data["tags"]
    raw_fields = {} if data.get("fields") is None else data["fields"]
    if not isinstance(raw_tags, Mapping) or not isinstance(raw_fields, Mapping):
        raise _Bad("tags and fields must be objects")
    tags: dict[str, str] = {}
    for key, value in raw_tags.items():
        text = _tag_value(key, value)
        if text is not None:
            tags[str(key)] = text
    fields: dict[str, FieldValue] = {}
    for key, value in raw_fields.items():
        typed = _field_value(key, value)
        if typed is not None:
            fields[str(key)] = typed
    if data.get("time") is None:
        if default_time_ns is None:
            raise _Bad("the time is missing")
        time_ns = default_time_ns
    else:
        time_ns = _time_value(data["time"])
    return _record(measurement, time_ns, tags, fields)


def _flat(data: Mapping[str, Any]) -> Record:
    try:
        schema = _schema_for(data)
    except _Bad:
        keys = list(data)
        shown = ", ".join(map(str, keys[:6])) + (", …" if len(keys) > 6 else "")
        raise _Bad(
            f"the keys ({shown}) are neither measurement, tags, fields and time "
            "nor a flat row multivac writes"
        ) from None
    measurement = data.get("measurement")
    if not isinstance(measurement, str):
        raise _Bad("the measurement is missing or not a string")
    if data.get("time") is None:
        raise _Bad("the time is missing")
    schema = schema.of(measurement)
    tags = {k: t for k in schema.tags if (t := _tag_value(k, data.get(k))) is not None}
    fields = {k: f for k in schema.fields if (f := _field_value(k, data.get(k))) is not None}
    return _record(measurement, _time_value(data["time"]), tags, fields)


def _from_object(data: object, default_time_ns: int | None = None) -> Record:
    if not isinstance(data, Mapping):
        raise _Bad(f"expected a JSON object, found {type(data).__name__}")
    if "tags" in data or "fields" in data:
        return _nested(data, default_time_ns)
    return _flat(data)


def record_from_dict(data: Mapping[str, Any], *, default_time_ns: int | None = None) -> Record:
    """A record from `{measurement, tags, fields, time}` (time: nanoseconds, an RFC 3339
    string or a datetime) or from a flat row as the JSON format writes it."""
    try:
        return _from_object(data, default_time_ns)
    except _Bad as exc:
        raise IngestError(f"{exc}.") from None


def _read_jsonl(stream: IO[str], place: _Place) -> Iterator[Record]:
    for number, raw in enumerate(stream, start=1):
        place.line = number
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise _Bad(f"not JSON ({exc.args[0].split(':')[0]})") from None
        yield _from_object(data)


_CHUNK = 1 << 16
_MAX_ELEMENT = 1 << 26  # 64 MiB: past that, an element is taken for broken JSON


def _read_json_array(stream: IO[str], place: _Place) -> Iterator[Record]:
    """Elements of one top-level JSON array, decoded one at a time as the text arrives."""
    decoder = json.JSONDecoder()
    buffer = ""
    pos = 0
    line = 1
    eof = False

    def more() -> bool:
        nonlocal buffer, pos, eof
        if eof:
            return False
        # read at least as much as is waiting, so a large element costs linear time
        chunk = stream.read(max(_CHUNK, len(buffer) - pos))
        if not chunk:
            eof = True
            return False
        buffer = buffer[pos:] + chunk
        pos = 0
        return True

    def skip_space() -> str:
        """The next significant character ('' at the end), counting lines on the way."""
        nonlocal pos, line
        while True:
            while pos < len(buffer) and buffer[pos] in " \t\r\n":
                if buffer[pos] == "\n":
                    line += 1
                pos += 1
            if pos < len(buffer):
                return buffer[pos]
            if not more():
                return ""

    place.line = 1
    if skip_space() != "[":
        raise _Bad("a JSON file must hold one array of records")
    pos += 1
    first = True
    while True:
        ch = skip_space()
        place.line = line
        if ch == "]":
            pos += 1
            break
        if not first:
            if ch != ",":
                raise _Bad("expected a comma or the end of the array")
            pos += 1
            ch = skip_space()
            place.line = line
        if ch == "":
            raise _Bad("the array is not closed")
        while True:
            try:
                value, end = decoder.raw_decode(buffer, pos)
                break
            except ValueError as exc:
                # the element may simply not have arrived yet
                if len(buffer) - pos > _MAX_ELEMENT or not more():
                    raise _Bad(f"not JSON ({exc.args[0].split(':')[0]})") from None
        line += buffer.count("\n", pos, end)
        pos = end
        first = False
        yield _from_object(value)
    if skip_space() != "":
        place.line = line
        raise _Bad("there is more after the end of the array")


# ---------------------------------------------------------------------------- CSV


def _read_csv(stream: IO[str], place: _Place) -> Iterator[Record]:
    reader = csv.reader(stream, strict=True)
    header = next(reader, None)
    place.line = reader.line_num
    if header is None:
        return
    schema = _schema_for(header)
    index = {key: i for i, key in enumerate(header)}
    for cells in reader:
        place.line = reader.line_num
        if not cells:
            continue
        if len(cells) != len(header):
            raise _Bad(f"the row has {len(cells)} cells where the header has {len(header)}")
        measurement = cells[index["measurement"]]
        row = schema.of(measurement)
        tags = {key: cells[index[key]] for key in row.tags if cells[index[key]]}
        fields: dict[str, FieldValue] = {}
        for key in row.fields:
            text = cells[index[key]]
            if text:
                convert = row.types.get(key)
                fields[key] = convert(text) if convert is not None else text
        stamp = cells[index["time"]]
        if not stamp:
            raise _Bad("the time is empty")
        yield _record(measurement, _parse_time(stamp), tags, fields)


# ---------------------------------------------------------------------------- annotated CSV

_FIELD_TYPES = frozenset({"string", "double", "long", "unsignedLong", "boolean", "duration"})
_ANNOTATIONS = ("#group", "#datatype", "#default")
_REFUSED = ("#constant", "#timezone", "#concat")


@dataclass
class _Column:
    label: str = ""
    datatype: str = ""  # without its format
    format: str = ""
    group: bool = False
    default: str = ""

    def set_datatype(self, text: str) -> None:
        # csv2lp: `type`, `type:format`, `type|default`, `type:format|default`
        if (bar := text.find("|")) > 1:
            self.default = self.default or text[bar + 1 :]
            text = text[:bar]
        if (colon := text.find(":")) > 1:
            self.format = text[colon + 1 :]
            text = text[:colon]
        self.datatype = "dateTime" if text == "time" else text


@dataclass
class _Plan:
    """What each column of a table becomes, resolved once per table."""

    measurement: int | None = None
    time: int | None = None
    tags: list[int] = field(default_factory=list)
    fields: list[int] = field(default_factory=list)
    field_name: int | None = None
    field_value: int | None = None


def _after_comment(cell: str) -> str:
    """csv2lp's reading of an annotation value: `#datatype tag` -> `tag`, `#datatype` -> ''
    (this is how the first cell carries the first column's value, or none)."""
    if not cell.startswith("#"):
        return cell
    _, space, rest = cell.partition(" ")
    return rest.lstrip(" ") if space else ""


def _plan(columns: list[_Column]) -> _Plan:
    plan = _Plan()
    flux_fields = any(c.label == "_field" for c in columns)
    for i, col in enumerate(columns):
        kind = col.datatype
        if col.label == "_measurement" or kind == "measurement":
            plan.measurement = i
        elif col.label == "_time" or kind == "dateTime":
            plan.time = i  # "the last column (on the right) is used as the timestamp"
        elif not col.label.strip() or kind.startswith("ignore"):
            continue
        elif col.label == "_field":
            plan.field_name = i
        elif col.label == "_value":
            plan.field_value = i
        elif kind == "tag" or (col.group and (kind in _FIELD_TYPES or not kind)):
            plan.tags.append(i)
        elif kind == "field":
            plan.fields.append(i)
        elif kind in _FIELD_TYPES or not kind:
            if not flux_fields:  # next to a _field column, other data columns are ignored
                plan.fields.append(i)
        elif kind == "base64Binary":
            if not flux_fields:
                raise _Bad(
                    f"the column {col.label!r} has datatype {kind}, which replay cannot read"
                )
        else:
            raise _Bad(f"the column {col.label!r} has an unknown datatype {kind!r}")
    if plan.measurement is None:
        raise _Bad("the table has no measurement column")
    return plan


def _typed(col: _Column, text: str) -> FieldValue:
    kind = col.datatype
    if col.format and kind != "dateTime":
        raise _Bad(
            f"the column {col.label!r} has the format {col.format!r}, which replay cannot read"
        )
    if kind == "string":
        return text
    if kind == "double":
        return _float(text)
    if kind == "long":
        return _int(text)
    if kind == "unsignedLong":
        return _int(text, unsigned=True)
    if kind == "duration":
        return _duration(text)
    if kind == "boolean":  # csv2lp: the first character decides
        if text[0] in "tTyY1":
            return True
        if text[0] in "fFnN0":
            return False
        raise _Bad(f"{text!r} is not a boolean")
    return parse_field_value(text)  # untyped: a line protocol value, copied as-is


_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


def _duration(text: str) -> int:
    """Nanoseconds of a Go duration (`1ms`, `1h2m3.5s`): csv2lp writes it as an integer."""
    sign = -1 if text.startswith("-") else 1
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return 0
    total = 0.0
    end = 0
    for match in _DURATION_PART.finditer(body):
        if match.start() != end:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        end = match.end()
    if not body or end != len(body):
        raise _Bad(f"{text!r} is not a duration")
    return sign * round(total)


def _stamp(col: _Column, text: str) -> int:
    if col.format in ("RFC3339", "RFC3339Nano"):
        return _parse_time(text)
    if col.format == "number":
        return _int(text)
    if col.format:
        raise _Bad(f"the time format {col.format!r} is not supported by replay")
    return _int(text) if _INT.fullmatch(text) else _parse_time(text)


class _AnnotatedTable:
    def __init__(self) -> None:
        self.columns: list[_Column] = []
        self.seen: set[str] = set()
        self.plan: _Plan | None = None  # set once the header row is read

    def annotate(self, name: str, cells: list[str]) -> None:
        if not self.columns:
            self.columns = [_Column() for _ in cells]
        for col, value in zip(self.columns, cells, strict=False):
            if name == "#datatype":
                col.set_datatype(_after_comment(value))
            elif name == "#group":
                col.group = value.endswith("true")
            else:
                col.default = _after_comment(value)
        self.seen.add(name)

    def header(self, cells: list[str]) -> None:
        if not self.columns:
            self.columns = [_Column() for _ in cells]
        for col, label in zip(self.columns, cells, strict=False):
            if not col.datatype and "|" in label:  # `name|type|default` shorthand
                label, _, rest = label.partition("|")
                col.set_datatype(rest)
            col.label = label
        self.plan = _plan(self.columns)

    def record(self, cells: list[str]) -> Record:
        assert self.plan is not None
        plan = self.plan
        cols = self.columns

        def value(i: int) -> str:
            text = cells[i] if i < len(cells) else ""
            return text or cols[i].default

        assert plan.measurement is not None
        measurement = value(plan.measurement)
        if not measurement:
            raise _Bad("the measurement is empty")
        tags = {cols[i].label: text for i in plan.tags if (text := value(i))}
        fields: dict[str, FieldValue] = {}
        if plan.field_name is not None and plan.field_value is not None:
            name, text = value(plan.field_name), value(plan.field_value)
            if name and text:
                fields[name] = _typed(cols[plan.field_value], text)
        for i in plan.fields:
            if text := value(i):
                try:
                    fields[cols[i].label] = _typed(cols[i], text)
                except _Bad as exc:
                    raise _Bad(f"column {cols[i].label!r}: {exc}") from None
        if plan.time is None or not (stamp := value(plan.time)):
            raise _Bad("the row has no time")
        return _record(measurement, _stamp(cols[plan.time], stamp), tags, fields)


def _read_influx_csv(stream: IO[str], place: _Place) -> Iterator[Record]:
    first = stream.readline()
    delimiter = ","
    lines: Iterable[str] = itertools.chain([first], stream)
    if first.startswith("sep=") and len(first.rstrip("\r\n")) == 5:
        delimiter = first[4]  # csv2lp: a first line `sep=;` names the separator
        lines = stream
    reader = csv.reader(lines, delimiter=delimiter, strict=True)  # as strict as Go's reader
    offset = 1 if lines is stream else 0
    table = _AnnotatedTable()
    for cells in reader:
        place.line = reader.line_num + offset
        if not cells or (len(cells) == 1 and not cells[0]):
            continue
        head = cells[0]
        if head.startswith("#"):
            name = head.split(" ", 1)[0].lower()
            if name in _ANNOTATIONS:
                if table.plan is not None or name in table.seen:
                    table = _AnnotatedTable()  # annotations after rows start a new table
                table.annotate(name, cells)
            elif name in _REFUSED:
                raise _Bad(f"the {name} annotation is not supported by replay")
            # other `#` rows are comments, as csv2lp treats them
            continue
        if table.plan is None:
            table.header(cells)
            continue
        yield table.record(cells)


# ---------------------------------------------------------------------------- files

_READERS: dict[InputFormat, Callable[[IO[str], _Place], Iterator[Record]]] = {
    InputFormat.csv: _read_csv,
    InputFormat.json: _read_json_array,
    InputFormat.jsonl: _read_jsonl,
    InputFormat.influx_csv: _read_influx_csv,
    InputFormat.line_protocol: _read_line_protocol,
}

_BY_EXTENSION = {
    ".jsonl": InputFormat.jsonl,
    ".ndjson": InputFormat.jsonl,
    ".lp": InputFormat.line_protocol,
    ".line": InputFormat.line_protocol,
    ".influx": InputFormat.line_protocol,
}
_SNIFF_BYTES = 1 << 16


def _open(path: Path) -> IO[str]:
    """UTF-8 text (a BOM is skipped), gunzipped when the name ends in .gz."""
    try:
        if path.name.lower().endswith(".gz"):
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
        return open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise IngestError(f"cannot read {path}: {os_reason(exc)}.") from None


def _extension(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return Path(name).suffix


def _sniff(head: str) -> InputFormat | None:
    lines = [line for line in head.splitlines() if line.strip()]
    if not lines:
        return None
    first = lines[0].lstrip()
    lowered = first.lower()
    if lowered.startswith((*_ANNOTATIONS, *_REFUSED)) or (
        lowered.startswith("sep=") and len(first) == 5
    ):
        return InputFormat.influx_csv
    if first.startswith("["):
        return InputFormat.json
    if first.startswith("{"):
        return InputFormat.jsonl
    cells = next(csv.reader([first]))
    if cells[:2] == ["time", "measurement"]:
        return InputFormat.csv
    if any(re.search(r"\|(measurement|tag|dateTime|time)\b", cell) for cell in cells):
        return InputFormat.influx_csv
    candidates = [line for line in lines if not line.lstrip().startswith("#")]
    if candidates:
        try:
            _parse_line(candidates[0].lstrip())
        except _Bad:
            return None
        return InputFormat.line_protocol
    return InputFormat.line_protocol  # nothing but comments


def detect_format(path: Path) -> InputFormat:
    """The format of a file, from its extension and, where that is not enough, its start."""
    extension = _extension(path)
    if extension in _BY_EXTENSION:
        return _BY_EXTENSION[extension]
    with _open(path) as stream:
        try:
            head = stream.read(_SNIFF_BYTES)
        except (UnicodeDecodeError, EOFError, OSError) as exc:
            raise IngestError(f"cannot read {path}: {_reason(exc)}.") from None
    found = _sniff(head)
    if found is None and not head.strip():
        found = {".json": InputFormat.json, ".csv": InputFormat.csv}.get(
            extension, InputFormat.line_protocol
        )
    if found is None:
        raise IngestError(
            f"cannot tell the format of {path}: it is not CSV, annotated CSV, JSON, "
            "JSON Lines or line protocol as multivac writes them."
        )
    if extension == ".json" and found not in (InputFormat.json, InputFormat.jsonl):
        raise IngestError(f"{path} is named .json but does not start with [ or {{.")
    return found


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "it is not UTF-8 text"
    if isinstance(exc, OSError):
        return os_reason(exc)
    return f"it is damaged ({type(exc).__name__})"


def read_records(path: Path, fmt: InputFormat | None = None) -> Iterator[Record]:
    """The records of a file, one at a time, in file order.

    Raises IngestError naming the file and line at the first bad line; the records
    before it have been yielded already.
    """
    fmt = fmt or detect_format(path)
    place = _Place()
    with _open(path) as stream:
        records = _READERS[fmt](stream, place)
        while True:
            try:
                record = next(records)
            except StopIteration:
                return
            except _Bad as exc:
                raise IngestError(f"{path} line {place.line}: {exc}.") from None
            except (csv.Error, UnicodeDecodeError, EOFError, OSError) as exc:
                reason = _reason(exc) if not isinstance(exc, csv.Error) else f"bad CSV ({exc})"
                raise IngestError(f"{path} near line {place.line + 1}: {reason}.") from None
            yield record
