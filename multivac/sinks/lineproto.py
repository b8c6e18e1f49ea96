"""Line protocol: the exact bytes the influxdb format sends, built by influxdb-client.

`Point` escapes commas, spaces and `=` in keys and tag values and `"`/`\\` in strings,
but some text cannot round-trip in names and tag values: a trailing backslash turns
into an escaped space, `\\ ` and `\\,` are refused by some servers, and control
characters are stored as literal `\\n`. So names and tag values pass through
model.tag_safe (control characters to spaces, ambiguous backslashes to `/`), and a
measurement never starts with `#` (that line would be a comment). String fields keep backslashes
and quotes (Point escapes them) but never a newline.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import BinaryIO

from influxdb_client.client.write.point import Point
from influxdb_client.domain.write_precision import WritePrecision

from multivac.model import Record, clean, tag_safe
from multivac.sinks.base import FileSink


def _name(text: str) -> str:
    return tag_safe(text)


def to_point(record: Record) -> Point:
    point = Point(_name(record.measurement).lstrip("#").strip() or "unknown_failure")
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


def to_line(record: Record) -> str:
    line: str = to_point(record).to_line_protocol()
    return line


class LineProtocolSink(FileSink):
    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def write(self, records: Iterable[Record]) -> None:
        for record in records:
            line = to_line(record)
            if line:
                self._stream.write(line.encode("utf-8") + b"\n")
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()
