"""Interrupting a gather at any moment and running it again gives the same final data."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import TOKEN, Invoke
from tests.ghserver import FakeGitHub
from tests.servers import StoredPoint, VictoriaMetrics

NOW = datetime.now(UTC).replace(microsecond=0)


def identity(point: StoredPoint) -> tuple[str, int, tuple[tuple[str, str], ...]]:
    """A point's identity on the server: measurement, time and tags (job points carry
    the job id, runs points their run's sub-second offset)."""
    return point.measurement, point.time_ns, tuple(sorted(point.tags.items()))


def populate(server: FakeGitHub) -> None:
    repo = server.add_repo("octo/kill")
    repo.add_runs_bulk(
        40,
        NOW - timedelta(hours=10),
        300,
        jobs_per_run=3,
        job_conclusions=("success", "failure", "success"),
    )


def wait_until_gathering(server: FakeGitHub, jobs_lists: int = 5, timeout: float = 60) -> None:
    """Until the gather has fetched some runs' jobs: interrupting it while it starts up
    would test nothing (a loaded machine can take seconds to start Python)."""
    deadline = time.monotonic() + timeout
    while len(server.requests_to(r"/actions/runs/\d+/jobs")) < jobs_lists:
        assert time.monotonic() < deadline, "the gather never started"
        time.sleep(0.05)


def start(server: FakeGitHub, state: Path, vm_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GITHUB_API_URL": server.url,
        "GITHUB_TOKEN": TOKEN,
        "MULTIVAC_STATE_DIR": str(state),
        "INFLUX_URL": vm_url,
        "INFLUX_TOKEN": "t",
        "INFLUX_ORG": "o",
        "INFLUX_BUCKET": "b",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "multivac",
            "gather",
            "octo/kill",
            "--since",
            "1d",
            "-f",
            "influxdb",
            "--concurrency",
            "2",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_killed_gather_then_rerun_leaves_no_holes_no_duplicates(
    ghserver: FakeGitHub, vm: VictoriaMetrics, tmp_path: Path, sig: signal.Signals
) -> None:
    populate(ghserver)
    ghserver.faults.add(r".", "latency", count=None, seconds=0.03)
    state = tmp_path / "state"
    first = start(ghserver, state, vm.url)
    wait_until_gathering(ghserver)
    first.send_signal(sig)
    _, err = first.communicate(timeout=30)
    if sig != signal.SIGKILL:
        assert first.returncode == 130, err.decode()
        assert b"Traceback" not in err
    ghserver.faults.clear()
    second = start(ghserver, state, vm.url)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err.decode()
    points = vm.points()
    keys = [identity(p) for p in points]
    assert len(keys) == 120 + 40  # the jobs, a runs point per run
    assert len(set(keys)) == 160
    assert len({p.tags["job_id"] for p in points if p.measurement != "runs"}) == 120


def test_interrupted_csv_is_still_valid(ghserver: FakeGitHub, tmp_path: Path) -> None:
    populate(ghserver)
    ghserver.faults.add(r".", "latency", count=None, seconds=0.03)
    out = tmp_path / "out.csv"
    env = {
        **os.environ,
        "GITHUB_API_URL": ghserver.url,
        "MULTIVAC_STATE_DIR": str(tmp_path / "s"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "multivac", "gather", "octo/kill", "-o", str(out)],
        env=env,
        stderr=subprocess.PIPE,
    )
    wait_until_gathering(ghserver)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert b"interrupted" in err
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert all(len(r) == len(rows[0]) for r in rows) if rows else True
    jobs = [r for r in rows if r["measurement"] != "runs"]
    runs = [r for r in rows if r["measurement"] == "runs"]
    assert len({r["job_id"] for r in jobs}) == len(jobs)
    assert len({r["html_url"] for r in runs}) == len(runs)


def test_org_and_shards(ghserver: FakeGitHub, cli: Invoke) -> None:
    names = [f"octo/r{i}" for i in range(8)]
    for name in names:
        ghserver.add_repo(name, org="octo").add_run(created_at=NOW - timedelta(hours=1)).add_job(
            "j", conclusion="success"
        )
    ghserver.add_repo("octo/old", org="octo", archived=True).add_run(
        created_at=NOW - timedelta(hours=1)
    ).add_job("j", conclusion="success")
    env = {"GITHUB_API_URL": ghserver.url, "GITHUB_TOKEN": TOKEN}
    every = cli("gather", "--org", "octo", "--no-logs", env=env)
    assert every.exit_code == 0, every.stderr
    repos = {r["repository"] for r in csv.DictReader(io.StringIO(every.stdout))}
    assert repos == set(names)
    shards = []
    for k in (1, 2, 3):
        part = cli("gather", "--org", "octo", "--no-logs", "--shard", f"{k}/3", env=env)
        assert part.exit_code == 0, part.stderr
        shards.append({r["repository"] for r in csv.DictReader(io.StringIO(part.stdout))})
    assert set().union(*shards) == set(names)
    assert sum(len(s) for s in shards) == len(names)
    bad = cli("gather", "--org", "octo", "--shard", "4/3", env=env)
    assert bad.exit_code == 2 and "--shard" in bad.stderr


def test_influx_stopped_mid_gather_then_replayed(
    ghserver: FakeGitHub, vm: VictoriaMetrics, tmp_path: Path
) -> None:
    populate(ghserver)
    ghserver.faults.add(r".", "latency", count=None, seconds=0.02)
    state = tmp_path / "state"
    proc = start(ghserver, state, vm.url)
    wait_until_gathering(ghserver)
    vm.stop()
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        vm.start()
    assert proc.returncode == 1, err.decode()
    assert b"spooled" in err and b"multivac replay" in err
    env = {
        **os.environ,
        "MULTIVAC_STATE_DIR": str(state),
        "INFLUX_URL": vm.url,
        "INFLUX_TOKEN": "t",
        "INFLUX_ORG": "o",
        "INFLUX_BUCKET": "b",
    }
    done = subprocess.run(
        [sys.executable, "-m", "multivac", "replay"], env=env, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    keys = {identity(p) for p in vm.points()}
    assert len(keys) == 160  # 120 jobs, 40 runs
