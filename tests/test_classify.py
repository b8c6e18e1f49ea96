"""Log classification: the catalog, where the job failed, messy bytes, user rules."""

from __future__ import annotations

import json
import os
import re
import tarfile
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multivac.classify import (
    Rule,
    check_rules_file,
    classify_annotations,
    classify_file,
    classify_log,
    classify_text,
    load_catalog,
)
from multivac.errors import RuleError
from multivac.signature import signature
from tests.conftest import Invoke

GENERIC_TYPES = {
    "test_failure",
    "compile_error",
    "lint_error",
    "dependency_error",
    "network_error",
    "checkout_error",
    "docker_error",
    "out_of_disk",
    "out_of_memory",
    "crash",
    "timeout",
    "runner_error",
    "rate_limited",
    "permission_error",
    "artifact_error",
}
CATALOG = load_catalog()
TARANTOOL = load_catalog(["tarantool"])
TS = "2026-10-01T12:00:00.1234567Z "


def log(*lines: str, stamp: bool = True) -> bytes:
    return "".join((TS if stamp else "") + line + "\n" for line in lines).encode()


# ---------------------------------------------------------------------------- catalog


def test_generic_catalog_uses_exactly_the_documented_types() -> None:
    assert {rule.type for rule in CATALOG.rules} == GENERIC_TYPES


@pytest.mark.parametrize("pack", ["generic", "tarantool"])
def test_every_rule_has_examples_and_they_hold(pack: str) -> None:
    catalog = load_catalog([pack], builtin=False)
    for rule in catalog.rules:
        assert rule.match_examples, f"{rule.id} has no matching examples"
        assert rule.no_match_examples, f"{rule.id} has no near-miss examples"
    assert check_rules_file(pack) == []


@pytest.mark.parametrize(
    "rule",
    [r for r in CATALOG.rules if r.source != "annotation"],
    ids=lambda r: r.id,
)
def test_each_rule_through_the_whole_engine(rule: Rule) -> None:
    single = load_catalog(builtin=False).__class__.build([rule])
    for line in rule.match_examples:
        found = classify_text(line, single)
        assert found is not None and found.rule == rule.id, line
    for line in rule.no_match_examples:
        assert classify_text(line, single) is None, line


@pytest.mark.parametrize(
    "line",
    [
        "tests/test_net.py::test_network_error_is_retried PASSED",
        "0 errors, 0 warnings",
        "Downloading error-stack-parser-2.1.4.tgz",
        "-- Looking for sys/oom.h - not found",
        "All checks passed!",
        "==================== 120 passed in 12.31s ====================",
    ],
)
def test_near_misses_match_no_rule_at_all(line: str) -> None:
    assert classify_text(line, CATALOG) is None


# ---------------------------------------------------------------------------- priority


def test_failing_test_beats_the_generic_exit_code() -> None:
    found = classify_log(
        [
            log(
                "##[group]Run pytest",
                "FAILED tests/test_a.py::test_b - assert 1 == 2",
                "==== 1 failed, 3 passed in 0.20s ====",
                "##[error]Process completed with exit code 1.",
            )
        ],
        CATALOG,
    )
    assert found is not None
    assert (found.type, found.rule) == ("test_failure", "pytest")
    assert found.line_number == 2
    assert found.evidence == "FAILED tests/test_a.py::test_b - assert 1 == 2"


def test_killed_with_exit_137_is_out_of_memory() -> None:
    found = classify_log(
        [log("##[group]Run make -j8", "Killed", "##[error]Process completed with exit code 137.")],
        CATALOG,
    )
    assert found is not None and found.type == "out_of_memory"


def test_a_match_far_from_the_failure_does_not_outrank_one_at_it() -> None:
    lines = [
        "##[group]Run ./configure",
        "conftest.c:1:10: fatal error: 'blosc.h' file not found",
        "OSError: [Errno 28] No space left on device (cache, ignored)",
        "##[endgroup]",
        "##[group]Run pytest -x",
        *[f"tests/test_{i}.py::test_ok PASSED" for i in range(100)],
        "FAILED tests/test_z.py::test_fails - KeyError: 'x'",
        "##[error]Process completed with exit code 1.",
    ]
    found = classify_log(
        [log(*lines)], CATALOG, steps=["Set up job", "Configure", "Run tests"], failed_step_number=3
    )
    assert found is not None
    assert found.type == "test_failure"
    assert found.step == "Run tests"


