"""InfluxDB's annotated CSV, written so that `influx write -b BUCKET -f FILE` loads it unchanged.

The rules followed, as InfluxData documents them:

- Annotated CSV (https://docs.influxdata.com/influxdb/v2/reference/syntax/annotated-csv/):
  "CSV tables must be encoded in UTF-8 and Unicode Normal Form C"; a table is "annotation
  rows", one "header row" and "record rows"; the annotation column "is always the first
  column ... rows in the table start with a leading comma"; "An empty row delimits a new
  table boundary ... Each new table boundary starts with new annotation and header rows";
  "To encode a table with its group key, the datatype, group, and default annotations
  must be included"; `#default` is the "value to use for rows with an empty value".
- Extended annotated CSV, what `influx write` reads
  (https://docs.influxdata.com/influxdb/v2/reference/syntax/annotated-csv/extended/):
  `#datatype` names the line protocol element of each column: `measurement`, `tag`,
  `dateTime` ("There can only be one dateTime column"), or a field type `string`, `double`,
  `long`, `unsignedLong`, `boolean`; `dateTime:RFC3339` is "2020-01-01T00:00:00Z".
  The docs' own example of this layout (annotation column, `#group`, `#datatype`,
  `#default`, then `,m,name,...`) is the one this sink writes.
- `influx write` converts with the csv2lp library
  (https://github.com/influxdata/influxdb/tree/master/pkg/csv2lp, README "CSV Data On
  Input"): "a column with an empty value is ... excluded in the protocol line", so an
  absent tag or field is an empty cell; a row whose fields are all empty is refused ("no
  field data found"), so such a record is left out, as line protocol leaves it out.
  Go's `time.Parse(time.RFC3339, …)`, which csv2lp uses, also reads a fraction of up to
  nine digits (checked with Go 1.19), so times keep their nanoseconds.
- Cells are quoted as RFC 4180 says: a cell holding a comma, a double quote, CR or LF is
  wrapped in double quotes, and a double quote inside is doubled.

One table per measurement and set of typed columns: the tag and field keys of a
measurement can differ between records (failure fields, `flaky`, other record types),
so records of one `write` batch are grouped by measurement and each group becomes one
table whose columns are the union of its records' keys (a key whose type differs
between records starts another table). A later batch appends to the last table when its
columns fit, so a long gather does not repeat the header for every run.

Values pass through the same normalisation as line protocol (sinks/lineproto.py), so
`influx write` of this file stores exactly what `--format influxdb` would have sent:
names and tag values through model.tag_safe, string fields through model.clean (no
newline ever reaches a cell), non-finite floats dropped.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TextIO

from multivac.errors import SinkError
from multivac.model import Record, clean, format_time_ns, tag_safe
from multivac.sinks.base import FileSink

TIME_LABEL = "time"
MEASUREMENT_LABEL = "measurement"
#: labels csv2lp gives a meaning of their own (Flux result columns), and the two columns
#: of every table; a tag or field with one of these keys would be misread
RESERVED = frozenset({TIME_LABEL, MEASUREMENT_LABEL, "_measurement", "_time", "_field", "_value"})
STRING_LIMIT = 60_000  # the same cap lineproto.py puts on string fields
INT64 = (-(2**63), 2**63 - 1)

#: (label, datatype) of one tag or field column; datatype is `tag` or a field type
Column = tuple[str, str]


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def quote(cell: str) -> str:
    """One RFC 4180 cell: quoted only when it holds a comma, a double quote, CR or LF."""
    if any(ch in cell for ch in ',"\r\n'):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def csv_line(cells: Iterable[str]) -> str:
    return ",".join(quote(cell) for cell in cells) + "\n"


def field_cell(key: str, value: object) -> tuple[str, str] | None:
    """(datatype, cell text) of a field value, or None when the value cannot be written."""
    if isinstance(value, bool):  # before int: bool is an int
        return "boolean", "true" if value else "false"
    if isinstance(value, int):
        if not INT64[0] <= value <= INT64[1]:
            raise SinkError(f"field {key!r} holds {value}, outside the 64-bit integer range.")
        return "long", str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None  # line protocol cannot hold NaN or infinity; Point drops them too
        return "double", repr(value)
    if isinstance(value, str):
        text = _nfc(clean(value, STRING_LIMIT))
        # an empty cell means "no value" to influx write: an empty string cannot be told apart
        return ("string", text) if text else None
    raise SinkError(f"field {key!r} has a value of type {type(value).__name__}.")


@dataclass(frozen=True)
class Row:
    """One record, normalised: what goes into a record row."""

    measurement: str
    time: str
    values: dict[Column, str]


def to_row(record: Record) -> Row | None:
    """The record as cells, or None when no field is left to write (as line protocol)."""
    measurement = _nfc(tag_safe(record.measurement).lstrip("#").strip()) or "unknown_failure"
    values: dict[Column, str] = {}
    seen: dict[str, str] = {}

    def add(key: str, datatype: str, cell: str) -> None:
        label = _nfc(tag_safe(key))
        if not label:
            raise SinkError(f"a record of {measurement!r} has an empty tag or field key.")
        if label in RESERVED:
            raise SinkError(
                f"a record of {measurement!r} has a tag or field named {label!r}, a column "
                "name that annotated CSV keeps for itself."
            )
        if label in seen:
            raise SinkError(
                f"a record of {measurement!r} has {label!r} both as a {seen[label]} and as a "
                f"{datatype} once its keys are cleaned."
            )
        seen[label] = "tag" if datatype == "tag" else "field"
        values[(label, datatype)] = cell

    for key, tag_value in record.tags.items():
        text = _nfc(tag_safe(tag_value))
        if text:  # an empty tag is no tag, in line protocol and in csv2lp alike
            add(key, "tag", text)
    has_field = False
    for key, field_value in record.fields.items():
        typed = field_cell(key, field_value)
        if typed is not None:
            add(key, typed[0], typed[1])
            has_field = True
    if not has_field:
        return None
    return Row(measurement, format_time_ns(record.time_ns), values)


@dataclass
class Table:
    """A measurement's table: its typed columns in order of first appearance."""

    measurement: str
    columns: dict[Column, None] = field(default_factory=dict)  # an ordered set
    labels: dict[str, str] = field(default_factory=dict)  # label -> datatype
    rows: list[Row] = field(default_factory=list)

    def fits(self, row: Row) -> bool:
        return all(self.labels.get(label, datatype) == datatype for label, datatype in row.values)

    def add(self, row: Row) -> None:
        for column in row.values:
            self.columns.setdefault(column)
            self.labels[column[0]] = column[1]
        self.rows.append(row)

    def layout(self) -> list[Column]:
        """Tags first, then fields, each in order of first appearance (as the CSV sink)."""
        tags = [column for column in self.columns if column[1] == "tag"]
        return tags + [column for column in self.columns if column[1] != "tag"]

    def covers(self, other: Table) -> bool:
        """True when every column of `other` is already a column of this table."""
        return self.measurement == other.measurement and all(
            c in self.columns for c in other.columns
        )


