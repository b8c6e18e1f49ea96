"""`multivac serve` as the tests run it: a real subprocess on a free port, and webhook
deliveries shaped like GitHub's, signed with the secret, built from the local GitHub
test server's own objects (a webhook's `workflow_job` and `workflow_run` are the REST
API's job and run objects).

Delivery shapes (GitHub Docs, "Webhook events and payloads" and "Validating webhook
deliveries"): a POST with `Content-Type: application/json`, `X-GitHub-Event`,
`X-GitHub-Delivery` (a GUID), `X-GitHub-Hook-ID` and `X-Hub-Signature-256:
sha256=<HMAC-SHA256 of the body>`; the body has `action`, the job or run object,
`repository` and `sender`. A job is delivered `queued` (no runner, no start),
`in_progress` (started, runner named) and `completed` (with its conclusion and steps).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from multivac.config import Secret
from multivac.serve import sign
from tests.ghserver import FakeGitHub, Job, Run

SECRET = "whsec-test-0123456789abcdef-SECRET"
HOOK_ID = "421337"
_LISTENING = re.compile(r"listening on (http://\S+?:\d+)")


def wait_until(check: Callable[[], Any], timeout: float = 20.0, step: float = 0.05) -> Any:
    """The first truthy value of `check()`; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {check}")
        time.sleep(step)


def signed_headers(
    event: str, body: bytes, *, delivery: str | None = None, secret: str | None = SECRET
) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/test",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": HOOK_ID,
    }
    if secret is not None:
        headers["X-Hub-Signature-256"] = sign(Secret(secret), body)
    return headers


class Serve:
    """`python -m multivac serve --port 0 ARGS` with ENV, stopped at the end of a test."""

    def __init__(self, args: list[str], env: Mapping[str, str], cwd: Path) -> None:
        self.args = args
        self.env = dict(env)
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.stderr_lines: list[str] = []
        self.stdout_path = cwd / f"serve-stdout-{uuid.uuid4().hex[:8]}.txt"
        self.session = requests.Session()
        self.responses: list[requests.Response] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 30.0) -> Serve:
        self.stderr_lines = []
        self._stdout = open(self.stdout_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "multivac", "serve", "--port", "0", *self.args],
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=subprocess.PIPE,
        )
        found = threading.Event()

        def read() -> None:
            assert self.proc is not None and self.proc.stderr is not None
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.stderr_lines.append(line)
                match = _LISTENING.search(line)
                if match:
                    self.url = match.group(1)
                    found.set()
            found.set()

        threading.Thread(target=read, daemon=True).start()
        found.wait(timeout)
        if not self.url:
            self.stop()
            raise AssertionError("serve did not start:\n" + self.stderr)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Signal the server and wait for it; returns its exit code."""
        proc = self.proc
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        self.proc = None
        self._stdout.close()
        self.session.close()
        self.url = ""
        time.sleep(0.05)  # the stderr reader drains the pipe
        return code

    def restart(self) -> Serve:
        assert self.stop() == 0, self.stderr
        return self.start()

    @property
    def stderr(self) -> str:
        return "\n".join(self.stderr_lines)

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text("utf-8") if self.stdout_path.exists() else ""

    # ------------------------------------------------------------------ requests

    def post(
        self,
        event: str,
        payload: Mapping[str, Any] | None = None,
        *,
        body: bytes | None = None,
        delivery: str | None = None,
        secret: str | None = SECRET,
        headers: Mapping[str, str | None] | None = None,
    ) -> requests.Response:
        import json

        data = body if body is not None else json.dumps(payload).encode()
        sent = signed_headers(event, data, delivery=delivery, secret=secret)
        for name, value in (headers or {}).items():
            sent.pop(name, None)
            if value is not None:
                sent[name] = value
        response = self.session.post(f"{self.url}/webhook", data=data, headers=sent, timeout=30)
        self.responses.append(response)
        return response

    def metrics_text(self) -> str:
        return self.session.get(f"{self.url}/metrics", timeout=10).text

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of GET /metrics by (name, sorted labels)."""
        text = self.metrics_text()
        out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return out

    def gauge(self, name: str, **labels: str) -> float:
        return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)

    def healthz(self) -> requests.Response:
        return self.session.get(f"{self.url}/healthz", timeout=30)


@contextlib.contextmanager
def serving(args: list[str], env: Mapping[str, str], cwd: Path) -> Iterator[Serve]:
    server = Serve(args, env, cwd).start()
    try:
        yield server
    finally:
        if server.proc is not None:
            server.stop()


_KEPT = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV", "SYSTEMROOT")


def base_env(**extra: str) -> dict[str, str]:
    """A small environment for the server: the system's basics, quick retries, the
    secret, and `extra` (nothing of the test process's own settings leaks in)."""
    env = {k: os.environ[k] for k in _KEPT if k in os.environ}
    env.update(
        MULTIVAC_WEBHOOK_SECRET=SECRET,
        MULTIVAC_RETRY_BASE="0.01",
        MULTIVAC_SECONDARY_WAIT="0.05",
        MULTIVAC_INFLUX_WAIT="1s",
    )
    env.update(extra)
    return env


# ---------------------------------------------------------------------------- payloads


def job_event(server: FakeGitHub, job: Job, action: str) -> dict[str, Any]:
    """The `workflow_job` delivery of `job` at `action` (queued, in_progress or
    completed): the job object as the REST API shows it at that stage."""
    data = job.payload(server.url)
    if action == "queued":
        data.update(
            status="queued",
            conclusion=None,
            started_at=data["created_at"],  # GitHub fills it in before a runner starts
            completed_at=None,
            runner_id=None,
            runner_name=None,
            runner_group_id=None,
            runner_group_name=None,
            steps=[],
        )
    elif action == "in_progress":
        data.update(status="in_progress", conclusion=None, completed_at=None, steps=[])
    repo = job.run.repo
    return {
        "action": action,
        "workflow_job": data,
        "repository": repo.payload(server.url),
        "sender": {"login": "octocat", "id": 1, "type": "User"},
    }


def run_event(server: FakeGitHub, run: Run, action: str = "completed") -> dict[str, Any]:
    """The `workflow_run` delivery of `run`."""
    return {
        "action": action,
        "workflow_run": run.payload(server.url),
        "workflow": run.workflow.payload(server.url),
        "repository": run.repo.payload(server.url),
        "sender": {"login": "octocat", "id": 1, "type": "User"},
    }


def deliver_job(serve: Serve, server: FakeGitHub, job: Job) -> None:
    """queued, in_progress, completed: each answered 202."""
    for action in ("queued", "in_progress", "completed"):
        response = serve.post("workflow_job", job_event(server, job, action))
        assert response.status_code == 202, (action, response.status_code, response.text)
