"""The classification engine: both prefilter engines, log layouts, the first failed step,
cause over symptom, the listener hook. Logs are built from real tool outputs
(tests/data/real, produced by running the tools) and real GitHub log conventions."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from multivac import prefilter
from multivac.classify import (
    Catalog,
    available_engines,
    classify_file,
    classify_log,
    load_catalog,
    scan_log,
)
from multivac.layout import GH, GITHUB, PLAIN, detect_layout
from multivac.logstream import CONTROL_CLASS, clean_line, clean_text
from multivac.model import Classification
from multivac.prefilter import Prefilter, factors_of

CATALOG = load_catalog()
TARANTOOL = load_catalog(["tarantool"])
ENGINES = available_engines()
REAL = Path(__file__).parent / "data" / "real"
TS = "2026-10-01T12:00:00.1234567Z "


def real(name: str) -> list[str]:
    return (REAL / name).read_text(encoding="utf-8").splitlines()


def github(*sections: tuple[str, Sequence[str], int | None]) -> bytes:
    """A raw GitHub job log: (header, lines, exit code or None for a passing step)."""
    out = [f"{TS}Current runner version: '2.321.0'", f"{TS}##[group]Operating System"]
    out.append(f"{TS}##[endgroup]")
    for header, lines, code in sections:
        out.append(f"{TS}##[group]Run {header}")
        out.append(f"{TS}{header}")
        out.append(f"{TS}shell: /usr/bin/bash -e {{0}}")
        out.append(f"{TS}##[endgroup]")
        out.extend(TS + line for line in lines)
        if code is not None:
            out.append(f"{TS}##[error]Process completed with exit code {code}.")
    out.append(f"{TS}Post job cleanup.")
    out.append(f"{TS}Cleaning up orphan processes")
    return ("\n".join(out) + "\n").encode("utf-8")


def classify(data: bytes, engine: str, catalog: Catalog = CATALOG, **kw: object) -> Classification:
    found = classify_log([data], catalog, engine=engine, **kw)  # type: ignore[arg-type]
    assert found is not None
    return found


# ---------------------------------------------------------------------------- prefilter


@pytest.mark.parametrize(
    ("pattern", "literals"),
    [
        (r"^\S+:\d+:(\d+:)? (fatal )?error: ", {" error: ", " fatal error: "}),
        (r"(?i)connection timed out", {"connection timed out"}),
        (r"^\s+\d+:\d+ +error {2,}\S", {"error  "}),
        (r"npm (ERR!|error) code E401", {"npm ERR! code E401", "npm error code E401"}),
        (r"^FAIL$", {"FAIL"}),
    ],
)
def test_factors_are_literals_every_match_contains(pattern: str, literals: set[str]) -> None:
    found = factors_of(pattern)
    assert set(found.literals) == literals
    assert not found.regex


@pytest.mark.parametrize("pattern", [r"[[:alpha:]]+ failed", r"\d+", r"^(a|b)$", r"x\Qy\E"])
def test_patterns_without_a_safe_factor_are_searched_whole(pattern: str) -> None:
    found = factors_of(pattern)
    assert found.regex and not found.literals


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("rule", [r for r in CATALOG.rules if r.source != "annotation"], ids=str)
def test_prefilter_hands_every_example_to_its_rule(engine: str, rule: object) -> None:
    from multivac.classify import Rule

    assert isinstance(rule, Rule)
    search = Prefilter(list(rule.patterns), engine)
    for line in rule.match_examples:
        raw = (TS + line + "\n").encode("utf-8")
        assert list(search.lines(raw)) == [0], line


@pytest.mark.parametrize("engine", ENGINES)
def test_lines_with_control_bytes_are_always_candidates(engine: str) -> None:
    search = Prefilter(["FAILED tests", CONTROL_CLASS], engine)
    block = b"ok\nFAIL\x00ED tests x\nnothing\n"
    assert list(search.lines(block)) == [3]


def test_engine_choice_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MULTIVAC_ENGINE", "re2")
    assert prefilter.active_engine() == "re2"
    monkeypatch.setenv("MULTIVAC_ENGINE", "no-such-engine")
    assert prefilter.active_engine() == ENGINES[0]


@pytest.mark.skipif("hyperscan" not in ENGINES, reason="hyperscan is not installed")
def test_hyperscan_database_is_cached_and_a_damaged_cache_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MULTIVAC_CACHE_DIR", str(tmp_path))
    Prefilter(["Segmentation fault", "No space left"], "hyperscan")
    cached = list(tmp_path.glob("hs-*.db"))
    assert len(cached) == 1
    cached[0].write_bytes(b"garbage")
    again = Prefilter(["Segmentation fault", "No space left"], "hyperscan")
    assert list(again.lines(b"a\nbash: Segmentation fault\n")) == [2]
    assert cached[0].read_bytes() != b"garbage"


# ---------------------------------------------------------------------------- layouts


@pytest.mark.parametrize(
    ("sample", "kind"),
    [
        (f"{TS}##[group]Run make\n{TS}make: ok\n", GITHUB),
        ("Run make\nmake: *** [all] Error 2\nError: Process completed with exit code 2.\n", GITHUB),
        (f"build\tRun make\t{TS}make: ok\nbuild\tRun make\t{TS}done\n", GH),
        (
            "[2026-10-01T12:00:00.123Z] + mvn -B verify\n[2026-10-01T12:00:01.001Z] [INFO] x\n",
            PLAIN,
        ),
        ("Started by user admin\n[Pipeline] node\nError: usage: foo\n", PLAIN),
    ],
)
def test_layout_detection(sample: str, kind: str) -> None:
    assert detect_layout(sample.encode()).kind == kind


@pytest.mark.parametrize(
    ("lines", "text"),
    [
        # Jenkins' Timestamper plugin: two spaces after the time (its documented example)
        (["21:51:15  Started by user anonymous", "21:51:16  + mypy src"], b"+ mypy src"),
        (["2020-03-19 13:16:47  Building on master", "2020-03-19 13:16:48  + make"], b"+ make"),
        # one space: a line's own indentation stays
        (
            ["12:00:01 Traceback (most recent call last):", '12:00:02   File "a.py"'],
            b'  File "a.py"',
        ),
    ],
)
def test_console_timestamps_are_stripped_with_their_separator(
    lines: list[str], text: bytes
) -> None:
    layout = detect_layout("\n".join(lines).encode())
    assert layout.kind == PLAIN
    assert layout.split(lines[-1].encode()) == (b"", text)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_timestamper_console_is_classified_like_a_bare_one(engine: str) -> None:
    lines = ["Started by user admin", "+ mypy --strict src"]
    lines += ['src/shop/cart.py:18: error: Argument 1 to "len" has incompatible type  [arg-type]']
    lines += ["Found 1 error in 1 file (checked 2 source files)", "Finished: FAILURE"]
    data = "".join(f"12:00:{i:02d}  {line}\n" for i, line in enumerate(lines)).encode()
    found = classify(data, engine)
    assert (found.type, found.line_number) == ("lint_error", 3)


# ---------------------------------------------------------------------------- first cause


def tarantool_job(realdata: Path) -> bytes:
    folder = realdata / "multivac-failures"
    tests = (folder / "testrun_test_failed.log").read_text().splitlines()
    telegram = (folder / "telegram_bot_error.log").read_text().splitlines()
    telegram = [line for line in telegram if not line.startswith("Error: Process completed")]
    return github(
        ("actions/checkout@v4", ["Syncing repository: tarantool/tarantool"], None),
        ("make test", tests, 2),
        ("./send-telegram-notification.sh", telegram, 1),
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_test_run_failure_is_the_cause_not_the_notification_after_it(
    realdata: Path, engine: str
) -> None:
    data = tarantool_job(realdata)
    unknown_steps = classify(data, engine, TARANTOOL)
    steps = ["Set up job", "Run actions/checkout@v4", "Run make test", "Notify", "Complete job"]
    known_steps = classify(data, engine, TARANTOOL, steps=steps, failed_step_number=3)
    for found in (unknown_steps, known_steps):
        assert found.type == "testrun_test_failed"
        assert found.also == "telegram_bot_error"
        assert found.evidence == "Failed tasks:"
    assert known_steps.step == "Run make test"


@pytest.mark.parametrize("engine", ENGINES)
def test_steps_after_the_failure_never_decide_and_are_listed_in_also(engine: str) -> None:
    data = github(
        ("pytest -q", ["FAILED tests/test_a.py::test_b - assert 1 == 2"], 1),
        (
            "actions/upload-artifact@v4",
            ["##[error]No files were found with the provided path: x"],
            None,
        ),
        ("curl -X POST https://chat.example.com/hook", ["curl: (6) Could not resolve host: x"], 6),
        ("./cleanup.sh", ["cleaning"], 3),
    )
    found = classify(data, engine)
    assert found.type == "test_failure"
    assert found.also == "artifact_error,network_error,unknown_failure"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_step_under_continue_on_error_is_not_the_cause(engine: str) -> None:
    # GitHub shows such a step with conclusion `success` (its outcome is `failure`), so
    # the jobs API's first failed step is the test step; the log still shows both errors.
    data = github(
        ("ruff check .", ["src/app.py:1:1: F401 `os` imported but unused", "Found 1 error."], 1),
        ("pytest -q", ["FAILED tests/test_a.py::test_b - assert 1 == 2"], 1),
    )
    by_command = ["Set up job", "Run ruff check .", "Run pytest -q", "Complete job"]
    found = classify(data, engine, steps=by_command, failed_step_number=3)
    assert (found.type, found.step) == ("test_failure", "Run pytest -q")
    by_name = ["Set up job", "Lint", "Unit tests", "Complete job"]
    found = classify(data, engine, steps=by_name, failed_step_number=3)
    assert found.type == "test_failure"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_passing_step_that_prints_error_usage_is_not_the_failure(engine: str) -> None:
    data = github(
        ("./tool --help", ["Error: usage: tool [--fast] FILE", "see the manual"], None),
        ("go test ./...", real("go-build-failed.txt"), 1),
    )
    found = classify(data, engine)
    assert found.type == "compile_error"
    assert found.step == "go test ./..."
    web_copy = b"Run ./tool --help\nError: usage: tool FILE\nRun make\nKilled\n"
    web_copy += b"Error: Process completed with exit code 137.\n"
    assert classify(web_copy, engine).type == "out_of_memory"


def action_step(action: str, lines: Sequence[str]) -> list[str]:
    """A step that runs an action, as a raw job log shows it: its `with:` inputs, then its
    output; a failing action ends with its own `##[error]`, no exit-code line."""
    head = [f"{TS}##[group]Run {action}", f"{TS}  with:", f"{TS}    token: ***"]
    return [*head, f"{TS}##[endgroup]", *(TS + line for line in lines)]


def with_action(action: list[str], *after: tuple[str, Sequence[str], int | None]) -> bytes:
    """A job whose second step runs an action, then `run:` steps (a notification...)."""
    data = github(("./configure", ["checking for gcc... gcc"], None)).decode().splitlines()
    cleanup = data[-2:]
    rest = github(*after).decode().splitlines()[3:-2] if after else []
    return ("\n".join([*data[:-2], *action, *rest, *cleanup]) + "\n").encode("utf-8")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("action", "error", "kind"),
    [
        ("docker/login-action@v3", "Username and password required", "permission_error"),
        (
            "actions/setup-python@v5",
            "The version '3.6' with architecture 'x64' was not found for Ubuntu 22.04.",
            "dependency_error",
        ),
        (
            "docker://ghcr.io/acme/deploy:1",
            "Input required and not supplied: token",
            "permission_error",
        ),
    ],
)
def test_a_failing_action_step_is_the_failure_without_an_exit_code_line(
    engine: str, action: str, error: str, kind: str
) -> None:
    # A notification step after it fails too, with the exit-code line the action lacks.
    data = with_action(
        action_step(action, ["Logging in...", f"##[error]{error}"]),
        ("./notify.sh", ["curl: (22) The requested URL returned error: 404"], 22),
    )
    found = classify(data, engine)
    assert (found.type, found.step) == (kind, action)
    assert found.evidence.endswith(error)
    gh = "".join(f"build\tRun {action}\t{line}\n" for line in data.decode().splitlines())
    assert classify(gh.encode(), engine).type == kind


@pytest.mark.parametrize("engine", ENGINES)
def test_an_error_annotation_of_a_run_step_is_still_not_a_failure(engine: str) -> None:
    # `run: echo "::error::..."` passes; only an action's step ends on its `##[error]`.
    data = github(
        ("./check-deprecations.sh", ["##[error]Username and password required"], None),
        ("go test ./...", real("go-build-failed.txt"), 1),
    )
    assert classify(data, engine).type == "compile_error"
    local = with_action(
        action_step("./.github/actions/lint", ["##[error]Username and password required"]),
        ("go test ./...", real("go-build-failed.txt"), 1),
    )
    assert classify(local, engine).type == "compile_error"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("cargo-build-error.txt", "compile_error"),
        ("ruby-minitest.txt", "test_failure"),
        ("go-build-failed.txt", "compile_error"),
        ("apt-dns.txt", "network_error"),
    ],
)
def test_a_tool_failing_inside_docker_build_is_read_through_buildkit_prefixes(
    engine: str, name: str, kind: str
) -> None:
    # BuildKit's plain progress, as CI shows `docker build`: `#<step> <seconds> <line>`.
    inner = [f"#9 {1 + i / 1000:.3f} {line}" for i, line in enumerate(real(name))]
    lines = ["#9 [builder 4/6] RUN make ci", *inner, "#9 ERROR: process did not complete"]
    lines.append('ERROR: failed to solve: process "/bin/sh -c make ci" did not complete')
    found = classify(github(("docker build .", lines, 1)), engine)
    assert found.type == kind
    assert not found.evidence.startswith("#9 ")


@pytest.mark.parametrize(
    ("line", "cleaned"),
    [
        ("#12 3.456 FAILED tests/test_a.py::test_b", "FAILED tests/test_a.py::test_b"),
        ("2026-10-01T12:00:00.1234567Z #0 0.988 npm ERR! code EUSAGE", "npm ERR! code EUSAGE"),
        ("#12 [3/5] RUN make", "#12 [3/5] RUN make"),
        ("#12 DONE 0.4s", "#12 DONE 0.4s"),
        ("#12 3 little pigs", "#12 3 little pigs"),
    ],
)
def test_buildkit_step_prefix_goes_like_a_timestamp(line: str, cleaned: str) -> None:
    assert clean_text(line) == cleaned
    assert clean_line(line.encode()) == cleaned


# ---------------------------------------------------------------------------- cause over symptom


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("lines", "kind", "evidence"),
    [
        (real("segfault-under-runner.txt"), "crash", "Segmentation fault"),
        (real("go-build-failed.txt"), "compile_error", "undefined: undefinedThing"),
        (real("go-test-build-failed.txt"), "crash", "SIGSEGV"),
        (real("apt-dns.txt"), "network_error", "Could not resolve 'nonexistent-mirror.invalid'"),
        (real("wget-dns.txt"), "network_error", "unable to resolve host address"),
        (real("curl-dns.txt"), "network_error", "Could not resolve host"),
        (real("cargo-build-error.txt"), "compile_error", "error[E0308]"),
        (real("cargo-test-failure.txt"), "test_failure", "test tests::adds ... FAILED"),
        (real("javac-error.txt"), "compile_error", "App.java:3: error: cannot find symbol"),
        (real("java-class-version.txt"), "dependency_error", "UnsupportedClassVersionError"),
        (real("javac-release.txt"), "dependency_error", "release version 99 not supported"),
        (real("maven-offline-resolution.txt"), "dependency_error", "Could not resolve depend"),
        (real("maven-plugin-resolution.txt"), "dependency_error", "could not be resolved"),
        (real("npm-node-test.txt"), "test_failure", "not ok 1 - adds"),
        (real("ruby-minitest.txt"), "test_failure", "1) Failure:"),
        (real("ruby-load-error.txt"), "dependency_error", "cannot load such file"),
        (real("php-fatal.txt"), "crash", "PHP Fatal error: Uncaught Error"),
        (real("php-parse.txt"), "compile_error", "PHP Parse error"),
        (
            [
                "==4242==ERROR: AddressSanitizer: heap-use-after-free on address 0x6020",
                "SUMMARY: AddressSanitizer: heap-use-after-free src/a.c:12 in f",
                "3 tests failed",
                "Errors while running CTest",
            ],
            "crash",
            "AddressSanitizer: heap-use-after-free",
        ),
        (
            ["c++: fatal error: Killed signal terminated program cc1plus", "FAIL"],
            "out_of_memory",
            "",
        ),
        (
            [
                "OSError: [Errno 28] No space left on device: '/tmp/a'",
                "OSError: [Errno 28] No space left on device: '/tmp/b'",
                "npm ERR! Test failed.  See above for more details.",
            ],
            "out_of_disk",
            "/tmp/a",
        ),
        (
            [
                "An error occurred (ExpiredToken) when calling the PutObject operation: expired",
                "make: *** [Makefile:12: deploy] Error 254",
            ],
            "permission_error",
            "ExpiredToken",
        ),
    ],
)
def test_the_cause_beats_the_summary_in_the_same_step(
    engine: str, lines: list[str], kind: str, evidence: str
) -> None:
    tail = [*lines, "make: *** [Makefile:3: check] Error 2"]
    found = classify(github(("make check", tail, 2)), engine)
    assert found.type == kind, found
    assert evidence in found.evidence


@pytest.mark.parametrize("engine", ENGINES)
def test_evidence_is_the_first_compiler_error_not_the_header(engine: str) -> None:
    lines = [
        "[INFO] BUILD FAILURE",
        "[ERROR] COMPILATION ERROR : ",
        "[INFO] -------------------------------------------------------------",
        "[ERROR] /home/runner/work/app/app/src/main/java/com/acme/App.java:[3,52] cannot find "
        "symbol",
        "[ERROR] /home/runner/work/app/app/src/main/java/com/acme/App.java:[4,9] cannot find "
        "symbol",
        "[ERROR] Failed to execute goal org.apache.maven.plugins:maven-compiler-plugin:3.11.0:"
        "compile (default-compile) on project app: Compilation failure",
    ]
    found = classify(github(("mvn -B verify", lines, 1)), engine)
    assert found.type == "compile_error"
    assert found.evidence.endswith("App.java:[3,52] cannot find symbol")


# ---------------------------------------------------------------------------- other layouts


def jenkins_maven(trace: int) -> bytes:
    stamp = "[2026-10-01T12:00:0{}.000Z] "
    lines = [
        "Started by user admin",
        "Running on build-agent-7 in /var/lib/jenkins/workspace/app",
        "Error: this line is ordinary text in a console log",
        "+ mvn -B verify",
        "[INFO] Scanning for projects...",
        *[f"[INFO] Downloaded from central: https://repo/x{i}.jar" for i in range(300)],
        "[INFO] --- maven-compiler-plugin:3.11.0:compile (default-compile) @ app ---",
        "[ERROR] COMPILATION ERROR : ",
        "[ERROR] /var/lib/jenkins/workspace/app/src/main/java/App.java:[3,52] cannot find symbol",
        "[INFO] BUILD FAILURE",
        "[ERROR] Failed to execute goal org.apache.maven.plugins:maven-compiler-plugin:3.11.0:"
        "compile (default-compile) on project app: Compilation failure -> [Help 1]",
        "org.apache.maven.lifecycle.LifecycleExecutionException: Failed to execute goal",
        *["\tat org.apache.maven.lifecycle.internal.MojoExecutor.execute (MojoExecutor.java:2)"]
        * trace,
        "Caused by: org.apache.maven.plugin.compiler.CompilationFailureException: Compilation "
        "failure",
        *["\tat org.apache.maven.plugin.compiler.AbstractCompilerMojo.execute (A.java:1)"] * 40,
        "[Pipeline] }",
        "[Pipeline] // node",
        "ERROR: script returned exit code 1",
        "Finished: FAILURE",
    ]
    return "".join(stamp.format(i % 10) + line + "\n" for i, line in enumerate(lines)).encode()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("trace", [10, 600])
def test_console_log_with_a_long_trace_after_the_error(engine: str, trace: int) -> None:
    found = classify(jenkins_maven(trace), engine)
    assert found.type == "compile_error"
    assert found.evidence.startswith("[ERROR] /var/lib/jenkins/workspace/app/src/main/java/App")
    assert found.line_number == 308


@pytest.mark.parametrize("engine", ENGINES)
def test_error_prefix_is_ordinary_text_in_a_console_log(engine: str) -> None:
    lines = [
        "Error: retrying download (1/3)",
        *["building..." for _ in range(100)],
        "--- FAIL: TestParse (0.00s)",
        "FAIL\tgithub.com/acme/app\t0.01s",
    ]
    found = classify(("\n".join(lines) + "\n").encode(), engine)
    assert (found.type, found.rule) == ("test_failure", "go-test")


def gh_view(job: str, sections: Sequence[tuple[str, Sequence[str]]]) -> bytes:
    out = []
    for step, lines in sections:
        out.extend(f"{job}\t{step}\t\ufeff{TS}{line}" for line in lines[:1])
        out.extend(f"{job}\t{step}\t{TS}{line}" for line in lines[1:])
    return ("\n".join(out) + "\n").encode("utf-8")


@pytest.mark.parametrize("engine", ENGINES)
def test_gh_run_view_log_layout(engine: str) -> None:
    data = gh_view(
        "build (ubuntu-latest)",
        [
            ("Set up job", ["Current runner version: '2.321.0'"]),
            ("Run tests", ["##[group]Run go test ./...", *real("go-build-failed.txt")]),
            ("Run tests", ["##[error]Process completed with exit code 1."]),
            ("Notify", ["##[group]Run ./notify.sh", "curl: (6) Could not resolve host: chat"]),
            ("Notify", ["##[error]Process completed with exit code 6."]),
        ],
    )
    assert detect_layout(data).kind == GH
    steps = ["Set up job", "Run tests", "Notify", "Complete job"]
    found = classify(data, engine, steps=steps, failed_step_number=2)
    assert (found.type, found.step) == ("compile_error", "Run tests")
    assert found.evidence == "broken/b.go:3:23: undefined: undefinedThing"
    assert found.also == "network_error"
    assert classify(data, engine).type == "compile_error"


@pytest.mark.parametrize("unknown", ["UNKNOWN STEP", "UNKNOWN"])
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("known", [False, True])
def test_gh_log_without_step_names_is_split_at_its_run_headers(
    unknown: str, engine: str, known: bool
) -> None:
    # gh shows a run whose log archive has no per-step files with every line under one
    # placeholder step: the whole job's log, whose ##[group]Run headers still mark steps
    lines = [
        "Current runner version: '2.321.0'",
        "##[group]Run ./configure --with-blosc",
        "conftest.c:1:10: fatal error: 'blosc.h' file not found",
        "configure: WARNING: blosc not found, building without it",
        "##[group]Run go test ./...",
        *real("go-build-failed.txt"),
        "##[error]Process completed with exit code 1.",
        "##[group]Run ./notify.sh",
        "curl: (6) Could not resolve host: chat",
        "##[error]Process completed with exit code 6.",
    ]
    data = gh_view("build (ubuntu-latest)", [(unknown, lines)])
    assert detect_layout(data).kind == GH
    steps = ["Set up job", "Configure", "Run go test ./...", "Notify", "Complete job"]
    kw: dict[str, object] = {"steps": steps, "failed_step_number": 3} if known else {}
    found = classify(data, engine, **kw)
    assert (found.type, found.evidence) == (
        "compile_error",
        "broken/b.go:3:23: undefined: undefinedThing",
    )
    assert found.also == "network_error"


# ---------------------------------------------------------------------------- both engines


@pytest.mark.parametrize("name", sorted(p.name for p in REAL.glob("*.txt")))
def test_engines_agree_on_real_outputs(name: str) -> None:
    data = github(("make", real(name), 1))
    answers = {engine: classify_log([data], TARANTOOL, engine=engine) for engine in ENGINES}
    assert len(set(answers.values())) == 1


def test_engines_agree_on_the_tarantool_excerpts(realdata: Path) -> None:
    for path in sorted((realdata / "multivac-failures").glob("*.log")):
        answers = {classify_file(path, TARANTOOL, engine=engine) for engine in ENGINES}
        assert len(answers) == 1, path.name
        found = answers.pop()
        assert found is not None and found.type == re.sub(r"_\d+$", "", path.stem)


# ---------------------------------------------------------------------------- listeners


class FailedGoTests:
    """A tiny test-result parser: the names of failed go tests."""

    patterns = (r"^\s*--- FAIL: (\S+)",)

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []
        self.check = re.compile(self.patterns[0])

    def feed(self, line: str, line_number: int) -> None:
        found = self.check.match(line)
        if found:
            self.seen.append((found.group(1), line_number))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("layout", ["github", "gh", "plain"])
def test_listeners_read_the_same_pass(engine: str, layout: str) -> None:
    lines = ["=== RUN   TestOK", "--- FAIL: TestBad (0.00s)", "    --- FAIL: TestBad/sub (0s)"]
    if layout == "github":
        data = github(("go test ./...", lines, 1))
        first = 9
    elif layout == "gh":
        data = gh_view("build", [("Run tests", lines)])
        first = 2
    else:
        data = ("\n".join(f"12:00:0{i} {line}" for i, line in enumerate(lines)) + "\n").encode()
        first = 2
    listener = FailedGoTests()
    found, _context = scan_log([data], CATALOG, listeners=[listener], engine=engine)
    assert found is not None and found.type == "test_failure"
    assert listener.seen == [("TestBad", first), ("TestBad/sub", first + 1)]


# ---------------------------------------------------------------------------- two processes


def big_job() -> bytes:
    noise = [f"[{i:4d}/9000] compiling module_{i}.c" for i in range(9000)]
    return github(
        ("./configure", ["conftest.c:1:10: fatal error: 'blosc.h' file not found", *noise], None),
        ("make -j2", noise[:4000], None),
        ("make test", [*noise[:3000], *real("segfault-under-runner.txt")], 2),
        ("./notify.sh", ["curl: (6) Could not resolve host: chat.example.com"], 6),
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_a_large_file_scanned_by_two_processes_gives_the_one_pass_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    import multivac.classify as engine_module

    path = tmp_path / "job.log"
    path.write_bytes(big_job())
    one_pass = classify_log([path.read_bytes()], CATALOG, engine=engine)
    monkeypatch.setattr(engine_module, "PARALLEL_MIN", 1)
    two = classify_file(path, CATALOG, engine=engine)
    assert one_pass is not None and one_pass.type == "crash"
    assert two == one_pass
    assert two.also == "network_error"


def test_a_failed_helper_process_falls_back_to_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import multivac.classify as engine_module

    def broken(*_args: object) -> object:
        raise RuntimeError("the child breaks")

    path = tmp_path / "job.log"
    path.write_bytes(big_job())
    monkeypatch.setattr(engine_module, "PARALLEL_MIN", 1)
    monkeypatch.setattr(engine_module._Scan, "candidates", broken)
    found = classify_file(path, CATALOG)
    assert found == classify_log([path.read_bytes()], CATALOG)


def test_the_shipped_catalog_prefilters_with_literals_only() -> None:
    # a pattern without a literal factor costs a second scan of every log
    for kind in (GITHUB, GH, PLAIN):
        assert TARANTOOL.prefilter("re2", kind).regexes == []


def test_engine_status_names_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    from multivac.classify import engine_status

    monkeypatch.setenv("MULTIVAC_ENGINE", "re2")
    assert engine_status().startswith("re2")
    monkeypatch.delenv("MULTIVAC_ENGINE")
    assert engine_status().startswith(ENGINES[0])


@pytest.mark.parametrize("engine", ENGINES)
def test_one_catalog_serves_many_threads(engine: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    data = github(("go test ./...", real("go-test-build-failed.txt") * 200, 1))
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = set(pool.map(lambda _: classify_log([data], CATALOG, engine=engine), range(16)))
    assert len(answers) == 1
