"""`multivac capacity`: how many jobs waited for and ran on each runner label, per minute.

From the stored job times it rebuilds two step functions per label (or runner
group): jobs waiting (`created_at` → `started_at`) and jobs running (`started_at` →
`completed_at`). A minute's figure is the highest count at any instant inside it, so
the busiest minute's `running` is the true peak, and a job that ran for 5 seconds
still shows in its minute. Queued and running are each their own maximum (they may
peak at different instants of the minute).

Intervals are half-open: a job that completes at the instant another starts does not
overlap it. A job that never started (cancelled while queued) waited until its
`completed_at`. GitHub's times are whole seconds, so a job whose start and completion
share a second still held a runner: it counts as running for that second.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import NamedTuple

from multivac.minutes.jobs import Timed


class CapacityBy(StrEnum):
    LABEL = "label"
    RUNNER_GROUP = "runner_group"


class CapacityFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    #: the `runner_load` points, to InfluxDB or as line protocol on stdout
    INFLUXDB = "influxdb"
    LINE_PROTOCOL = "line-protocol"


#: the name of the group jobs without a runner group (never assigned a runner) fall in
NO_GROUP = "(none)"


class RunnerLoad(NamedTuple):
    """One minute of one label with any activity: the `runner_load` point.

    A NamedTuple, immutable like a frozen dataclass: 100,000 jobs make a quarter of a
    million of these, which a frozen dataclass would build three times slower.
    """

    label: str
    #: POSIX seconds of the minute's start
    minute: int
    queued: int
    running: int

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.minute, UTC)


@dataclass(frozen=True, slots=True)
class Capacity:
    """Per label: the keys of `capacity --json`."""

    label: str
    max_running: int
    p95_running: int
    max_queued: int
    minutes_with_queue: int
    #: the first minute the queue was longest; None when no job ever waited
    busiest: datetime | None

    def as_dict(self) -> dict[str, object]:
        return {
            "label": self.label,
            "max_running": self.max_running,
            "p95_running": self.p95_running,
            "max_queued": self.max_queued,
            "minutes_with_queue": self.minutes_with_queue,
            "busiest": _iso(self.busiest),
        }


@dataclass(frozen=True)
class CapacityReport:
    labels: tuple[Capacity, ...]
    #: jobs left out because GitHub gave too few of their times to place them
    missing_times: int


# Change points are ints, `second << 2 | kind`, so one sort of plain ints orders them
# (sorting tuples costs several times more). All changes at one second are applied
# before the level is read, so their order within the second does not matter.
_RUN_END, _QUEUE_END, _QUEUE_START, _RUN_START = 0, 1, 2, 3


def _events(job: Timed, out: list[int]) -> bool:
    """Append the job's change points; False when its times cannot place it at all."""
    created, started, completed = job.created_s, job.started_s, job.completed_s
    if started is None:
        # never got a runner: it waited from creation until it was cancelled
        if created is None or completed is None:
            return False
        if completed > created:
            out += (int(created) << 2 | _QUEUE_START, int(completed) << 2 | _QUEUE_END)
        return True
    begin = int(started)
    if created is not None and begin > created:
        out += (int(created) << 2 | _QUEUE_START, begin << 2 | _QUEUE_END)
    elif completed is None:
        return False
    if completed is not None:
        # whole seconds: a job done within its starting second still held a runner
        end = max(int(completed), begin + 1)
        out += (begin << 2 | _RUN_START, end << 2 | _RUN_END)
    return True


_DELTA_QUEUED = (0, -1, 1, 0)
_DELTA_RUNNING = (-1, 0, 0, 1)


def _per_minute(events: list[int], low: int | None, high: int | None) -> dict[int, Sequence[int]]:
    """Minute → (max queued, max running) from one label's change points.

    Between two change points the level is constant, so only a span's first minute
    can hold an earlier span's figure; its inner and last minutes are new (the inner
    ones share one tuple, since nothing will raise them).
    """
    minutes: dict[int, Sequence[int]] = {}
    queued = running = 0
    previous = 0
    for event in sorted(events):
        moment = event >> 2
        if moment != previous:
            if queued or running:
                # the level (queued, running) held over [previous, moment)
                start = previous if low is None or previous > low else low
                end = moment if high is None or moment < high else high
                if end > start:
                    first, last = start // 60, (end - 1) // 60
                    # a first minute is never an earlier span's inner one: a list
                    cell = minutes.get(first)
                    if cell is None:
                        minutes[first] = [queued, running]
                    else:
                        if queued > cell[0]:
                            cell[0] = queued  # type: ignore[index]
                        if running > cell[1]:
                            cell[1] = running  # type: ignore[index]
                    if last > first:
                        if last > first + 1:
                            minutes.update(dict.fromkeys(range(first + 1, last), (queued, running)))
                        minutes[last] = [queued, running]
            previous = moment
        kind = event & 3
        queued += _DELTA_QUEUED[kind]
        running += _DELTA_RUNNING[kind]
    return minutes


