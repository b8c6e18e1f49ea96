"""multivac: GitHub Actions history as metrics.

The Python API (docs/api.md), loaded on first use so that the command line starts fast:

- `gather_records(repos, since=...)`: an iterator of `Record`s (`JobRecord` per job
  attempt) of a window of GitHub Actions history;
- `classify_log(path_or_bytes)`: the `Classification` of a job log, or None;
- `open_writer()`: a `Writer` to every configured InfluxDB target, taking records or
  `{measurement, tags, fields, time}` dicts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from multivac.api import Writer, classify_log, gather_records, open_writer
    from multivac.errors import MultivacError
    from multivac.gather import Summary
    from multivac.model import (
        Classification,
        JobRecord,
        PointKey,
        Record,
        RunRecord,
        StepRecord,
        TestRecord,
        TestSummaryRecord,
    )

__all__ = [
    "Classification",
    "JobRecord",
    "MultivacError",
    "PointKey",
    "Record",
    "RunRecord",
    "StepRecord",
    "Summary",
    "TestRecord",
    "TestSummaryRecord",
    "Writer",
    "__version__",
    "classify_log",
    "gather_records",
    "open_writer",
]

_HOMES = {
    "Writer": "multivac.api",
    "classify_log": "multivac.api",
    "gather_records": "multivac.api",
    "open_writer": "multivac.api",
    "MultivacError": "multivac.errors",
    "Summary": "multivac.gather",
    "Classification": "multivac.model",
    "JobRecord": "multivac.model",
    "PointKey": "multivac.model",
    "Record": "multivac.model",
    "RunRecord": "multivac.model",
    "StepRecord": "multivac.model",
    "TestRecord": "multivac.model",
    "TestSummaryRecord": "multivac.model",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'multivac' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
