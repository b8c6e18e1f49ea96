"""The local store: incremental gathers, conditional requests, offline reports."""

from __future__ import annotations

import csv
import io
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from multivac.model import Classification, Job, Run, Step
from multivac.store import SCHEMA_VERSION, KnownRun, Store
from tests.conftest import TOKEN, Invoke
from tests.factories import make_job, make_run
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
    measurements = Counter(row["measurement"] for row in csv.DictReader(io.StringIO(out)))
    # 22 jobs; a runs point per attempt: 20 runs, the re-run's second attempt, the new run
    assert (measurements.pop("runs"), measurements.total()) == (22, 22)


def test_store_schema_is_idempotent_and_upserts(tmp_path: Path) -> None:
    run = make_run(1, repository="o/r", conclusion="failure", created_at=BASE)
    job = make_job(7, 1, "failure", queued=0, ran=0, created_at=BASE, runner_name="r1")
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
        assert store.known_run(run) == KnownRun([job], {7: cls}, frozenset())
        changed = Run(**{**run.__dict__, "run_attempt": 2})
        assert store.known_run(changed) is None


def test_pending_jobs_are_remembered_until_classified(tmp_path: Path) -> None:
    run = make_run(1, conclusion="failure")
    ok, bad = make_job(7, 1, "success"), make_job(8, 1, "failure")
    with Store.open(tmp_path) as store:
        store.save_run(run, [ok, bad], {}, {8: "the log host kept failing"})
        assert store.known_run(run) == KnownRun([ok, bad], {}, frozenset({8}))
        assert store.pending_jobs() == 1
        cls = Classification("test_failure", "r", "Run tests", 3, "FAILED")
        store.save_run(run, [ok, bad], {8: cls})
        assert store.known_run(run) == KnownRun([ok, bad], {8: cls}, frozenset())
        assert store.pending_jobs() == 0


# the first schema's tables that later versions changed, as multivac 0.1 created them
V1_TABLES = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY, repository TEXT NOT NULL, workflow TEXT NOT NULL,
    workflow_path TEXT NOT NULL, run_attempt INTEGER NOT NULL, branch TEXT NOT NULL,
    commit_sha TEXT NOT NULL, event TEXT NOT NULL, status TEXT NOT NULL, conclusion TEXT,
    created_at TEXT, updated_at TEXT, html_url TEXT NOT NULL,
    jobs_complete INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, run_attempt INTEGER NOT NULL,
    name TEXT NOT NULL, status TEXT NOT NULL, conclusion TEXT, created_at TEXT,
    started_at TEXT, completed_at TEXT, labels TEXT NOT NULL, runner_name TEXT NOT NULL,
    html_url TEXT NOT NULL, steps TEXT NOT NULL, workflow TEXT NOT NULL, branch TEXT NOT NULL,
    commit_sha TEXT NOT NULL
);
CREATE TABLE classifications (
    job_id INTEGER PRIMARY KEY, type TEXT NOT NULL, rule TEXT NOT NULL, step TEXT,
    line_number INTEGER, evidence TEXT NOT NULL, excerpt TEXT NOT NULL,
    classified_at REAL NOT NULL
);
CREATE TABLE emitted (
    job_id INTEGER PRIMARY KEY, measurement TEXT NOT NULL, time_ns INTEGER NOT NULL,
    flaky INTEGER NOT NULL DEFAULT 0
);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO runs VALUES (1, 'o/r', 'CI', 'ci.yml', 1, 'main', 'abc', 'push', 'completed',
    'failure', '2026-10-01T06:00:00Z', '2026-10-01T06:00:00Z', 'https://x/run/1', 1);
INSERT INTO jobs VALUES (8, 1, 1, 'test', 'completed', 'failure', '2026-10-01T06:00:00Z',
    '2026-10-01T06:00:10Z', '2026-10-01T06:01:10Z', '["ubuntu-latest"]', 'r1', 'https://x/8',
    '[[1, "Run tests", "failure"]]', 'CI', 'main', 'abc');
INSERT INTO emitted VALUES (8, 'log_unavailable', 1790834400000000000, 0);
"""


def test_a_first_version_store_is_upgraded_in_place(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / Store.FILENAME) as db:
        db.executescript(V1_TABLES)
    with Store.open(tmp_path, github="https://api.github.com") as store:
        assert store.repositories() == ["o/r"]  # runs stored before count for every GitHub
        (emitted,) = store.emitted([8]).values()
        assert emitted.key is None and emitted.measurement == "log_unavailable"
        version = store.db.execute("SELECT value FROM meta WHERE key='schema_version'")
        assert version.fetchone()[0] == str(SCHEMA_VERSION)
        # facts the first schema did not keep read back as unknown
        (item,) = store.stored_jobs(["o/r"], None, None)
        assert (item.run.run_started_at, item.run.actor, item.run.pr_number) == (None, "", None)
        assert item.job.runner_group == ""
        assert item.job.steps == (Step(1, "Run tests", "failure"),)
        # and the upgraded store keeps them from now on
        run = Run(**{**item.run.__dict__, "actor": "octocat", "pr_number": 12})
        job = Job(**{**item.job.__dict__, "runner_group": "Default"})
        store.save_run(run, [job], {})
        (again,) = store.stored_jobs(["o/r"], None, None)
        assert (again.run, again.job) == (run, job)


def test_run_job_and_step_facts_round_trip(tmp_path: Path) -> None:
    run = make_run(
        1, run_started_at=BASE + timedelta(seconds=3), actor="dependabot[bot]", pr_number=42
    )
    steps = (
        Step(
            1, "Set up job", "success", BASE + timedelta(seconds=10), BASE + timedelta(seconds=12)
        ),
        Step(2, "Run tests", "failure", BASE + timedelta(seconds=12), BASE + timedelta(seconds=70)),
        Step(3, "Upload", None),
    )
    job = make_job(7, 1, "failure", steps=steps, runner_group="linux-large")
    with Store.open(tmp_path) as store:
        store.save_run(run, [job], {})
    with Store.open(tmp_path) as store:
        (item,) = store.stored_jobs(["octo/app"], None, None)
        assert item.run == run
        assert item.job == job


def test_coverage_joins_windows(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        d = datetime(2026, 10, 1, tzinfo=UTC)
        store.add_coverage("o/r", d, d + timedelta(days=1))
        store.add_coverage("o/r", d + timedelta(days=1, seconds=1), d + timedelta(days=2))
        assert store.covers("o/r", d + timedelta(hours=1), d + timedelta(days=2))
        assert not store.covers("o/r", d - timedelta(hours=1), d + timedelta(days=1))
        assert not store.covers("o/r", d, d + timedelta(days=3))
        assert not store.covers("o/other", d, d + timedelta(hours=1))
