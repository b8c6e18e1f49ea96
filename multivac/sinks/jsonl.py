"""JSON Lines: one JSON object per line, flushed after every batch, for jq and DuckDB.

Each line is the record as the original multivac connector took it from code:
`{"measurement": …, "tags": {…}, "fields": {…}, "time": …}`, with `time` in RFC 3339
(UTC, nanoseconds when there are any). Tags and fields are kept apart, so any record type
reads back exactly (multivac.ingest) without knowing its schema. Field values keep their
JSON type (a float stays a float: Python writes 12.0 as `12.0`); JSON has no NaN or
infinity, so such a field is left out, as line protocol leaves it out. A newline in a
value is escaped by JSON (and U+0085, U+2028, U+2029 by this sink), so a record is
always one line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any, TextIO

from multivac.model import Record, format_time_ns
from multivac.sinks.base import FileSink


def to_object(record: Record) -> dict[str, Any]:
    fields = {
        key: value
        for key, value in record.fields.items()
        if not (isinstance(value, float) and not math.isfinite(value))
    }
    return {
        "measurement": record.measurement,
        "tags": dict(record.tags),
        "fields": fields,
        "time": format_time_ns(record.time_ns),
    }


# JSON lets these stay raw inside strings, but Python's str.splitlines() and some JSON
# Lines readers break lines at them: written escaped, a record stays one line for everyone
_LINE_BREAKS = str.maketrans({"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def to_line(record: Record) -> str:
    text = json.dumps(to_object(record), ensure_ascii=False, allow_nan=False)
    return text.translate(_LINE_BREAKS) + "\n"


class JsonLinesSink(FileSink):
    """Sink for --format jsonl."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, records: Iterable[Record]) -> None:
        self._stream.write("".join(to_line(record) for record in records))
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()
