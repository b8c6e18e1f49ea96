"""A local GitHub-compatible REST server for tests (standard library only).

Tests drive PyGithub (or plain ``requests``) over real HTTP against it::

    with FakeGitHub() as server:
        repo = server.add_repo("octo/demo", org="octo")
        wf = repo.add_workflow("CI", ".github/workflows/ci.yml")
        run = repo.add_run(wf, created_at=datetime(2026, 10, 1, 12, tzinfo=UTC))
        run.add_job("build", conclusion="failure", log=b"...")
        gh = Github(base_url=server.url, per_page=100, retry=None)

It serves repositories, workflows, workflow runs (with GitHub's filters and
the 1,000-result cap of filtered listings), jobs (``filter=latest|all`` and
per attempt, jobs carried into later attempts), job logs (302 to a signed URL
outside the API prefix), run artifacts (listed, and their zip archives through
the same kind of signed URL; 410 once expired), check-run annotations and
``/rate_limit``, with
GitHub-style ``Link`` pagination, rate-limit headers and budget, ETags / 304,
token checks and injectable faults.  ``python tests/ghserver.py --demo``
serves a small demo repository ``octo/demo``.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import math
import random
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit

try:
    import pytest
except ImportError:  # pragma: no cover - the module also runs as a script
    pytest = None  # type: ignore[assignment]

__all__ = [
    "Artifact",
    "FakeGitHub",
    "Fault",
    "Faults",
    "Job",
    "RateLimit",
    "RecordedRequest",
    "Repo",
    "Run",
    "Workflow",
    "build_demo",
    "ghserver",
    "iso",
    "make_log",
]

DOCS = "https://docs.github.com/rest"
RATE_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
REPO_ID_BASE = 700_000_000
WORKFLOW_ID_BASE = 100_000_000
RUN_ID_BASE = 10_000_000_000
JOB_ID_BASE = 30_000_000_000
CHECK_SUITE_ID_BASE = 20_000_000_000
RUNNER_ID_BASE = 1_000
ARTIFACT_ID_BASE = 4_000_000_000
SEARCH_CAP = 1000
RUN_STATUSES = frozenset({"completed", "in_progress", "queued", "requested", "waiting", "pending"})
# Parameters after which GitHub serves only the first 1,000 runs (docs).
CAPPED_FILTERS = ("actor", "branch", "check_suite_id", "created", "event", "head_sha", "status")
SECONDARY_MSG = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)
_STATUS_MESSAGES = {
    400: "Bad Request",
    401: "Bad credentials",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    410: "Gone",
    422: "Validation Failed",
    500: "Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CHUNK = 64 * 1024

LogSource = bytes | str | Callable[[], Iterable[bytes]] | Iterable[bytes] | None


class _Auto:
    """Sentinel: "not given, derive a realistic value" (``None`` means null)."""

    def __repr__(self) -> str:
        return "AUTO"


AUTO: Any = _Auto()


# --------------------------------------------------------------------------- time


def utc(dt: datetime) -> datetime:
    """Aware UTC datetime with whole seconds (naive input is taken as UTC)."""
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return dt.replace(microsecond=0)


def iso(dt: datetime | None) -> str | None:
    """GitHub's rendering: ``2026-10-01T12:00:00Z``."""
    if dt is None:
        return None
    if dt.tzinfo is not UTC or dt.microsecond:
        dt = utc(dt)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}Z"
    )


def _opt_utc(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def _parse_point(text: str) -> tuple[datetime, bool]:
    """Parse ``YYYY-MM-DD`` or an ISO date-time; returns (instant, is_date)."""
    s = text.strip().replace(" ", "+")  # an unescaped "+00:00" arrives as " 00:00"
    if _DATE_RE.match(s):
        return datetime.strptime(s, "%Y-%m-%d").replace(tzinfo=UTC), True
    dt = datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith("Z") else s)
    return (dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)), False


Bound = tuple[float | None, bool, float | None, bool]  # lo, lo_incl, hi, hi_incl


def parse_created(expr: str) -> Bound:
    """GitHub search syntax for dates -> (lo, lo_inclusive, hi, hi_inclusive).

    ``A..B`` (inclusive; ``*`` = open), ``>=A``, ``>A``, ``<=A``, ``<A``, ``A``.
    A date-only bound covers its whole day.  Raises ``ValueError``.
    """
    e = expr.strip()
    day = 86400.0

    def start(p: str) -> float:
        return _parse_point(p)[0].timestamp()

    def end(p: str) -> tuple[float, bool]:  # upper bound covering p
        dt, is_date = _parse_point(p)
        return (dt.timestamp() + day, False) if is_date else (dt.timestamp(), True)

    if ".." in e:
        a, b = (x.strip() for x in e.split("..", 1))
        lo = None if a == "*" else start(a)
        hi, hi_incl = (None, False) if b == "*" else end(b)
        return lo, True, hi, hi_incl
    if e.startswith(">="):
        return start(e[2:]), True, None, False
    if e.startswith("<="):
        hi, hi_incl = end(e[2:])
        return None, False, hi, hi_incl
    if e.startswith(">"):
        dt, is_date = _parse_point(e[1:])
        if is_date:
            return dt.timestamp() + day, True, None, False
        return dt.timestamp(), False, None, False
    if e.startswith("<"):
        return None, False, start(e[1:]), False
    dt, is_date = _parse_point(e)
    if is_date:
        return dt.timestamp(), True, dt.timestamp() + day, False
    return dt.timestamp(), True, dt.timestamp(), True


# --------------------------------------------------------------------------- logs


