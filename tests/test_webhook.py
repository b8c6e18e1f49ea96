"""The alert webhook poster against a real local HTTP server, failures included, and the
GitHub step summary writer."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from multivac.webhook import (
    MESSAGE_LIMIT,
    NotifyError,
    post_message,
    webhook_host,
    write_step_summary,
)

SECRET = "XyZsecretTOKEN1234567890abcdef"


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Hook:
    """A Slack-compatible webhook that answers from a script, one reply per request (the
    last reply repeats)."""

    def __init__(self) -> None:
        self.replies: list[Reply] = [Reply()]
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with hook.lock:
                    hook.seen.append(Seen("POST", self.path, dict(self.headers), body))
                    reply = hook.replies.pop(0) if len(hook.replies) > 1 else hook.replies[0]
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # the client gave up waiting

            def do_GET(self) -> None:
                with hook.lock:
                    hook.seen.append(Seen("GET", self.path, dict(self.headers), b""))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        return f"{self.base}/services/T0001/B0002/{SECRET}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def script(self, *replies: Reply) -> None:
        self.replies = list(replies)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.close()


class FakeTime:
    """A clock that moves only when the poster sleeps, so budgets are exact in tests."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def post(url: str, fake: FakeTime | None = None, **options: float) -> object:
    fake = fake or FakeTime()
    return post_message(
        url, "**alert**: test_failure share doubled", sleep=fake.sleep, clock=fake.clock, **options
    )


def no_secret(error: BaseException) -> None:
    for text in (str(error), repr(error)):
        assert SECRET not in text and "T0001" not in text and "/services" not in text


# ---------------------------------------------------------------------------- posting


def test_a_message_is_posted_as_slack_json(hook: Hook) -> None:
    delivery = post(hook.url)
    assert delivery == type(delivery)(status=200, attempts=1)
    [request] = hook.seen
    assert request.method == "POST"
    assert request.path == f"/services/T0001/B0002/{SECRET}"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {"text": "**alert**: test_failure share doubled"}


def test_a_server_error_then_success_is_retried_after_a_backoff(hook: Hook) -> None:
    hook.script(Reply(500, b"oops"), Reply(503), Reply(200))
    fake = FakeTime()
    delivery = post(hook.url, fake, backoff_s=1.0)
    assert delivery.attempts == 3 and delivery.status == 200
    assert len(hook.seen) == 3
    assert len(fake.slept) == 2
    assert 0.5 <= fake.slept[0] <= 1.0 and 1.0 <= fake.slept[1] <= 2.0  # doubling, jittered


def test_a_persistent_server_error_gives_up_within_the_budget(hook: Hook) -> None:
    hook.script(Reply(500, b"internal error"))
    fake = FakeTime()
    with pytest.raises(NotifyError) as caught:
        post(hook.url, fake, budget_s=30.0, backoff_s=1.0, max_backoff_s=8.0)
    message = str(caught.value)
    assert message.startswith(f"the alert webhook at {hook.host} answered HTTP 500")
    assert "(internal error)" in message and "gave up after" in message
    assert len(hook.seen) >= 4  # 1 + 2 + 4 + 8 > 30 at the longest jitter
    assert sum(fake.slept) <= 30.0 + 1e-6  # the retry policy never sleeps past the budget
    assert max(fake.slept) <= 8.0
    assert f"after {len(hook.seen)} attempts in 30 s" in message
    no_secret(caught.value)


def test_429_waits_as_long_as_retry_after_says(hook: Hook) -> None:
    hook.script(Reply(429, b"rate_limited", {"Retry-After": "7"}), Reply(200))
    fake = FakeTime()
    delivery = post(hook.url, fake)
    assert delivery.attempts == 2
    assert fake.slept == [7.0]


def test_429_with_an_http_date_waits_until_that_date(hook: Hook) -> None:
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=20)
    hook.script(Reply(429, headers={"Retry-After": format_datetime(when, usegmt=True)}), Reply())
    fake = FakeTime()
    post(hook.url, fake)
    assert len(fake.slept) == 1 and 15.0 <= fake.slept[0] <= 20.0


