r"""Real servers for the tests: VictoriaMetrics and InfluxDB 1.x, as pytest fixtures.

No mocks: each fixture runs the Debian package's binary on a free loopback
port with its data in a pytest temporary directory, and kills it at the end of
the session.

- ``victoriametrics2`` / ``vm2``: a second, independent one (several targets).
- ``victoriametrics`` (session) / ``vm`` (function): VictoriaMetrics speaks the
  InfluxDB 2 write API (``POST /api/v2/write?org=&bucket=``), so multivac's
  influxdb sink writes to it with influxdb-client exactly as to InfluxDB 2.
  ``vm`` hands each test an empty server (all series deleted).
- ``influxdb1`` (session) / ``influxdb1_db`` (function): InfluxDB 1.x is the
  real line protocol parser; ``influxdb1_db`` is a fresh database per test.

What VictoriaMetrics 1.79 (Debian bookworm) does with InfluxDB writes, checked
against the binary (see tests/test_servers.py):

- measurement ``m`` + field ``f`` become the metric ``m::f`` (we start it with
  ``-influxMeasurementFieldSeparator=::`` so that :func:`to_points` can split
  the name back without guessing; VictoriaMetrics' default is ``m_f``). Tags
  become labels unchanged. Nothing is added for ``bucket`` or ``org``; the
  v1 ``/write?db=NAME`` adds the label ``db=NAME``.
- Every field value becomes a float64: ints and floats as they are, booleans as
  1/0, and string fields as **0** (kept as a series of zeros, not dropped).
- Timestamps are cut to milliseconds (``-influxTrimTimestamp=1ms`` is the
  finest it stores): ``…123456789`` ns comes back as ``…123000000``, and two
  points of one series within the same millisecond are one point.
- Deduplication (``-dedup.minScrapeInterval=1ms``): a point written twice is
  kept once; of two values with the same timestamp the last written came back
  in our checks, but VictoriaMetrics does not promise which one survives.
- Rows older than ``-retentionPeriod`` (100y here) or newer than *now + 2
  days* are dropped silently (see ``row_counters()``); the +2 days limit is
  hard-coded and no flag lifts it, so tests must not write points further
  in the future than that.
- Malformed lines are skipped one by one and logged (``invalid_lines()``),
  and the request still answers **204**: VM never returns 400/422 for bad
  line protocol, nor for an int/float type conflict (it has no types). A
  literal newline inside a string field splits the line, so the whole point
  (numeric fields too) is lost. VM reads backslashes in names and tag values
  differently from InfluxDB: ``a\\b`` is read as ``a\b``, and the tag
  values ``a\ b`` and ``a\,b`` (which influxdb-client writes as ``a\\ b``
  and ``a\\,b``) make it reject the line.
- ``/ping`` answers 204 (``client.ping()`` is True), ``/health`` answers
  ``200 OK`` as plain text (``client.health()`` reports ``fail``), and there
  is no ``/api/v2/buckets``, ``/api/v2/orgs`` or ``/api/v2/setup``: they answer
  400 with a text body ``unsupported path requested``, so
  ``buckets_api().find_bucket_by_name`` raises ``ApiException(400)``. Writing
  to any bucket name just works.
- Writes become visible to ``/api/v1/export`` only after
  ``/internal/force_flush`` (``export()`` calls it).
"""

from __future__ import annotations

import ast
import contextlib
import ctypes
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

IN_CI = bool(os.environ.get("CI"))
FIELD_SEPARATOR = "::"
"""How VictoriaMetrics joins measurement and field into a metric name here."""

START_TIMEOUT_S = 30.0
HTTP_TIMEOUT_S = 10.0
# /api/v1/export's default window ends now; points may lie up to two days
# ahead, so ask up to 2100-01-01.
_EXPORT_END_S = 4_102_444_800
_ALL_SERIES = '{__name__=~".+"}'

FieldValue = float | int | str | bool


class ServerError(RuntimeError):
    """A test server failed to start, stop or answer."""


