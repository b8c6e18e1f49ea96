"""The one interface every output format implements."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from multivac.model import PointKey, Record


class Sink(Protocol):
    """Takes records in any number of batches; `close()` finishes the output."""

    def write(self, records: Iterable[Record]) -> None: ...

    def retract(self, keys: Sequence[PointKey]) -> None:
        """Remove points written earlier that newer records supersede. Files are
        append-only outputs of one gather: there it does nothing."""
        ...

    def close(self) -> None: ...


class FileSink:
    """Base of the file formats: a file holds one gather's records, nothing to retract."""

    def retract(self, keys: Sequence[PointKey]) -> None:
        return None