def _log_ts(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0Z"


def make_log(
    started_at: datetime,
    steps: Sequence[tuple[str, str | None] | tuple[str, str | None, Sequence[str]]],
    *,
    runner_name: str = "GitHub Actions 2",
    bom: bool = True,
    crlf: bool = False,
    step_seconds: float = 10.0,
) -> bytes:
    """A job log shaped like GitHub's: timestamped lines, ``##[group]Run …``
    per step, ``##[error]`` on failures, ending with ``Cleaning up orphan
    processes``.  A step is ``(name, conclusion)`` or ``(name, conclusion,
    extra_lines)``; extra lines may contain ``##[error]`` etc."""
    t = started_at if started_at.tzinfo else started_at.replace(tzinfo=UTC)
    out: list[str] = []

    def line(text: str, dt: datetime | None = None) -> None:
        out.append(f"{_log_ts(dt or t)} {text}")

    for name, conclusion, *rest in steps:
        extra = list(rest[0]) if rest else []
        if name == "Set up job":
            line("Current runner version: '2.329.0'")
            line(f"Runner name: '{runner_name}'")
            line("##[group]Operating System")
            line("Ubuntu")
            line("24.04.3")
            line("LTS")
            line("##[endgroup]")
            line("Prepare workflow directory")
            line("Complete job name: build")
        elif name == "Complete job":
            line("Cleaning up orphan processes")
            continue
        else:
            cmd = name[4:] if name.startswith("Run ") else name
            line(f"##[group]Run {cmd}")
            line(cmd)
            line("shell: /usr/bin/bash -e {0}")
            line("##[endgroup]")
        for i, text in enumerate(extra):
            line(text, t + timedelta(milliseconds=10 * (i + 1)))
        if conclusion == "failure" and not any("##[error]" in x for x in extra):
            line("##[error]Process completed with exit code 1.")
        elif conclusion == "cancelled" and not any("##[error]" in x for x in extra):
            line("##[error]The operation was canceled.")
        t = t + timedelta(seconds=step_seconds, microseconds=123_456)
    if not out or not out[-1].endswith("Cleaning up orphan processes"):
        line("Post job cleanup.")
        line("Cleaning up orphan processes")
    text = ("\r\n" if crlf else "\n").join(out) + ("\r\n" if crlf else "\n")
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


# --------------------------------------------------------------------------- model


def _user(login: str) -> dict[str, Any]:
    uid = int(hashlib.md5(login.encode()).hexdigest()[:7], 16)
    return {
        "login": login,
        "id": uid,
        "node_id": f"U_{uid}",
        "type": "Bot" if login.endswith("[bot]") else "User",
        "site_admin": False,
        "html_url": f"https://github.com/{login}",
    }


class Workflow:
    def __init__(self, repo: Repo, wid: int, name: str, path: str, state: str) -> None:
        self.repo = repo
        self.id = wid
        self.name = name
        self.path = path
        self.state = state
        self.created_at = datetime(2024, 1, 1, tzinfo=UTC)
        self.updated_at = datetime(2024, 1, 2, tzinfo=UTC)
        self.run_count = 0

    @property
    def file_name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def payload(self, base: str) -> dict[str, Any]:
        full = self.repo.full_name
        return {
            "id": self.id,
            "node_id": f"W_{self.id}",
            "name": self.name,
            "path": self.path,
            "state": self.state,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "url": f"{base}/repos/{full}/actions/workflows/{self.id}",
            "html_url": f"https://github.com/{full}/blob/main/{self.path}",
            "badge_url": f"https://github.com/{full}/workflows/{self.name}/badge.svg",
        }


class Job:
    """A job (= check run).  Attributes may be changed directly by tests."""

    def __init__(self, run: Run, jid: int, name: str, attempt: int) -> None:
        self.run = run
        self.id = jid
        self.name = name
        self.attempt = attempt
        self.status = "completed"
        self.conclusion: str | None = "success"
        self.created_at: datetime | None = None
        self.started_at: datetime | None = None
        self.completed_at: datetime | None = None
        self.labels: list[str] = ["ubuntu-latest"]
        self.runner_id: int | None = None
        self.runner_name: str | None = None
        self.runner_group_id: int | None = None
        self.runner_group_name: str | None = None
        self.steps: list[dict[str, Any]] | None = []
        self.log: LogSource = None
        self.log_size: int | None = None
        self.log_expired = False
        self.annotations: list[dict[str, Any]] = []
        self.head_sha: str | None = None

    def payload(self, base: str) -> dict[str, Any]:
        run = self.run
        full = run.repo.full_name
        url = f"{base}/repos/{full}/actions/jobs/{self.id}"
        return {
            "id": self.id,
            "run_id": run.id,
            "workflow_name": run.workflow.name,
            "head_branch": run.branch,
            "run_url": f"{base}/repos/{full}/actions/runs/{run.id}",
            "run_attempt": self.attempt,
            "node_id": f"CR_{self.id}",
            "head_sha": self.head_sha or run.head_sha,
            "url": url,
            "html_url": f"https://github.com/{full}/actions/runs/{run.id}/job/{self.id}",
            "status": self.status,
            "conclusion": self.conclusion,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "completed_at": iso(self.completed_at),
            "name": self.name,
            # None: a payload with `"steps": null`
            "steps": None
            if self.steps is None
            else [
                {
                    "name": s["name"],
                    "status": s["status"],
                    "conclusion": s["conclusion"],
                    "number": s["number"],
                    "started_at": iso(s["started_at"]),
                    "completed_at": iso(s["completed_at"]),
                }
                for s in self.steps
            ],
            "check_run_url": f"{base}/repos/{full}/check-runs/{self.id}",
            "labels": list(self.labels),
            "runner_id": self.runner_id,
            "runner_name": self.runner_name,
            "runner_group_id": self.runner_group_id,
            "runner_group_name": self.runner_group_name,
        }

    def annotation_payloads(self) -> list[dict[str, Any]]:
        full = self.run.repo.full_name
        out = []
        for a in self.annotations:
            d: dict[str, Any] = {
                "path": ".github",
                "start_line": 1,
                "end_line": 1,
                "start_column": None,
                "end_column": None,
                "annotation_level": "failure",
                "title": "",
                "message": "",
                "raw_details": "",
                "blob_href": f"https://github.com/{full}/blob/{self.run.head_sha}/.github",
            }
            d.update(a)
            out.append(d)
        return out


def _make_steps(
    steps: Sequence[Any], status: str, start: datetime | None, end: datetime | None
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    n = max(len(steps), 1)
    span = (end - start) / n if start is not None and end is not None else None
    running = status == "in_progress"
    for i, step in enumerate(steps):
        if isinstance(step, dict):
            d = dict(step)
            d.setdefault("number", i + 1)
            d.setdefault("conclusion", None)
            d.setdefault("status", "completed" if d["conclusion"] else "queued")
            d["started_at"] = _opt_utc(d.get("started_at"))
            d["completed_at"] = _opt_utc(d.get("completed_at"))
            out.append(d)
            continue
        name, conclusion, *times = step
        if times:
            s_start, s_end = _opt_utc(times[0]), _opt_utc(times[1])
        elif start is not None and span is not None:
            s_start, s_end = start + span * i, start + span * (i + 1)
        elif start is not None:  # unfinished job: 10 s per finished step
            s_start = start + timedelta(seconds=10 * i)
            s_end = s_start + timedelta(seconds=10)
        else:
            s_start = s_end = None
        if conclusion is not None:
            s_status = "completed"
        elif running:
            s_status, running = "in_progress", False
        else:
            s_status = "queued"
        if s_status != "completed":
            s_end = None
            if s_status == "queued":
                s_start = None
        out.append(
            {
                "name": name,
                "status": s_status,
                "conclusion": conclusion,
                "number": i + 1,
                "started_at": _opt_utc(s_start),
                "completed_at": _opt_utc(s_end),
            }
        )
    return out


class Artifact:
    """A run's artifact: a zip archive (any bytes, so tests can serve junk)."""

    def __init__(self, run: Run, aid: int, name: str, data: bytes, expired: bool) -> None:
        self.run = run
        self.id = aid
        self.name = name
        self.data = data
        self.expired = expired
        self.created_at = run.created_at + timedelta(minutes=5)

    def payload(self, base: str) -> dict[str, Any]:
        full = self.run.repo.full_name
        url = f"{base}/repos/{full}/actions/artifacts/{self.id}"
        return {
            "id": self.id,
            "node_id": f"MDg6QXJ0aWZhY3Q{self.id}",
            "name": self.name,
            "size_in_bytes": len(self.data),
            "url": url,
            "archive_download_url": f"{url}/zip",
            "expired": self.expired,
            "digest": "sha256:" + hashlib.sha256(self.data).hexdigest(),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.created_at),
            "expires_at": iso(self.created_at + timedelta(days=90)),
            "workflow_run": {
                "id": self.run.id,
                "repository_id": self.run.repo.id,
                "head_repository_id": self.run.repo.id,
                "head_branch": self.run.branch,
                "head_sha": self.run.head_sha,
            },
        }


class Run:
    """A workflow run.  Change ``created_at`` through the attribute (the
    repository index follows); other attributes may be set directly."""

    def __init__(self, repo: Repo, rid: int, workflow: Workflow, created_at: datetime) -> None:
        self.repo = repo
        self.id = rid
        self.workflow = workflow
        self._created_at = utc(created_at)
        self.updated_at: datetime | None = None  # None -> derived
        self.run_started_at: datetime | None = self._created_at
        self.branch: str | None = "main"
        self.event = "push"
        self.head_sha = ""
        self.status = "completed"
        self.conclusion: str | None = "success"
        self.run_attempt = 1
        self.run_number = 0
        self.actor = "octocat"
        self.triggering_actor: str | None = None
        self.pull_requests: list[int] = []  # numbers of the pull requests it belongs to
        self.display_title = ""
        self.check_suite_id = CHECK_SUITE_ID_BASE + (rid - RUN_ID_BASE)
        self.jobs: list[Job] = []  # native jobs of every attempt
        self.carried: list[tuple[int, Job]] = []  # (attempt it is listed under, job)
        self.artifacts: list[Artifact] = []

    def add_artifact(self, name: str, data: bytes, *, expired: bool = False) -> Artifact:
        """An artifact of this run; ``data`` is served as its zip archive."""
        server = self.repo.server
        with server.lock:
            artifact = Artifact(
                self, server._next_id("artifact", ARTIFACT_ID_BASE), name, data, expired
            )
            self.artifacts.append(artifact)
            server._artifacts[artifact.id] = artifact
        return artifact

    @property
    def created_at(self) -> datetime:
        return self._created_at

    @created_at.setter
    def created_at(self, value: datetime) -> None:
        self._created_at = utc(value)
        self.repo._dirty = True

    def add_job(
        self,
        name: str = "build",
        *,
        attempt: int | None = None,
        status: str = "completed",
        conclusion: str | None = AUTO,
        created_at: datetime | None = AUTO,
        started_at: datetime | None = AUTO,
        completed_at: datetime | None = AUTO,
        labels: Sequence[str] | None = None,
        runner_name: str | None = AUTO,
        runner_id: int | None = AUTO,
        runner_group_name: str | None = AUTO,
        steps: Sequence[Any] | None = None,
        log: LogSource = None,
        log_size: int | None = None,
        log_expired: bool = False,
        annotations: Sequence[dict[str, Any]] | None = None,
        job_id: int | None = None,
        duration: float = 60.0,
    ) -> Job:
        """Add a job.  Omitted times/conclusion/runner are derived (queued jobs
        get no start, unfinished ones no completion); pass ``None`` for null.
        ``steps``: ``(name, conclusion)`` tuples (times spread over the job),
        ``(name, conclusion, started, completed)`` or full dicts.
        ``log``: bytes/str, a callable returning an iterable of byte chunks
        (streamed; give ``log_size`` for a Content-Length), or ``None`` (404)."""
        server = self.repo.server
        with server.lock:
            attempt = self.run_attempt if attempt is None else attempt
            jid = server._next_id("job", JOB_ID_BASE) if job_id is None else job_id
            job = Job(self, jid, name, attempt)
            job.status = status
            if conclusion is AUTO:
                conclusion = "success" if status == "completed" else None
            job.conclusion = conclusion
            if created_at is AUTO:
                created_at = self.run_started_at or self.created_at
            job.created_at = _opt_utc(created_at)
            queued = status in ("queued", "waiting", "pending", "requested")
            if started_at is AUTO:
                started_at = None
                if not queued and job.created_at is not None:
                    started_at = job.created_at + timedelta(seconds=5)
            job.started_at = _opt_utc(started_at)
            if completed_at is AUTO:
                completed_at = None
                if status == "completed":
                    if conclusion == "skipped" or job.started_at is None:
                        completed_at = job.started_at or job.created_at
                    else:
                        completed_at = job.started_at + timedelta(seconds=duration)
            job.completed_at = _opt_utc(completed_at)
            ran = job.started_at is not None and conclusion != "skipped"
            n = len(self.repo._jobs) + 1
            job.runner_id = (
                (RUNNER_ID_BASE + n if ran else None) if runner_id is AUTO else runner_id
            )
            if runner_name is AUTO:
                runner_name = f"GitHub Actions {job.runner_id}" if ran else None
            job.runner_name = runner_name
            if runner_group_name is AUTO:
                runner_group_name = "GitHub Actions" if ran else None
            job.runner_group_name = runner_group_name
            job.runner_group_id = 2 if runner_group_name else None
            job.labels = list(labels) if labels is not None else ["ubuntu-latest"]
            if steps is None:
                if conclusion == "skipped":
                    steps = []
                else:
                    steps = [
                        ("Set up job", "success" if job.started_at else None),
                        ("Run actions/checkout@v4", "success" if job.started_at else None),
                        (f"Run {name}", conclusion),
                        ("Complete job", conclusion and "success"),
                    ]
            job.steps = _make_steps(steps, status, job.started_at, job.completed_at)
            job.log = log.encode() if isinstance(log, str) else log
            job.log_size = log_size
            job.log_expired = log_expired
            job.annotations = [dict(a) for a in annotations or ()]
            self.jobs.append(job)
            self.repo._jobs[job.id] = job
            self.run_attempt = max(self.run_attempt, attempt)
            return job

    def carry_job(self, job: Job, to_attempt: int) -> None:
        """List ``job`` (same id, same payload) under every attempt after its
        own up to ``to_attempt``, as GitHub does for jobs not re-run."""
        with self.repo.server.lock:
            if job.run is not self or to_attempt <= job.attempt:
                raise ValueError("carry_job: job of another run or attempt not later")
            have = {(a, j.id) for a, j in self.carried}
            for a in range(job.attempt + 1, to_attempt + 1):
                if (a, job.id) not in have:
                    self.carried.append((a, job))
            self.run_attempt = max(self.run_attempt, to_attempt)

    def jobs_for_attempt(self, attempt: int) -> list[Job]:
        jobs = [j for j in self.jobs if j.attempt == attempt]
        jobs += [j for a, j in self.carried if a == attempt]
        return sorted(jobs, key=lambda j: j.id)

    def all_jobs(self) -> list[Job]:
        out: list[Job] = []
        for a in range(1, self.run_attempt + 1):
            out += self.jobs_for_attempt(a)
        return out

    def derived_updated_at(self) -> datetime:
        if self.updated_at is not None:
            return self.updated_at
        best = self.created_at + timedelta(seconds=1)
        for j in self.jobs:
            for t in (j.completed_at, j.started_at, j.created_at):
                if t is not None and t > best:
                    best = t
        return best

    def payload(self, base: str, attempt: int | None = None) -> dict[str, Any]:
        repo = self.repo
        full = repo.full_name
        url = f"{base}/repos/{full}/actions/runs/{self.id}"
        n = self.run_attempt if attempt is None else attempt
        wf = self.workflow
        mini = repo.mini_payload(base)
        return {
            "id": self.id,
            "name": wf.name,
            "node_id": f"WFR_{self.id}",
            "head_branch": self.branch,
            "head_sha": self.head_sha,
            "path": wf.path,
            "display_title": self.display_title,
            "run_number": self.run_number,
            "event": self.event,
            "status": self.status,
            "conclusion": self.conclusion,
            "workflow_id": wf.id,
            "check_suite_id": self.check_suite_id,
            "check_suite_node_id": f"CS_{self.check_suite_id}",
            "url": url,
            "html_url": f"https://github.com/{full}/actions/runs/{self.id}",
            "pull_requests": [self.pull_request_payload(base, n) for n in self.pull_requests],
            "created_at": iso(self.created_at),
            "updated_at": iso(self.derived_updated_at()),
            "actor": _user(self.actor),
            "run_attempt": n,
            "referenced_workflows": [],
            "run_started_at": iso(self.run_started_at),
            "triggering_actor": _user(self.triggering_actor or self.actor),
            "jobs_url": f"{url}/jobs" if attempt is None else f"{url}/attempts/{n}/jobs",
            "logs_url": f"{url}/logs" if attempt is None else f"{url}/attempts/{n}/logs",
            "check_suite_url": f"{base}/repos/{full}/check-suites/{self.check_suite_id}",
            "artifacts_url": f"{url}/artifacts",
            "cancel_url": f"{url}/cancel",
            "rerun_url": f"{url}/rerun",
            "previous_attempt_url": f"{url}/attempts/{n - 1}" if n > 1 else None,
            "workflow_url": f"{base}/repos/{full}/actions/workflows/{wf.id}",
            "head_commit": {
                "id": self.head_sha,
                "tree_id": hashlib.sha1(self.head_sha.encode()).hexdigest(),
                "message": self.display_title,
                "timestamp": iso(self.created_at),
                "author": {"name": self.actor, "email": f"{self.actor}@example.com"},
                "committer": {"name": "GitHub", "email": "noreply@github.com"},
            },
            "repository": mini,
            "head_repository": mini,
        }

    def pull_request_payload(self, base: str, number: int) -> dict[str, Any]:
        """A pull request as a run lists it: id, number, url and both ends' ref, sha, repo."""
        repo = self.repo
        ref = {"id": repo.id, "url": f"{base}/repos/{repo.full_name}", "name": repo.name}
        return {
            "url": f"{base}/repos/{repo.full_name}/pulls/{number}",
            "id": 700_000_000 + number,
            "number": number,
            "head": {"ref": self.branch or "", "sha": self.head_sha, "repo": ref},
            "base": {
                "ref": repo.default_branch,
                "sha": hashlib.sha1(f"{repo.full_name}:base".encode()).hexdigest(),
                "repo": ref,
            },
        }


class Repo:
    def __init__(self, server: FakeGitHub, rid: int, full_name: str) -> None:
        self.server = server
        self.id = rid
        self.owner, self.name = full_name.split("/", 1)
        self.full_name = full_name
        self.org: str | None = None
        self.archived = False
        self.private = False
        self.default_branch = "main"
        self.workflows: list[Workflow] = []
        self._runs: dict[int, Run] = {}
        self._jobs: dict[int, Job] = {}
        self._dirty = True
        self._asc: list[Run] = []
        self._keys: list[float] = []

    # ---- builders
    def add_workflow(
        self,
        name: str = "CI",
        path: str | None = None,
        *,
        state: str = "active",
        workflow_id: int | None = None,
    ) -> Workflow:
        with self.server.lock:
            if path is None:
                path = f".github/workflows/{re.sub(r'[^a-z0-9]+', '-', name.lower())}.yml"
            wid = self.server._next_id("workflow", WORKFLOW_ID_BASE)
            wf = Workflow(self, wid if workflow_id is None else workflow_id, name, path, state)
            self.workflows.append(wf)
            return wf

    def add_run(
        self,
        workflow: Workflow | None = None,
        created_at: datetime | None = None,
        *,
        branch: str | None = "main",
        event: str = "push",
        head_sha: str | None = None,
        status: str = "completed",
        conclusion: str | None = AUTO,
        run_attempt: int = 1,
        updated_at: datetime | None = None,
        run_started_at: datetime | None = AUTO,
        actor: str = "octocat",
        display_title: str | None = None,
        run_number: int | None = None,
        run_id: int | None = None,
        pull_requests: Sequence[int] = (),
    ) -> Run:
        """Add a run (``updated_at`` None = derived from its jobs); ``pull_requests``
        numbers the pull requests GitHub links it to (none for a fork's)."""
        with self.server.lock:
            if workflow is None:
                workflow = self.workflows[0] if self.workflows else self.add_workflow()
            if created_at is None:
                created_at = datetime.now(UTC)
            rid = self.server._next_id("run", RUN_ID_BASE) if run_id is None else run_id
            run = Run(self, rid, workflow, created_at)
            run.branch = branch
            run.event = event
            run.head_sha = head_sha or hashlib.sha1(f"{self.full_name}:{rid}".encode()).hexdigest()
            run.status = status
            if conclusion is AUTO:
                conclusion = "success" if status == "completed" else None
            run.conclusion = conclusion
            run.run_attempt = run_attempt
            run.updated_at = _opt_utc(updated_at)
            run.run_started_at = (
                run.created_at if run_started_at is AUTO else _opt_utc(run_started_at)
            )
            run.actor = actor
            run.pull_requests = list(pull_requests)
            workflow.run_count += 1
            run.run_number = workflow.run_count if run_number is None else run_number
            run.display_title = display_title or f"Commit {run.head_sha[:7]}"
            self._runs[run.id] = run
            self._dirty = True
            return run

    def add_runs_bulk(
        self,
        n: int,
        start: datetime,
        spacing: timedelta | float = 60.0,
        *,
        workflow: Workflow | None = None,
        jobs_per_run: int = 0,
        conclusions: Sequence[str | None] = ("success",),
        job_conclusions: Sequence[str | None] | None = None,
        branch: str | None = "main",
        event: str = "push",
        with_logs: bool = False,
        job_duration: float = 60.0,
    ) -> list[Run]:
        """``n`` completed runs at ``start + i * spacing``; conclusions cycle.
        Jobs get the run's conclusion unless ``job_conclusions`` cycles them;
        ``with_logs`` attaches a small generated log (made on demand)."""
        step = spacing if isinstance(spacing, timedelta) else timedelta(seconds=spacing)
        start = utc(start)
        runs: list[Run] = []
        with self.server.lock:
            for i in range(n):
                c = conclusions[i % len(conclusions)]
                run = self.add_run(
                    workflow, start + step * i, branch=branch, event=event, conclusion=c
                )
                for k in range(jobs_per_run):
                    jc = c if job_conclusions is None else job_conclusions[k % len(job_conclusions)]
                    job = run.add_job(f"job-{k + 1}", conclusion=jc, duration=job_duration)
                    if with_logs:
                        job.log = _lazy_log(job)
                runs.append(run)
        return runs

    # ---- queries
    def get_run(self, run_id: int) -> Run | None:
        return self._runs.get(run_id)

    def get_job(self, job_id: int) -> Job | None:
        return self._jobs.get(job_id)

    @property
    def runs(self) -> list[Run]:
        """All runs, newest ``created_at`` first."""
        self._index()
        return self._asc[::-1]

    def find_workflow(self, key: str) -> Workflow | None:
        for wf in self.workflows:
            if str(wf.id) == key or wf.file_name == key:
                return wf
        return None

    def _index(self) -> None:
        if self._dirty:
            self._asc = sorted(self._runs.values(), key=lambda r: (r.created_at, r.id))
            self._keys = [r.created_at.timestamp() for r in self._asc]
            self._dirty = False

    def filtered_runs(self, q: dict[str, str], workflow: Workflow | None) -> list[Run]:
        """Runs matching the query's filters, newest first (raises ValueError)."""
        self._index()
        lo_i, hi_i = 0, len(self._asc)
        if q.get("created"):
            lo, lo_incl, hi, hi_incl = parse_created(q["created"])
            if lo is not None:
                lo_i = (bisect.bisect_left if lo_incl else bisect.bisect_right)(self._keys, lo)
            if hi is not None:
                hi_i = (bisect.bisect_right if hi_incl else bisect.bisect_left)(self._keys, hi)
        cand = self._asc[lo_i:hi_i][::-1] if hi_i > lo_i else []
        checks: list[Callable[[Run], bool]] = []
        if workflow is not None:
            checks.append(lambda r: r.workflow is workflow)
        if q.get("branch"):
            checks.append(lambda r: r.branch == q["branch"])
        if q.get("event"):
            checks.append(lambda r: r.event == q["event"])
        if q.get("head_sha"):
            checks.append(lambda r: r.head_sha == q["head_sha"])
        if q.get("actor"):
            checks.append(lambda r: r.actor == q["actor"])
        if q.get("check_suite_id"):
            checks.append(lambda r: str(r.check_suite_id) == q["check_suite_id"])
        if q.get("status"):
            st = q["status"]
            if st in RUN_STATUSES:
                checks.append(lambda r: r.status == st)
            else:
                checks.append(lambda r: r.conclusion == st)
        if not checks:
            return cand
        return [r for r in cand if all(c(r) for c in checks)]

    # ---- payloads
    def mini_payload(self, base: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "node_id": f"R_{self.id}",
            "name": self.name,
            "full_name": self.full_name,
            "private": self.private,
            "owner": _user(self.owner),
            "html_url": f"https://github.com/{self.full_name}",
            "url": f"{base}/repos/{self.full_name}",
            "fork": False,
        }

    def payload(self, base: str) -> dict[str, Any]:
        d = self.mini_payload(base)
        if self.org:
            d["owner"]["type"] = "Organization"
        d.update(
            {
                "description": None,
                "archived": self.archived,
                "disabled": False,
                "visibility": "private" if self.private else "public",
                "default_branch": self.default_branch,
                "created_at": "2024-01-01T00:00:00Z",
                "updated_at": "2026-01-01T00:00:00Z",
                "pushed_at": "2026-01-01T00:00:00Z",
                "hooks_url": f"{base}/repos/{self.full_name}/hooks",
                "language": "Python",
                "permissions": {"admin": False, "push": False, "pull": True},
            }
        )
        return d


def _lazy_log(job: Job) -> Callable[[], Iterable[bytes]]:
    def gen() -> Iterable[bytes]:
        steps = [(s["name"], s["conclusion"]) for s in job.steps or []]
        yield make_log(
            job.started_at or job.run.created_at, steps, runner_name=job.runner_name or ""
        )

    return gen


# --------------------------------------------------------------------------- infra


class RateLimit:
    """Primary rate-limit budget.  Setting ``limit``, ``remaining`` or
    ``reset_after`` starts a new window (reset ``reset_after`` s from now;
    setting ``limit`` also refills)."""

    def __init__(self, limit: int = 5000, reset_after: float = 3600.0) -> None:
        self._lock = threading.Lock()
        self._limit = limit
        self._remaining = limit
        self._reset_after = reset_after
        self._window_start = time.time()
        self.exceeded_status = 403

    @property
    def limit(self) -> int:
        return self._limit

    @limit.setter
    def limit(self, value: int) -> None:
        with self._lock:
            self._limit = self._remaining = value
            self._window_start = time.time()

    @property
    def remaining(self) -> int:
        with self._lock:
            self._refresh(time.time())
            return self._remaining

    @remaining.setter
    def remaining(self, value: int) -> None:
        with self._lock:
            self._remaining = value
            self._window_start = time.time()

    @property
    def reset_after(self) -> float:
        return self._reset_after

    @reset_after.setter
    def reset_after(self, value: float) -> None:
        with self._lock:
            self._reset_after = value
            self._window_start = time.time()

    @property
    def reset_at(self) -> float:
        return self._window_start + self._reset_after

    @property
    def used(self) -> int:
        return self._limit - self.remaining

    def _refresh(self, now: float) -> None:
        if now >= self._window_start + self._reset_after:
            self._remaining = self._limit
            self._window_start = now

    def consume(self) -> bool:
        """Count one request; False when the budget is exhausted."""
        with self._lock:
            self._refresh(time.time())
            if self._remaining <= 0:
                return False
            self._remaining -= 1
            return True

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            self._refresh(time.time())
            return {
                "limit": self._limit,
                "remaining": self._remaining,
                "reset": math.ceil(self._window_start + self._reset_after),
                "used": self._limit - self._remaining,
                "resource": "core",
            }

    def headers(self) -> list[tuple[str, str]]:
        s = self.snapshot()
        return [
            ("x-ratelimit-limit", str(s["limit"])),
            ("x-ratelimit-remaining", str(s["remaining"])),
            ("x-ratelimit-used", str(s["used"])),
            ("x-ratelimit-reset", str(s["reset"])),
            ("x-ratelimit-resource", "core"),
        ]


FAULT_KINDS = frozenset({"status", "secondary", "primary", "429", "latency", "drop", "truncate"})


@dataclass
class Fault:
    pattern: re.Pattern[str]
    kind: str
    count: int | None
    kw: dict[str, Any]
    query: dict[str, str] | None = None
    method: str | None = None
    hits: int = 0

    def expired(self, now: float, seen: int) -> bool | None:
        """For a timed fault (kw ``duration``, optional ``after_requests``): None while it
        waits for its start, True once its duration has passed, else False."""
        duration = self.kw.get("duration")
        if duration is None:
            return False
        if seen <= int(self.kw.get("after_requests", 0)):
            return None
        started = self.kw.setdefault("started_at", now)
        return now - float(started) >= float(duration)

    def matches(self, method: str, path: str, query: dict[str, str]) -> bool:
        if self.method and self.method.upper() != method:
            return False
        if not self.pattern.search(path):
            return False
        return not self.query or all(query.get(k) == str(v) for k, v in self.query.items())


class Faults:
    """Injected faults, consumed in insertion order by matching requests.

    Kinds: ``status`` (kw ``status``, ``message``), ``secondary`` (kw
    ``retry_after``, default 1, None = no header), ``primary`` (kw
    ``reset_after``, default 1), ``429`` (kw ``retry_after`` default None,
    ``primary``), ``latency`` (kw ``seconds``; stacks with another fault),
    ``drop`` (close without answering), ``truncate`` (Content-Length, then
    close after half the body; only taken by responses with a body, e.g. the
    signed log URL ``^/_signed/logs/``).  ``count=None`` = permanent.
    Paths are matched with ``re.search`` on the path without the API prefix.
    A timed fault (kw ``duration`` seconds, ``after_requests`` N) is an outage in
    the middle of a gather: it starts after the server saw N requests, answers
    every matching request for ``duration`` seconds, then goes away (see
    ``outage``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Fault] = []
        self._seen = 0

    def outage(
        self, seconds: float, *, after_requests: int = 0, kind: str = "status", status: int = 503
    ) -> Fault:
        """Every request, API and log host alike, fails for `seconds` once the server
        has seen `after_requests` more requests: 503 answers, or dropped connections."""
        extra = {"status": status} if kind == "status" else {}
        with self._lock:
            start = self._seen + after_requests
        return self.add(r".*", kind, count=None, duration=seconds, after_requests=start, **extra)

    def add(
        self,
        path_regex: str,
        kind: str,
        count: int | None = 1,
        *,
        query: dict[str, Any] | None = None,
        method: str | None = None,
        **kw: Any,
    ) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        f = Fault(re.compile(path_regex), kind, count, kw, query, method)
        with self._lock:
            self._items.append(f)
        return f

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    @property
    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._items)

    def __len__(self) -> int:
        return len(self.pending)

    def _use(self, f: Fault) -> None:
        f.hits += 1
        if f.count is not None:
            f.count -= 1
            if f.count <= 0:
                self._items.remove(f)

    def take(self, method: str, path: str, query: dict[str, str]) -> tuple[float, Fault | None]:
        """(seconds of latency, first matching non-latency non-truncate fault)."""
        delay = 0.0
        chosen: Fault | None = None
        now = time.monotonic()
        with self._lock:
            self._seen += 1
            for f in list(self._items):
                if f.kind == "truncate" or not f.matches(method, path, query):
                    continue
                expired = f.expired(now, self._seen)
                if expired is None:
                    continue
                if expired:
                    self._items.remove(f)
                    continue
                if f.kind == "latency":
                    delay += float(f.kw.get("seconds", 1.0))
                    self._use(f)
                elif chosen is None:
                    chosen = f
                    self._use(f)
        return delay, chosen

    def take_truncate(self, method: str, path: str, query: dict[str, str]) -> Fault | None:
        with self._lock:
            for f in self._items:
                if f.kind == "truncate" and f.matches(method, path, query):
                    self._use(f)
                    return f
        return None


@dataclass
class RecordedRequest:
    method: str
    path: str  # without the API prefix (signed log URLs as served: /_signed/…)
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    status: int = 0  # 0 = dropped
    counted: bool = False  # decremented the rate-limit budget
    fault: str | None = None
    time: float = field(default_factory=time.time)
    client: str = ""  # "host:port" of the client socket (tells connections apart)


@dataclass
class _Resp:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    counted: bool = True
    etag: bool = False  # eligible for ETag / 304
    stream: Iterable[bytes] | None = None
    length: int | None = None
    drop: bool = False


class _HTTPError(Exception):
    def __init__(self, status: int, message: str | None = None, **extra: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = {"message": message or _STATUS_MESSAGES.get(status, "Error")}
        self.body.update(extra)
        self.body.setdefault("documentation_url", DOCS)


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _token(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "").strip()
    for scheme in ("token ", "bearer "):
        if auth.lower().startswith(scheme):
            return auth[len(scheme) :].strip() or None
    return None


@dataclass
class _Ctx:
    method: str
    host: str
    path: str
    pairs: list[tuple[str, str]]
    query: dict[str, str]
    headers: dict[str, str]
    token: str | None

    @property
    def base(self) -> str:
        return f"http://{self.host}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60
    server: _Server

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle's
        # algorithm and the client's delayed ACK stall every response ~40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.server.app._handle(self)

    def _other(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        self.server.app._handle(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _other


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    app: FakeGitHub

    def handle_error(self, request: Any, client_address: Any) -> None:  # quiet
        pass


# --------------------------------------------------------------------------- server


class FakeGitHub:
    """The server (see the module docstring).

    Settable: ``rate`` (:class:`RateLimit`), ``faults`` (:class:`Faults`),
    ``required_token`` (401 unless sent), ``signed_url_ttl`` (s, default 60),
    ``links_past_cap`` (default True: a capped listing's ``Link rel=last``
    follows ``total_count``, so PyGithub's ``totalCount`` reports the true
    number and iteration walks the empty pages past 1,000; False: links stop
    at the cap), ``unfiltered_cap`` (e.g. 40_000: unfiltered pages past it
    answer 422), ``blob_host`` (host name in signed log URLs).
    Read: ``requests``, ``log_auth_leaks`` (requests to signed log URLs that
    carried an ``Authorization`` header), ``url``, ``host_url``, ``port``.
    """

    def __init__(self, prefix: str = "/api/v3", *, blob_host: str = "127.0.0.1") -> None:
        self.prefix = prefix.rstrip("/")
        self.blob_host = blob_host  # host of signed log URLs ("localhost" = other host)
        self.lock = threading.RLock()
        self.rate = RateLimit()
        self.faults = Faults()
        self.requests: list[RecordedRequest] = []
        self.log_auth_leaks: list[RecordedRequest] = []
        self.required_token: str | None = None
        self.signed_url_ttl = 60.0
        self.links_past_cap = True  # Link rel=last from total_count, past the 1,000 cap
        self.unfiltered_cap: int | None = None  # e.g. 40_000 -> 422 past it
        self.repos: dict[str, Repo] = {}
        self._ids: dict[str, int] = {}
        self._signed: dict[str, tuple[int, float]] = {}
        self._signed_artifacts: dict[str, tuple[int, float]] = {}
        self._artifacts: dict[int, Artifact] = {}
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # ---- lifecycle
    def start(self, port: int = 0, host: str = "127.0.0.1") -> FakeGitHub:
        httpd = _Server((host, port), _Handler)
        httpd.app = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever, args=(0.05,), name="ghserver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeGitHub:
        return self if self._httpd is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def host_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``base_url`` for PyGithub / ``GITHUB_API_URL``."""
        return self.host_url + self.prefix

    # ---- data
    def _next_id(self, kind: str, base: int) -> int:
        with self.lock:
            n = self._ids.get(kind, 0) + 1
            self._ids[kind] = n
            return base + n

    def add_repo(
        self,
        full_name: str,
        *,
        archived: bool = False,
        private: bool = False,
        org: str | None = None,
        default_branch: str = "main",
    ) -> Repo:
        """``org`` set: the owner is that organisation (listed by
        ``/orgs/{org}/repos``); otherwise a user."""
        with self.lock:
            repo = Repo(self, self._next_id("repo", REPO_ID_BASE), full_name)
            repo.archived, repo.private, repo.org = archived, private, org
            repo.default_branch = default_branch
            self.repos[full_name.lower()] = repo
            return repo

    def repo(self, full_name: str) -> Repo:
        return self.repos[full_name.lower()]

    # ---- log
    def reset_log(self) -> None:
        with self.lock:
            self.requests.clear()
            self.log_auth_leaks.clear()

    def requests_to(self, path_regex: str, *, counted: bool | None = None) -> list[RecordedRequest]:
        """Recorded requests whose path matches (``re.search``)."""
        rx = re.compile(path_regex)
        with self.lock:
            return [
                r
                for r in self.requests
                if rx.search(r.path) and (counted is None or r.counted == counted)
            ]

    # ---- request handling
    def _handle(self, h: _Handler) -> None:
        split = urlsplit(h.path)
        pairs = parse_qsl(split.query, keep_blank_values=True)
        query = dict(pairs)
        headers = {k.lower(): v for k, v in h.headers.items()}
        method = h.command
        raw = split.path
        signed = raw.startswith("/_signed/")
        if signed:
            path = raw
        elif raw == self.prefix or raw.startswith(self.prefix + "/"):
            path = raw[len(self.prefix) :] or "/"
        else:
            path = raw
        rec = RecordedRequest(method, path, query, headers)
        rec.client = f"{h.client_address[0]}:{h.client_address[1]}"
        host = headers.get("host") or f"127.0.0.1:{self.port}"
        ctx = _Ctx(method, host, path, pairs, query, headers, _token(headers))

        delay, fault = self.faults.take(method, path, query)
        if delay:
            time.sleep(delay)
        if fault is not None:
            rec.fault = fault.kind
            resp = self._fault_response(fault)
        elif signed:
            resp = self._signed_response(ctx, rec)
        else:
            resp = self._api_response(ctx, raw)
        if not signed and not resp.drop:
            self._finish_api(ctx, resp)
        truncate = None
        if not resp.drop and (resp.body or resp.stream is not None):
            truncate = self.faults.take_truncate(method, path, query)
            if truncate is not None:
                rec.fault = "truncate"
        rec.status = 0 if resp.drop else resp.status
        rec.counted = resp.counted and not resp.drop
        with self.lock:
            self.requests.append(rec)
        self._send(h, resp, truncate is not None)

    def _api_response(self, ctx: _Ctx, raw: str) -> _Resp:
        if self.prefix and not (raw == self.prefix or raw.startswith(self.prefix + "/")):
            return _Resp(
                404, _json({"message": "Not Found", "documentation_url": DOCS}), counted=False
            )
        if self.required_token is not None and ctx.token != self.required_token:
            body = {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}
            return _Resp(401, _json(body), counted=False)
        try:
            if ctx.method != "GET":
                raise _HTTPError(404)
            with self.lock:
                status, obj, extra = self._route(ctx)
            resp = _Resp(status, b"" if obj is None else _json(obj), extra, etag=status == 200)
        except _HTTPError as e:
            resp = _Resp(e.status, _json(e.body))
        if ctx.path == "/rate_limit":
            resp.counted = False
        return resp

    def _finish_api(self, ctx: _Ctx, resp: _Resp) -> None:
        """ETag / 304, rate-limit accounting and common headers."""
        if resp.etag:
            tag = 'W/"' + hashlib.sha1(resp.body).hexdigest() + '"'
            resp.headers.append(("ETag", tag))
            inm = ctx.headers.get("if-none-match")
            if inm and _etag_match(inm, tag):
                resp.status, resp.body, resp.counted = 304, b"", False
        if resp.counted and not self.rate.consume():
            resp.counted = False
            resp.status = self.rate.exceeded_status
            if ctx.token:
                msg = "API rate limit exceeded for user ID 1."
            else:
                msg = (
                    "API rate limit exceeded for 127.0.0.1. (But here's the good news: "
                    "Authenticated requests get a higher rate limit. Check out the "
                    "documentation for more details.)"
                )
            resp.body = _json({"message": msg, "documentation_url": RATE_DOCS})
            resp.headers = [h for h in resp.headers if h[0].lower() not in ("etag", "link")]
        if not any(k.startswith("x-ratelimit") for k, _ in resp.headers):
            resp.headers[:0] = self.rate.headers()
        resp.headers += [
            ("Content-Type", "application/json; charset=utf-8"),
            ("X-GitHub-Media-Type", "github.v3; format=json"),
            ("X-GitHub-Api-Version-Selected", "2022-11-28"),
            ("X-GitHub-Request-Id", secrets.token_hex(8).upper()),
            ("Vary", "Accept, Authorization, Cookie, X-GitHub-OTP"),
        ]

    def _fault_response(self, f: Fault) -> _Resp:
        kw = f.kw
        hdrs: list[tuple[str, str]] = list(kw.get("headers", {}).items())
        if f.kind == "drop":
            return _Resp(0, drop=True, counted=False)
        if f.kind == "status":
            status = int(kw.get("status", 500))
            body = kw.get("body")
            if body is None:
                body = {"message": kw.get("message") or _STATUS_MESSAGES.get(status, "Error")}
                body["documentation_url"] = DOCS
            raw = body if isinstance(body, bytes) else _json(body)
            return _Resp(status, raw, hdrs, counted=False)
        if f.kind == "primary" or (f.kind == "429" and kw.get("primary")):
            reset = math.ceil(time.time() + float(kw.get("reset_after", 1)))
            limit = self.rate.limit
            hdrs += [
                ("x-ratelimit-limit", str(limit)),
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-used", str(limit)),
                ("x-ratelimit-reset", str(reset)),
                ("x-ratelimit-resource", "core"),
            ]
            msg = kw.get("message", "API rate limit exceeded for user ID 1.")
            status = 429 if f.kind == "429" else 403
            if f.kind == "429" and kw.get("retry_after") is not None:
                hdrs.append(("retry-after", str(kw["retry_after"])))
            body = _json({"message": msg, "documentation_url": RATE_DOCS})
            return _Resp(status, body, hdrs, counted=False)
        default_ra = 1 if f.kind == "secondary" else None
        retry_after = kw.get("retry_after", default_ra)
        if retry_after is not None:
            hdrs.append(("retry-after", str(retry_after)))
        body = _json({"message": kw.get("message", SECONDARY_MSG), "documentation_url": RATE_DOCS})
        return _Resp(403 if f.kind == "secondary" else 429, body, hdrs, counted=False)

    # ---- routing
    _ROUTES: ClassVar[list[tuple[re.Pattern[str], str]]] = [
        (re.compile(p), name)
        for p, name in [
            (r"^/rate_limit/?$", "rate_limit"),
            (r"^/orgs/([^/]+)/?$", "org"),
            (r"^/users/([^/]+)/?$", "user"),
            (r"^/orgs/([^/]+)/repos/?$", "org_repos"),
            (r"^/users/([^/]+)/repos/?$", "user_repos"),
            (r"^/repos/([^/]+)/([^/]+)/?$", "repo"),
            (r"^/repos/([^/]+)/([^/]+)/actions/workflows/?$", "workflows"),
            (r"^/repos/([^/]+)/([^/]+)/actions/workflows/([^/]+)/?$", "workflow"),
            (r"^/repos/([^/]+)/([^/]+)/actions/workflows/([^/]+)/runs/?$", "workflow_runs"),
            (r"^/repos/([^/]+)/([^/]+)/actions/runs/?$", "runs"),
            (r"^/repos/([^/]+)/([^/]+)/actions/runs/(\d+)/?$", "run"),
            (r"^/repos/([^/]+)/([^/]+)/actions/runs/(\d+)/attempts/(\d+)/?$", "run_attempt"),
            (r"^/repos/([^/]+)/([^/]+)/actions/runs/(\d+)/jobs/?$", "run_jobs"),
            (r"^/repos/([^/]+)/([^/]+)/actions/runs/(\d+)/artifacts/?$", "run_artifacts"),
            (r"^/repos/([^/]+)/([^/]+)/actions/artifacts/(\d+)/zip/?$", "artifact_zip"),
            (r"^/repos/([^/]+)/([^/]+)/actions/runs/(\d+)/attempts/(\d+)/jobs/?$", "attempt_jobs"),
            (r"^/repos/([^/]+)/([^/]+)/actions/jobs/(\d+)/?$", "job"),
            (r"^/repos/([^/]+)/([^/]+)/actions/jobs/(\d+)/logs/?$", "job_logs"),
            (r"^/repos/([^/]+)/([^/]+)/check-runs/(\d+)/annotations/?$", "annotations"),
        ]
    ]

    def _route(self, ctx: _Ctx) -> tuple[int, Any, list[tuple[str, str]]]:
        for rx, name in self._ROUTES:
            m = rx.match(ctx.path)
            if m:
                handler: Callable[..., tuple[int, Any, list[tuple[str, str]]]]
                handler = getattr(self, "_r_" + name)
                return handler(ctx, *m.groups())
        raise _HTTPError(404)

    def _visible(self, ctx: _Ctx, repo: Repo) -> bool:
        return not repo.private or ctx.token is not None

    def _repo(self, ctx: _Ctx, owner: str, name: str) -> Repo:
        repo = self.repos.get(f"{owner}/{name}".lower())
        if repo is None or not self._visible(ctx, repo):
            raise _HTTPError(404)
        return repo

    def _page(self, ctx: _Ctx) -> tuple[int, int]:
        try:
            page = max(int(ctx.query.get("page") or 1), 1)
            per_page = int(ctx.query.get("per_page") or 30)
        except ValueError:
            raise _HTTPError(422, "Invalid page or per_page") from None
        return page, min(max(per_page, 1), 100)

    def _link(self, ctx: _Ctx, page: int, last: int) -> list[tuple[str, str]]:
        if last <= 1 and page <= 1:
            return []
        others = [(k, v) for k, v in ctx.pairs if k != "page"]
        url = f"{ctx.base}{self.prefix}{ctx.path}"

        def u(n: int) -> str:
            return f"<{url}?{urlencode([*others, ('page', str(n))])}>"

        parts = []
        if page > 1:
            parts.append(f'{u(min(page - 1, max(last, 1)))}; rel="prev"')
        if page < last:
            parts.append(f'{u(page + 1)}; rel="next"')
            parts.append(f'{u(last)}; rel="last"')
        if page > 1:
            parts.append(f'{u(1)}; rel="first"')
        return [("Link", ", ".join(parts))] if parts else []

    def _paginated(
        self,
        ctx: _Ctx,
        items: Sequence[Any],
        render: Callable[[Any], Any],
        key: str | None = None,
        *,
        total: int | None = None,
        reachable: int | None = None,
        link_total: int | None = None,
    ) -> tuple[int, Any, list[tuple[str, str]]]:
        page, per_page = self._page(ctx)
        total = len(items) if total is None else total
        reachable = total if reachable is None else reachable
        start = (page - 1) * per_page
        chunk = items[start : min(start + per_page, reachable)] if start < reachable else []
        rendered = [render(x) for x in chunk]
        last = math.ceil((total if link_total is None else link_total) / per_page)
        body = rendered if key is None else {"total_count": total, key: rendered}
        return 200, body, self._link(ctx, page, last)

    def _r_rate_limit(self, ctx: _Ctx) -> tuple[int, Any, list[tuple[str, str]]]:
        core = self.rate.snapshot()
        other = {"limit": 30, "remaining": 30, "reset": core["reset"], "used": 0}
        return (
            200,
            {
                "resources": {
                    "core": core,
                    "search": {**other, "resource": "search"},
                    "graphql": {**core, "resource": "graphql"},
                },
                "rate": core,
            },
            [],
        )

    def _list_repos(self, ctx: _Ctx, repos: list[Repo]) -> tuple[int, Any, list[tuple[str, str]]]:
        repos = sorted((r for r in repos if self._visible(ctx, r)), key=lambda r: r.full_name)
        return self._paginated(ctx, repos, lambda r: r.payload(ctx.base + self.prefix))

    def _account(self, ctx: _Ctx, login: str, org_only: bool) -> Any:
        low = login.lower()
        repos = [r for r in self.repos.values() if (r.org or "").lower() == low]
        if not repos and not org_only:
            repos = [r for r in self.repos.values() if r.owner.lower() == low]
        if not repos:
            raise _HTTPError(404)
        d = _user(repos[0].org if repos[0].org else repos[0].owner)
        base = ctx.base + self.prefix
        kind = "orgs" if repos[0].org else "users"
        d.update(
            {
                "type": "Organization" if repos[0].org else d["type"],
                "url": f"{base}/{kind}/{d['login']}",
                "repos_url": f"{base}/{kind}/{d['login']}/repos",
                "public_repos": sum(not r.private for r in repos),
            }
        )
        return 200, d, []

    def _r_org(self, ctx: _Ctx, org: str) -> Any:
        return self._account(ctx, org, True)

    def _r_user(self, ctx: _Ctx, user: str) -> Any:
        return self._account(ctx, user, False)

    def _r_org_repos(self, ctx: _Ctx, org: str) -> Any:
        repos = [r for r in self.repos.values() if (r.org or "").lower() == org.lower()]
        if not repos:
            raise _HTTPError(404)
        return self._list_repos(ctx, repos)

    def _r_user_repos(self, ctx: _Ctx, user: str) -> Any:
        repos = [r for r in self.repos.values() if r.owner.lower() == user.lower()]
        if not repos:
            raise _HTTPError(404)
        return self._list_repos(ctx, repos)

    def _r_repo(self, ctx: _Ctx, owner: str, name: str) -> Any:
        return 200, self._repo(ctx, owner, name).payload(ctx.base + self.prefix), []

    def _r_workflows(self, ctx: _Ctx, owner: str, name: str) -> Any:
        repo = self._repo(ctx, owner, name)
        base = ctx.base + self.prefix
        return self._paginated(ctx, repo.workflows, lambda w: w.payload(base), "workflows")

    def _workflow(self, repo: Repo, key: str) -> Workflow:
        wf = repo.find_workflow(key)
        if wf is None:
            raise _HTTPError(404)
        return wf

    def _r_workflow(self, ctx: _Ctx, owner: str, name: str, key: str) -> Any:
        wf = self._workflow(self._repo(ctx, owner, name), key)
        return 200, wf.payload(ctx.base + self.prefix), []

    def _r_workflow_runs(self, ctx: _Ctx, owner: str, name: str, key: str) -> Any:
        repo = self._repo(ctx, owner, name)
        return self._list_runs(ctx, repo, self._workflow(repo, key))

    def _r_runs(self, ctx: _Ctx, owner: str, name: str) -> Any:
        return self._list_runs(ctx, self._repo(ctx, owner, name), None)

    def _list_runs(self, ctx: _Ctx, repo: Repo, wf: Workflow | None) -> Any:
        try:
            runs = repo.filtered_runs(ctx.query, wf)
        except ValueError:
            raise _HTTPError(422, "Validation Failed", errors=["invalid created"]) from None
        total = len(runs)
        capped = any(ctx.query.get(k) for k in CAPPED_FILTERS)
        reachable = min(total, SEARCH_CAP) if capped else total
        page, per_page = self._page(ctx)
        cap = self.unfiltered_cap
        if not capped and cap is not None and (page - 1) * per_page >= cap:
            msg = "Pagination with the page parameter is not supported for large datasets"
            raise _HTTPError(422, msg)
        base = ctx.base + self.prefix
        return self._paginated(
            ctx,
            runs,
            lambda r: r.payload(base),
            "workflow_runs",
            reachable=reachable,
            link_total=total if self.links_past_cap else reachable,
        )

    def _run(self, ctx: _Ctx, owner: str, name: str, run_id: str) -> Run:
        run = self._repo(ctx, owner, name).get_run(int(run_id))
        if run is None:
            raise _HTTPError(404)
        return run

    def _r_run(self, ctx: _Ctx, owner: str, name: str, run_id: str) -> Any:
        return 200, self._run(ctx, owner, name, run_id).payload(ctx.base + self.prefix), []

    def _r_run_attempt(self, ctx: _Ctx, owner: str, name: str, run_id: str, n: str) -> Any:
        run = self._run(ctx, owner, name, run_id)
        if not 1 <= int(n) <= run.run_attempt:
            raise _HTTPError(404)
        return 200, run.payload(ctx.base + self.prefix, int(n)), []

    def _jobs(self, ctx: _Ctx, jobs: list[Job]) -> Any:
        base = ctx.base + self.prefix
        return self._paginated(ctx, jobs, lambda j: j.payload(base), "jobs")

    def _r_run_jobs(self, ctx: _Ctx, owner: str, name: str, run_id: str) -> Any:
        run = self._run(ctx, owner, name, run_id)
        flt = ctx.query.get("filter") or "latest"
        if flt == "latest":
            return self._jobs(ctx, run.jobs_for_attempt(run.run_attempt))
        if flt == "all":
            return self._jobs(ctx, run.all_jobs())
        raise _HTTPError(422, "Validation Failed", errors=["filter must be latest or all"])

    def _r_attempt_jobs(self, ctx: _Ctx, owner: str, name: str, run_id: str, n: str) -> Any:
        run = self._run(ctx, owner, name, run_id)
        if not 1 <= int(n) <= run.run_attempt:
            raise _HTTPError(404)
        return self._jobs(ctx, run.jobs_for_attempt(int(n)))

    def _job(self, ctx: _Ctx, owner: str, name: str, job_id: str) -> Job:
        job = self._repo(ctx, owner, name).get_job(int(job_id))
        if job is None:
            raise _HTTPError(404)
        return job

    def _r_job(self, ctx: _Ctx, owner: str, name: str, job_id: str) -> Any:
        return 200, self._job(ctx, owner, name, job_id).payload(ctx.base + self.prefix), []

    def _r_job_logs(self, ctx: _Ctx, owner: str, name: str, job_id: str) -> Any:
        job = self._job(ctx, owner, name, job_id)
        if job.log_expired:
            raise _HTTPError(410, "Gone")
        if job.log is None:
            raise _HTTPError(404)
        sig = secrets.token_urlsafe(24)
        expires = time.time() + self.signed_url_ttl
        self._signed[sig] = (job.id, expires)
        loc = (
            f"http://{self.blob_host}:{self.port}/_signed/logs/{job.id}"
            f"?{urlencode({'sig': sig, 'expires': str(int(expires)), 'sp': 'r'})}"
        )
        return 302, None, [("Location", loc)]

    def _r_run_artifacts(self, ctx: _Ctx, owner: str, name: str, run_id: str) -> Any:
        run = self._run(ctx, owner, name, run_id)
        wanted = ctx.query.get("name")
        items = [a for a in run.artifacts if wanted is None or a.name == wanted]
        base = ctx.base + self.prefix
        return self._paginated(ctx, items, lambda a: a.payload(base), "artifacts")

    def _r_artifact_zip(self, ctx: _Ctx, owner: str, name: str, artifact_id: str) -> Any:
        repo = self._repo(ctx, owner, name)
        artifact = self._artifacts.get(int(artifact_id))
        if artifact is None or artifact.run.repo is not repo:
            raise _HTTPError(404)
        if artifact.expired:
            raise _HTTPError(410, "Artifact has expired")
        sig = secrets.token_urlsafe(24)
        expires = time.time() + self.signed_url_ttl
        self._signed_artifacts[sig] = (artifact.id, expires)
        loc = (
            f"http://{self.blob_host}:{self.port}/_signed/artifacts/{artifact.id}"
            f"?{urlencode({'sig': sig, 'expires': str(int(expires)), 'sp': 'r'})}"
        )
        return 302, None, [("Location", loc)]

    def _r_annotations(self, ctx: _Ctx, owner: str, name: str, job_id: str) -> Any:
        job = self._job(ctx, owner, name, job_id)
        return self._paginated(ctx, job.annotation_payloads(), lambda a: a)

    # ---- signed log URLs (the "blob host")
    def _signed_response(self, ctx: _Ctx, rec: RecordedRequest) -> _Resp:
        if "authorization" in ctx.headers:
            with self.lock:
                self.log_auth_leaks.append(rec)
        m = re.match(r"^/_signed/logs/(\d+)$", ctx.path)
        entry = self._signed.get(ctx.query.get("sig", ""))
        xml = b'<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code>'
        denied = _Resp(403, xml + b"<Message>Signature not valid.</Message></Error>")
        denied.headers = [("Content-Type", "application/xml")]
        denied.counted = False
        art = re.match(r"^/_signed/artifacts/(\d+)$", ctx.path)
        if art is not None:
            granted = self._signed_artifacts.get(ctx.query.get("sig", ""))
            if granted is None or granted[0] != int(art.group(1)):
                return denied
            if time.time() > granted[1]:
                denied.body = xml + b"<Message>Signed expiry time has passed.</Message></Error>"
                return denied
            artifact = self._artifacts.get(granted[0])
            if artifact is None:
                return _Resp(404, b"", counted=False)
            hdrs = [("Content-Type", "application/zip")]
            return _Resp(200, artifact.data, hdrs, counted=False)
        if m is None or entry is None or entry[0] != int(m.group(1)):
            return denied
        if time.time() > entry[1]:
            denied.body = xml + b"<Message>Signed expiry time has passed.</Message></Error>"
            return denied
        job = None
        with self.lock:
            for repo in self.repos.values():
                job = repo.get_job(entry[0]) or job
        if job is None or job.log is None:
            return _Resp(404, b"", counted=False)
        log = job.log
        hdrs = [("Content-Type", "application/octet-stream")]
        if isinstance(log, str):
            log = log.encode()
        if isinstance(log, bytes | bytearray | memoryview):
            return _Resp(200, bytes(log), hdrs, counted=False)
        stream = log() if callable(log) else log
        return _Resp(200, b"", hdrs, counted=False, stream=stream, length=job.log_size)

    # ---- sending
    def _send(self, h: _Handler, resp: _Resp, truncate: bool) -> None:
        try:
            if resp.drop:
                _kill(h)
                return
            h.send_response(resp.status)
            for k, v in resp.headers:
                h.send_header(k, v)
            if resp.stream is None:
                body = resp.body
                h.send_header("Content-Length", str(len(body)))
                h.end_headers()
                if truncate:
                    h.wfile.write(body[: len(body) // 2])
                    _kill(h)
                elif body and h.command != "HEAD":
                    h.wfile.write(body)
                return
            self._send_stream(h, resp, truncate)
        except OSError:
            h.close_connection = True

    def _send_stream(self, h: _Handler, resp: _Resp, truncate: bool) -> None:
        assert resp.stream is not None
        chunked = resp.length is None
        if chunked:
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header("Content-Length", str(resp.length))
        h.end_headers()
        budget = None
        if truncate:  # half of a known length; else just the first chunk
            budget = resp.length // 2 if resp.length is not None else 1
        sent = 0
        for part in _rechunk(resp.stream):
            if budget is not None and not chunked:
                part = part[: budget - sent]
            if part:
                h.wfile.write(b"%X\r\n%s\r\n" % (len(part), part) if chunked else part)
                sent += len(part)
            if budget is not None and sent >= budget:
                _kill(h)
                return
        if chunked:
            h.wfile.write(b"0\r\n\r\n")


def _rechunk(stream: Iterable[bytes]) -> Iterator[bytes]:
    """Coalesce/split a log's pieces into ~64 KiB writes."""
    buf = bytearray()
    for piece in stream:
        buf += piece
        while len(buf) >= _CHUNK:
            yield bytes(buf[:_CHUNK])
            del buf[:_CHUNK]
    if buf:
        yield bytes(buf)


def _etag_match(header: str, tag: str) -> bool:
    want = tag.removeprefix("W/")
    return any(t.strip().removeprefix("W/") in (want, "*") for t in header.split(","))


def _kill(h: _Handler) -> None:
    h.close_connection = True
    try:
        h.wfile.flush()
        h.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


# --------------------------------------------------------------------------- fixture


if pytest is not None:

    @pytest.fixture
    def ghserver() -> Iterator[FakeGitHub]:
        """A started :class:`FakeGitHub` (prefix ``/api/v3``), stopped after the test."""
        with FakeGitHub() as server:
            yield server


# --------------------------------------------------------------------------- demo


def build_demo(server: FakeGitHub, now: datetime | None = None, seed: int = 7) -> Repo:
    """``octo/demo``: ~40 runs over the 2 days before ``now`` with successes,
    failures with realistic logs, a cancellation, a timed-out job (reported
    ``cancelled`` + annotation), skipped jobs, a re-run with a carried-over
    job, an expired log, and an in-progress run."""
    rnd = random.Random(seed)
    now = utc(now or datetime.now(UTC))
    repo = server.add_repo("octo/demo", org="octo")
    server.add_repo("octo/old-stuff", org="octo", archived=True)
    ci = repo.add_workflow("CI", ".github/workflows/ci.yml")
    nightly = repo.add_workflow("Nightly", ".github/workflows/nightly.yml")
    t0 = now - timedelta(days=2)

    def job(
        run: Run, name: str, conclusion: str | None, start: datetime, secs: float, **kw: Any
    ) -> Job:
        extra = kw.pop("extra", [])
        steps: list[Any] = [
            ("Set up job", "success"),
            ("Run actions/checkout@v4", "success"),
            (f"Run {name}", conclusion, extra),
            ("Complete job", "success"),
        ]
        if conclusion == "skipped":
            return run.add_job(
                name,
                conclusion="skipped",
                created_at=start,
                started_at=start,
                completed_at=start,
                steps=[],
                **kw,
            )
        j = run.add_job(
            name,
            conclusion=conclusion,
            created_at=start,
            started_at=start + timedelta(seconds=rnd.randint(2, 40)),
            steps=[s[:2] for s in steps],
            duration=secs,
            **kw,
        )
        j.log = make_log(j.started_at or start, steps, runner_name=j.runner_name or "")
        return j

    for i in range(36):
        created = t0 + timedelta(minutes=80 * i + rnd.randint(0, 20))
        branch = "main" if i % 3 else f"feature/x{i}"
        event = "push" if branch == "main" else "pull_request"
        kind = "ok"
        if i in (5, 17, 29):
            kind = "fail"
        elif i == 11:
            kind = "cancel"
        elif i == 23:
            kind = "timeout"
        concl = {"ok": "success", "fail": "failure", "cancel": "cancelled", "timeout": "failure"}[
            kind
        ]
        run = repo.add_run(
            ci,
            created,
            branch=branch,
            event=event,
            conclusion=concl,
            actor=rnd.choice(["octocat", "hubot", "dependabot[bot]"]),
        )
        t = created + timedelta(seconds=3)
        job(run, "lint", "success", t, rnd.randint(20, 60))
        if kind == "fail":
            job(
                run,
                "test (ubuntu-latest)",
                "failure",
                t,
                rnd.randint(120, 300),
                extra=[
                    "============ FAILURES ============",
                    "FAILED tests/test_api.py::test_retry - AssertionError: assert 3 == 2",
                    "==== 1 failed, 211 passed in 41.20s ====",
                ],
                annotations=[{"message": "Process completed with exit code 1.", "title": ""}],
            )
        elif kind == "timeout":
            job(
                run,
                "test (ubuntu-latest)",
                "cancelled",
                t,
                600,
                extra=["##[error]The operation was canceled."],
                annotations=[
                    {
                        "message": "The job running on runner GitHub Actions 7 has exceeded the "
                        "maximum execution time of 10 minutes.",
                        "title": "",
                    }
                ],
            )
        elif kind == "cancel":
            job(run, "test (ubuntu-latest)", "cancelled", t, 30)
        else:
            job(run, "test (ubuntu-latest)", "success", t, rnd.randint(120, 300))
        job(
            run,
            "test (windows-latest)",
            "cancelled" if kind == "cancel" else "success",
            t,
            rnd.randint(200, 400),
            labels=["windows-latest"],
        )
        deploy = "success" if branch == "main" and kind == "ok" else "skipped"
        job(run, "deploy", deploy, t + timedelta(minutes=8), 45)
        if i == 17:  # re-run of the failed test job; the rest is carried over
            t2 = created + timedelta(minutes=30)
            run.run_started_at = t2
            for j in list(run.jobs):
                if j.name != "test (ubuntu-latest)":
                    run.carry_job(j, 2)
            job(run, "test (ubuntu-latest)", "success", t2, 200, attempt=2)
            run.conclusion = "success"
        if i == 0:
            run.jobs[0].log_expired = True
    for d in range(2):
        created = t0 + timedelta(days=d, hours=3)
        run = repo.add_run(nightly, created, event="schedule", conclusion="success")
        job(
            run,
            "benchmarks",
            "success",
            created + timedelta(seconds=5),
            900,
            labels=["self-hosted", "linux"],
        )
    live = repo.add_run(ci, now - timedelta(minutes=2), status="in_progress")
    job(live, "lint", "success", live.created_at, 30)
    live.add_job("test (ubuntu-latest)", status="in_progress", created_at=live.created_at)
    live.add_job("deploy", status="queued", created_at=live.created_at)
    return repo


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Local GitHub-compatible REST server")
    ap.add_argument("--port", type=int, default=8099)
    ap.add_argument("--prefix", default="/api/v3")
    ap.add_argument("--demo", action="store_true", help="serve the octo/demo repository")
    ap.add_argument("--token", help="require this token")
    args = ap.parse_args(argv)
    server = FakeGitHub(prefix=args.prefix)
    server.required_token = args.token
    if args.demo:
        build_demo(server)
    server.start(args.port)
    print(f"GITHUB_API_URL={server.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
