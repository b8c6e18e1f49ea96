"""The slices of a job attempt that usage and capacity read.

`UsageJob` holds only what the usage report needs (times as POSIX seconds, labels,
run facts, the failure type); `JobTimes` only what capacity needs. Both are typed
NamedTuples rather than frozen dataclasses: they are as immutable, and a store of
100,000 jobs builds 100,000 of them, which a frozen dataclass's `__init__` (one
`object.__setattr__` per field) makes five times slower. `from_model` builds a
`UsageJob` from the model objects the rest of multivac passes around; `query.py`
builds both straight from SQLite.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import NamedTuple, Protocol

from multivac.model import FAILED_CONCLUSIONS, TIMEOUT, Classification, Job, Run, measurement_for


class Timed(Protocol):
    """What capacity reads of a job: its label, runner group and three times."""

    @property
    def label(self) -> str: ...
    @property
    def runner_group(self) -> str: ...
    @property
    def created_s(self) -> float | None: ...
    @property
    def started_s(self) -> float | None: ...
    @property
    def completed_s(self) -> float | None: ...


class JobTimes(NamedTuple):
    """A job's place on its runners' timeline; times are POSIX seconds or None."""

    label: str
    runner_group: str
    created_s: float | None
    started_s: float | None
    completed_s: float | None


class UsageJob(NamedTuple):
    """One completed job attempt; times are POSIX seconds, None when GitHub gave none."""

    job_id: int
    run_id: int
    run_attempt: int
    repository: str
    workflow: str
    job_name: str
    conclusion: str
    #: the job's measurement: successful_jobs, cancelled, a failure type, ...
    failure_type: str
    labels: tuple[str, ...]
    #: the runs-on labels as the `runner_label` tag writes them
    label: str
    runner_group: str
    created_s: float | None
    started_s: float | None
    completed_s: float | None
    #: the time of its record: created_at, else started_at, else the run's creation
    at_s: float

    @property
    def in_progress_s(self) -> float:
        """Seconds on a runner; 0 for a job that never started (or clock skew)."""
        if self.started_s is None or self.completed_s is None:
            return 0.0
        return max(0.0, self.completed_s - self.started_s)

    @property
    def failed(self) -> bool:
        """True for attempts that failed (a timeout counts; a plain cancel does not)."""
        return self.conclusion in FAILED_CONCLUSIONS or self.failure_type == TIMEOUT


def _seconds(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def from_model(run: Run, job: Job, classification: Classification | None = None) -> UsageJob | None:
    """The usage view of a job; None for jobs records leave out (skipped, unfinished)."""
    measurement = measurement_for(job, classification)
    if measurement is None:
        return None
    at = job.created_at or job.started_at or run.created_at
    if at is None:
        return None
    return UsageJob(
        job_id=job.id,
        run_id=run.id,
        run_attempt=job.run_attempt or run.run_attempt,
        repository=run.repository,
        workflow=run.workflow or job.workflow,
        job_name=job.name,
        conclusion=job.conclusion or "",
        failure_type=measurement,
        labels=job.labels,
        label=",".join(job.labels),
        runner_group=job.runner_group,
        created_s=_seconds(job.created_at),
        started_s=_seconds(job.started_at),
        completed_s=_seconds(job.completed_at),
        at_s=at.timestamp(),
    )


@cache
def measurement_of(status: str, conclusion: str | None, classification: str | None) -> str | None:
    """`measurement_for` for a stored row, memoised: it depends on these three only."""
    job = Job(
        id=0,
        run_id=0,
        run_attempt=1,
        name="",
        status=status,
        conclusion=conclusion,
        created_at=None,
        started_at=None,
        completed_at=None,
        labels=(),
        runner_name="",
        html_url="",
    )
    found = None
    if classification is not None:
        found = Classification(classification, "", None, None, "")
    return measurement_for(job, found)