class InfluxDB1Error(ServerError):
    """InfluxDB answered an error; ``status`` is the HTTP status (0 for a query error)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"InfluxDB {status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class StoredPoint:
    """One point as a server stored it, in InfluxDB terms."""

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    time_ns: int


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def require_binary(name: str, package: str) -> str:
    """Path of ``name``; skips the test when it is missing, except in CI, where it fails."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} not found: install Debian's {package!r} (bash tests/run.sh does)"
        if IN_CI:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return path


def _die_with_parent() -> None:
    # Linux: the server gets SIGKILL if pytest dies without running teardown
    # (killed by a CI timeout), so no server outlives its test session.
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def _http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = HTTP_TIMEOUT_S,
) -> tuple[int, bytes]:
    """(status, body) of one request; HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as e:
        return int(e.code), bytes(e.read())


class _Server:
    """A server process on a fixed port and data directory that can be stopped and restarted."""

    name = "server"

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = workdir / f"{self.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._started_once = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc is not None else None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start the server and wait until it answers; a no-op if it runs."""
        if self.running:
            return
        for attempt in range(3):
            try:
                self._spawn_and_wait(timeout)
                self._started_once = True
                return
            except ServerError:
                # Another process may have taken a port between free_port()
                # and the bind. New ports fix that, but only before the first
                # start: a restart must keep the URL clients already hold.
                busy = "address already in use" in self.log_tail().lower()
                if attempt == 2 or not busy or self._started_once:
                    raise
                self._pick_ports()

    def _pick_ports(self) -> None:
        self.port = free_port()

    def _spawn_and_wait(self, timeout: float) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"--- start {' '.join(self._argv())}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self._argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        self._paused = False
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise ServerError(
                    f"{self.name} exited with {code} while starting:\n{self.log_tail()}"
                )
            with contextlib.suppress(OSError):
                if self._ready():
                    return
            if time.monotonic() > deadline:
                self.stop(kill=True)
                raise ServerError(
                    f"{self.name} did not answer on {self.url} within {timeout:.0f}s:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.02)

    def stop(self, kill: bool = False, timeout: float = 15.0) -> None:
        """Stop the server: gracefully (data flushed to disk), or ``kill`` it like a crash."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        if self._paused:
            proc.send_signal(signal.SIGCONT)
            self._paused = False
        if kill:
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def restart(self, kill: bool = False) -> None:
        """Stop and start again on the same port with the same data."""
        self.stop(kill=kill)
        self.start()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Freeze the process (SIGSTOP): connections are accepted but never answered."""
        if self._proc is None or not self.running:
            raise ServerError(f"{self.name} is not running")
        self._proc.send_signal(signal.SIGSTOP)
        self._paused = True
        try:
            yield
        finally:
            if self._paused and self._proc is not None:
                self._proc.send_signal(signal.SIGCONT)
                self._paused = False

    def ensure_running(self) -> None:
        """Undo what a previous test may have left: a paused or stopped server."""
        if self._paused and self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)
            self._paused = False
        self.start()


