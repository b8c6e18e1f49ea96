"""The GitHub endpoints multivac reads, as model dataclasses: runs, jobs, logs,
annotations, repositories, workflows and the rate limit."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from multivac.config import GitHubSettings
from multivac.errors import GitHubError, LogPending
from multivac.github.governor import Budget, Governor
from multivac.github.parse import header, integer, job_from_json, run_from_json, text
from multivac.github.transport import PER_PAGE, HTTPFailure, ResponseCache, Transport
from multivac.model import Job, Run
from multivac.retry import Notify, OutageStop, RetryPolicy
from multivac.testresults.artifacts import ArtifactRef, artifacts_from_payload

T = TypeVar("T")

RUN_CAP = 1000  # a filtered run listing shows at most this many runs
EARLIEST = datetime(2018, 1, 1, tzinfo=UTC)  # before GitHub Actions existed


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _wrap(failure: HTTPFailure, what: str, *, token: bool = True, url: str = "") -> GitHubError:
    """A final failure as one sentence for the user (`token`: whether one was sent;
    `url`: the API's, named when it cannot be reached)."""
    error = _sentence(failure, what, token=token, url=url)
    error.status = failure.status
    return error


def _sentence(failure: HTTPFailure, what: str, *, token: bool, url: str) -> GitHubError:
    message = failure.message
    if failure.status == 401 and not token:
        return GitHubError(
            f"GitHub wants a token to read {what} (401 {message}); set GITHUB_TOKEN."
        )
    if failure.status == 401:
        return GitHubError(
            f"GitHub rejected the token while reading {what} (401 {message}); check GITHUB_TOKEN."
        )
    if failure.status == 404 and not token:
        return GitHubError(
            f"{what}: not found on GitHub (404); it does not exist, or it is private and "
            "GITHUB_TOKEN is not set."
        )
    if failure.status == 404:
        return GitHubError(
            f"{what}: not found on GitHub (404); it does not exist or the token cannot see it."
        )
    if failure.status == 403:
        return GitHubError(f"GitHub refused access to {what} (403 {message}).")
    if failure.malformed:
        return GitHubError(
            f"GitHub sent {message} for {what}; check GITHUB_API_URL "
            "(GitHub Enterprise: https://HOST/api/v3) and any proxy in between."
        )
    if failure.status is None:
        where = f" at {url}" if url else ""
        return GitHubError(
            f"cannot reach GitHub{where} for {what} ({message}); check GITHUB_API_URL and "
            "the network."
        )
    return GitHubError(f"GitHub answered HTTP {failure.status} for {what}: {message}")


class GitHubSource:
    """Runs, jobs, logs and annotations of repositories: the `Source` of a gather."""

    def __init__(
        self,
        settings: GitHubSettings,
        *,
        policy: RetryPolicy | None = None,
        notify: Notify | None = None,
        cache: ResponseCache | None = None,
        concurrency: int = 4,
    ) -> None:
        self.settings = settings
        self.policy = policy or RetryPolicy()
        self.notify: Notify = notify or (lambda _message: None)
        self.governor = Governor(self.policy, concurrency=concurrency, notify=self.notify)
        self.transport = Transport(
            settings, self.governor.call, timeout_s=self.policy.timeout_s, cache=cache
        )
        self.truncated_windows: list[str] = []

    def _wrap(self, failure: HTTPFailure, what: str) -> GitHubError:
        return _wrap(failure, what, token=bool(self.settings.token), url=self.settings.api_url)

    def summary(self) -> str:
        """Requests and budget, for the end-of-gather line."""
        return self.governor.budget_line(self.transport.not_modified)

    def _items(
        self, kind: str, url: str, params: dict[str, Any], key: str | None
    ) -> Iterator[dict[str, Any]]:
        for items, _total in self.transport.pages(kind, url, params, key):
            yield from items

    # ------------------------------------------------------------------ repositories

    def check_repo(self, repo: str) -> str:
        """The repository's name as GitHub spells it: names are case-insensitive, and
        `OCTO/Hello` and `octo/hello` must not become two series."""
        try:
            _headers, data = self.transport.get("repo", f"/repos/{repo}")
        except HTTPFailure as failure:
            raise self._wrap(failure, f"repository {repo}") from None
        name = data.get("full_name") if isinstance(data, dict) else None
        # a renamed repository answers under its new name: that one keeps the name given
        return name if isinstance(name, str) and name.lower() == repo.lower() else repo

    def org_repos(self, org: str) -> list[str]:
        """Non-archived repositories of an organisation (or user), sorted by name."""
        for base in (f"/orgs/{org}/repos", f"/users/{org}/repos"):
            try:
                return sorted(
                    {
                        text(item.get("full_name"))
                        for item in self._items("repos", base, {"per_page": PER_PAGE}, None)
                        if not item.get("archived") and item.get("full_name")
                    }
                )
            except HTTPFailure as failure:
                if failure.status == 404 and base.startswith("/orgs/"):
                    continue
                raise self._wrap(failure, f"repositories of {org}") from None
        return []

    def workflow_ids(self, repo: str, wanted: list[str]) -> list[tuple[int, str]]:
        """Resolve workflow file names (`ci.yml`, `.github/workflows/ci.yml`) or names."""
        try:
            known = list(
                self._items(
                    "workflows",
                    f"/repos/{repo}/actions/workflows",
                    {"per_page": PER_PAGE},
                    "workflows",
                )
            )
        except HTTPFailure as failure:
            raise self._wrap(failure, f"workflows of {repo}") from None
        found: list[tuple[int, str]] = []
        for name in wanted:
            lowered = name.strip().lower()
            match = [
                w
                for w in known
                if lowered
                in (
                    text(w.get("path")).lower(),
                    text(w.get("path")).rsplit("/", 1)[-1].lower(),
                    text(w.get("name")).lower(),
                    text(w.get("id")),
                )
            ]
            if not match:
                names = ", ".join(sorted(text(w.get("path")).rsplit("/", 1)[-1] for w in known))
                raise GitHubError(
                    f"{repo} has no workflow named {name!r}"
                    + (f" (it has: {names})." if names else ".")
                )
            found.extend((integer(w.get("id")), text(w.get("name"))) for w in match)
        return list(dict.fromkeys(found))

    # ------------------------------------------------------------------ runs

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
        """Completed runs created in [since, until], newest first, each once.

        With `latest`, only the newest `latest` runs (over all listings) are given.
        """
        seen: set[int] = set()
        paths = [f"/repos/{repo}/actions/workflows/{w}/runs" for w in workflows or []] or [
            f"/repos/{repo}/actions/runs"
        ]
        wanted: list[str | None] = list(branches) if branches else [None]
        listings = [(path, branch) for path in paths for branch in wanted]
        collected: list[Run] = []
        for path, branch in listings:
            params: dict[str, Any] = {"status": "completed"}
            if branch:
                params["branch"] = branch
            if event:
                params["event"] = event
            taken = 0
            try:
                for data in self._runs_between(repo, path, params, since or EARLIEST, until):
                    run = run_from_json(repo, data)
                    if run.id in seen or run.status != "completed":
                        continue
                    seen.add(run.id)
                    if len(listings) > 1 and latest is not None:
                        collected.append(run)
                    else:
                        yield run
                    taken += 1
                    if latest is not None and taken >= latest:
                        break
            except HTTPFailure as failure:
                raise self._wrap(failure, f"workflow runs of {repo}") from None
        if collected:
            far = datetime.min.replace(tzinfo=UTC)
            collected.sort(key=lambda r: (r.created_at or far, r.id), reverse=True)
            yield from collected[: latest or len(collected)]

    def _runs_between(
        self, repo: str, path: str, params: dict[str, Any], since: datetime, until: datetime
    ) -> Iterator[dict[str, Any]]:
        query = {**params, "created": f"{_iso(since)}..{_iso(until)}", "per_page": PER_PAGE}
        pages = self.transport.pages("runs", path, query, "workflow_runs")
        first = next(pages, None)
        if first is None:
            return
        items, total = first
        span = (until - since).total_seconds()
        if total is not None and total > RUN_CAP and span >= 1:
            pages.close()
            # split into parts expected to hold ~900 runs each, newest part first
            parts = max(2, min(64, math.ceil(total / (RUN_CAP * 0.9))))
            step = max(1.0, math.floor(span / parts))
            bounds: list[tuple[datetime, datetime]] = []
            start = since
            while start <= until:
                end = min(until, start + timedelta(seconds=step - 1))
                if (until - end).total_seconds() < step / 2:
                    end = until
                bounds.append((start, end))
                start = end + timedelta(seconds=1)
            for lower, upper in reversed(bounds):
                yield from self._runs_between(repo, path, params, lower, upper)
            return
        if total is not None and total > RUN_CAP:
            lost = f"{repo}: {total} runs created at {_iso(since)}; GitHub lists only {RUN_CAP}"
            self.truncated_windows.append(lost)
            self.notify(lost)
        yield from items
        for items, _ in pages:
            yield from items

    # ------------------------------------------------------------------ jobs

    def jobs(self, repo: str, run_id: int) -> list[Job] | None:
        """Every attempt's jobs of a run, each job id once; None when the run is gone."""
        found: dict[int, Job] = {}
        try:
            for data in self._items(
                "jobs",
                f"/repos/{repo}/actions/runs/{run_id}/jobs",
                {"filter": "all", "per_page": PER_PAGE},
                "jobs",
            ):
                job = job_from_json(data)
                # a job carried into a later attempt is listed again under it
                found.setdefault(job.id, job)
        except HTTPFailure as failure:
            if failure.status in (404, 410):
                return None
            raise self._wrap(failure, f"jobs of run {run_id} in {repo}") from None
        return list(found.values())

    # ------------------------------------------------------------------ logs

    def read_log(self, repo: str, job_id: int, consume: Callable[[Iterator[bytes]], T]) -> T | None:
        """`consume(chunks)` over the job's log, started again from the top when the
        download breaks off. None when GitHub says the log is gone (404 or 410).

        Raises LogPending when the log host kept failing past --max-wait, GitHubError
        when GitHub refuses the log, OutageStop when the API itself is down too long.
        """
        return self._read_blob(
            f"/repos/{repo}/actions/jobs/{job_id}/logs",
            f"the log of job {job_id} in {repo}",
            consume,
            "log_downloads",
        )

    def _read_blob(
        self, path: str, what: str, consume: Callable[[Iterator[bytes]], T], counter: str
    ) -> T | None:
        """`consume` over a file the API redirects to the blob host (a log, an artifact
        zip), started again from the top when the download breaks off; None when GitHub
        says it is gone (404, 410). The token never goes to the blob host."""
        failures = 0
        while True:
            try:
                url = self.transport.log_location(path)
            except HTTPFailure as failure:
                if failure.status in (404, 410):
                    return None
                raise self._wrap(failure, what) from None
            try:
                stats = self.governor.stats
                with stats.lock:
                    setattr(stats, counter, getattr(stats, counter) + 1)
                # a GitHub-compatible server may answer with the log itself
                blocks = iter((url,)) if isinstance(url, bytes) else self.transport.open_blob(url)
                result = consume(blocks)
            except HTTPFailure as failure:
                if failure.status in (404, 410):
                    return None
                # a 403 from the blob host is a signed URL that expired before it was used
                # (it lives a minute): the next try asks the API for a new one
                if not failure.transient and failure.status not in (401, 403):
                    raise GitHubError(
                        f"the log host answered HTTP {failure.status} for {what}."
                    ) from None
                failures += 1
                try:
                    # each try asks the API for a new signed URL: the old one expires
                    self.governor.log_host.failed(failures, what, failure.why)
                except OutageStop as stop:
                    raise LogPending(str(stop)) from None
                continue
            self.governor.log_host.succeeded()
            return result

    # ------------------------------------------------------------------ artifacts

    def artifacts(self, repo: str, run_id: int) -> list[ArtifactRef]:
        """The artifacts of a run (every attempt's), expired ones included; [] when the
        run is gone."""
        try:
            items = list(
                self._items(
                    "artifacts",
                    f"/repos/{repo}/actions/runs/{run_id}/artifacts",
                    {"per_page": PER_PAGE},
                    "artifacts",
                )
            )
        except HTTPFailure as failure:
            if failure.status in (404, 410):
                return []
            raise self._wrap(failure, f"artifacts of run {run_id} in {repo}") from None
        return artifacts_from_payload({"artifacts": items})

    def read_artifact(
        self, repo: str, artifact_id: int, consume: Callable[[Iterator[bytes]], T]
    ) -> T | None:
        """`consume` over an artifact's zip (through the 302 to the blob host, like a
        log); None when it expired (410) or is gone. Raises like `read_log`."""
        return self._read_blob(
            f"/repos/{repo}/actions/artifacts/{artifact_id}/zip",
            f"artifact {artifact_id} of {repo}",
            consume,
            "artifact_downloads",
        )

    def annotations(self, repo: str, job_id: int) -> list[str]:
        """Messages of the job's check-run annotations (a job id is its check-run id)."""
        try:
            return [
                text(item.get("message"))
                for item in self._items(
                    "annotations",
                    f"/repos/{repo}/check-runs/{job_id}/annotations",
                    {"per_page": PER_PAGE},
                    None,
                )
                if item.get("message")
            ]
        except HTTPFailure as failure:
            if failure.status in (403, 404, 410):
                return []
            raise self._wrap(failure, f"annotations of job {job_id} in {repo}") from None

    # ------------------------------------------------------------------ doctor

    def rate_limit(self) -> tuple[Budget, str | None]:
        """The core budget (GET /rate_limit is free) and the token's OAuth scopes, if any."""
        try:
            headers, data = self.transport.get("rate_limit", "/rate_limit")
        except HTTPFailure as failure:
            raise self._wrap(failure, "rate limit") from None
        core: dict[str, Any] = {}
        if isinstance(data, dict):
            resources = data.get("resources")
            if isinstance(resources, dict) and isinstance(resources.get("core"), dict):
                core = resources["core"]
            elif isinstance(data.get("rate"), dict):
                core = data["rate"]
        budget = Budget(
            limit=integer(core.get("limit"), 0) or None,
            remaining=integer(core.get("remaining"), 0) if "remaining" in core else None,
            reset=float(integer(core.get("reset"), 0)) or None,
        )
        return budget, header(headers, "x-oauth-scopes")

    def can_read_actions(self, repo: str) -> int:
        """Total workflow runs of a repository (proves Actions read access)."""
        try:
            _headers, data = self.transport.get(
                "runs", f"/repos/{repo}/actions/runs", {"per_page": 1}
            )
        except HTTPFailure as failure:
            raise self._wrap(failure, f"workflow runs of {repo}") from None
        total = data.get("total_count") if isinstance(data, dict) else None
        return total if isinstance(total, int) else 0