def test_failed_step_section_found_by_name() -> None:
    lines = [
        "##[group]Run ruff check .",
        "src/app.py:1:1: F401 `os` imported but unused",
        "Found 1 error.",
        "##[endgroup]",
        "##[group]Run pytest",
        "==== 3 passed in 0.1s ====",
        "##[endgroup]",
        "##[group]Run actions/upload-artifact@v4",
        "##[error]No files were found with the provided path: dist/.",
    ]
    steps = ["Set up job", "Run ruff check .", "Run pytest", "Run actions/upload-artifact@v4"]
    lint = classify_log([log(*lines[:3])], CATALOG, steps=steps, failed_step_number=2)
    assert lint is not None and lint.type == "lint_error"
    artifact = classify_log([log(*lines)], CATALOG, steps=steps, failed_step_number=4)
    assert artifact is not None and artifact.type == "artifact_error"
    assert artifact.step == "Run actions/upload-artifact@v4"


def test_nothing_at_the_failure_is_unknown_even_with_noise_elsewhere() -> None:
    lines = [
        "##[group]Run ./probe",
        "conftest.c:1:10: fatal error: 'blosc.h' file not found",
        "##[endgroup]",
        "##[group]Run ./deploy.sh",
        *["deploying..." for _ in range(60)],
        "##[error]Process completed with exit code 3.",
    ]
    assert classify_log([log(*lines)], CATALOG) is None


def test_pytables_successful_log_never_outranks_a_real_failure(realdata: Path) -> None:
    with tarfile.open(realdata / "ghalogs-pytables-run200" / "log.tar.gz") as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".txt")]
        members.sort(key=lambda m: -m.size)
        checked = 0
        for member in members[:6]:
            handle = tar.extractfile(member)
            assert handle is not None
            data = handle.read()
            tail = log(
                "##[group]Run python -m pytest",
                "E   AssertionError: tables differ",
                "FAILED tests/test_tables.py::test_roundtrip - AssertionError: tables differ",
                "##[error]Process completed with exit code 1.",
            )
            found = classify_log([data + tail], CATALOG)
            assert found is not None, member.name
            assert found.type == "test_failure", (member.name, found)
            checked += 1
    assert checked


# ---------------------------------------------------------------------------- bytes


def test_bom_crlf_nul_invalid_utf8_and_colours() -> None:
    data = (
        b"\xef\xbb\xbf"
        + TS.encode()
        + b"##[group]Run cargo test\r\n"
        + TS.encode()
        + b"\x1b[31mtest result: FAILED.\x1b[0m 1 passed; 1 failed\x00\r\n"
        + TS.encode()
        + b"bad bytes \xff\xfe here\r\n"
        + TS.encode()
        + b"##[error]Process completed with exit code 101.\r\n"
    )
    found = classify_log([data], CATALOG)
    assert found is not None
    assert found.rule == "cargo-test-summary"
    assert found.evidence == "test result: FAILED. 1 passed; 1 failed"
    assert found.line_number == 2


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=97), min_size=1, max_size=40))
def test_any_chunking_gives_the_same_answer(cuts: list[int]) -> None:
    data = b"\xef\xbb\xbf" + log(
        "##[group]Run go test ./...",
        "naïve — ünïcode ✓ line",
        "--- FAIL: TestParse (0.00s)",
        "FAIL\tgithub.com/acme/app\t0.01s",
        "##[error]Process completed with exit code 1.",
    ).replace(b"\n", b"\r\n")
    chunks, start = [], 0
    for cut in cuts:
        chunks.append(data[start : start + cut])
        start += cut
    chunks.append(data[start:])
    whole = classify_log([data], CATALOG)
    pieces = classify_log(chunks, CATALOG)
    assert whole == pieces
    assert whole is not None and whole.line_number == 3


