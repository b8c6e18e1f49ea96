"""`multivac tests LOG...`, `tests stats`, `tests last-seen`, the report's test sections,
`rules check` of `tests:` parsers and `reclassify` of test results."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from multivac.classify import load_catalog, scan_log
from multivac.testresults import TestCollector, load_parsers, parse_log_file, scan_lines
from tests.conftest import REALDATA, TOKEN, Invoke
from tests.ghserver import FakeGitHub, make_log
from tests.test_testresults_logs import REALDATA_EXPECTED

NOW = datetime.now(UTC).replace(microsecond=0)
FIXTURES = Path(__file__).parent / "fixtures" / "testresults"
PYTEST_DEFAULT = FIXTURES / "pytest" / "pytest-default.log"
PYTEST_VERBOSE = FIXTURES / "pytest" / "pytest-verbose.log"
STEPS = [("Set up job", "success"), ("Run tests", "failure"), ("Complete job", "success")]
CATALOG = load_catalog()
PARSERS = load_parsers()


def github_log(created: datetime, *lines: str) -> bytes:
    return make_log(created, [("Set up job", "success"), ("Run tests", "failure", list(lines))])


def env(server: FakeGitHub, state: Path) -> dict[str, str]:
    return {"GITHUB_API_URL": server.url, "GITHUB_TOKEN": TOKEN, "MULTIVAC_STATE_DIR": str(state)}


# ---------------------------------------------------------------------------- tests LOG...


def test_tests_prints_each_files_failures(cli: Invoke) -> None:
    result = cli("tests", str(PYTEST_DEFAULT))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{PYTEST_DEFAULT}:"
    assert "  failed  tests/test_auth.py::test_logout  (pytest, line 74)" in lines
    assert "AssertionError: session still open" in result.stdout
    assert "passed" not in result.stdout


def test_tests_json_keys_and_all(cli: Invoke) -> None:
    result = cli("tests", "--json", str(PYTEST_VERBOSE))
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    assert found and all(
        set(item)
        == {"path", "framework", "test", "configuration", "status", "line_number", "message"}
        for item in found
    )
    assert "passed" not in {item["status"] for item in found}
    everything = json.loads(cli("tests", "--json", "--all", str(PYTEST_VERBOSE)).stdout)
    statuses = {item["status"] for item in everything}
    assert {"passed", "failed", "skipped", "flaky"} <= statuses
    # a test named test_failed_login that passed is passed
    named = [i for i in everything if i["test"].endswith("test_failed_login")]
    assert [i["status"] for i in named] == ["passed"]


def test_tests_parse_is_the_same_command(cli: Invoke) -> None:
    assert (
        cli("tests", "parse", str(PYTEST_DEFAULT)).stdout
        == cli("tests", str(PYTEST_DEFAULT)).stdout
    )


def test_a_missing_log_is_one_line_and_the_rest_is_read(cli: Invoke, tmp_path: Path) -> None:
    result = cli("tests", str(tmp_path / "nope.log"), str(PYTEST_DEFAULT))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'nope.log'}: no such file."]
    assert "tests/test_auth.py::test_logout" in result.stdout


def test_binary_junk_is_no_test(cli: Invoke, tmp_path: Path) -> None:
    junk = tmp_path / "junk.log"
    junk.write_bytes(bytes(range(256)) * 4096 + b"\nFAILED \xff\xfe::x - \x00\n")
    result = cli("tests", "--json", str(junk))
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not REALDATA.is_dir(), reason="../shared/realdata is not present")
@pytest.mark.parametrize("name", sorted(REALDATA_EXPECTED))
def test_tarantool_excerpts_through_the_command(cli: Invoke, name: str) -> None:
    """The real test-run excerpts: what their format implies, through `multivac tests`
    (the classification pass with the collector listening, as gather reads a log)."""
    path = REALDATA / "multivac-failures" / name
    result = cli("tests", "--json", "--all", "--rules", "tarantool", str(path))
    assert result.exit_code == 0, result.stderr
    got = [
        (item["status"], item["test"], item["configuration"])
        for item in json.loads(result.stdout)
        if item["framework"] == "test-run"
    ]
    assert got == REALDATA_EXPECTED[name]


@pytest.mark.skipif(not REALDATA.is_dir(), reason="../shared/realdata is not present")
@pytest.mark.parametrize("path", sorted((REALDATA / "multivac-failures").glob("*.log")), ids=str)
def test_the_classification_pass_hears_what_the_parsers_find(path: Path) -> None:
    """Every real excerpt: the collector fed by the classification scan (gather) gives
    exactly what it gives on its own."""
    parsers = load_parsers(["tarantool"])
    collector = TestCollector(parsers)
    scan_log([path.read_bytes()], load_catalog(["tarantool"]), listeners=[collector])
    assert collector.results() == parse_log_file(path, parsers)


@pytest.mark.parametrize(
    "path", sorted(FIXTURES.glob("*/*.log")), ids=lambda p: f"{p.parent.name}/{p.name}"
)
@pytest.mark.parametrize("engine", ["hyperscan", "re2"])
def test_the_classification_pass_finds_every_fixture_result(path: Path, engine: str) -> None:
    """The real runner outputs, each as a console log and as GitHub serves it
    (timestamps): the prefilter of the classification pass, on either engine, hands
    the collector every line it needs."""
    from multivac.prefilter import available_engines

    if engine not in available_engines():
        pytest.skip(f"{engine} is not installed")
    raw = path.read_bytes()
    stamped = b"".join(b"2026-10-01T12:00:00.0000000Z " + line for line in raw.splitlines(True))
    for data in (raw, stamped):
        collector = TestCollector(PARSERS)
        scan_log([data], CATALOG, listeners=[collector], engine=engine)
        alone = TestCollector(PARSERS)
        scan_lines([data], [alone])
        assert collector.results() == alone.results()


# ---------------------------------------------------------------------------- store reports


def history(server: FakeGitHub) -> dict[str, int]:
    """Three runs of main and one of a branch: test_fetch fails twice and turns flaky
    once (its retry passes), test_parse fails once on the branch."""
    repo = server.add_repo("octo/hist")
    ids: dict[str, int] = {}
    for n in range(2):
        created = NOW - timedelta(hours=10 - n)
        run = repo.add_run(created_at=created, conclusion="failure", head_sha=f"{n}" * 40)
        log = github_log(created, "FAILED tests/test_net.py::test_fetch - TimeoutError: 5s")
        ids[f"fail{n}"] = run.add_job(
            "test", conclusion="failure", steps=STEPS, log=log, labels=["ubuntu-24.04"]
        ).id
    retry = repo.add_run(
        created_at=NOW - timedelta(hours=5), run_attempt=2, head_sha="2" * 40, conclusion="success"
    )
    log = github_log(NOW, "FAILED tests/test_net.py::test_fetch - ConnectionReset")
    ids["flaky"] = retry.add_job("test", attempt=1, conclusion="failure", steps=STEPS, log=log).id
    retry.add_job("test", attempt=2, conclusion="success")
    branch = repo.add_run(
        created_at=NOW - timedelta(hours=2), branch="feature/<b>", conclusion="failure"
    )
    log = github_log(NOW, "FAILED tests/test_io.py::test_parse[<script>] - ValueError")
    ids["branch"] = branch.add_job("test", conclusion="failure", steps=STEPS, log=log).id
    return ids


def test_tests_stats_json(ghserver: FakeGitHub, cli: Invoke, tmp_path: Path) -> None:
    ids = history(ghserver)
    result = cli(
        "tests", "stats", "octo/hist", "--since", "1d", "--json", env=env(ghserver, tmp_path)
    )
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [set(row) for row in rows] == [
        {"test", "framework", "failures", "flaky", "first_seen", "last_seen", "last_url"}
    ] * 2
    fetch, parse = rows
    assert fetch["test"] == "tests/test_net.py::test_fetch" and fetch["framework"] == "pytest"
    assert (fetch["failures"], fetch["flaky"]) == (3, 1)
    assert fetch["last_url"].endswith(f"/job/{ids['flaky']}")
    assert fetch["first_seen"] < fetch["last_seen"]
    assert (parse["failures"], parse["flaky"]) == (1, 0)
    text = cli(
        "tests", "stats", "octo/hist", "--offline", "--since", "1d", env=env(ghserver, tmp_path)
    )
    assert text.exit_code == 0, text.stderr
    assert "33%" in text.stdout and "2 failing tests in the window." in text.stderr


def test_tests_last_seen_csv_and_branch(ghserver: FakeGitHub, cli: Invoke, tmp_path: Path) -> None:
    ids = history(ghserver)
    result = cli("tests", "last-seen", "octo/hist", env=env(ghserver, tmp_path))
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == [
        "test",
        "configuration",
        "status",
        "runner_label",
        "last_seen",
        "branch",
        "count",
        "job_url",
        "log_url",
    ]
    keyed = {(r["test"], r["status"], r["runner_label"]): r for r in rows}
    failed = keyed[("tests/test_net.py::test_fetch", "failed", "ubuntu-24.04")]
    assert failed["count"] == "2" and failed["branch"] == "main"
    assert failed["job_url"].endswith(f"/job/{ids['fail1']}")
    assert failed["log_url"].endswith(f"/commit/{'1' * 40}/checks/{ids['fail1']}/logs")
    flaky = keyed[("tests/test_net.py::test_fetch", "flaky", "ubuntu-latest")]
    assert flaky["count"] == "1"
    assert rows[0]["test"] == "tests/test_io.py::test_parse[<script>]"  # the newest first
    only = cli(
        "tests",
        "last-seen",
        "octo/hist",
        "--offline",
        "--branch",
        "feature/<b>",
        env=env(ghserver, tmp_path),
    )
    assert [r["test"] for r in csv.DictReader(io.StringIO(only.stdout))] == [
        "tests/test_io.py::test_parse[<script>]"
    ]


def test_tests_last_seen_html_escapes(ghserver: FakeGitHub, cli: Invoke, tmp_path: Path) -> None:
    history(ghserver)
    page = tmp_path / "out" / "last.html"
    result = cli(
        "tests",
        "last-seen",
        "octo/hist",
        "-f",
        "html",
        "-o",
        str(page),
        env=env(ghserver, tmp_path),
    )
    assert result.exit_code == 0, result.stderr
    text = page.read_text()
    assert "<script>" not in text and "test_parse[&lt;script&gt;]" in text
    assert text.count("<tr>") == 1 + 3
    assert ">log</a>" in text


def test_report_gains_failing_and_flaky_tests(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    history(ghserver)
    page = tmp_path / "report.html"
    result = cli(
        "report", "octo/hist", "--html", str(page), "--since", "1d", env=env(ghserver, tmp_path)
    )
    assert result.exit_code == 0, result.stderr
    text = page.read_text()
    top = text.split("<h2>Top failing tests</h2>")[1].split("<h2>")[0]
    flaky = text.split("<h2>Flaky tests</h2>")[1].split("<h2>")[0]
    assert "tests/test_net.py::test_fetch" in top and "test_parse[&lt;script&gt;]" in top
    assert "tests/test_net.py::test_fetch" in flaky and "test_parse" not in flaky


def test_stats_of_an_empty_store_offline(cli: Invoke, tmp_path: Path) -> None:
    result = cli("tests", "stats", "--offline", "--json", env={"MULTIVAC_STATE_DIR": str(tmp_path)})
    assert result.exit_code == 2
    assert "holds no runs" in result.stderr or "Name a repository" in result.stderr


# ---------------------------------------------------------------------------- rules check


OURS = """\
tests:
  - id: our-runner
    framework: ourtest
    patterns:
      - '^CASE (?P<test>\\S+) (?P<status>BROKE|OK) on (?P<configuration>\\w+)$'
    statuses: {BROKE: failed, OK: passed}
    examples:
      match:
        - line: 'CASE db.open BROKE on sqlite'
          test: db.open
          status: STATUS
          configuration: sqlite
      no_match: ['CASE db.open was fine']
