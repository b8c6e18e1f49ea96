"""InfluxDB round trips on real servers, escaping, and InfluxDB faults losing nothing."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from multivac.ingest import parse_time
from multivac.model import RUN_TAG_KEYS, RUNS, TAG_KEYS, record_type
from tests.conftest import TOKEN, Invoke
from tests.ghserver import FakeGitHub
from tests.servers import InfluxDB1Database, VictoriaMetrics

NOW = datetime.now(UTC).replace(microsecond=0)
INFLUX_TOKEN = "influx-secret-token-987654321"
NUMERIC = (
    "queued_s",
    "in_progress_s",
    "runner_min",
    "billable_min",
    "cost_usd",
    "duration_s",
    "jobs",
    "failed_jobs",
)


def influx_env(server: FakeGitHub, url: str, state: Path, **extra: str) -> dict[str, str]:
    return {
        "GITHUB_API_URL": server.url,
        "GITHUB_TOKEN": TOKEN,
        "INFLUX_URL": url,
        "INFLUX_TOKEN": INFLUX_TOKEN,
        "INFLUX_ORG": "acme",
        "INFLUX_BUCKET": "ci",
        "MULTIVAC_STATE_DIR": str(state),
        **extra,
    }


def populate(server: FakeGitHub, runs: int = 20, name: str = "octo/influx") -> None:
    repo = server.add_repo(name)
    repo.add_runs_bulk(
        runs,
        NOW - timedelta(hours=12),
        300,
        jobs_per_run=3,
        job_conclusions=("success", "failure", "cancelled"),
    )


def csv_rows(cli: Invoke, server: FakeGitHub, state: Path, *extra: str) -> list[dict[str, str]]:
    result = cli(
        "gather",
        "octo/influx",
        "--no-logs",
        *extra,
        env={"GITHUB_API_URL": server.url, "MULTIVAC_STATE_DIR": str(state)},
    )
    assert result.exit_code == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout)))


PointId = tuple[str, int, tuple[tuple[str, str], ...]]


def point_id(measurement: str, time_ns: int, tags: dict[str, str]) -> PointId:
    """Measurement, time in milliseconds (what VictoriaMetrics keeps) and tag set."""
    return measurement, time_ns // 1_000_000, tuple(sorted(tags.items()))


def row_id(row: dict[str, str]) -> PointId:
    """The point a CSV row stands for: the tags of its record type that it has."""
    schema = record_type(row["measurement"]).SCHEMA
    tags = {key: row[key] for key in schema.tags if row[key]}
    return point_id(row["measurement"], parse_time(row["time"]), tags)


def test_gather_to_victoriametrics_reads_back_every_point(
    ghserver: FakeGitHub, cli: Invoke, vm: VictoriaMetrics, tmp_path: Path
) -> None:
    populate(ghserver)
    expected = csv_rows(cli, ghserver, tmp_path / "csv")
    result = cli(
        "gather",
        "octo/influx",
        "--no-logs",
        "-f",
        "influxdb",
        env=influx_env(ghserver, vm.url, tmp_path / "state"),
    )
    assert result.exit_code == 0, result.stderr
    # 60 jobs and a runs point per run
    assert "80 points written to InfluxDB" in result.stderr
    points = vm.points()
    assert len(points) == 80 == len(expected)
    assert sum(1 for p in points if p.measurement == RUNS) == 20
    stored = {point_id(p.measurement, p.time_ns, dict(p.tags)): p for p in points}
    for row in expected:
        point = stored[row_id(row)]
        for tag in (*TAG_KEYS, *RUN_TAG_KEYS):
            assert point.tags.get(tag, "") == row[tag], tag
        for field in NUMERIC:
            if row[field]:
                assert point.fields[field] == pytest.approx(float(row[field]))
        assert point.time_ns // 1_000_000 == parse_time(row["time"]) // 1_000_000
    assert INFLUX_TOKEN not in result.stderr + result.stdout


def test_writing_the_same_window_twice_leaves_the_same_points(
    ghserver: FakeGitHub, cli: Invoke, vm: VictoriaMetrics, tmp_path: Path
) -> None:
    populate(ghserver, runs=10)
    env = influx_env(ghserver, vm.url, tmp_path / "state")
    for _ in range(2):
        result = cli("gather", "octo/influx", "--no-logs", "-f", "influxdb", env=env)
        assert result.exit_code == 0, result.stderr
    fresh = influx_env(ghserver, vm.url, tmp_path / "other-state")
    result = cli("gather", "octo/influx", "--no-logs", "-f", "influxdb", env=fresh)
    assert result.exit_code == 0, result.stderr
    points = vm.points()
    assert len(points) == 40  # 30 jobs, 10 runs
    assert len({point_id(p.measurement, p.time_ns, dict(p.tags)) for p in points}) == 40


def test_lean_tags_keep_every_job_on_victoriametrics(
    ghserver: FakeGitHub, cli: Invoke, vm: VictoriaMetrics, tmp_path: Path
) -> None:
    repo = ghserver.add_repo("octo/influx")
    created = NOW - timedelta(hours=1)
    for _ in range(5):
        run = repo.add_run(created_at=created)
        run.add_job("same", conclusion="success", created_at=created, labels=["ubuntu-latest"])
    result = cli(
        "gather",
        "octo/influx",
        "--no-logs",
        "-f",
        "influxdb",
        "--lean-tags",
        env=influx_env(ghserver, vm.url, tmp_path / "state"),
    )
    assert result.exit_code == 0, result.stderr
    points = vm.points()
    jobs = [p for p in points if p.measurement != RUNS]
    assert len(jobs) == 5
    assert all("job_id" not in p.tags for p in jobs)
    assert len({p.time_ns for p in jobs}) == 5
    # five runs of one workflow created in one second: the run id's offset keeps them apart
    runs = [p for p in points if p.measurement == RUNS]
    assert len(runs) == 5
    assert len({p.time_ns for p in runs}) == 5


TRICKY = [
    "build, test = all",
    'say "hi" \\o/',
    "C:\\dir\\file",
    "naïve ü 日本 😀",
    "tab\there",
]


def test_line_protocol_round_trips_through_influxdb_parser(
    ghserver: FakeGitHub, cli: Invoke, influxdb1_db: InfluxDB1Database, tmp_path: Path
) -> None:
    repo = ghserver.add_repo("octo/influx")
    wf = repo.add_workflow('CI, "nightly" = yes', ".github/workflows/ci.yml")
    base = NOW - timedelta(hours=2)
    for i, name in enumerate(TRICKY):
        run = repo.add_run(wf, base + timedelta(minutes=i), branch=f"feature/{name}")
        run.add_job(
            name,
            conclusion="success",
            runner_name=f"runner {name}",
            labels=["self-hosted", f"label {name}"],
        )
    result = cli(
        "gather",
        "octo/influx",
        "--no-logs",
        "-f",
        "line-protocol",
        env={"GITHUB_API_URL": ghserver.url},
    )
    assert result.exit_code == 0, result.stderr
    # one line per job and per run: no value broke a line
    assert len(result.stdout.strip("\n").split("\n")) == 2 * len(TRICKY)
    influxdb1_db.write(result.stdout)
    json_result = cli(
        "gather",
        "octo/influx",
        "--no-logs",
        "-f",
        "json",
        env={"GITHUB_API_URL": ghserver.url},
    )
    rows = json.loads(json_result.stdout)
    expected = {r["job_id"]: r for r in rows if r["measurement"] != RUNS}
    expected_runs = {r["branch"]: r for r in rows if r["measurement"] == RUNS}
    stored = influxdb1_db.points()
    points = [p for p in stored if p.measurement != RUNS]
    assert len(points) == len(TRICKY)
    for run_point in (p for p in stored if p.measurement == RUNS):
        run_row = expected_runs.pop(run_point.tags["branch"])
        for tag in RUN_TAG_KEYS:
            assert run_point.tags.get(tag) == run_row[tag], tag
        assert run_point.fields["html_url"] == run_row["html_url"]
    assert expected_runs == {}
    for point in points:
        row = expected[point.tags["job_id"]]
        for tag in TAG_KEYS:
            assert point.tags.get(tag) == row[tag], (tag, point.tags.get(tag), row[tag])
        assert point.fields["runner_name"] == row["runner_name"]
        assert point.fields["html_url"] == row["html_url"]
        assert point.fields["queued_s"] == row["queued_s"]
    names = {p.tags["job_name"] for p in points}
    assert names == {
        "build, test = all",
        'say "hi" \\o/',
        "C:\\dir\\file",
        "naïve ü 日本 😀",
        "tab here",
    }
    assert {p.tags["workflow"] for p in points} == {'CI, "nightly" = yes'}


# ---------------------------------------------------------------------------- faults


class _Failing(BaseHTTPRequestHandler):
    """An InfluxDB 2 write endpoint that answers a chosen error: VictoriaMetrics never
    rejects a write, so this stands in for InfluxDB's own 4xx/5xx answers."""

    status = 422
    body = (
        b'{"code":"unprocessable entity","message":"failure writing points: field type conflict"}'
    )
    hits = 0

    def do_POST(self) -> None:
        type(self).hits += 1
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def failing_influx() -> Iterator[tuple[str, type[_Failing]]]:
    handler = type("Handler", (_Failing,), {"hits": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_rejected_write_reports_the_server_message_and_sets_data_aside(
    ghserver: FakeGitHub, cli: Invoke, failing_influx: tuple[str, type[_Failing]], tmp_path: Path
) -> None:
    url, handler = failing_influx
    populate(ghserver, runs=4)
    state = tmp_path / "state"
    result = cli(
        "gather", "octo/influx", "--no-logs", "-f", "influxdb", env=influx_env(ghserver, url, state)
    )
    assert result.exit_code == 1
    assert "field type conflict" in result.stderr
    assert "HTTP 422" in result.stderr
    assert "Traceback" not in result.stderr
    rejected = list((state / "spool" / "rejected").glob("*.lp"))
    assert len(rejected) == 1
    assert len(rejected[0].read_text().splitlines()) == 12 + 4  # the jobs and the runs
    assert handler.hits == 1  # a 4xx is not retried
    assert INFLUX_TOKEN not in result.stderr


def test_bad_bucket_or_token_is_one_line_and_spooled(
    ghserver: FakeGitHub, cli: Invoke, failing_influx: tuple[str, type[_Failing]], tmp_path: Path
) -> None:
    url, handler = failing_influx
    handler.status = 401
    handler.body = b'{"code":"unauthorized","message":"unauthorized access"}'
    populate(ghserver, runs=2)
    state = tmp_path / "state"
    result = cli(
        "gather", "octo/influx", "--no-logs", "-f", "influxdb", env=influx_env(ghserver, url, state)
    )
    assert result.exit_code == 1
    assert "unauthorized access" in result.stderr and "HTTP 401" in result.stderr
    assert len(list((state / "spool").glob("*.lp"))) == 1


def test_server_down_spools_then_replay_delivers(
    ghserver: FakeGitHub, cli: Invoke, vm: VictoriaMetrics, tmp_path: Path
) -> None:
    populate(ghserver, runs=10)
    state = tmp_path / "state"
    env = influx_env(ghserver, vm.url, state)
    vm.stop()
    try:
        result = cli("gather", "octo/influx", "--no-logs", "-f", "influxdb", env=env)
    finally:
        vm.start()
    assert result.exit_code == 1
    assert "40 spooled" in result.stderr  # 30 jobs, 10 runs
    assert "multivac replay" in result.stderr
    spooled = list((state / "spool").glob("*.lp"))
    assert spooled
    assert all(INFLUX_TOKEN.encode() not in p.read_bytes() for p in spooled)
    assert vm.points() == []
    replay = cli("replay", env=env)
    assert replay.exit_code == 0, replay.stderr
    assert "delivered 40 spooled points" in replay.stderr
    assert list((state / "spool").glob("*.lp")) == []
    assert len(vm.points()) == 40
    again = cli("replay", env=env)
    assert again.exit_code == 0
    assert "nothing to replay" in again.stderr


def test_next_gather_delivers_the_spool_first(
    ghserver: FakeGitHub, cli: Invoke, vm: VictoriaMetrics, tmp_path: Path
) -> None:
    populate(ghserver, runs=6)
    state = tmp_path / "state"
    env = influx_env(ghserver, vm.url, state)
    vm.stop()
    try:
        first = cli("gather", "octo/influx", "--no-logs", "-f", "influxdb", env=env)
    finally:
        vm.start()
    assert first.exit_code == 1
    second = cli("gather", "octo/influx", "--no-logs", "-f", "influxdb", env=env)
    assert second.exit_code == 0, second.stderr
    assert "delivered 24 spooled points" in second.stderr  # 18 jobs, 6 runs
    assert len(vm.points()) == 24
