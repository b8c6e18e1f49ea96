"""Failure signatures, the log archive and rule suggestions, end to end: gathered from the
local GitHub test server into the store, then read back by the commands."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from multivac.classify import check_rules_file
from tests.conftest import TOKEN, Invoke
from tests.ghserver import FakeGitHub, make_log

NOW = datetime.now(UTC).replace(microsecond=0)
STEPS = [("Set up job", "success"), ("Run tests", "failure"), ("Notify", "failure")]


def failing(created: datetime, cause: str, *, notify: bool = False) -> bytes:
    steps: list[tuple[str, str | None, list[str]]] = [
        ("Set up job", "success", []),
        (
            "Run tests",
            "failure",
            [cause, "##[error]Process completed with exit code 1."],
        ),
    ]
    if notify:
        steps.append(
            (
                "Notify",
                "failure",
                [
                    "curl: (6) Could not resolve host: hooks.slack.com",
                    "##[error]Process completed with exit code 6.",
                ],
            )
        )
    return make_log(created, steps)


def env(server: FakeGitHub, state: Path, **extra: str) -> dict[str, str]:
    return {
        "GITHUB_API_URL": server.url,
        "GITHUB_TOKEN": TOKEN,
        "MULTIVAC_STATE_DIR": str(state),
        **extra,
    }


def add_failure(server: FakeGitHub, created: datetime, cause: str, *, notify: bool = False) -> int:
    repo = server.repo("octo/sig") if "octo/sig" in server.repos else server.add_repo("octo/sig")
    run = repo.add_run(created_at=created, conclusion="failure")
    steps = STEPS if notify else STEPS[:2]
    return run.add_job(
        "test", conclusion="failure", steps=steps, log=failing(created, cause, notify=notify)
    ).id


def dump(state: Path) -> list[str]:
    with sqlite3.connect(state / "multivac.sqlite3") as db:
        return list(db.iterdump())


def rows(text: str) -> dict[str, dict[str, str]]:
    return {
        r["job_id"]: r for r in csv.DictReader(io.StringIO(text)) if r["measurement"] != "tests"
    }


def test_signatures_on_records_and_new_failures(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    old = NOW - timedelta(days=3)
    a1 = add_failure(ghserver, old, "FAILED tests/test_api.py::test_login - assert 401 == 200")
    a2 = add_failure(
        ghserver,
        NOW - timedelta(hours=5),
        "FAILED tests/test_api.py::test_login - assert 403 == 200",
        notify=True,
    )
    b = add_failure(
        ghserver,
        NOW - timedelta(hours=4),
        "/home/runner/work/sig/sig/src/db.c:88:5: error: 'conn' undeclared (first use)",
    )
    e = env(ghserver, tmp_path / "s")
    gathered = cli("gather", "octo/sig", "--since", "7d", env=e)
    assert gathered.exit_code == 0, gathered.stderr
    out = rows(gathered.stdout)
    # the same failure in two jobs (other numbers) has one signature; another failure another
    assert out[str(a1)]["signature"] == out[str(a2)]["signature"] != ""
    assert out[str(b)]["signature"] not in ("", out[str(a1)]["signature"])
    # the notification step that failed after the tests is recorded, never the cause
    assert out[str(a2)]["measurement"] == "test_failure"
    assert out[str(a2)]["also"] == "network_error"

    new = cli("failures", "new", "octo/sig", "--since", "1d", "--json", env=e)
    assert new.exit_code == 0, new.stderr
    found = json.loads(new.stdout)
    # the test failure was first seen three days ago: only the compile error is new
    assert [item["type"] for item in found] == ["compile_error"]
    assert found[0]["jobs"] == 1 and f"/job/{b}" in found[0]["first_url"]
    assert "<ws>/src/db.c" in found[0]["text"] and "88" not in found[0]["text"]

    ranked = cli("failures", "stats", "octo/sig", "--since", "7d", "--by", "signature", env=e)
    assert ranked.exit_code == 0, ranked.stderr
    lines = ranked.stdout.splitlines()
    assert lines[0].split()[:2] == ["signature", "failure"]
    assert lines[1].split()[1:3] == ["test_failure", "2"]  # the largest first
    assert lines[2].split()[1:3] == ["compile_error", "1"]


def test_archived_logs_outlive_github_and_feed_reclassify(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    noise = [f"collecting module {i}" for i in range(60)]
    created = NOW - timedelta(hours=2)
    repo = ghserver.add_repo("octo/arch")
    run = repo.add_run(created_at=created, conclusion="failure")
    steps = [
        ("Set up job", "success", []),
        # the cause sits far above the end: no stored excerpt holds it
        (
            "Run tests",
            "failure",
            ["frobnicator quota spent", *noise, "##[error]Process completed with exit code 3."],
        ),
    ]
    job = run.add_job("test", conclusion="failure", steps=STEPS[:2], log=make_log(created, steps))
    e = env(ghserver, tmp_path / "s")
    first = cli("gather", "octo/arch", env=e)
    assert first.exit_code == 0, first.stderr
    assert rows(first.stdout)[str(job.id)]["measurement"] == "unknown_failure"
    shown = cli("logs", "show", str(job.id), env=e)
    assert shown.exit_code == 0 and "frobnicator quota spent" in shown.stdout
    missing = cli("logs", "show", "12345", env=e)
    assert missing.exit_code == 1 and "no archived log" in missing.stderr

    job.log_expired = True  # GitHub deleted it; a new rule must still see the whole log
    rules = tmp_path / "ours.yaml"
    rules.write_text(
        "rules:\n  - id: frob\n    type: quota_error\n    priority: 80\n"
        "    patterns: ['frobnicator quota spent']\n"
        "    examples: {match: ['frobnicator quota spent'], no_match: ['frobnicator ok']}\n"
    )
    ghserver.reset_log()
    done = cli("reclassify", "--rules", str(rules), "-f", "csv", env=e)
    assert done.exit_code == 0, done.stderr
    assert ghserver.requests == []  # from the archive, offline
    assert rows(done.stdout)[str(job.id)]["measurement"] == "quota_error"


def test_the_archive_budget_and_zero(ghserver: FakeGitHub, cli: Invoke, tmp_path: Path) -> None:
    for i in range(4):
        add_failure(ghserver, NOW - timedelta(hours=6 - i), f"FAILED t.py::test_{i} - boom {i}")
    off = env(ghserver, tmp_path / "off")
    assert cli("gather", "octo/sig", "--log-archive-mb", "0", env=off).exit_code == 0
    assert not (tmp_path / "off" / "logs").exists() or not any(
        (tmp_path / "off" / "logs").iterdir()
    )
    on = env(ghserver, tmp_path / "on", MULTIVAC_LOG_ARCHIVE_MB="1")
    assert cli("gather", "octo/sig", env=on).exit_code == 0
    archived = list((tmp_path / "on" / "logs").glob("*.log.gz"))
    assert len(archived) == 4
    assert sum(p.stat().st_size for p in archived) <= 1 << 20


def test_rules_suggest_drafts_rules_for_unknown_failures(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    for i in range(3):
        add_failure(
            ghserver,
            NOW - timedelta(hours=10 - i),
            f"frobnicate: widget {100 + i} rejected by /tmp/tmp{i}x/cache (code {7 + i})",
        )
    add_failure(ghserver, NOW - timedelta(hours=3), "zorp: flux capacitor misaligned")
    state = tmp_path / "s"
    assert cli("gather", "octo/sig", env=env(ghserver, state)).exit_code == 0
    before = (dump(state), sorted(state.rglob("*.log.gz")))
    suggested = cli("rules", "suggest", env={"MULTIVAC_STATE_DIR": str(state)})
    assert suggested.exit_code == 0, suggested.stderr
    assert "2 clusters of unknown failures" in suggested.stderr
    drafts = yaml.safe_load(suggested.stdout)["rules"]
    assert len(drafts) == 2
    largest = drafts[0]
    assert "3 unknown failures" in largest["description"]
    assert len(largest["examples"]["match"]) == 3
    assert largest["examples"]["match"][0].startswith("frobnicate: widget 10")
    # the draft is a valid rules file whose pattern matches its own examples
    path = tmp_path / "draft.yaml"
    path.write_text(suggested.stdout)
    assert check_rules_file(str(path)) == []
    assert (dump(state), sorted(state.rglob("*.log.gz"))) == before  # it wrote nothing
