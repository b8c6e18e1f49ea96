"""The local store: incremental gathers, conditional requests, offline reports."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from multivac.model import Classification, Job, Run, Step
from multivac.store import Store
from tests.conftest import TOKEN, Invoke
from tests.ghserver import FakeGitHub

SINCE = "2026-10-01T00:00:00Z"
UNTIL = "2026-10-03T00:00:00Z"
BASE = datetime(2026, 10, 1, 6, tzinfo=UTC)


def env(server: FakeGitHub, state: Path) -> dict[str, str]:
    return {
        "GITHUB_API_URL": server.url,
        "GITHUB_TOKEN": TOKEN,
        "MULTIVAC_STATE_DIR": str(state),
    }


def gather(cli: Invoke, server: FakeGitHub, state: Path, *extra: str) -> tuple[str, str]:
    result = cli(
        "gather",
        "octo/inc",
        "--no-logs",
        "--since",
        SINCE,
        "--until",
        UNTIL,
        *extra,
        env=env(server, state),
    )
    assert result.exit_code == 0, result.stderr
    return result.stdout, result.stderr


def counted(server: FakeGitHub) -> int:
    return sum(1 for r in server.requests if r.counted)


def test_repeat_gather_costs_only_conditional_run_pages(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    repo = ghserver.add_repo("octo/inc")
    repo.add_runs_bulk(150, BASE, 300, jobs_per_run=2)
    first, _ = gather(cli, ghserver, tmp_path / "s")
    assert counted(ghserver) == 1 + 2 + 150
    ghserver.reset_log()
    second, err = gather(cli, ghserver, tmp_path / "s")
    assert second == first
    assert counted(ghserver) == 0
    assert {r.status for r in ghserver.requests} == {304}
    assert len(ghserver.requests) == 3  # repo + two run pages, all 304
    assert "150 unchanged runs from the local store" in err


def test_only_new_and_changed_runs_fetch_jobs(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    repo = ghserver.add_repo("octo/inc")
    runs = repo.add_runs_bulk(20, BASE, 300, jobs_per_run=1)
    gather(cli, ghserver, tmp_path / "s")
    # a re-run of one run and one brand-new run
    rerun = runs[3]
    rerun.add_job("job-1", attempt=2, conclusion="success")
    fresh = repo.add_run(created_at=BASE + timedelta(hours=5))
    fresh.add_job("new", conclusion="success")
    ghserver.reset_log()
    out, _ = gather(cli, ghserver, tmp_path / "s")
    job_lists = {r.path for r in ghserver.requests if r.path.endswith("/jobs")}
    assert job_lists == {
        f"/repos/octo/inc/actions/runs/{rerun.id}/jobs",
        f"/repos/octo/inc/actions/runs/{fresh.id}/jobs",
    }
    full, _ = gather(cli, ghserver, tmp_path / "fresh-state")
    assert sorted(out.splitlines()) == sorted(full.splitlines())
    assert len(list(csv.DictReader(io.StringIO(out)))) == 22


def test_store_schema_is_idempotent_and_upserts(tmp_path: Path) -> None:
    run = Run(
        1,
        "o/r",
        "CI",
        ".github/workflows/ci.yml",
        1,
        "main",
        "abc",
        "push",
        "completed",
        "failure",
        BASE,
        BASE,
        "https://x/run/1",
    )
    job = Job(
        7,
        1,
        1,
        "test",
        "completed",
        "failure",
        BASE,
        BASE,
        BASE,
        ("ubuntu-latest",),
        "r1",
        "https://x/job/7",
        (Step(1, "Run tests", "failure"),),
    )
    cls = Classification("test_failure", "pytest-failed", "Run tests", 12, "FAILED t.py", "ctx")
    for _ in range(3):
        with Store.open(tmp_path) as store:
            store.save_run(run, [job], {7: cls})
    with Store.open(tmp_path) as store:
        items = list(store.stored_jobs(["o/r"], None, None))
        assert len(items) == 1
        assert items[0].job == job
        assert items[0].run == run
        assert items[0].classification == cls
        assert store.known_run(run) == ([job], {7: cls})
        changed = Run(**{**run.__dict__, "run_attempt": 2})
        assert store.known_run(changed) is None


def test_coverage_joins_windows(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        d = datetime(2026, 10, 1, tzinfo=UTC)
        store.add_coverage("o/r", d, d + timedelta(days=1))
        store.add_coverage("o/r", d + timedelta(days=1, seconds=1), d + timedelta(days=2))
        assert store.covers("o/r", d + timedelta(hours=1), d + timedelta(days=2))
        assert not store.covers("o/r", d - timedelta(hours=1), d + timedelta(days=1))
        assert not store.covers("o/r", d, d + timedelta(days=3))
        assert not store.covers("o/other", d, d + timedelta(hours=1))
