"""Test reports over stored results, defined once for `tests stats`, `tests last-seen`
and the HTML report. Every function takes `StoredTest`s (the store's failing results
of a window) and returns plain rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from multivac.model import Job, Run
from multivac.testresults.model import FLAKY
from multivac.testresults.store import StoredTest

__all__ = ["LastSeen", "TestCount", "count_failing", "last_seen", "log_url"]

_FAR = datetime.min.replace(tzinfo=UTC)


def _when(item: StoredTest) -> datetime | None:
    return item.job.created_at or item.run.created_at


def job_url(run: Run, job: Job) -> str:
    return job.html_url or run.html_url


def log_url(run: Run, job: Job) -> str:
    """The job's raw log on GitHub's web UI (`…/commit/<sha>/checks/<job id>/logs`), on
    the host of the job's page (GitHub Enterprise included)."""
    page = job_url(run, job)
    base = page.split("/actions/runs/", 1)[0] if "/actions/runs/" in page else ""
    if not base:
        base = f"https://github.com/{run.repository}"
    sha = run.commit_sha or job.commit_sha
    return f"{base}/commit/{sha}/checks/{job.id}/logs" if sha else page


@dataclass(frozen=True)
class TestCount:
    """One failing test over a window: how often it failed (failed, hung or flaky
    results), how many of those were flaky, first and last seen, the last job."""

    __test__ = False

    test: str
    framework: str
    failures: int
    flaky: int
    first_seen: datetime | None
    last_seen: datetime | None
    last_url: str
    last_message: str
    repository: str

    @property
    def flaky_share(self) -> float:
        return self.flaky / self.failures if self.failures else 0.0


def count_failing(items: Iterable[StoredTest]) -> list[TestCount]:
    """Failing tests by (repository, test, framework), most failures first."""
    groups: dict[tuple[str, str, str], list[StoredTest]] = defaultdict(list)
    for item in items:
        groups[(item.run.repository, item.result.test, item.result.framework)].append(item)
    counts = []
    for (repository, test, framework), members in groups.items():
        members.sort(key=lambda m: (_when(m) or _FAR, m.job.id))
        first, last = members[0], members[-1]
        counts.append(
            TestCount(
                test=test,
                framework=framework,
                failures=len(members),
                flaky=sum(1 for m in members if m.result.status == FLAKY),
                first_seen=_when(first),
                last_seen=_when(last),
                last_url=job_url(last.run, last.job),
                last_message=last.result.message,
                repository=repository,
            )
        )
    return sorted(counts, key=lambda c: (-c.failures, c.repository, c.test, c.framework))


@dataclass(frozen=True)
class LastSeen:
    """The original multivac's `last_seen` row: per test, configuration, status and
    runner label, when it was last seen, on which branch, how often, and where."""

    test: str
    configuration: str
    status: str
    runner_label: str
    last_seen: datetime | None
    branch: str
    count: int
    job_url: str
    log_url: str
    framework: str
    repository: str


def last_seen(items: Iterable[StoredTest]) -> list[LastSeen]:
    """Rows most recently seen first."""
    groups: dict[tuple[str, str, str, str, str, str], list[StoredTest]] = defaultdict(list)
    for item in items:
        key = (
            item.run.repository,
            item.result.test,
            item.result.configuration or "",
            item.result.status,
            ",".join(item.job.labels),
            item.result.framework,
        )
        groups[key].append(item)
    rows = []
    for (repository, test, configuration, status, label, framework), members in groups.items():
        last = max(members, key=lambda m: (_when(m) or _FAR, m.job.id))
        rows.append(
            LastSeen(
                test=test,
                configuration=configuration,
                status=status,
                runner_label=label,
                last_seen=_when(last),
                branch=last.run.branch or last.job.branch,
                count=len(members),
                job_url=job_url(last.run, last.job),
                log_url=log_url(last.run, last.job),
                framework=framework,
                repository=repository,
            )
        )
    return sorted(rows, key=lambda r: (-(r.last_seen or _FAR).timestamp(), r.test, r.status))