def test_429_without_retry_after_backs_off(hook: Hook) -> None:
    hook.script(Reply(429), Reply())
    fake = FakeTime()
    post(hook.url, fake, backoff_s=2.0)
    assert len(fake.slept) == 1 and 1.0 <= fake.slept[0] <= 2.0


def test_429_asking_for_longer_than_the_budget_gives_up_at_once(hook: Hook) -> None:
    hook.script(Reply(429, headers={"Retry-After": "600"}))
    fake = FakeTime()
    with pytest.raises(NotifyError, match="asked to wait 600 s, longer than the time left"):
        post(hook.url, fake, budget_s=60.0)
    assert fake.slept == [] and len(hook.seen) == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [(404, b"no_service"), (400, b"invalid_payload"), (403, b"action_prohibited"), (410, b"")],
)
def test_a_client_error_is_final_and_names_only_the_host(
    hook: Hook, status: int, body: bytes
) -> None:
    hook.script(Reply(status, body))
    fake = FakeTime()
    with pytest.raises(NotifyError) as caught:
        post(hook.url, fake)
    assert len(hook.seen) == 1 and fake.slept == []
    expected = f"the alert webhook at {hook.host} answered HTTP {status}"
    assert str(caught.value) == expected + (f" ({body.decode()})." if body else ".")
    no_secret(caught.value)


def test_an_answer_that_echoes_the_url_is_shown_without_it(hook: Hook) -> None:
    echo = f"unknown hook {hook.url} (path /services/T0001/B0002/{SECRET}, token {SECRET})"
    hook.script(Reply(404, echo.encode() * 3))
    with pytest.raises(NotifyError) as caught:
        post(hook.url)
    assert "unknown hook …" in str(caught.value)
    no_secret(caught.value)


def test_a_long_answer_is_cut_without_leaving_half_a_secret(hook: Hook) -> None:
    hook.script(Reply(404, b"\n" * 65_530 + hook.url.encode()))
    with pytest.raises(NotifyError) as caught:
        post(hook.url)
    no_secret(caught.value)
    assert SECRET[:6] not in str(caught.value)


def test_a_redirect_is_not_followed(hook: Hook) -> None:
    hook.script(Reply(302, headers={"Location": f"{hook.base}/elsewhere"}))
    with pytest.raises(NotifyError, match="answered HTTP 302"):
        post(hook.url)
    assert [s.path for s in hook.seen] == [f"/services/T0001/B0002/{SECRET}"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_refused_connection_is_retried_then_reported_by_host() -> None:
    port = free_port()
    fake = FakeTime()
    url = f"http://127.0.0.1:{port}/services/T0001/B0002/{SECRET}"
    with pytest.raises(NotifyError) as caught:
        post(url, fake, budget_s=10.0, backoff_s=1.0)
    message = str(caught.value)
    assert message.startswith(f"the alert webhook at 127.0.0.1:{port} could not be reached")
    assert "connection refused" in message
    assert len(fake.slept) >= 2
    no_secret(caught.value)


def test_a_server_slower_than_the_timeout_is_retried_then_reported(hook: Hook) -> None:
    hook.script(Reply(200, delay=2.0))
    with pytest.raises(NotifyError) as caught:
        post_message(hook.url, "slow", timeout_s=0.2, budget_s=0.7, backoff_s=0.05)
    assert re.search(r"did not answer within 0\.[12]\d* s", str(caught.value))
    assert len(hook.seen) >= 2
    no_secret(caught.value)


def test_a_slow_answer_then_a_quick_one_is_delivered(hook: Hook) -> None:
    hook.script(Reply(200, delay=2.0), Reply(200))
    delivery = post_message(hook.url, "x", timeout_s=0.3, budget_s=5.0, backoff_s=0.05)
    assert delivery.attempts == 2


def test_each_request_waits_no_longer_than_the_budget_left(hook: Hook) -> None:
    hook.script(Reply(200, delay=3.0))
    with pytest.raises(NotifyError) as caught:
        post_message(hook.url, "x", timeout_s=30.0, budget_s=0.4, backoff_s=0.05)
    assert re.search(r"did not answer within 0\.[34]\d* s", str(caught.value))


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        f"ftp://hooks.example/{SECRET}",
        f"hooks.example/{SECRET}",
        "http://",
        f"http://[::1/{SECRET}",
        "",
    ],
)
def test_a_url_that_is_not_http_is_refused_without_being_shown(url: str) -> None:
    with pytest.raises(NotifyError, match=r"^the alert webhook URL is not an http\(s\) URL\.$"):
        post(url)


