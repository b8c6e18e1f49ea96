"""The source stage: the only module that talks to GitHub.

Everything goes through PyGithub's requester (auth, base URL, timeouts, error types),
but with PyGithub's own retry and throttle switched off: the policy here decides how to
wait on rate limits, back off on server errors and pace by the remaining budget. Lists
are followed through their `Link` headers and turned into `model.py` dataclasses at
once, so no lazy PyGithub object (which fetches itself again when an attribute is
missing) ever leaves this module.
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urljoin, urlparse

import requests
from github import Auth, Github, GithubException

from multivac import __version__
from multivac.config import GitHubSettings, redact
from multivac.errors import GitHubError
from multivac.model import Job, Run, Step

RUN_CAP = 1000  # a filtered run listing shows at most this many runs
PER_PAGE = 100
EARLIEST = datetime(2018, 1, 1, tzinfo=UTC)  # before GitHub Actions existed
USER_AGENT = f"multivac/{__version__}"
# list pages that may be cached (all fetched from the calling thread)
CACHED_KINDS = frozenset({"runs", "workflows", "repos", "repo"})


class RateLimitStop(GitHubError):
    """The primary rate limit is exhausted and its reset is further away than --max-wait."""


class LogStreamError(GitHubError):
    """A log download broke off; the caller may start it again."""


@dataclass
class RetryPolicy:
    attempts: int = 6  # tries per request for 5xx and connection errors
    base: float = 1.0  # first backoff, doubled each time, with jitter
    cap: float = 60.0
    secondary_wait: float = 60.0  # when a secondary limit gives no retry-after
    max_wait: float = 900.0  # longest wait for a primary rate-limit reset
    timeout: float = 30.0


@dataclass
class Budget:
    """What GitHub's x-ratelimit-* headers said last."""

    limit: int | None = None
    remaining: int | None = None
    used: int | None = None
    reset: float | None = None
    first_remaining: int | None = None


@dataclass
class RequestStats:
    requests: int = 0  # API requests sent, retries included
    not_modified: int = 0  # answered 304 (not counted by GitHub)
    log_downloads: int = 0
    retries: int = 0
    waited_s: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)
    budget: Budget = field(default_factory=Budget)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, kind: str, not_modified: bool = False) -> None:
        with self.lock:
            self.requests += 1
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
            if not_modified:
                self.not_modified += 1


class Limiter:
    """At most `width` requests at once; halved (down to 1) on a secondary rate limit."""

    def __init__(self, width: int) -> None:
        self.width = max(1, width)
        self.active = 0
        self.cut = False
        self._cond = threading.Condition()

    def __enter__(self) -> None:
        with self._cond:
            while self.active >= self.width:
                self._cond.wait()
            self.active += 1

    def __exit__(self, *_exc: object) -> None:
        with self._cond:
            self.active -= 1
            self._cond.notify_all()

    def shrink(self) -> int:
        with self._cond:
            if self.width > 1:
                self.width //= 2
                self.cut = True
            return self.width


class ResponseCache(Protocol):
    """Remembers list pages by URL so that repeats can be conditional requests."""

    def get_page(self, key: str) -> tuple[str, Any] | None: ...

    def put_page(self, key: str, etag: str, data: Any) -> None: ...


Notify = Callable[[str], None]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def run_from_json(repo: str, data: dict[str, Any]) -> Run:
    return Run(
        id=_int(data.get("id")),
        repository=repo,
        workflow=_str(data.get("name")),
        workflow_path=_str(data.get("path")),
        run_attempt=_int(data.get("run_attempt"), 1) or 1,
        branch=_str(data.get("head_branch")),
        commit_sha=_str(data.get("head_sha")),
        event=_str(data.get("event")),
        status=_str(data.get("status")),
        conclusion=data.get("conclusion") if isinstance(data.get("conclusion"), str) else None,
        created_at=_parse_time(data.get("created_at")),
        updated_at=_parse_time(data.get("updated_at")),
        html_url=_str(data.get("html_url")),
    )


