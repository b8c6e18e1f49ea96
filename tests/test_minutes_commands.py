"""`multivac usage` and `multivac capacity` end to end: the local GitHub server, the real
store, the real InfluxDB-compatible server; and `gather --steps` / runs read back."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from multivac.ingest import parse_line, read_records
from tests.conftest import TOKEN, Invoke
from tests.ghserver import FakeGitHub
from tests.servers import InfluxDB1Database, VictoriaMetrics

DAY = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday
WINDOW = ["--since", "2026-10-04", "--until", "2026-10-08"]
S = timedelta(seconds=1)


def env_for(server: FakeGitHub, **extra: str) -> dict[str, str]:
    return {"GITHUB_API_URL": server.url, "GITHUB_TOKEN": TOKEN, **extra}


def populate(server: FakeGitHub) -> None:
    """Three days of jobs on hosted Linux, Windows and macOS and a self-hosted pool."""
    repo = server.add_repo("octo/app")
    ci = repo.add_workflow("CI", ".github/workflows/ci.yml")
    # day 1: Linux 61 s (2 billable), Windows 90 s (2 × 2), macOS 30 s (1 × 10)
    run = repo.add_run(ci, DAY + timedelta(hours=10), pull_requests=[17])
    run.add_job("linux", created_at=DAY + timedelta(hours=10), duration=61)
    run.add_job("win", labels=["windows-latest"], created_at=DAY + timedelta(hours=10), duration=90)
    run.add_job("mac", labels=["macos-15"], created_at=DAY + timedelta(hours=10), duration=30)
    # created at 23:59 on day 1, running past midnight: counts on day 1
    late = repo.add_run(ci, DAY + timedelta(hours=23, minutes=59))
    late.add_job("late", created_at=late.created_at, duration=600)
    # day 2: a self-hosted queue that lasts the night
    night = repo.add_run(ci, DAY + timedelta(days=1, hours=20))
    for i in range(3):
        night.add_job(
            f"gpu-{i}",
            labels=["self-hosted", "gpu"],
            runner_group_name="Default",
            created_at=night.created_at,
            started_at=night.created_at + timedelta(hours=10 + i),
            duration=1800,
        )


def usage_rows(cli: Invoke, server: FakeGitHub, *args: str) -> list[dict[str, object]]:
    result = cli("usage", "octo/app", *WINDOW, "--json", *args, env=env_for(server))
    assert result.exit_code == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def test_usage_gathers_the_window_first_then_answers_from_the_store(
    ghserver: FakeGitHub, cli: Invoke
) -> None:
    populate(ghserver)
    rows = usage_rows(cli, ghserver)
    assert rows == [
        {
            "period": "2026-10-05",
            "group": "macos-15",
            "jobs": 1,
            "runner_minutes": 0.5,
            "billable_minutes": 10,
            "cost_usd": 0.062,
        },
        {
            "period": "2026-10-05",
            "group": "ubuntu-latest",
            "jobs": 2,
            "runner_minutes": round((61 + 600) / 60, 6),
            "billable_minutes": 2 + 10,
            "cost_usd": 0.072,
        },
        {
            "period": "2026-10-05",
            "group": "windows-latest",
            "jobs": 1,
            "runner_minutes": 1.5,
            "billable_minutes": 4,
            "cost_usd": 0.02,
        },
        {
            "period": "2026-10-06",
            "group": "self-hosted,gpu",
            "jobs": 3,
            "runner_minutes": 90.0,
            "billable_minutes": 0,
            "cost_usd": 0.0,
        },
    ]
    assert ghserver.requests_to(r"/actions/runs/\d+/jobs")
    ghserver.reset_log()
    again = cli("usage", "octo/app", *WINDOW, "--json", env=env_for(ghserver))
    assert json.loads(again.stdout) == rows
    assert not ghserver.requests_to(r"/actions/runs")  # the store covers the window now


def test_usage_by_repository_per_week_as_csv_and_table(ghserver: FakeGitHub, cli: Invoke) -> None:
    populate(ghserver)
    env = env_for(ghserver)
    result = cli("usage", "octo/app", *WINDOW, "--by", "repository", "--period", "week",
                 "--format", "csv", env=env)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (row,) = csv.DictReader(io.StringIO(result.stdout))
    assert row == {
        "period": "2026-10-05",
        "group": "octo/app",
        "jobs": "7",
        "runner_minutes": str(round((61 + 90 + 30 + 600 + 3 * 1800) / 60, 6)),
        "billable_minutes": "26",
        "cost_usd": "0.154",
    }
    table = cli("usage", "octo/app", *WINDOW, "--by", "repository", "--offline", env=env)
    assert table.exit_code == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == [
        "period", "repository", "jobs", "runner", "min", "billable", "min", "cost", "USD",
    ]  # fmt: skip
    assert table.stdout.splitlines()[-1].split() == ["total", "7", "103.0", "26", "0.15"]
    assert "prices from https://docs.github.com/" in table.stderr


def test_usage_by_failure_type_charges_the_reruns(ghserver: FakeGitHub, cli: Invoke) -> None:
    repo = ghserver.add_repo("octo/app")
    run = repo.add_run(created_at=DAY + timedelta(hours=9), conclusion="success")
    ok = run.add_job("lint", attempt=1, created_at=DAY + timedelta(hours=9), duration=30)
    run.add_job("test", attempt=1, conclusion="failure", created_at=DAY + timedelta(hours=9),
                duration=120)  # fmt: skip
    run.add_job("test", attempt=2, created_at=DAY + timedelta(hours=10), duration=100)
    run.carry_job(ok, to_attempt=2)
    rows = usage_rows(cli, ghserver, "--by", "failure_type", "--period", "month")
    # --no-logs is not given: the failed job's log is missing, so it is log_unavailable
    assert rows == [
        {
            "period": "2026-10-01",
            "group": "log_unavailable",
            "jobs": 2,
            "runner_minutes": round(220 / 60, 6),
            "billable_minutes": 4,
            "cost_usd": 0.024,
        }
    ]


def test_usage_of_an_organisation(ghserver: FakeGitHub, cli: Invoke) -> None:
    for name in ("octo/a", "octo/b"):
        run = ghserver.add_repo(name, org="octo").add_run(created_at=DAY + timedelta(hours=1))
        run.add_job("j", created_at=run.created_at, duration=60)
    ghserver.add_repo("other/c").add_run(created_at=DAY).add_job("j", created_at=DAY)
    env = env_for(ghserver)
    result = cli("usage", "--org", "octo", *WINDOW, "--by", "repository", "--json", env=env)
    assert result.exit_code == 0, result.stderr
    assert [row["group"] for row in json.loads(result.stdout)] == ["octo/a", "octo/b"]
    offline = cli("usage", "--org", "octo", *WINDOW, "--by", "repository", "--json",
                  "--offline", env=env)  # fmt: skip
    assert offline.stdout == result.stdout
    none = cli("usage", "--org", "nobody", *WINDOW, "--offline", env=env)
    assert none.exit_code == 2
    assert none.stderr.strip() == "error: no repositories of nobody are in the local store."


def test_usage_names_unknown_labels_and_takes_a_price_table(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    repo = ghserver.add_repo("octo/app")
    run = repo.add_run(created_at=DAY + timedelta(hours=1))
    run.add_job("big", labels=["build-xl"], runner_group_name="xl", created_at=run.created_at,
                duration=120)  # fmt: skip
    result = cli("usage", "octo/app", *WINDOW, "--json", env=env_for(ghserver))
    assert json.loads(result.stdout)[0]["cost_usd"] == 0.0
    assert "counted as self-hosted (no price): build-xl (1 jobs)" in result.stderr
    table = tmp_path / "prices.yaml"
    table.write_text("larger:\n  - [build-xl, linux_32_core]\n")
    priced = cli("usage", "octo/app", *WINDOW, "--json", "--offline", "--price-table",
                 str(table), env=env_for(ghserver))  # fmt: skip
    assert priced.exit_code == 0, priced.stderr
    assert json.loads(priced.stdout)[0]["cost_usd"] == 0.164
    assert "counted as self-hosted" not in priced.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--json", "--format", "csv"], "error: --json and --format csv ask for two formats"),
        (["--price-table", "missing.json"], "error: cannot read the price table missing.json"),
        (["--by", "colour"], "Invalid value for '--by'"),
        (["--org", "bad org!"], "error: --org 'bad org!' is not an organisation name."),
    ],
)
def test_bad_usage_input_is_one_sentence_exit_2(cli: Invoke, args: list[str], message: str) -> None:
    result = cli("usage", "octo/app", "--offline", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_an_empty_store_offline_says_what_to_do(cli: Invoke) -> None:
    result = cli("usage", "--offline")
    assert result.exit_code == 2
    assert "holds no runs" in result.stderr and "name a repository" in result.stderr


# ---------------------------------------------------------------------------- capacity


def test_capacity_reports_the_overnight_queue(ghserver: FakeGitHub, cli: Invoke) -> None:
    populate(ghserver)
    result = cli("capacity", "octo/app", *WINDOW, "--json", env=env_for(ghserver))
    assert result.exit_code == 0, result.stderr
    by_label = {row["label"]: row for row in json.loads(result.stdout)}
    assert by_label["self-hosted,gpu"] == {
        "label": "self-hosted,gpu",
        "max_running": 1,  # one runner: each job starts when the previous one is done
        "p95_running": 1,
        "max_queued": 3,
        "minutes_with_queue": 12 * 60,  # 20:00 to 08:00
        "busiest": "2026-10-06T20:00:00Z",
    }
    assert by_label["ubuntu-latest"]["max_running"] == 1
    assert by_label["ubuntu-latest"]["max_queued"] == 1  # five seconds, twice
    table = cli("capacity", "octo/app", *WINDOW, "--offline", "--by", "runner_group",
                env=env_for(ghserver))  # fmt: skip
    assert table.exit_code == 0, table.stderr
    groups = [line.split()[0] for line in table.stdout.splitlines()[1:]]
    assert groups == ["Default", "GitHub"]  # "GitHub Actions" splits on its space


def test_capacity_as_line_protocol_is_one_point_per_label_and_minute(
    ghserver: FakeGitHub, cli: Invoke
) -> None:
    populate(ghserver)
    result = cli("capacity", "octo/app", *WINDOW, "-f", "line-protocol", env=env_for(ghserver))
    assert result.exit_code == 0, result.stderr
    points = [parse_line(line) for line in result.stdout.splitlines()]
    gpu = [p for p in points if p.tags == {"runner_label": "self-hosted,gpu"}]
    # 20:00 to 08:30 (the last job starts at 08:00 and runs 30 min)
    assert len(gpu) == 12 * 60 + 30
    first = gpu[0]
    assert first.time_ns == int((DAY + timedelta(days=1, hours=20)).timestamp()) * 10**9
    assert first.fields == {"queued": 3, "running": 0}
    assert all(type(p).__name__ == "LoadRecord" for p in points)
    assert f"{len(points)} runner_load points." in result.stderr


# ---------------------------------------------------------------------------- end to end


def influx_env(server: FakeGitHub, vm: VictoriaMetrics) -> dict[str, str]:
    return env_for(
        server,
        INFLUX_URL=vm.url,
        INFLUX_TOKEN="t",
        INFLUX_ORG="o",
        INFLUX_BUCKET="b",
    )


def numbers(fields: Mapping[str, object]) -> dict[str, float]:
    return {
        k: float(v)  # type: ignore[arg-type]
        for k, v in fields.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def test_runs_steps_and_runner_load_reach_the_server_and_read_back(
    ghserver: FakeGitHub, cli: Invoke, vm: VictoriaMetrics, tmp_path: Path
) -> None:
    populate(ghserver)
    env = influx_env(ghserver, vm)
    # what the points should be: the same gather and capacity as files
    files = ["--state-dir", str(tmp_path / "files")]
    written = cli("gather", "octo/app", *WINDOW, "--steps", "-o", str(tmp_path / "all.csv"),
                  *files, env=env)  # fmt: skip
    assert written.exit_code == 0, written.stderr
    load_file = cli("capacity", "octo/app", *WINDOW, "-f", "line-protocol", "--offline", *files,
                    env=env)  # fmt: skip
    assert load_file.exit_code == 0, load_file.stderr
    expected = [*read_records(tmp_path / "all.csv")]
    expected += [parse_line(line) for line in load_file.stdout.splitlines()]

    gathered = cli("gather", "octo/app", *WINDOW, "--steps", "-f", "influxdb", env=env)
    assert gathered.exit_code == 0, gathered.stderr
    assert "and 3 runs points, 28 steps points" in gathered.stderr
    load = cli("capacity", "octo/app", *WINDOW, "-f", "influxdb", "--offline", env=env)
    assert load.exit_code == 0, load.stderr

    points = vm.points()
    kinds = Counter(p.measurement for p in points)
    assert kinds["runs"] == 3
    assert kinds["steps"] == 7 * 4  # each job's four completed steps
    assert kinds["runner_load"] == sum(1 for r in expected if r.measurement == "runner_load")
    assert f"{kinds['runner_load']} points written to InfluxDB" in load.stderr
    assert len(points) == len(expected)
    stored = {(p.measurement, p.time_ns // 10**6, tuple(sorted(p.tags.items()))): p for p in points}
    for record in expected:
        point = stored[
            (record.measurement, record.time_ns // 10**6, tuple(sorted(record.tags.items())))
        ]
        # VictoriaMetrics reads strings as 0; InfluxDB 1.x below checks the strings too
        wanted = numbers(record.fields)
        got = {key: float(point.fields[key]) for key in wanted if key in point.fields}
        assert got == pytest.approx(wanted), record
    pr = next(p for p in points if p.measurement == "runs" and p.fields.get("pr_number") == 17)
    assert (pr.fields["jobs"], pr.fields["billable_min"]) == (3, 16)
    night = [
        p
        for p in points
        if p.tags.get("runner_label") == "self-hosted,gpu" and p.fields.get("queued") == 3
    ]
    assert len(night) == 10 * 60  # all three waited until the first started at 06:00


def test_runs_steps_and_runner_load_read_back_whole_from_influxdb(
    ghserver: FakeGitHub, cli: Invoke, influxdb1_db: InfluxDB1Database
) -> None:
    populate(ghserver)
    env = env_for(ghserver)
    gathered = cli("gather", "octo/app", *WINDOW, "--steps", "-f", "line-protocol", env=env)
    assert gathered.exit_code == 0, gathered.stderr
    load = cli("capacity", "octo/app", *WINDOW, "-f", "line-protocol", "--offline", env=env)
    assert load.exit_code == 0, load.stderr
    lines = [*gathered.stdout.splitlines(), *load.stdout.splitlines()]
    influxdb1_db.write("\n".join(lines) + "\n")
    expected = {
        (r.measurement, r.time_ns, tuple(sorted(r.tags.items()))): r
        for r in map(parse_line, lines)
        if r.measurement in ("runs", "steps", "runner_load")
    }
    found = 0
    for point in influxdb1_db.points():
        if point.measurement not in ("runs", "steps", "runner_load"):
            continue
        record = expected[(point.measurement, point.time_ns, tuple(sorted(point.tags.items())))]
        assert point.fields == record.fields
        found += 1
    assert found == len(expected)
    steps = [r for r in expected.values() if r.measurement == "steps"]
    assert {r.tags["step"] for r in steps} >= {"Set up job", "Run actions/checkout@v4", "Run gpu-0"}
    runs = [r for r in expected.values() if r.measurement == "runs"]
    assert {r.fields["actor"] for r in runs} == {"octocat"}


def test_the_gather_summary_names_labels_billed_as_self_hosted(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    repo = ghserver.add_repo("octo/app")
    run = repo.add_run(created_at=DAY + timedelta(hours=1))
    for name in ("a", "b"):
        run.add_job(name, labels=["build-xl"], runner_group_name="xl", created_at=run.created_at)
    run.add_job("c", labels=["self-hosted", "gpu"], created_at=run.created_at)
    run.add_job("d", created_at=run.created_at)
    result = cli("gather", "octo/app", *WINDOW, "--no-logs", env=env_for(ghserver))
    assert result.exit_code == 0, result.stderr
    assert (
        "2 jobs on unknown runners billed as self-hosted: build-xl (2) "
        "(map them with --price-table)" in result.stderr
    )
    table = tmp_path / "prices.json"
    table.write_text('{"larger": [["build-xl", "linux_32_core"]]}')
    priced = cli("gather", "octo/app", *WINDOW, "--no-logs", "--price-table", str(table),
                 env=env_for(ghserver))  # fmt: skip
    assert priced.exit_code == 0, priced.stderr
    assert "unknown runners" not in priced.stderr
    costs = {
        row["job_name"]: row["cost_usd"]
        for row in csv.DictReader(io.StringIO(priced.stdout))
        if row["measurement"] != "runs"
    }
    assert costs == {"a": "0.082", "b": "0.082", "c": "0.0", "d": "0.006"}
