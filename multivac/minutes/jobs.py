"""The slice of a job attempt that usage and capacity read.

`UsageJob` holds only what the two reports need (times as POSIX seconds, labels, run
facts, the failure type), so that a store of 100,000 jobs loads without building
full `Job` objects and their steps. `from_model` builds one from the model objects
the rest of multivac passes around; `query.py` builds them straight from SQLite.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from multivac.model import (
    FAILED_CONCLUSIONS,
    TIMEOUT,
    Classification,
    Job,
    Run,
    measurement_for,
)


@dataclass(frozen=True, slots=True)
class UsageJob:
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

    @property
    def label(self) -> str:
        """The runs-on labels as the `runner_label` tag writes them."""
        return ",".join(self.labels)


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
