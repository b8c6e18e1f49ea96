"""A hostile, demanding user: malformed answers, bad values, broken files. Each case ends
in one clear sentence and an exit code, never a traceback, and loses nothing gathered."""

from __future__ import annotations

import gzip
import os
import sqlite3
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from multivac.config import redact
from multivac.errors import StoreError
from multivac.github.parse import job_from_json
from multivac.store import Store
from tests.conftest import TOKEN, Invoke
from tests.factories import make_job, make_run
from tests.ghserver import FakeGitHub
from tests.servers import VictoriaMetrics
from tests.test_faults import baseline, gather, jobs_of, populate, runs_of, table

NOW = datetime.now(UTC).replace(microsecond=0)
HTML = b"<html><body><h1>Sign in to the proxy</h1></body></html>"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (r"/actions/runs$", b'{"total_count": 3, "workflow_runs": ['),
        (r"/actions/runs$", HTML),
        (r"/actions/runs$", b"[1, 2, 3]"),
        (r"/actions/runs/\d+/jobs", b'{"total_count": 2, "jobs": [{"id":'),
        (r"/actions/runs/\d+/jobs", HTML),
        (r"/actions/runs/\d+/jobs", b'{"total_count": 2, "jobs": null}'),
        (r"/actions/runs/\d+/jobs", b'{"jobs": "\xff\xfe"}'),
    ],
    ids=["runs-cut", "runs-html", "runs-list", "jobs-cut", "jobs-html", "jobs-null", "jobs-bytes"],
)
def test_a_malformed_answer_is_retried_never_taken_for_an_empty_page(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path, path: str, body: bytes
) -> None:
    """A garbled 200 once (a proxy's page, a cut-off body) must not be read as "no runs"
    or "no jobs": the store would remember the run as complete without its jobs."""
    populate(ghserver, runs=4)
    ghserver.faults.add(path, "status", count=1, status=200, body=body)
    code, out, err = gather(cli, ghserver, tmp_path / "faulty")
    assert code == 0, err
    assert "Traceback" not in err and "unexpected" not in err
    assert table(out) == baseline(cli, ghserver, tmp_path)
    assert (len(jobs_of(table(out))), len(runs_of(table(out)))) == (12, 4)


def test_an_api_that_never_sends_json_stops_at_once(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    """A login page in front of the API (or a wrong GITHUB_API_URL): no 15-minute wait."""
    populate(ghserver, runs=2)
    ghserver.faults.add(r".*", "status", count=None, status=200, body=HTML)
    code, out, err = gather(cli, ghserver, tmp_path / "faulty")
    assert code == 1
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert line == (
        "error: GitHub sent an answer that is not JSON (an HTML page or other text) for "
        "repository octo/faulty; check GITHUB_API_URL (GitHub Enterprise: "
        "https://HOST/api/v3) and any proxy in between."
    )
    assert "retrying" not in err
    assert TOKEN not in out + err


@pytest.mark.parametrize("command", [["gather", "octo/x"], ["usage", "--offline"], ["report"]])
def test_a_duration_past_the_calendar_is_bad_input(cli: Invoke, command: list[str]) -> None:
    result = cli(*command, "--since", "99999999d")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: --since '99999999d' reaches back before the year 1; give a shorter duration."
    )


def failing_repo(server: FakeGitHub, runs: int = 3) -> None:
    repo = server.add_repo("octo/faulty")
    repo.add_runs_bulk(
        runs,
        NOW - timedelta(hours=10),
        120,
        jobs_per_run=2,
        conclusions=("failure",),
        with_logs=True,
    )


