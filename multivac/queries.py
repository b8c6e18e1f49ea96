"""Queries over the local store, defined once for the commands and the HTML report."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from multivac.model import NOT_FAILURES, Job, flaky_job_ids, measurement_for
from multivac.store import Store, StoredJob


@dataclass(frozen=True)
class Outcome:
    """A stored job with its measurement and flakiness worked out."""

    stored: StoredJob
    measurement: str
    flaky: bool

    @property
    def failed(self) -> bool:
        return self.measurement not in NOT_FAILURES


def outcomes(
    store: Store, repositories: Iterable[str], since: datetime | None, until: datetime | None
) -> Iterator[Outcome]:
    """Every stored job attempt in the window that a gather would emit, newest run first."""
    by_run: dict[int, list[StoredJob]] = defaultdict(list)
    order: list[int] = []
    for item in store.stored_jobs(repositories, since, until):
        if item.run.id not in by_run:
            order.append(item.run.id)
        by_run[item.run.id].append(item)
    for run_id in order:
        items = by_run[run_id]
        jobs: list[Job] = [item.job for item in items]
        flaky = flaky_job_ids(jobs)
        for item in items:
            measurement = measurement_for(item.job, item.classification)
            if measurement is None:
                continue
            yield Outcome(item, measurement, item.job.id in flaky)


@dataclass(frozen=True)
class TypeCount:
    type: str
    jobs: int
    flaky: int


def failure_stats(items: Iterable[Outcome]) -> list[TypeCount]:
    """Failed jobs per failure type, largest first (ties by name)."""
    counts: Counter[str] = Counter()
    flaky: Counter[str] = Counter()
    for item in items:
        if not item.failed:
            continue
        counts[item.measurement] += 1
        if item.flaky:
            flaky[item.measurement] += 1
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [TypeCount(name, count, flaky[name]) for name, count in ordered]


def failures_of(items: Iterable[Outcome], failure_type: str) -> list[Outcome]:
    return [item for item in items if item.measurement == failure_type]
