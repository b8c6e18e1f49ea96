"""The Python API: multivac's records in your own code (docs/api.md).

Three things, configured like the command line (flags become arguments; then the
environment, `.env` in the current directory and the config file):

- `gather_records(...)`: a window of GitHub Actions history as an iterator of records,
  through the same pipeline as `multivac gather` (the local store included, so a
  repeated call fetches only what is new);
- `classify_log(...)`: the failure type of a job log;
- `open_writer(...)`: the configured InfluxDB writer (every target, spool, retries),
  taking records or plain `{measurement, tags, fields, time}` dicts as the original
  multivac connector's `write_api.write(...)` did.

Errors are `MultivacError`s with one sentence, as on the command line.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich.console import Console

from multivac import config
from multivac.config import Environment
from multivac.errors import IngestError, SinkError
from multivac.gather import Summary
from multivac.model import Classification, Record
from multivac.sinks.influx import CHUNK

if TYPE_CHECKING:
    from multivac.classify import Catalog
    from multivac.sinks.targets import InfluxTargets, TargetStats

__all__ = ["Writer", "classify_log", "gather_records", "open_writer"]

logger = logging.getLogger("multivac")

PathLike = str | os.PathLike[str]


def _environment(config_file: PathLike | None) -> Environment:
    return Environment(config_path=Path(config_file) if config_file is not None else None)


def _moment(value: str | datetime | None) -> str | None:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def gather_records(
    repos: Sequence[str] = (),
    *,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    org: str | None = None,
    latest: int | None = None,
    branches: Sequence[str] = (),
    workflows: Sequence[str] = (),
    event: str | None = None,
    rules: Sequence[str] | None = None,
    logs: bool = True,
    lean: bool = False,
    concurrency: int | None = None,
    state_dir: PathLike | None = None,
    config_file: PathLike | None = None,
    summary: Summary | None = None,
    runs: bool = True,
    steps: bool = False,
) -> Iterator[Record]:
    """The records of every job attempt of the completed runs created in the window
    (`JobRecord`s), with a `RunRecord` per run attempt (unless `runs=False`) and a
    `StepRecord` per step (with `steps=True`), as `multivac gather` writes them.

    The arguments are `multivac gather`'s options (`since`/`until`: a duration ago such
    as "12h", an ISO date, or a datetime). Settings are checked now; GitHub is read as
    the iterator is consumed, run by run. A run counts as gathered (and is not fetched
    again by the next call) only once the iterator has moved past its records; failed
    jobs whose log could not be read yet are left out and counted in `summary`.
    """
    from multivac.sinks import Format

    env = _environment(config_file)
    plan = config.plan_gather(
        env,
        repos=list(repos) or None,
        output_format=Format.jsonl,  # not written anywhere: the caller takes the records
        since=_moment(since),
        until=_moment(until),
        latest=latest,
        org=org,
        branches=list(branches),
        workflows=list(workflows),
        event=event,
        lean=lean,
        rules=list(rules) if rules is not None else None,
        fetch_logs=logs,
        concurrency=concurrency,
        state=Path(state_dir) if state_dir is not None else None,
        runs=runs,
        steps=steps,
    )
    return _records(plan, summary if summary is not None else Summary())


def _records(plan: config.GatherPlan, summary: Summary) -> Iterator[Record]:
    from multivac.commands.gather import results, session

    quiet = Console(stderr=True, quiet=True)
    with session(plan, logger.info) as (store, source, catalog):
        for result in results(plan, source, store, catalog, summary, quiet):
            yield from result.records


@lru_cache(maxsize=8)
def _catalog(sources: tuple[str, ...]) -> Catalog:
    from multivac.classify import load_catalog

    return load_catalog(sources)


def classify_log(
    log: PathLike | bytes | Iterable[bytes],
    *,
    rules: Sequence[str] | None = None,
    config_file: PathLike | None = None,
) -> Classification | None:
    """Why a job failed, from its log: a file path, the log's bytes, or an iterable of
    byte chunks (a download stream). None when no rule matches.

    `rules` are extra rule files or pack names, as `--rules`; None takes the configured
    ones (MULTIVAC_RULES, the config file's `rules`).
    """
    from multivac import classify

    if rules is None:
        sources = config.rule_sources(None, _environment(config_file))
    else:
        sources = tuple(rules)
    catalog = _catalog(sources)
    if isinstance(log, bytes):
        return classify.classify_log([log], catalog)
    if isinstance(log, str | os.PathLike):
        return classify.classify_file(Path(log), catalog)
    return classify.classify_log(log, catalog)


Point = Record | Mapping[str, Any]


class Writer:
    """Every configured InfluxDB target, with its spool and retries.

    `write()` takes records (from `gather_records`) or dicts
    `{"measurement": str, "tags": {...}, "fields": {...}, "time": ...}` (time: integer
    nanoseconds, an RFC 3339 string or a datetime; now when missing). Points are sent in
    chunks; `flush()` sends what is buffered, `close()` (or leaving a `with` block)
    sends the rest. What a target cannot take now waits in its spool for the next
    writer, gather or `multivac replay`; `failure` says why.
    """

    def __init__(self, targets: InfluxTargets) -> None:
        self._targets = targets
        self._closed = False

    def write(self, points: Point | Iterable[Point]) -> None:
        from multivac.ingest import record_from_dict

        if self._closed:
            raise SinkError("this InfluxDB writer is closed.")
        if isinstance(points, Record | Mapping):
            points = [points]
        batch: list[Record] = []
        try:
            # in chunks: an iterator of any length in bounded memory
            for number, point in enumerate(points, start=1):
                if isinstance(point, Record):
                    batch.append(point)
                    continue
                try:
                    batch.append(record_from_dict(point, default_time_ns=time.time_ns()))
                except IngestError as exc:
                    raise IngestError(f"point {number}: {exc}") from None
                if len(batch) >= CHUNK:
                    self._targets.write(batch)
                    batch = []
        finally:
            # a bad dict stops the write; the points before it are still sent
            self._targets.write(batch)

    def flush(self) -> None:
        self._targets.flush()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._targets.close()

    @property
    def stats(self) -> list[TargetStats]:
        """Per target: points written, spooled and rejected so far."""
        return self._targets.stats

    @property
    def failure(self) -> str | None:
        """Why some points were spooled or set aside instead of written, if they were."""
        return self._targets.failure

    def __enter__(self) -> Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def open_writer(
    *,
    state_dir: PathLike | None = None,
    config_file: PathLike | None = None,
    create_bucket: bool = False,
) -> Writer:
    """The InfluxDB writer configured by INFLUX_* (the target "default") and the config
    file's [[influx]] targets. Delivers what the targets' spools hold first, so points
    reach each target in the order they were written."""
    from multivac.sinks.targets import InfluxTargets

    env = _environment(config_file)
    targets = config.influx_targets(env)
    state = config.state_dir(Path(state_dir) if state_dir is not None else None, env)
    policy = config.influx_wait(env, config.retry_policy(env))
    sink = InfluxTargets(
        targets,
        state / "spool",
        policy=policy,
        notify=logger.warning,
        create_bucket=env.enabled(create_bucket, "gather.create_bucket"),
    )
    try:
        sink.replay()
    except BaseException:
        sink.close()
        raise
    return Writer(sink)
