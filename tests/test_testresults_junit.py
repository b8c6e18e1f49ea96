"""JUnit XML from artifacts: real reports, hostile archives, merging, the GitHub endpoints."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from multivac.testresults import parse_log_file
from multivac.testresults.artifacts import (
    ArtifactRef,
    artifacts_from_payload,
    loose_key,
    merge_job_results,
    read_artifact,
    select_artifacts,
    unsafe_member_name,
)
from multivac.testresults.junit import JUnitError, iter_junit
from multivac.testresults.model import TestResult
from tests.ghserver import FakeGitHub

FIXTURES = Path(__file__).parent / "fixtures" / "testresults"


def junit(path: str) -> list[TestResult]:
    with open(FIXTURES / path, "rb") as handle:
        return list(iter_junit(handle, Path(path).name))


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# ---------------------------------------------------------------------------- real reports


@pytest.mark.parametrize(
    ("path", "framework", "expected"),
    [
        (
            "junit/pytest-junit.xml",
            "pytest",
            {
                "tests.test_auth.test_logout": "failed",
                "tests.test_auth.test_names[carol]": "failed",
                "tests.test_auth.test_setup_error": "failed",
                "tests.test_auth.TestSession.test_expiry": "failed",
                "tests.test_auth.test_ldap": "skipped",
                "tests.test_auth.test_failed_login": "passed",
            },
        ),
        (
            "junit/jest-junit.xml",
            "jest",
            {
                "auth session logout": "failed",
                "top level check": "failed",
                "auth session ldap": "skipped",
                "auth failed login is logged": "passed",
            },
        ),
        (
            "junit/vitest-junit.xml",
            "vitest",
            {
                "src/auth.test.js > auth > session > logout": "failed",
                "src/broken.test.js": "failed",
                "src/auth.test.js > auth > session > ldap": "skipped",
            },
        ),
        (
            "junit/phpunit-junit.xml",
            "phpunit",
            {
                "Shop.Tests.CartTest.testTotal": "failed",
                "Shop.Tests.CartTest.testDiscount": "failed",
                'Shop.Tests.CartTest.testSizes with data set "large"': "failed",
                "Shop.Tests.CartTest.testPay": "skipped",
            },
        ),
        (
            "junit/ctest-junit.xml",
            "ctest",
            {
                "check-dependencies": "failed",
                "missing-binary": "skipped",
                "check-luarocks": "passed",
            },
        ),
        (
            "surefire/junit/TEST-com.shop.CartTest.xml",
            "junit",
            {
                "com.shop.CartTest.testTotal": "failed",
                "com.shop.CartTest.testDiscount": "failed",
                "com.shop.CartTest.testPay": "skipped",
                "com.shop.CartTest.testFailedLogin": "passed",
            },
        ),
        (
            "surefire/junit/TEST-com.shop.FlakyTest.xml",
            "junit",
            {"com.shop.FlakyTest.testSometimes": "flaky"},
        ),
    ],
)
def test_real_junit_reports(path: str, framework: str, expected: dict[str, str]) -> None:
    results = junit(path)
    by_id = {r.test: r for r in results}
    for test, status in expected.items():
        assert by_id[test].status == status, test
        assert by_id[test].framework == framework
        assert by_id[test].source == f"junit:{Path(path).name}"


def test_junit_result_fields() -> None:
    by_id = {r.test: r for r in junit("junit/pytest-xunit1.xml")}
    logout = by_id["tests.test_auth.test_logout"]
    assert logout.suite == "tests/test_auth.py"
    assert logout.duration_s == pytest.approx(0.001)
    assert logout.message.startswith("AssertionError: session still open")
    assert logout.line_number is None


def test_a_timeout_in_junit_is_a_hang() -> None:
    xml = (
        b'<testsuite name="pytest"><testcase classname="extra.test_slow" name="test_slow">'
        b'<failure message="Failed: Timeout (&gt;1.0s) from pytest-timeout.">...</failure>'
        b"</testcase></testsuite>"
    )
    (result,) = iter_junit(io.BytesIO(xml), "t.xml")
    assert result.status == "hung"


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    b"<testsuite><testcase name='&lol2;'/></testsuite>"
)
EXTERNAL = (
    b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b"<testsuite><testcase name='&x;'/></testsuite>"
)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (BILLION_LAUGHS, "refused unsafe XML (EntitiesForbidden)"),
        (EXTERNAL, "refused unsafe XML (EntitiesForbidden)"),
        (b'<testsuite><testcase name="a"><failure>', "not well-formed XML (no element found"),
        (bytes(range(256)) * 4, "not well-formed XML"),
        (b"", "not well-formed XML (no element found"),
        (
            b'<TestRun xmlns="http://microsoft.com/schemas/VisualStudio/TeamTest/2010"/>',
            "not JUnit XML (the root element is <TestRun>",
        ),
        (b"<assemblies><assembly/></assemblies>", "the root element is <assemblies>"),
    ],
)
def test_bad_xml_gives_one_sentence(data: bytes, message: str) -> None:
    with pytest.raises(JUnitError) as caught:
        list(iter_junit(io.BytesIO(data), "reports/x.xml"))
    assert message in str(caught.value)
    assert str(caught.value).startswith("reports/x.xml: ")
    assert "\n" not in str(caught.value)


def test_truncated_xml_keeps_the_cases_read_before_the_cut() -> None:
    data = (FIXTURES / "junit/pytest-junit.xml").read_bytes()
    kept: list[TestResult] = []
    with pytest.raises(JUnitError):
        for result in iter_junit(io.BytesIO(data[:1500]), "cut.xml"):
            kept.append(result)
    assert [r.test for r in kept[:2]] == [
        "tests.test_auth.test_login",
        "tests.test_auth.test_failed_login",
    ]


# ---------------------------------------------------------------------------- artifacts

PYTEST_XML = (FIXTURES / "junit/pytest-junit.xml").read_bytes()


def test_an_artifact_with_reports_and_other_files() -> None:
    data = zipped(
        {
            "reports/pytest.xml": PYTEST_XML,
            "reports/TEST-com.shop.FlakyTest.xml": (
                FIXTURES / "surefire/junit/TEST-com.shop.FlakyTest.xml"
            ).read_bytes(),
            "coverage/index.html": b"<html></html>",
            "reports/": b"",
        }
    )
    outcome = read_artifact(data, "test-results")
    assert outcome.problems == ()
    assert outcome.members_read == 2
    assert len(outcome.results) == 15
    assert outcome.results[0].source == "junit:test-results/reports/pytest.xml"


@pytest.mark.parametrize(
    ("members", "limits", "problem"),
    [
        (
            {"../../etc/cron.d/x.xml": PYTEST_XML},
            {},
            "file '../../etc/cron.d/x.xml': unsafe name (it would leave the folder); skipped.",
        ),
        ({"/abs/x.xml": PYTEST_XML}, {}, "file '/abs/x.xml': unsafe name"),
        ({"C:\\x.xml": PYTEST_XML}, {}, "unsafe name"),
        (
            {"bomb.xml": b"<testsuite>" + b" " * 2_000_000 + b"</testsuite>"},
            {"max_member_bytes": 1_000_000},
            "over the 1000000 byte limit (a zip bomb?); skipped.",
        ),
        (
            {"a.xml": PYTEST_XML, "b.xml": PYTEST_XML, "c.xml": PYTEST_XML},
            {"max_total_bytes": len(PYTEST_XML) * 2},
            "of reports decompressed; the remaining files were skipped.",
        ),
        ({"cut.xml": PYTEST_XML[:1500]}, {}, "cut.xml: not well-formed XML (no element found"),
        ({"junk.xml": bytes(range(256)) * 8}, {}, "junk.xml: not well-formed XML"),
        ({"lol.xml": BILLION_LAUGHS}, {}, "lol.xml: refused unsafe XML (EntitiesForbidden)."),
        ({"trx.xml": b"<TestRun/>"}, {}, "trx.xml: not JUnit XML"),
    ],
)
def test_hostile_members_give_one_message_and_the_rest_is_read(
    members: dict[str, bytes], limits: dict[str, int], problem: str
) -> None:
    data = zipped({**members, "good/pytest.xml": PYTEST_XML})
    outcome = read_artifact(data, "junit", **limits)  # type: ignore[arg-type]
    assert any(problem in p for p in outcome.problems), outcome.problems
    assert all(p.startswith("artifact 'junit'") for p in outcome.problems)
    assert {r.test for r in outcome.results} >= {"tests.test_auth.test_logout"} or limits


def test_a_member_that_lies_about_its_size_is_cut_while_reading() -> None:
    """A zip bomb's headers can claim a small size: the bytes are counted as they come."""
    big = b"<testsuite>" + b" " * 3_000_000 + b"</testsuite>"
    data = bytearray(zipped({"bomb.xml": big}))
    real = len(big).to_bytes(4, "little")
    fake = (1000).to_bytes(4, "little")
    data = data.replace(real, fake)  # both the local header and the central directory
    outcome = read_artifact(bytes(data), "bomb", max_member_bytes=100_000)
    assert len(outcome.problems) == 1
    assert "bomb.xml" in outcome.problems[0]
    assert "zip bomb" in outcome.problems[0] or "cannot be decompressed" in outcome.problems[0]


