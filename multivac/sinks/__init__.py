"""Output formats: `--format` is an enum, each value maps to one sink."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, BinaryIO, TextIO, cast

from multivac.config import InfluxSettings
from multivac.errors import SinkError, os_reason
from multivac.model import JOB_SCHEMA, PointKey, Record, Schema
from multivac.retry import Notify, RetryPolicy
from multivac.sinks.base import Sink


class Format(StrEnum):
    csv = "csv"
    json = "json"
    influxdb = "influxdb"
    line_protocol = "line-protocol"
    influx_csv = "influx-csv"
    jsonl = "jsonl"


def _open(output: Path | None, binary: bool, stack: ExitStack) -> IO[Any]:
    if output is None or str(output) == "-":
        return sys.stdout.buffer if binary else sys.stdout
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        # closed by the stack, below
        handle: IO[Any] = (
            open(output, "wb")  # noqa: SIM115
            if binary
            else open(output, "w", encoding="utf-8", newline="")  # noqa: SIM115
        )
    except OSError as exc:
        raise SinkError(f"cannot write {output}: {os_reason(exc)}.") from None

    def close() -> None:
        # every sink flushes in write() and close(), where a failure is reported (as a
        # SinkError naming the file); what a failed write left in the buffer fails again
        # here, and must not hide that first error (or raise in serve's output thread)
        with contextlib.suppress(OSError):
            handle.close()

    stack.callback(close)
    return handle


class _Guarded:
    """A file sink whose write errors (a full disk, an I/O error, a closed pipe) come
    out as one SinkError naming the file, like an error opening it."""

    def __init__(self, sink: Sink, name: str) -> None:
        self._sink = sink
        self._name = name

    def _failed(self, exc: OSError) -> SinkError:
        return SinkError(f"cannot write {self._name}: {os_reason(exc)}.")

    def write(self, records: Iterable[Record]) -> None:
        try:
            self._sink.write(records)
        except OSError as exc:
            raise self._failed(exc) from None

    def retract(self, keys: Sequence[PointKey]) -> None:
        self._sink.retract(keys)

    def close(self) -> None:
        try:
            self._sink.close()
        except OSError as exc:
            raise self._failed(exc) from None


def build_sink(
    fmt: Format,
    *,
    stack: ExitStack,
    output: Path | None = None,
    lean: bool = False,
    influx: InfluxSettings | None = None,
    spool_dir: Path | None = None,
    create_bucket: bool = False,
    policy: RetryPolicy | None = None,
    notify: Notify | None = None,
    schemas: Sequence[Schema] = (JOB_SCHEMA,),
    targets: Sequence[InfluxSettings] = (),
) -> Sink:
    """The sink for a format; files are closed by the given ExitStack. `schemas` names
    the record types the output will hold (CSV writes one header for all of them).
    InfluxDB writes to every one of `targets` (or to `influx` alone), each spooling
    under `spool_dir` (see sinks/targets.py)."""
    if fmt is Format.influxdb:
        from multivac.sinks.targets import InfluxTargets

        chosen = tuple(targets) or ((influx,) if influx is not None else ())
        if not chosen or spool_dir is None:
            raise SinkError("--format influxdb needs the INFLUX_* settings and a state directory.")
        return InfluxTargets(
            chosen, spool_dir, policy=policy, notify=notify, create_bucket=create_bucket
        )
    name = "stdout" if output is None or str(output) == "-" else str(output)
    try:
        return _Guarded(_file_sink(fmt, stack, output, lean, schemas), name)
    except OSError as exc:  # a header written at once
        raise SinkError(f"cannot write {name}: {os_reason(exc)}.") from None


def _file_sink(
    fmt: Format, stack: ExitStack, output: Path | None, lean: bool, schemas: Sequence[Schema]
) -> Sink:
    if fmt is Format.csv:
        from multivac.sinks.csv_sink import CsvSink

        return CsvSink(cast(TextIO, _open(output, False, stack)), lean=lean, schemas=schemas)
    if fmt is Format.json:
        from multivac.sinks.json_sink import JsonSink

        return JsonSink(cast(TextIO, _open(output, False, stack)), lean=lean)
    if fmt is Format.line_protocol:
        from multivac.sinks.lineproto import LineProtocolSink

        return LineProtocolSink(cast(BinaryIO, _open(output, True, stack)))
    if fmt is Format.influx_csv:
        from multivac.sinks.influx_csv import InfluxCsvSink

        return InfluxCsvSink(cast(TextIO, _open(output, False, stack)))
    if fmt is Format.jsonl:
        from multivac.sinks.jsonl import JsonLinesSink

        return JsonLinesSink(cast(TextIO, _open(output, False, stack)))
    raise SinkError(f"unknown format {fmt!r}.")  # pragma: no cover - the enum is exhaustive
