"""`multivac serve` against real GitHub deliveries (tests/fixtures/webhooks/, see its
README), posted signed over HTTP with GitHub's delivery headers, rather than payloads
built from our GitHub stand-in."""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from multivac.config import Secret
from multivac.github import job_from_json
from multivac.model import Run, build_record, format_time_ns
from multivac.serve import sign
from tests.serving import SECRET, Serve, base_env, serving, wait_until

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"


def real(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return loaded


def event_of(name: str) -> str:
    return "workflow_run" if "workflow_run." in name else "workflow_job"


def github_headers(event: str, body: bytes, payload: dict[str, Any], media: str) -> dict[str, str]:
    """The headers GitHub sends with a delivery (GitHub Docs, "Webhook events and
    payloads", Delivery headers)."""
    organisation = "organization" in payload and "installation" not in payload
    return {
        "Content-Type": media,
        "User-Agent": "GitHub-Hookshot/8e03811",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "292430182",
        "X-GitHub-Hook-Installation-Target-ID": "79929171",
        "X-GitHub-Hook-Installation-Target-Type": "organization" if organisation else "repository",
        "X-Hub-Signature-256": sign(Secret(SECRET), body),
    }


def deliver(
    serve: Serve, name: str, payload: dict[str, Any] | None = None, *, form: bool = False
) -> requests.Response:
    """POST a real delivery as GitHub does: JSON, or `payload=<JSON>` form-encoded."""
    event = event_of(name)
    payload = payload if payload is not None else real(name)
    text = json.dumps(payload)
    if form:
        body = urllib.parse.urlencode({"payload": text}).encode()
        media = "application/x-www-form-urlencoded"
    else:
        body, media = text.encode(), "application/json"
    headers = github_headers(event, body, payload, media)
    return serve.session.post(f"{serve.url}/webhook", data=body, headers=headers, timeout=30)


def records(serve: Serve) -> list[dict[str, Any]]:
    """The rows written so far (`--format json` writes one row a line inside `[`, `]`)."""
    out = Path(serve.args[serve.args.index("-o") + 1])
    text = out.read_text() if out.exists() else ""
    rows = (line.strip().rstrip(",") for line in text.splitlines())
    return [json.loads(row) for row in rows if row not in ("", "[", "]")]


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Serve]:
    """A server of its own (live state starts empty), JSON lines to a file, no logs
    read: a failed job is written at once as `unknown_failure`."""
    env = base_env(MULTIVAC_STATE_DIR=str(tmp_path / "state"), GITHUB_API_URL="http://127.0.0.1:9")
    args = ["--format", "json", "-o", str(tmp_path / "out.jsonl"), "--no-logs"]
    with serving(args, env, tmp_path) as serve:
        yield serve


ANSWERS = {
    "workflow_job.queued": (202, "accepted"),
    "workflow_job.queued.with-deployment": (202, "accepted"),
    "workflow_job.waiting": (202, "accepted"),
    "workflow_job.in_progress": (202, "accepted"),
    "workflow_job.in_progress.with-queued-steps": (202, "accepted"),
    "workflow_job.completed.success.with-organization": (202, "accepted"),
    "workflow_job.completed.failure.with-organization": (202, "accepted"),
    "workflow_run.requested": (202, "ignored"),
    "workflow_run.requested.with-conclusion": (202, "ignored"),
    "workflow_run.completed": (202, "accepted"),
    "workflow_run.completed.with-pull-requests": (202, "accepted"),
    "ghes-3.3.workflow_job.in_progress": (202, "accepted"),
    "ghes-3.3.workflow_run.completed": (202, "accepted"),
}


def test_every_fixture_is_answered() -> None:
    assert sorted(ANSWERS) == sorted(path.stem for path in FIXTURES.glob("*.json"))


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """One server for the answers (they do not depend on what came before)."""
    home = tmp_path_factory.mktemp("serve-real")
    env = base_env(MULTIVAC_STATE_DIR=str(home / "state"), GITHUB_API_URL="http://127.0.0.1:9")
    args = ["--format", "json", "-o", str(home / "out.jsonl"), "--no-logs"]
    with serving(args, env, home) as serve:
        yield serve


@pytest.mark.parametrize("name", list(ANSWERS))
def test_a_real_delivery_is_answered(shared: Serve, name: str) -> None:
    status, key = ANSWERS[name]
    counter = "multivac_deliveries_accepted_total" if key == "accepted" else None
    before = shared.gauge(counter, event=event_of(name)) if counter else 0.0
    response = deliver(shared, name)
    assert response.status_code == status, response.text
    assert key in response.json()
    if counter:
        assert shared.gauge(counter, event=event_of(name)) == before + 1


