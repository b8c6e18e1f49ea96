"""The `tests:` parser definitions: the shipped ones, validation, loading."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import re2

from multivac.classify import check_rules_file, load_catalog
from multivac.testresults import (
    TestCollector,
    TestParseError,
    builtin_parsers,
    check_tests_file,
    check_tests_text,
    load_parsers,
)
from multivac.testresults.parsers import loosen, parse_duration, prefilter_patterns

SHIPPED = sorted(
    p.name
    for p in resources.files("multivac.testresults").joinpath("parsers").iterdir()
    if p.name.endswith(".yaml")
)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_parsers_and_their_examples_are_valid(name: str) -> None:
    text = resources.files("multivac.testresults").joinpath(f"parsers/{name}").read_text("utf-8")
    assert check_tests_text(text, name) == []


def test_the_tarantool_pack_tests_section_is_valid() -> None:
    assert check_tests_file("tarantool") == []
    assert check_rules_file("tarantool") == []  # the rules still load beside it
    assert load_catalog(["tarantool"]).rules


def test_every_shipped_parser_has_matching_and_near_miss_examples() -> None:
    for parser in load_parsers(["tarantool"]).parsers:
        assert parser.match_examples, parser.id
        assert parser.no_match_examples, parser.id


def test_frameworks_covered() -> None:
    frameworks = set(load_parsers(["tarantool"]).frameworks())
    assert frameworks >= {
        "pytest",
        "unittest",
        "go",
        "jest",
        "vitest",
        "mocha",
        "cargo",
        "nextest",
        "surefire",
        "gradle",
        "ctest",
        "rspec",
        "minitest",
        "phpunit",
        "dotnet",
        "tap",
        "test-run",
    }


GOOD = """
tests:
  - id: ours
    framework: ourtest
    patterns: ['^CASE (?P<test>\\S+) BROKE$']
    status: failed
    examples:
      match: ['CASE a.b BROKE']
      no_match: ['CASE a.b OK']
"""


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("tests: [oops", "not valid YAML at line 1"),
        ("tests: {a: 1}", "expected a list of parsers under 'tests:'"),
        ("other: []", "unknown top-level keys: other"),
        ("tests:\n  - 3", "expected a mapping with id, framework and patterns"),
        (GOOD.replace("framework: ourtest", "framework: Our Test"), "'framework' must be"),
        (GOOD.replace("status: failed", "status: broken"), "'status' must be one of"),
        (GOOD.replace("status: failed", "flavour: x\n    status: failed"), "unknown keys: flavour"),
        (GOOD.replace("^CASE (?P<test>", "^CASE (?<=x)(?P<test>"), "not a valid RE2 expression"),
        (GOOD.replace("['CASE a.b BROKE']", "['CASE a.b broke']"), "example does not match"),
        (GOOD.replace("['CASE a.b OK']", "['CASE x BROKE']"), "near-miss example matches"),
        (
            GOOD.replace("['CASE a.b BROKE']", "[{line: 'CASE a.b BROKE', test: a.c}]"),
            "gives test 'a.b', not 'a.c'",
        ),
        (GOOD + GOOD.split("tests:\n", 1)[1], "duplicate id in this file"),
        (GOOD.replace("status: failed", "sets: [nothing]"), "'sets' names 'nothing'"),
        (
            GOOD.replace("status: failed", "status: failed\n    hold: x\n    release: y"),
            "'hold' and 'release' exclude each other",
        ),
        (
            GOOD.replace("status: failed", "status: failed\n    block: {start: 'a', within: 0}"),
            "'block.within' must be a number of lines",
        ),
        (
            GOOD.replace("status: failed", "status: failed\n    prefilter: ['^NOPE']"),
            "'prefilter' misses the example",
        ),
        (GOOD.replace("status: failed", "statuses: {BROKE: bad}"), "not one of failed"),
        (GOOD.replace("    status: failed\n", ""), "needs a 'status'"),
    ],
)
def test_problems_are_named(text: str, problem: str, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    problems = check_tests_file(str(path))
    assert any(problem in p for p in problems), problems
    assert all(p.startswith(str(path)) for p in problems)


def test_a_good_file_has_no_problems(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD)
    assert check_tests_file(str(path)) == []


def test_a_rules_file_without_tests_has_no_test_problems(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - id: x\n    type: y\n    patterns: ['z']\n")
    assert check_tests_file(str(path)) == []
    assert len(load_parsers([str(path)])) == len(builtin_parsers())


def test_loading_a_bad_file_stops_with_its_first_problem(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD.replace("status: failed", "status: broken"))
    with pytest.raises(TestParseError) as caught:
        load_parsers([str(path)])
    assert "'status' must be one of" in str(caught.value)
    assert caught.value.exit_code == 2


def test_an_unknown_source_is_one_sentence() -> None:
    with pytest.raises(TestParseError, match=r"neither a rules file nor a shipped pack"):
        load_parsers(["no-such-pack"])
    assert check_tests_file("no-such-pack")[0].startswith("--rules 'no-such-pack'")


def test_a_later_file_overrides_by_id(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "tests:\n  - id: pytest-summary\n    framework: pytest\n"
        "    patterns: ['^BROKEN (?P<test>\\S+)$']\n    status: failed\n"
    )
    parsers = load_parsers([str(path)])
    collector = TestCollector(parsers)
    collector.feed("BROKEN tests/a.py::test_x", 1)
    collector.feed("FAILED tests/a.py::test_y - the built-in summary parser is replaced", 2)
    assert [r.test for r in collector.results()] == ["tests/a.py::test_x"]


@pytest.mark.parametrize(
    ("text", "unit", "seconds"),
    [
        ("0.01s", "s", 0.01),
        ("(16 ms)", "s", 0.016),
        ("12ms", "s", 0.012),
        ("10m0s", "s", 600.0),
        ("1h2m3.5s", "s", 3723.5),
        ("0.05 sec", "s", 0.05),
        ("   1.000s", "s", 1.0),
        ("< 1 ms", "s", 0.001),
        ("0,019 s", "s", 0.019),
        ("250", "ms", 0.25),
        ("", "s", None),
        (None, "s", None),
        ("fast", "s", None),
    ],
)
def test_parse_duration(text: str | None, unit: str, seconds: float | None) -> None:
    assert parse_duration(text, unit) == (None if seconds is None else pytest.approx(seconds))


@pytest.mark.parametrize(
    ("pattern", "loose"),
    [
        ("^FAILED (?P<test>\\S+)$", "FAILED (?:\\S+)"),
        ("^\\s*--- FAIL: (?P<test>\\S+)", "--- FAIL: (?:\\S+)"),
        ("costs \\$$", "costs \\$"),
        ("[$^]x", "[$^]x"),
    ],
)
def test_loosen(pattern: str, loose: str) -> None:
    assert loosen(pattern) == loose


def test_prefilter_patterns_find_every_match_example() -> None:
    """The loose patterns given to the classification prefilter are supersets."""
    for parser in load_parsers(["tarantool"]).parsers:
        loose = [re2.compile(p) for p in prefilter_patterns(parser)]
        for example in parser.match_examples:
            assert any(p.search(example.line) for p in loose), (parser.id, example.line)
