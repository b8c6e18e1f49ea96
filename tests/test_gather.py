"""`multivac gather` end to end: PyGithub over HTTP against the local GitHub server."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from multivac.model import RUNS, STEPS, format_time_ns, lean_offset_ns, to_ns
from tests.conftest import TOKEN, Invoke
from tests.ghserver import FakeGitHub

NOW = datetime.now(UTC).replace(microsecond=0)


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def job_rows(text: str) -> list[dict[str, str]]:
    """The job records of a CSV output (a gather also writes a `runs` row per run)."""
    return [row for row in rows(text) if row["measurement"] not in (RUNS, STEPS)]


def run_rows(text: str) -> list[dict[str, str]]:
    return [row for row in rows(text) if row["measurement"] == RUNS]


def env_for(server: FakeGitHub, **extra: str) -> dict[str, str]:
    return {"GITHUB_API_URL": server.url, "GITHUB_TOKEN": TOKEN, **extra}


def test_csv_columns_durations_and_tags(ghserver: FakeGitHub, cli: Invoke) -> None:
    repo = ghserver.add_repo("octo/demo")
    wf = repo.add_workflow("CI", ".github/workflows/ci.yml")
    created = NOW - timedelta(hours=3)
    run = repo.add_run(wf, created, branch="feature/x", head_sha="a" * 40)
    run.add_job(
        "build",
        conclusion="success",
        created_at=created,
        started_at=created + timedelta(seconds=12),
        completed_at=created + timedelta(seconds=112),
        labels=["self-hosted", "Linux", "ARM64"],
        runner_name="runner-7",
        runner_group_name="Default",
    )
    run.add_job("docs", conclusion="skipped")
    result = cli("gather", "octo/demo", "--no-logs", env=env_for(ghserver))
    assert result.exit_code == 0, result.stderr
    out = job_rows(result.stdout)
    assert len(out) == 1
    row = out[0]
    assert list(row)[:2] == ["time", "measurement"]
    assert row["measurement"] == "successful_jobs"
    assert row["time"] == created.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert float(row["queued_s"]) == 12.0
    assert float(row["in_progress_s"]) == 100.0
    assert row["platform"] == "linux-arm64"
    assert row["runner_label"] == "self-hosted,Linux,ARM64"
    assert row["branch"] == "feature/x"
    assert row["commit_sha"] == "a" * 40
    assert row["status"] == "success"
    assert row["workflow"] == "CI"
    assert row["run_id"] == str(run.id)
    assert row["runner_name"] == "runner-7"
    # a self-hosted runner: its minutes count, GitHub bills none of them
    assert (float(row["runner_min"]), row["billable_min"], row["cost_usd"]) == (
        100 / 60,
        "0",
        "0.0",
    )
    assert row["runner_group"] == "Default"
    # the run's own row shares the header; the job's columns stay empty there
    (run_row,) = run_rows(result.stdout)
    # at the run's creation, plus the run id's sub-second offset (runs have no id tag)
    assert run_row["time"] == format_time_ns(to_ns(created) + lean_offset_ns(run.id))
    assert (run_row["repository"], run_row["workflow"], run_row["branch"]) == (
        "octo/demo",
        "CI",
        "feature/x",
    )
    assert (run_row["event"], run_row["conclusion"], run_row["run_attempt"]) == (
        "push",
        "success",
        "1",
    )
    assert (run_row["jobs"], run_row["failed_jobs"], run_row["billable_min"]) == ("1", "0", "0")
    assert float(run_row["duration_s"]) == 112.0  # run_started_at to the job's completion
    assert float(run_row["queued_s"]) == 12.0
    assert run_row["actor"] == "octocat"
    assert run_row["html_url"] == f"https://github.com/octo/demo/actions/runs/{run.id}"
    assert run_row["job_id"] == run_row["job_name"] == run_row["status"] == ""
    assert "1 runs, 2 jobs, 1 records" in result.stderr
    assert "and 1 runs points" in result.stderr
    assert "1 skipped jobs left out" in result.stderr
    assert TOKEN not in result.stdout + result.stderr


def test_more_than_100_runs_and_100_jobs(ghserver: FakeGitHub, cli: Invoke) -> None:
    repo = ghserver.add_repo("octo/big")
    repo.add_runs_bulk(230, NOW - timedelta(hours=20), 60, jobs_per_run=1)
    big = repo.add_run(created_at=NOW - timedelta(hours=1))
    for k in range(250):
        big.add_job(f"matrix-{k}", conclusion="success")
    result = cli("gather", "octo/big", "--no-logs", "--format", "json", env=env_for(ghserver))
    assert result.exit_code == 0, result.stderr
    records = [r for r in json.loads(result.stdout) if r["measurement"] != RUNS]
    assert len(records) == 230 + 250
    assert len({r["job_id"] for r in records}) == 480
    assert sum(1 for r in records if r["run_id"] == str(big.id)) == 250
    pages = [r for r in ghserver.requests if r.path.endswith(f"/runs/{big.id}/jobs")]
    assert len(pages) == 3  # 250 jobs at 100 per page
    assert all(r.query.get("per_page") == "100" for r in pages)


def test_the_1000_cap_is_split_until_nothing_is_dropped(ghserver: FakeGitHub, cli: Invoke) -> None:
    repo = ghserver.add_repo("octo/busy")
    repo.add_runs_bulk(2600, NOW - timedelta(hours=23), 30, jobs_per_run=1)
    result = cli("gather", "octo/busy", "--no-logs", "--concurrency", "8", env=env_for(ghserver))
    assert result.exit_code == 0, result.stderr
    out = job_rows(result.stdout)
    assert len(out) == 2600
    assert len(run_rows(result.stdout)) == 2600
    assert len({r["run_id"] for r in out}) == 2600
    assert "GitHub lists only" not in result.stderr


def test_rerun_attempts_emit_each_job_once(ghserver: FakeGitHub, cli: Invoke) -> None:
    repo = ghserver.add_repo("octo/rerun")
    created = NOW - timedelta(hours=2)
    run = repo.add_run(created_at=created, conclusion="success")
    ok = run.add_job("lint", attempt=1, conclusion="success")
    run.add_job("test", attempt=1, conclusion="failure")
    run.add_job("test", attempt=2, conclusion="success")
    run.carry_job(ok, to_attempt=2)
    result = cli("gather", "octo/rerun", "--no-logs", env=env_for(ghserver))
    assert result.exit_code == 0, result.stderr
    out = job_rows(result.stdout)
    assert sorted((r["job_name"], r["run_attempt"], r["measurement"]) for r in out) == [
        ("lint", "1", "successful_jobs"),
        ("test", "1", "unknown_failure"),
        ("test", "2", "successful_jobs"),
    ]
    assert len({r["job_id"] for r in out}) == 3
    failed = next(r for r in out if r["measurement"] == "unknown_failure")
    assert failed["flaky"] == "true"
    jobs_requests = [r for r in ghserver.requests if r.path.endswith("/jobs")]
    assert all(r.query.get("filter") == "all" for r in jobs_requests)
    # one runs point per attempt: the first from its jobs, the latest as GitHub says
    attempts = {r["run_attempt"]: r for r in run_rows(result.stdout)}
    assert sorted(attempts) == ["1", "2"]
    assert (attempts["1"]["conclusion"], attempts["1"]["jobs"], attempts["1"]["failed_jobs"]) == (
        "failure",
        "2",
        "1",
    )
    assert (attempts["2"]["conclusion"], attempts["2"]["jobs"], attempts["2"]["failed_jobs"]) == (
        "success",
        "1",
        "0",
    )
    assert attempts["1"]["html_url"].endswith(f"/runs/{run.id}/attempts/1")
    assert attempts["2"]["html_url"].endswith(f"/runs/{run.id}")


def test_unfinished_runs_skipped_jobs_and_odd_conclusions(
    ghserver: FakeGitHub, cli: Invoke
) -> None:
    repo = ghserver.add_repo("octo/odd")
    created = NOW - timedelta(hours=2)
    running = repo.add_run(created_at=created, status="in_progress", conclusion=None)
    running.add_job("slow", status="in_progress", conclusion=None, completed_at=None)
    done = repo.add_run(created_at=created + timedelta(minutes=1))
    done.add_job("a", conclusion="success")
    done.add_job("b", conclusion="skipped")
    done.add_job("c", conclusion="neutral")
    done.add_job("d", conclusion="cancelled")
    done.add_job("e", conclusion="timed_out")
    done.add_job("never", conclusion="cancelled", started_at=None, completed_at=None)
    result = cli("gather", "octo/odd", "--no-logs", env=env_for(ghserver))
    assert result.exit_code == 0, result.stderr
    out = job_rows(result.stdout)
    assert {r["run_id"] for r in out} == {str(done.id)}
    by_name = {r["job_name"]: r for r in out}
    assert set(by_name) == {"a", "c", "d", "e", "never"}
    assert by_name["c"]["measurement"] == "neutral"
    assert by_name["d"]["measurement"] == "cancelled"
    assert by_name["e"]["measurement"] == "unknown_failure"
    assert by_name["never"]["in_progress_s"] == ""
    assert by_name["never"]["queued_s"] == ""
    assert "1 jobs concluded neutral" in result.stderr


def test_clock_skew_is_clamped_and_counted(ghserver: FakeGitHub, cli: Invoke) -> None:
    repo = ghserver.add_repo("octo/skew")
    created = NOW - timedelta(hours=2)
    run = repo.add_run(created_at=created)
    run.add_job(
        "carried",
        conclusion="success",
        created_at=created + timedelta(seconds=30),
        started_at=created,
        completed_at=created + timedelta(seconds=50),
    )
    result = cli("gather", "octo/skew", "--no-logs", env=env_for(ghserver))
    assert result.exit_code == 0, result.stderr
    (row,) = job_rows(result.stdout)
    assert float(row["queued_s"]) == 0.0
    assert float(row["in_progress_s"]) == 50.0
    assert "1 negative durations clamped to 0" in result.stderr


def test_filters_branch_event_workflow_and_latest(ghserver: FakeGitHub, cli: Invoke) -> None:
    repo = ghserver.add_repo("octo/filters")
    ci = repo.add_workflow("CI", ".github/workflows/ci.yml")
    nightly = repo.add_workflow("Nightly build", ".github/workflows/nightly.yml")
    base = NOW - timedelta(hours=5)
    for i in range(6):
        run = repo.add_run(
            ci if i % 2 else nightly,
            base + timedelta(minutes=i),
            branch="main" if i < 4 else "dev",
            event="push" if i % 3 else "schedule",
        )
        run.add_job(f"job{i}", conclusion="success")
    env = env_for(ghserver)

    def names(*args: str) -> set[str]:
        result = cli("gather", "octo/filters", "--no-logs", *args, env=env)
        assert result.exit_code == 0, result.stderr
        return {r["job_name"] for r in job_rows(result.stdout)}

    assert names("--workflow", "ci.yml") == {"job1", "job3", "job5"}
    assert names("--workflow", "Nightly build") == {"job0", "job2", "job4"}
    assert names("--branch", "dev") == {"job4", "job5"}
    assert names("--branch", "dev", "--branch", "main") == {f"job{i}" for i in range(6)}
    assert names("--event", "schedule") == {"job0", "job3"}
    assert names("--latest", "2") == {"job4", "job5"}
    assert names("--latest", "2", "--workflow", "ci.yml", "--workflow", "nightly.yml") == {
        "job4",
        "job5",
    }
    bad = cli("gather", "octo/filters", "--no-logs", "--workflow", "nope.yml", env=env)
    assert bad.exit_code != 0
    assert "no workflow named 'nope.yml'" in bad.stderr
    assert "ci.yml" in bad.stderr


def test_window_since_until(ghserver: FakeGitHub, cli: Invoke) -> None:
    repo = ghserver.add_repo("octo/window")
    for day in range(1, 6):
        run = repo.add_run(created_at=datetime(2026, 10, day, 12, tzinfo=UTC))
        run.add_job(f"day{day}", conclusion="success")
    result = cli(
        "gather",
        "octo/window",
        "--no-logs",
        "--since",
        "2026-10-02",
        "--until",
        "2026-10-04T12:00:00",
        env=env_for(ghserver),
    )
    assert result.exit_code == 0, result.stderr
    assert {r["job_name"] for r in job_rows(result.stdout)} == {"day2", "day3", "day4"}


def test_lean_tags_keep_points_apart(ghserver: FakeGitHub, cli: Invoke) -> None:
    repo = ghserver.add_repo("octo/lean")
    created = NOW - timedelta(hours=1)
    run = repo.add_run(created_at=created)
    for _ in range(3):
        run.add_job("same", conclusion="success", created_at=created, labels=["ubuntu-latest"])
    result = cli(
        "gather",
        "octo/lean",
        "--no-logs",
        "--lean-tags",
        "-f",
        "line-protocol",
        env=env_for(ghserver),
    )
    assert result.exit_code == 0, result.stderr
    lines = [ln for ln in result.stdout.strip().splitlines() if not ln.startswith(f"{RUNS},")]
    assert len(lines) == 3
    assert len({line.rsplit(" ", 1)[1] for line in lines}) == 3  # distinct timestamps
    for line in lines:
        tags = line.split(" ", 1)[0]
        assert "job_id=" not in tags and "run_id=" not in tags and "commit_sha=" not in tags
        fields = line[len(tags) + 1 : line.rindex(" ")]
        assert re.search(r"(^|,)job_id=\d+i(,|$)", fields), fields
        assert re.search(r'(^|,)commit_sha="[0-9a-f]+"(,|$)', fields), fields


def test_output_file_and_stdout_stays_data(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    repo = ghserver.add_repo("octo/out")
    repo.add_run(created_at=NOW - timedelta(hours=1)).add_job("x", conclusion="success")
    target = tmp_path / "sub" / "out.json"
    result = cli(
        "gather", "octo/out", "--no-logs", "-f", "json", "-o", str(target), env=env_for(ghserver)
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert json.loads(target.read_text())[0]["job_name"] == "x"


def test_default_repository_from_environment(ghserver: FakeGitHub, cli: Invoke) -> None:
    repo = ghserver.add_repo("octo/envrepo")
    repo.add_run(created_at=NOW - timedelta(hours=1)).add_job("x", conclusion="success")
    result = cli("gather", "--no-logs", env=env_for(ghserver, GITHUB_REPOSITORY="octo/envrepo"))
    assert result.exit_code == 0, result.stderr
    assert rows(result.stdout)[0]["repository"] == "octo/envrepo"


def test_dotenv_in_cwd_is_read_but_never_overrides(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    repo = ghserver.add_repo("octo/dotenv")
    repo.add_run(created_at=NOW - timedelta(hours=1)).add_job("x", conclusion="success")
    (tmp_path / ".env").write_text(
        f"GITHUB_API_URL={ghserver.url}\nGITHUB_REPOSITORY=octo/dotenv\n"
    )
    result = cli("gather", "--no-logs")
    assert result.exit_code == 0, result.stderr
    assert rows(result.stdout)[0]["repository"] == "octo/dotenv"
    overridden = cli("gather", "--no-logs", env={"GITHUB_REPOSITORY": "octo/missing"})
    assert overridden.exit_code == 1
    assert "octo/missing" in overridden.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["gather", "octo/x", "--since", "yesterday"], "--since"),
        (["gather", "not-a-repo"], "OWNER/REPO"),
        (["gather"], "GITHUB_REPOSITORY"),
        (["gather", "octo/x", "-f", "influxdb"], "INFLUX_URL"),
        (["gather", "octo/x", "--since", "1d", "--until", "2d"], "after --until"),
        (["gather", "octo/x", "--max-wait", "soon"], "--max-wait"),
        (["report", "not-a-repo"], "OWNER/REPO"),
        (["reclassify", "not-a-repo"], "OWNER/REPO"),
        # an empty value (an unset shell variable) is a mistake, not the default window
        (["gather", "octo/x", "--since", ""], "--since is empty"),
        (["gather", "octo/x", "--until", ""], "--until is empty"),
        (["usage", "octo/x", "--offline", "--since", ""], "--since is empty"),
        (["reclassify", "--since", ""], "--since is empty"),
    ],
)
def test_bad_settings_are_one_sentence_exit_2(cli: Invoke, args: list[str], needle: str) -> None:
    result = cli(*args, env={"GITHUB_API_URL": "http://127.0.0.1:9"})
    assert result.exit_code == 2, (args, result.stderr)
    assert needle in result.stderr, (args, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_bad_github_url_is_exit_2(cli: Invoke) -> None:
    bad_url = cli("gather", "octo/x", env={"GITHUB_API_URL": "ftp://example"})
    assert bad_url.exit_code == 2
    assert "GITHUB_API_URL" in bad_url.stderr


def test_github_errors_name_the_problem_and_hide_the_token(
    ghserver: FakeGitHub, cli: Invoke
) -> None:
    ghserver.required_token = "the-right-token-123456"
    result = cli("gather", "octo/none", "--no-logs", env=env_for(ghserver))
    assert result.exit_code == 1
    assert "401" in result.stderr and "GITHUB_TOKEN" in result.stderr
    assert TOKEN not in result.stderr
    ghserver.required_token = None
    missing = cli("gather", "octo/none", "--no-logs", env=env_for(ghserver))
    assert missing.exit_code == 1
    assert "repository octo/none: not found on GitHub (404)" in missing.stderr
    unreachable = cli(
        "gather", "octo/none", "--no-logs", env={"GITHUB_API_URL": "http://127.0.0.1:9"}
    )
    assert unreachable.exit_code == 1
    assert "cannot reach GitHub" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr


def test_requests_are_paced_without_pygithub_throttle(ghserver: FakeGitHub, cli: Invoke) -> None:
    repo = ghserver.add_repo("octo/fast")
    repo.add_runs_bulk(150, NOW - timedelta(hours=10), 60, jobs_per_run=2)
    result = cli("gather", "octo/fast", "--no-logs", env=env_for(ghserver))
    assert result.exit_code == 0, result.stderr
    counted = [r for r in ghserver.requests if not r.path.startswith("/rate_limit")]
    # 1 repo check + 2 run pages + one job list per run
    assert len(counted) == 1 + 2 + 150
    assert "153 requests" in result.stderr
