"""Line protocol: the exact bytes the influxdb format sends, built by influxdb-client.

`Point` escapes commas, spaces and `=` in keys and tag values and `"`/`\\` in strings,
but it passes newlines through and cannot express a tag value that ends in a
backslash (the parser would read `\\ ` as an escaped space), so values are made safe
here first: model.clean() already removed control characters, and trailing
backslashes are dropped from names and tag values.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import BinaryIO

from influxdb_client.client.write.point import Point
from influxdb_client.domain.write_precision import WritePrecision

from multivac.model import JobRecord, clean


def _name(text: str) -> str:
    return clean(text, 256).rstrip("\\")


def to_point(record: JobRecord) -> Point:
    point = Point(_name(record.measurement) or "unknown_failure")
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


def to_line(record: JobRecord) -> str:
    line: str = to_point(record).to_line_protocol()
    return line


class LineProtocolSink:
    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def write(self, records: Iterable[JobRecord]) -> None:
        for record in records:
            line = to_line(record)
            if line:
                self._stream.write(line.encode("utf-8") + b"\n")
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()
