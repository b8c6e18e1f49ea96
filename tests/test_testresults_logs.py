"""Test results from real runner outputs (tests/fixtures/testresults, see its README)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from multivac.testresults import (
    ParserSet,
    TestCollector,
    TestResult,
    builtin_parsers,
    load_parsers,
    parse_log_chunks,
    parse_log_file,
    scan_lines,
)
from multivac.testresults.model import merge_status

FIXTURES = Path(__file__).parent / "fixtures" / "testresults"
REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "multivac-failures"

P = "tests/test_auth.py::"
U = "shop.test_cart."
GO = "example.com/shop/auth."
# fixture -> every result that is not "passed" (status, test id), and how many passed
EXPECTED: dict[str, tuple[list[tuple[str, str]], int]] = {
    "pytest/pytest-default.log": (
        [
            ("failed", P + "test_logout"),
            ("failed", P + "test_names[carol]"),
            ("failed", P + "TestSession::test_expiry"),
            ("failed", P + "test_sometimes"),
            ("failed", P + "test_setup_error"),
            ("failed", P + "test_teardown_error"),
        ],
        0,
    ),
    "pytest/pytest-verbose.log": (
        [
            ("failed", P + "test_logout"),
            ("skipped", P + "test_ldap"),
            ("failed", P + "test_names[carol]"),
            ("failed", P + "test_setup_error"),
            ("failed", P + "test_teardown_error"),
            ("failed", P + "TestSession::test_expiry"),
            ("skipped", P + "test_known_bug"),
            ("flaky", P + "test_sometimes"),
        ],
        5,
    ),
    "pytest/pytest-xdist.log": (
        [
            ("failed", P + "test_logout"),
            ("failed", P + "test_names[carol]"),
            ("failed", P + "test_setup_error"),
            ("failed", P + "test_teardown_error"),
            ("skipped", P + "test_ldap"),
            ("failed", P + "TestSession::test_expiry"),
            ("skipped", P + "test_known_bug"),
            ("failed", P + "test_sometimes"),
            ("failed", "tests/test_crash.py::test_worker_crash"),
        ],
        6,
    ),
    "pytest/pytest-xdist-killed.log": (
        [
            ("failed", P + "test_logout"),
            ("failed", P + "test_names[carol]"),
            ("failed", P + "test_setup_error"),
            ("failed", P + "test_teardown_error"),
            ("skipped", P + "test_ldap"),
            ("failed", P + "TestSession::test_expiry"),
            ("skipped", P + "test_known_bug"),
            ("failed", P + "test_sometimes"),
            ("failed", "tests/test_crash.py::test_worker_crash"),
        ],
        5,
    ),
    "pytest/pytest-timeout.log": ([("hung", "extra/test_slow.py::test_slow")], 0),
    "pytest/pytest-collection-error.log": ([("failed", "extra/test_broken.py")], 0),
    "unittest/unittest-default.log": (
        [
            ("failed", U + "BrokenSetupTest.test_anything"),
            ("failed", U + "CartTest.test_discount"),
            ("failed", U + "CartTest.test_sizes (size=3)"),
            ("failed", U + "CartTest.test_total"),
        ],
        0,
    ),
    "unittest/unittest-verbose.log": (
        [
            ("failed", U + "BrokenSetupTest.test_anything"),
            ("failed", U + "CartTest.test_discount"),
            ("skipped", U + "CartTest.test_pay"),
            ("skipped", U + "CartTest.test_rounding"),
            ("failed", U + "CartTest.test_sizes (size=3)"),
            ("failed", U + "CartTest.test_total"),
        ],
        1,
    ),
    "unittest/unittest-py310-verbose.log": (
        [
            ("failed", U + "BrokenSetupTest.test_anything"),
            ("failed", U + "CartTest.test_discount"),
            ("skipped", U + "CartTest.test_pay"),
            ("skipped", U + "CartTest.test_rounding"),
            ("failed", U + "CartTest.test_total"),
            ("failed", U + "CartTest.test_sizes (size=3)"),
        ],
        1,
    ),
    "go/go-default.log": (
        [
            ("failed", GO + "TestLogout"),
            ("failed", GO + "TestNames"),
            ("failed", GO + "TestNames/carol"),
        ],
        0,
    ),
    "go/go-verbose.log": (
        [
            ("failed", GO + "TestLogout"),
            ("skipped", GO + "TestLDAP"),
            ("failed", GO + "TestNames"),
            ("failed", GO + "TestNames/carol"),
        ],
        4,
    ),
    "go/go-timeout.log": ([("hung", "example.com/shop/slow.TestSlow")], 1),
    "go/go-timeout-go1.20.log": ([("hung", "example.com/shop/slow.TestSlow")], 1),
    "go/go-timeout-default.log": (
        [
            ("failed", GO + "TestLogout"),
            ("failed", GO + "TestNames"),
            ("failed", GO + "TestNames/carol"),
            ("hung", "example.com/shop/slow.TestSlow"),
        ],
        0,
    ),
    "cargo/cargo-test.log": (
        [
            ("skipped", "shop::tests::ldap"),
            ("failed", "shop::tests::logout"),
            ("failed", "shop::tests::cart::discount"),
            ("failed", "api::api_timeout"),
        ],
        4,
    ),
    "nextest/nextest.log": (
        [
            ("failed", "shop::tests::logout"),
            ("failed", "shop::tests::cart::discount"),
            ("flaky", "shop::tests::sometimes"),
            ("failed", "api::api_crash"),
            ("hung", "api::api_slow"),
        ],
        4,
    ),
    "jest/jest-default.log": (
        [
            ("failed", "src/auth.test.js > auth > session > logout"),
            ("failed", "src/auth.test.js > top level check"),
            ("failed", "src/broken.test.js"),
        ],
        0,
    ),
    "jest/jest-verbose.log": (
        [
            ("skipped", "src/auth.test.js > password reset"),
            ("skipped", "src/auth.test.js > ldap"),
            ("failed", "src/auth.test.js > auth > session > logout"),
            ("failed", "src/auth.test.js > top level check"),
            ("failed", "src/broken.test.js"),
        ],
        3,
    ),
    "vitest/vitest-default.log": (
        [
            ("failed", "src/broken.test.js"),
            ("failed", "src/auth.test.js > auth > session > logout"),
            ("failed", "src/auth.test.js > top level check"),
        ],
        0,
    ),
    "vitest/vitest-verbose.log": (
        [
            ("failed", "src/auth.test.js > auth > session > logout"),
            ("skipped", "src/auth.test.js > auth > session > ldap"),
            ("skipped", "src/auth.test.js > auth > password reset"),
            ("failed", "src/auth.test.js > top level check"),
            ("failed", "src/broken.test.js"),
        ],
        3,
    ),
    "mocha/mocha-spec.log": (
        [
            ("failed", "logout"),
            ("failed", '"before all" hook for "total"'),
            ("failed", "times out"),
        ],
        0,
    ),
    "mocha/mocha-tap.log": (
        [
            ("failed", "auth session logout"),
            ("skipped", "auth session ldap"),
            ("failed", 'cart "before all" hook for "total"'),
            ("failed", "slow times out"),
        ],
        2,
    ),
    "surefire/surefire-mvn.log": (
        [
            ("failed", "com.shop.FlakyTest.testSometimes"),
            ("failed", "com.shop.CartTest.testTotal"),
            ("failed", "com.shop.CartTest.testDiscount"),
        ],
        0,
    ),
    "surefire/surefire-mvn-rerun.log": (
        [
            ("flaky", "com.shop.FlakyTest.testSometimes"),
            ("failed", "com.shop.CartTest.testTotal"),
            ("failed", "com.shop.CartTest.testDiscount"),
        ],
        0,
    ),
    "surefire/surefire3-excerpt.log": (
        [("failed", "com.shop.CartTest.testTotal"), ("failed", "com.shop.CartTest.testDiscount")],
        0,
    ),
    "gradle/gradle-test.log": (
        [
            ("skipped", "com.shop.CartTest.testPay"),
            ("failed", "com.shop.CartTest.testTotal"),
            ("failed", "com.shop.CartTest.testDiscount"),
        ],
        2,
    ),
    "ctest/ctest-default.log": (
        [
            ("failed", "check-dependencies"),
            ("failed", "crash-test"),
            ("hung", "slow-test"),
            ("failed", "missing-binary"),
        ],
        2,
    ),
    "ctest/ctest-output-on-failure.log": (
        [
            ("failed", "check-dependencies"),
            ("failed", "crash-test"),
            ("hung", "slow-test"),
            ("failed", "missing-binary"),
        ],
        2,
    ),
    "rspec/rspec-default.log": (
        [
            ("failed", "spec/auth_spec.rb > Auth raises"),
            ("failed", "spec/auth_spec.rb > Auth with a session logs out"),
        ],
        0,
    ),
    "rspec/rspec-documentation.log": (
        [
            ("failed", "spec/auth_spec.rb > Auth raises"),
            ("failed", "spec/auth_spec.rb > Auth with a session logs out"),
        ],
        0,
    ),
    "minitest/minitest-default.log": (
        [("failed", "CartTest#test_discount"), ("failed", "CartTest#test_total")],
        0,
    ),
    "minitest/minitest-verbose.log": (
        [
            ("failed", "CartTest#test_discount"),
            ("failed", "CartTest#test_total"),
            ("skipped", "CartTest#test_pay"),
        ],
        1,
    ),
    "phpunit/phpunit-default.log": (
        [
            ("failed", "Shop\\Tests\\CartTest::testDiscount"),
            ("failed", "Shop\\Tests\\CartTest::testTotal"),
            ("failed", 'Shop\\Tests\\CartTest::testSizes with data set "large"'),
        ],
        0,
    ),
    "dotnet/dotnet-test.log": (
        [("failed", "Shop.Tests.CartTest.Total"), ("skipped", "Shop.Tests.CartTest.Pay")],
        2,
    ),
    "tap/prove-default.log": ([("failed", "t/cart.t")], 0),
    "tap/prove-verbose.log": (
        [
            ("failed", "t/cart.t > total"),
            ("skipped", "t/cart.t > 4"),
            ("skipped", "t/cart.t > rounding"),
        ],
        3,
    ),
    "tap/bats-tap.log": (
        [("failed", "logout closes the session"), ("skipped", "ldap")],
        2,
    ),
    "tap/bats-pretty.log": (
        [("failed", "logout closes the session"), ("skipped", "ldap")],
        2,
    ),
}

# the sample test whose name says "failed" but which passed, where the output shows it
NAMED_FAILED_BUT_PASSED = {
    "pytest/pytest-verbose.log": P + "test_failed_login",
    "pytest/pytest-xdist.log": P + "test_failed_login",
    "go/go-verbose.log": GO + "TestFailedLogin",
    "cargo/cargo-test.log": "shop::tests::failed_login",
    "nextest/nextest.log": "shop::tests::failed_login",
    "jest/jest-verbose.log": "src/auth.test.js > failed login is logged",
    "vitest/vitest-verbose.log": "src/auth.test.js > auth > failed login is logged",
    "mocha/mocha-tap.log": "auth failed login is logged",
    "gradle/gradle-test.log": "com.shop.CartTest.testFailedLogin",
    "ctest/ctest-default.log": "failed-login-test",
    "dotnet/dotnet-test.log": "Shop.Tests.CartTest.FailedLogin",
    "tap/bats-tap.log": "failed login is logged",
    "tap/prove-verbose.log": "t/cart.t > failed login is logged",
}


@pytest.fixture(scope="module")
def parsers() -> ParserSet:
    return builtin_parsers()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_gives_the_results_its_format_implies(name: str, parsers: ParserSet) -> None:
    results = parse_log_file(FIXTURES / name, parsers)
    not_passed = [(r.status, r.test) for r in results if r.status != "passed"]
    want, passed = EXPECTED[name]
    assert sorted(not_passed) == sorted(want)
    assert sum(r.status == "passed" for r in results) == passed
    assert len({r.key for r in results}) == len(results), "a test reported twice"


@pytest.mark.parametrize("name", sorted(NAMED_FAILED_BUT_PASSED))
def test_a_test_named_failed_that_passed_counts_as_passed(name: str, parsers: ParserSet) -> None:
    by_id = {r.test: r for r in parse_log_file(FIXTURES / name, parsers)}
    assert by_id[NAMED_FAILED_BUT_PASSED[name]].status == "passed"


@pytest.mark.parametrize(
    "line",
    [
        "FAILED login attempts are logged",
        "FAILED (failures=2, errors=2, skipped=1, expected failures=1)",
        "    auth_test.go:15: --- FAIL: is quoted here but nothing failed",
        "      FAIL src/other.test.js is quoted here",
        "FAIL: payment gateway answered 502, retrying",
        "[ERROR] Tests run: 1, Failures: 1 is quoted here",
        "# not ok 9 - is quoted here",
        "echo 'FAILED tests/test_auth.py::test_logout'",
        "grep -c FAILED results.txt",
        "The following tests FAILED: none",
        "ok  \texample.com/shop/slow\t60.027s",
        "Tests: 7, Assertions: 5, Errors: 1, Failures: 2, Skipped: 1.",
        "test result: FAILED. 3 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out",
        "5 tests completed, 2 failed, 1 skipped",
        "  1) Failure: is quoted here",
    ],
)
def test_a_line_quoting_a_failure_marker_is_no_result(line: str, parsers: ParserSet) -> None:
    collector = TestCollector(parsers)
    collector.feed(line, 1)
    assert collector.results() == []


def _github_log(text: str) -> bytes:
    """The fixture as GitHub serves it: BOM, a timestamp per line, CRLF."""
    lines = [
        f"2026-10-01T12:00:{i % 60:02d}.1234567Z {line}" for i, line in enumerate(text.split("\n"))
    ]
    return b"\xef\xbb\xbf" + "\r\n".join(lines).encode("utf-8")


@pytest.mark.parametrize(
    "name", ["pytest/pytest-verbose.log", "go/go-verbose.log", "vitest/vitest-verbose.log"]
)
def test_timestamps_crlf_and_bom_change_nothing(name: str, parsers: ParserSet) -> None:
    plain = parse_log_file(FIXTURES / name, parsers)
    raw = _github_log((FIXTURES / name).read_text(encoding="utf-8"))
    served = parse_log_chunks([raw[i : i + 777] for i in range(0, len(raw), 777)], parsers)
    assert served.results() == plain


@pytest.mark.parametrize("name", ["pytest/pytest-xdist.log", "nextest/nextest.log"])
def test_feeding_every_line_equals_feeding_the_prefiltered_ones(
    name: str, parsers: ParserSet
) -> None:
    """The scan may pass any superset of the lines the patterns match."""
    every = TestCollector(parsers)
    for number, line in enumerate((FIXTURES / name).read_text().splitlines(), 1):
        every.feed(line, number)
    assert every.results() == parse_log_file(FIXTURES / name, parsers)


def test_collector_patterns_are_re2_and_few(parsers: ParserSet) -> None:
    import re2

    collector = TestCollector(parsers)
    assert 0 < len(collector.patterns) < 150
    for pattern in collector.patterns:
        re2.compile(pattern)


def test_results_carry_line_suite_duration_and_message(parsers: ParserSet) -> None:
    results = {r.test: r for r in parse_log_file(FIXTURES / "pytest/pytest-default.log", parsers)}
    logout = results[P + "test_logout"]
    assert logout == TestResult(
        framework="pytest",
        test=P + "test_logout",
        status="failed",
        suite="tests/test_auth.py",
        configuration=None,
        line_number=74,
        duration_s=None,
        message="AssertionError: session still open",
    )
    go = {r.test: r for r in parse_log_file(FIXTURES / "go/go-timeout-go1.20.log", parsers)}
    assert go["example.com/shop/slow.TestSlow"].duration_s == 3.0
    assert go["example.com/shop/slow.TestSlow"].suite == "example.com/shop/slow"


def test_message_is_one_line_of_at_most_500_characters(parsers: ParserSet) -> None:
    collector = TestCollector(parsers)
    collector.feed("FAILED tests/a.py::test_x - " + "boom " * 400, 1)
    (result,) = collector.results()
    assert len(result.message) == 500 and "\n" not in result.message


@pytest.mark.parametrize(
    ("old", "new", "merged"),
    [
        ("failed", "passed", "flaky"),
        ("hung", "passed", "flaky"),
        ("passed", "failed", "failed"),
        ("failed", "hung", "hung"),
        ("hung", "failed", "hung"),
        ("skipped", "failed", "failed"),
        ("passed", "skipped", "passed"),
        ("flaky", "failed", "flaky"),
        ("passed", "passed", "passed"),
    ],
)
def test_merge_status(old: str, new: str, merged: str) -> None:
    assert merge_status(old, new) == merged


def test_a_test_that_fails_then_passes_in_one_log_is_flaky(parsers: ParserSet) -> None:
    collector = TestCollector(parsers)
    collector.feed("--- FAIL: TestRetry (0.01s)", 1)
    collector.feed("FAIL\texample.com/a\t0.1s", 2)
    collector.feed("--- PASS: TestRetry (0.01s)", 3)
    collector.feed("ok  \texample.com/a\t0.1s", 4)
    (result,) = collector.results()
    assert (result.test, result.status) == ("example.com/a.TestRetry", "flaky")
    assert result.message == "--- FAIL: TestRetry (0.01s)"


def test_a_summary_repeating_results_never_makes_a_test_flaky(parsers: ParserSet) -> None:
    """pytest -rA lists a test with a teardown error under PASSED and under ERROR."""
    results = {r.test: r for r in parse_log_file(FIXTURES / "pytest/pytest-verbose.log", parsers)}
    assert results[P + "test_teardown_error"].status == "failed"
    assert results[P + "test_teardown_error"].message == "RuntimeError: connection leaked"


def test_a_huge_log_keeps_memory_bounded_and_counts_the_rest(parsers: ParserSet) -> None:
    """300,000 passing lines and 30 failures with a cap of 1,000 (bench_testresults.py
    measures a million lines and the collector's memory)."""

    def chunks() -> Iterator[bytes]:
        for block in range(30):
            lines = [f"tests/t.py::test_{block}_{i} PASSED [ 50%]" for i in range(10_000)]
            if block == 20:
                lines += [f"FAILED tests/t.py::test_bad_{i} - boom" for i in range(30)]
            yield ("\n".join(lines) + "\n").encode()

    collector = parse_log_chunks(chunks(), parsers, cap=1000)
    results = collector.results()
    # passing results take at most half the cap: failures are never crowded out
    assert len(results) == 530
    assert sum(r.status == "failed" for r in results) == 30
    summary = collector.summary()
    assert (summary.failed, summary.passed) == (30, 500)
    assert summary.truncated and summary.dropped == 300_000 - 500
    assert collector.dropped == {"passed": 300_000 - 500}


def test_a_user_rules_file_adds_its_own_parsers(tmp_path: Path) -> None:
    rules = tmp_path / "ours.yaml"
    rules.write_text(
        "tests:\n"
        "  - id: our-runner\n"
        "    framework: ourtest\n"
        "    patterns: ['^CASE (?P<test>\\S+) (?P<status>BROKE|OK) on (?P<configuration>\\w+)$']\n"
        "    statuses: {BROKE: failed, OK: passed}\n"
        "    examples:\n"
        "      match: [{line: 'CASE db.open BROKE on sqlite', test: db.open, status: failed}]\n"
        "      no_match: ['CASE db.open was fine']\n"
        "  - id: pytest-progress\n"
        "    disabled: true\n"
    )
    parsers = load_parsers([str(rules)])
    assert "ourtest" in parsers.frameworks()
    assert "pytest-progress" not in {p.id for p in parsers.parsers}
    collector = TestCollector(parsers)
    scan_lines([b"CASE db.open BROKE on sqlite\nCASE db.open OK on postgres\n"], [collector])
    assert [(r.test, r.status, r.configuration) for r in collector.results()] == [
        ("db.open", "failed", "sqlite"),
        ("db.open", "passed", "postgres"),
    ]


# ---------------------------------------------------------------------------- tarantool

REALDATA_EXPECTED: dict[str, list[tuple[str, str, str | None]]] = {
    "testrun_test_failed.log": [
        (
            "failed",
            "vinyl-luatest/gh_6568_replica_initial_join_removal_of_compacted_run_files_test.lua",
            None,
        )
    ],
    "testrun_test_hung.log": [
        ("passed", "vinyl/errinj_gc.test.lua", None),
        ("hung", "replication-luatest/gh_6842_qsync_applier_order_test.lua", None),
    ],
    "testrun_address_already_in_use.log": [("failed", "box-py/bootstrap.test.py", None)],
    "testrun_internal.log": [
        ("failed", "replication/replica_rejoin.test.lua", "memtx"),
        ("failed", "replication/gh-5426-election-on-off.test.lua", None),
        ("failed", "replication/gh-3711-misc-no-restart-on-same-configuration.test.lua", None),
        ("failed", "replication/skip_conflict_row.test.lua", "memtx"),
        ("failed", "replication/election_qsync.test.lua", "vinyl"),
        ("failed", "replication/box_set_replication_stress.test.lua", "vinyl"),
        ("failed", "replication/gc.test.lua", "vinyl"),
        ("failed", "replication/gh-5287-boot-anon.test.lua", "memtx"),
        ("failed", "replication/qsync_advanced.test.lua", "vinyl"),
        ("failed", "replication/qsync_basic.test.lua", "vinyl"),
        ("failed", "replication/gh-5445-leader-inconsistency.test.lua", None),
        ("failed", "replication/sync.test.lua", "vinyl"),
        ("failed", "replication/replica_rejoin.test.lua", "vinyl"),
        ("failed", "replication/replicaset_ro_mostly.test.lua", "vinyl"),
        ("failed", "replication/gc.test.lua", "memtx"),
    ],
    "integration_vshard_test_failed.log": [
        ("passed", "failover/cluster_changes.test.lua", None),
        ("failed", "failover/failover.test.lua", None),
    ],
}


@pytest.mark.skipif(not REALDATA.is_dir(), reason="../shared/realdata is not present")
@pytest.mark.parametrize("name", sorted(REALDATA_EXPECTED))
def test_tarantool_test_run_excerpts(name: str) -> None:
    results = parse_log_file(REALDATA / name, load_parsers(["tarantool"]))
    got = [(r.status, r.test, r.configuration) for r in results if r.framework == "test-run"]
    assert got == REALDATA_EXPECTED[name]


@pytest.mark.skipif(not REALDATA.is_dir(), reason="../shared/realdata is not present")
def test_test_run_needs_the_tarantool_pack() -> None:
    assert parse_log_file(REALDATA / "testrun_internal.log") == []


@pytest.mark.parametrize(
    ("lines", "want"),
    [
        (  # a flaky test: failed, rerun, passed
            [
                "[001] app/fiber.test.lua                   memtx           [ fail ]",
                '[001] Test "app/fiber.test.lua", conf: "memtx"',
                "[001] \tfailed, rerunning ...",
                "[001] app/fiber.test.lua                   memtx           [ pass ]",
            ],
            [("flaky", "app/fiber.test.lua", "memtx")],
        ),
        (  # the test-run timeout on the test's own line
            [
                "[004] app/fiber.test.lua                   vinyl   "
                "Test timeout of 110 secs reached\t[ fail ]",
            ],
            [("hung", "app/fiber.test.lua", "vinyl")],
        ),
        (  # the timeout after the test's output, for the held test
            [
                "[004] app/fiber.test.lua                   vinyl",
                "[004] some output of the test",
                "[004] Test timeout of 110 secs reached\t[ fail ]",
            ],
            [("hung", "app/fiber.test.lua", "vinyl")],
        ),
        (  # a worker that started a test and never reported it
            ["[007] box/tx.test.lua                          memtx"],
            [("failed", "box/tx.test.lua", "memtx")],
        ),
        (  # the flaked list, with an entry wrapped over two lines (as yaml.safe_dump does)
            [
                "Flaked tasks:",
                "- [replication/gh-5287-boot-anon.test.lua, memtx]",
                "# logfile:        /tmp/t/log/003_replication.log",
                "# reproduce file: /tmp/t/reproduce/003_replication.list.yaml",
                "- [replication-luatest/gh_6842_qsync_applier_order_test_long_name.lua,",
                "  vinyl]",
            ],
            [
                ("flaky", "replication/gh-5287-boot-anon.test.lua", "memtx"),
                (
                    "flaky",
                    "replication-luatest/gh_6842_qsync_applier_order_test_long_name.lua",
                    "vinyl",
                ),
            ],
        ),
        (  # a list entry outside any list is no result
            ["- [replication/gc.test.lua, vinyl]"],
            [],
        ),
    ],
)
def test_test_run_lines(lines: list[str], want: list[tuple[str, str, str | None]]) -> None:
    collector = TestCollector(load_parsers(["tarantool"]))
    for number, line in enumerate(lines, 1):
        collector.feed(line, number)
    got = [(r.status, r.test, r.configuration) for r in collector.results()]
    assert got == want


def test_go_results_without_their_package_line_keep_the_bare_name(parsers: ParserSet) -> None:
    collector = TestCollector(parsers)
    collector.feed("--- FAIL: TestCut (0.00s)", 1)
    assert [r.test for r in collector.results()] == ["TestCut"]


def test_a_block_only_counts_right_after_its_header(parsers: ParserSet) -> None:
    collector = TestCollector(parsers)
    collector.feed("The following tests FAILED:", 10)
    collector.feed("\t  2 - first (Failed)", 11)
    collector.feed("\t  3 - second (Timeout)", 12)
    collector.feed("\t  4 - too-late (Failed)", 20)  # the block ended at line 13
    assert [(r.test, r.status) for r in collector.results()] == [
        ("first", "failed"),
        ("second", "hung"),
    ]


def test_summary_counts_by_status(parsers: ParserSet) -> None:
    collector = parse_log_chunks([(FIXTURES / "pytest/pytest-verbose.log").read_bytes()], parsers)
    summary = collector.summary()
    assert (summary.passed, summary.failed, summary.skipped, summary.flaky, summary.hung) == (
        5,
        5,
        2,
        1,
        0,
    )
    assert not summary.truncated


def test_every_fixture_log_has_an_expectation() -> None:
    logs = {str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("*/*.log")}
    untested = logs - set(EXPECTED) - {"phpunit/phpunit-testdox.log"}
    assert not untested, f"fixtures without expectations: {sorted(untested)}"
    assert all(re.match(r"^[a-z]+/[\w.-]+\.log$", name) for name in EXPECTED)


PYTABLES = REALDATA.parent / "ghalogs-pytables-run200" / "log.tar.gz"
TEST_LOGS = ("testrun_", "integration_", "ctest_", "tap_")


@pytest.mark.skipif(not REALDATA.is_dir(), reason="../shared/realdata is not present")
def test_failure_logs_of_other_kinds_hold_no_test_results() -> None:
    parsers = load_parsers(["tarantool"])
    others = [p for p in sorted(REALDATA.glob("*.log")) if not p.name.startswith(TEST_LOGS)]
    assert len(others) > 15
    for path in others:
        assert parse_log_file(path, parsers) == [], path.name


@pytest.mark.skipif(not PYTABLES.is_file(), reason="../shared/realdata is not present")
def test_a_whole_real_run_without_test_ids_gives_no_results() -> None:
    """pytables prints unittest's dots (no test ids) amid compiler and pip noise: a
    `✓`, `ok`, `PASSED` or `Running` there is no test result."""
    import tarfile

    parsers = load_parsers(["tarantool"])
    seen = 0
    with tarfile.open(PYTABLES) as archive:
        for member in archive.getmembers():
            handle = archive.extractfile(member) if member.isfile() else None
            if handle is None or not member.name.endswith(".txt"):
                continue
            collector = parse_log_chunks(iter(lambda h=handle: h.read(1 << 20), b""), parsers)
            assert collector.results() == [], member.name
            seen += 1
    assert seen > 100
