"""Output formats: `--format` is an enum, each value maps to one sink."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from contextlib import ExitStack
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, BinaryIO, TextIO, cast

from multivac.config import InfluxSettings
from multivac.errors import SinkError, os_reason
from multivac.model import JOB_SCHEMA, Schema
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
        if binary:
            return stack.enter_context(open(output, "wb"))
        return stack.enter_context(open(output, "w", encoding="utf-8", newline=""))
    except OSError as exc:
        raise SinkError(f"cannot write {output}: {os_reason(exc)}.") from None


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
    if fmt is Format.influxdb:
        from multivac.sinks.targets import InfluxTargets

        chosen = tuple(targets) or ((influx,) if influx is not None else ())
        if not chosen or spool_dir is None:
            raise SinkError("--format influxdb needs the INFLUX_* settings and a state directory.")
        return InfluxTargets(
            chosen, spool_dir, policy=policy, notify=notify, create_bucket=create_bucket
        )
    raise SinkError(f"unknown format {fmt!r}.")  # pragma: no cover - the enum is exhaustive