def test_an_overlong_message_is_cut_to_what_slack_shows(hook: Hook) -> None:
    post_message(hook.url, "x" * (MESSAGE_LIMIT * 2), sleep=FakeTime().sleep)
    text = json.loads(hook.seen[0].body)["text"]
    assert len(text) <= MESSAGE_LIMIT and text.endswith("(cut: the message was too long)")


@pytest.mark.parametrize(
    ("url", "host"),
    [
        (f"https://hooks.slack.com/services/T1/B2/{SECRET}", "hooks.slack.com"),
        (f"https://user:{SECRET}@chat.example:8443/hooks/x", "chat.example:8443"),
        (f"http://127.0.0.1:9/{SECRET}?token={SECRET}", "127.0.0.1:9"),
        ("not a url", "an invalid URL"),
        ("http://[::1/x", "an invalid URL"),
    ],
)
def test_only_the_host_of_a_webhook_is_ever_shown(url: str, host: str) -> None:
    assert webhook_host(url) == host


# ---------------------------------------------------------------------------- step summary


def test_outside_github_actions_no_summary_is_written(tmp_path: Path) -> None:
    assert write_step_summary("# hi", environ={}) is None
    assert write_step_summary("# hi", environ={"GITHUB_STEP_SUMMARY": "  "}) is None
    assert list(tmp_path.iterdir()) == []


def test_the_summary_is_appended_as_echo_gt_gt_does(tmp_path: Path) -> None:
    path = tmp_path / "step_summary_1"
    path.write_text("### Earlier step output\n", encoding="utf-8")
    env = {"GITHUB_STEP_SUMMARY": str(path)}
    assert write_step_summary("## multivac check\n\n| rule | state |", environ=env) == path
    write_step_summary("**2 alerts** 🚨\n", environ=env)
    assert path.read_text(encoding="utf-8") == (
        "### Earlier step output\n## multivac check\n\n| rule | state |\n**2 alerts** 🚨\n"
    )


def test_the_summary_file_is_created_when_missing(tmp_path: Path) -> None:
    path = tmp_path / "new"
    write_step_summary("x", environ={"GITHUB_STEP_SUMMARY": str(path)})
    assert path.read_text(encoding="utf-8") == "x\n"


@pytest.mark.parametrize("used", [0, 300, 480, 500])
def test_the_summary_is_cut_to_stay_within_githubs_limit(tmp_path: Path, used: int) -> None:
    path = tmp_path / "summary"
    path.write_bytes(b"a" * used)
    write_step_summary("é" * 1000, environ={"GITHUB_STEP_SUMMARY": str(path)}, limit=500)
    data = path.read_bytes()
    assert len(data) <= 500
    data.decode("utf-8")  # never half a character
    if 500 - used >= 100:
        assert data.endswith(b"GitHub keeps at most 1 MiB per step)*\n")


def test_an_unwritable_summary_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(NotifyError, match="cannot write the step summary"):
        write_step_summary("x", environ={"GITHUB_STEP_SUMMARY": str(tmp_path)})


def test_the_summary_reads_the_real_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(path))
    assert write_step_summary("from env") == path
    assert path.read_text(encoding="utf-8") == "from env\n"
