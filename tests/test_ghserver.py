"""Tests of the fake GitHub server itself, driven by PyGithub and requests over HTTP."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from github import Auth, Github, GithubException, GithubRetry
from github.GithubException import (
    BadCredentialsException,
    RateLimitExceededException,
    UnknownObjectException,
)

from tests.ghserver import FakeGitHub, Repo, build_demo, make_log, parse_created

# tests of the test servers themselves: `pytest -m 'not testservers'` skips them
pytestmark = pytest.mark.testservers

T0 = datetime(2026, 10, 1, 12, 0, 0, tzinfo=UTC)


def gh_for(server: FakeGitHub, token: str | None = "t0ken", **kw: Any) -> Github:
    kw.setdefault("retry", None)
    return Github(
        auth=Auth.Token(token) if token else None,
        base_url=server.url,
        per_page=100,
        seconds_between_requests=None,
        **kw,
    )


@pytest.fixture
def srv() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        yield server


@pytest.fixture
def repo(srv: FakeGitHub) -> Repo:
    r = srv.add_repo("octo/demo", org="octo")
    r.add_workflow("CI", ".github/workflows/ci.yml")
    return r


def get(server: FakeGitHub, path: str, **params: Any) -> requests.Response:
    return requests.get(server.url + path, params=params, headers={"Authorization": "token x"})


# ------------------------------------------------------------------ basics


def test_module_fixture_and_repo_endpoints(ghserver: FakeGitHub) -> None:
    # ``ghserver`` is the module's fixture (conftest loads tests.ghserver as a plugin)
    ghserver.add_repo("octo/demo", org="octo")
    ghserver.add_repo("octo/old", org="octo", archived=True)
    ghserver.add_repo("alice/tool")
    gh = gh_for(ghserver)
    r = gh.get_repo("octo/demo")
    assert (r.full_name, r.owner.login, r.archived, r.default_branch) == (
        "octo/demo",
        "octo",
        False,
        "main",
    )
    names = {x.full_name: x.archived for x in gh.get_organization("octo").get_repos()}
    assert names == {"octo/demo": False, "octo/old": True}
    assert [x.full_name for x in gh.get_user("alice").get_repos()] == ["alice/tool"]
    resp = get(ghserver, "/nope")
    assert resp.status_code == 404 and resp.json()["message"] == "Not Found"
    assert requests.get(ghserver.host_url + "/elsewhere").status_code == 404
    with pytest.raises(UnknownObjectException):
        gh.get_repo("octo/missing")


def test_workflows_and_empty_prefix() -> None:
    with FakeGitHub(prefix="") as server:
        assert server.url == server.host_url
        repo = server.add_repo("octo/demo")
        wf = repo.add_workflow("CI", ".github/workflows/ci.yml")
        repo.add_workflow("Nightly", ".github/workflows/nightly.yml")
        repo.add_run(wf, T0)
        gh = gh_for(server)
        r = gh.get_repo("octo/demo")
        assert [w.name for w in r.get_workflows()] == ["CI", "Nightly"]
        assert r.get_workflow("ci.yml").id == wf.id
        runs = list(r.get_workflow("ci.yml").get_runs())
        assert len(runs) == 1 and runs[0].created_at == T0 and runs[0].name == "CI"
        body = requests.get(f"{server.url}/repos/octo/demo/actions/workflows").json()
        assert body["total_count"] == 2
        assert set(body["workflows"][0]) >= {"id", "node_id", "path", "state", "badge_url"}


# ------------------------------------------------------------------ runs


def test_pagination_over_250_runs(srv: FakeGitHub, repo: Repo) -> None:
    made = repo.add_runs_bulk(250, T0, 60)
    gh = gh_for(srv)
    srv.reset_log()
    runs = list(gh.get_repo("octo/demo").get_workflow_runs())
    assert [r.id for r in runs] == [r.id for r in reversed(made)]  # newest first
    pages = [r.query.get("page", "1") for r in srv.requests_to(r"/actions/runs$")]
    assert pages == ["1", "2", "3"]
    assert runs[0].created_at == T0 + timedelta(seconds=60 * 249)
    # Link header format, with the other query parameters preserved
    resp = get(srv, "/repos/octo/demo/actions/runs", per_page=100, page=2, branch="main")
    link = resp.headers["Link"]
    base = f"<{srv.url}/repos/octo/demo/actions/runs?per_page=100&branch=main&page="
    assert link == (
        f'{base}1>; rel="prev", {base}3>; rel="next", {base}3>; rel="last", {base}1>; rel="first"'
    )
    first = get(srv, "/repos/octo/demo/actions/runs", per_page=100).headers["Link"]
    assert 'rel="next"' in first and "prev" not in first and "first" not in first
    default = get(srv, "/repos/octo/demo/actions/runs")
    assert (
        len(default.json()["workflow_runs"]) == 30
        and 'page=9>; rel="last"' in default.headers["Link"]
    )
    big = get(srv, "/repos/octo/demo/actions/runs", per_page=500)
    assert len(big.json()["workflow_runs"]) == 100
    run = big.json()["workflow_runs"][0]
    assert run["created_at"].endswith("Z") and run["run_attempt"] == 1
    for key in ("jobs_url", "logs_url", "head_repository", "run_started_at", "display_title"):
        assert key in run


def test_thousand_cap_with_filter(srv: FakeGitHub, repo: Repo) -> None:
    repo.add_runs_bulk(2500, T0, 30)
    gh = gh_for(srv)
    r = gh.get_repo("octo/demo")
    window = "2026-10-01..2026-10-02"
    capped = r.get_workflow_runs(created=window)
    assert capped.totalCount == 2500
    assert len(list(capped)) == 1000
    assert len(list(r.get_workflow_runs())) == 2500  # unfiltered: all reachable
    rj = gh.requester.requestJsonAndCheck
    _, page10 = rj(
        "GET", "/repos/octo/demo/actions/runs", {"created": window, "per_page": 100, "page": 10}
    )
    _, page11 = rj(
        "GET", "/repos/octo/demo/actions/runs", {"created": window, "per_page": 100, "page": 11}
    )
    assert len(page10["workflow_runs"]) == 100
    assert (page11["total_count"], page11["workflow_runs"]) == (2500, [])
    _, p34 = rj("GET", "/repos/octo/demo/actions/runs", {"status": "success", "page": 34})
    assert len(p34["workflow_runs"]) == 10  # 33 * 30 + 10 = 1,000
    _, unf = rj("GET", "/repos/octo/demo/actions/runs", {"per_page": 100, "page": 11})
    assert len(unf["workflow_runs"]) == 100
    srv.links_past_cap = False
    resp = get(srv, "/repos/octo/demo/actions/runs", created=window, per_page=100)
    assert 'page=10>; rel="last"' in resp.headers["Link"]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("2026-10-01..2026-10-02", 4),  # date-only upper bound covers its day
        ("2026-10-01T12:00:00Z..2026-10-01T13:00:00Z", 2),  # inclusive both ends
        ("2026-10-01T12:00:01Z..2026-10-01T13:00:00Z", 1),
        ("2026-10-01T12:00:00+00:00..2026-10-01T12:59:59+00:00", 1),
        ("2026-10-01T14:00:00+02:00..*", 4),  # 12:00Z onward
        ("*..2026-10-01", 3),
        (">=2026-10-02", 2),
        (">2026-10-01", 2),
        (">2026-10-01T13:00:00Z", 2),
        ("<=2026-10-01T13:00:00Z", 3),
        ("<2026-10-01T13:00:00Z", 2),
        ("<2026-10-01", 1),
        ("2026-10-01", 2),
        ("2026-10-01T13:00:00Z", 1),
    ],
)
def test_created_filter(srv: FakeGitHub, repo: Repo, expr: str, expected: int) -> None:
    for t in ("2026-09-30T23:59:59", "2026-10-01T12:00:00", "2026-10-01T13:00:00"):
        repo.add_run(created_at=datetime.fromisoformat(t))
    for t in ("2026-10-02T00:00:00", "2026-10-02T23:59:59"):
        repo.add_run(created_at=datetime.fromisoformat(t))
    _, body = gh_for(srv).requester.requestJsonAndCheck(
        "GET", "/repos/octo/demo/actions/runs", {"created": expr}
    )
    assert body["total_count"] == expected == len(body["workflow_runs"])


def test_created_parsing_details(srv: FakeGitHub, repo: Repo) -> None:
    repo.add_run(created_at=T0)
    # an unescaped "+" arrives as a space; still understood
    raw = f"{srv.url}/repos/octo/demo/actions/runs?created=>=2026-10-01T12:00:00+00:00"
    assert requests.get(raw).json()["total_count"] == 1
    assert get(srv, "/repos/octo/demo/actions/runs", created="yesterday").status_code == 422
    lo, lo_incl, hi, hi_incl = parse_created("2026-10-01..2026-10-01")
    assert hi is not None and lo is not None and hi - lo == 86400 and lo_incl and not hi_incl


def test_run_filters_and_workflow_runs(srv: FakeGitHub, repo: Repo) -> None:
    ci = repo.workflows[0]
    other = repo.add_workflow("Release", ".github/workflows/release.yml")
    a = repo.add_run(ci, T0, conclusion="failure", branch="dev", actor="hubot")
    repo.add_run(ci, T0 + timedelta(minutes=1), event="pull_request")
    c = repo.add_run(other, T0 + timedelta(minutes=2), status="in_progress")
    gh = gh_for(srv)
    r = gh.get_repo("octo/demo")

    def ids(**kw: Any) -> list[int]:
        return [x.id for x in r.get_workflow_runs(**kw)]

    assert ids(status="failure") == [a.id]
    assert ids(status="in_progress") == [c.id]
    assert ids(status="completed") == [x.id for x in repo.runs if x is not c]
    assert ids(event="pull_request") == [repo.runs[1].id]
    assert ids(head_sha=a.head_sha) == [a.id]
    assert ids(branch="dev") == [a.id]
    assert ids(actor="hubot") == [a.id]
    assert [x.id for x in r.get_workflow(ci.id).get_runs()] == [repo.runs[1].id, a.id]
    assert [x.id for x in r.get_workflow("release.yml").get_runs()] == [c.id]
    full = r.get_workflow_run(a.id)
    assert (full.conclusion, full.head_branch, full.actor.login) == ("failure", "dev", "hubot")
    assert full.run_number == 1 and repo.runs[1].run_number == 2
    with pytest.raises(UnknownObjectException) as exc:
        r.get_workflow_run(12345)
    assert exc.value.data["message"] == "Not Found"
    assert "documentation_url" in exc.value.data


# ------------------------------------------------------------------ jobs


def test_jobs_latest_all_and_attempts(srv: FakeGitHub, repo: Repo) -> None:
    run = repo.add_run(created_at=T0, conclusion="success")
    lint = run.add_job("lint", attempt=1)
    test1 = run.add_job("test", attempt=1, conclusion="failure")
    run.carry_job(lint, to_attempt=2)
    test2 = run.add_job("test", attempt=2, conclusion="success")
    assert run.run_attempt == 2
    gh = gh_for(srv)
    wr = gh.get_repo("octo/demo").get_workflow_run(run.id)
    assert wr.run_attempt == 2
    latest = [(j.id, j.run_attempt) for j in wr.jobs()]
    assert latest == [(lint.id, 1), (test2.id, 2)]
    everything = [j.id for j in wr.jobs("all")]
    assert everything == [lint.id, test1.id, lint.id, test2.id]
    _, a1 = gh.requester.requestJsonAndCheck(
        "GET", f"/repos/octo/demo/actions/runs/{run.id}/attempts/1/jobs"
    )
    assert [j["id"] for j in a1["jobs"]] == [lint.id, test1.id] and a1["total_count"] == 2
    att = wr.get_attempt(1)
    assert att.run_attempt == 1 and att.id == run.id
    j = gh.get_repo("octo/demo").get_workflow_run(run.id).jobs()[1]
    assert j.conclusion == "success" and [s.number for s in j.steps] == [1, 2, 3, 4]
    assert j.id > 30_000_000_000 and run.id > 10_000_000_000
    assert get(srv, f"/repos/octo/demo/actions/runs/{run.id}/jobs", filter="x").status_code == 422


def test_job_payload_with_nulls_and_250_jobs(srv: FakeGitHub, repo: Repo) -> None:
    run = repo.add_run(created_at=T0, status="in_progress")
    queued = run.add_job("q", status="queued")
    odd = run.add_job(
        "odd",
        conclusion=None,
        created_at=None,
        started_at=None,
        completed_at=None,
        runner_name=None,
        steps=[("Set up job", "success"), ("Run x", None)],
    )
    for conclusion in ("neutral", "action_required", "skipped", "timed_out", "stale"):
        run.add_job(conclusion, conclusion=conclusion)
    for i in range(243):
        run.add_job(f"matrix-{i}")
    gh = gh_for(srv)
    jobs = list(gh.get_repo("octo/demo").get_workflow_run(run.id).jobs())
    assert len(jobs) == 250
    assert len(srv.requests_to(r"/jobs$")) == 3
    q = jobs[0].raw_data
    assert q["id"] == queued.id and q["status"] == "queued" and q["conclusion"] is None
    assert q["started_at"] is None and q["runner_name"] is None and q["runner_id"] is None
    assert q["created_at"] == "2026-10-01T12:00:00Z" and q["labels"] == ["ubuntu-latest"]
    o = gh.get_repo("octo/demo").get_workflow_job(odd.id).raw_data  # GET /actions/jobs/{id}
    assert o["created_at"] is None and o["completed_at"] is None and o["conclusion"] is None
    assert [(s["number"], s["conclusion"]) for s in o["steps"]] == [(1, "success"), (2, None)]
    assert [j.conclusion for j in jobs[2:7]] == [
        "neutral",
        "action_required",
        "skipped",
        "timed_out",
        "stale",
    ]
    assert set(q) >= {
        "run_id", "run_url", "run_attempt", "node_id", "head_sha", "head_branch", "url",
        "html_url", "check_run_url", "runner_group_id", "runner_group_name", "workflow_name",
    }  # fmt: skip


def test_annotations(srv: FakeGitHub, repo: Repo) -> None:
    run = repo.add_run(created_at=T0, conclusion="cancelled")
    msg = (
        "The job running on runner GitHub Actions 7 has exceeded the maximum execution time"
        " of 10 minutes."
    )
    job = run.add_job("t", conclusion="cancelled", annotations=[{"message": msg}] * 3)
    gh = gh_for(srv)
    _, anns = gh.requester.requestJsonAndCheck(
        "GET", f"/repos/octo/demo/check-runs/{job.id}/annotations", {"per_page": 2}
    )
    assert len(anns) == 2 and anns[0]["message"] == msg
    assert anns[0]["annotation_level"] == "failure" and anns[0]["path"] == ".github"
    assert set(anns[0]) == {
        "path", "start_line", "end_line", "start_column", "end_column", "annotation_level",
        "title", "message", "raw_details", "blob_href",
    }  # fmt: skip
    resp = get(srv, f"/repos/octo/demo/check-runs/{job.id}/annotations", per_page=2)
    assert 'page=2>; rel="last"' in resp.headers["Link"]
    assert get(srv, "/repos/octo/demo/check-runs/1/annotations").status_code == 404


# ------------------------------------------------------------------ logs


def test_logs_redirect_and_no_leak(srv: FakeGitHub, repo: Repo) -> None:
    run = repo.add_run(created_at=T0, conclusion="failure")
    log = make_log(
        T0, [("Set up job", "success"), ("Run pytest", "failure"), ("Complete job", "success")]
    )
    job = run.add_job("build", conclusion="failure", log=log)
    expired = run.add_job("old", log=b"x", log_expired=True)
    missing = run.add_job("nolog")
    gh = gh_for(srv)
    wj = gh.get_repo("octo/demo").get_workflow_job(job.id)
    url = wj.logs_url()
    assert url.startswith(f"{srv.host_url}/_signed/logs/{job.id}?sig=")
    assert "/api/v3" not in url
    resp = requests.get(url)  # plain requests, no token
    assert resp.status_code == 200 and resp.content == log
    assert resp.headers["Content-Type"] == "application/octet-stream"
    assert (
        log.startswith(b"\xef\xbb\xbf") and b"##[error]Process completed with exit code 1." in log
    )
    assert log.rstrip().endswith(b"Cleaning up orphan processes")
    assert srv.log_auth_leaks == []
    requests.get(url, headers={"Authorization": "token t0ken"})
    assert len(srv.log_auth_leaks) == 1 and srv.log_auth_leaks[0].path == f"/_signed/logs/{job.id}"
    assert requests.get(url.replace("sig=", "sig=x")).status_code == 403
    # PyGithub's own 302-following refuses a location outside base_url's prefix/domain
    # (as it would GitHub's blob host): fetch logs_url() with plain requests instead
    with pytest.raises(AssertionError):
        gh.requester.getStream(f"/repos/octo/demo/actions/jobs/{job.id}/logs")
    with pytest.raises(GithubException) as e410:
        gh.get_repo("octo/demo").get_workflow_job(expired.id).logs_url()
    assert e410.value.status == 410
    with pytest.raises(GithubException) as e404:
        gh.get_repo("octo/demo").get_workflow_job(missing.id).logs_url()
    assert e404.value.status == 404
    srv.signed_url_ttl = -1
    assert (
        requests.get(gh.get_repo("octo/demo").get_workflow_job(job.id).logs_url()).status_code
        == 403
    )


def test_streamed_logs(srv: FakeGitHub, repo: Repo) -> None:
    run = repo.add_run(created_at=T0)
    chunk = b"2026-10-01T12:00:00.0000000Z " + b"x" * 1000 + b"\n"

    def gen() -> Iterator[bytes]:
        for _ in range(20_000):  # ~20 MB, never held in memory by the server
            yield chunk

    chunked = run.add_job("a", log=gen)
    sized = run.add_job("b", log=gen, log_size=len(chunk) * 20_000)
    for job in (chunked, sized):
        loc = requests.get(
            f"{srv.url}/repos/octo/demo/actions/jobs/{job.id}/logs", allow_redirects=False
        ).headers["Location"]
        resp = requests.get(loc, stream=True)
        total = sum(len(c) for c in resp.iter_content(1 << 16))
        assert total == len(chunk) * 20_000
    assert resp.headers["Content-Length"] == str(len(chunk) * 20_000)
    for job in (chunked, sized):  # a truncated download fails loudly either way
        srv.faults.add(rf"^/_signed/logs/{job.id}$", "truncate")
        api = f"{srv.url}/repos/octo/demo/actions/jobs/{job.id}/logs"
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            requests.get(api).content  # noqa: B018


# ------------------------------------------------------------------ rate limit, etag, auth


def test_rate_limit_exhaustion_and_reset(srv: FakeGitHub, repo: Repo) -> None:
    srv.rate.limit = 100
    srv.rate.remaining = 2
    srv.rate.reset_after = 0.5
    gh = gh_for(srv)
    first = get(srv, "/repos/octo/demo")
    assert (
        first.headers["x-ratelimit-remaining"] == "1" and first.headers["x-ratelimit-used"] == "99"
    )
    assert (
        first.headers["x-ratelimit-limit"] == "100"
        and first.headers["x-ratelimit-resource"] == "core"
    )
    reset = int(first.headers["x-ratelimit-reset"])
    assert time.time() < reset <= time.time() + 3
    gh.get_repo("octo/demo")
    with pytest.raises(RateLimitExceededException) as exc:
        gh.get_repo("octo/demo")
    assert exc.value.status == 403 and (exc.value.headers or {})["x-ratelimit-remaining"] == "0"
    assert exc.value.data["message"] == "API rate limit exceeded for user ID 1."
    core = gh.get_rate_limit().resources.core  # free
    assert (core.remaining, core.limit) == (0, 100)
    assert gh.get_rate_limit().resources.core.remaining == 0
    time.sleep(0.6)
    gh.get_repo("octo/demo")
    assert srv.rate.remaining == 99
    counted = [r.counted for r in srv.requests]
    assert counted == [True, True, False, False, False, True]


def test_conditional_requests_are_free(srv: FakeGitHub, repo: Repo) -> None:
    repo.add_run(created_at=T0)
    first = get(srv, "/repos/octo/demo/actions/runs")
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')
    before = srv.rate.remaining
    again = requests.get(
        srv.url + "/repos/octo/demo/actions/runs",
        headers={"If-None-Match": etag, "Authorization": "token x"},
    )
    assert again.status_code == 304 and again.content == b""
    assert srv.rate.remaining == before and "x-ratelimit-remaining" in again.headers
    assert [r.counted for r in srv.requests] == [True, False]
    gh = gh_for(srv)
    r = gh.get_repo("octo/demo")
    assert r.update() is False  # PyGithub's own conditional request
    assert srv.requests[-1].status == 304 and not srv.requests[-1].counted
    repo.archived = True
    assert r.update() is True and r.archived is True


def test_auth_and_private_repos(srv: FakeGitHub) -> None:
    srv.add_repo("octo/secret", private=True, org="octo")
    assert requests.get(srv.url + "/repos/octo/secret").status_code == 404
    with pytest.raises(UnknownObjectException):
        gh_for(srv, token=None).get_repo("octo/secret")
    assert gh_for(srv).get_repo("octo/secret").private is True
    srv.required_token = "right"
    with pytest.raises(BadCredentialsException):
        gh_for(srv, token="wrong").get_repo("octo/secret")
    assert requests.get(srv.url + "/rate_limit").status_code == 401
    assert gh_for(srv, token="right").get_repo("octo/secret").full_name == "octo/secret"
    bearer = requests.get(srv.url + "/repos/octo/secret", headers={"Authorization": "Bearer right"})
    assert bearer.status_code == 200
    assert bearer.request.headers["Authorization"] == srv.requests[-1].headers["authorization"]


# ------------------------------------------------------------------ faults


def test_status_faults_and_retry(srv: FakeGitHub, repo: Repo) -> None:
    gh = gh_for(srv)
    for status in (500, 502, 503, 404, 422):
        srv.faults.add(r"^/repos/octo/demo$", "status", status=status)
        with pytest.raises(GithubException) as exc:
            gh.get_repo("octo/demo")
        assert exc.value.status == status and exc.value.data["message"]
    assert gh.get_repo("octo/demo").name == "demo"
    assert [r.fault for r in srv.requests] == ["status"] * 5 + [None]
    assert not any(r.counted for r in srv.requests[:5])
    srv.faults.add(r"/actions/runs$", "status", count=2, status=502)
    retrying = gh_for(srv, retry=GithubRetry(total=3, backoff_factor=0))
    assert retrying.get_repo("octo/demo").get_workflow_runs().totalCount == 0
    assert [r.status for r in srv.requests_to(r"/actions/runs$")] == [502, 502, 200]
    # query-matching and permanent faults
    srv.faults.add(r"/actions/runs$", "status", count=None, status=503, query={"page": 2})
    assert get(srv, "/repos/octo/demo/actions/runs").status_code == 200
    assert get(srv, "/repos/octo/demo/actions/runs", page=2).status_code == 503
    assert get(srv, "/repos/octo/demo/actions/runs", page=2).status_code == 503
    assert len(srv.faults) == 1
    srv.faults.clear()
    assert get(srv, "/repos/octo/demo/actions/runs", page=2).status_code == 200


def test_rate_limit_faults(srv: FakeGitHub, repo: Repo) -> None:
    gh = gh_for(srv)
    srv.faults.add(r"^/repos/", "secondary", retry_after=7)
    srv.faults.add(r"^/repos/", "secondary", retry_after=None)
    srv.faults.add(r"^/repos/", "primary", reset_after=5)
    srv.faults.add(r"^/repos/", "429", retry_after=3)
    srv.faults.add(r"^/repos/", "429")
    sec = get(srv, "/repos/octo/demo")
    assert sec.status_code == 403 and sec.headers["retry-after"] == "7"
    assert sec.json()["message"].startswith("You have exceeded a secondary rate limit")
    with pytest.raises(RateLimitExceededException) as exc:
        gh.get_repo("octo/demo")
    assert "retry-after" not in (exc.value.headers or {})
    prim = get(srv, "/repos/octo/demo")
    assert prim.status_code == 403 and prim.headers["x-ratelimit-remaining"] == "0"
    assert 3 <= int(prim.headers["x-ratelimit-reset"]) - time.time() <= 6
    assert prim.json()["message"].startswith("API rate limit exceeded")
    r429 = get(srv, "/repos/octo/demo")
    assert r429.status_code == 429 and r429.headers["retry-after"] == "3"
    with pytest.raises(GithubException) as exc429:  # PyGithub: plain GithubException for 429
        gh.get_repo("octo/demo")
    assert exc429.value.status == 429 and "retry-after" not in (exc429.value.headers or {})
    assert srv.rate.remaining == srv.rate.limit  # none of them counted
    # PyGithub's GithubRetry honours retry-after on a secondary limit
    srv.faults.add(r"^/repos/", "secondary", retry_after=1)
    t = time.monotonic()
    gh_for(srv, retry=GithubRetry(total=2)).get_repo("octo/demo")
    assert time.monotonic() - t >= 0.9


def test_latency_drop_truncate(srv: FakeGitHub, repo: Repo) -> None:
    run = repo.add_run(created_at=T0)
    job = run.add_job("b", log=b"0123456789" * 1000)
    srv.faults.add(r"^/repos/octo/demo$", "latency", seconds=0.3)
    t = time.monotonic()
    assert get(srv, "/repos/octo/demo").status_code == 200
    assert time.monotonic() - t >= 0.3
    srv.faults.add(r"^/repos/octo/demo$", "drop")
    with pytest.raises(requests.ConnectionError):
        get(srv, "/repos/octo/demo")
    assert srv.requests[-1].status == 0 and srv.requests[-1].fault == "drop"
    assert get(srv, "/repos/octo/demo").status_code == 200
    srv.faults.add(r"/logs", "truncate")  # skipped by the body-less 302, taken by the blob
    api = f"{srv.url}/repos/octo/demo/actions/jobs/{job.id}/logs"
    loc = requests.get(api, allow_redirects=False).headers["Location"]
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(loc)
    assert srv.requests[-1].fault == "truncate"
    assert requests.get(loc).content == b"0123456789" * 1000
    srv.faults.add(r"^/repos/octo/demo$", "truncate")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        get(srv, "/repos/octo/demo")
    srv.faults.add(r"^/repos/octo/demo$", "latency", count=None, seconds=0.05)
    t = time.monotonic()
    for _ in range(3):
        get(srv, "/repos/octo/demo")
    assert time.monotonic() - t >= 0.15


# ------------------------------------------------------------------ concurrency, demo, CLI


def test_concurrent_clients_keep_alive(srv: FakeGitHub, repo: Repo) -> None:
    repo.add_runs_bulk(120, T0, 60, jobs_per_run=2)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            gh = gh_for(srv)
            r = gh.get_repo("octo/demo")
            for run in list(r.get_workflow_runs())[:10]:
                assert len(list(run.jobs())) == 2
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(srv.requests) == 6 * (1 + 2 + 10)
    assert len({r.client for r in srv.requests}) <= 12  # connections are reused


def test_demo_repo(srv: FakeGitHub) -> None:
    now = datetime(2026, 10, 3, 12, tzinfo=UTC)
    build_demo(srv, now=now)
    gh = gh_for(srv)
    r = gh.get_repo("octo/demo")
    runs = list(r.get_workflow_runs())
    assert 30 <= len(runs) <= 60
    assert {x.conclusion for x in runs} >= {"success", "failure", "cancelled", None}
    assert all(now - timedelta(days=2, hours=1) <= x.created_at <= now for x in runs)
    jobs = [j for x in runs for j in x.jobs()]
    assert any(j.conclusion == "skipped" for j in jobs)
    timed_out = [
        a
        for j in jobs
        if j.conclusion == "cancelled"
        for a in gh.requester.requestJsonAndCheck("GET", f"{r.url}/check-runs/{j.id}/annotations")[
            1
        ]
        if "maximum execution time" in a["message"]
    ]
    assert len(timed_out) == 1
    failed = next(j for j in jobs if j.conclusion == "failure")
    text = requests.get(failed.logs_url()).content.decode("utf-8-sig")
    assert "##[group]Run " in text and "##[error]" in text
    rerun = next(x for x in runs if x.run_attempt == 2)
    assert len(list(rerun.jobs("all"))) > len(list(rerun.jobs()))
    assert gh.get_organization("octo").get_repos().totalCount == 2


def test_cli_demo() -> None:
    script = Path(__file__).with_name("ghserver.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), "--port", "0", "--demo"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("GITHUB_API_URL=http://127.0.0.1:")
        url = line.split("=", 1)[1]
        assert requests.get(url + "/repos/octo/demo/actions/runs").json()["total_count"] > 30
    finally:
        proc.terminate()
        proc.wait(5)
