"""JSON: one array of objects, written as records arrive so nothing waits in memory."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TextIO

from multivac.model import Record
from multivac.sinks.base import FileSink


class JsonSink(FileSink):
    def __init__(self, stream: TextIO, *, lean: bool = False) -> None:
        self._stream = stream
        self._lean = lean
        self._count = 0
        self._stream.write("[")

    def write(self, records: Iterable[Record]) -> None:
        for record in records:
            self._stream.write(",\n  " if self._count else "\n  ")
            self._stream.write(json.dumps(record.row(self._lean), ensure_ascii=False))
            self._count += 1
        self._stream.flush()

    def close(self) -> None:
        self._stream.write("\n]\n" if self._count else "]\n")
        self._stream.flush()