def test_web_ui_copy_without_timestamps() -> None:
    text = log(
        "Run docker pull acme/app:9.9",
        "Error response from daemon: manifest for acme/app:9.9 not found: manifest unknown",
        "Error: Process completed with exit code 1.",
        stamp=False,
    )
    found = classify_log([text], CATALOG)
    assert found is not None and found.type == "docker_error"


def test_memory_stays_bounded_on_a_huge_single_line() -> None:
    chunks = (b"x" * 65536 for _ in range(200))  # 13 MB without a newline
    assert classify_log(chunks, CATALOG) is None


def test_pathological_user_pattern_is_linear(tmp_path: Path) -> None:
    rules = tmp_path / "evil.yaml"
    rules.write_text(
        "rules:\n  - id: evil\n    type: catastrophe\n    patterns: ['(a+)+$']\n"
        "    examples: {match: ['aaa'], no_match: ['b']}\n"
    )
    catalog = load_catalog([str(rules)])
    line = "a" * 50_000 + "!"
    found = classify_log([log("##[group]Run x", line, "##[error]boom")], catalog)
    assert found is None or found.rule != "evil" or found.type == "catastrophe"


# ---------------------------------------------------------------------------- annotations


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        (
            "The job running on runner GitHub Actions 3 has exceeded the maximum execution "
            "time of 30 minutes.",
            "timeout",
        ),
        ("The job has exceeded the maximum execution time of 6h0m0s", "timeout"),
        (
            "The hosted runner: GitHub Actions 9 lost communication with the server. Anything "
            "in your workflow that terminates the runner process can cause this error.",
            "runner_error",
        ),
        ("The hosted runner encountered an error while running your job.", "runner_error"),
    ],
)
def test_annotations_name_causes_logs_never_show(message: str, kind: str) -> None:
    found = classify_annotations(["Process completed with exit code 1.", message], CATALOG)
    assert found is not None and found.type == kind


def test_generic_exit_code_annotation_is_not_a_cause() -> None:
    assert classify_annotations(["Process completed with exit code 1."], CATALOG) is None


# ---------------------------------------------------------------------------- user rules


