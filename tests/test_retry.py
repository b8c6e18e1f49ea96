"""The one retry policy: capped exponential backoff with jitter, bounded by time."""

from __future__ import annotations

import pytest

from multivac.retry import Outage, OutageStop, RetryPolicy


class FakeTime:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def outage(policy: RetryPolicy, time: FakeTime) -> Outage:
    return Outage("GitHub", policy, clock=time.clock, sleep=time.sleep)


@pytest.mark.parametrize(
    ("failures", "low", "high"),
    [(1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (6, 16.0, 32.0), (7, 30.0, 60.0), (20, 30, 60)],
)
def test_delay_doubles_up_to_the_cap_with_jitter(failures: int, low: float, high: float) -> None:
    policy = RetryPolicy(base_s=1.0, cap_s=60.0)
    delays = {policy.delay(failures) for _ in range(200)}
    assert all(low <= d <= high for d in delays)
    assert len(delays) > 100  # jittered, so workers that failed together spread out


def test_the_budget_runs_from_the_start_of_the_outage() -> None:
    time = FakeTime()
    gate = outage(RetryPolicy(max_wait_s=100.0, base_s=1.0, cap_s=30.0), time)
    failures = 0
    with pytest.raises(OutageStop) as stop:
        while True:
            failures += 1
            gate.failed(failures, "GET /repos/o/r/actions/runs", "HTTP 503")
    assert sum(time.sleeps) == pytest.approx(100.0)  # the last wait ends at the budget
    assert "GitHub kept failing (HTTP 503) for GET /repos/o/r/actions/runs" in str(stop.value)
    assert "waited 100s, past --max-wait 100s" in str(stop.value)
    assert stop.value.exit_code == 1


def test_callers_share_the_outage_and_a_success_ends_it() -> None:
    now = [0.0]
    gate = Outage(
        "GitHub", RetryPolicy(max_wait_s=10.0), clock=lambda: now[0], sleep=lambda _s: None
    )
    gate.failed(1, "a", "HTTP 502")  # the outage starts at 0
    now[0] = 6.0
    gate.failed(1, "b", "HTTP 502")  # another caller, its first failure: 6s into it
    now[0] = 10.0
    # the outage is 10s old: every caller gives up at once, whatever its own count
    with pytest.raises(OutageStop):
        gate.failed(1, "c", "HTTP 502")
    gate.succeeded()
    now[0] = 30.0
    gate.failed(1, "d", "HTTP 502")  # a new outage, a new budget
    assert gate.retries == 3


def test_bounded_keeps_the_timings() -> None:
    policy = RetryPolicy(max_wait_s=900, base_s=0.5, cap_s=8, timeout_s=5)
    short = policy.bounded(30)
    assert (short.max_wait_s, short.base_s, short.cap_s, short.timeout_s) == (30, 0.5, 8, 5)
    assert policy.bounded(3600).max_wait_s == 900


def test_a_success_wakes_the_callers_waiting_out_a_backoff() -> None:
    import threading

    gate = Outage("GitHub", RetryPolicy(max_wait_s=60.0, base_s=30.0, cap_s=30.0))
    woke = threading.Event()

    def waiter() -> None:
        gate.failed(1, "GET /x", "HTTP 503")  # a backoff of 15 to 30 seconds
        woke.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    assert not woke.wait(0.3)  # still backing off
    gate.succeeded()  # another request got through: the service is back
    assert woke.wait(5)
    thread.join()
