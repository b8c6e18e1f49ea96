"""Test results in `multivac gather`, end to end: PyGithub against the local GitHub
server, points into the real VictoriaMetrics, JUnit artifacts zipped and served through
the blob host, the store between gathers."""

from __future__ import annotations

import csv
import gzip
import io
import threading
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import TOKEN, Invoke
from tests.ghserver import FakeGitHub, make_log
from tests.servers import VictoriaMetrics

NOW = datetime.now(UTC).replace(microsecond=0)
STEPS = [("Set up job", "success"), ("Run tests", "failure"), ("Complete job", "success")]
FIXTURES = Path(__file__).parent / "fixtures" / "testresults"
PYTEST_LOG = (FIXTURES / "pytest" / "pytest-default.log").read_text()
PYTEST_XML = (FIXTURES / "junit" / "pytest-junit.xml").read_bytes()
SUREFIRE = FIXTURES / "surefire" / "junit"
INFLUX_TOKEN = "influx-secret-token-42424242"

# what pytest-default.log says (its short summary)
LOG_FAILURES = {
    "tests/test_auth.py::test_logout",
    "tests/test_auth.py::test_names[carol]",
    "tests/test_auth.py::TestSession::test_expiry",
    "tests/test_auth.py::test_sometimes",
    "tests/test_auth.py::test_setup_error",
    "tests/test_auth.py::test_teardown_error",
}


def github_log(created: datetime, text: str) -> bytes:
    """A failed job's log as GitHub serves it, the runner's output in the failed step."""
    lines = [line for line in text.splitlines() if line.strip()]
    return make_log(created, [("Set up job", "success"), ("Run tests", "failure", lines)])


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def env(server: FakeGitHub, state: Path, **extra: str) -> dict[str, str]:
    return {
        "GITHUB_API_URL": server.url,
        "GITHUB_TOKEN": TOKEN,
        "MULTIVAC_STATE_DIR": str(state),
        **extra,
    }


def influx_env(server: FakeGitHub, url: str, state: Path, **extra: str) -> dict[str, str]:
    return env(
        server,
        state,
        INFLUX_URL=url,
        INFLUX_TOKEN=INFLUX_TOKEN,
        INFLUX_ORG="acme",
        INFLUX_BUCKET="ci",
        INFLUX_TESTS_BUCKET="ci_tests",
        **extra,
    )


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def found_tests(text: str) -> dict[str, dict[str, str]]:
    return {row["test"]: row for row in rows(text) if row["measurement"] == "tests"}


def failed_run(server: FakeGitHub, name: str = "octo/tests") -> tuple[int, int]:
    """A run whose `test` job failed with pytest's output and whose `lint` job passed."""
    repo = server.add_repo(name)
    created = NOW - timedelta(hours=2)
    run = repo.add_run(created_at=created, conclusion="failure", head_sha="c" * 40)
    job = run.add_job(
        "test (3.12)",
        conclusion="failure",
        steps=STEPS,
        log=github_log(created, PYTEST_LOG),
        labels=["ubuntu-24.04"],
    )
    run.add_job("lint", conclusion="success")
    return run.id, job.id


# ---------------------------------------------------------------------------- logs


def test_failed_tests_of_a_log_become_points_on_victoriametrics(
    ghserver: FakeGitHub, cli: Invoke, vm: VictoriaMetrics, tmp_path: Path
) -> None:
    run_id, job_id = failed_run(ghserver)
    result = cli(
        "gather",
        "octo/tests",
        "-f",
        "influxdb",
        env=influx_env(ghserver, vm.url, tmp_path / "state"),
    )
    assert result.exit_code == 0, result.stderr
    assert "6 test results in 1 jobs (failed 6)" in result.stderr
    points = [p for p in vm.points() if p.measurement == "tests"]
    assert {p.tags["test"] for p in points} == LOG_FAILURES
    created = NOW - timedelta(hours=2)
    for point in points:
        assert point.tags["status"] == "failed"
        assert point.tags["framework"] == "pytest"
        assert point.tags["job_name"] == "test (3.12)"
        assert point.tags["platform"] == "linux-x64"
        assert point.tags["runner_label"] == "ubuntu-24.04"
        assert point.tags["repository"] == "octo/tests"
        assert "job_id" not in point.tags  # an id: a field, not a series
        assert point.fields["job_id"] == job_id
        assert point.fields["run_id"] == run_id
        assert point.fields["run_attempt"] == 1
        # VictoriaMetrics keeps milliseconds: the job id's place in the second survives
        assert point.time_ns == int(created.timestamp()) * 10**9 + (job_id % 1000) * 10**6
    jobs = [p for p in vm.points() if p.measurement not in ("tests", "runs")]
    assert len(jobs) == 2
    assert INFLUX_TOKEN not in result.stdout + result.stderr


