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
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from multivac.minutes.jobs import UsageJob


class CapacityBy(StrEnum):
    LABEL = "label"
    RUNNER_GROUP = "runner_group"


#: the name of the group jobs without a runner group (never assigned a runner) fall in
NO_GROUP = "(none)"


@dataclass(frozen=True, slots=True)
class RunnerLoad:
    """One minute of one label with any activity: the `runner_load` point."""

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


def _key(job: UsageJob, by: CapacityBy) -> str:
    if by is CapacityBy.RUNNER_GROUP:
        return job.runner_group or NO_GROUP
    return job.label


def _intervals(
    job: UsageJob,
) -> tuple[tuple[float, float] | None, tuple[float, float] | None] | None:
    """(queued, running) half-open intervals of a job, None where it had none.

    None overall when the job cannot be placed at all (no usable times).
    """
    created, started, completed = job.created_s, job.started_s, job.completed_s
    queued = running = None
    if started is None:
        # never got a runner: it waited from creation until it was cancelled
        if created is None or completed is None:
            return None
        if completed > created:
            queued = (created, completed)
        return queued, None
    if created is not None and started > created:
        queued = (created, started)
    if completed is None:
        return (queued, None) if queued else None
    running = (started, max(completed, started + 1))
    return queued, running


def _per_minute(
    events: dict[float, list[int]],
    since: float | None,
    until: float | None,
) -> dict[int, list[int]]:
    """Minute → [max queued, max running] from the step functions' change points."""
    minutes: dict[int, list[int]] = {}
    queued = running = 0
    previous: float | None = None
    for moment in sorted(events):
        if previous is not None and (queued or running):
            start, end = previous, moment
            if since is not None:
                start = max(start, since)
            if until is not None:
                end = min(end, until)
            if end > start:
                for minute in range(int(start // 60), math.ceil(end / 60)):
                    cell = minutes.get(minute)
                    if cell is None:
                        minutes[minute] = [queued, running]
                    else:
                        if queued > cell[0]:
                            cell[0] = queued
                        if running > cell[1]:
                            cell[1] = running
        delta = events[moment]
        queued += delta[0]
        running += delta[1]
        previous = moment
    return minutes


def _build(
    jobs: Iterable[UsageJob],
    by: CapacityBy,
    since: datetime | None,
    until: datetime | None,
) -> tuple[dict[str, dict[int, list[int]]], set[str], int]:
    events: dict[str, dict[float, list[int]]] = defaultdict(dict)
    seen: set[str] = set()
    missing = 0
    for job in jobs:
        key = _key(job, by)
        seen.add(key)
        placed = _intervals(job)
        if placed is None:
            missing += 1
            continue
        table = events[key]
        for index, interval in enumerate(placed):
            if interval is None:
                continue
            start, end = interval
            for moment, step in ((start, 1), (end, -1)):
                delta = table.get(moment)
                if delta is None:
                    delta = table[moment] = [0, 0]
                delta[index] += step
    low = since.timestamp() if since is not None else None
    high = until.timestamp() if until is not None else None
    per_label = {key: _per_minute(table, low, high) for key, table in events.items()}
    return per_label, seen, missing


def runner_load(
    jobs: Iterable[UsageJob],
    *,
    by: CapacityBy = CapacityBy.LABEL,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[RunnerLoad]:
    """Every minute with a job waiting or running, per label, in label then time order.

    With `since`/`until`, only minutes inside [since, until) are reported; jobs that
    started before the window and were still waiting or running in it count there.
    """
    per_label, _seen, _missing = _build(jobs, by, since, until)
    for label in sorted(per_label):
        minutes = per_label[label]
        for minute in sorted(minutes):
            queued, running = minutes[minute]
            yield RunnerLoad(label, minute * 60, queued, running)


def capacity(
    jobs: Iterable[UsageJob],
    *,
    by: CapacityBy = CapacityBy.LABEL,
    since: datetime | None = None,
    until: datetime | None = None,
    labels: Iterable[str] = (),
) -> CapacityReport:
    """Per label: peak and 95th percentile running, peak queue, minutes with a queue.

    `labels` names labels to report even with no job (all figures 0). `p95_running`
    is the nearest-rank 95th percentile over the minutes with any activity: idle
    nights and weekends would otherwise hide how many runners busy hours need.
    """
    per_label, seen, missing = _build(jobs, by, since, until)
    names = sorted(seen | set(per_label) | set(labels))
    return CapacityReport(tuple(_summary(name, per_label.get(name, {})) for name in names), missing)


def _summary(label: str, minutes: dict[int, list[int]]) -> Capacity:
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
