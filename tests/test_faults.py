"""GitHub faults mid-gather: each test ends by comparing with a fault-free gather."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from multivac.model import RUNS
from tests.conftest import TOKEN, Invoke
from tests.ghserver import FakeGitHub

NOW = datetime.now(UTC).replace(microsecond=0)


def populate(server: FakeGitHub, runs: int = 30) -> None:
    repo = server.add_repo("octo/faulty")
    repo.add_runs_bulk(runs, NOW - timedelta(hours=10), 120, jobs_per_run=3)


def gather(cli: Invoke, server: FakeGitHub, state: Path, *extra: str) -> tuple[int, str, str]:
    env = {
        "GITHUB_API_URL": server.url,
        "GITHUB_TOKEN": TOKEN,
        "MULTIVAC_STATE_DIR": str(state),
    }
    result = cli("gather", "octo/faulty", "--no-logs", "--since", "1d", *extra, env=env)
    return result.exit_code, result.stdout, result.stderr


def table(text: str) -> list[dict[str, str]]:
    """Every row (jobs and the runs' points) in a stable order."""
    rows = csv.DictReader(io.StringIO(text))
    return sorted(rows, key=lambda r: (r["job_id"], r["time"], r["measurement"]))


def jobs_of(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [row for row in rows if row["measurement"] != RUNS]


def runs_of(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [row for row in rows if row["measurement"] == RUNS]


def baseline(cli: Invoke, server: FakeGitHub, tmp_path: Path) -> list[dict[str, str]]:
    code, out, err = gather(cli, server, tmp_path / "clean")
    assert code == 0, err
    return table(out)


@pytest.mark.parametrize(
    ("kind", "kw", "count"),
    [
        ("status", {"status": 502}, 3),
        ("status", {"status": 500}, 2),
        ("secondary", {"retry_after": 1}, 1),
        ("secondary", {"retry_after": None}, 2),
        ("429", {"retry_after": 1}, 1),
        ("drop", {}, 2),
        ("latency", {"seconds": 0.2}, 5),
    ],
)
def test_transient_faults_lose_nothing(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path, kind: str, kw: dict[str, object], count: int
) -> None:
    populate(ghserver)
    ghserver.faults.add(r"/actions/runs/\d+/jobs", kind, count=count, **kw)
    ghserver.faults.add(r"/actions/runs$", kind, count=1, **kw)
    code, out, err = gather(cli, ghserver, tmp_path / "faulty")
    assert code == 0, err
    assert "Traceback" not in err
    assert table(out) == baseline(cli, ghserver, tmp_path)
    assert (len(jobs_of(table(out))), len(runs_of(table(out)))) == (90, 30)


def test_primary_rate_limit_waits_for_reset(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    populate(ghserver, runs=10)
    ghserver.faults.add(r"/actions/runs/\d+/jobs", "primary", count=1, reset_after=2)
    code, out, err = gather(cli, ghserver, tmp_path / "faulty")
    assert code == 0, err
    assert "rate limit reached; waiting" in err
    assert table(out) == baseline(cli, ghserver, tmp_path)


def test_primary_rate_limit_past_max_wait_stops_cleanly(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    populate(ghserver, runs=10)
    ghserver.rate.reset_after = 3600
    ghserver.rate.remaining = 6  # repo check + run page + 4 job lists, then exhausted
    code, out, err = gather(cli, ghserver, tmp_path / "faulty", "--concurrency", "1")
    assert code == 3, err
    assert "--max-wait" in err and "stopping with what was gathered" in err
    assert "Traceback" not in err
    partial = table(out)
    assert 0 < len(jobs_of(partial)) < 30
    complete = baseline_after_reset(cli, ghserver, tmp_path)
    full = {r["job_id"]: r for r in jobs_of(complete)}
    for row in jobs_of(partial):
        assert full[row["job_id"]] == row
    for row in runs_of(partial):
        assert row in runs_of(complete)


def baseline_after_reset(cli: Invoke, server: FakeGitHub, tmp_path: Path) -> list[dict[str, str]]:
    server.rate.limit = 5000
    return baseline(cli, server, tmp_path)


def test_persistent_server_errors_end_in_one_line(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    populate(ghserver, runs=5)
    ghserver.faults.add(r"/actions/runs/\d+/jobs", "status", count=None, status=503)
    code, out, err = gather(cli, ghserver, tmp_path / "faulty", "--max-wait", "1s")
    assert code == 1
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert "GitHub kept failing (HTTP 503) for GET /repos/octo/faulty/actions/runs/" in line
    assert "past --max-wait 1s" in line
    assert "Traceback" not in err
    assert out.startswith("time,measurement")  # the CSV header is still written


def test_run_deleted_between_listing_and_jobs(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    populate(ghserver, runs=5)
    ghserver.faults.add(r"/actions/runs/\d+/jobs", "status", count=1, status=404)
    code, out, err = gather(cli, ghserver, tmp_path / "faulty", "--concurrency", "1")
    assert code == 0, err
    assert (len(jobs_of(table(out))), len(runs_of(table(out)))) == (12, 4)
    assert "1 runs deleted while gathering" in err


def test_token_never_leaks(ghserver: FakeGitHub, cli: Invoke, tmp_path: Path) -> None:
    populate(ghserver, runs=3)
    ghserver.faults.add(r"/actions/runs$", "status", count=None, status=500)
    code, out, err = gather(cli, ghserver, tmp_path / "faulty", "--max-wait", "1s")
    assert code == 1
    assert TOKEN not in out + err
    for path in (tmp_path / "faulty").rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    sent = [r for r in ghserver.requests if r.headers.get("authorization")]
    assert sent, "the token is sent to the API"
