"""GitHub's JSON to model dataclasses, tolerant of nulls and missing keys."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from multivac.model import Job, Run, Step


def parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def integer(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _conclusion(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _login(value: Any) -> str:
    return text(value.get("login")) if isinstance(value, dict) else ""


def _pr_number(value: Any) -> int | None:
    """The number of the first pull request a run lists (GitHub lists none for a pull
    request from a fork)."""
    if not isinstance(value, list) or not value or not isinstance(value[0], dict):
        return None
    number = integer(value[0].get("number"), 0)
    return number if number > 0 else None


def run_from_json(repo: str, data: Mapping[str, Any]) -> Run:
    return Run(
        id=integer(data.get("id")),
        repository=repo,
        workflow=text(data.get("name")),
        workflow_path=text(data.get("path")),
        run_attempt=integer(data.get("run_attempt"), 1) or 1,
        branch=text(data.get("head_branch")),
        commit_sha=text(data.get("head_sha")),
        event=text(data.get("event")),
        status=text(data.get("status")),
        conclusion=_conclusion(data.get("conclusion")),
        created_at=parse_time(data.get("created_at")),
        updated_at=parse_time(data.get("updated_at")),
        html_url=text(data.get("html_url")),
        run_started_at=parse_time(data.get("run_started_at")),
        actor=_login(data.get("actor")),
        pr_number=_pr_number(data.get("pull_requests")),
    )


def job_from_json(data: Mapping[str, Any]) -> Job:
    steps = tuple(
        Step(
            number=integer(step.get("number")),
            name=text(step.get("name")),
            conclusion=_conclusion(step.get("conclusion")),
            started_at=parse_time(step.get("started_at")),
            completed_at=parse_time(step.get("completed_at")),
        )
        for step in (data.get("steps") or [])
        if isinstance(step, dict)
    )
    labels = data.get("labels")
    if not isinstance(labels, list):  # a bare string would become one label per letter
        labels = [labels] if isinstance(labels, str) else []
    return Job(
        id=integer(data.get("id")),
        run_id=integer(data.get("run_id")),
        run_attempt=integer(data.get("run_attempt"), 1) or 1,
        name=text(data.get("name")),
        status=text(data.get("status")),
        conclusion=_conclusion(data.get("conclusion")),
        created_at=parse_time(data.get("created_at")),
        started_at=parse_time(data.get("started_at")),
        completed_at=parse_time(data.get("completed_at")),
        labels=tuple(text(label) for label in labels if label),
        runner_name=text(data.get("runner_name")),
        html_url=text(data.get("html_url")),
        steps=steps,
        workflow=text(data.get("workflow_name")),
        branch=text(data.get("head_branch")),
        commit_sha=text(data.get("head_sha")),
        runner_group=text(data.get("runner_group_name")),
    )


_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?([a-z]+)"?')


def header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    """A response header by case-insensitive name."""
    if not headers:
        return None
    for key, value in headers.items():
        if str(key).lower() == name:
            return text(value)
    return None


def next_link(headers: Mapping[str, Any] | None) -> str | None:
    """The `rel="next"` URL of a `Link` header."""
    for url, rel in _LINK.findall(header(headers, "link") or ""):
        if rel == "next":
            return str(url)
    return None


def error_message(data: Any, fallback: str) -> str:
    """GitHub's `message` from an error body, else the fallback."""
    if isinstance(data, dict) and data.get("message"):
        return text(data["message"])
    return fallback