def tables(rows: Iterable[Row]) -> list[Table]:
    """Rows grouped into tables: by measurement (first appearance first), then by types."""
    by_measurement: dict[str, list[Table]] = {}
    for row in rows:
        candidates = by_measurement.setdefault(row.measurement, [])
        for table in candidates:
            if table.fits(row):
                table.add(row)
                break
        else:
            table = Table(row.measurement)
            table.add(row)
            candidates.append(table)
    return [table for group in by_measurement.values() for table in group]


def header_lines(table: Table) -> str:
    """The annotation rows and the header row of a table."""
    columns = table.layout()
    # the measurement is the one column whose value is the same on every row of a table:
    # the table's group key; tags vary between the series a table holds
    group = ["#group", "false", "true", *("false" for _ in columns)]
    datatype = ["#datatype", "dateTime:RFC3339", "measurement", *(dt for _, dt in columns)]
    default = ["#default", "", "", *("" for _ in columns)]
    header = ["", TIME_LABEL, MEASUREMENT_LABEL, *(label for label, _ in columns)]
    return "".join(csv_line(cells) for cells in (group, datatype, default, header))


def row_line(table: Table, row: Row) -> str:
    cells = ["", row.time, row.measurement, *(row.values.get(c, "") for c in table.layout())]
    return csv_line(cells)


class InfluxCsvSink(FileSink):
    """Sink for --format influx-csv: streams tables, flushed after every batch."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._last: Table | None = None
        self.skipped = 0  # records left out: no field left to write

    def write(self, records: Iterable[Record]) -> None:
        rows: list[Row] = []
        for record in records:
            row = to_row(record)
            if row is None:
                self.skipped += 1
            else:
                rows.append(row)
        out: list[str] = []
        for table in tables(rows):
            last = self._last
            if last is not None and last.covers(table):
                # same measurement, no new column: the rows continue the table above
                out.extend(row_line(last, row) for row in table.rows)
                continue
            if last is not None:
                out.append("\n")  # an empty row ends the table above
            out.append(header_lines(table))
            out.extend(row_line(table, row) for row in table.rows)
            table.rows = []  # only the columns are needed from here on
            self._last = table
        if out:
            self._stream.write("".join(out))
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()
