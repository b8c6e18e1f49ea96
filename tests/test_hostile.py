"""A hostile, demanding user: malformed answers, bad values, broken files. Each case ends
in one clear sentence and an exit code, never a traceback, and loses nothing gathered."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import TOKEN, Invoke
from tests.ghserver import FakeGitHub
from tests.test_faults import baseline, gather, jobs_of, populate, runs_of, table

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