@dataclass(frozen=True)
class MinuteLoad:
    """Per label, every minute with a job waiting or running: [max queued, max running]."""

    minutes: Mapping[str, Mapping[int, Sequence[int]]]
    #: jobs left out because GitHub gave too few of their times to place them
    missing_times: int

    def rows(self) -> Iterator[RunnerLoad]:
        """The `runner_load` points, in label then time order."""
        for label in sorted(self.minutes):
            table = self.minutes[label]
            for minute in sorted(table):
                queued, running = table[minute]
                yield RunnerLoad(label, minute * 60, queued, running)

    def summary(self, labels: Iterable[str] = ()) -> CapacityReport:
        """Per label: peak and 95th percentile running, peak queue, minutes with a queue.

        `labels` names labels to report even with no job (all figures 0).
        """
        names = sorted(set(self.minutes) | set(labels))
        return CapacityReport(
            tuple(_summary(name, self.minutes.get(name, {})) for name in names),
            self.missing_times,
        )


def minute_load(
    jobs: Iterable[Timed],
    *,
    by: CapacityBy = CapacityBy.LABEL,
    since: datetime | None = None,
    until: datetime | None = None,
) -> MinuteLoad:
    """Rebuild the per-minute load of each label (or runner group) from job times.

    With `since`/`until`, only minutes inside [since, until) count; a job that was
    queued before the window and still waiting or running in it counts there. A
    label whose jobs all lack times is kept, with no minutes.
    """
    per_key: dict[str, list[int]] = {}
    missing = 0
    grouped = by is CapacityBy.RUNNER_GROUP
    for job in jobs:
        key = (job.runner_group or NO_GROUP) if grouped else job.label
        events = per_key.get(key)
        if events is None:
            events = per_key[key] = []
        if not _events(job, events):
            missing += 1
    low = math.floor(since.timestamp()) if since is not None else None
    high = math.ceil(until.timestamp()) if until is not None else None
    return MinuteLoad(
        {key: _per_minute(events, low, high) for key, events in per_key.items()}, missing
    )


def runner_load(
    jobs: Iterable[Timed],
    *,
    by: CapacityBy = CapacityBy.LABEL,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[RunnerLoad]:
    """Every minute with a job waiting or running, per label, in label then time order."""
    return minute_load(jobs, by=by, since=since, until=until).rows()


def capacity(
    jobs: Iterable[Timed],
    *,
    by: CapacityBy = CapacityBy.LABEL,
    since: datetime | None = None,
    until: datetime | None = None,
    labels: Iterable[str] = (),
) -> CapacityReport:
    """Per label: peak and 95th percentile running, peak queue, minutes with a queue.

    `p95_running` is the nearest-rank 95th percentile over the minutes with any
    activity: idle nights and weekends would otherwise hide what busy hours need.
    """
    return minute_load(jobs, by=by, since=since, until=until).summary(labels)


def _summary(label: str, minutes: Mapping[int, Sequence[int]]) -> Capacity:
    if not minutes:
        return Capacity(label, 0, 0, 0, 0, None)
    running = sorted(cell[1] for cell in minutes.values())
    rank = math.ceil(0.95 * len(running))
    max_queued = 0
    busiest: int | None = None
    with_queue = 0
    for minute in sorted(minutes):
        queued = minutes[minute][0]
        if queued:
            with_queue += 1
        if queued > max_queued:
            max_queued, busiest = queued, minute
    return Capacity(
        label=label,
        max_running=running[-1],
        p95_running=running[rank - 1],
        max_queued=max_queued,
        minutes_with_queue=with_queue,
        busiest=datetime.fromtimestamp(busiest * 60, UTC) if busiest is not None else None,
    )


# ---------------------------------------------------------------------------- output


def _iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else None


def render_json(report: CapacityReport) -> str:
    """`capacity --json`: an array of objects, one per label."""
    return json.dumps([row.as_dict() for row in report.labels], indent=2) + "\n"


def render_table(report: CapacityReport, *, by: CapacityBy = CapacityBy.LABEL) -> str:
    header = [str(by), "max running", "p95 running", "max queued", "min with queue", "busiest"]
    body = [
        [
            row.label or "-",
            str(row.max_running),
            str(row.p95_running),
            str(row.max_queued),
            str(row.minutes_with_queue),
            _iso(row.busiest) or "-",
        ]
        for row in report.labels
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = []
    for line in [header, *body]:
        cells = [
            cell.ljust(width) if i in (0, 5) else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"
