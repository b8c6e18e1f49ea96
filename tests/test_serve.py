"""`multivac serve` end to end: a real uvicorn subprocess driven over HTTP with deliveries
signed by the secret; records land in the real VictoriaMetrics (InfluxDB 2 write API)
or in a file; failed jobs' logs come from the local GitHub test server."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from multivac.config import Secret
from multivac.serve import sign
from tests.conftest import TOKEN, Invoke
from tests.ghserver import FakeGitHub, Job, make_log
from tests.servers import VictoriaMetrics
from tests.serving import (
    SECRET,
    Serve,
    base_env,
    deliver_job,
    job_event,
    run_event,
    serving,
    wait_until,
)

INFLUX_TOKEN = "influx-secret-token-for-serve-42"


def influx_env(vm: VictoriaMetrics, gh: FakeGitHub, state: Path, **extra: str) -> dict[str, str]:
    return base_env(
        GITHUB_API_URL=gh.url,
        GITHUB_TOKEN=TOKEN,
        INFLUX_URL=vm.url,
        INFLUX_TOKEN=INFLUX_TOKEN,
        INFLUX_ORG="acme",
        INFLUX_BUCKET="ci",
        MULTIVAC_STATE_DIR=str(state),
        **extra,
    )


def job_points(vm: VictoriaMetrics) -> list[tuple[str, dict[str, str]]]:
    """(measurement, tags) of every point stored but the `queue` ones (jobs and runs),
    one per point whatever its fields."""
    seen: dict[tuple[str, tuple[tuple[str, str], ...], int], dict[str, str]] = {}
    for point in vm.points():
        if point.measurement == "queue":
            continue
        seen[(point.measurement, tuple(sorted(point.tags.items())), point.time_ns)] = dict(
            point.tags
        )
    return [(key[0], tags) for key, tags in seen.items()]


def queue_points(vm: VictoriaMetrics) -> list[tuple[int, float, float]]:
    """(time, queued, running) of the `queue` points, oldest first."""
    rows: dict[int, dict[str, float]] = {}
    for point in vm.points():
        if point.measurement == "queue":
            rows.setdefault(point.time_ns, {}).update(point.fields)  # type: ignore[arg-type]
    return [(t, f.get("queued", 0.0), f.get("running", 0.0)) for t, f in sorted(rows.items())]


# ---------------------------------------------------------------------------- the lifecycle


def test_a_job_queued_started_and_completed_is_one_record_and_the_queue_rises_and_falls(
    vm: VictoriaMetrics, ghserver: FakeGitHub, tmp_path: Path
) -> None:
    repo = ghserver.add_repo("octo/live")
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    run = repo.add_run(created_at=created, head_sha="c" * 40)
    job = run.add_job(
        "build",
        conclusion="success",
        created_at=created,
        started_at=created + timedelta(seconds=12),
        completed_at=created + timedelta(seconds=72),
        labels=["self-hosted", "linux", "x64"],
    )
    label = "self-hosted,linux,x64"
    env = influx_env(vm, ghserver, tmp_path / "state")
    with serving(["--format", "influxdb"], env, tmp_path) as serve:

        def post(action: str) -> int:
            return serve.post("workflow_job", job_event(ghserver, job, action)).status_code

        assert post("queued") == 202
        assert serve.gauge("multivac_jobs_queued", runner_label=label) == 1
        assert serve.gauge("multivac_oldest_queued_seconds", runner_label=label) >= 30
        # the `queue` point of the label comes within a second
        wait_until(lambda: [q for q in queue_points(vm) if q[1:] == (1.0, 0.0)], timeout=10)
        assert post("in_progress") == 202
        assert serve.gauge("multivac_jobs_queued", runner_label=label) == 0
        assert serve.gauge("multivac_jobs_running", runner_label=label) == 1
        assert post("completed") == 202
        assert serve.gauge("multivac_jobs_running", runner_label=label) == 0
        assert serve.gauge("multivac_jobs_queued", runner_label=label) == 0
        assert serve.gauge("multivac_deliveries_accepted_total", event="workflow_job") == 3
        health = serve.healthz()
        assert health.status_code == 200, health.text
        assert health.json()["output"]["detail"] == "InfluxDB answers"
        wait_until(lambda: job_points(vm))
    points = job_points(vm)
    assert len(points) == 1
    measurement, tags = points[0]
    assert measurement == "successful_jobs"
    assert tags == {
        "repository": "octo/live",
        "workflow": "CI",
        "job_name": "build",
        "job_id": str(job.id),
        "run_id": str(run.id),
        "run_attempt": "1",
        "branch": "main",
        "commit_sha": "c" * 40,
        "platform": "linux-x64",
        "status": "success",
        "runner_label": label,
        "runner_group": "GitHub Actions",
    }
    (stored,) = [p for p in vm.points() if p.measurement == "successful_jobs"]
    assert stored.fields["queued_s"] == 12.0
    assert stored.fields["in_progress_s"] == 60.0
    assert stored.time_ns == int(created.timestamp()) * 1_000_000_000
    # the job waited, then nothing was in flight: the last point was written on stop,
    # since the label had changed in the ten seconds after its first point
    assert [q[1:] for q in queue_points(vm)] == [(1.0, 0.0), (0.0, 0.0)]


# ---------------------------------------------------------------------------- refusals


@pytest.fixture(scope="module")
def quiet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """One server for the protocol tests: line protocol to a file, no GitHub."""
    home = tmp_path_factory.mktemp("serve-protocol")
    env = base_env(MULTIVAC_STATE_DIR=str(home / "state"), GITHUB_API_URL="http://127.0.0.1:9")
    args = ["--format", "line-protocol", "-o", str(home / "out.lp"), "--no-logs"]
    with serving(args, env, home) as serve:
        yield serve


def output_lines(serve: Serve) -> list[str]:
    out = Path(serve.args[serve.args.index("-o") + 1])
    return out.read_text().splitlines() if out.exists() else []


def deliveries(serve: Serve) -> int:
    state = Path(serve.env["MULTIVAC_STATE_DIR"]) / "multivac.sqlite3"
    with sqlite3.connect(state) as db:
        return int(db.execute("SELECT count(*) FROM deliveries").fetchone()[0])


def completed_job(job_id: int, run_id: int = 900, *, name: str = "build", **extra: object) -> dict:
    """A `workflow_job` `completed` delivery, spelled out (no GitHub behind it)."""
    now = datetime.now(UTC).replace(microsecond=0)
    job = {
        "id": job_id,
        "run_id": run_id,
        "workflow_name": "CI",
        "head_branch": "main",
        "run_attempt": 1,
        "head_sha": "d" * 40,
        "html_url": f"https://github.com/octo/proto/actions/runs/{run_id}/job/{job_id}",
        "status": "completed",
        "conclusion": "success",
        "created_at": (now - timedelta(seconds=70)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "started_at": (now - timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "completed_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "name": name,
        "steps": [],
        "labels": ["ubuntu-latest"],
        "runner_name": "GitHub Actions 3",
    }
    job.update(extra)
    return {
        "action": "completed",
        "workflow_job": job,
        "repository": {"id": 1, "full_name": "octo/proto", "name": "proto"},
        "sender": {"login": "octocat", "id": 1},
    }


def _signed_for(body: bytes, secret: str) -> dict[str, object]:
    return {"X-Hub-Signature-256": sign(Secret(secret), body)}


REFUSALS = {
    "signed with another secret": (
        lambda s: {
            "body": json.dumps(completed_job(11)).encode(),
            "headers": _signed_for(json.dumps(completed_job(11)).encode(), "not-the-secret"),
        },
        401,
        "signature_invalid",
    ),
    "no signature header": (
        lambda s: {"payload": completed_job(12), "secret": None},
        401,
        "signature_missing",
    ),
    "body changed after signing": (
        lambda s: {
            "body": json.dumps(completed_job(13)).encode(),
            "headers": _signed_for(json.dumps(completed_job(14)).encode(), SECRET),
        },
        401,
        "signature_invalid",
    ),
    "sha1 signature only": (
        lambda s: {
            "payload": completed_job(15),
            "headers": {"X-Hub-Signature-256": None, "X-Hub-Signature": "sha1=00"},
        },
        401,
        "signature_missing",
    ),
    "form content type": (
        lambda s: {
            "payload": completed_job(16),
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        },
        415,
        "content_type",
    ),
    "text content type": (
        lambda s: {"payload": completed_job(16), "headers": {"Content-Type": "text/plain"}},
        415,
        "content_type",
    ),
    "no content type": (
        lambda s: {"payload": completed_job(17), "headers": {"Content-Type": None}},
        415,
        "content_type",
    ),
    "truncated JSON": (
        lambda s: {"body": json.dumps(completed_job(18)).encode()[:-40]},
        400,
        "malformed_json",
    ),
    "a JSON array": (lambda s: {"body": b"[1, 2, 3]"}, 400, "malformed_json"),
    "no event header": (
        lambda s: {"payload": completed_job(19), "headers": {"X-GitHub-Event": None}},
        400,
        "no_event",
    ),
    "no delivery header": (
        lambda s: {"payload": completed_job(20), "headers": {"X-GitHub-Delivery": None}},
        400,
        "no_delivery",
    ),
    "no repository": (
        lambda s: {"payload": {"action": "completed", "workflow_job": {"id": 21}}},
        400,
        "malformed_payload",
    ),
    "a job without an id": (
        lambda s: {"payload": _without(completed_job(22), "id")},
        400,
        "malformed_payload",
    ),
    "a job without a run id": (
        lambda s: {"payload": _without(completed_job(23), "run_id")},
        400,
        "malformed_payload",
    ),
    "JSON nested 100,000 deep": (
        lambda s: {"body": b"[" * 100_000 + b"]" * 100_000},
        400,
        "malformed_json",
    ),
}


def _without(payload: dict[str, Any], key: str) -> dict[str, Any]:
    job = {k: v for k, v in payload["workflow_job"].items() if k != key}
    return {**payload, "workflow_job": job}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refused_delivery_stores_nothing(quiet: Serve, case: str) -> None:
    build, status, reason = REFUSALS[case]
    before_deliveries = deliveries(quiet)
    before_lines = len(output_lines(quiet))
    before = quiet.gauge("multivac_deliveries_rejected_total", reason=reason)
    response = quiet.post("workflow_job", **build(quiet))  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert "error" in response.json()
    assert quiet.gauge("multivac_deliveries_rejected_total", reason=reason) == before + 1
    time.sleep(0.4)  # a record would have been written by now
    assert deliveries(quiet) == before_deliveries
    assert len(output_lines(quiet)) == before_lines


def test_a_run_without_an_id_is_refused(quiet: Serve) -> None:
    """Stored as run 0 it would be mixed with every other such run."""
    repository = {"id": 1, "full_name": "octo/proto", "name": "proto"}
    payload = {"action": "completed", "repository": repository, "workflow_run": {"name": "CI"}}
    before = deliveries(quiet)
    response = quiet.post("workflow_run", payload)
    assert response.status_code == 400
    assert response.json() == {"error": "not a workflow_run payload (no id)"}
    assert deliveries(quiet) == before


def test_ping_and_other_events(quiet: Serve) -> None:
    ping = quiet.post("ping", {"zen": "Design for failure.", "hook_id": 421337})
    assert ping.status_code == 200
    push = quiet.post("push", {"ref": "refs/heads/main"})
    assert push.status_code == 202
    assert "ignored" in push.json()
    assert quiet.gauge("multivac_deliveries_ignored_total", event="push") == 1
    waiting = completed_job(30)
    waiting["action"] = "waiting"
    assert quiet.post("workflow_job", waiting).status_code == 202


def test_a_redelivery_is_answered_200_and_changes_nothing(quiet: Serve) -> None:
    payload = completed_job(40)
    first = quiet.post("workflow_job", payload, delivery="aaaa-1111-redelivered")
    assert first.status_code == 202
    wait_until(lambda: any("job_id=40," in line for line in output_lines(quiet)))
    count = deliveries(quiet)
    lines = len(output_lines(quiet))
    again = quiet.post("workflow_job", payload, delivery="aaaa-1111-redelivered")
    assert again.status_code == 200
    assert again.json() == {"duplicate": "aaaa-1111-redelivered"}
    time.sleep(0.5)
    assert deliveries(quiet) == count
    assert len(output_lines(quiet)) == lines
    assert quiet.gauge("multivac_deliveries_duplicate_total") >= 1
    # the same job in a new delivery (GitHub's redelivery keeps the id): no new point
    assert quiet.post("workflow_job", payload).status_code == 202
    time.sleep(0.5)
    assert len(output_lines(quiet)) == lines


def _raw_request(url: str, head: bytes) -> socket.socket:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=20)
    sock.sendall(head)
    return sock


def _status(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1]), data


def test_a_30mb_body_with_its_length_declared_is_refused_before_it_is_read(quiet: Serve) -> None:
    size = 30 * 1024 * 1024
    head = (
        b"POST /webhook HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"X-GitHub-Event: workflow_job\r\nX-GitHub-Delivery: big-1\r\n"
        b"X-Hub-Signature-256: sha256=00\r\n" + f"Content-Length: {size}\r\n\r\n".encode()
    )
    sock = _raw_request(quiet.url, head)
    try:
        # not one byte of the body was sent: the answer cannot have waited for it
        status, raw = _status(sock)
        assert status == 413
        assert b"connection: close" in raw.lower()
    finally:
        sock.close()
    assert quiet.healthz().status_code == 200


def test_a_30mb_chunked_body_is_cut_off_at_25mb(quiet: Serve) -> None:
    head = (
        b"POST /webhook HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"X-GitHub-Event: workflow_job\r\nX-GitHub-Delivery: big-2\r\n"
        b"X-Hub-Signature-256: sha256=00\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    sock = _raw_request(quiet.url, head)
    sent = 0
    chunk = b"[" + b" " * (1024 * 1024 - 1)

    def send() -> None:
        nonlocal sent
        try:
            for _ in range(30):
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server closed the connection: it read no more

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        status, _raw = _status(sock)
    finally:
        sender.join(30)
        sock.close()
    assert status == 413
    assert quiet.gauge("multivac_deliveries_rejected_total", reason="too_large") >= 1


def test_50_concurrent_posts(quiet: Serve) -> None:
    before = len(output_lines(quiet))
    payloads = [completed_job(1000 + n, run_id=2000 + n) for n in range(50)]
    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(lambda p: quiet.post("workflow_job", p).status_code, payloads))
    assert statuses == [202] * 50
    wait_until(lambda: len(output_lines(quiet)) >= before + 50)
    new = output_lines(quiet)[before:]
    assert len(new) == 50
    assert sorted(int(line.split("job_id=")[1].split(",")[0]) for line in new) == [
        1000 + n for n in range(50)
    ]


# ---------------------------------------------------------------------------- classification


DISK_FULL = ["OSError: [Errno 28] No space left on device: '/tmp/build'"]


def failing_job(run: object, name: str, created: datetime) -> Job:
    steps = [
        ("Set up job", "success"),
        ("Run make", "failure", DISK_FULL),
        ("Complete job", "success"),
    ]
    log = make_log(created + timedelta(seconds=5), steps)
    return run.add_job(  # type: ignore[attr-defined, no-any-return]
        name,
        conclusion="failure",
        created_at=created,
        started_at=created + timedelta(seconds=5),
        completed_at=created + timedelta(seconds=65),
        steps=[(s[0], s[1]) for s in steps],
        log=log,
    )


def lp_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_restart_with_classifications_pending_loses_nothing(
    ghserver: FakeGitHub, tmp_path: Path
) -> None:
    repo = ghserver.add_repo("octo/pending")
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    run = repo.add_run(created_at=created, conclusion="failure")
    jobs = [failing_job(run, f"test-{n}", created) for n in range(3)]
    out = tmp_path / "out.lp"
    env = base_env(
        GITHUB_API_URL=ghserver.url,
        GITHUB_TOKEN=TOKEN,
        MULTIVAC_STATE_DIR=str(tmp_path / "state"),
    )
    # GitHub's API is down: no log can be read
    ghserver.faults.add(r"/logs$", "status", count=None, status=503)
    serve = Serve(["-o", str(out), "--max-wait", "1s"], env, tmp_path).start()
    try:
        for job in jobs:
            response = serve.post("workflow_job", job_event(ghserver, job, "completed"))
            assert response.status_code == 202
        wait_until(lambda: serve.healthz().json()["worker_backlog"] == 3)
        assert serve.gauge("multivac_worker_backlog") == 3
        assert lp_lines(out) == []  # no record before the job is classified
        assert serve.stop() == 0
        ghserver.faults.clear()
        serve.start()
        wait_until(lambda: len(lp_lines(out)) == 3, timeout=30)
        wait_until(lambda: serve.gauge("multivac_worker_backlog") == 0)
        assert serve.gauge("multivac_jobs_classified_total") == 3
    finally:
        serve.stop()
    lines = lp_lines(out)
    assert all(line.startswith("out_of_disk,") for line in lines), lines
    assert sorted(int(line.split("job_id=")[1].split(",")[0]) for line in lines) == sorted(
        j.id for j in jobs
    )
    assert all('failure_step="Run make"' in line for line in lines)
    assert all('rule="no-space-left"' in line for line in lines)
    assert ghserver.log_auth_leaks == []


def test_the_response_never_waits_for_github(ghserver: FakeGitHub, tmp_path: Path) -> None:
    repo = ghserver.add_repo("octo/slow")
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    run = repo.add_run(created_at=created, conclusion="failure")
    job = failing_job(run, "slow", created)
    ghserver.faults.add(r"/logs$", "latency", count=None, seconds=3.0)
    out = tmp_path / "out.lp"
    env = base_env(
        GITHUB_API_URL=ghserver.url, GITHUB_TOKEN=TOKEN, MULTIVAC_STATE_DIR=str(tmp_path / "s")
    )
    with serving(["-o", str(out)], env, tmp_path) as serve:
        assert serve.post("workflow_job", job_event(ghserver, job, "completed")).status_code == 202
        # answered while the log request still waits out its 3 s at GitHub
        assert lp_lines(out) == []
        assert serve.healthz().json()["worker_backlog"] == 1
        wait_until(lambda: lp_lines(out), timeout=30)
    (line,) = lp_lines(out)
    assert line.startswith("out_of_disk,")


# ---------------------------------------------------------------------------- gather afterwards


@pytest.mark.parametrize("run_delivered", [True, False], ids=["run-delivered", "run-missed"])
def test_a_gather_of_the_same_window_afterwards_writes_no_duplicates(
    vm: VictoriaMetrics, ghserver: FakeGitHub, tmp_path: Path, cli: Invoke, run_delivered: bool
) -> None:
    repo = ghserver.add_repo("octo/both")
    state = tmp_path / "state"
    env = influx_env(vm, ghserver, state)
    serve = Serve(["--format", "influxdb"], env, tmp_path).start()
    try:
        time.sleep(1.1)  # the run begins after serve started listening
        created = datetime.now(UTC).replace(microsecond=0)
        run = repo.add_run(created_at=created, conclusion="failure", head_sha="e" * 40)
        ok = run.add_job(
            "lint",
            conclusion="success",
            created_at=created,
            started_at=created + timedelta(seconds=3),
            completed_at=created + timedelta(seconds=30),
        )
        broken = failing_job(run, "test", created)
        for job in (ok, broken):
            deliver_job(serve, ghserver, job)
        if run_delivered:
            assert serve.post("workflow_run", run_event(ghserver, run)).status_code == 202
        # the jobs, and the run's point when serve saw all its jobs
        expected = ["out_of_disk", "runs", "successful_jobs"] if run_delivered else None
        expected = expected or ["out_of_disk", "successful_jobs"]
        wait_until(lambda: sorted(m for m, _ in job_points(vm)) == expected, timeout=30)
    finally:
        assert serve.stop() == 0, serve.stderr
    before = sorted((m, sorted(t.items())) for m, t in job_points(vm))
    assert [m for m, _ in before] == expected
    with sqlite3.connect(state / "multivac.sqlite3") as db:
        row = db.execute("SELECT jobs_complete FROM runs WHERE id = ?", (run.id,)).fetchone()
    (complete,) = row
    assert complete == int(run_delivered)

    ghserver.reset_log()
    result = cli(
        "gather",
        "octo/both",
        "--format",
        "influxdb",
        "--since",
        "1h",
        env={k: v for k, v in env.items() if k.startswith(("GITHUB_", "INFLUX_", "MULTIVAC_"))},
    )
    assert result.exit_code == 0, result.stderr
    after = sorted((m, sorted(t.items())) for m, t in job_points(vm))
    if run_delivered:
        assert after == before
    else:  # the gather adds the run's point, which serve left to it; nothing else
        assert [point for point in after if point[0] != "runs"] == before
        assert [m for m, _ in after] == ["out_of_disk", "runs", "successful_jobs"]
    assert ghserver.requests_to(r"/logs$") == []  # classified once, by serve
    jobs_requests = ghserver.requests_to(rf"/runs/{run.id}/jobs")
    if run_delivered:
        assert jobs_requests == []
        assert "1 unchanged runs from the local store" in result.stderr
    else:
        assert len(jobs_requests) == 1


# ---------------------------------------------------------------------------- secrets


def test_the_token_and_the_secret_never_appear(ghserver: FakeGitHub, tmp_path: Path) -> None:
    repo = ghserver.add_repo("octo/secret")
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    run = repo.add_run(created_at=created, conclusion="failure")
    job = failing_job(run, "test", created)
    ghserver.required_token = "the-token-github-wants-0000"  # ours is refused: errors get logged
    state = tmp_path / "state"
    env = base_env(
        GITHUB_API_URL=ghserver.url,
        GITHUB_TOKEN=TOKEN,
        INFLUX_URL="http://127.0.0.1:9",  # nothing listens: points are spooled, errors logged
        INFLUX_TOKEN=INFLUX_TOKEN,
        INFLUX_ORG="acme",
        INFLUX_BUCKET="ci",
        MULTIVAC_STATE_DIR=str(state),
    )
    serve = Serve(["--format", "influxdb"], env, tmp_path).start()
    try:
        deliver_job(serve, ghserver, job)
        serve.post("workflow_job", completed_job(77), secret="wrong-secret")
        serve.post("workflow_job", completed_job(78), secret=None)
        serve.post("workflow_job", body=b"{not json")
        wait_until(lambda: serve.gauge("multivac_worker_backlog") == 0, timeout=30)
        health = serve.healthz()
        assert health.status_code == 503  # InfluxDB does not answer
        assert health.json()["store"]["ok"] and not health.json()["output"]["ok"]
        shown = [serve.metrics_text(), health.text]
    finally:
        serve.stop()
    texts = [serve.stderr, serve.stdout, *shown]
    texts += [r.text + json.dumps(dict(r.headers)) for r in serve.responses]
    texts += [p.read_bytes().decode("utf-8", "replace") for p in state.rglob("*") if p.is_file()]
    assert "GitHub rejected the token" in serve.stderr  # the refusal was logged
    assert any("spool" in str(p) for p in state.rglob("*.lp"))  # and InfluxDB was down
    for text in texts:
        for secret in (SECRET, TOKEN, INFLUX_TOKEN):
            assert secret not in text


# ---------------------------------------------------------------------------- order and attempts


def test_a_rerun_makes_the_earlier_failure_flaky(quiet: Serve) -> None:
    before = len(output_lines(quiet))
    first = completed_job(501, run_id=5000, name="test", conclusion="failure")
    second = completed_job(502, run_id=5000, name="test", run_attempt=2)
    assert quiet.post("workflow_job", first).status_code == 202
    wait_until(lambda: len(output_lines(quiet)) == before + 1)
    assert quiet.post("workflow_job", second).status_code == 202
    wait_until(lambda: len(output_lines(quiet)) == before + 3)
    failed, *later = output_lines(quiet)[before:]
    assert failed.startswith("unknown_failure,") and "flaky" not in failed
    assert "job_id=501," in failed
    by_job = {line.split("job_id=")[1].split(",")[0]: line for line in later}
    assert by_job["502"].startswith("successful_jobs,") and "run_attempt=2," in by_job["502"]
    assert by_job["501"].startswith("unknown_failure,") and ",flaky=true," in by_job["501"]


def test_attempts_completed_out_of_order_are_flaky_at_once(quiet: Serve) -> None:
    before = len(output_lines(quiet))
    later = completed_job(601, run_id=6000, name="test", run_attempt=2)
    earlier = completed_job(600, run_id=6000, name="test", conclusion="failure")
    assert quiet.post("workflow_job", later).status_code == 202
    assert quiet.post("workflow_job", earlier).status_code == 202
    wait_until(lambda: len(output_lines(quiet)) >= before + 2)
    time.sleep(0.5)
    new = output_lines(quiet)[before:]
    assert len(new) == 2  # each job once: the failure was flaky from its first point
    failed = next(line for line in new if "job_id=600," in line)
    assert ",flaky=true," in failed


def test_a_job_delivered_without_workflow_name_gets_it_from_its_run(quiet: Serve) -> None:
    """GitHub Enterprise Server's older payloads have no `workflow_name`: the job's point
    is written without the tag, then again under the run's name when the run completes
    (as a gather would tag it)."""
    before = len(output_lines(quiet))
    job = completed_job(801, run_id=8000, name="lint")
    del job["workflow_job"]["workflow_name"]
    assert quiet.post("workflow_job", job).status_code == 202
    wait_until(lambda: len(output_lines(quiet)) == before + 1)
    assert "workflow=" not in output_lines(quiet)[before]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    run = {
        "id": 8000,
        "name": "Nightly lint",
        "head_branch": "main",
        "head_sha": "d" * 40,
        "event": "schedule",
        "status": "completed",
        "conclusion": "success",
        "run_attempt": 1,
        "created_at": now,
        "updated_at": now,
        "html_url": "https://github.com/octo/proto/actions/runs/8000",
    }
    delivery = {"action": "completed", "workflow_run": run, "repository": job["repository"]}
    assert quiet.post("workflow_run", delivery).status_code == 202
    wait_until(lambda: any("job_id=801," in line for line in output_lines(quiet)[before + 1 :]))
    again = [line for line in output_lines(quiet)[before + 1 :] if "job_id=801," in line]
    assert len(again) == 1 and "workflow=Nightly\\ lint " in again[0], again


def test_events_out_of_order_leave_nothing_in_flight(quiet: Serve) -> None:
    payload = completed_job(700, run_id=7000)
    label = "ubuntu-latest"
    assert quiet.post("workflow_job", payload).status_code == 202
    for action in ("in_progress", "queued"):
        late = json.loads(json.dumps(payload))
        late["action"] = action
        late["workflow_job"].update(status=action, conclusion=None, completed_at=None)
        assert quiet.post("workflow_job", late).status_code == 202
    assert quiet.gauge("multivac_jobs_queued", runner_label=label) == 0
    assert quiet.gauge("multivac_jobs_running", runner_label=label) == 0
    # started before it was seen queued: a late `queued` does not count it again
    started = completed_job(701, run_id=7001)
    started["action"] = "in_progress"
    started["workflow_job"].update(status="in_progress", conclusion=None, completed_at=None)
    queued = json.loads(json.dumps(started))
    queued["action"] = "queued"
    assert quiet.post("workflow_job", started).status_code == 202
    assert quiet.post("workflow_job", queued).status_code == 202
    assert quiet.gauge("multivac_jobs_queued", runner_label=label) == 0
    assert quiet.gauge("multivac_jobs_running", runner_label=label) == 1
    assert quiet.post("workflow_job", completed_job(701, run_id=7001)).status_code == 202
    assert quiet.gauge("multivac_jobs_running", runner_label=label) == 0


# ---------------------------------------------------------------------------- operations


def test_sigterm_stops_cleanly_and_keeps_the_jobs_in_flight(tmp_path: Path) -> None:
    out = tmp_path / "out.lp"
    env = base_env(MULTIVAC_STATE_DIR=str(tmp_path / "state"))
    serve = Serve(["-o", str(out), "--no-logs"], env, tmp_path).start()
    try:
        queued = completed_job(801, run_id=8000)
        queued["action"] = "queued"
        queued["workflow_job"].update(status="queued", conclusion=None, completed_at=None)
        assert serve.post("workflow_job", queued).status_code == 202
        assert serve.post("workflow_job", completed_job(802, run_id=8000)).status_code == 202
        assert serve.stop(signal.SIGTERM) == 0
        assert "serve: stopped." in serve.stderr
        assert "Traceback" not in serve.stderr
        lines = lp_lines(out)  # written before the process ended
        assert any("job_id=802," in line for line in lines)
        serve.start()
        assert serve.gauge("multivac_jobs_queued", runner_label="ubuntu-latest") == 1
        assert serve.post("workflow_job", completed_job(801, run_id=8000)).status_code == 202
        assert serve.gauge("multivac_jobs_queued", runner_label="ubuntu-latest") == 0
    finally:
        serve.stop()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_as_soon_as_it_listens_is_a_clean_stop(tmp_path: Path, sig: int) -> None:
    env = base_env(MULTIVAC_STATE_DIR=str(tmp_path / "state"))
    serve = Serve(["-o", str(tmp_path / "out.lp"), "--no-logs"], env, tmp_path).start()
    assert serve.stop(sig) == 0
    assert serve.stderr_lines[-1] == "serve: stopped."


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_an_output_on_a_full_disk_is_reported_and_the_stop_stays_clean(tmp_path: Path) -> None:
    env = base_env(MULTIVAC_STATE_DIR=str(tmp_path / "state"))
    serve = Serve(["-o", "/dev/full", "--no-logs"], env, tmp_path).start()
    try:
        assert serve.post("workflow_job", completed_job(951, run_id=9500)).status_code == 202
        wait_until(lambda: "No space left on device" in serve.stderr)
        health = serve.session.get(serve.url + "/healthz", timeout=10)
        assert health.status_code == 503
        detail = health.json()["output"]["detail"]
        assert "cannot write /dev/full: No space left on device." in detail
    finally:
        code = serve.stop()
    assert code == 0
    assert "Traceback" not in serve.stderr
    assert serve.stderr_lines[-1] == "serve: stopped."


def test_a_request_in_flight_is_answered_before_the_server_stops(
    ghserver: FakeGitHub, tmp_path: Path
) -> None:
    env = base_env(MULTIVAC_STATE_DIR=str(tmp_path / "state"))
    serve = Serve(["-o", str(tmp_path / "out.lp"), "--no-logs"], env, tmp_path).start()
    body = json.dumps(completed_job(901, run_id=9000)).encode()
    head = (
        b"POST /webhook HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"X-GitHub-Event: workflow_job\r\nX-GitHub-Delivery: slow-1\r\n"
        + f"X-Hub-Signature-256: {sign(Secret(SECRET), body)}\r\n".encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    sock = _raw_request(serve.url, head + body[:100])
    try:
        time.sleep(0.3)
        assert serve.proc is not None
        serve.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        sock.sendall(body[100:])  # the rest of the body comes after SIGTERM
        status, _raw = _status(sock)
    finally:
        sock.close()
    assert status == 202
    assert serve.stop() == 0
    assert any("job_id=901," in line for line in lp_lines(tmp_path / "out.lp"))


def test_without_a_secret_serve_refuses_to_start(cli: Invoke) -> None:
    result = cli("serve", "--port", "0")
    assert result.exit_code == 2
    assert "MULTIVAC_WEBHOOK_SECRET is not set" in result.stderr
    assert "--insecure-no-signature" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_insecure_mode_warns_and_takes_unsigned_deliveries(tmp_path: Path) -> None:
    env = base_env(MULTIVAC_STATE_DIR=str(tmp_path / "state"))
    del env["MULTIVAC_WEBHOOK_SECRET"]
    args = ["-o", str(tmp_path / "out.lp"), "--no-logs", "--insecure-no-signature"]
    with serving(args, env, tmp_path) as serve:
        assert "warning: --insecure-no-signature" in serve.stderr
        assert serve.post("workflow_job", completed_job(950), secret=None).status_code == 202
        serve.restart()
        assert serve.stderr.count("warning: --insecure-no-signature") == 1  # this start too


def test_a_port_in_use_is_one_sentence(tmp_path: Path, cli: Invoke) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli(
            "serve",
            "--port",
            str(port),
            env={"MULTIVAC_WEBHOOK_SECRET": SECRET, "MULTIVAC_STATE_DIR": str(tmp_path / "s")},
        )
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_output_that_cannot_be_opened_is_one_sentence(tmp_path: Path, cli: Invoke) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    result = cli(
        "serve",
        "--port",
        "0",
        "-o",
        str(blocked / "out.lp"),  # a file where a directory should be
        env={"MULTIVAC_WEBHOOK_SECRET": SECRET, "MULTIVAC_STATE_DIR": str(tmp_path / "s")},
    )
    assert result.exit_code == 1
    assert "cannot write" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_steps_are_written_once_with_their_job(tmp_path: Path) -> None:
    out = tmp_path / "out.lp"
    env = base_env(MULTIVAC_STATE_DIR=str(tmp_path / "state"))
    now = datetime.now(UTC).replace(microsecond=0)

    def stamp(seconds: int) -> str:
        return (now - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")

    steps = [
        {"name": "Set up job", "status": "completed", "conclusion": "success", "number": 1,
         "started_at": stamp(60), "completed_at": stamp(58)},
        {"name": "Run tests", "status": "completed", "conclusion": "failure", "number": 2,
         "started_at": stamp(58), "completed_at": stamp(10)},
    ]  # fmt: skip
    first = completed_job(1101, run_id=1100, name="test", conclusion="failure", steps=steps)
    second = completed_job(1102, run_id=1100, name="test", run_attempt=2, steps=steps[:1])
    with serving(["-o", str(out), "--no-logs", "--steps"], env, tmp_path) as serve:
        assert serve.post("workflow_job", first).status_code == 202
        wait_until(lambda: any("job_id=1101," in line for line in lp_lines(out)))
        assert serve.post("workflow_job", second).status_code == 202
        wait_until(lambda: any("flaky=true" in line for line in lp_lines(out)))
        time.sleep(0.5)
    lines = [line for line in lp_lines(out) if not line.startswith("queue,")]
    step_lines = [line for line in lines if line.startswith("steps,")]
    # two steps of the first attempt, one of the second, each once, although the first
    # attempt's record was written again (flaky)
    assert len(step_lines) == 3
    assert len([line for line in lines if "job_id=1101," in line and "flaky" in line]) == 1
    assert sum(1 for line in step_lines if "step=Run\\ tests" in line) == 1


def test_the_config_files_gather_choices_shape_serves_records(tmp_path: Path) -> None:
    """serve writes the points the file's gathers write: here `lean_tags` and `steps`."""
    (tmp_path / "multivac.toml").write_text("[gather]\nlean_tags = true\nsteps = true\n")
    out = tmp_path / "out.lp"
    env = base_env(MULTIVAC_STATE_DIR=str(tmp_path / "state"))
    now = datetime.now(UTC).replace(microsecond=0)
    step = {
        "name": "Set up job",
        "status": "completed",
        "conclusion": "success",
        "number": 1,
        "started_at": (now - timedelta(seconds=50)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "completed_at": (now - timedelta(seconds=40)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    with serving(["-o", str(out), "--no-logs"], env, tmp_path) as serve:
        assert serve.post("workflow_job", completed_job(1201, steps=[step])).status_code == 202
        wait_until(lambda: len([x for x in lp_lines(out) if not x.startswith("queue,")]) == 2)
    job, steps = sorted(x for x in lp_lines(out) if not x.startswith("queue,"))[::-1]
    assert job.startswith("successful_jobs,") and "job_id=1201i" in job  # a field
    assert ",job_id=" not in job.split(" ")[0]
    assert steps.startswith("steps,")


def test_the_test_results_of_a_failed_jobs_log_are_written(
    ghserver: FakeGitHub, tmp_path: Path
) -> None:
    """The log serve reads to classify a job gives its test results too, as in a gather
    (else a run serve took would never have them: a gather takes it from the store)."""
    repo = ghserver.add_repo("octo/tests")
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    run = repo.add_run(created_at=created, conclusion="failure")
    lines = ["FAILED tests/test_auth.py::test_logout - AssertionError: session still open"]
    steps = [("Set up job", "success"), ("Run pytest", "failure", lines)]
    job = run.add_job(
        "test",
        conclusion="failure",
        created_at=created,
        started_at=created + timedelta(seconds=5),
        completed_at=created + timedelta(seconds=65),
        steps=[(s[0], s[1]) for s in steps],
        log=make_log(created + timedelta(seconds=5), steps),
    )
    out = tmp_path / "out.lp"
    env = base_env(
        GITHUB_API_URL=ghserver.url, GITHUB_TOKEN=TOKEN, MULTIVAC_STATE_DIR=str(tmp_path / "s")
    )
    with serving(["-o", str(out)], env, tmp_path) as serve:
        assert serve.post("workflow_job", job_event(ghserver, job, "completed")).status_code == 202
        wait_until(lambda: any(line.startswith("tests,") for line in lp_lines(out)), timeout=30)
    (test_line,) = [line for line in lp_lines(out) if line.startswith("tests,")]
    assert "test_logout" in test_line and "status=failed" in test_line
    assert any(line.startswith("test_failure,") for line in lp_lines(out))
