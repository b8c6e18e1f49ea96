"""Several InfluxDB targets on two real servers: every point in each, one target down
never holding back or losing the other's, replay delivering each spool exactly once;
retractions to every target; `replay FILE` loading files into the targets."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from tests.conftest import TOKEN, Invoke
from tests.ghserver import FakeGitHub
from tests.servers import StoredPoint, VictoriaMetrics

NOW = datetime.now(UTC).replace(microsecond=0)
CLOUD_TOKEN = "cloud-token-secret-1234567"
LOCAL_TOKEN = "local-token-secret-7654321"
NUMERIC = ("queued_s", "in_progress_s")


def targets_file(tmp_path: Path, local: str, cloud: str, **extra: str) -> None:
    more = "".join(f'{key} = "{value}"\n' for key, value in extra.items())
    (tmp_path / "multivac.toml").write_text(
        f'[[influx]]\nname = "local"\nurl = "{local}"\norg = "acme"\nbucket = "ci"\n'
        f'token_env = "LOCAL_TOKEN"\n{more}\n'
        f'[[influx]]\nname = "cloud"\nurl = "{cloud}"\norg = "acme"\nbucket = "ci"\n'
        'token_env = "CLOUD_TOKEN"\n',
        encoding="utf-8",
    )


def env(server: FakeGitHub, state: Path) -> dict[str, str]:
    return {
        "GITHUB_API_URL": server.url,
        "GITHUB_TOKEN": TOKEN,
        "MULTIVAC_STATE_DIR": str(state),
        "LOCAL_TOKEN": LOCAL_TOKEN,
        "CLOUD_TOKEN": CLOUD_TOKEN,
    }


def add_runs(server: FakeGitHub, runs: int, hours_ago: float) -> None:
    repo = server.repos.get("octo/two") or server.add_repo("octo/two")
    repo.add_runs_bulk(
        runs,
        NOW - timedelta(hours=hours_ago),
        60,
        jobs_per_run=3,
        job_conclusions=("success", "failure", "cancelled"),
    )


def identities(points: list[StoredPoint]) -> list[tuple[str, str, int]]:
    return sorted((p.measurement, p.tags["job_id"], p.time_ns) for p in points)


def inserted(server: VictoriaMetrics) -> int:
    """Rows VictoriaMetrics took over InfluxDB's protocol since it started: a point
    written twice counts twice here, even though deduplication keeps it once."""
    return int(server.metrics().get('vm_rows_inserted_total{type="influx"}', 0.0))


def gather(cli: Invoke, e: dict[str, str]) -> tuple[int, str]:
    result = cli(
        "gather", "octo/two", "--no-logs", "--no-runs", "--since", "1d", "-f", "influxdb", env=e
    )
    return result.exit_code, result.stderr


def test_every_point_goes_to_every_target(
    ghserver: FakeGitHub, cli: Invoke, vm: VictoriaMetrics, vm2: VictoriaMetrics, tmp_path: Path
) -> None:
    add_runs(ghserver, 10, 6)
    targets_file(tmp_path, vm.url, vm2.url)
    code, stderr = gather(cli, env(ghserver, tmp_path / "state"))
    assert code == 0, stderr
    assert "30 points written to InfluxDB local" in stderr
    assert "30 points written to InfluxDB cloud" in stderr
    local, cloud = vm.points(fields=NUMERIC), vm2.points(fields=NUMERIC)
    assert len(local) == 30
    assert local == cloud
    for secret in (LOCAL_TOKEN, CLOUD_TOKEN, TOKEN):
        assert secret not in stderr


def test_one_target_stopped_during_gathers_spools_and_replay_delivers_it_once(
    ghserver: FakeGitHub, cli: Invoke, vm: VictoriaMetrics, vm2: VictoriaMetrics, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    e = env(ghserver, state)
    targets_file(tmp_path, vm.url, vm2.url)
    add_runs(ghserver, 6, 10)
    start_local = inserted(vm)
    code, stderr = gather(cli, e)  # both up
    assert code == 0, stderr
    first_local = inserted(vm) - start_local
    assert first_local % 6 == 0
    rows_per_run = first_local // 6  # every run has the same jobs, so the same rows

    vm2.stop()
    add_runs(ghserver, 8, 3)  # new runs while the cloud target is down
    code, stderr = gather(cli, e)
    assert code == 1
    # the window's stored runs are written again (points are idempotent) with the new ones
    assert "42 points written to InfluxDB local" in stderr
    assert "0 points written to InfluxDB cloud, 42 spooled to" in stderr
    assert f"InfluxDB cloud at {vm2.url} did not take the points" in stderr
    assert "multivac replay" in stderr
    # the local target was not held back: it has every point already
    assert len(vm.points(fields=NUMERIC)) == 42
    cloud_spool = state / "spool" / "targets" / "cloud"
    assert list(cloud_spool.glob("*.lp"))
    assert not list((state / "spool" / "targets" / "local").glob("*.lp"))
    assert all(CLOUD_TOKEN.encode() not in p.read_bytes() for p in cloud_spool.glob("*"))

    vm2.start()
    replay = cli("replay", env=e)
    assert replay.exit_code == 0, replay.stderr
    assert "delivered 42 spooled points to InfluxDB cloud" in replay.stderr
    assert "delivered 0 spooled points to InfluxDB local" in replay.stderr
    assert not list(cloud_spool.glob("*.lp"))
    again = cli("replay", env=e)
    assert again.exit_code == 0 and "nothing to replay" in again.stderr

    local, cloud = vm.points(fields=NUMERIC), vm2.points(fields=NUMERIC)
    assert len(local) == 42 and identities(local) == identities(cloud)
    assert len(set(identities(cloud))) == 42
    # exactly one copy: each server took each row once, whatever deduplication hides
    assert inserted(vm) - start_local == 20 * rows_per_run
    assert inserted(vm2) == 14 * rows_per_run  # restarted: it counts from the replay on


def test_the_next_gather_delivers_the_spool_of_the_target_that_was_down(
    ghserver: FakeGitHub, cli: Invoke, vm: VictoriaMetrics, vm2: VictoriaMetrics, tmp_path: Path
) -> None:
    e = env(ghserver, tmp_path / "state")
    targets_file(tmp_path, vm.url, vm2.url)
    add_runs(ghserver, 4, 5)
    vm2.stop()
    code, _ = gather(cli, e)
    assert code == 1
    vm2.start()
    code, stderr = gather(cli, e)
    assert code == 0, stderr
    assert "delivered 12 spooled points to InfluxDB cloud first." in stderr
    assert identities(vm.points(fields=NUMERIC)) == identities(vm2.points(fields=NUMERIC))


def test_the_default_target_from_variables_joins_the_files_targets(
    ghserver: FakeGitHub, cli: Invoke, vm: VictoriaMetrics, vm2: VictoriaMetrics, tmp_path: Path
) -> None:
    (tmp_path / "multivac.toml").write_text(
        f'[[influx]]\nname = "cloud"\nurl = "{vm2.url}"\norg = "acme"\nbucket = "ci"\n'
        'token_env = "CLOUD_TOKEN"\n'
    )
    add_runs(ghserver, 2, 5)
    e = {
        **env(ghserver, tmp_path / "state"),
        "INFLUX_URL": vm.url,
        "INFLUX_TOKEN": "t",
        "INFLUX_ORG": "o",
        "INFLUX_BUCKET": "b",
    }
    code, stderr = gather(cli, e)
    assert code == 0, stderr
    assert "6 points written to InfluxDB;" in stderr or "6 points written to InfluxDB," in stderr
    assert "6 points written to InfluxDB cloud" in stderr
    assert len(vm.points()) == len(vm2.points()) > 0
    doctor = cli("doctor", env=e)
    assert f"ok    InfluxDB default {vm.url} reachable" in doctor.stdout
    assert f"ok    InfluxDB cloud {vm2.url} reachable" in doctor.stdout


def test_doctor_checks_each_target(
    cli: Invoke, vm: VictoriaMetrics, tmp_path: Path, ghserver: FakeGitHub
) -> None:
    targets_file(tmp_path, vm.url, "http://127.0.0.1:9")
    result = cli("doctor", env=env(ghserver, tmp_path / "state"))
    assert result.exit_code == 1
    assert f"ok    InfluxDB local {vm.url} reachable" in result.stdout
    assert "FAIL  InfluxDB cloud http://127.0.0.1:9 does not answer /ping" in result.stdout
    assert CLOUD_TOKEN not in result.stdout


# ---------------------------------------------------------------------------- tests bucket


class _Recorder(BaseHTTPRequestHandler):
    """An InfluxDB 2 stand-in that records writes and deletes (VictoriaMetrics has no
    delete API and ignores the bucket)."""

    calls: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        path, _, query = self.path.partition("?")
        type(self).calls.append((path, query, body))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def recorders() -> Iterator[list[tuple[str, type[_Recorder]]]]:
    servers = []
    found = []
    for _ in range(2):
        handler = type("Rec", (_Recorder,), {"calls": []})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        found.append((f"http://127.0.0.1:{server.server_address[1]}", handler))
    yield found
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_retraction_goes_to_every_target(
    ghserver: FakeGitHub,
    cli: Invoke,
    tmp_path: Path,
    recorders: list[tuple[str, type[_Recorder]]],
) -> None:
    (local, local_calls), (cloud, cloud_calls) = recorders
    targets_file(tmp_path, local, cloud)
    repo = ghserver.add_repo("octo/two")
    run = repo.add_run(created_at=NOW - timedelta(hours=2), conclusion="failure")
    failed = run.add_job("test", attempt=1, conclusion="failure")
    e = env(ghserver, tmp_path / "state")
    assert gather(cli, e)[0] == 0
    run.add_job("test", attempt=2, conclusion="success")  # the first attempt turns flaky
    code, stderr = gather(cli, e)
    assert code == 0, stderr
    for calls in (local_calls.calls, cloud_calls.calls):
        assert [path for path, _, _ in calls] == [
            "/api/v2/write",
            "/api/v2/delete",
            "/api/v2/write",
        ]
        predicate = json.loads(calls[1][2])["predicate"]
        assert predicate == f'_measurement="unknown_failure" AND job_id="{failed.id}"'


def test_test_results_go_to_the_tests_bucket(
    tmp_path: Path, recorders: list[tuple[str, type[_Recorder]]]
) -> None:
    from multivac import open_writer

    (local, local_calls), (cloud, cloud_calls) = recorders
    targets_file(tmp_path, local, cloud, tests_bucket="ci-tests")
    (tmp_path / ".env").write_text(f"LOCAL_TOKEN={LOCAL_TOKEN}\nCLOUD_TOKEN={CLOUD_TOKEN}\n")
    job = {"measurement": "successful_jobs", "tags": {"job_id": "1"}, "fields": {"queued_s": 1.0}}
    test = {"measurement": "tests", "tags": {"test": "t::a"}, "fields": {"duration_s": 0.5}}
    with open_writer(state_dir=tmp_path / "state") as writer:
        writer.write([{**job, "time": 1_700_000_000_000_000_000}])
        writer.write({**test, "time": 1_700_000_000_000_000_000})
    local_buckets = sorted(query for _, query, _ in local_calls.calls)
    assert [q.split("bucket=")[1].split("&")[0] for q in local_buckets] == ["ci", "ci-tests"]
    tests_write = next(body for _, q, body in local_calls.calls if "bucket=ci-tests" in q)
    assert tests_write.decode().startswith("tests,test=t::a duration_s=0.5")
    # the cloud target has no tests bucket: both points go to its bucket
    assert ["bucket=ci" in q for _, q, _ in cloud_calls.calls] == [True]
    assert len(cloud_calls.calls[0][2].decode().splitlines()) == 2


# ---------------------------------------------------------------------------- replay FILE


def test_replay_loads_each_format_into_every_target(
    ghserver: FakeGitHub, cli: Invoke, vm: VictoriaMetrics, vm2: VictoriaMetrics, tmp_path: Path
) -> None:
    add_runs(ghserver, 3, 5)
    e = env(ghserver, tmp_path / "state")
    files = {}
    for fmt in ("csv", "jsonl", "influx-csv", "line-protocol", "json"):
        out = tmp_path / f"jobs.{fmt}"
        result = cli(
            "gather", "octo/two", "--no-logs", "--no-runs", "-f", fmt, "-o", str(out), env=e
        )
        assert result.exit_code == 0, result.stderr
        files[fmt] = out
    targets_file(tmp_path, vm.url, vm2.url)
    for fmt, path in files.items():
        vm.reset()
        vm2.reset()
        result = cli("replay", str(path), env=e)
        assert result.exit_code == 0, (fmt, result.stderr)
        assert "loaded 9 records" in result.stderr
        local, cloud = vm.points(fields=NUMERIC), vm2.points(fields=NUMERIC)
        assert len(local) == 9 and identities(local) == identities(cloud), fmt


def test_replay_stops_at_a_bad_line_with_the_records_before_it_written(
    cli: Invoke, vm: VictoriaMetrics, vm2: VictoriaMetrics, tmp_path: Path
) -> None:
    targets_file(tmp_path, vm.url, vm2.url)
    lines = [
        json.dumps(
            {
                "measurement": "successful_jobs",
                "tags": {"job_id": str(n), "repository": "o/r"},
                "fields": {"queued_s": float(n)},
                "time": 1_700_000_000_000_000_000 + n * 1_000_000_000,
            }
        )
        for n in range(1, 4)
    ]
    bad = tmp_path / "jobs.jsonl"
    bad.write_text("\n".join([*lines, "{not json", lines[0]]) + "\n")
    result = cli(
        "replay",
        str(bad),
        env={"LOCAL_TOKEN": "a", "CLOUD_TOKEN": "b", "MULTIVAC_STATE_DIR": str(tmp_path / "s")},
    )
    assert result.exit_code == 2
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f"error: {bad} line 4: not JSON")
    assert message.endswith(
        "; the 3 records before it were written to the InfluxDB targets (or spooled for them)."
    )
    assert len(vm.points()) == len(vm2.points()) == 3
