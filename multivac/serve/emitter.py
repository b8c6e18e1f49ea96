"""The output: one thread owns the sink and writes every record, in arrival order.

Records come from the event loop (jobs that need no log, the `queue` points) and from
the classification worker. They are written in batches: whatever arrived within a
quarter of a second goes out as one write (one InfluxDB request), then the sink is
flushed, so a record reaches the output within about a second without one request per
record. A job's record is written only when its point is new or changed (flaky, newly
classified): the store remembers what each job wrote, so a file output never gets the
same job twice and InfluxDB is not asked to overwrite a point with itself. While
InfluxDB is down, batches go to the spool (as in a gather), and the spool is delivered
again every half minute until it goes through.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

from multivac.config import ServePlan, redact
from multivac.errors import MultivacError
from multivac.model import JOB_SCHEMA, QUEUE_SCHEMA, JobRecord, Record
from multivac.publish import publish
from multivac.serve.metrics import Metrics
from multivac.sinks import build_sink
from multivac.sinks.base import Sink
from multivac.sinks.targets import InfluxTargets
from multivac.store import Store

LINGER_S = 0.25  # how long a batch waits for more records
MAX_BATCH = 5000  # records per write at most
REPLAY_EVERY_S = 30.0  # how often a non-empty spool is tried again


@dataclass
class Ticket:
    """Tells a caller that its records were written (`ok`) or refused by the output."""

    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout) and self.ok


@dataclass
class _Batch:
    records: Sequence[Record]
    ticket: Ticket
    tested: frozenset[int] = frozenset()  # jobs whose test records here are complete


class Emitter:
    """Start with `start()` (raises when the output cannot be opened), `submit()` from
    any thread, `stop()` to write what is queued and close the output."""

    def __init__(self, plan: ServePlan, metrics: Metrics, log: Callable[[str], None]) -> None:
        self.plan = plan
        self.metrics = metrics
        self.log = log
        self._queue: queue.SimpleQueue[_Batch | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="multivac-output", daemon=True)
        self._ready = threading.Event()
        self._startup_error: MultivacError | None = None
        self._sink: Sink | None = None
        self.failure: str | None = None  # the last write error, for /healthz
        self._stopped = False

    # ------------------------------------------------------------------ callers

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            raise self._startup_error

    def submit(self, records: Sequence[Record], *, tested: frozenset[int] = frozenset()) -> Ticket:
        """Queue records for the output; for the jobs in `tested`, the test records
        given are their complete set (test points they wrote before and lack are
        retracted, as in a gather)."""
        ticket = Ticket()
        if self._stopped:
            ticket.done.set()  # too late: the store keeps the jobs for a later gather
        elif records or tested:
            self._queue.put(_Batch(records, ticket, tested))
        else:
            ticket.ok = True
            ticket.done.set()
        return ticket

    def stop(self, timeout: float = 60.0) -> None:
        """Write everything submitted so far, then close the output."""
        if not self._stopped:
            self._stopped = True
            self._queue.put(None)
        self._thread.join(timeout)

    def backlog(self) -> int:
        return self._queue.qsize()

    def reachable(self) -> tuple[bool, str]:
        """Whether the output takes records now, and what it is (for /healthz): every
        InfluxDB target answers its ping."""
        sink = self._sink
        if isinstance(sink, InfluxTargets):
            texts = []
            up = True
            for target in sink.targets:
                answers = target.main.ping()
                up = up and answers
                name = f"InfluxDB {target.settings.name}" if len(sink.targets) > 1 else "InfluxDB"
                texts.append(f"{name} {'answers' if answers else 'does not answer'}")
            spooled = sink.pending()
            if spooled:
                texts.append(f"{spooled} spool files wait for delivery")
            return up, "; ".join(texts)
        if self.failure:
            return False, self.failure
        return sink is not None, str(self.plan.output or "stdout")

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        with ExitStack() as stack:
            try:
                store = stack.enter_context(
                    Store.open(self.plan.state_dir, github=self.plan.github.api_url)
                )
                sink = build_sink(
                    self.plan.output_format,
                    stack=stack,
                    output=self.plan.output,
                    lean=self.plan.lean,
                    influx=self.plan.influx,
                    targets=self.plan.targets,
                    spool_dir=self.plan.state_dir / "spool",
                    create_bucket=self.plan.create_bucket,
                    policy=self.plan.influx_policy,
                    notify=self.log,
                    schemas=(JOB_SCHEMA, QUEUE_SCHEMA),
                )
            except MultivacError as exc:
                self._startup_error = exc
                self._ready.set()
                return
            self._sink = sink
            self._ready.set()
            try:
                self._loop(sink, store)
            finally:
                try:
                    sink.close()
                except (MultivacError, OSError) as exc:
                    self.log(f"error: closing the output: {redact(str(exc))}")

    def _loop(self, sink: Sink, store: Store) -> None:
        last_replay = 0.0
        if isinstance(sink, InfluxTargets):
            last_replay = time.monotonic()
            self._replay(sink)
        while True:
            first = self._queue.get()
            batches = [] if first is None else [first]
            stopping = first is None
            deadline = time.monotonic() + LINGER_S
            count = sum(len(b.records) for b in batches)
            while not stopping and count < MAX_BATCH:
                wait = deadline - time.monotonic()
                try:
                    item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batches.append(item)
                count += len(item.records)
            if stopping:
                # everything submitted before stop() is written too
                with contextlib.suppress(queue.Empty):
                    while (item := self._queue.get_nowait()) is not None:
                        batches.append(item)
            if batches:
                self._write(sink, store, batches)
            if isinstance(sink, InfluxTargets) and time.monotonic() - last_replay > REPLAY_EVERY_S:
                last_replay = time.monotonic()
                if sink.pending():
                    self._replay(sink)
            if stopping:
                return

    def _replay(self, sink: InfluxTargets) -> None:
        try:
            delivered = sink.replay()
        except MultivacError as exc:
            self.log(f"error: delivering the spool: {redact(str(exc))}")
            return
        for name, count in delivered.items():
            if count:
                self.log(f"delivered {count} spooled points to InfluxDB {name}.")

    def _write(self, sink: Sink, store: Store, batches: list[_Batch]) -> None:
        records = [r for b in batches for r in b.records]
        tested = frozenset().union(*(b.tested for b in batches))
        ok = True
        try:
            fresh = _fresh(records, store)
            publish(sink, fresh, store, tested=tested)
            flush = getattr(sink, "flush", None)
            if callable(flush):
                flush()
            self.metrics.records.inc(len(fresh))
            self.failure = None
        except (MultivacError, OSError, ValueError) as exc:
            # the jobs stay in the store: a gather of the window writes them later
            ok = False
            self.failure = redact(f"the output refused {len(records)} records: {exc}")
            self.metrics.sink_errors.inc()
            self.log(f"error: {self.failure}")
        for batch in batches:
            batch.ticket.ok = ok
            batch.ticket.done.set()


def _fresh(records: Sequence[Record], store: Store) -> list[Record]:
    """The records worth writing: every non-job record, and of each job its newest
    record when its point differs from the one it wrote last."""
    latest: dict[int, JobRecord] = {}
    others: list[Record] = []
    for record in records:
        if isinstance(record, JobRecord) and record.job_id:
            latest.pop(record.job_id, None)
            latest[record.job_id] = record
        else:
            others.append(record)
    before = store.emitted(latest)
    jobs = [
        record
        for job_id, record in latest.items()
        if (old := before.get(job_id)) is None or old.key != record.key
    ]
    return [*jobs, *others]