"""


def test_rules_check_validates_tests_parsers(cli: Invoke, tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(OURS.replace("STATUS", "failed"))
    ok = cli("rules", "check", str(good))
    assert ok.exit_code == 0, ok.stderr
    assert ok.stdout == f"{good}: ok\n"
    bad = tmp_path / "bad.yaml"
    bad.write_text(OURS.replace("STATUS", "passed"))
    wrong = cli("rules", "check", str(bad))
    assert wrong.exit_code == 2
    assert "gives status 'failed', not 'passed'" in wrong.stderr
    assert wrong.stderr.count("error:") == 1


def test_a_users_parser_works_in_the_tests_command(cli: Invoke, tmp_path: Path) -> None:
    rules = tmp_path / "ours.yaml"
    rules.write_text(OURS.replace("STATUS", "failed"))
    log = tmp_path / "x.log"
    log.write_text("CASE db.open BROKE on sqlite\nCASE db.open OK on pg\n")
    result = cli("tests", "--json", "--rules", str(rules), str(log))
    assert [(i["test"], i["status"], i["configuration"]) for i in json.loads(result.stdout)] == [
        ("db.open", "failed", "sqlite")
    ]


# ---------------------------------------------------------------------------- reclassify


def test_reclassify_reparses_archived_logs_with_new_parsers(
    ghserver: FakeGitHub, cli: Invoke, tmp_path: Path
) -> None:
    repo = ghserver.add_repo("octo/re")
    created = NOW - timedelta(hours=2)
    run = repo.add_run(created_at=created, conclusion="failure")
    log = github_log(
        created, "FAILED tests/test_a.py::test_x - boom", "CASE db.open BROKE on sqlite"
    )
    job = run.add_job("test", conclusion="failure", steps=STEPS, log=log)
    e = env(ghserver, tmp_path / "s")
    assert cli("gather", "octo/re", env=e).exit_code == 0
    # a store from before test results: the archived log is all there is
    with sqlite3.connect(tmp_path / "s" / "multivac.sqlite3") as db:
        db.execute("DELETE FROM test_results")
        db.execute("DELETE FROM test_jobs")
    rules = tmp_path / "ours.yaml"
    rules.write_text(OURS.replace("STATUS", "failed"))
    ghserver.reset_log()
    dry = cli("reclassify", "--rules", str(rules), "--dry-run", env=e)
    assert dry.exit_code == 0, dry.stderr
    assert "would change the test results of 1 jobs." in dry.stderr
    done = cli("reclassify", "--rules", str(rules), "-f", "csv", env=e)
    assert done.exit_code == 0, done.stderr
    assert ghserver.requests == []  # from the archive, offline
    rows = [r for r in csv.DictReader(io.StringIO(done.stdout)) if r["measurement"] == "tests"]
    assert {(r["test"], r["framework"]) for r in rows} == {
        ("tests/test_a.py::test_x", "pytest"),
        ("db.open", "ourtest"),
    }
    assert all(r["job_id"] == str(job.id) for r in rows)
    again = cli("reclassify", "--rules", str(rules), env=e)
    assert "test results" not in again.stderr  # nothing changed the second time
    stats = cli("tests", "stats", "octo/re", "--offline", "--json", env=e)
    assert {row["test"] for row in json.loads(stats.stdout)} == {
        "tests/test_a.py::test_x",
        "db.open",
    }
