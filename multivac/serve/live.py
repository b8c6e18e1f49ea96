"""Live state: the jobs queued and running right now, per runner label.

Webhooks arrive out of order and may be delivered twice, so each job moves only
forward (queued, then running, then gone), and a job that finished is remembered for
a while so that a late `queued` or `in_progress` for it changes nothing. Memory holds
only the jobs in flight plus that bounded memory of finished ones.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

from multivac.model import QueueRecord

QUEUED = 0
RUNNING = 1
#: GitHub cancels a job that waited this long for a runner
MAX_QUEUED_S = 24 * 3600.0
#: self-hosted runners run a job at most 5 days; past that the job was lost to us
MAX_RUNNING_S = 5 * 24 * 3600.0
#: finished jobs remembered so that their late events are ignored
FINISHED_MEMORY = 20_000
#: the `queue` measurement: at most one point per label this often
WRITE_EVERY_S = 10.0


@dataclass
class Flight:
    """One job in flight."""

    run_id: int
    label: str
    stage: int  # QUEUED or RUNNING
    queued_at: float  # epoch seconds (the job's created_at)
    started_at: float


@dataclass
class Label:
    queued: dict[int, float] = field(default_factory=dict)  # job id -> queued at
    running: set[int] = field(default_factory=set)
    changed: bool = False
    written_at: float = float("-inf")


@dataclass(frozen=True)
class Snapshot:
    label: str
    queued: int
    running: int
    oldest_queued_s: float


def label_of(labels: tuple[str, ...] | list[str]) -> str:
    """The runs-on labels as one value, as the job records' `runner_label` tag has them."""
    return ",".join(labels)


class LiveState:
    """Jobs in flight by runner label. Used from one thread (the event loop)."""

    def __init__(self) -> None:
        self._jobs: dict[int, Flight] = {}
        self._runs: dict[int, set[int]] = {}
        self._labels: dict[str, Label] = {}
        self._finished: OrderedDict[int, None] = OrderedDict()
        #: jobs held for an environment's reviewers: queued again, they wait from then on
        self._held: OrderedDict[int, None] = OrderedDict()

    # ------------------------------------------------------------------ events

    def queued(
        self, job_id: int, run_id: int, label: str, queued_at: float, now: float | None = None
    ) -> bool:
        """A job waits for a runner; False when that is old news. One approved after it
        was held (`waiting`) waits from `now`, not from its creation."""
        if job_id in self._finished or job_id in self._jobs:
            return False
        if self._held.pop(job_id, 0) is None and now is not None:
            queued_at = max(queued_at, now)
        self._add(job_id, Flight(run_id, label, QUEUED, queued_at, 0.0))
        return True

    def started(
        self, job_id: int, run_id: int, label: str, queued_at: float, started_at: float
    ) -> bool:
        """A runner took the job; False when that is old news."""
        if job_id in self._finished:
            return False
        self._held.pop(job_id, None)
        known = self._jobs.get(job_id)
        if known is not None:
            if known.stage >= RUNNING:
                return False
            self._remove(job_id)
        self._add(job_id, Flight(run_id, label, RUNNING, queued_at, started_at))
        return True

    def waiting(self, job_id: int) -> bool:
        """The job waits for an environment's reviewers, not for a runner: out of the
        queue until it is queued again (a running or finished job is not moved back)."""
        known = self._jobs.get(job_id)
        if job_id in self._finished or (known is not None and known.stage != QUEUED):
            return False
        self._held[job_id] = None
        while len(self._held) > FINISHED_MEMORY:
            self._held.popitem(last=False)
        return self._remove(job_id)

    def finished(self, job_id: int) -> bool:
        """The job completed (or was cancelled before it started)."""
        self._held.pop(job_id, None)
        self._finished[job_id] = None
        self._finished.move_to_end(job_id)
        while len(self._finished) > FINISHED_MEMORY:
            self._finished.popitem(last=False)
        return self._remove(job_id)

    def in_flight(self, run_id: int) -> bool:
        """Whether a job of this run was seen queued or running and not yet finished."""
        return bool(self._runs.get(run_id))

    def _add(self, job_id: int, flight: Flight) -> None:
        self._jobs[job_id] = flight
        self._runs.setdefault(flight.run_id, set()).add(job_id)
        label = self._labels.setdefault(flight.label, Label())
        if flight.stage == QUEUED:
            label.queued[job_id] = flight.queued_at
        else:
            label.running.add(job_id)
        label.changed = True

    def _remove(self, job_id: int) -> bool:
        flight = self._jobs.pop(job_id, None)
        if flight is None:
            return False
        jobs = self._runs.get(flight.run_id)
        if jobs is not None:
            jobs.discard(job_id)
            if not jobs:
                del self._runs[flight.run_id]
        label = self._labels[flight.label]
        label.queued.pop(job_id, None)
        label.running.discard(job_id)
        label.changed = True
        return True

    # ------------------------------------------------------------------ reading

    def snapshot(self, now: float) -> list[Snapshot]:
        return [self._snap(name, label, now) for name, label in sorted(self._labels.items())]

    @staticmethod
    def _snap(name: str, label: Label, now: float) -> Snapshot:
        oldest = min(label.queued.values(), default=now)
        return Snapshot(name, len(label.queued), len(label.running), max(0.0, now - oldest))

    def due(self, now: float, every_s: float = WRITE_EVERY_S) -> Iterator[QueueRecord]:
        """`queue` points of the labels that changed since their last point, at most one
        per label every `every_s`; a label with nothing left in flight is written once
        more (zeros) and then forgotten."""
        time_ns = int(now * 1_000_000_000)
        for name in list(self._labels):
            label = self._labels[name]
            if not label.changed or now - label.written_at < every_s:
                continue
            snap = self._snap(name, label, now)
            label.changed = False
            label.written_at = now
            yield QueueRecord.of(name, snap.queued, snap.running, snap.oldest_queued_s, time_ns)
            if not label.queued and not label.running:
                del self._labels[name]

    def expire(self, now: float) -> int:
        """Forget jobs in flight for longer than GitHub lets them be (their completion
        was missed, e.g. while serve was down); returns how many."""
        stale = [job_id for job_id, flight in self._jobs.items() if _stale(flight, now)]
        for job_id in stale:
            self._remove(job_id)
        return len(stale)

    # ------------------------------------------------------------------ restart

    def dumps(self) -> str:
        """The jobs in flight, kept in the store across a restart."""
        return json.dumps(
            [
                [job_id, f.run_id, f.label, f.stage, f.queued_at, f.started_at]
                for job_id, f in self._jobs.items()
            ]
        )

    def loads(self, text: str, now: float) -> int:
        """Take back the jobs in flight kept by `dumps` (a bad value is ignored)."""
        try:
            rows = json.loads(text)
            flights = [
                (int(row[0]), Flight(int(row[1]), str(row[2]), int(row[3]), *map(float, row[4:6])))
                for row in rows
            ]
        except (ValueError, TypeError, IndexError):
            return 0
        for job_id, flight in flights:
            if not _stale(flight, now):
                self._add(job_id, flight)
        return len(self._jobs)

    def __len__(self) -> int:
        return len(self._jobs)


def _stale(flight: Flight, now: float) -> bool:
    if flight.stage == QUEUED:
        return now - flight.queued_at > MAX_QUEUED_S
    return now - flight.started_at > MAX_RUNNING_S