def job_from_json(data: dict[str, Any]) -> Job:
    steps = tuple(
        Step(
            number=_int(step.get("number")),
            name=_str(step.get("name")),
            conclusion=step.get("conclusion") if isinstance(step.get("conclusion"), str) else None,
        )
        for step in (data.get("steps") or [])
        if isinstance(step, dict)
    )
    labels = data.get("labels") or []
    return Job(
        id=_int(data.get("id")),
        run_id=_int(data.get("run_id")),
        run_attempt=_int(data.get("run_attempt"), 1) or 1,
        name=_str(data.get("name")),
        status=_str(data.get("status")),
        conclusion=data.get("conclusion") if isinstance(data.get("conclusion"), str) else None,
        created_at=_parse_time(data.get("created_at")),
        started_at=_parse_time(data.get("started_at")),
        completed_at=_parse_time(data.get("completed_at")),
        labels=tuple(_str(label) for label in labels if label),
        runner_name=_str(data.get("runner_name")),
        html_url=_str(data.get("html_url")),
        steps=steps,
        workflow=_str(data.get("workflow_name")),
        branch=_str(data.get("head_branch")),
        commit_sha=_str(data.get("head_sha")),
    )


_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?([a-z]+)"?')


def next_link(headers: dict[str, Any]) -> str | None:
    for url, rel in _LINK.findall(_str(headers.get("link"))):
        if rel == "next":
            return str(url)
    return None


def _message(exc: GithubException) -> str:
    data = exc.data
    if isinstance(data, dict) and data.get("message"):
        return _str(data["message"])
    return _str(exc.message) or f"HTTP {exc.status}"


def _header(headers: dict[str, Any] | None, name: str) -> str | None:
    if not headers:
        return None
    for key, value in headers.items():
        if str(key).lower() == name:
            return _str(value)
    return None


def _is_rate_limited(exc: GithubException) -> bool:
    if exc.status not in (403, 429):
        return False
    if exc.status == 429 or _header(exc.headers, "retry-after") is not None:
        return True
    if _header(exc.headers, "x-ratelimit-remaining") == "0":
        return True
    return "rate limit" in _message(exc).lower()


@dataclass(frozen=True)
class LogDownload:
    """An open log stream; `chunks()` yields raw bytes."""

    response: requests.Response

    def chunks(self, size: int = 1 << 16) -> Iterator[bytes]:
        try:
            yield from self.response.iter_content(chunk_size=size)
        except (requests.RequestException, OSError) as exc:
            raise LogStreamError(f"the log download broke off: {type(exc).__name__}") from None
        finally:
            self.response.close()