class VictoriaMetrics(_Server):
    """VictoriaMetrics as an InfluxDB 2 write endpoint.

    ``url`` is what ``InfluxDBClient(url=...)`` takes; any token, org and
    bucket are accepted. See the module docstring for how it maps and checks
    line protocol.
    """

    name = "victoria-metrics"

    def __init__(self, binary: str, workdir: Path) -> None:
        super().__init__(binary, workdir)
        self.data_dir = workdir / "data"
        self._metrics_requests = 0
        self._log_offset = 0

    def _spawn_and_wait(self, timeout: float) -> None:
        self._metrics_requests = 0  # the new process counts from zero
        super()._spawn_and_wait(timeout)

    def _argv(self) -> list[str]:
        return [
            self.binary,
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.data_dir}",
            "-dedup.minScrapeInterval=1ms",
            "-retentionPeriod=100y",
            f"-influxMeasurementFieldSeparator={FIELD_SEPARATOR}",
            # Make fresh points visible to queries at once.
            "-search.latencyOffset=0s",
            "-search.disableCache",
            "-maxLabelsPerTimeseries=100",
            # Keep-alive connections otherwise hold a graceful stop for seconds.
            "-http.maxGracefulShutdownDuration=1s",
            "-loggerLevel=WARN",
            "-loggerFormat=json",
            "-loggerErrorsPerSecondLimit=0",
            "-loggerWarnsPerSecondLimit=0",
        ]

    def _ready(self) -> bool:
        status, _ = _http("GET", f"{self.url}/health", timeout=1.0)
        return status == 200

    def _get(self, path: str, params: Iterable[tuple[str, str]] = ()) -> bytes:
        query = urllib.parse.urlencode(list(params))
        url = f"{self.url}{path}" + (f"?{query}" if query else "")
        status, body = _http("GET", url)
        if status >= 300:
            raise ServerError(f"GET {path}: {status} {body.decode(errors='replace')}")
        return body

    def write(self, lines: str | bytes, bucket: str = "test", org: str = "test") -> None:
        """POST line protocol to the InfluxDB 2 endpoint (precision ns)."""
        data = lines.encode() if isinstance(lines, str) else lines
        params = urllib.parse.urlencode({"org": org, "bucket": bucket, "precision": "ns"})
        status, body = _http("POST", f"{self.url}/api/v2/write?{params}", data)
        if status >= 300:
            raise ServerError(f"write: {status} {body.decode(errors='replace')}")

    def flush(self) -> None:
        """Make everything written so far visible to export and queries."""
        self._get("/internal/force_flush")

    def export(self, match: str = _ALL_SERIES) -> list[dict[str, Any]]:
        """``/api/v1/export`` rows after a flush, sorted by metric name and labels.

        Each row: ``{"metric": {"__name__": "m::f", <tag>: <value>...},
        "values": [float...], "timestamps": [int milliseconds...]}``.
        """
        self.flush()
        body = self._get(
            "/api/v1/export",
            [("match[]", match), ("start", "0"), ("end", str(_EXPORT_END_S))],
        )
        rows = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        rows.sort(key=lambda r: sorted(r["metric"].items()))
        return rows

    def points(
        self, match: str = _ALL_SERIES, fields: Iterable[str] | None = None
    ) -> list[StoredPoint]:
        """Everything stored, turned back into InfluxDB-style points; see :func:`to_points`."""
        return to_points(self.export(match), fields=fields)

    def metrics(self) -> dict[str, float]:
        """VictoriaMetrics' own counters from ``/metrics``, keyed by their full name.

        VictoriaMetrics serves this page from a one-second cache; this waits
        (up to a second) for a page made after the call.
        """
        deadline = time.monotonic() + 5.0
        while True:
            body = self._get("/metrics")
            self._metrics_requests += 1
            out: dict[str, float] = {}
            for line in body.decode().splitlines():
                if line and not line.startswith("#"):
                    name, _, value = line.rpartition(" ")
                    with contextlib.suppress(ValueError):
                        out[name] = float(value)
            # The page counts the request that made it: fresh when it counts ours.
            seen = out.get('vm_http_requests_total{path="/metrics"}', 0.0)
            if seen >= self._metrics_requests or time.monotonic() > deadline:
                return out
            time.sleep(0.05)

    def row_counters(self) -> dict[str, int]:
        """Rows dropped since the process started, although VM answered 204.

        ``invalid``: lines it could not parse; ``too_new``: more than two days
        ahead; ``too_old``: older than the retention. Takes up to a second
        (see :meth:`metrics`): compare a reading before and after a write.
        """
        m = self.metrics()
        return {
            "invalid": int(m.get('vm_rows_invalid_total{type="influx"}', 0.0)),
            "too_new": int(m.get('vm_rows_ignored_total{reason="big_timestamp"}', 0.0)),
            "too_old": int(m.get('vm_rows_ignored_total{reason="small_timestamp"}', 0.0)),
        }

    def log_messages(
        self, levels: Collection[str] = ("warn", "error", "fatal", "panic")
    ) -> list[str]:
        """Messages VictoriaMetrics logged since the last :meth:`reset`, at once.

        Every line it could not parse is logged (see :meth:`invalid_lines`);
        rows dropped for their timestamp are logged at most once per request
        and once per five seconds, so count those with :meth:`row_counters`.
        """
        try:
            with self.log_path.open("rb") as f:
                f.seek(self._log_offset)
                text = f.read().decode(errors="replace")
        except FileNotFoundError:
            return []
        messages = []
        for line in text.splitlines():
            with contextlib.suppress(ValueError, TypeError, KeyError):
                record = json.loads(line)
                if record["level"] in levels:
                    messages.append(str(record["msg"]))
        return messages

    def invalid_lines(self) -> list[str]:
        """The lines VictoriaMetrics rejected as malformed since the last :meth:`reset`."""
        lines = []
        for msg in self.log_messages(("error",)):
            prefix = "cannot unmarshal InfluxDB line "
            if msg.startswith(prefix):
                lines.append(_go_unquote(msg[len(prefix) :]))
        return lines

    def reset(self) -> None:
        """Delete every series, so the next test starts from an empty server."""
        self.ensure_running()
        self._get("/api/v1/admin/tsdb/delete_series", [("match[]", _ALL_SERIES)])
        self.flush()
        with contextlib.suppress(FileNotFoundError):
            self._log_offset = self.log_path.stat().st_size