def test_a_refused_run_keeps_the_runs_already_under_way(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    """A 403 on one run's jobs ends the gather (exit 1), but the runs fetched beside it,
    logs read, are written and stored: the rerun fetches only the refused one."""
    failing_repo(ghserver)
    ghserver.faults.add(r"/actions/runs/\d+/jobs", "status", count=1, status=403)
    code, out, err = gather_logs(cli, ghserver, tmp_path / "faulty")
    assert code == 1
    assert "error: GitHub refused access to jobs of run" in err
    assert (len(jobs_of(table(out))), len(runs_of(table(out)))) == (4, 2)
    ghserver.reset_log()
    code, out, err = gather_logs(cli, ghserver, tmp_path / "faulty")
    assert code == 0, err
    assert "2 unchanged runs from the local store" in err
    assert len(ghserver.requests_to(r"^/_signed/logs/")) == 2


def test_an_expired_signed_log_url_is_asked_for_again(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    """The blob host answers 403 to a signed URL past its minute: a new URL is fetched,
    the job is never filed as log_unavailable for good."""
    failing_repo(ghserver, runs=2)
    expired = b"<?xml version='1.0'?><Error><Code>AuthenticationFailed</Code></Error>"
    ghserver.faults.add(r"^/_signed/logs/", "status", count=1, status=403, body=expired)
    code, out, err = gather_logs(cli, ghserver, tmp_path / "faulty")
    assert code == 0, err
    assert "log_unavailable" not in out
    assert {row["measurement"] for row in jobs_of(table(out))} == {"unknown_failure"}


def test_signed_log_urls_that_keep_expiring_leave_the_jobs_pending(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    failing_repo(ghserver, runs=1)
    ghserver.signed_url_ttl = -1.0
    code, out, err = gather_logs(cli, ghserver, tmp_path / "faulty", "--max-wait", "1s")
    assert code == 1
    assert "kept pending and the next gather reads them" in err
    assert "log_unavailable" not in out
    ghserver.signed_url_ttl = 60.0
    code, out, err = gather_logs(cli, ghserver, tmp_path / "faulty")
    assert code == 0, err
    assert len(jobs_of(table(out))) == 2


def test_a_log_answered_inline_is_read(ghserver: FakeGitHub, cli: Invoke, tmp_path: Path) -> None:
    """A GitHub-compatible server may answer the log request 200 with the text instead
    of a redirect to a log host: the log is read from that answer."""
    failing_repo(ghserver, runs=1)
    log = (
        b"2026-11-29T10:00:00.0000000Z ##[group]Run npm ci\n"
        b"2026-11-29T10:00:01.0000000Z npm ERR! code ERESOLVE\n"
        b"2026-11-29T10:00:02.0000000Z ##[error]Process completed with exit code 1.\n"
    )
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    path = r"/actions/jobs/\d+/logs$"
    ghserver.faults.add(path, "status", count=None, status=200, body=log, headers=headers)
    code, out, err = gather_logs(cli, ghserver, tmp_path / "faulty")
    assert code == 0, err
    assert {row["measurement"] for row in jobs_of(table(out))} == {"dependency_error"}
    assert not ghserver.requests_to(r"^/_signed/logs/")


def test_a_redirect_without_a_location_is_a_fault_not_a_lost_log(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    """A 302 with no Location says nothing about the log: asked again, never filed as
    log_unavailable."""
    failing_repo(ghserver, runs=1)
    ghserver.faults.add(r"/actions/jobs/\d+/logs$", "status", count=2, status=302, body=b"")
    code, out, err = gather_logs(cli, ghserver, tmp_path / "faulty")
    assert code == 0, err
    assert {row["measurement"] for row in jobs_of(table(out))} == {"unknown_failure"}
    assert len(ghserver.requests_to(r"^/_signed/logs/")) == 2


def gather_logs(cli: Invoke, server: FakeGitHub, state: Path, *extra: str) -> tuple[int, str, str]:
    env = {"GITHUB_API_URL": server.url, "GITHUB_TOKEN": TOKEN, "MULTIVAC_STATE_DIR": str(state)}
    result = cli("gather", "octo/faulty", "--since", "1d", *extra, env=env)
    return result.exit_code, result.stdout, result.stderr


def test_a_dotenv_that_is_not_text_is_bad_input(cli: Invoke, tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"GITHUB_TOKEN=x\n\xff\xfe\x00\n")
    result = cli("gather", "octo/x", "--since", "1h")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: cannot read {tmp_path / '.env'}: it is not UTF-8 text."


def run_module(*args: str, stdout: Any, env: dict[str, str] | None = None) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "multivac", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    return done.returncode, done.stderr.decode()


FULL = Path("/dev/full")


@pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full")
@pytest.mark.parametrize(
    "args", [["rules", "list"], ["config", "init"], ["--help"], ["classify", "job.log"]]
)
def test_a_full_disk_on_stdout_is_one_sentence(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "job.log").write_text("FAILED tests/test_a.py::test_x - assert 1 == 2\n" * 5000)
    with FULL.open("w") as full:
        code, err = run_module(*args, stdout=full)
    assert code == 1
    assert err == "error: cannot write the output: No space left on device.\n"


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`multivac tests job.log --all | head -1`: the reader left, there is nothing to
    report. The output (about 200 KB) is larger than a pipe's buffer, so the command is
    still writing when the reader leaves."""
    log = tmp_path / "job.log"
    log.write_text("".join(f"--- PASS: TestNumber{i} (0.00s)\n" for i in range(5000)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "multivac", "tests", str(log), "--all"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.wait(timeout=60) == 1
    assert err == ""


@pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full")
@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "line-protocol", "influx-csv"])
def test_a_full_disk_under_output_names_the_file(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path, fmt: str
) -> None:
    populate(ghserver, runs=3)
    code, _out, err = gather(cli, ghserver, tmp_path / "state", "-f", fmt, "-o", str(FULL))
    assert code == 1
    assert err.splitlines()[-1] == "error: cannot write /dev/full: No space left on device."


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 800 KB tmpfs: a disk that fills up in the middle of a gather (needs root)."""
    where = tmp_path / "tiny"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=800k", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def test_a_store_on_a_full_disk_is_one_sentence(
    ghserver: FakeGitHub, cli: Invoke, tiny_disk: Path
) -> None:
    repo = ghserver.add_repo("octo/faulty")
    repo.add_runs_bulk(400, NOW - timedelta(hours=20), 120, jobs_per_run=3)
    code, _out, err = gather(cli, ghserver, tiny_disk)
    assert code == 1
    last = err.splitlines()[-1]
    assert last.startswith(f"error: cannot write the local store {tiny_disk}"), err
    assert last.endswith("database or disk is full."), err


def test_a_state_directory_that_is_a_file(cli: Invoke, tmp_path: Path) -> None:
    (tmp_path / "state").write_text("not a directory\n")
    result = cli("failures", "stats", "octo/x", "--offline")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: the state directory {tmp_path / 'state'} is a file, not a directory "
        "(--state-dir, MULTIVAC_STATE_DIR)."
    )


def test_a_store_locked_by_another_multivac_says_so(tmp_path: Path) -> None:
    Store.open(tmp_path).close()
    path = tmp_path / Store.FILENAME
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        # the store waits 30 s for a lock; this one gives up at once
        store = Store(sqlite3.connect(path, timeout=0, isolation_level=None), path)
        with pytest.raises(StoreError) as caught:
            store.save_run(make_run(1), [make_job(11, run_id=1)], {})
        store.close()
    finally:
        other.close()
    assert str(caught.value) == (
        f"cannot write the local store {path}: database is locked (another multivac is "
        "writing to it: run one at a time per state directory)."
    )


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://user:Pw0rd@127.0.0.1:8086/api", "http://user:***@127.0.0.1:8086/api"),
        ("at https://ci:tok@ghe.example/api/v3 and ftp://a:b@c/", None),
        ("see https://github.com/a/b at 12:30", "see https://github.com/a/b at 12:30"),
        ("http://user@host:8086", "http://user@host:8086"),
        ("user:pass@host without a scheme", "user:pass@host without a scheme"),
    ],
)
def test_redact_hides_a_password_in_a_url(text: str, shown: str | None) -> None:
    if shown is None:
        assert redact(text) == "at https://ci:***@ghe.example/api/v3 and ftp://a:***@c/"
    else:
        assert redact(text) == shown


