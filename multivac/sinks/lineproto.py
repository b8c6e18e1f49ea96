"""Line protocol: the exact bytes the influxdb format sends, built by influxdb-client.

`Point` escapes commas, spaces and `=` in keys and tag values and `"`/`\\` in strings,
but some text cannot round-trip in names and tag values: a trailing backslash turns
into an escaped space, `\\ ` and `\\,` are refused by some servers, and control
characters are stored as literal `\\n`. So names and tag values pass through
model.tag_safe (control characters to spaces, ambiguous backslashes to `/`), and a
measurement never starts with `#` (that line would be a comment). String fields keep backslashes
and quotes (Point escapes them) but never a newline.

Records whose fields are all integers (the quarter of a million `runner_load` points of a
month) take a faster road with the same bytes: Point writes each series' measurement and
tags, and each field key, once (cached); only the numbers and the time are formatted per
line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import BinaryIO

from influxdb_client.client.write.point import Point
from influxdb_client.domain.write_precision import WritePrecision

from multivac.model import LoadRecord, Record, clean, tag_safe
from multivac.sinks.base import FileSink


@lru_cache(maxsize=65_536)
def _name(text: str) -> str:
    """A cleaned name or tag value; names repeat on every line, so they are cached."""
    return tag_safe(text)


def to_point(record: Record) -> Point:
    point = Point(_measurement(record))
    for key, value in sorted(record.tags.items()):
        value = _name(value)
        if value:
            point.tag(_name(key), value)
    for key, field_value in record.fields.items():
        if isinstance(field_value, str):
            field_value = clean(field_value, 60_000)
        point.field(_name(key), field_value)
    point.time(record.time_ns, WritePrecision.NS)
    return point


def _measurement(record: Record) -> str:
    return _name(record.measurement).lstrip("#").strip() or "unknown_failure"


#: per field in line order: `key=` and the field's place among the record's values
Shape = tuple[tuple[str, int], ...]


@lru_cache(maxsize=4096)
def _int_shape(
    measurement: str, tags: tuple[tuple[str, str], ...], keys: tuple[str, ...]
) -> tuple[str, Shape]:
    """For integer records of one series and field keys: `measurement,tag=value ` and,
    per field in line order, `key=` and its place among the record's values, exactly
    as Point writes them (names cleaned; of equal cleaned names the last; sorted)."""
    point = Point(_name(measurement).lstrip("#").strip() or "unknown_failure")
    for key, value in sorted(tags):
        value = _name(value)
        if value:
            point.tag(_name(key), value)
    line: str = point.field("x", 0).to_line_protocol()
    series = line[: -len("x=0i")]
    place = {_name(key): index for index, key in enumerate(keys)}
    fields = []
    for name in sorted(place):
        written: str = Point("m").field(name, 0).to_line_protocol()
        fields.append((written[len("m ") : -len("0i")], place[name]))
    return series, tuple(fields)


def int_template(measurement: str, tags: tuple[tuple[str, str], ...], keys: tuple[str, ...]) -> str:
    """The line of an integer point of this series as a `str.format` template over its
    field values (in `keys` order) then its time, e.g.
    `runner_load,runner_label=gpu queued={0}i,running={1}i {2}`: for writers that
    format many points of one series without building a record for each."""
    series, shape = _int_shape(measurement, tags, keys)

    def literal(text: str) -> str:
        return text.replace("{", "{{").replace("}", "}}")

    numbers = ",".join(f"{literal(name)}{{{index}}}i" for name, index in shape)
    return f"{literal(series)}{numbers} {{{len(keys)}}}"


def _int_line(record: Record) -> str:
    fields = record.fields
    series, shape = _int_shape(record.measurement, tuple(record.tags.items()), tuple(fields))
    values = tuple(fields.values())
    numbers = ",".join([f"{key}{values[index]}i" for key, index in shape])
    return f"{series}{numbers} {record.time_ns}"


def to_line(record: Record) -> str:
    if type(record) is LoadRecord:  # its fields are integers
        return _int_line(record)
    fields = record.fields.values()
    if fields and all(type(value) is int for value in fields):
        return _int_line(record)
    line: str = to_point(record).to_line_protocol()
    return line


def to_lines(records: Iterable[Record]) -> list[str]:
    """The lines of many records (records without a writable field leave none). A run of
    `runner_load` records sharing one tags mapping (a label's minutes) is shaped once;
    the cache holds the mapping itself, so its id cannot be another's while it lasts."""
    lines: list[str] = []
    shapes: dict[int, tuple[Mapping[str, str], tuple[str, ...], str, Shape]] = {}
    for record in records:
        if type(record) is not LoadRecord:
            line = to_line(record)
            if line:
                lines.append(line)
            continue
        tags, fields = record.tags, record.fields
        keys = tuple(fields)
        found = shapes.get(id(tags))
        if found is None or found[0] is not tags or found[1] != keys:
            series, shape = _int_shape(record.measurement, tuple(tags.items()), keys)
            found = shapes[id(tags)] = (tags, keys, series, shape)
        values = tuple(fields.values())
        numbers = ",".join([f"{name}{values[index]}i" for name, index in found[3]])
        lines.append(f"{found[2]}{numbers} {record.time_ns}")
    return lines


class LineProtocolSink(FileSink):
    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def write(self, records: Iterable[Record]) -> None:
        lines = to_lines(records)
        if lines:
            self._stream.write(("\n".join(lines) + "\n").encode("utf-8"))
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()
