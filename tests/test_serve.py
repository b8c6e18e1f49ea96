"""`multivac serve` end to end: a real uvicorn subprocess driven over HTTP with deliveries
signed by the secret; records land in the real VictoriaMetrics (InfluxDB 2 write API)
or in a file; failed jobs' logs come from the local GitHub test server."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import TOKEN, Invoke
from tests.ghserver import FakeGitHub, Job, make_log
from tests.servers import VictoriaMetrics
from tests.serving import (
    SECRET,
    Serve,
    base_env,
    deliver_job,
    job_event,
    run_event,
    serving,
    wait_until,
)

INFLUX_TOKEN = "influx-secret-token-for-serve-42"


def influx_env(vm: VictoriaMetrics, gh: FakeGitHub, state: Path, **extra: str) -> dict[str, str]:
    return base_env(
        GITHUB_API_URL=gh.url,
        GITHUB_TOKEN=TOKEN,
        INFLUX_URL=vm.url,
        INFLUX_TOKEN=INFLUX_TOKEN,
        INFLUX_ORG="acme",
        INFLUX_BUCKET="ci",
        MULTIVAC_STATE_DIR=str(state),
        **extra,
    )


def job_points(vm: VictoriaMetrics) -> list[tuple[str, dict[str, str]]]:
    """(measurement, tags) of every job point stored (one per point, whatever its fields)."""
    seen: dict[tuple[str, tuple[tuple[str, str], ...], int], dict[str, str]] = {}
    for point in vm.points():
        if point.measurement == "queue":
            continue
        seen[(point.measurement, tuple(sorted(point.tags.items())), point.time_ns)] = dict(
            point.tags
        )
    return [(key[0], tags) for key, tags in seen.items()]


def queue_points(vm: VictoriaMetrics) -> list[tuple[int, float, float]]:
    """(time, queued, running) of the `queue` points, oldest first."""
    rows: dict[int, dict[str, float]] = {}
    for point in vm.points():
        if point.measurement == "queue":
            rows.setdefault(point.time_ns, {}).update(point.fields)  # type: ignore[arg-type]
    return [(t, f.get("queued", 0.0), f.get("running", 0.0)) for t, f in sorted(rows.items())]


@pytest.fixture
def repo_now(ghserver: FakeGitHub) -> Iterator[tuple[FakeGitHub, datetime]]:
    """The GitHub test server and a moment a little after now: runs created then began
    after serve started listening."""
    yield ghserver, datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)


# ---------------------------------------------------------------------------- the lifecycle


def test_a_job_queued_started_and_completed_is_one_record_and_the_queue_rises_and_falls(
    vm: VictoriaMetrics, ghserver: FakeGitHub, tmp_path: Path
) -> None:
    repo = ghserver.add_repo("octo/live")
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    run = repo.add_run(created_at=created, head_sha="c" * 40)
    job = run.add_job(
        "build",
        conclusion="success",
        created_at=created,
        started_at=created + timedelta(seconds=12),
        completed_at=created + timedelta(seconds=72),
        labels=["self-hosted", "linux", "x64"],
    )
    label = "self-hosted,linux,x64"
    env = influx_env(vm, ghserver, tmp_path / "state")
    with serving(["--format", "influxdb"], env, tmp_path) as serve:
        assert serve.post("workflow_job", job_event(ghserver, job, "queued")).status_code == 202
        assert serve.gauge("multivac_jobs_queued", runner_label=label) == 1
        assert serve.gauge("multivac_oldest_queued_seconds", runner_label=label) >= 30
        # the `queue` point of the label comes within a second
        wait_until(lambda: [q for q in queue_points(vm) if q[1:] == (1.0, 0.0)], timeout=10)
        assert serve.post("workflow_job", job_event(ghserver, job, "in_progress")).status_code == 202
        assert serve.gauge("multivac_jobs_queued", runner_label=label) == 0
        assert serve.gauge("multivac_jobs_running", runner_label=label) == 1
        assert serve.post("workflow_job", job_event(ghserver, job, "completed")).status_code == 202
        assert serve.gauge("multivac_jobs_running", runner_label=label) == 0
        assert serve.gauge("multivac_jobs_queued", runner_label=label) == 0
        assert serve.gauge("multivac_deliveries_accepted_total", event="workflow_job") == 3
        wait_until(lambda: job_points(vm))
    points = job_points(vm)
    assert len(points) == 1
    measurement, tags = points[0]
    assert measurement == "successful_jobs"
    assert tags == {
        "repository": "octo/live",
        "workflow": "CI",
        "job_name": "build",
        "job_id": str(job.id),
        "run_id": str(run.id),
        "run_attempt": "1",
        "branch": "main",
        "commit_sha": "c" * 40,
        "platform": "linux-x64",
        "status": "success",
        "runner_label": label,
    }
    (stored,) = [p for p in vm.points() if p.measurement == "successful_jobs"]
    assert stored.fields["queued_s"] == 12.0
    assert stored.fields["in_progress_s"] == 60.0
    assert stored.time_ns == int(created.timestamp()) * 1_000_000_000
    # the job waited, then nothing was in flight: the last point was written on stop,
    # since the label had changed in the ten seconds after its first point
    assert [q[1:] for q in queue_points(vm)] == [(1.0, 0.0), (0.0, 0.0)]