@pytest.mark.parametrize("data", [b"", b"not a zip", bytes(range(256)) * 100, b"PK\x03\x04junk"])
def test_not_a_zip(data: bytes) -> None:
    outcome = read_artifact(data, "reports")
    assert outcome.problems == ("artifact 'reports' is not a zip archive.",)
    assert outcome.results == ()


def test_member_names_are_never_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    read_artifact(zipped({"../escaped.xml": PYTEST_XML, "inside/ok.xml": PYTEST_XML}), "a")
    assert list(tmp_path.rglob("*")) == []
    assert not (tmp_path.parent / "escaped.xml").exists()


@pytest.mark.parametrize(
    ("name", "unsafe"),
    [
        ("reports/junit.xml", False),
        ("a..b.xml", False),
        ("../x.xml", True),
        ("a/../../x.xml", True),
        ("/etc/x.xml", True),
        ("\\\\server\\x.xml", True),
        ("c:x.xml", True),
        ("a\x00b.xml", True),
        ("", True),
    ],
)
def test_unsafe_member_names(name: str, unsafe: bool) -> None:
    assert unsafe_member_name(name) is unsafe


def test_the_results_cap_counts_what_it_drops() -> None:
    outcome = read_artifact(zipped({"a.xml": PYTEST_XML}), "a", cap=5)
    assert (len(outcome.results), outcome.dropped) == (5, 9)