def test_a_password_in_an_influx_url_never_shows(cli: Invoke, tmp_path: Path) -> None:
    env = {"INFLUX_URL": "http://ci:Pw_in_the_URL@127.0.0.1:1", "INFLUX_BUCKET": "b"}
    shown = cli("config", "show", env=env)
    assert shown.exit_code == 0
    assert "http://ci:***@127.0.0.1:1" in shown.stdout
    checked = cli("doctor", env=env)
    assert "Pw_in_the_URL" not in shown.output + checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("failure_type", "code"), [("test_failures", 2), ("out_of_memory", 0), ("test_failure", 0)]
)
def test_failures_watch_tells_a_typo_from_no_jobs(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path, failure_type: str, code: int
) -> None:
    populate(ghserver, runs=2)
    env = {"GITHUB_API_URL": ghserver.url, "MULTIVAC_STATE_DIR": str(tmp_path / "s")}
    result = cli("failures", "watch", failure_type, "octo/faulty", env=env)
    assert result.exit_code == code, result.stderr
    last = result.stderr.splitlines()[-1]
    if code:
        assert last.startswith(f"error: '{failure_type}' is not a failure type; the types are: ")
        assert "test_failure, " in last
    else:
        assert last == f"0 jobs of type {failure_type}."


def test_rules_check_of_a_missing_file_names_no_flag(cli: Invoke) -> None:
    result = cli("rules", "check", "missing.yaml")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: 'missing.yaml' is neither a rules file nor a shipped")


