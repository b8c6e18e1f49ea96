"""Failed jobs end to end: logs, annotations, evidence, stats, watch, reclassify."""

from __future__ import annotations

import csv
import gzip
import io
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

from tests.conftest import TOKEN, Invoke
from tests.ghserver import FakeGitHub, make_log

NOW = datetime.now(UTC).replace(microsecond=0)
STEPS = [("Set up job", "success"), ("Run tests", "failure"), ("Complete job", "success")]


def failing_log(created: datetime, *lines: str) -> bytes:
    body = "".join(f"2026-10-01T12:00:05.0000000Z {line}\n" for line in lines)
    return make_log(created, STEPS[:2]) + body.encode()


def populate(server: FakeGitHub) -> dict[str, int]:
    repo = server.add_repo("octo/fail")
    created = NOW - timedelta(hours=3)
    run = repo.add_run(created_at=created, conclusion="failure")
    ids: dict[str, int] = {}
    ids["test"] = run.add_job(
        "unit",
        conclusion="failure",
        steps=STEPS,
        log=failing_log(
            created,
            "FAILED tests/test_api.py::test_login - assert 401 == 200",
            "##[error]Process completed with exit code 1.",
        ),
    ).id
    ids["oom"] = run.add_job(
        "build",
        conclusion="failure",
        steps=STEPS,
        log=failing_log(created, "Killed", "##[error]Process completed with exit code 137."),
    ).id
    ids["expired"] = run.add_job("old", conclusion="failure", steps=STEPS, log_expired=True).id
    ids["lost"] = run.add_job(
        "lost",
        conclusion="failure",
        annotations=[
            {
                "message": "The hosted runner: GitHub Actions 7 lost communication with the "
                "server. Anything in your workflow that terminates the runner process can "
                "cause this error.",
                "annotation_level": "failure",
            }
        ],
    ).id
    ids["timeout"] = run.add_job(
        "slow",
        conclusion="cancelled",
        annotations=[
            {
                "message": "The job running on runner GitHub Actions 8 has exceeded the maximum "
                "execution time of 30 minutes.",
                "annotation_level": "failure",
            }
        ],
    ).id
    ids["cancelled"] = run.add_job("stopped", conclusion="cancelled").id
    ids["unknown"] = run.add_job(
        "mystery",
        conclusion="failure",
        steps=STEPS,
        log=failing_log(created, "something odd", "##[error]Process completed with exit code 3."),
    ).id
    ids["ok"] = run.add_job("fine", conclusion="success").id
    return ids


def env(server: FakeGitHub, state: Path) -> dict[str, str]:
    return {"GITHUB_API_URL": server.url, "GITHUB_TOKEN": TOKEN, "MULTIVAC_STATE_DIR": str(state)}


def by_job(text: str) -> dict[str, dict[str, str]]:
    """Job records by job id (the test records of the same jobs left out)."""
    rows = csv.DictReader(io.StringIO(text))
    return {row["job_id"]: row for row in rows if row["measurement"] != "tests"}