@pytest.mark.parametrize("name", ["workflow_job.queued", "workflow_run.completed"])
def test_a_form_encoded_delivery_is_refused_and_changes_nothing(fresh: Serve, name: str) -> None:
    """GitHub's `form` content type (`payload=<JSON>`), signed correctly: 415, as for any
    content type but JSON; nothing is stored or counted."""
    response = deliver(fresh, name, form=True)
    assert response.status_code == 415, response.text
    assert fresh.gauge("multivac_deliveries_rejected_total", reason="content_type") == 1
    assert fresh.gauge("multivac_deliveries_accepted_total", event=event_of(name)) == 0
    assert records(fresh) == []


def test_real_job_deliveries_move_the_live_state(fresh: Serve) -> None:
    label = "ubuntu-latest"
    assert deliver(fresh, "workflow_job.queued").status_code == 202
    assert fresh.gauge("multivac_jobs_queued", runner_label=label) == 1
    assert fresh.gauge("multivac_jobs_running", runner_label=label) == 0
    assert deliver(fresh, "workflow_job.in_progress").status_code == 202  # the same job id
    assert fresh.gauge("multivac_jobs_queued", runner_label=label) == 0
    assert fresh.gauge("multivac_jobs_running", runner_label=label) == 1
    assert deliver(fresh, "workflow_job.completed.success.with-organization").status_code == 202
    assert fresh.gauge("multivac_jobs_running", runner_label=label) == 0
    # another job, started with steps still queued
    assert deliver(fresh, "workflow_job.in_progress.with-queued-steps").status_code == 202
    assert fresh.gauge("multivac_jobs_running", runner_label=label) == 1


def test_a_job_waiting_for_an_approval_is_not_queued_for_a_runner(fresh: Serve) -> None:
    """GitHub sends `queued` (status `waiting`), `waiting` while an environment's
    reviewers decide, then `queued` again once approved: only then does the job wait
    for a runner (labels self-hosted,k8s; no runner, no steps yet)."""
    label = "self-hosted,k8s"
    assert deliver(fresh, "workflow_job.queued.with-deployment").status_code == 202
    assert fresh.gauge("multivac_jobs_queued", runner_label=label) == 0
    assert deliver(fresh, "workflow_job.waiting").status_code == 202
    assert fresh.gauge("multivac_jobs_queued", runner_label=label) == 0
    approved = real("workflow_job.queued.with-deployment")
    approved["workflow_job"]["status"] = "queued"
    assert deliver(fresh, "workflow_job.queued", approved).status_code == 202
    assert fresh.gauge("multivac_jobs_queued", runner_label=label) == 1
    # it waits for a runner since it was approved, not since it was created (2023)
    assert fresh.gauge("multivac_oldest_queued_seconds", runner_label=label) < 60


def test_a_queued_job_then_waiting_leaves_the_queue(fresh: Serve) -> None:
    label = "self-hosted,k8s"
    queued = real("workflow_job.queued.with-deployment")
    queued["workflow_job"]["status"] = "queued"
    assert deliver(fresh, "workflow_job.queued", queued).status_code == 202
    assert fresh.gauge("multivac_jobs_queued", runner_label=label) == 1
    assert deliver(fresh, "workflow_job.waiting").status_code == 202
    assert fresh.gauge("multivac_jobs_queued", runner_label=label) == 0
    started = real("workflow_job.waiting")
    started["action"] = "in_progress"
    started["workflow_job"].update(status="in_progress", runner_name="k8s-runner-1")
    assert deliver(fresh, "workflow_job.in_progress", started).status_code == 202
    assert fresh.gauge("multivac_jobs_running", runner_label=label) == 1


def test_a_job_without_labels_is_counted_under_an_empty_label(fresh: Serve) -> None:
    payload = real("workflow_job.queued")
    payload["workflow_job"].update(labels=[], runner_name=None, runner_id=None, steps=[])
    assert deliver(fresh, "workflow_job.queued", payload).status_code == 202
    assert fresh.gauge("multivac_jobs_queued", runner_label="") == 1


def test_a_ghes_job_without_created_at_is_queued_since_its_delivery(fresh: Serve) -> None:
    """GitHub Enterprise Server 3.3 sends no `created_at`: the job counts from when it
    was delivered, not from 1970."""
    payload = real("ghes-3.3.workflow_job.in_progress")
    payload["action"] = "queued"
    payload["workflow_job"].update(status="queued", started_at=None)
    label = "gpu,db-app,dc-03"
    assert deliver(fresh, "workflow_job.queued", payload).status_code == 202
    assert fresh.gauge("multivac_jobs_queued", runner_label=label) == 1
    assert fresh.gauge("multivac_oldest_queued_seconds", runner_label=label) < 60


