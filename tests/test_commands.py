"""Everyday commands and odd inputs: config show, doctor, create-bucket, bad payloads."""

from __future__ import annotations

import csv
import gzip
import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from multivac.cli import app
from tests.conftest import TOKEN, Invoke
from tests.ghserver import FakeGitHub
from tests.servers import InfluxDB1, VictoriaMetrics

NOW = datetime.now(UTC).replace(microsecond=0)


def test_config_show_redacts_and_names_sources(cli: Invoke, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("INFLUX_ORG=from-dotenv\nGITHUB_REPOSITORY=octo/x\n")
    result = cli(
        "config",
        "show",
        env={
            "GITHUB_TOKEN": TOKEN,
            "INFLUXDB_V2_URL": "http://influx:8086",
            "GITHUB_REPOSITORY": "octo/env",
            "MULTIVAC_WEBHOOK_SECRET": "hook-secret-0123456789",
            "MULTIVAC_ALERT_WEBHOOK": "https://hooks.slack.com/services/T0/B0/XYZsecret",
        },
    )
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert TOKEN not in out
    assert "hook-secret-0123456789" not in out and "XYZsecret" not in out
    assert f"*** (set, {len(TOKEN)} characters)" in out
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "environment (GITHUB_TOKEN)" in lines["GITHUB_TOKEN"]
    assert "http://influx:8086" in lines["INFLUX_URL"]
    assert "environment (INFLUXDB_V2_URL)" in lines["INFLUX_URL"]
    assert "from-dotenv" in lines["INFLUX_ORG"] and ".env" in lines["INFLUX_ORG"]
    assert "octo/env" in lines["GITHUB_REPOSITORY"]  # the environment wins over .env
    assert "https://api.github.com" in lines["GITHUB_API_URL"]
    assert "[default]" in lines["GITHUB_API_URL"]


def test_doctor_fails_a_server_without_the_v2_write_api(cli: Invoke, influxdb1: InfluxDB1) -> None:
    """InfluxDB 1.6 answers /ping but has no /api/v2/write: every write would fail."""
    influxdb1.ensure_running()
    env = {
        "INFLUX_URL": influxdb1.url,
        "INFLUX_TOKEN": "secret-influx-token",
        "INFLUX_ORG": "o",
        "INFLUX_BUCKET": "b",
    }
    result = cli("doctor", env=env)
    assert result.exit_code == 1, result.stdout
    assert f"FAIL  InfluxDB {influxdb1.url} has no InfluxDB 2 write API" in result.stdout
    assert "secret-influx-token" not in result.stdout


def test_doctor_reports_each_check(ghserver: FakeGitHub, cli: Invoke, vm: VictoriaMetrics) -> None:
    ghserver.add_repo("octo/ok").add_run(created_at=NOW).add_job("j", conclusion="success")
    env = {"GITHUB_API_URL": ghserver.url, "GITHUB_TOKEN": TOKEN}
    good = cli("doctor", "octo/ok", env=env)
    assert good.exit_code == 0, good.stdout
    assert good.stdout.startswith("ok    GitHub API")
    assert "octo/ok: Actions readable (1 workflow runs)" in good.stdout
    assert "ok    log classification engine: hyperscan" in good.stdout  # the test extra has it
    plain = cli("doctor", "octo/ok", env={**env, "MULTIVAC_ENGINE": "re2"})
    assert plain.exit_code == 0  # a slower engine is a warning, not a failure
    assert "warn  log classification engine: re2 (chosen by MULTIVAC_ENGINE)" in plain.stdout
    bad = cli("doctor", "octo/missing", env=env)
    assert bad.exit_code == 1
    assert "FAIL  repository" not in bad.stdout
    assert "FAIL  octo/missing" in bad.stdout
    influx = cli(
        "doctor",
        env={
            **env,
            "INFLUX_URL": vm.url,
            "INFLUX_TOKEN": "secret-influx-token",
            "INFLUX_ORG": "o",
            "INFLUX_BUCKET": "b",
        },
    )
    assert f"ok    InfluxDB {vm.url} reachable" in influx.stdout
    assert "secret-influx-token" not in influx.stdout
    down = cli(
        "doctor",
        env={
            **env,
            "INFLUX_URL": "http://127.0.0.1:9",
            "INFLUX_TOKEN": "t",
            "INFLUX_ORG": "o",
            "INFLUX_BUCKET": "b",
        },
    )
    assert down.exit_code == 1
    assert "FAIL  InfluxDB http://127.0.0.1:9" in down.stdout


class _Buckets(BaseHTTPRequestHandler):
    """The InfluxDB 2 buckets and write endpoints, for --create-bucket (VictoriaMetrics
    has no buckets API, so this small stand-in keeps state like InfluxDB does)."""

    buckets: ClassVar[list[str]] = []
    created: ClassVar[list[dict[str, object]]] = []
    written = 0

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.startswith("/api/v2/buckets"):
            found = [
                {
                    "id": f"id{i}",
                    "name": n,
                    "orgID": "org1",
                    "retentionRules": [{"type": "expire", "everySeconds": 0}],
                }
                for i, n in enumerate(self.buckets)
                if f"name={n}" in self.path
            ]
            self._send(200, {"buckets": found})
        elif self.path.startswith("/api/v2/orgs"):
            self._send(200, {"orgs": [{"id": "org1", "name": "acme"}]})
        else:
            self._send(404, {"message": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path.startswith("/api/v2/buckets"):
            data = json.loads(body)
            type(self).created.append(data)
            self.buckets.append(str(data["name"]))
            self._send(
                201,
                {
                    "id": "new",
                    "name": data["name"],
                    "orgID": "org1",
                    "retentionRules": [{"type": "expire", "everySeconds": 0}],
                },
            )
        elif self.path.startswith("/api/v2/write"):
            type(self).written += 1
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._send(404, {"message": "not found"})

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def buckets_server() -> Iterator[tuple[str, type[_Buckets]]]:
    handler = type("H", (_Buckets,), {"buckets": [], "created": [], "written": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_create_bucket_creates_once(
    ghserver: FakeGitHub,
    cli: Invoke,
    tmp_path: Path,
    buckets_server: tuple[str, type[_Buckets]],
) -> None:
    url, handler = buckets_server
    ghserver.add_repo("octo/b").add_run(created_at=NOW).add_job("j", conclusion="success")
    env = {
        "GITHUB_API_URL": ghserver.url,
        "INFLUX_URL": url,
        "INFLUX_TOKEN": "t",
        "INFLUX_ORG": "acme",
        "INFLUX_BUCKET": "ci-metrics",
        "MULTIVAC_STATE_DIR": str(tmp_path / "s"),
    }
    for _ in range(2):
        result = cli("gather", "octo/b", "--no-logs", "-f", "influxdb", "--create-bucket", env=env)
        assert result.exit_code == 0, result.stderr
    assert [c["name"] for c in handler.created] == ["ci-metrics"]
    assert handler.written == 2


def test_odd_payloads_are_counted_not_fatal(ghserver: FakeGitHub, cli: Invoke) -> None:
    repo = ghserver.add_repo("octo/odd")
    run = repo.add_run(created_at=NOW - timedelta(hours=1))
    run.add_job(
        "no-created",
        conclusion="success",
        created_at=None,
        started_at=NOW - timedelta(minutes=50),
        completed_at=NOW - timedelta(minutes=40),
    )
    run.add_job("null-conclusion", status="completed", conclusion=None)
    run.add_job("needs-approval", conclusion="action_required", started_at=None, completed_at=None)
    run.add_job("stale", conclusion="stale")
    run.add_job("nothing", conclusion="success", created_at=None, started_at=None)
    result = cli("gather", "octo/odd", "--no-logs", env={"GITHUB_API_URL": ghserver.url})
    assert result.exit_code == 0, result.stderr
    rows = {r["job_name"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert rows["no-created"]["queued_s"] == ""
    assert float(rows["no-created"]["in_progress_s"]) == 600.0
    assert rows["needs-approval"]["measurement"] == "action_required"
    assert rows["stale"]["measurement"] == "stale"
    assert "null-conclusion" not in rows
    assert "jobs with missing timestamps" in result.stderr
    assert "1 unfinished jobs left out" in result.stderr


def test_secondary_limit_cuts_concurrency(ghserver: FakeGitHub, cli: Invoke) -> None:
    repo = ghserver.add_repo("octo/sec")
    repo.add_runs_bulk(12, NOW - timedelta(hours=5), 60, jobs_per_run=1)
    ghserver.faults.add(r"/actions/runs/\d+/jobs", "secondary", count=1, retry_after=1)
    result = cli(
        "gather",
        "octo/sec",
        "--no-logs",
        "--concurrency",
        "4",
        env={"GITHUB_API_URL": ghserver.url},
    )
    assert result.exit_code == 0, result.stderr
    assert "then 2 request(s) at a time" in result.stderr
    assert "concurrency was cut to 2" in result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert sum(1 for row in rows if row["measurement"] != "runs") == 12
    assert sum(1 for row in rows if row["measurement"] == "runs") == 12


def test_python_dash_m_works() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "multivac", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.startswith("multivac ")


def _command_paths() -> list[list[str]]:
    import typer.main

    root = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, [*path, name])
        else:
            paths.append(path)

    walk(root, [])
    return paths


@pytest.mark.parametrize("path", _command_paths(), ids=" ".join)
def test_help_says_what_to_type_not_python_types(cli: Invoke, path: list[str]) -> None:
    result = cli(*path, "--help")
    assert result.exit_code == 0, result.output
    usage = result.stdout.splitlines()[0]
    assert "{" not in usage, usage  # a required argument is not shown in braces
    for python_type in ("<str>", "<int", "<list[", "<path>", "list[str]", "<float"):
        assert python_type not in result.stdout, (python_type, result.stdout)
