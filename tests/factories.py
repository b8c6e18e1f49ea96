"""Model objects for tests, with realistic defaults: name only what a test is about.

`MemorySource` is a `multivac.gather.Source` held in memory, for unit tests of the
gatherer that need no HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from multivac.errors import GitHubError, LogPending
from multivac.model import Job, Run, Step

T = TypeVar("T")
BASE = datetime(2026, 10, 1, 6, tzinfo=UTC)


def make_run(id: int = 1, **overrides: Any) -> Run:
    created = overrides.pop("created_at", BASE)
    values: dict[str, Any] = {
        "id": id,
        "repository": "octo/app",
        "workflow": "CI",
        "workflow_path": ".github/workflows/ci.yml",
        "run_attempt": 1,
        "branch": "main",
        "commit_sha": "abc",
        "event": "push",
        "status": "completed",
        "conclusion": "success",
        "created_at": created,
        "updated_at": created,
        "html_url": f"https://github.com/octo/app/actions/runs/{id}",
    }
    values.update(overrides)
    return Run(**values)


def make_job(
    id: int = 7,
    run_id: int = 1,
    conclusion: str | None = "success",
    *,
    queued: float = 10.0,
    ran: float = 60.0,
    **overrides: Any,
) -> Job:
    """A completed job created at BASE (or `created_at`) that waited `queued` seconds and
    ran `ran` seconds; a failed job's single step failed."""
    created = overrides.pop("created_at", BASE)
    started = created + timedelta(seconds=queued)
    step_conclusion = conclusion if conclusion not in ("skipped", None) else None
    values: dict[str, Any] = {
        "id": id,
        "run_id": run_id,
        "run_attempt": 1,
        "name": "test",
        "status": "completed",
        "conclusion": conclusion,
        "created_at": created,
        "started_at": started,
        "completed_at": started + timedelta(seconds=ran),
        "labels": ("ubuntu-latest",),
        "runner_name": "GitHub Actions 2",
        "html_url": f"https://github.com/octo/app/actions/runs/{run_id}/job/{id}",
        "steps": (Step(1, "Run tests", step_conclusion),),
    }
    values.update(overrides)
    return Job(**values)


@dataclass
class MemorySource:
    """Runs, jobs, logs and annotations from memory. A log given as an exception is
    raised when read (LogPending for a transient failure, GitHubError for a refusal)."""

    runs_by_repo: dict[str, list[Run]] = field(default_factory=dict)
    jobs_by_run: dict[int, list[Job]] = field(default_factory=dict)
    logs: dict[int, bytes | Exception] = field(default_factory=dict)
    notes: dict[int, list[str]] = field(default_factory=dict)
    log_reads: list[int] = field(default_factory=list)
    #: run id -> its artifacts: (id, name, zip bytes, created_at), None bytes = expired
    artifact_files: dict[int, list[tuple[int, str, bytes | None, datetime | None]]] = field(
        default_factory=dict
    )
    artifact_reads: list[int] = field(default_factory=list)

    def add(self, run: Run, *jobs: Job, logs: dict[int, bytes | Exception] | None = None) -> None:
        self.runs_by_repo.setdefault(run.repository, []).append(run)
        self.jobs_by_run[run.id] = list(jobs)
        self.logs.update(logs or {})

    def workflow_ids(self, repo: str, wanted: list[str]) -> list[tuple[int, str]]:
        raise GitHubError("MemorySource has no workflows")

    def runs(
        self,
        repo: str,
        since: datetime | None,
        until: datetime,
        *,
        branches: list[str] | None = None,
        workflows: list[int] | None = None,
        event: str | None = None,
        latest: int | None = None,
    ) -> Iterator[Run]:
        yield from self.runs_by_repo.get(repo, [])

    def jobs(self, repo: str, run_id: int) -> list[Job] | None:
        return self.jobs_by_run.get(run_id)

    def read_log(self, repo: str, job_id: int, consume: Callable[[Iterator[bytes]], T]) -> T | None:
        self.log_reads.append(job_id)
        log = self.logs.get(job_id)
        if log is None:
            return None
        if isinstance(log, Exception):
            raise log
        return consume(iter([log]))

    def annotations(self, repo: str, job_id: int) -> list[str]:
        return self.notes.get(job_id, [])

    def artifacts(self, repo: str, run_id: int) -> list[Any]:
        from multivac.testresults.artifacts import ArtifactRef

        return [
            ArtifactRef(aid, name, len(data or b""), data is None, "", created)
            for aid, name, data, created in self.artifact_files.get(run_id, [])
        ]

    def read_artifact(
        self, repo: str, artifact_id: int, consume: Callable[[Iterator[bytes]], T]
    ) -> T | None:
        self.artifact_reads.append(artifact_id)
        for files in self.artifact_files.values():
            for aid, _name, data, _created in files:
                if aid == artifact_id:
                    return None if data is None else consume(iter([data]))
        return None


__all__ = ["BASE", "LogPending", "MemorySource", "make_job", "make_run"]