def test_user_rules_override_disable_and_add(tmp_path: Path) -> None:
    rules = tmp_path / "mine.yaml"
    rules.write_text(
        """
rules:
  - id: pytest
    type: flaky_test
    priority: 99
    patterns: ['^FAILED \\S+::test_flaky']
    examples: {match: ['FAILED t.py::test_flaky_x'], no_match: ['FAILED t.py::test_ok']}
  - id: segfault
    disabled: true
  - id: our-deploy
    type: deploy_error
    description: our deploy script
    patterns: ['^deploy: rollout failed']
    step: '(?i)deploy'
    examples: {match: ['deploy: rollout failed'], no_match: ['deploy: ok']}
"""
    )
    catalog = load_catalog([str(rules)])
    ids = {r.id: r for r in catalog.rules}
    assert ids["pytest"].type == "flaky_test"
    assert "segfault" not in ids
    found = classify_log(
        [log("##[group]Run ./deploy.sh", "deploy: rollout failed", "##[error]exit 1")],
        catalog,
        steps=["Set up job", "Deploy"],
        failed_step_number=2,
    )
    assert found is not None and found.type == "deploy_error"
    wrong_step = classify_log(
        [log("##[group]Run ./build.sh", "deploy: rollout failed", "##[error]exit 1")],
        catalog,
        steps=["Set up job", "Build"],
        failed_step_number=2,
    )
    assert wrong_step is None


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("rules:\n  - id: x\n    type: t\n    patterns: ['(unclosed']\n", "not a valid RE2"),
        ("rules:\n  - id: x\n    type: t\n", "'patterns' must be"),
        ("rules:\n  - id: x\n    type: T-T\n    patterns: [a]\n", "'type' must be"),
        ("rules:\n  - id: x\n    type: t\n    patterns: [a]\n    colour: red\n", "unknown keys"),
        (
            "rules:\n  - {id: x, type: t, patterns: [a]}\n  - {id: x, type: t, patterns: [b]}\n",
            "duplicate id",
        ),
        ("rules:\n  - {id: x, type: t, patterns: [a]\n  - b\n", "not valid YAML at line 3"),
        ("rules:\n  - just a string\n", "rule #1: expected a mapping"),
        ("rules:\n  - id: x\n    type: successful_jobs\n    patterns: [a]\n", "reserved"),
    ],
)
def test_bad_rule_files_name_the_entry_and_why(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(RuleError) as info:
        load_catalog([str(path)])
    assert needle in str(info.value)
    assert str(path) in str(info.value)
    problems = check_rules_file(str(path))
    assert problems and needle in problems[0]


def test_unknown_pack_or_file() -> None:
    with pytest.raises(RuleError, match="neither a rules file nor a shipped pack"):
        load_catalog(["nonexistent-pack"])


# ---------------------------------------------------------------------------- realdata


def test_tarantool_excerpts_classify_as_their_names(realdata: Path) -> None:
    files = sorted((realdata / "multivac-failures").glob("*.log"))
    assert len(files) >= 20
    for path in files:
        expected = re.sub(r"_\d+$", "", path.stem)
        found = classify_file(path, TARANTOOL)
        assert found is not None, path.name
        assert found.type == expected, (path.name, found)


# ---------------------------------------------------------------------------- commands


def test_classify_command_text_and_json(cli: Invoke, tmp_path: Path) -> None:
    failing = tmp_path / "job.log"
    failing.write_bytes(log("##[group]Run npm ci", "npm ERR! code ERESOLVE", "##[error]exit 1"))
    clean = tmp_path / "ok.log"
    clean.write_bytes(log("##[group]Run echo hi", "hi"))
    result = cli("classify", str(failing), str(clean))
    assert result.exit_code == 0, result.stderr
    assert f"{failing}: dependency_error" in result.stdout
    assert "line 2: npm ERR! code ERESOLVE" in result.stdout
    assert f"{clean}: unknown_failure" in result.stdout
    as_json = cli("classify", "--json", str(failing))
    data = json.loads(as_json.stdout)
    assert data == [
        {
            "path": str(failing),
            "type": "dependency_error",
            "rule": "npm-resolution",
            "line_number": 2,
            "evidence": "npm ERR! code ERESOLVE",
            "signature": signature("npm ERR! code ERESOLVE")[0],
            "also": [],
        }
    ]
    missing = cli("classify", str(tmp_path / "nope.log"))
    assert missing.exit_code == 2
    assert "no such file" in missing.stderr


def test_classify_reads_a_pipe(cli: Invoke, tmp_path: Path) -> None:
    """`multivac classify <(zcat job.log.gz)` names a pipe, which cannot seek."""
    fifo = tmp_path / "job.pipe"
    os.mkfifo(fifo)
    body = log("##[group]Run npm ci", "npm ERR! code ERESOLVE", "##[error]exit 1")

    def feed() -> None:
        with open(fifo, "wb") as writer:
            writer.write(body)

    writer = threading.Thread(target=feed)
    writer.start()
    result = cli("classify", "--json", str(fifo))
    writer.join(timeout=10)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["type"] == "dependency_error"


def test_rules_list_and_check_commands(cli: Invoke, tmp_path: Path) -> None:
    listing = cli("rules", "list", "--rules", "tarantool")
    assert listing.exit_code == 0
    assert "tarantool-luajit" in listing.stdout and "pytest" in listing.stdout
    good = cli("rules", "check", "tarantool")
    assert good.exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - id: x\n    type: t\n    patterns: ['(']\n")
    result = cli("rules", "check", str(bad))
    assert result.exit_code == 2
    assert "rule 'x'" in result.stderr and "RE2" in result.stderr
    env_rules = cli("gather", "o/r", "--since", "1d", env={"MULTIVAC_RULES": str(bad)})
    assert env_rules.exit_code == 2
    assert "rule 'x'" in env_rules.stderr