class GitHubSource:
    """Runs, jobs, logs and annotations of repositories, as model dataclasses."""

    def __init__(
        self,
        settings: GitHubSettings,
        *,
        policy: RetryPolicy | None = None,
        notify: Notify | None = None,
        cache: ResponseCache | None = None,
        stats: RequestStats | None = None,
        concurrency: int = 4,
    ) -> None:
        self.settings = settings
        self.limiter = Limiter(concurrency)
        self.policy = policy or RetryPolicy()
        self.notify: Notify = notify or (lambda _msg: None)
        self.cache = cache
        self.stats = stats or RequestStats()
        self.truncated_windows: list[str] = []
        self._local = threading.local()
        self._pace_lock = threading.Lock()
        self._blob = requests.Session()
        # a no-op auth keeps requests from adding ~/.netrc credentials: the signed log URL
        # must never see a credential
        self._blob.auth = lambda request: request
        self._blob.headers["User-Agent"] = USER_AGENT
        parsed = urlparse(settings.api_url)
        self._base = f"{parsed.scheme}://{parsed.netloc}"
        self._prefix = parsed.path.rstrip("/")

    # ------------------------------------------------------------------ plumbing

    def _client(self) -> Github:
        # PyGithub is not thread-safe: one client per thread
        client: Github | None = getattr(self._local, "client", None)
        if client is None:
            token = self.settings.token.reveal()
            client = Github(
                auth=Auth.Token(token) if token else None,
                base_url=self.settings.api_url,
                timeout=math.ceil(self.policy.timeout),
                user_agent=USER_AGENT,
                per_page=PER_PAGE,
                retry=None,
                seconds_between_requests=None,
                seconds_between_writes=None,
            )
            self._local.client = client
        return client

    def _relative(self, url: str) -> str:
        """A URL GitHub returned (Link, Location) as a path PyGithub accepts on base_url."""
        parsed = urlparse(url)
        path = parsed.path
        if self._prefix and path.startswith(self._prefix + "/"):
            path = path[len(self._prefix) :]
        return path + (f"?{parsed.query}" if parsed.query else "")

    def _note_budget(self, headers: dict[str, Any] | None) -> None:
        remaining = _header(headers, "x-ratelimit-remaining")
        if remaining is None:
            return
        budget = self.stats.budget
        with self.stats.lock:
            budget.remaining = _int(remaining)
            budget.limit = _int(_header(headers, "x-ratelimit-limit"), budget.limit or 0) or None
            budget.used = _int(_header(headers, "x-ratelimit-used"), budget.used or 0)
            reset = _header(headers, "x-ratelimit-reset")
            budget.reset = float(reset) if reset and reset.isdigit() else budget.reset
            if budget.first_remaining is None:
                budget.first_remaining = budget.remaining

    def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self.stats.lock:
            self.stats.waited_s += seconds
        time.sleep(seconds)

    def _pace(self) -> None:
        """Full speed while the budget lasts; once it runs low and the reset is within
        --max-wait, spread what is left until the reset; at zero, wait for the reset
        (or stop) before sending a request that could only earn a 403."""
        budget = self.stats.budget
        if budget.remaining is None or budget.reset is None or budget.limit is None:
            return
        until_reset = budget.reset - time.time()
        if until_reset <= 0:
            return
        if budget.remaining <= 0:
            with self._pace_lock:
                # another thread may have waited, or a newer answer arrived, meanwhile
                with self.stats.lock:
                    remaining, reset = budget.remaining, budget.reset
                if remaining is None or remaining > 0 or reset is None or reset <= time.time():
                    return
                self._wait_until(reset)
                with self.stats.lock:
                    budget.remaining = None  # unknown until the next answer
            return
        reserve = max(20, budget.limit // 50)
        if budget.remaining > reserve or until_reset > self.policy.max_wait:
            return
        with self._pace_lock:
            self._sleep(min(until_reset / max(budget.remaining, 1), 30.0))

    def _wait_until(self, reset: float) -> None:
        wait = max(reset - time.time() + 1, 1.0)
        if wait > self.policy.max_wait:
            raise RateLimitStop(
                f"GitHub's API rate limit is used up until "
                f"{datetime.fromtimestamp(reset, UTC):%H:%M:%SZ}, "
                f"longer than --max-wait {self.policy.max_wait:.0f}s; stopping with what was "
                "gathered so far."
            )
        self.notify(f"GitHub rate limit reached; waiting {wait:.0f}s for it to reset.")
        self._sleep(wait)

    def _wait_for_reset(self, exc: GithubException) -> None:
        reset = _header(exc.headers, "x-ratelimit-reset")
        with self._pace_lock:
            self._wait_until(float(reset) if reset and reset.isdigit() else time.time() + 60)
            with self.stats.lock:
                self.stats.budget.remaining = None

    def _call(self, kind: str, fn: Callable[[Github], tuple[dict[str, Any], Any]]) -> Any:
        """One API request under the retry policy; returns (headers, data)."""
        failures = 0
        secondary = 0
        while True:
            self._pace()
            try:
                self.stats.count(kind)
                with self.limiter:
                    headers, data = fn(self._client())
            except GithubException as exc:
                self._note_budget(exc.headers)
                if _is_rate_limited(exc):
                    primary = _header(exc.headers, "x-ratelimit-remaining") == "0"
                    retry_after = _header(exc.headers, "retry-after")
                    if primary and not retry_after:
                        self._wait_for_reset(exc)
                        continue
                    secondary += 1
                    if secondary > self.policy.attempts:
                        raise GitHubError(
                            f"GitHub kept answering with its secondary rate limit: {_message(exc)}"
                        ) from None
                    if retry_after and retry_after.strip().isdigit():
                        wait = float(retry_after)
                    else:
                        wait = self.policy.secondary_wait * 2 ** (secondary - 1)
                    width = self.limiter.shrink()
                    self.notify(
                        f"GitHub secondary rate limit; waiting {wait:.0f}s, "
                        f"then {width} request(s) at a time."
                    )
                    with self.stats.lock:
                        self.stats.retries += 1
                    self._sleep(wait)
                    continue
                if exc.status >= 500:
                    failures += 1
                    if failures >= self.policy.attempts:
                        raise GitHubError(
                            f"GitHub answered HTTP {exc.status} {failures} times in a row: "
                            f"{_message(exc)}"
                        ) from None
                    self._backoff(failures, f"HTTP {exc.status}")
                    continue
                raise
            except (requests.RequestException, OSError) as exc:
                failures += 1
                if failures >= self.policy.attempts:
                    raise GitHubError(
                        f"cannot reach GitHub at {self.settings.api_url} "
                        f"({type(exc).__name__}) after {failures} tries."
                    ) from None
                self._backoff(failures, type(exc).__name__)
                continue
            self._note_budget(headers)
            return headers, data

    def _backoff(self, failures: int, why: str) -> None:
        wait = min(self.policy.cap, self.policy.base * 2 ** (failures - 1))
        wait = wait / 2 + random.uniform(0, wait / 2)  # jitter keeps workers out of step
        with self.stats.lock:
            self.stats.retries += 1
        self.notify(f"GitHub request failed ({why}); retrying in {wait:.1f}s.")
        self._sleep(wait)

    def _get(self, kind: str, url: str, params: dict[str, Any] | None = None) -> tuple[Any, Any]:
        """GET a JSON page; run-list pages go through the ETag cache (main thread only)."""
        cache = self.cache if kind in CACHED_KINDS else None
        # the key leaves out the `created` window: a sliding window (--since 1d) that holds
        # the same runs gives the same body, hence the same ETag, so the cached body is
        # valid for the new URL too, and GitHub answers 304 without counting it
        query = "&".join(f"{k}={v}" for k, v in sorted((params or {}).items()) if k != "created")
        key = f"{url}?{query}" if query else url
        cached = cache.get_page(key) if cache is not None else None
        extra = {"If-None-Match": cached[0]} if cached else None

        def send(client: Github) -> tuple[dict[str, Any], Any]:
            result: tuple[dict[str, Any], Any] = client.requester.requestJsonAndCheck(
                "GET", url, parameters=params, headers=extra
            )
            return result

        headers, data = self._call(kind, send)
        if cached is not None and data is None:
            # 304 Not Modified: GitHub does not count it against the rate limit
            with self.stats.lock:
                self.stats.not_modified += 1
            body = cached[1]
            headers = {**headers, "link": body.get("link") or ""}
            return headers, body.get("data")
        etag = _header(headers, "etag")
        if cache is not None and etag:
            cache.put_page(key, etag, {"data": data, "link": _header(headers, "link") or ""})
        return headers, data

    def _pages(
        self, kind: str, url: str, params: dict[str, Any], key: str | None
    ) -> Generator[tuple[list[dict[str, Any]], int | None], None, None]:
        """Each page's items and total_count, following Link rel=next."""
        next_url: str | None = url
        next_params: dict[str, Any] | None = params
        while next_url:
            headers, data = self._get(kind, next_url, next_params)
            items: list[Any] = []
            total: int | None = None
            if key is None:
                items = data if isinstance(data, list) else []
            else:
                found = data.get(key) if isinstance(data, dict) else None
                items = found if isinstance(found, list) else []
                total_raw = data.get("total_count") if isinstance(data, dict) else None
                total = total_raw if isinstance(total_raw, int) else None
            yield [item for item in items if isinstance(item, dict)], total
            link = next_link(headers)
            if not link or not items:
                return
            next_url, next_params = self._relative(link), None

    def _wrap(self, exc: GithubException, what: str) -> GitHubError:
        message = redact(_message(exc))
        if exc.status == 401:
            return GitHubError(
                f"GitHub rejected the token while reading {what} (401 {message}); "
                "check GITHUB_TOKEN."
            )
        if exc.status == 404:
            return GitHubError(
                f"{what}: not found on GitHub (404); it does not exist or the token cannot see it."
            )
        if exc.status == 403:
            return GitHubError(f"GitHub refused access to {what} (403 {message}).")
        return GitHubError(f"GitHub answered HTTP {exc.status} for {what}: {message}")

    # ------------------------------------------------------------------ workflows

    def workflow_ids(self, repo: str, wanted: list[str]) -> list[tuple[int, str]]:
        """Resolve workflow file names (`ci.yml`, `.github/workflows/ci.yml`) or names."""
        known: list[dict[str, Any]] = []
        try:
            for items, _ in self._pages(
                "workflows", f"/repos/{repo}/actions/workflows", {"per_page": PER_PAGE}, "workflows"
            ):
                known.extend(items)
        except GithubException as exc:
            raise self._wrap(exc, f"workflows of {repo}") from None
        found: list[tuple[int, str]] = []
        for name in wanted:
            lowered = name.strip().lower()
            match = [
                w
                for w in known
                if lowered
                in (
                    _str(w.get("path")).lower(),
                    _str(w.get("path")).rsplit("/", 1)[-1].lower(),
                    _str(w.get("name")).lower(),
                    _str(w.get("id")),
                )
            ]
            if not match:
                names = ", ".join(sorted(_str(w.get("path")).rsplit("/", 1)[-1] for w in known))
                raise GitHubError(
                    f"{repo} has no workflow named {name!r}"
                    + (f" (it has: {names})." if names else ".")
                )
            found.extend((_int(w.get("id")), _str(w.get("name"))) for w in match)
        return list(dict.fromkeys(found))

    # ------------------------------------------------------------------ runs

    def check_repo(self, repo: str) -> None:
        try:
            self._get("repo", f"/repos/{repo}")
        except GithubException as exc:
            raise self._wrap(exc, f"repository {repo}") from None

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
            except GithubException as exc:
                raise self._wrap(exc, f"workflow runs of {repo}") from None
        if collected:
            far = datetime.min.replace(tzinfo=UTC)
            collected.sort(key=lambda r: (r.created_at or far, r.id), reverse=True)
            yield from collected[: latest or len(collected)]

    def _runs_between(
        self, repo: str, path: str, params: dict[str, Any], since: datetime, until: datetime
    ) -> Iterator[dict[str, Any]]:
        query = {**params, "created": f"{_iso(since)}..{_iso(until)}", "per_page": PER_PAGE}
        pages = self._pages("runs", path, query, "workflow_runs")
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
            for items, _ in self._pages(
                "jobs",
                f"/repos/{repo}/actions/runs/{run_id}/jobs",
                {"filter": "all", "per_page": PER_PAGE},
                "jobs",
            ):
                for data in items:
                    job = job_from_json(data)
                    # a job carried into a later attempt is listed again under it
                    found.setdefault(job.id, job)
        except GithubException as exc:
            if exc.status in (404, 410):
                return None
            raise self._wrap(exc, f"jobs of run {run_id} in {repo}") from None
        return list(found.values())

    # ------------------------------------------------------------------ logs

    def open_log(self, repo: str, job_id: int) -> LogDownload | None:
        """The job's log as a byte stream, or None when it expired or never existed."""

        def ask(client: Github) -> tuple[dict[str, Any], Any]:
            result: tuple[dict[str, Any], Any] = client.requester.requestBlobAndCheck(
                "GET", f"/repos/{repo}/actions/jobs/{job_id}/logs"
            )
            return result

        try:
            headers, _data = self._call("logs", ask)
        except GithubException as exc:
            if exc.status in (404, 410):
                return None
            raise self._wrap(exc, f"log of job {job_id} in {repo}") from None
        location = _header(headers, "location")
        if not location:
            return None
        url = urljoin(self.settings.api_url + "/", location)
        failures = 0
        while True:
            try:
                with self.stats.lock:
                    self.stats.log_downloads += 1
                response = self._blob.get(url, stream=True, timeout=(10, self.policy.timeout))
            except (requests.RequestException, OSError) as exc:
                failures += 1
                if failures >= self.policy.attempts:
                    raise LogStreamError(
                        f"cannot download the log of job {job_id} ({type(exc).__name__})."
                    ) from None
                self._backoff(failures, type(exc).__name__)
                continue
            if response.status_code in (404, 410):
                response.close()
                return None
            if response.status_code >= 500 and failures + 1 < self.policy.attempts:
                response.close()
                failures += 1
                self._backoff(failures, f"HTTP {response.status_code}")
                continue
            if response.status_code >= 400:
                response.close()
                raise LogStreamError(
                    f"the log host answered HTTP {response.status_code} for job {job_id}."
                )
            return LogDownload(response)

    def annotations(self, repo: str, job_id: int) -> list[str]:
        """Messages of the job's check-run annotations (a job id is its check-run id)."""
        messages: list[str] = []
        try:
            for items, _ in self._pages(
                "annotations",
                f"/repos/{repo}/check-runs/{job_id}/annotations",
                {"per_page": PER_PAGE},
                None,
            ):
                messages.extend(_str(item.get("message")) for item in items if item.get("message"))
        except GithubException as exc:
            if exc.status in (403, 404, 410):
                return []
            raise self._wrap(exc, f"annotations of job {job_id} in {repo}") from None
        return messages

    def rate_limit(self) -> tuple[Budget, str | None]:
        """The core budget (GET /rate_limit is free) and the token's OAuth scopes, if any."""
        try:
            headers, data = self._get("rate_limit", "/rate_limit")
        except GithubException as exc:
            raise self._wrap(exc, "rate limit") from None
        core = {}
        if isinstance(data, dict):
            resources = data.get("resources")
            if isinstance(resources, dict) and isinstance(resources.get("core"), dict):
                core = resources["core"]
            elif isinstance(data.get("rate"), dict):
                core = data["rate"]
        budget = Budget(
            limit=_int(core.get("limit"), 0) or None,
            remaining=_int(core.get("remaining"), 0) if "remaining" in core else None,
            used=_int(core.get("used"), 0),
            reset=float(_int(core.get("reset"), 0)) or None,
        )
        return budget, _header(headers, "x-oauth-scopes")

    def can_read_actions(self, repo: str) -> int:
        """Total workflow runs of a repository (proves Actions read access)."""
        try:
            _headers, data = self._get("runs", f"/repos/{repo}/actions/runs", {"per_page": 1})
        except GithubException as exc:
            raise self._wrap(exc, f"workflow runs of {repo}") from None
        total = data.get("total_count") if isinstance(data, dict) else None
        return total if isinstance(total, int) else 0

    def org_repos(self, org: str) -> list[str]:
        """Non-archived repositories of an organisation (or user), sorted by name."""
        names: list[str] = []
        for base in (f"/orgs/{org}/repos", f"/users/{org}/repos"):
            try:
                for items, _ in self._pages("repos", base, {"per_page": PER_PAGE}, None):
                    names.extend(
                        _str(item.get("full_name"))
                        for item in items
                        if not item.get("archived") and item.get("full_name")
                    )
                return sorted(set(names))
            except GithubException as exc:
                if exc.status == 404 and base.startswith("/orgs/"):
                    continue
                raise self._wrap(exc, f"repositories of {org}") from None
        return sorted(set(names))
