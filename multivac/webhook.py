"""Where alerts go: a Slack-compatible incoming webhook, and GitHub's step summary.

The webhook URL is a secret (whoever has it can post to the channel), so it never
appears in an error, a log line or a file: messages name only its host, and text the
server sends back has the URL's path cut out before it is shown.

A post is one JSON body `{"text": …}` (Slack's incoming webhooks, and the
Slack-compatible endpoints of Mattermost, Rocket.Chat, Discord's `/slack` and others).
It is retried under the one retry policy (`multivac.retry`, capped exponential backoff
with jitter, bounded by time): on connection errors and timeouts, on 5xx and 408, and
on 429 after the server's `Retry-After` (seconds or an HTTP date). Any other answer is
final. Every request has its own timeout, never longer
than what is left of the budget. Redirects are not followed: a webhook does not
redirect, and following one would send the message to another host.

The step summary: "Job summaries support GitHub flavored Markdown, and you can add your
Markdown content for a step to the GITHUB_STEP_SUMMARY environment file", written as
`echo "{markdown content}" >> $GITHUB_STEP_SUMMARY`, that is appended; "each step is
restricted to a maximum size of 1MiB" (GitHub Docs, Workflow commands for GitHub
Actions, "Adding a job summary",
https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-commands#adding-a-job-summary).
Past that limit GitHub drops the whole summary of the step, so the text is cut to fit.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from urllib.parse import urlsplit

from multivac.errors import MultivacError, os_reason
from multivac.model import clean
from multivac.retry import Outage, OutageStop, RetryPolicy

SUMMARY_LIMIT = 1024 * 1024  # bytes per step, GitHub's cap
MESSAGE_LIMIT = 35_000  # characters: Slack truncates message text past 40,000
RETRY_STATUSES = frozenset({408, 429})
USER_AGENT = "multivac-alerts"
_BODY_LIMIT = 1 << 16  # bytes of an error answer read, to show a piece of it


class NotifyError(MultivacError):
    """An alert could not be delivered (webhook or step summary); the text never holds
    the webhook URL."""


@dataclass(frozen=True)
class Delivery:
    """How a post went: the final HTTP status and how many requests it took."""

    status: int
    attempts: int


def webhook_host(url: str) -> str:
    """The part of a webhook URL that may be shown: its host (and port)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "an invalid URL"
    if not host:
        return "an invalid URL"
    return f"{host}:{port}" if port else host


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a 3xx comes back as an HTTPError, not as a request to elsewhere


_OPENER = urllib.request.build_opener(_NoRedirect())


def _retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now())


def _shown(body: bytes, url: str) -> str:
    """A short, single-line piece of the server's answer, with no part of the URL."""
    text = body.decode("utf-8", "replace")
    if len(body) >= _BODY_LIMIT:
        text = text[: -len(url) - 1]  # the cut may have split a secret: drop what is near it
    parts = urlsplit(url)
    secrets = [url, parts.path, parts.query, parts.username or "", parts.password or ""]
    # token-like path segments too, in case the server echoes one alone
    secrets += [segment for segment in parts.path.split("/") if len(segment) >= 6]
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) > 1:
            text = text.replace(secret, "…")
    return clean(text, 200)  # cut only once nothing secret is left to cut in half


