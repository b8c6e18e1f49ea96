"""GitHub outages mid-gather (every request, API and log host, fails for a while): they
are waited out, and nothing is filed wrongly when they outlast --max-wait. The 45 s
outage of the issue is scaled down here; bench/bench_outage.py runs it full size."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import TOKEN, Invoke
from tests.ghserver import FakeGitHub, make_log

NOW = datetime.now(UTC).replace(microsecond=0)
STEPS = [("Set up job", "success"), ("Run tests", "failure"), ("Complete job", "success")]


def populate(server: FakeGitHub, runs: int = 12) -> None:
    repo = server.add_repo("octo/outage")
    for i in range(runs):
        created = NOW - timedelta(hours=5, minutes=-10 * i)
        run = repo.add_run(created_at=created, conclusion="failure")
        run.add_job("build", conclusion="success")
        log = (
            make_log(created, STEPS[:2])
            + (
                f"2026-10-01T12:00:05.0000000Z FAILED tests/test_{i}.py::test_x - assert 0\n"
                "2026-10-01T12:00:06.0000000Z ##[error]Process completed with exit code 1.\n"
            ).encode()
        )
        run.add_job("test", conclusion="failure", steps=STEPS, log=log)


def gather(
    cli: Invoke, server: FakeGitHub, state: Path, *extra: str
) -> tuple[int, list[dict[str, str]], str]:
    env = {
        "GITHUB_API_URL": server.url,
        "GITHUB_TOKEN": TOKEN,
        "MULTIVAC_STATE_DIR": str(state),
        "MULTIVAC_RETRY_CAP": "0.4",  # the backoff cap, scaled down with the outage
    }
    result = cli("gather", "octo/outage", "--since", "1d", *extra, env=env)
    rows = sorted(
        # the jobs and their runs; the failed tests of their logs are tested elsewhere
        (r for r in csv.DictReader(io.StringIO(result.stdout)) if r["measurement"] != "tests"),
        key=lambda r: (r["job_id"], r["time"], r["measurement"]),
    )
    return result.exit_code, rows, result.stderr


@pytest.mark.parametrize("kind", ["status", "drop"], ids=["503", "dropped-connections"])
def test_an_outage_mid_gather_is_waited_out(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path, kind: str
) -> None:
    populate(ghserver)
    code, clean, err = gather(cli, ghserver, tmp_path / "clean")
    assert code == 0, err
    assert len(clean) == 24 + 12  # the jobs and a runs point per run
    ghserver.faults.outage(2.0, after_requests=6, kind=kind)
    code, rows, err = gather(cli, ghserver, tmp_path / "outage", "--concurrency", "2")
    assert code == 0, err
    assert rows == clean
    assert "retries" in err
    assert any(r.fault == kind for r in ghserver.requests)  # the outage did happen


def test_past_max_wait_the_gather_stops_and_a_rerun_completes_it(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    populate(ghserver)
    code, clean, _ = gather(cli, ghserver, tmp_path / "clean")
    state = tmp_path / "outage"
    fault = ghserver.faults.outage(600, after_requests=8)
    code, partial, err = gather(cli, ghserver, state, "--max-wait", "1s", "--concurrency", "1")
    assert code == 1, err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert "kept failing (HTTP 503)" in line and "past --max-wait 1s" in line
    assert "Traceback" not in err
    assert 0 < len(partial) < len(clean)
    assert all(row in clean for row in partial)  # nothing written wrongly
    assert "log_unavailable" not in {row["measurement"] for row in partial}
    ghserver.faults.clear()
    assert fault.hits > 0
    code, rows, err = gather(cli, ghserver, state)
    assert code == 0, err
    assert rows == clean


def test_a_log_host_outage_leaves_the_job_pending_not_log_unavailable(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    populate(ghserver, runs=3)
    code, clean, _ = gather(cli, ghserver, tmp_path / "clean")
    state = tmp_path / "s"
    ghserver.faults.add(r"^/_signed/logs/", "status", count=None, status=503)
    code, rows, err = gather(cli, ghserver, state, "--max-wait", "1s")
    assert code == 1, err
    assert "the logs of 3 failed jobs could not be read" in err
    assert "3 failed jobs pending" in err
    assert {row["measurement"] for row in rows} == {"successful_jobs", "runs"}
    ghserver.faults.clear()
    ghserver.reset_log()
    code, rows, err = gather(cli, ghserver, state)
    assert code == 0, err
    assert rows == clean
    assert {row["measurement"] for row in rows} == {"successful_jobs", "test_failure", "runs"}
    # the runs did not change: only the pending jobs' logs are asked for again
    assert not ghserver.requests_to(r"/actions/runs/\d+/jobs$")
    assert len(ghserver.requests_to(r"/actions/jobs/\d+/logs$")) == 3
