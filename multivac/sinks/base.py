"""The one interface every output format implements."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from multivac.model import JobRecord


class Sink(Protocol):
    """Takes records in any number of batches; `close()` finishes the output."""

    def write(self, records: Iterable[JobRecord]) -> None: ...

    def close(self) -> None: ...