# ---------------------------------------------------------------------------- merging


@pytest.mark.parametrize(
    ("log_id", "junit_id"),
    [
        ("tests/test_auth.py::TestSession::test_expiry", "tests.test_auth.TestSession.test_expiry"),
        ("tests/test_auth.py::test_names[bob smith]", "tests.test_auth.test_names[bob smith]"),
        ("src/auth.test.js > auth > login", "src/auth.test.js > auth > login"),
        ("Shop\\Tests\\CartTest::testTotal", "Shop.Tests.CartTest.testTotal"),
        ("CartTest#test_total", "CartTest.test_total"),
    ],
)
def test_loose_keys_meet(log_id: str, junit_id: str) -> None:
    assert loose_key(log_id) == loose_key(junit_id)


def test_the_artifact_wins_where_they_disagree() -> None:
    log = parse_log_file(FIXTURES / "pytest/pytest-verbose.log")
    report = junit("junit/pytest-junit.xml")
    merged = {r.test: r for r in merge_job_results(log, report)}
    assert len(merged) == len(log)  # every JUnit case met its log line
    logout = merged["tests/test_auth.py::test_logout"]
    assert (logout.framework, logout.status) == ("pytest", "failed")
    assert logout.source == "junit:pytest-junit.xml"
    assert logout.duration_s == pytest.approx(0.001)
    # a flaky test the report lists as passed stays flaky: the log saw the failed run
    assert merged["tests/test_auth.py::test_sometimes"].status == "flaky"


def test_an_artifact_contradiction_is_taken() -> None:
    log = [TestResult("pytest", "tests/a.py::test_x", "failed", line_number=3, message="boom")]
    report = [TestResult("pytest", "tests.a.test_x", "passed", source="junit:r/a.xml")]
    (merged,) = merge_job_results(log, report)
    assert (merged.test, merged.status, merged.message, merged.line_number) == (
        "tests/a.py::test_x",
        "passed",
        "",
        3,
    )


def test_unmatched_tests_from_either_side_are_kept() -> None:
    log = [TestResult("go", "example.com/a.TestOnlyInLog", "failed")]
    report = [TestResult("junit", "com.a.OnlyInReport.testX", "failed", source="junit:x")]
    merged = merge_job_results(log, report)
    assert [r.test for r in merged] == ["example.com/a.TestOnlyInLog", "com.a.OnlyInReport.testX"]


def test_jest_junit_names_meet_the_log_by_their_ending() -> None:
    log = parse_log_file(FIXTURES / "jest/jest-default.log")
    merged = merge_job_results(log, junit("junit/jest-junit.xml"))
    by_id = {r.test: r for r in merged}
    assert by_id["src/auth.test.js > auth > session > logout"].source == "junit:jest-junit.xml"
    assert "auth login" in by_id  # passing tests only the report lists


# ---------------------------------------------------------------------------- GitHub


