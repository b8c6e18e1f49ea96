"""InfluxDB 2: synchronous, gzip'd writes in chunks, with a durable spool.

influxdb-client's default batching writer flushes from a background thread and can
drop points at exit, so every chunk is written synchronously and its outcome known.
A chunk the server cannot take right now (down, slow, 5xx, 429) goes to the spool:
line protocol files in the state directory, fsync'd before they count as written,
delivered first by the next gather or by `multivac replay`. A chunk the server
rejects (4xx: bad data) is set aside in `spool/rejected/` with the server's message.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from multivac.config import InfluxSettings, redact
from multivac.errors import SinkError, os_reason
from multivac.model import PointKey, Record
from multivac.retry import Notify, Outage, OutageStop, RetryPolicy
from multivac.sinks.lineproto import to_lines

CHUNK = 5000
RETRYABLE = frozenset({429, 500, 502, 503, 504})


@dataclass
class InfluxStats:
    written: int = 0
    spooled: int = 0
    rejected: int = 0
    retracted: int = 0
    spooled_retractions: int = 0
    messages: list[str] = field(default_factory=list)


class WriteFailed(Exception):
    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _server_message(body: object) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:500]
    if isinstance(data, dict):
        for key in ("message", "error"):
            if data.get(key):
                return str(data[key])[:500]
    return text.strip()[:500]


class InfluxWriter:
    """Owns the client; writes one chunk of lines or raises WriteFailed."""

    def __init__(self, settings: InfluxSettings, timeout_s: float = 30.0) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.settings = settings
        self._client = InfluxDBClient(
            url=settings.url,
            token=settings.token.reveal(),
            org=settings.org,
            timeout=int(timeout_s * 1000),
            enable_gzip=True,
            retries=False,
        )
        self._api = self._client.write_api(write_options=SYNCHRONOUS)

    def write(self, lines: list[str]) -> None:
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException

        try:
            self._api.write(
                bucket=self.settings.bucket,
                org=self.settings.org,
                record=lines,
                write_precision=WritePrecision.NS,  # type: ignore[arg-type]
            )
        except ApiException as exc:
            raise WriteFailed(exc.status, redact(_server_message(exc.body) or exc.reason)) from None
        except Exception as exc:  # urllib3 connection errors, timeouts, DNS
            raise WriteFailed(None, redact(f"{type(exc).__name__}: {exc}")) from None

    def delete(self, key: PointKey) -> None:
        """Delete exactly one point: its measurement and tag set at its instant."""
        from datetime import UTC, datetime, timedelta

        from influxdb_client.rest import ApiException

        def quoted(value: str) -> str:
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

        predicate = " AND ".join(
            [f"_measurement={quoted(key.measurement)}"]
            + [f"{name}={quoted(value)}" for name, value in key.predicate_tags]
        )
        start = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=key.time_ns // 1000)
        stop = start + timedelta(microseconds=1)
        try:
            self._client.delete_api().delete(
                start, stop, predicate, bucket=self.settings.bucket, org=self.settings.org
            )
        except ApiException as exc:
            raise WriteFailed(exc.status, redact(_server_message(exc.body) or exc.reason)) from None
        except Exception as exc:
            raise WriteFailed(None, redact(f"{type(exc).__name__}: {exc}")) from None

    def ping(self) -> bool:
        """Whether the server answers now (a health check; never raises)."""
        try:
            return bool(self._client.ping())
        except Exception:
            return False

    def ensure_bucket(self) -> bool:
        """Create the bucket when missing; True when it was created."""
        from influxdb_client.rest import ApiException

        try:
            api = self._client.buckets_api()
            if api.find_bucket_by_name(self.settings.bucket) is not None:
                return False
            api.create_bucket(bucket_name=self.settings.bucket, org=self.settings.org)
            return True
        except ApiException as exc:
            raise SinkError(
                f"cannot create InfluxDB bucket {self.settings.bucket!r} "
                f"(HTTP {exc.status}): {redact(_server_message(exc.body) or str(exc.reason))}"
            ) from None
        except Exception as exc:
            raise SinkError(
                f"cannot reach InfluxDB at {self.settings.url} to create the bucket "
                f"({type(exc).__name__})."
            ) from None

    def close(self) -> None:
        self._client.close()


class Spool:
    """Files waiting for delivery, oldest first: line protocol (`.lp`) and the keys of
    points to delete (`.del`, JSON lines). A file counts once it is fsync'd."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.rejected = directory / "rejected"

    def _fsync_write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _name(self, suffix: str) -> Path:
        return self.directory / f"{time.time_ns():020d}-{os.getpid()}{suffix}"

    def add(self, lines: list[str]) -> Path:
        path = self._name(".lp")
        self._fsync_write(path, ("\n".join(lines) + "\n").encode("utf-8"))
        return path

    def add_retractions(self, keys: Sequence[PointKey]) -> Path:
        path = self._name(".del")
        self._fsync_write(path, "".join(key.to_json() + "\n" for key in keys).encode("utf-8"))
        return path

    def reject(self, path: Path, message: str) -> Path:
        target = self.rejected / path.name
        self.rejected.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        self._fsync_write(target.with_suffix(".error.txt"), (message + "\n").encode("utf-8"))
        return target

    def pending(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        found = [*self.directory.glob("*.lp"), *self.directory.glob("*.del")]
        return sorted(path for path in found if path.is_file())

    @staticmethod
    def read(path: Path) -> list[str]:
        return [line for line in path.read_text("utf-8").splitlines() if line.strip()]


def _rejected(exc: WriteFailed) -> bool:
    """A 4xx about the data itself (400, 422; 413 for a single line): retrying cannot
    help. Auth (401, 403), a missing bucket (404) and throttling (429) are not the
    data's fault."""
    status = exc.status
    return status is not None and 400 <= status < 500 and status not in (401, 403, 404, 429)


def _chunks(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class InfluxSink:
    """Sink for --format influxdb."""

    def __init__(
        self,
        settings: InfluxSettings,
        spool_dir: Path,
        *,
        policy: RetryPolicy | None = None,
        notify: Notify | None = None,
        create_bucket: bool = False,
        chunk_size: int = CHUNK,
        label: str = "InfluxDB",
    ) -> None:
        policy = policy or RetryPolicy(max_wait_s=30.0)
        self.settings = settings
        self.label = label  # "InfluxDB", or "InfluxDB NAME" for one of several targets
        self.writer = InfluxWriter(settings, timeout_s=policy.timeout_s)
        self.spool = Spool(spool_dir)
        self.stats = InfluxStats()
        self.chunk_size = chunk_size
        # the spool keeps what InfluxDB cannot take, so the wait is the policy's own
        self.outage = Outage(label, policy, notify=notify)
        self._down = False  # once the server failed, later chunks go straight to the spool
        self._buffer: list[str] = []
        self._fatal: str | None = None
        if create_bucket:
            self.writer.ensure_bucket()

    def _deliver(self, what: str, send: Callable[[], None]) -> None:
        """Send under the retry policy; raise WriteFailed when it must not be retried
        now (a refusal, or the outage outlasted the budget)."""
        failures = 0
        while True:
            try:
                send()
            except WriteFailed as exc:
                if exc.status is not None and exc.status not in RETRYABLE:
                    raise
                failures += 1
                why = f"HTTP {exc.status}" if exc.status else exc.message
                try:
                    self.outage.failed(failures, what, why)
                except OutageStop:
                    raise exc from None
                continue
            self.outage.succeeded()
            return

    def _write(self, lines: list[str]) -> None:
        """Write lines; a 413 (a body too large for the server, or for a proxy in front
        of it: nginx takes 1 MB by default) is no fault of the data: the lines go again
        in halves, and later chunks start at the size that passed."""
        try:
            self._deliver("a write", partial(self.writer.write, lines))
        except WriteFailed as exc:
            if exc.status != 413 or len(lines) < 2:
                raise
            half = len(lines) // 2
            self.chunk_size = min(self.chunk_size, half)
            self._write(lines[:half])
            self._write(lines[half:])

    def replay(self) -> int:
        """Deliver spooled files, oldest first; returns the number of points delivered."""
        delivered = 0
        for path in self.spool.pending():
            retractions = path.suffix == ".del"
            try:
                lines = self.spool.read(path)
                keys = [PointKey.from_json(line) for line in lines] if retractions else []
            except (OSError, ValueError, TypeError) as exc:
                # a damaged file (not UTF-8, cut off, edited) must not hold back the
                # files after it, nor every gather that delivers the spool first
                self._unreadable(path, exc)
                continue
            try:
                if retractions:
                    for key in keys:
                        self._deliver("a delete", partial(self.writer.delete, key))
                else:
                    self._write(lines)
            except WriteFailed as exc:
                if _rejected(exc):
                    self._set_aside(path, len(lines), exc)
                    continue
                self._down = True
                self._remember(exc)
                break
            path.unlink()
            if not retractions:
                delivered += len(lines)
        else:
            # the whole spool went through: the server is back, write to it again
            self._down = False
        return delivered

    def _unreadable(self, path: Path, exc: Exception) -> None:
        reason = os_reason(exc) if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"
        target = self.spool.reject(path, f"cannot be read: {reason}")
        self.stats.messages.append(
            f"the spool file {path.name} cannot be read ({reason}); set aside as {target}."
        )

    def _set_aside(self, path: Path, count: int, exc: WriteFailed) -> None:
        """A chunk the server refused as data: keep it, with the server's message."""
        self.spool.reject(path, f"HTTP {exc.status}: {exc.message}")
        self.stats.rejected += count
        self.stats.messages.append(
            f"{self.label} rejected {count} points (HTTP {exc.status}): {exc.message}; "
            f"set aside in {self.spool.rejected}."
        )

    def _remember(self, exc: WriteFailed) -> None:
        where = f"HTTP {exc.status}" if exc.status else "unreachable"
        self._fatal = (
            f"{self.label} at {self.settings.url} did not take the points ({where}): {exc.message}"
        )

    def write(self, records: Iterable[Record]) -> None:
        """Buffer lines and send full chunks; close() sends the rest. A point lost from
        the buffer by a hard kill is sent again by the next gather of the window."""
        self._buffer.extend(to_lines(records))
        while len(self._buffer) >= self.chunk_size:
            chunk, self._buffer = self._buffer[: self.chunk_size], self._buffer[self.chunk_size :]
            self._send(chunk)

    def retract(self, keys: Sequence[PointKey]) -> None:
        """Delete points that newer records supersede; what cannot be deleted now is
        spooled and deleted by the next gather or `multivac replay`."""
        left = list(keys)
        while left and not self._down:
            key = left[0]
            try:
                self._deliver("a delete", partial(self.writer.delete, key))
            except WriteFailed as exc:
                self._down = True
                self._remember(exc)
                break
            left.pop(0)
            self.stats.retracted += 1
        if left:
            self.spool.add_retractions(left)
            self.stats.spooled_retractions += len(left)

    def _send(self, lines: list[str]) -> None:
        for chunk in _chunks(lines, self.chunk_size):
            if self._down:
                self.spool.add(chunk)
                self.stats.spooled += len(chunk)
                continue
            try:
                self._write(chunk)
                self.stats.written += len(chunk)
            except WriteFailed as exc:
                path = self.spool.add(chunk)
                if _rejected(exc):
                    self._set_aside(path, len(chunk), exc)
                    continue
                self.stats.spooled += len(chunk)
                self._down = True
                self._remember(exc)

    def flush(self) -> None:
        """Send the buffered lines now (or spool them) instead of at close()."""
        if self._buffer:
            chunk, self._buffer = self._buffer, []
            self._send(chunk)

    def ping(self) -> bool:
        return self.writer.ping()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.writer.close()

    @property
    def failure(self) -> str | None:
        """Why points were spooled or rejected instead of written, for the exit code."""
        if self._fatal:
            return self._fatal
        if self.stats.messages:
            return self.stats.messages[0]
        return None

    def note(self, spool_dir: Path) -> str:
        """What happened to the points, for the gather summary."""
        stats = self.stats
        line = f"{stats.written} points written to {self.label}"
        if stats.spooled:
            line += f", {stats.spooled} spooled to {spool_dir}"
        if stats.rejected:
            line += f", {stats.rejected} rejected"
        if stats.retracted:
            line += f", {stats.retracted} superseded points deleted"
        if stats.spooled_retractions:
            line += f", {stats.spooled_retractions} deletes spooled"
        return line