def test_failed_jobs_are_keyed_by_cause_with_evidence(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    ids = populate(ghserver)
    result = cli("gather", "octo/fail", env=env(ghserver, tmp_path / "s"))
    assert result.exit_code == 0, result.stderr
    rows = by_job(result.stdout)
    expect = {
        "test": "test_failure",
        "oom": "out_of_memory",
        "expired": "log_unavailable",
        "lost": "runner_error",
        "timeout": "timeout",
        "cancelled": "cancelled",
        "unknown": "unknown_failure",
        "ok": "successful_jobs",
    }
    for key, measurement in expect.items():
        assert rows[str(ids[key])]["measurement"] == measurement, key
    test_row = rows[str(ids["test"])]
    assert test_row["rule"] == "pytest"
    assert test_row["failure_step"] == "Run tests"
    assert test_row["evidence"] == "FAILED tests/test_api.py::test_login - assert 401 == 200"
    assert rows[str(ids["timeout"])]["status"] == "cancelled"
    assert rows[str(ids["ok"])]["evidence"] == ""
    assert "1 logs unavailable" in result.stderr
    # the token never reaches the log host
    assert ghserver.log_auth_leaks == []
    assert any("/_signed/" in r.path for r in ghserver.requests)
    # logs only for failed jobs; annotations only where the log does not tell
    log_requests = {r.path for r in ghserver.requests if r.path.endswith("/logs")}
    failed_ids = {ids[k] for k in ("test", "oom", "expired", "lost", "unknown")}
    assert log_requests == {f"/repos/octo/fail/actions/jobs/{i}/logs" for i in failed_ids}


def test_repeat_gather_does_not_download_logs_again(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    populate(ghserver)
    state = tmp_path / "s"
    first = cli("gather", "octo/fail", "--since", "1d", env=env(ghserver, state))
    assert first.exit_code == 0
    repo = ghserver.repo("octo/fail")
    run = repo.runs[0]
    run.add_job("unit", attempt=2, conclusion="success")  # a re-run changes the run
    ghserver.reset_log()
    second = cli("gather", "octo/fail", "--since", "1d", env=env(ghserver, state))
    assert second.exit_code == 0
    assert not [r for r in ghserver.requests if r.path.endswith("/logs")]
    old = by_job(first.stdout)
    new = by_job(second.stdout)
    for job_id, row in old.items():
        assert new[job_id]["measurement"] == row["measurement"]
        assert new[job_id]["evidence"] == row["evidence"]
    assert len(new) == len(old) + 1


def test_failures_stats_and_watch(ghserver: FakeGitHub, cli: Invoke, tmp_path: Path) -> None:
    ids = populate(ghserver)
    e = env(ghserver, tmp_path / "s")
    stats = cli("failures", "stats", "octo/fail", "--since", "7d", env=e)
    assert stats.exit_code == 0, stats.stderr
    lines = stats.stdout.strip().splitlines()
    assert lines[0].split() == ["failure", "type", "jobs", "share", "flaky"]
    counted = {line.split()[0]: int(line.split()[1]) for line in lines[1:]}
    assert counted["total"] == 6
    assert counted["test_failure"] == 1 and counted["timeout"] == 1
    assert "cancelled" not in counted and "successful_jobs" not in counted
    ghserver.reset_log()
    watch = cli("failures", "watch", "test_failure", "octo/fail", "--since", "7d", env=e)
    assert watch.exit_code == 0, watch.stderr
    assert f"/job/{ids['test']}" in watch.stdout
    assert "FAILED tests/test_api.py::test_login" in watch.stdout
    assert "1 jobs of type test_failure" in watch.stderr
    offline = cli("failures", "stats", "octo/fail", "--offline", "--since", "7d", env=e)
    assert offline.exit_code == 0
    assert offline.stdout == stats.stdout


def test_reclassify_applies_new_rules_to_stored_evidence(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    ids = populate(ghserver)
    e = env(ghserver, tmp_path / "s")
    assert cli("gather", "octo/fail", env=e).exit_code == 0
    rules = tmp_path / "ours.yaml"
    rules.write_text(
        "rules:\n  - id: odd\n    type: odd_failure\n    priority: 80\n"
        "    patterns: ['^something odd$']\n"
        "    examples: {match: ['something odd'], no_match: ['something even']}\n"
    )
    dry = cli("reclassify", "--rules", str(rules), "--dry-run", env=e)
    assert dry.exit_code == 0, dry.stderr
    assert "would move 1 jobs: unknown_failure -> odd_failure" in dry.stderr
    ghserver.reset_log()
    done = cli("reclassify", "--rules", str(rules), "-f", "csv", env=e)
    assert done.exit_code == 0, done.stderr
    assert ghserver.requests == []  # offline: GitHub is not asked
    (row,) = by_job(done.stdout).values()
    assert row["job_id"] == str(ids["unknown"])
    assert row["measurement"] == "odd_failure"
    assert row["evidence"] == "something odd"
    stats = cli("failures", "stats", "octo/fail", "--offline", "--since", "7d", env=e)
    assert "odd_failure" in stats.stdout and "unknown_failure" not in stats.stdout


class _DeleteRecorder(BaseHTTPRequestHandler):
    """Records InfluxDB 2 delete and write calls (VictoriaMetrics has no delete API)."""

    calls: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        type(self).calls.append((self.path.split("?")[0], body))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


def test_reclassify_to_influxdb_deletes_the_old_point_first(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    ids = populate(ghserver)
    e = env(ghserver, tmp_path / "s")
    assert cli("gather", "octo/fail", env=e).exit_code == 0
    rules = tmp_path / "ours.yaml"
    rules.write_text(
        "rules:\n  - id: odd\n    type: odd_failure\n    priority: 80\n"
        "    patterns: ['^something odd$']\n"
        "    examples: {match: ['something odd'], no_match: ['something even']}\n"
    )
    handler = type("Rec", (_DeleteRecorder,), {"calls": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        influx = {
            **e,
            "INFLUX_URL": url,
            "INFLUX_TOKEN": "t",
            "INFLUX_ORG": "o",
            "INFLUX_BUCKET": "b",
        }
        done = cli("reclassify", "--rules", str(rules), "-f", "influxdb", env=influx)
    finally:
        server.shutdown()
        server.server_close()
    assert done.exit_code == 0, done.stderr
    paths = [path for path, _ in handler.calls]
    assert paths == ["/api/v2/delete", "/api/v2/write"]
    predicate = json.loads(handler.calls[0][1])["predicate"]
    assert '_measurement="unknown_failure"' in predicate
    assert f'job_id="{ids["unknown"]}"' in predicate
    written = handler.calls[1][1].decode()
    assert written.startswith("odd_failure,") and f"job_id={ids['unknown']}" in written


def test_job_turning_flaky_replaces_its_old_point(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    repo = ghserver.add_repo("octo/flaky")
    run = repo.add_run(created_at=NOW - timedelta(hours=2), conclusion="failure")
    failed = run.add_job("test", attempt=1, conclusion="failure")
    handler = type("Rec", (_DeleteRecorder,), {"calls": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        influx = {
            **env(ghserver, tmp_path / "s"),
            "INFLUX_URL": f"http://127.0.0.1:{server.server_address[1]}",
            "INFLUX_TOKEN": "t",
            "INFLUX_ORG": "o",
            "INFLUX_BUCKET": "b",
        }
        first = cli("gather", "octo/flaky", "--no-logs", "-f", "influxdb", env=influx)
        assert first.exit_code == 0, first.stderr
        again = cli("gather", "octo/flaky", "--no-logs", "-f", "influxdb", env=influx)
        assert again.exit_code == 0, again.stderr
        assert [p for p, _ in handler.calls] == ["/api/v2/write", "/api/v2/write"]
        run.add_job("test", attempt=2, conclusion="success")  # the retry succeeds
        third = cli("gather", "octo/flaky", "--no-logs", "-f", "influxdb", env=influx)
        assert third.exit_code == 0, third.stderr
    finally:
        server.shutdown()
        server.server_close()
    paths = [p for p, _ in handler.calls]
    assert paths == ["/api/v2/write", "/api/v2/write", "/api/v2/delete", "/api/v2/write"]
    predicate = json.loads(handler.calls[2][1])["predicate"]
    assert predicate == f'_measurement="unknown_failure" AND job_id="{failed.id}"'
    lines = handler.calls[3][1].decode().splitlines()
    flaky = [line for line in lines if f"job_id={failed.id}" in line]
    assert len(flaky) == 1 and "flaky=true" in flaky[0]


def test_log_faults_degrade_to_a_record_not_a_crash(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    ids = populate(ghserver)
    # the download of the test job's log breaks off once: a new signed URL, a new try
    ghserver.faults.add(rf"/_signed/logs/{ids['test']}", "truncate", count=1)
    # GitHub refuses the OOM job's log outright (not a rate limit)
    ghserver.faults.add(rf"/actions/jobs/{ids['oom']}/logs", "status", count=None, status=403)
    result = cli("gather", "octo/fail", env=env(ghserver, tmp_path / "s"))
    assert result.exit_code == 0, result.stderr
    rows = by_job(result.stdout)
    assert rows[str(ids["test"])]["measurement"] == "test_failure"
    assert rows[str(ids["oom"])]["measurement"] == "log_unavailable"
    assert "Traceback" not in result.stderr
    assert f"job {ids['oom']}:" in result.stderr