def test_selecting_artifacts_by_glob() -> None:
    payload = {
        "total_count": 3,
        "artifacts": [
            {"id": 1, "name": "junit-linux", "size_in_bytes": 10, "expired": False},
            {"id": 2, "name": "junit-macos", "size_in_bytes": 10, "expired": True},
            {"id": 3, "name": "coverage", "size_in_bytes": 10, "expired": False},
            {"name": "no id"},
        ],
    }
    refs = artifacts_from_payload(payload)
    assert [r.id for r in refs] == [1, 2, 3]
    assert [r.name for r in select_artifacts(refs, "junit-*")] == ["junit-linux", "junit-macos"]
    assert select_artifacts(refs, "JUNIT-*") == []


@pytest.fixture
def served() -> Callable[..., tuple[FakeGitHub, int]]:
    servers: list[FakeGitHub] = []

    def start(**artifacts: tuple[bytes, bool]) -> tuple[FakeGitHub, int]:
        server = FakeGitHub(blob_host="localhost")
        server.required_token = "t0ken"
        repo = server.add_repo("octo/demo")
        workflow = repo.add_workflow("CI", ".github/workflows/ci.yml")
        run = repo.add_run(workflow, datetime(2026, 10, 1, 12, tzinfo=UTC))
        for name, (data, expired) in artifacts.items():
            run.add_artifact(name, data, expired=expired)
        server.start()
        servers.append(server)
        return server, run.id

    yield start
    for server in servers:
        server.stop()


def test_artifacts_endpoint_and_download_through_the_blob_host(served) -> None:  # type: ignore[no-untyped-def]
    data = zipped({"reports/pytest.xml": PYTEST_XML})
    server, run_id = served(**{"junit-linux": (data, False), "coverage": (b"PK", False)})
    session = requests.Session()
    session.headers["Authorization"] = "Bearer t0ken"
    listing = session.get(
        f"{server.url}/repos/octo/demo/actions/runs/{run_id}/artifacts", timeout=5
    )
    assert listing.status_code == 200
    payload = listing.json()
    assert payload["total_count"] == 2
    item = payload["artifacts"][0]
    assert set(item) >= {
        "id",
        "node_id",
        "name",
        "size_in_bytes",
        "url",
        "archive_download_url",
        "expired",
        "created_at",
        "expires_at",
        "updated_at",
        "workflow_run",
    }
    assert item["size_in_bytes"] == len(data)
    (ref,) = select_artifacts(artifacts_from_payload(payload), "junit-*")
    redirect = session.get(ref.archive_download_url, allow_redirects=False, timeout=5)
    assert redirect.status_code == 302
    location = redirect.headers["Location"]
    assert location.startswith(f"http://localhost:{server.port}/_signed/artifacts/")
    blob = requests.get(location, timeout=5)  # no token to the blob host
    assert blob.status_code == 200 and blob.content == data
    assert server.log_auth_leaks == []
    outcome = read_artifact(blob.content, ref.name)
    assert outcome.problems == () and len(outcome.results) == 14
    filtered = session.get(
        f"{server.url}/repos/octo/demo/actions/runs/{run_id}/artifacts",
        params={"name": "coverage"},
        timeout=5,
    )
    assert [a["name"] for a in filtered.json()["artifacts"]] == ["coverage"]


def test_an_expired_artifact_answers_410(served) -> None:  # type: ignore[no-untyped-def]
    server, run_id = served(**{"junit-old": (b"PK", True)})
    session = requests.Session()
    session.headers["Authorization"] = "Bearer t0ken"
    payload = session.get(
        f"{server.url}/repos/octo/demo/actions/runs/{run_id}/artifacts", timeout=5
    ).json()
    (ref,) = artifacts_from_payload(payload)
    assert ref.expired
    gone = session.get(ref.archive_download_url, allow_redirects=False, timeout=5)
    assert gone.status_code == 410


def test_a_signed_artifact_url_needs_its_signature(served) -> None:  # type: ignore[no-untyped-def]
    server, run_id = served(**{"junit": (b"PK", False)})
    session = requests.Session()
    session.headers["Authorization"] = "Bearer t0ken"
    url = session.get(
        f"{server.url}/repos/octo/demo/actions/runs/{run_id}/artifacts", timeout=5
    ).json()["artifacts"][0]["archive_download_url"]
    location = session.get(url, allow_redirects=False, timeout=5).headers["Location"]
    forged = location.split("?")[0] + "?sig=forged"
    assert requests.get(forged, timeout=5).status_code == 403


def test_artifact_ref_is_frozen() -> None:
    ref = ArtifactRef(1, "a", 2, False, "u")
    with pytest.raises(AttributeError):
        ref.name = "b"  # type: ignore[misc]
