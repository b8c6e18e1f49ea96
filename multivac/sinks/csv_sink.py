"""CSV: a header row, then one row per record; the same keys as every other format."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import TextIO

from multivac.model import JobRecord, columns
from multivac.sinks.base import FileSink


class CsvSink(FileSink):
    def __init__(self, stream: TextIO, *, lean: bool = False) -> None:
        self._stream = stream
        self._lean = lean
        tags, fields = columns(lean)
        self._writer = csv.DictWriter(
            stream, fieldnames=["time", "measurement", *tags, *fields], lineterminator="\n"
        )
        self._writer.writeheader()

    def write(self, records: Iterable[JobRecord]) -> None:
        for record in records:
            row = {k: ("" if v is None else v) for k, v in record.row(self._lean).items()}
            self._writer.writerow(row)
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()