def post_message(
    url: str,
    text: str,
    *,
    policy: RetryPolicy | None = None,
    timeout_s: float = 10.0,
    budget_s: float = 60.0,
    backoff_s: float = 1.0,
    max_backoff_s: float = 16.0,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Delivery:
    """Post `text` (Markdown) to a Slack-compatible incoming webhook.

    Retries under the one retry policy (multivac.retry): `policy`, or one made of
    `budget_s` (the time budget), `backoff_s` (first backoff), `max_backoff_s` (longest)
    and `timeout_s` (each request). Raises NotifyError naming only the webhook's host.
    """
    if policy is None:
        policy = RetryPolicy(
            max_wait_s=budget_s, base_s=backoff_s, cap_s=max_backoff_s, timeout_s=timeout_s
        )
    host = webhook_host(url)
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        scheme = ""
    if scheme not in ("http", "https") or host == "an invalid URL":
        raise NotifyError("the alert webhook URL is not an http(s) URL.")
    if len(text) > MESSAGE_LIMIT:
        text = text[: MESSAGE_LIMIT - 40].rstrip() + "\n… (cut: the message was too long)"
    body = json.dumps({"text": text}).encode("utf-8")
    # the budget bounds each request's timeout too, so it runs from the first try
    outage = Outage(f"the alert webhook at {host}", policy, clock=clock, sleep=sleep)
    deadline = clock() + policy.max_wait_s
    attempts = 0
    while True:
        attempts += 1
        timeout = max(0.001, min(policy.timeout_s, deadline - clock()))
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
        )
        wait: float | None = None
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                response.read()
                outage.succeeded()
                return Delivery(status=int(response.status), attempts=attempts)
        except urllib.error.HTTPError as exc:
            detail = _shown(exc.read(_BODY_LIMIT) if exc.fp is not None else b"", url)
            answer = f"answered HTTP {exc.code}" + (f" ({detail})" if detail else "")
            if exc.code not in RETRY_STATUSES and exc.code < 500:
                raise NotifyError(f"the alert webhook at {host} {answer}.") from None
            last = answer
            if exc.code == 429:
                wait = _retry_after(exc.headers.get("Retry-After"))
        except TimeoutError:
            last = f"did not answer within {timeout:.2g} s"
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                last = f"did not answer within {timeout:.2g} s"
            else:
                last = f"could not be reached ({_reason(exc.reason)})"
        except (OSError, http.client.HTTPException) as exc:
            last = f"could not be reached ({_reason(exc)})"
        left = deadline - clock()
        if wait is not None:
            # a wait the server asked for is waited in full, or not at all
            if wait >= left:
                last += f" and asked to wait {wait:g} s, longer than the time left"
                break
            outage.pause(wait, retry=True)
            continue
        if left <= 0:
            break
        try:
            outage.failed(attempts, "a post", last)
        except OutageStop:
            break
        if deadline - clock() <= 0:
            break  # the budget is spent: a request now would have no time to answer
    plural = "s" if attempts != 1 else ""
    raise NotifyError(
        f"the alert webhook at {host} {last}; gave up after {attempts} attempt{plural} "
        f"in {policy.max_wait_s:g} s."
    )


def _reason(exc: object) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    if isinstance(exc, BaseException):
        return type(exc).__name__
    return clean(str(exc), 80)


def write_step_summary(
    markdown: str, *, environ: Mapping[str, str] | None = None, limit: int = SUMMARY_LIMIT
) -> Path | None:
    """Append Markdown to `$GITHUB_STEP_SUMMARY`; the file's path, or None outside Actions.

    The step's file may already hold other summaries (earlier `>>` in the same step);
    what is added is cut so that the file stays within GitHub's limit.
    """
    env = os.environ if environ is None else environ
    target = env.get("GITHUB_STEP_SUMMARY", "").strip()
    if not target:
        return None
    path = Path(target)
    text = markdown if markdown.endswith("\n") else markdown + "\n"
    try:
        used = path.stat().st_size if path.exists() else 0
        room = limit - used
        data = text.encode("utf-8")
        if len(data) > room:
            note = b"\n\n*(summary cut: GitHub keeps at most 1 MiB per step)*\n"
            keep = max(0, room - len(note))
            data = data[:keep].decode("utf-8", "ignore").encode("utf-8") + note
            if len(data) > room:
                data = b""  # not even the note fits: adding anything would lose it all
        with open(path, "ab") as handle:
            handle.write(data)
    except OSError as exc:
        raise NotifyError(f"cannot write the step summary {path}: {os_reason(exc)}.") from None
    return path
