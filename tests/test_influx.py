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

from multivac.model import TAG_KEYS
from tests.conftest import TOKEN, Invoke
from tests.ghserver import FakeGitHub
from tests.servers import InfluxDB1Database, VictoriaMetrics

NOW = datetime.now(UTC).replace(microsecond=0)
INFLUX_TOKEN = "influx-secret-token-987654321"
NUMERIC = ("queued_s", "in_progress_s")


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


def key_of(measurement: str, tags: dict[str, str]) -> tuple[str, str]:
    return measurement, tags["job_id"]


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
    assert "60 points written to InfluxDB" in result.stderr
    points = vm.points()
    assert len(points) == 60
    stored = {key_of(p.measurement, p.tags): p for p in points}
    for row in expected:
        point = stored[(row["measurement"], row["job_id"])]
        for tag in TAG_KEYS:
            assert point.tags.get(tag, "") == row[tag], tag
        for field in NUMERIC:
            if row[field]:
                assert point.fields[field] == pytest.approx(float(row[field]))
        when = datetime.strptime(row["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert point.time_ns == int(when.timestamp()) * 1_000_000_000
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
    assert len(points) == 30
    assert len({(p.measurement, p.tags["job_id"], p.time_ns) for p in points}) == 30


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
    assert len(points) == 5
    assert all("job_id" not in p.tags for p in points)
    assert len({p.time_ns for p in points}) == 5


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
    assert "\n" not in result.stdout.strip("\n").replace("\n", "", len(TRICKY) - 1)
    influxdb1_db.write(result.stdout)
    json_result = cli(
        "gather",
        "octo/influx",
        "--no-logs",
        "-f",
        "json",
        env={"GITHUB_API_URL": ghserver.url},
    )
    expected = {r["job_id"]: r for r in json.loads(json_result.stdout)}
    points = influxdb1_db.points()
    assert len(points) == len(TRICKY)
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
    assert len(rejected[0].read_text().splitlines()) == 12
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
    assert "30 spooled" in result.stderr
    assert "multivac replay" in result.stderr
    spooled = list((state / "spool").glob("*.lp"))
    assert spooled
    assert all(INFLUX_TOKEN.encode() not in p.read_bytes() for p in spooled)
    assert vm.points() == []
    replay = cli("replay", env=env)
    assert replay.exit_code == 0, replay.stderr
    assert "delivered 30 spooled points" in replay.stderr
    assert list((state / "spool").glob("*.lp")) == []
    assert len(vm.points()) == 30
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
    assert "delivered 18 spooled points" in second.stderr
    assert len(vm.points()) == 18
