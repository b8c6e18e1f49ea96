"""The widened catalog on real tool outputs and on the test-result parsers' failure lines.

- Every `tests/data/real/<type>__<name>.txt` (the unedited output of a tool run on the build
  machine, see its README) is classified as <type> wherever a log puts it: a raw GitHub job
  log with a passing noisy step before it and a failing notification after it, the
  `gh run view --log` layout, and a console log with a long stack trace after the failure.
  The evidence is one of the tool's own lines.
- Every failed, hung or timed-out example line of the built-in test-result parsers that
  names its test on its own is a test_failure, timeout or crash for the catalog: rules
  express those lines directly, so the engine needs no second look at test results.
- Precedence between the new rules and the old ones: a linter's finding over the
  compiler's summary, a module error over a compile error that looks the same, a network
  cause over the resolution failure it caused.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from multivac.classify import available_engines, classify_log, classify_text, load_catalog
from multivac.testresults.parsers import builtin_parsers

CATALOG = load_catalog()
ENGINES = available_engines()
REAL = Path(__file__).parent / "data" / "real"
TYPED = sorted(p.name for p in REAL.glob("*__*.txt"))
TS = "2026-10-01T12:00:{:02d}.1234567Z "
NOISE = [
    "conftest.c:1:10: fatal error: 'blosc.h' file not found",
    "Error: usage: tool [--fast] FILE",
    "configure: WARNING: blosc not found, building without it",
]


def fixture(name: str) -> list[str]:
    return (REAL / name).read_text(encoding="utf-8").splitlines()


def job_rows(lines: Sequence[str]) -> list[tuple[str, str]]:
    """(step, text) rows of a job: a noisy passing step, the failing step, a notification
    that fails because the job failed."""
    rows = [("Set up job", "Current runner version: '2.321.0'")]
    rows += [("Configure", "##[group]Run ./configure"), ("Configure", "##[endgroup]")]
    rows += [("Configure", line) for line in NOISE]
    rows += [("Build", "##[group]Run make ci"), ("Build", "##[endgroup]")]
    rows += [("Build", line) for line in lines]
    rows += [("Build", "make: *** [Makefile:12: ci] Error 2")]
    rows += [("Build", "##[error]Process completed with exit code 2.")]
    rows += [("Notify", "##[group]Run ./notify.sh"), ("Notify", "##[endgroup]")]
    rows += [("Notify", "curl: (22) The requested URL returned error: 404")]
    rows += [("Notify", "##[error]Process completed with exit code 22.")]
    return rows


def raw_log(lines: Sequence[str]) -> bytes:
    rows = job_rows(lines)
    stamped = (TS.format(i % 60) + text for i, (_step, text) in enumerate(rows))
    return ("\n".join(stamped) + "\n").encode("utf-8")


def gh_log(lines: Sequence[str]) -> bytes:
    rows = job_rows(lines)
    out = (f"build\t{step}\t{TS.format(i % 60)}{text}" for i, (step, text) in enumerate(rows))
    return ("\n".join(out) + "\n").encode("utf-8")


def console_log(lines: Sequence[str]) -> bytes:
    out = ["Started by an SCM change", "+ make ci", "Error: retrying is ordinary text here"]
    out += list(lines)
    out.append("Traceback (most recent call last):")
    out += [f'  File "/opt/ci/step_{i}.py", line {i}, in run' for i in range(120)]
    out += ["ci.StepFailed: make ci returned 2", "Finished: FAILURE"]
    return ("\n".join(f"[2026-10-01T12:00:00.000Z] {line}" for line in out) + "\n").encode()


def normal(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("layout", ["github", "gh", "console"])
@pytest.mark.parametrize("name", TYPED)
def test_real_output_is_its_type_in_every_layout(name: str, layout: str, engine: str) -> None:
    kind = name.partition("__")[0]
    lines = fixture(name)
    data = {"github": raw_log, "gh": gh_log, "console": console_log}[layout](lines)
    found = classify_log([data], CATALOG, engine=engine)
    assert found is not None, f"{name}: nothing matched"
    assert found.type == kind, f"{name}: {found.type} from {found.evidence!r}"
    assert normal(found.evidence) in {normal(line) for line in lines}


def test_fixtures_cover_every_type_but_the_github_only_ones() -> None:
    kinds = {name.partition("__")[0] for name in TYPED}
    github_only = {"runner_error", "rate_limited", "artifact_error"}  # cannot be caused here
    assert {rule.type for rule in CATALOG.rules} - github_only <= kinds


# ---------------------------------------------------------------------------- test results

# Parser examples that need the lines around them to mean a failure: a test name alone
# (mocha's and jest's titles, a go test still running when the timeout hit), a warning that
# a test is slow, a rerun that may pass, a worker starting a test. The parsers keep context;
# a rule sees one line, so these are left to the failure lines around them.
CONTEXT_ONLY = {
    "go-timeout-running",
    "go-timeout-frame",
    "jest-failure",
    "mocha-failure",
    "mocha-failure-top",
    "pytest-progress",
    "pytest-xdist-start",
    "cargo-test-slow",
    "nextest-in-progress",
}
# A go package that did not build is a compile error, as the issue asks.
OTHER_TYPE = {"go-build-failed": "compile_error"}
FAILED_STATUSES = {"failed", "hung", "unreported", "error", "timeout", "crashed"}


def failure_examples() -> list[tuple[str, str, str]]:
    found = []
    for parser in builtin_parsers().parsers:
        for example in parser.match_examples:
            status = dict(example.expect).get("status") or parser.status or ""
            if status in FAILED_STATUSES and parser.id not in CONTEXT_ONLY:
                found.append((parser.id, status, example.line))
    return found


@pytest.mark.parametrize(("parser", "status", "line"), failure_examples())
def test_parsers_failure_lines_are_failures_for_the_catalog(
    parser: str, status: str, line: str
) -> None:
    found = classify_text(line, CATALOG)
    assert found is not None, line
    wanted = {OTHER_TYPE[parser]} if parser in OTHER_TYPE else {"test_failure", "timeout", "crash"}
    assert found.type in wanted, (line, found.rule)
    if status == "hung":
        assert found.type == "timeout", (line, found.rule)


def test_context_only_list_names_real_parsers() -> None:
    ids = {parser.id for parser in builtin_parsers().parsers}
    assert CONTEXT_ONLY | set(OTHER_TYPE) <= ids


# ---------------------------------------------------------------------------- precedence


@pytest.mark.parametrize(
    ("lines", "kind", "evidence"),
    [
        (  # clippy's denied lint beats cargo's "could not compile" (a symptom)
            [
                "error: unneeded `return` statement",
                "  = note: `-D clippy::needless-return` implied by `-D warnings`",
                'error: could not compile `app` (bin "app") due to 1 previous error',
            ],
            "lint_error",
            "= note: `-D clippy::needless-return` implied by `-D warnings`",
        ),
        (  # clang-tidy's check name beats the compiler's file:line: error: form
            ["/w/a.cpp:3:12: error: use nullptr [modernize-use-nullptr,-warnings-as-errors]"],
            "lint_error",
            "/w/a.cpp:3:12: error: use nullptr [modernize-use-nullptr,-warnings-as-errors]",
        ),
        (  # a Go module error looks like a compile error, and is a dependency error
            [
                "main.go:3:8: no required module provides package github.com/acme/x; to add it:",
                "./main.go:9:2: undefined: x",
            ],
            "dependency_error",
            "main.go:3:8: no required module provides package github.com/acme/x; to add it:",
        ),
        (  # go vet's analyzer message beats the Go compiler's generic form
            [
                "# example.com/app",
                "./main.go:7:2: fmt.Printf format %d has arg n of wrong type string",
            ],
            "lint_error",
            "./main.go:7:2: fmt.Printf format %d has arg n of wrong type string",
        ),
        (  # the certificate problem caused pip's "no matching distribution"
            [
                "Could not fetch URL https://pypi.internal/simple/attrs/: There was a problem "
                "confirming the ssl certificate: HTTPSConnectionPool(host='pypi.internal')",
                "ERROR: Could not find a version that satisfies the requirement attrs",
                "ERROR: No matching distribution found for attrs",
            ],
            "network_error",
            "Could not fetch URL https://pypi.internal/simple/attrs/: There was a problem "
            "confirming the ssl certificate: HTTPSConnectionPool(host='pypi.internal')",
        ),
        (  # Playwright without its browser: every test fails, the browser is the cause
            [
                "  1) tests/home.spec.js:2:1 › home has title ─────────",
                "    Error: browserType.launch: Executable doesn't exist at /root/.cache/pw/x",
                "  1 failed",
            ],
            "dependency_error",
            "Error: browserType.launch: Executable doesn't exist at /root/.cache/pw/x",
        ),
        (  # PHP's memory limit is out of memory, not a crash
            ["PHP Fatal error:  Allowed memory size of 1024 bytes exhausted (tried to allocate 8)"],
            "out_of_memory",
            "PHP Fatal error: Allowed memory size of 1024 bytes exhausted (tried to allocate 8)",
        ),
        (  # a test that timed out is a timeout, though pytest lists it as FAILED
            [
                "E       Failed: Timeout (>1.0s) from pytest-timeout.",
                "FAILED test_slow.py::test_waits - Failed: Timeout (>1.0s) from pytest-timeout.",
            ],
            "timeout",
            "E Failed: Timeout (>1.0s) from pytest-timeout.",
        ),
        (  # Node's closing version line is a symptom: the missing package decides
            [
                "Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'zod' imported from /w/a.js",
                "    at packageResolve (node:internal/modules/esm/resolve:873:9)",
                "Node.js v20.20.2",
            ],
            "dependency_error",
            "Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'zod' imported from /w/a.js",
        ),
        (  # ... and alone it still says Node crashed
            [
                "Error: config/app.json is missing",
                "    at loadConfig (file:///w/a.mjs:3:9)",
                "Node.js v20.20.2",
            ],
            "crash",
            "Node.js v20.20.2",
        ),
        (  # a Python traceback whose last line names a missing module is not a crash
            [
                "Traceback (most recent call last):",
                '  File "/w/tool.py", line 1, in <module>',
                "ModuleNotFoundError: No module named 'yaml'",
            ],
            "dependency_error",
            "ModuleNotFoundError: No module named 'yaml'",
        ),
        (  # unittest prints the exception at the start of a line too: the test decides
            [
                "FAIL: test_total (tests.test_cart.CartTest.test_total)",
                "Traceback (most recent call last):",
                "AssertionError: 3 != 4",
            ],
            "test_failure",
            "FAIL: test_total (tests.test_cart.CartTest.test_total)",
        ),
        (  # the library the linker cannot find explains the undefined references
            [
                "/usr/bin/ld: main.o: in function `main': undefined reference to `ZSTD_compress'",
                "/usr/bin/ld: cannot find -lzstd: No such file or directory",
                "collect2: error: ld returned 1 exit status",
            ],
            "dependency_error",
            "/usr/bin/ld: cannot find -lzstd: No such file or directory",
        ),
        (  # the heap message of Surefire's fork report beats its generic fork error
            [
                "[ERROR] There was an error in the forked process",
                "[ERROR] Java heap space",
                "[ERROR] org.apache.maven.surefire.booter.SurefireBooterForkException: There "
                "was an error in the forked process",
            ],
            "out_of_memory",
            "[ERROR] Java heap space",
        ),
        (  # a registry denying the push beats buildx's closing lines (symptoms)
            [
                "#15 ERROR: failed to push ghcr.io/acme/web:sha-4f2a1c9: denied: installation "
                "not allowed to Create organization package",
                "ERROR: failed to build: failed to solve: failed to push "
                "ghcr.io/acme/web:sha-4f2a1c9: denied: installation not allowed to Create "
                "organization package",
            ],
            "permission_error",
            "#15 ERROR: failed to push ghcr.io/acme/web:sha-4f2a1c9: denied: installation not "
            "allowed to Create organization package",
        ),
        (  # the tests a Nix builder ran (nix-build prints its output) name the failure
            [
                "FAILED tests/test_parse.py::test_hex - assert 16 == 10",
                "error: builder for '/nix/store/8a9l4k2z-app-1.0.drv' failed with exit code 1;",
            ],
            "test_failure",
            "FAILED tests/test_parse.py::test_hex - assert 16 == 10",
        ),
        (  # Django's system checks are a report, not an uncaught exception
            [
                "SystemCheckError: System check identified some issues:",
                "",
                "ERRORS:",
                "shop.Order.total: (fields.E130) DecimalFields must define a "
                "'decimal_places' attribute.",
            ],
            "lint_error",
            "SystemCheckError: System check identified some issues:",
        ),
        (  # busted's Error line names the test; its closing counts are a symptom
            [
                "0 successes / 0 failures / 1 error / 0 pending : 0.01 seconds",
                "",
                "Error -> spec/io_spec.lua @ 7",
                "io reads the file",
                "./io.lua:3: attempt to index a nil value (local 'f')",
            ],
            "test_failure",
            "Error -> spec/io_spec.lua @ 7",
        ),
    ],
)
def test_cause_precedence_in_the_widened_catalog(
    lines: list[str], kind: str, evidence: str
) -> None:
    found = classify_log([raw_log(lines)], CATALOG)
    assert found is not None
    assert (found.type, normal(found.evidence)) == (kind, normal(evidence))


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("Module not found: Error: Can't resolve 'chart-lib' in '/w/app/src'", "dependency_error"),
        (
            "Module not found: Error: Can't resolve '@acme/ui/button' in '/w/src'",
            "dependency_error",
        ),
        ('✘ [ERROR] Could not resolve "dayjs"', "dependency_error"),
        (
            "Module not found: Error: Can't resolve './utils/format' in '/w/app/src'",
            "compile_error",
        ),
        ("Module not found: Can't resolve '@/components/PriceTag' in '/w/src'", "compile_error"),
        ('✘ [ERROR] Could not resolve "../lib/util"', "compile_error"),
    ],
)
def test_bundlers_missing_package_or_project_file(line: str, kind: str) -> None:
    """A bare specifier a bundler cannot resolve is a package that is not installed; a
    relative path or an alias (`@/`) is the project's own file, a compile error."""
    found = classify_log([raw_log([line])], CATALOG)
    assert found is not None
    assert (found.type, normal(found.evidence)) == (kind, normal(line))
