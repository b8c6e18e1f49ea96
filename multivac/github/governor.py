"""How fast and how often to ask GitHub: the primary budget, pacing, secondary-limit
concurrency cuts, and the retry decision for every request.

- Primary limit: full speed while the budget lasts; when it runs low and the reset is
  within --max-wait, what is left is spread until the reset; at zero, wait for the reset
  (or stop with `RateLimitStop`) before sending a request that could only earn a 403.
- Secondary limit: honour `retry-after`, else wait `secondary_wait` and double, and halve
  the number of concurrent requests.
- 5xx and dropped connections: the one retry policy (`multivac.retry`), bounded by time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from multivac.errors import GitHubError, RateLimitStop
from multivac.github.parse import header, integer
from multivac.github.transport import Headers, HTTPFailure
from multivac.retry import Notify, Outage, RetryPolicy

T = TypeVar("T")


@dataclass
class Budget:
    """What GitHub's x-ratelimit-* headers said last."""

    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None


@dataclass
class RequestStats:
    requests: int = 0  # API requests sent, retries included
    log_downloads: int = 0
    artifact_downloads: int = 0
    budget: Budget = field(default_factory=Budget)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


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


class Governor:
    """Runs every GitHub request under the budget, the limiter and the retry policy."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        concurrency: int = 4,
        notify: Notify | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.policy = policy
        self.notify: Notify = notify or (lambda _message: None)
        self.stats = RequestStats()
        self.limiter = Limiter(concurrency)
        self.api = Outage("GitHub", policy, notify=self.notify, sleep=sleep)
        self.log_host = Outage("GitHub's log storage", policy, notify=self.notify, sleep=sleep)
        self._limits = Outage("GitHub's rate limit", policy, sleep=sleep)  # waits only
        self._pace_lock = threading.Lock()

    @property
    def retries(self) -> int:
        return self.api.retries + self.log_host.retries + self._limits.retries

    @property
    def waited_s(self) -> float:
        return self.api.waited_s + self.log_host.waited_s + self._limits.waited_s

    # ------------------------------------------------------------------ one request

    def call(self, what: str, send: Callable[[], tuple[Headers, T]]) -> tuple[Headers, T]:
        """One API request (`what` names it in errors) under the policy."""
        failures = 0
        secondary = 0
        secondary_waited = 0.0
        while True:
            self._pace()
            with self.stats.lock:
                self.stats.requests += 1
            try:
                with self.limiter:
                    headers, data = send()
            except HTTPFailure as failure:
                self.note_budget(failure.headers)
                if failure.rate_limited:
                    if failure.primary and failure.header("retry-after") is None:
                        self._wait_for_reset(failure)
                        continue
                    secondary += 1
                    secondary_waited += self._secondary(failure, secondary, secondary_waited)
                    continue
                if failure.transient:
                    failures += 1
                    self.api.failed(failures, what, failure.why)
                    continue
                raise
            self.api.succeeded()
            self.note_budget(headers)
            return headers, data

    def _secondary(self, failure: HTTPFailure, count: int, waited: float) -> float:
        retry_after = failure.header("retry-after")
        if retry_after and retry_after.strip().isdigit():
            wait = float(retry_after)
        else:
            wait = self.policy.secondary_wait_s * 2 ** (count - 1)
        if waited + wait > self.policy.max_wait_s:
            raise GitHubError(
                f"GitHub kept answering with its secondary rate limit for {waited:.0f}s, past "
                f"--max-wait {self.policy.max_wait_s:.0f}s: {failure.message}"
            )
        width = self.limiter.shrink()
        self.notify(
            f"GitHub secondary rate limit; waiting {wait:.0f}s, then {width} request(s) at a time."
        )
        self._limits.pause(wait, retry=True)
        return wait

    # ------------------------------------------------------------------ the primary budget

    def note_budget(self, headers: Headers | None) -> None:
        remaining = header(headers, "x-ratelimit-remaining")
        if remaining is None:
            return
        budget = self.stats.budget
        with self.stats.lock:
            budget.remaining = integer(remaining)
            budget.limit = integer(header(headers, "x-ratelimit-limit"), budget.limit or 0) or None
            reset = header(headers, "x-ratelimit-reset")
            budget.reset = float(reset) if reset and reset.isdigit() else budget.reset

    def _pace(self) -> None:
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
        if budget.remaining > reserve or until_reset > self.policy.max_wait_s:
            return
        with self._pace_lock:
            self._limits.pause(min(until_reset / max(budget.remaining, 1), 30.0))

    def _wait_until(self, reset: float) -> None:
        wait = max(reset - time.time() + 1, 1.0)
        if wait > self.policy.max_wait_s:
            raise RateLimitStop(
                f"GitHub's API rate limit is used up until "
                f"{datetime.fromtimestamp(reset, UTC):%H:%M:%SZ}, "
                f"longer than --max-wait {self.policy.max_wait_s:.0f}s; stopping with what was "
                "gathered so far."
            )
        self.notify(f"GitHub rate limit reached; waiting {wait:.0f}s for it to reset.")
        self._limits.pause(wait)

    def _wait_for_reset(self, failure: HTTPFailure) -> None:
        reset = failure.header("x-ratelimit-reset")
        with self._pace_lock:
            self._wait_until(float(reset) if reset and reset.isdigit() else time.time() + 60)
            with self.stats.lock:
                self.stats.budget.remaining = None

    def budget_line(self, not_modified: int) -> str:
        """`N requests (...); API budget: ...` for the summary."""
        stats = self.stats
        line = f"{stats.requests} requests"
        if not_modified:
            line += f" ({not_modified} not modified)"
        if stats.log_downloads:
            line += f", {stats.log_downloads} log downloads"
        if stats.artifact_downloads:
            line += f", {stats.artifact_downloads} artifact downloads"
        budget = stats.budget
        if budget.remaining is not None:
            used = stats.requests - not_modified  # GitHub does not count a 304
            line += f"; API budget: {used} used, {budget.remaining} left"
            if budget.limit:
                line += f" of {budget.limit}"
        return line
