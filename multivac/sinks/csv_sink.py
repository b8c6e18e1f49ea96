"""CSV: a header row, then one row per record; the same keys as every other format."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from typing import TextIO

from multivac.model import JOB_SCHEMA, Record, Schema, table_columns
from multivac.sinks.base import FileSink


class CsvSink(FileSink):
    """One header for every record type the output will hold (`schemas`); a row leaves
    the columns of other types empty."""

    def __init__(
        self, stream: TextIO, *, lean: bool = False, schemas: Sequence[Schema] = (JOB_SCHEMA,)
    ) -> None:
        self._stream = stream
        self._lean = lean
        self._writer = csv.DictWriter(
            stream, fieldnames=table_columns(schemas, lean), lineterminator="\n"
        )
        self._writer.writeheader()

    def write(self, records: Iterable[Record]) -> None:
        for record in records:
            row = {k: ("" if v is None else v) for k, v in record.row(self._lean).items()}
            self._writer.writerow(row)
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()
