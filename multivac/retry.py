"""The one retry policy: capped exponential backoff with jitter, bounded by time.

GitHub API calls, log downloads and InfluxDB writes all retry through an `Outage`: it
remembers when the current streak of failures of one service began, so the budget
(`--max-wait`) runs from the start of the outage, not from each request. Once a
service has been failing longer than the budget, every caller gives up at once instead
of each waiting a budget of its own. One success ends the streak and wakes the callers
still waiting out a backoff, so a gather goes on as soon as the service is back.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from multivac.errors import MultivacError

Clock = Callable[[], float]
Sleep = Callable[[float], None]
Notify = Callable[[str], None]


@dataclass(frozen=True)
class RetryPolicy:
    """Timings of the retry policy; `max_wait_s` is the `--max-wait` budget."""

    max_wait_s: float = 900.0
    base_s: float = 1.0  # first backoff, doubled each time, with jitter
    cap_s: float = 60.0  # longest single backoff
    secondary_wait_s: float = 60.0  # a secondary rate limit without retry-after
    timeout_s: float = 30.0  # every network call

    def delay(self, failures: int) -> float:
        """The wait before try `failures + 1`: doubling up to the cap, jittered so that
        workers that failed together do not retry together."""
        wait: float = min(self.cap_s, self.base_s * 2.0 ** max(failures - 1, 0))
        return wait / 2 + random.uniform(0, wait / 2)

    def bounded(self, seconds: float) -> RetryPolicy:
        """The same policy with a budget of at most `seconds`."""
        return RetryPolicy(
            max_wait_s=min(self.max_wait_s, seconds),
            base_s=self.base_s,
            cap_s=self.cap_s,
            secondary_wait_s=self.secondary_wait_s,
            timeout_s=self.timeout_s,
        )


class OutageStop(MultivacError):
    """A service kept failing for longer than the --max-wait budget."""

    exit_code = 1

    def __init__(self, service: str, what: str, why: str, waited_s: float, budget_s: float):
        super().__init__(
            f"{service} kept failing ({why}) for {what}: waited {waited_s:.0f}s, past "
            f"--max-wait {budget_s:.0f}s; stopping with what was gathered so far "
            "(run the same command again to complete it)."
        )
        self.service = service
        self.what = what
        self.waited_s = waited_s


class Outage:
    """Failure streak of one service, shared by all its callers (thread-safe)."""

    def __init__(
        self,
        service: str,
        policy: RetryPolicy,
        *,
        notify: Notify | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep | None = None,
    ) -> None:
        self.service = service
        self.policy = policy
        self.notify: Notify = notify or (lambda _message: None)
        self._clock = clock
        self._lock = threading.Lock()
        self._recovered = threading.Condition(self._lock)
        self._recoveries = 0
        self._sleep = sleep or self._sleep_until_recovered
        self._pause = sleep or time.sleep  # a wait GitHub asked for is waited in full
        self._since: float | None = None
        self.retries = 0
        self.waited_s = 0.0

    def succeeded(self) -> None:
        with self._lock:
            if self._since is not None:
                self._since = None
                self._recoveries += 1
                # the service is back: requests waiting out their backoff try again now
                self._recovered.notify_all()

    def _sleep_until_recovered(self, seconds: float) -> None:
        with self._lock:
            seen = self._recoveries
            self._recovered.wait_for(lambda: self._recoveries != seen, timeout=seconds)

    def failed(self, failures: int, what: str, why: str) -> None:
        """Wait before the next try of a request that failed `failures` times in a row;
        raise OutageStop when the outage has outlasted the budget."""
        now = self._clock()
        with self._lock:
            if self._since is None:
                self._since = now
            since = self._since
        waited = now - since
        budget = self.policy.max_wait_s
        if waited >= budget:
            raise OutageStop(self.service, what, why, waited, budget)
        # never sleep past the budget: the last try comes right at its end
        wait = min(self.policy.delay(failures), budget - waited)
        with self._lock:
            self.retries += 1
            self.waited_s += wait
        self.notify(f"{self.service} request failed ({why}); retrying in {wait:.1f}s.")
        self._sleep(wait)

    def pause(self, seconds: float, *, retry: bool = False) -> None:
        """Wait a time the service asked for (rate limits), counted as waited."""
        if seconds <= 0:
            return
        with self._lock:
            self.waited_s += seconds
            self.retries += int(retry)
        self._pause(seconds)