def _go_unquote(text: str) -> str:
    """The Go-quoted (%q) string at the start of ``text``, unquoted."""
    if not text.startswith('"'):
        return text
    i = 1
    while i < len(text) and text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    quoted = text[: i + 1]
    try:
        # Go's %q escapes are Python's, for valid UTF-8.
        value = ast.literal_eval(quoted)
    except (ValueError, SyntaxError):
        return quoted
    return value if isinstance(value, str) else quoted


def to_points(
    rows: Iterable[Mapping[str, Any]], fields: Iterable[str] | None = None
) -> list[StoredPoint]:
    """Turn ``/api/v1/export`` rows back into InfluxDB-style points.

    The metric name ``measurement::field`` is split at the last separator;
    the fields of one measurement, tag set and timestamp are merged into one
    point; the ``db`` label (added by ``/write?db=``) is dropped; times become
    nanoseconds (multiples of 1,000,000). Values are floats: string fields
    come back as 0.0 and booleans as 1.0/0.0, so pass ``fields`` to keep only
    the numeric fields you want to compare. Sorted by (time, measurement,
    tags).
    """
    wanted = set(fields) if fields is not None else None
    merged: dict[tuple[str, tuple[tuple[str, str], ...], int], dict[str, FieldValue]] = {}
    for row in rows:
        labels = dict(row["metric"])
        name = labels.pop("__name__")
        labels.pop("db", None)
        # An empty measurement leaves the field name alone, without separator.
        measurement, _, field_name = name.rpartition(FIELD_SEPARATOR)
        if wanted is not None and field_name not in wanted:
            continue
        tags = tuple(sorted(labels.items()))
        for value, ts_ms in zip(row["values"], row["timestamps"], strict=True):
            key = (measurement, tags, int(ts_ms) * 1_000_000)
            merged.setdefault(key, {})[field_name] = float(value)
    points = [
        StoredPoint(measurement=m, tags=dict(t), fields=dict(sorted(f.items())), time_ns=ts)
        for (m, t, ts), f in merged.items()
    ]
    points.sort(key=lambda p: (p.time_ns, p.measurement, sorted(p.tags.items())))
    return points


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes (measurement, tag or field key)."""
    escaped = name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def quote_literal(value: str) -> str:
    """An InfluxQL string literal in single quotes."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