def test_a_private_repository_without_a_token_asks_for_one(
    ghserver: FakeGitHub, cli: Invoke
) -> None:
    ghserver.add_repo("octo/secret", private=True)
    result = cli("gather", "octo/secret", env={"GITHUB_API_URL": ghserver.url})
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "error: repository octo/secret: not found on GitHub (404); it does not exist, or it is "
        "private and GITHUB_TOKEN is not set."
    )


@pytest.mark.parametrize(("token", "said"), [(None, "wants a token"), ("ghp_wrong", "rejected")])
def test_a_401_says_whether_a_token_was_sent(
    ghserver: FakeGitHub, cli: Invoke, token: str | None, said: str
) -> None:
    populate(ghserver, runs=1)
    ghserver.required_token = TOKEN
    env = {"GITHUB_API_URL": ghserver.url, **({"GITHUB_TOKEN": token} if token else {})}
    result = cli("gather", "octo/faulty", env=env)
    assert result.exit_code == 1
    last = result.stderr.splitlines()[-1]
    assert said in last and "(401 Bad credentials)" in last
    assert TOKEN not in result.output and "ghp_wrong" not in result.output


def test_a_repository_typed_in_another_case_is_one_series(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    """GitHub's names are case-insensitive: `OCTO/Faulty` is octo/faulty, in the records,
    in the store and in the reports."""
    failing_repo(ghserver, runs=2)
    env = {"GITHUB_API_URL": ghserver.url, "MULTIVAC_STATE_DIR": str(tmp_path / "s")}
    result = cli("gather", "OCTO/Faulty", "--no-logs", "--since", "1d", env=env)
    assert result.exit_code == 0, result.stderr
    assert {row["repository"] for row in table(result.stdout)} == {"octo/faulty"}
    again = cli("gather", "octo/faulty", "--no-logs", "--since", "1d", env=env)
    assert "2 unchanged runs from the local store" in again.stderr
    stats = cli("failures", "stats", "Octo/FAULTY", "--offline", "--since", "1d", env=env)
    assert stats.exit_code == 0, stats.stderr
    assert stats.stdout.splitlines()[-1].split() == ["total", "4"]


@pytest.mark.parametrize(
    ("path", "status"),
    [(r"^/repos/org1/b/actions/runs$", 403), (r"^/repos/org1/b$", 404)],
    ids=["runs-403", "repo-404"],
)
def test_an_org_repository_the_token_cannot_read_is_skipped_not_the_end(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path, path: str, status: int
) -> None:
    for name in ("a", "b", "c"):
        repo = ghserver.add_repo(f"org1/{name}", org="org1")
        repo.add_runs_bulk(2, NOW - timedelta(hours=5), 120, jobs_per_run=1)
    ghserver.faults.add(path, "status", count=None, status=status)
    env = {"GITHUB_API_URL": ghserver.url, "MULTIVAC_STATE_DIR": str(tmp_path / "s")}
    result = cli("gather", "--org", "org1", "--no-logs", "--since", "1d", env=env)
    assert result.exit_code == 1
    assert {row["repository"] for row in table(result.stdout)} == {"org1/a", "org1/c"}
    assert "warning: skipping org1/b: " in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "error: 1 repositories of org1 could not be read and were skipped: org1/b (403 or 404: "
        "the token cannot read their Actions); the others were gathered."
    )
    named = cli("gather", "org1/b", "--no-logs", "--since", "1d", env=env)
    assert named.exit_code == 1  # a repository named on the command line is never skipped
    assert f"({status}" in named.stderr.splitlines()[-1]


@pytest.mark.parametrize(
    ("labels", "parsed"),
    [
        (["ubuntu-latest", "self-hosted"], ("ubuntu-latest", "self-hosted")),
        ("ubuntu-latest", ("ubuntu-latest",)),
        (None, ()),
        ({"name": "x"}, ()),
        ([], ()),
    ],
)
def test_job_labels_of_any_shape(labels: object, parsed: tuple[str, ...]) -> None:
    assert job_from_json({"id": 1, "run_id": 2, "labels": labels}).labels == parsed


