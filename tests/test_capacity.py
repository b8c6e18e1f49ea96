"""Runner capacity: jobs waiting and running per label and minute, rebuilt from job times."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multivac.minutes import (
    Capacity,
    CapacityBy,
    JobTimes,
    UsageJob,
    capacity,
    capacity_jobs,
    runner_load,
)
from multivac.minutes.capacity import NO_GROUP, render_json, render_table
from multivac.model import Job, Run
from multivac.store import Store

DAY = "2026-10-01"


def ts(text: str) -> float:
    """`HH:MM:SS` on DAY, or a full ISO time, as POSIX seconds."""
    full = text if "T" in text else f"{DAY}T{text}"
    return datetime.fromisoformat(full).replace(tzinfo=UTC).timestamp()


def minute(text: str) -> int:
    return int(ts(text))


def cjob(
    job_id: int,
    created: str | None,
    started: str | None,
    completed: str | None,
    *,
    labels: tuple[str, ...] = ("self-hosted", "linux"),
    group: str = "Default",
    attempt: int = 1,
    run_id: int | None = None,
) -> UsageJob:
    created_s = ts(created) if created else None
    started_s = ts(started) if started else None
    completed_s = ts(completed) if completed else None
    at = created_s if created_s is not None else started_s if started_s is not None else 0.0
    return UsageJob(
        job_id=job_id,
        run_id=run_id if run_id is not None else job_id,
        run_attempt=attempt,
        repository="octo/repo",
        workflow="CI",
        job_name="build",
        conclusion="success" if started else "cancelled",
        failure_type="successful_jobs" if started else "cancelled",
        labels=labels,
        label=",".join(labels),
        runner_group=group,
        created_s=created_s,
        started_s=started_s,
        completed_s=completed_s,
        at_s=at,
    )


LABEL = "self-hosted,linux"


def loads(jobs: list[UsageJob], **options: object) -> dict[int, tuple[int, int]]:
    return {
        row.minute: (row.queued, row.running)
        for row in runner_load(jobs, **options)  # type: ignore[arg-type]
    }


def only(jobs: list[UsageJob], **options: object) -> Capacity:
    (row,) = capacity(jobs, **options).labels  # type: ignore[arg-type]
    return row


# ---------------------------------------------------------------------------- per minute


def test_a_minute_counts_its_busiest_instant_not_every_job_it_saw() -> None:
    # three jobs touch 10:00, but never more than two at once
    jobs = [
        cjob(1, "10:00:00", "10:00:00", "10:00:30"),
        cjob(2, "10:00:20", "10:00:20", "10:00:50"),
        cjob(3, "10:00:40", "10:00:40", "10:01:10"),
    ]
    assert loads(jobs) == {minute("10:00:00"): (0, 2), minute("10:01:00"): (0, 1)}
    assert only(jobs).max_running == 2


def test_a_job_ending_as_another_starts_does_not_overlap_it() -> None:
    jobs = [
        cjob(1, "10:00:00", "10:00:00", "10:00:30"),
        cjob(2, "10:00:30", "10:00:30", "10:00:59"),
    ]
    assert only(jobs).max_running == 1


def test_a_job_within_one_second_still_held_a_runner() -> None:
    jobs = [cjob(1, "10:00:05", "10:00:05", "10:00:05")]
    assert loads(jobs) == {minute("10:00:00"): (0, 1)}


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        pytest.param(
            cjob(1, "10:00:10", "10:02:10", "10:03:00"),
            {"10:00:00": (1, 0), "10:01:00": (1, 0), "10:02:00": (1, 1)},
            id="waits-then-runs",
        ),
        pytest.param(
            cjob(1, "10:00:10", None, "10:01:30"),
            {"10:00:00": (1, 0), "10:01:00": (1, 0)},
            id="cancelled-while-queued-waited-until-cancelled",
        ),
        pytest.param(
            cjob(1, None, "10:00:10", "10:01:30"),
            {"10:00:00": (0, 1), "10:01:00": (0, 1)},
            id="no-created-at-runs-only",
        ),
        pytest.param(
            cjob(1, "10:05:00", "10:00:10", "10:01:30"),
            {"10:00:00": (0, 1), "10:01:00": (0, 1)},
            id="negative-queue-time-runs-only",
        ),
        pytest.param(
            cjob(1, "10:00:10", "10:00:50", None),
            {"10:00:00": (1, 0)},
            id="no-completed-at-waits-only",
        ),
    ],
)
def test_one_job_per_minute(job: UsageJob, expected: dict[str, tuple[int, int]]) -> None:
    assert loads([job]) == {minute(key): value for key, value in expected.items()}


def test_an_overnight_queue() -> None:
    # queued at 22:00, a runner came back at 06:00 the next morning
    jobs = [
        cjob(1, "22:00:00", "2026-10-02T06:00:00", "2026-10-02T06:30:00"),
        cjob(2, "23:30:00", "2026-10-02T06:00:00", "2026-10-02T06:10:00"),
    ]
    rows = loads(jobs)
    assert len(rows) == 8 * 60 + 30
    assert rows[minute("22:00:00")] == (1, 0)
    assert rows[minute("23:30:00")] == (2, 0)
    assert rows[minute("2026-10-02T05:59:00")] == (2, 0)
    assert rows[minute("2026-10-02T06:00:00")] == (0, 2)
    assert rows[minute("2026-10-02T06:29:00")] == (0, 1)
    summary = only(jobs)
    assert (summary.max_queued, summary.minutes_with_queue, summary.max_running) == (2, 480, 2)
    assert summary.busiest == datetime(2026, 10, 1, 23, 30, tzinfo=UTC)


def test_window_reports_only_its_minutes_but_counts_jobs_started_before() -> None:
    jobs = [cjob(1, "22:00:00", "2026-10-02T06:00:00", "2026-10-02T06:30:00")]
    since = datetime(2026, 10, 2, tzinfo=UTC)
    until = datetime(2026, 10, 2, 6, 10, tzinfo=UTC)
    rows = loads(jobs, since=since, until=until)
    assert min(rows) == int(since.timestamp())
    assert max(rows) == minute("2026-10-02T06:09:00")
    assert len(rows) == 6 * 60 + 10
    assert only(jobs, since=since, until=until).minutes_with_queue == 360


def test_rerun_attempts_are_separate_jobs_on_the_runner() -> None:
    jobs = [
        cjob(1, "10:00:00", "10:00:00", "10:05:00", run_id=5, attempt=1),
        cjob(2, "10:03:00", "10:03:00", "10:08:00", run_id=5, attempt=2),
        cjob(3, "11:00:00", "11:00:00", "11:05:00", run_id=5, attempt=3),
    ]
    summary = only(jobs)
    assert summary.max_running == 2
    assert loads(jobs)[minute("10:06:00")] == (0, 1)


# ---------------------------------------------------------------------------- per label


def test_labels_are_kept_apart_and_a_label_with_no_jobs_is_reported() -> None:
    jobs = [
        cjob(1, "10:00:00", "10:00:00", "10:05:00"),
        cjob(2, "10:00:00", "10:01:00", "10:05:00", labels=("ubuntu-latest",)),
    ]
    report = capacity(jobs, labels=["self-hosted,gpu"])
    assert [row.label for row in report.labels] == ["self-hosted,gpu", LABEL, "ubuntu-latest"]
    idle, linux, hosted = report.labels
    assert idle == Capacity("self-hosted,gpu", 0, 0, 0, 0, None)
    assert (linux.max_running, linux.max_queued, linux.busiest) == (1, 0, None)
    assert (hosted.max_queued, hosted.minutes_with_queue) == (1, 1)


def test_jobs_missing_times_are_counted_and_their_label_still_listed() -> None:
    jobs = [
        cjob(1, None, None, None, labels=("self-hosted", "mac")),
        cjob(2, "10:00:00", None, None, labels=("self-hosted", "mac")),
        cjob(3, "10:00:00", "10:00:00", "10:01:00"),
    ]
    report = capacity(jobs)
    assert report.missing_times == 2
    linux, mac = report.labels
    assert mac == Capacity("self-hosted,mac", 0, 0, 0, 0, None)
    assert (linux.label, linux.max_running) == (LABEL, 1)


def test_by_runner_group() -> None:
    jobs = [
        cjob(1, "10:00:00", "10:00:00", "10:05:00", group="big", labels=("a",)),
        cjob(2, "10:00:00", "10:00:00", "10:05:00", group="big", labels=("b",)),
        cjob(3, "10:00:00", None, "10:02:00", group=""),
    ]
    report = capacity(jobs, by=CapacityBy.RUNNER_GROUP)
    assert [(row.label, row.max_running, row.max_queued) for row in report.labels] == [
        (NO_GROUP, 0, 1),
        ("big", 2, 0),
    ]


@pytest.mark.parametrize(
    ("levels", "p95", "peak"),
    [
        ([1] * 20 + [5], 1, 5),  # one spike in 21 busy minutes stays above the 95th
        ([1] * 18 + [5], 5, 5),  # one in 19 busy minutes is the 95th
        ([2] * 10, 2, 2),
        ([3], 3, 3),
    ],
)
def test_p95_running_is_the_nearest_rank_over_busy_minutes(
    levels: list[int], p95: int, peak: int
) -> None:
    jobs = []
    start = datetime(2026, 10, 1, 10, tzinfo=UTC)
    job_id = 0
    for index, level in enumerate(levels):
        # minutes two apart, so idle minutes sit between the busy ones
        begin = start + timedelta(minutes=2 * index)
        for _ in range(level):
            job_id += 1
            jobs.append(
                cjob(
                    job_id,
                    begin.isoformat()[:19],
                    begin.isoformat()[:19],
                    (begin + timedelta(seconds=50)).isoformat()[:19],
                )
            )
    summary = only(jobs)
    assert (summary.p95_running, summary.max_running) == (p95, peak)


# ---------------------------------------------------------------------------- output


def test_json_has_the_documented_keys() -> None:
    jobs = [cjob(1, "10:00:00", "10:02:00", "10:05:00")]
    data = json.loads(render_json(capacity(jobs, labels=["idle"])))
    assert data == [
        {
            "label": "idle",
            "max_running": 0,
            "p95_running": 0,
            "max_queued": 0,
            "minutes_with_queue": 0,
            "busiest": None,
        },
        {
            "label": LABEL,
            "max_running": 1,
            "p95_running": 1,
            "max_queued": 1,
            "minutes_with_queue": 2,
            "busiest": "2026-10-01T10:00:00Z",
        },
    ]


def test_table_has_one_line_per_label() -> None:
    jobs = [cjob(1, "10:00:00", "10:02:00", "10:05:00")]
    lines = render_table(capacity(jobs, labels=["idle"])).splitlines()
    assert lines[0].split()[:3] == ["label", "max", "running"]
    assert lines[1].split() == ["idle", "0", "0", "0", "0", "-"]
    assert lines[2].split() == [LABEL, "1", "1", "1", "2", "2026-10-01T10:00:00Z"]


def test_runner_load_rows_carry_their_minute_as_time() -> None:
    (row,) = runner_load([cjob(1, "10:00:10", "10:00:10", "10:00:40")])
    assert row.time == datetime(2026, 10, 1, 10, 0, tzinfo=UTC)
    assert (row.label, row.queued, row.running) == (LABEL, 0, 1)


# ---------------------------------------------------------------------------- from the store


def test_capacity_jobs_selects_jobs_active_in_the_window(tmp_path: Path) -> None:
    base = datetime(2026, 10, 1, 22, tzinfo=UTC)
    run = Run(
        id=1,
        repository="octo/repo",
        workflow="CI",
        workflow_path=".github/workflows/ci.yml",
        run_attempt=1,
        branch="main",
        commit_sha="abc",
        event="push",
        status="completed",
        conclusion="success",
        created_at=base,
        updated_at=base,
        html_url="",
    )

    def job(job_id: int, created: datetime, started: datetime, done: datetime) -> Job:
        return Job(
            id=job_id,
            run_id=1,
            run_attempt=1,
            name=f"j{job_id}",
            status="completed",
            conclusion="success",
            created_at=created,
            started_at=started,
            completed_at=done,
            labels=("self-hosted", "linux"),
            runner_name="r",
            html_url="",
        )

    hour = timedelta(hours=1)
    jobs = [
        job(1, base, base + 8 * hour, base + 9 * hour),  # overnight, into the window
        job(2, base, base + hour / 60, base + hour / 30),  # done before the window
        job(3, base + 10 * hour, base + 10 * hour, base + 11 * hour),  # after the window
    ]
    with Store.open(tmp_path) as store:
        store.save_run(run, jobs, {})
        since, until = base + 2 * hour, base + 9 * hour
        found = capacity_jobs(store, ["octo/repo"], since, until)
    assert [job.started_s for job in found] == [(base + 8 * hour).timestamp()]  # job 1 only
    summary = capacity(found, since=since, until=until).labels[0]
    assert (summary.max_queued, summary.minutes_with_queue, summary.max_running) == (1, 360, 1)


# ---------------------------------------------------------------------------- brute force

# A job on a small clock: (created, started, completed) offsets in seconds, each may
# be missing; the label is one of two.
_times = st.one_of(st.none(), st.integers(min_value=0, max_value=400))
_jobs = st.lists(st.tuples(_times, _times, _times, st.sampled_from(["a", "b"])), max_size=12)
_BASE = 1_790_000_040  # a minute boundary


def _brute_force(
    spec: list[tuple[int | None, int | None, int | None, str]],
) -> dict[str, dict[int, tuple[int, int]]]:
    """Per label and minute, the max over every second of jobs waiting and running."""
    seconds: dict[str, dict[int, list[int]]] = {}
    for created, started, completed, label in spec:
        table = seconds.setdefault(label, {})
        spans: list[tuple[int, int, int]] = []  # (from, to, 0 queued | 1 running)
        if started is None:
            if created is not None and completed is not None:
                spans.append((created, completed, 0))
        else:
            if created is not None and started > created:
                spans.append((created, started, 0))
            if completed is not None:
                spans.append((started, max(completed, started + 1), 1))
        for begin, end, column in spans:
            for second in range(begin, end):
                table.setdefault(second, [0, 0])[column] += 1
    out: dict[str, dict[int, tuple[int, int]]] = {}
    for label, table in seconds.items():
        minutes = out.setdefault(label, {})
        for second, (queued, running) in table.items():
            if queued or running:
                m = (_BASE + second) // 60 * 60
                old = minutes.get(m, (0, 0))
                minutes[m] = (max(old[0], queued), max(old[1], running))
    return {label: minutes for label, minutes in out.items() if minutes}


@settings(max_examples=300, deadline=None)
@given(_jobs)
def test_per_minute_load_matches_a_second_by_second_count(
    spec: list[tuple[int | None, int | None, int | None, str]],
) -> None:
    def at(offset: int | None) -> float | None:
        return None if offset is None else float(_BASE + offset)

    jobs = [
        JobTimes(label, "", at(created), at(started), at(completed))
        for created, started, completed, label in spec
    ]
    found: dict[str, dict[int, tuple[int, int]]] = {}
    for row in runner_load(jobs):
        found.setdefault(row.label, {})[row.minute] = (row.queued, row.running)
    assert found == _brute_force(spec)
    report = capacity(jobs)
    for row in report.labels:
        minutes = found.get(row.label, {})
        assert row.max_running == max((r for _q, r in minutes.values()), default=0)
        assert row.max_queued == max((q for q, _r in minutes.values()), default=0)
        assert row.minutes_with_queue == sum(1 for q, _r in minutes.values() if q)