class InfluxDB1(_Server):
    """InfluxDB 1.x: the reference line protocol parser (``POST /write?db=``)."""

    name = "influxd"

    def __init__(self, binary: str, workdir: Path, database: str = "test") -> None:
        super().__init__(binary, workdir)
        self.database = database
        self.rpc_port = free_port()
        self.config_path = workdir / "influxdb.conf"

    def _write_config(self) -> None:
        d = self.workdir
        # Only the HTTP API listens; everything that would run in the
        # background (monitoring, retention, reporting) is off.
        self.config_path.write_text(
            f"""\
reporting-enabled = false
bind-address = "127.0.0.1:{self.rpc_port}"

[meta]
  dir = "{d / "meta"}"
  logging-enabled = false

[data]
  dir = "{d / "data"}"
  wal-dir = "{d / "wal"}"
  query-log-enabled = false
  trace-logging-enabled = false

[retention]
  enabled = false

[shard-precreation]
  enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  auth-enabled = false
  log-enabled = false
  write-tracing = false
  pprof-enabled = false
  https-enabled = false
  unix-socket-enabled = false

[ifql]
  enabled = false

[logging]
  level = "error"
  suppress-logo = true

[continuous_queries]
  enabled = false
"""
        )

    def _argv(self) -> list[str]:
        return [self.binary, "-config", str(self.config_path)]

    def _spawn_and_wait(self, timeout: float) -> None:
        self._write_config()
        super()._spawn_and_wait(timeout)

    def _pick_ports(self) -> None:
        super()._pick_ports()
        self.rpc_port = free_port()

    def _ready(self) -> bool:
        status, _ = _http("GET", f"{self.url}/ping", timeout=1.0)
        return status == 204

    def create_database(self, name: str) -> None:
        # One shard group spans ~19 years, so points from 2020 to 2030 need
        # at most two shards instead of one per week.
        self.query(f"CREATE DATABASE {quote_ident(name)} WITH SHARD DURATION 1000w")

    def drop_database(self, name: str) -> None:
        self.query(f"DROP DATABASE {quote_ident(name)}")

    def write(
        self,
        lines: str | bytes | Iterable[str],
        db: str | None = None,
        precision: str = "ns",
    ) -> None:
        """POST line protocol to ``/write``; errors raise :class:`InfluxDB1Error`."""
        if isinstance(lines, str):
            data = lines.encode()
        elif isinstance(lines, bytes):
            data = lines
        else:
            data = "\n".join(lines).encode()
        params = urllib.parse.urlencode({"db": db or self.database, "precision": precision})
        status, body = _http("POST", f"{self.url}/write?{params}", data)
        if status >= 300:
            raise InfluxDB1Error(status, _error_message(body))

    def raw_query(self, influxql: str, db: str | None = None) -> list[dict[str, Any]]:
        """The ``results`` of ``/query`` (epoch ns), raising on any statement's error."""
        params = {"q": influxql, "db": db or self.database, "epoch": "ns"}
        body = urllib.parse.urlencode(params).encode()
        status, answer = _http(
            "POST",
            f"{self.url}/query",
            body,
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        if status >= 300:
            raise InfluxDB1Error(status, _error_message(answer))
        payload = json.loads(answer)
        if "error" in payload:
            raise InfluxDB1Error(0, str(payload["error"]))
        results: list[dict[str, Any]] = payload.get("results", [])
        for result in results:
            if "error" in result:
                raise InfluxDB1Error(0, str(result["error"]))
        return results

    def query(self, influxql: str, db: str | None = None) -> list[dict[str, Any]]:
        """Rows of all statements, flattened.

        Each row is ``{"_measurement": series name, **group-by tags, **columns}``;
        ``time`` is in nanoseconds. ``SHOW TAG VALUES`` rows have ``key`` and
        ``value``.
        """
        rows: list[dict[str, Any]] = []
        for result in self.raw_query(influxql, db):
            for series in result.get("series", []):
                base = {"_measurement": series.get("name"), **series.get("tags", {})}
                for values in series.get("values", []):
                    rows.append({**base, **dict(zip(series["columns"], values, strict=True))})
        return rows

    def points(self, db: str | None = None) -> list[StoredPoint]:
        """Every point of the database, with field types as InfluxDB stored them.

        Empty tag values (a tag the point did not have) are left out. Sorted
        by (time, measurement, tags).
        """
        types: dict[tuple[str, str], str] = {}
        for row in self.query("SHOW FIELD KEYS", db):
            types[(row["_measurement"], row["fieldKey"])] = row["fieldType"]
        points: list[StoredPoint] = []
        for result in self.raw_query("SELECT * FROM /.*/ GROUP BY *", db):
            for series in result.get("series", []):
                measurement = series["name"]
                tags = {k: v for k, v in series.get("tags", {}).items() if v != ""}
                for values in series.get("values", []):
                    row = dict(zip(series["columns"], values, strict=True))
                    ts = int(row.pop("time"))
                    fields = {
                        k: _typed(v, types.get((measurement, k), ""))
                        for k, v in sorted(row.items())
                        if v is not None
                    }
                    points.append(StoredPoint(measurement, tags, fields, ts))
        points.sort(key=lambda p: (p.time_ns, p.measurement, sorted(p.tags.items())))
        return points


def _typed(value: Any, field_type: str) -> FieldValue:
    # JSON writes the float 12.0 as 12; SHOW FIELD KEYS knows it is a float.
    if field_type == "float" and isinstance(value, int | float):
        return float(value)
    if field_type == "integer" and isinstance(value, int | float):
        return int(value)
    result: FieldValue = value
    return result


def _error_message(body: bytes) -> str:
    text = body.decode(errors="replace").strip()
    with contextlib.suppress(ValueError, TypeError, KeyError):
        return str(json.loads(text)["error"])
    return text


@dataclass
class InfluxDB1Database:
    """One database on :class:`InfluxDB1`, for one test."""

    server: InfluxDB1
    name: str

    def write(self, lines: str | bytes | Iterable[str], precision: str = "ns") -> None:
        self.server.write(lines, db=self.name, precision=precision)

    def query(self, influxql: str) -> list[dict[str, Any]]:
        return self.server.query(influxql, db=self.name)

    def raw_query(self, influxql: str) -> list[dict[str, Any]]:
        return self.server.raw_query(influxql, db=self.name)

    def points(self) -> list[StoredPoint]:
        return self.server.points(db=self.name)


@pytest.fixture(scope="session")
def victoriametrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    """One VictoriaMetrics for the session; prefer ``vm``, which empties it per test."""
    binary = require_binary("victoria-metrics", "victoria-metrics")
    server = VictoriaMetrics(binary, tmp_path_factory.mktemp("victoriametrics"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def vm(victoriametrics: VictoriaMetrics) -> VictoriaMetrics:
    """The session's VictoriaMetrics, running, with no series and fresh rejection counters."""
    victoriametrics.reset()
    return victoriametrics


@pytest.fixture(scope="session")
def victoriametrics2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    """A second VictoriaMetrics for the session, for tests of several InfluxDB targets;
    prefer ``vm2``."""
    binary = require_binary("victoria-metrics", "victoria-metrics")
    server = VictoriaMetrics(binary, tmp_path_factory.mktemp("victoriametrics2"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def vm2(victoriametrics2: VictoriaMetrics) -> VictoriaMetrics:
    """The second VictoriaMetrics, running (restarted if a test stopped it), emptied."""
    victoriametrics2.reset()
    return victoriametrics2


@pytest.fixture(scope="session")
def influxdb1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB1]:
    """One InfluxDB 1.x for the session, with the database ``test`` created."""
    binary = require_binary("influxd", "influxdb")
    server = InfluxDB1(binary, tmp_path_factory.mktemp("influxdb1"))
    try:
        server.start()
        server.create_database(server.database)
        yield server
    finally:
        server.stop()


_db_numbers = itertools.count(1)


@pytest.fixture
def influxdb1_db(influxdb1: InfluxDB1) -> Iterator[InfluxDB1Database]:
    """A fresh, empty database for one test, dropped afterwards."""
    influxdb1.ensure_running()
    db = InfluxDB1Database(influxdb1, f"t{next(_db_numbers)}")
    influxdb1.create_database(db.name)
    yield db
    if influxdb1.running:
        influxdb1.drop_database(db.name)


__all__ = [
    "FIELD_SEPARATOR",
    "InfluxDB1",
    "InfluxDB1Database",
    "InfluxDB1Error",
    "ServerError",
    "StoredPoint",
    "VictoriaMetrics",
    "free_port",
    "influxdb1",
    "influxdb1_db",
    "quote_ident",
    "quote_literal",
    "require_binary",
    "to_points",
    "victoriametrics",
    "victoriametrics2",
    "vm",
    "vm2",
]