class _SmallBodies(BaseHTTPRequestHandler):
    """A proxy in front of VictoriaMetrics that takes at most `limit` lines a request
    (as nginx takes at most 1 MB): larger writes are answered 413."""

    upstream = ""
    limit = 7
    too_large = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        raw = gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body
        if len(raw.splitlines()) > self.limit:
            type(self).too_large += 1
            self.send_response(413)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        request = urllib.request.Request(self.upstream + self.path, data=raw, method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            status = answer.status
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


def test_a_write_too_large_for_a_proxy_goes_again_in_smaller_parts(
    ghserver: FakeGitHub, cli: Invoke, vm: VictoriaMetrics, tmp_path: Path
) -> None:
    handler = type("Proxy", (_SmallBodies,), {"upstream": vm.url, "too_large": 0})
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        populate(ghserver, runs=10)
        env = {
            "GITHUB_API_URL": ghserver.url,
            "MULTIVAC_STATE_DIR": str(tmp_path / "s"),
            "INFLUX_URL": f"http://127.0.0.1:{proxy.server_address[1]}",
            "INFLUX_TOKEN": "t",
            "INFLUX_ORG": "o",
            "INFLUX_BUCKET": "b",
        }
        result = cli(
            "gather", "octo/faulty", "--no-logs", "--since", "1d", "-f", "influxdb", env=env
        )
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert result.exit_code == 0, result.stderr
    assert "rejected" not in result.stderr
    assert handler.too_large >= 1
    assert len(vm.points()) == 30 + 10  # every job and run


def test_an_unreachable_api_is_named(cli: Invoke) -> None:
    url = "http://ci:Pw_in_the_URL@127.0.0.1:9/api/v3"
    result = cli("gather", "octo/x", "--since", "1h", env={"GITHUB_API_URL": url})
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "error: cannot reach GitHub at http://ci:***@127.0.0.1:9/api/v3 for repository "
        "octo/x (ConnectionError); check GITHUB_API_URL and the network."
    )


def test_a_damaged_log_archive_never_passes_for_the_whole_log(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    """A log archive cut off (a full disk, a broken copy) would let reclassify move the job
    to whatever the first half of its log shows; `logs show` would print half a log."""
    repo = ghserver.add_repo("octo/faulty")
    run = repo.add_run(created_at=NOW - timedelta(hours=2), conclusion="failure")
    noise = "".join(
        f"2026-10-01T12:00:00.0000000Z step output line {n} {n * 7919}\n" for n in range(4000)
    )
    log = noise + "2026-10-01T12:00:01.0000000Z FAILED tests/test_a.py::test_x - assert 1 == 2\n"
    job = run.add_job("test", conclusion="failure", log=log)
    state = tmp_path / "s"
    env = {"GITHUB_API_URL": ghserver.url, "MULTIVAC_STATE_DIR": str(state)}
    gathered = cli("gather", "octo/faulty", "--since", "1d", env=env)
    assert gathered.exit_code == 0, gathered.stderr
    assert "test_failure 1" in gathered.stderr
    archived = state / "logs" / f"{job.id}.log.gz"
    archived.write_bytes(archived.read_bytes()[: archived.stat().st_size // 2])
    shown = cli("logs", "show", str(job.id), env=env)
    assert shown.exit_code == 1
    assert shown.stderr.strip() == (
        f"error: the archived log {archived} is damaged (cut off before its end); remove it "
        "(a gather reads the log again while GitHub keeps it)."
    )
    again = cli("reclassify", env=env)
    assert again.exit_code == 0, again.stderr
    assert again.stderr.strip() == "reclassified 0 jobs."
    archived.write_bytes(b"not gzip at all")
    assert "(not gzip: " in cli("logs", "show", str(job.id), env=env).stderr


def test_a_damaged_spool_file_is_set_aside_not_in_the_way(
    cli: Invoke, vm: VictoriaMetrics, tmp_path: Path
) -> None:
    """Every gather to InfluxDB delivers the spool first: one file that cannot be read
    (not UTF-8, a cut-off retraction) must not stop them all."""
    spool = tmp_path / "s" / "spool"
    spool.mkdir(parents=True)
    (spool / "01.lp").write_bytes(b"\xff\xfe garbage\n")
    (spool / "02.lp").write_text("deploys,service=api s=42 1700000000000000000\n")
    (spool / "03.del").write_text('["deploys", [["service"\n')
    env = {
        "MULTIVAC_STATE_DIR": str(tmp_path / "s"),
        "INFLUX_URL": vm.url,
        "INFLUX_TOKEN": "t",
        "INFLUX_ORG": "o",
        "INFLUX_BUCKET": "b",
    }
    result = cli("replay", env=env)
    assert result.exit_code == 1
    assert "delivered 1 spooled points" in result.stderr
    for name in ("01.lp", "03.del"):
        assert f"error: the spool file {name} cannot be read (" in result.stderr
        assert (spool / "rejected" / name).is_file()
    assert len(vm.points()) == 1
    again = cli("replay", env=env)
    assert again.exit_code == 0, again.stderr
    assert "nothing to replay" in again.stderr