def gather_run(payload: dict[str, Any]) -> Run:
    """The run a gather would pair with the job: the job's own run fields."""
    job = job_from_json(payload["workflow_job"])
    return Run(
        id=job.run_id,
        repository=payload["repository"]["full_name"],
        workflow=job.workflow,
        workflow_path="",
        run_attempt=job.run_attempt,
        branch=job.branch,
        commit_sha=job.commit_sha,
        event="",
        status="completed",
        conclusion=job.conclusion,
        created_at=job.created_at,
        updated_at=None,
        html_url="",
    )


def completed_ghes_job() -> dict[str, Any]:
    """The GHES 3.3 job completed: no created_at, run_attempt, workflow_name or
    head_branch, as that version sends it."""
    payload = real("ghes-3.3.workflow_job.in_progress")
    payload["action"] = "completed"
    payload["workflow_job"].update(
        status="completed", conclusion="success", completed_at="2021-06-15T19:25:07Z"
    )
    return payload


COMPLETED = {
    "success": lambda: real("workflow_job.completed.success.with-organization"),
    "failure": lambda: real("workflow_job.completed.failure.with-organization"),
    "ghes-3.3": completed_ghes_job,
}


@pytest.mark.parametrize("case", list(COMPLETED))
def test_a_completed_job_is_the_record_a_gather_writes(fresh: Serve, case: str) -> None:
    payload = COMPLETED[case]()
    assert deliver(fresh, "workflow_job.completed", payload).status_code == 202
    (written,) = wait_until(lambda: records(fresh))
    job = job_from_json(payload["workflow_job"])
    expected = build_record(gather_run(payload), job, None)
    assert expected is not None
    assert written == json.loads(json.dumps(expected.row(False)))


def test_a_ghes_job_without_created_at_is_timed_by_its_start(fresh: Serve) -> None:
    assert deliver(fresh, "workflow_job.completed", completed_ghes_job()).status_code == 202
    (written,) = wait_until(lambda: records(fresh))
    started = datetime(2021, 6, 15, 19, 22, 27, tzinfo=UTC)
    assert written["time"] == format_time_ns(int(started.timestamp()) * 1_000_000_000)
    assert written["run_attempt"] == "1"
    assert written["queued_s"] is None
    assert written["in_progress_s"] == 160.0


@pytest.mark.parametrize("conclusion", [None, "stale", "startup_failure", "some_new_word"])
def test_a_run_completed_with_any_conclusion_is_taken(fresh: Serve, conclusion: str | None) -> None:
    payload = real("workflow_run.completed")
    payload["workflow_run"]["conclusion"] = conclusion
    response = deliver(fresh, "workflow_run.completed", payload)
    assert response.status_code == 202, response.text
    assert "accepted" in response.json()


@pytest.mark.parametrize("conclusion", [None, "some_new_word", "startup_failure"])
def test_a_job_completed_with_an_odd_conclusion_is_taken(
    fresh: Serve, conclusion: str | None
) -> None:
    payload = real("workflow_job.completed.success.with-organization")
    payload["workflow_job"]["conclusion"] = conclusion
    response = deliver(fresh, "workflow_job.completed", payload)
    assert response.status_code == 202, response.text
    health = fresh.healthz()
    assert health.status_code == 200, health.text


def test_a_run_in_progress_is_ignored(fresh: Serve) -> None:
    payload = real("workflow_run.requested")
    payload["action"] = "in_progress"
    payload["workflow_run"]["status"] = "in_progress"
    response = deliver(fresh, "workflow_run.in_progress", payload)
    assert response.status_code == 202
    assert "ignored" in response.json()


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("conclusion", [None, "some_new_word", "failure"])
def test_a_whole_run_with_any_conclusion_writes_its_runs_point(
    fresh: Serve, conclusion: str | None
) -> None:
    """A run serve saw from its start (created after serve listened): its `runs` point
    is written whatever the conclusion says (GHES 3.3 sent `completed` runs with none)."""
    time.sleep(1.1)  # GitHub's times are whole seconds: one after serve began listening
    now = datetime.now(UTC).replace(microsecond=0)
    run = real("workflow_run.completed")
    run["workflow_run"].update(
        conclusion=conclusion, created_at=stamp(now), updated_at=stamp(now), run_started_at=None
    )
    job = real("workflow_job.completed.success.with-organization")
    job["workflow_job"].update(
        run_id=run["workflow_run"]["id"],
        created_at=stamp(now),
        started_at=stamp(now),
        completed_at=stamp(now),
    )
    assert deliver(fresh, "workflow_job.completed", job).status_code == 202
    assert deliver(fresh, "workflow_run.completed", run).status_code == 202
    rows = wait_until(lambda: [r for r in records(fresh) if r["measurement"] == "runs"])
    # without GitHub's conclusion, the attempt's is its jobs' (one success here)
    assert [(row["conclusion"], row["jobs"]) for row in rows] == [(conclusion or "success", 1)]