def test_csv_and_json_carry_the_test_records_with_their_measurement(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    failed_run(ghserver)
    result = cli("gather", "octo/tests", "--test-summary", env=env(ghserver, tmp_path / "s"))
    assert result.exit_code == 0, result.stderr
    found = found_tests(result.stdout)
    assert set(found) == LOG_FAILURES
    logout = found["tests/test_auth.py::test_logout"]
    assert logout["message"] == "AssertionError: session still open"
    assert logout["html_url"].startswith("https://")
    assert logout["commit_sha"] == "c" * 40
    summary = [r for r in rows(result.stdout) if r["measurement"] == "test_summary"]
    assert [(r["job_name"], r["failed"], r["passed"]) for r in summary] == [
        ("test (3.12)", "6", "0")
    ]
    as_json = cli("gather", "octo/tests", "-f", "json", env=env(ghserver, tmp_path / "j"))
    assert as_json.exit_code == 0, as_json.stderr
    import json

    records = json.loads(as_json.stdout)
    tests = [r for r in records if r["measurement"] == "tests"]
    assert {r["test"] for r in tests} == LOG_FAILURES
    assert set(tests[0]) == {
        "time",
        "measurement",
        "repository",
        "workflow",
        "job_name",
        "branch",
        "platform",
        "runner_label",
        "framework",
        "status",
        "test",
        "configuration",
        "job_id",
        "run_id",
        "run_attempt",
        "commit_sha",
        "duration_s",
        "message",
        "html_url",
    }


def test_a_repeated_gather_parses_nothing_again_and_writes_the_same_points(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    _run_id, job_id = failed_run(ghserver)
    state = tmp_path / "state"
    first = cli("gather", "octo/tests", env=env(ghserver, state))
    assert first.exit_code == 0, first.stderr
    ghserver.reset_log()
    again = cli("gather", "octo/tests", env=env(ghserver, state))
    assert again.exit_code == 0, again.stderr
    assert ghserver.requests_to(r"/_signed/") == []  # no log downloaded again
    assert ghserver.requests_to(rf"/jobs/{job_id}/logs") == []
    assert "test results in" not in again.stderr  # nothing parsed this time
    assert found_tests(again.stdout) == found_tests(first.stdout)


def test_a_download_that_breaks_off_is_parsed_once(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    _run_id, job_id = failed_run(ghserver)
    ghserver.faults.add(rf"/_signed/logs/{job_id}", "truncate", count=1)
    result = cli("gather", "octo/tests", env=env(ghserver, tmp_path / "s"))
    assert result.exit_code == 0, result.stderr
    tests = [r for r in rows(result.stdout) if r["measurement"] == "tests"]
    assert sorted(r["test"] for r in tests) == sorted(LOG_FAILURES)  # each once


def test_no_logs_keeps_the_stored_test_points(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    """A later gather without logs still writes the tests the store parsed before (and
    so never takes them for gone)."""
    failed_run(ghserver)
    state = tmp_path / "s"
    first = cli("gather", "octo/tests", env=env(ghserver, state))
    assert first.exit_code == 0, first.stderr
    again = cli("gather", "octo/tests", "--no-logs", env=env(ghserver, state))
    assert again.exit_code == 0, again.stderr
    assert found_tests(again.stdout) == found_tests(first.stdout)


# ---------------------------------------------------------------------------- flaky


def test_a_test_failing_in_one_attempt_and_passing_in_a_later_one_is_flaky(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    repo = ghserver.add_repo("octo/retry")
    created = NOW - timedelta(hours=2)
    run = repo.add_run(created_at=created, run_attempt=2, conclusion="success")
    log = github_log(created, "FAILED tests/test_net.py::test_fetch - TimeoutError")
    run.add_job("test", attempt=1, conclusion="failure", steps=STEPS, log=log)
    run.add_job("test", attempt=2, conclusion="success")
    result = cli("gather", "octo/retry", env=env(ghserver, tmp_path / "s"))
    assert result.exit_code == 0, result.stderr
    found = found_tests(result.stdout)
    assert found["tests/test_net.py::test_fetch"]["status"] == "flaky"
    assert found["tests/test_net.py::test_fetch"]["run_attempt"] == "1"


class _Recorder(BaseHTTPRequestHandler):
    """An InfluxDB 2 stand-in that records writes (with their bucket) and deletes."""

    calls: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        parts = urlsplit(self.path)
        bucket = parse_qs(parts.query).get("bucket", [""])[0]
        type(self).calls.append((parts.path, bucket, body))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    handler = type("Rec", (_Recorder,), {"calls": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.calls
    finally:
        server.shutdown()
        server.server_close()


def test_a_pass_on_the_same_commit_later_turns_the_written_failure_flaky(
    ghserver: FakeGitHub,
    cli: Invoke,
    tmp_path: Path,
    recorder: tuple[str, list[tuple[str, str, bytes]]],
) -> None:
    url, calls = recorder
    repo = ghserver.add_repo("octo/again")
    created = NOW - timedelta(hours=3)
    first = repo.add_run(created_at=created, head_sha="d" * 40, conclusion="failure")
    log = github_log(created, "FAILED tests/test_net.py::test_fetch - TimeoutError")
    first.add_job("test", conclusion="failure", steps=STEPS, log=log)
    e = influx_env(ghserver, url, tmp_path / "s")
    assert cli("gather", "octo/again", "-f", "influxdb", env=e).exit_code == 0
    writes = [(bucket, body.decode()) for path, bucket, body in calls if path == "/api/v2/write"]
    tests = [
        line for bucket, body in writes for line in body.splitlines() if line.startswith("tests,")
    ]
    assert len(tests) == 1 and "status=failed" in tests[0]
    assert {bucket for bucket, body in writes if body.startswith("tests,")} == {"ci_tests"}
    assert all(bucket == "ci" for bucket, body in writes if not body.startswith("tests,"))
    calls.clear()
    # the same commit runs again (a schedule, a manual run) and passes
    again = repo.add_run(created_at=created + timedelta(hours=1), head_sha="d" * 40)
    again.add_job("test", conclusion="success")
    result = cli("gather", "octo/again", "-f", "influxdb", env=e)
    assert result.exit_code == 0, result.stderr
    deletes = [(bucket, body) for path, bucket, body in calls if path == "/api/v2/delete"]
    assert len(deletes) == 1
    assert deletes[0][0] == "ci_tests"
    assert b'_measurement=\\"tests\\"' in deletes[0][1] and b'status=\\"failed\\"' in deletes[0][1]
    written = [
        line
        for path, bucket, body in calls
        if path == "/api/v2/write" and bucket == "ci_tests"
        for line in body.decode().splitlines()
    ]
    assert [line for line in written if "test_fetch" in line and "status=flaky" in line]
    assert calls.index(next(c for c in calls if c[0] == "/api/v2/delete")) < max(
        i for i, c in enumerate(calls) if c[0] == "/api/v2/write" and c[1] == "ci_tests"
    )


def test_a_pull_request_run_of_the_same_commit_is_another_family(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    """A pull_request run tests the merge with the base branch: not the same code."""
    repo = ghserver.add_repo("octo/pr")
    created = NOW - timedelta(hours=3)
    push = repo.add_run(created_at=created, head_sha="e" * 40, conclusion="failure")
    log = github_log(created, "FAILED tests/test_net.py::test_fetch - TimeoutError")
    push.add_job("test", conclusion="failure", steps=STEPS, log=log)
    pr = repo.add_run(created_at=created, head_sha="e" * 40, event="pull_request")
    pr.add_job("test", conclusion="success")
    result = cli("gather", "octo/pr", env=env(ghserver, tmp_path / "s"))
    assert result.exit_code == 0, result.stderr
    assert found_tests(result.stdout)["tests/test_net.py::test_fetch"]["status"] == "failed"


# ---------------------------------------------------------------------------- artifacts


def matrix_run(server: FakeGitHub) -> dict[str, int]:
    """`test (ubuntu)` failed (pytest), `test (macos)` passed with a Surefire rerun;
    each uploaded its JUnit reports as `junit-<os>` while it ran."""
    repo = server.add_repo("octo/junit")
    created = NOW - timedelta(hours=4)
    run = repo.add_run(created_at=created, conclusion="failure", head_sha="f" * 40)
    ids = {}
    ubuntu = run.add_job(
        "test (ubuntu)",
        conclusion="failure",
        steps=STEPS,
        log=github_log(created, PYTEST_LOG),
        started_at=created + timedelta(seconds=5),
        completed_at=created + timedelta(minutes=6),
    )
    macos = run.add_job(
        "test (macos)",
        conclusion="success",
        started_at=created + timedelta(seconds=5),
        completed_at=created + timedelta(minutes=7),
    )
    ids["ubuntu"], ids["macos"] = ubuntu.id, macos.id
    run.add_artifact("junit-ubuntu", zipped({"reports/pytest.xml": PYTEST_XML}))
    run.add_artifact(
        "junit-macos",
        zipped({p.name: p.read_bytes() for p in sorted(SUREFIRE.glob("*.xml"))}),
    )
    run.add_artifact("coverage", b"not a report and not matching the glob")
    ids["run"] = run.id
    return ids


def test_junit_artifacts_end_to_end_into_victoriametrics(
    ghserver: FakeGitHub, cli: Invoke, vm: VictoriaMetrics, tmp_path: Path
) -> None:
    ids = matrix_run(ghserver)
    result = cli(
        "gather",
        "octo/junit",
        "--junit-artifacts",
        "junit-*",
        "-f",
        "influxdb",
        env=influx_env(ghserver, vm.url, tmp_path / "state"),
    )
    assert result.exit_code == 0, result.stderr
    assert "2 JUnit artifacts read" in result.stderr
    assert "2 artifact downloads" in result.stderr
    points = {
        (p.tags["job_name"], p.tags["test"]): p for p in vm.points() if p.measurement == "tests"
    }
    # the log's ids, the artifact's statuses: test_sometimes passed per the report
    ubuntu = {test: p.tags["status"] for (job, test), p in points.items() if job == "test (ubuntu)"}
    assert ubuntu == {
        test: "failed" for test in LOG_FAILURES - {"tests/test_auth.py::test_sometimes"}
    }
    macos = {test: p.tags["status"] for (job, test), p in points.items() if job == "test (macos)"}
    assert macos == {
        "com.shop.CartTest.testTotal": "failed",
        "com.shop.CartTest.testDiscount": "failed",
        "com.shop.FlakyTest.testSometimes": "flaky",
    }
    assert all(
        p.fields["job_id"] == ids["macos"]
        for (job, _), p in points.items()
        if job == "test (macos)"
    )
    assert ghserver.log_auth_leaks == []  # the token never went to the blob host
    assert not [r for r in ghserver.requests if "coverage" in r.path]


def test_bad_artifacts_are_named_and_the_rest_is_kept(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    ids = matrix_run(ghserver)
    run = ghserver.repo("octo/junit").get_run(ids["run"])
    assert run is not None
    run.add_artifact("junit-old", zipped({"a.xml": PYTEST_XML}), expired=True)
    run.add_artifact("junit-junk", bytes(range(256)) * 64)
    run.add_artifact("junit-truncated", zipped({"cut.xml": PYTEST_XML[: len(PYTEST_XML) // 2]}))
    run.add_artifact("junit-slip", zipped({"../../etc/evil.xml": PYTEST_XML}))
    bomb = zipped({"bomb.xml": b"<testsuite>" + b" " * (70 << 20)})
    run.add_artifact("junit-bomb", bomb)
    result = cli(
        "gather", "octo/junit", "--junit-artifacts", "junit-*", env=env(ghserver, tmp_path / "s")
    )
    assert result.exit_code == 0, result.stderr
    err = result.stderr
    assert "artifact 'junit-junk' is not a zip archive." in err
    assert "artifact 'junit-slip', file '../../etc/evil.xml': unsafe name" in err
    assert "artifact 'junit-bomb', file 'bomb.xml'" in err and "zip bomb" in err
    assert "junit-truncated" in err
    assert "1 artifacts expired (junit-old)" in err
    assert "with problems (" in err
    for name in ("junit-junk", "junit-slip", "junit-bomb"):
        assert name in err.split("with problems (")[1].split(")")[0]
    assert "Traceback" not in err
    found = {(r["job_name"], r["test"]) for r in rows(result.stdout) if r["measurement"] == "tests"}
    assert ("test (macos)", "com.shop.FlakyTest.testSometimes") in found
    assert ("test (ubuntu)", "tests/test_auth.py::test_logout") in found


def test_artifacts_are_read_once(ghserver: FakeGitHub, cli: Invoke, tmp_path: Path) -> None:
    matrix_run(ghserver)
    state = tmp_path / "s"
    args = ("gather", "octo/junit", "--junit-artifacts", "junit-*")
    first = cli(*args, env=env(ghserver, state))
    assert first.exit_code == 0, first.stderr
    ghserver.reset_log()
    again = cli(*args, env=env(ghserver, state))
    assert again.exit_code == 0, again.stderr
    assert ghserver.requests_to(r"/artifacts") == []
    assert found_tests(again.stdout) == found_tests(first.stdout)


def test_artifacts_of_an_unchanged_run_are_listed_when_first_asked_for(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    matrix_run(ghserver)
    state = tmp_path / "s"
    first = cli("gather", "octo/junit", env=env(ghserver, state))
    assert first.exit_code == 0, first.stderr
    assert "test (macos)" not in {
        r["job_name"] for r in rows(first.stdout) if r["measurement"] == "tests"
    }
    ghserver.reset_log()
    later = cli("gather", "octo/junit", "--junit-artifacts", "junit-*", env=env(ghserver, state))
    assert later.exit_code == 0, later.stderr
    assert ghserver.requests_to(r"/_signed/logs/") == []  # the logs were parsed before
    jobs = {r["job_name"] for r in rows(later.stdout) if r["measurement"] == "tests"}
    assert jobs == {"test (ubuntu)", "test (macos)"}


def test_a_later_gather_of_only_the_passing_run_still_turns_the_failure_flaky(
    ghserver: FakeGitHub,
    cli: Invoke,
    tmp_path: Path,
    recorder: tuple[str, list[tuple[str, str, bytes]]],
) -> None:
    """The failed run is outside the second gather's window: the passing run alone,
    through the store, replaces the written failure."""
    url, calls = recorder
    repo = ghserver.add_repo("octo/later")
    failed_at = NOW - timedelta(days=3)
    first = repo.add_run(created_at=failed_at, head_sha="a" * 40, conclusion="failure")
    log = github_log(failed_at, "FAILED tests/test_net.py::test_fetch - TimeoutError")
    first.add_job("test", conclusion="failure", steps=STEPS, log=log)
    e = influx_env(ghserver, url, tmp_path / "s")
    assert cli("gather", "octo/later", "--since", "4d", "-f", "influxdb", env=e).exit_code == 0
    calls.clear()
    again = repo.add_run(created_at=NOW - timedelta(hours=1), head_sha="a" * 40)
    again.add_job("test", conclusion="success")
    result = cli("gather", "octo/later", "--since", "2h", "-f", "influxdb", env=e)
    assert result.exit_code == 0, result.stderr
    assert [path for path, _, _ in calls].count("/api/v2/delete") == 1
    written = b"".join(body for path, bucket, body in calls if bucket == "ci_tests")
    assert b"status=flaky" in written and b"test_fetch" in written
