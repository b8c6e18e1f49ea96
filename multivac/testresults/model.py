"""What a parsed test result is: one frozen value per test of one job.

A result comes from a log line (or a few related lines) or from a JUnit XML file. Its
identity inside a job is (framework, test, configuration); the same test seen twice in
one job is merged by `merge_status`, which is where "flaky" comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from multivac.errors import MultivacError

FAILED = "failed"
HUNG = "hung"
FLAKY = "flaky"
PASSED = "passed"
SKIPPED = "skipped"
STATUSES = (FAILED, HUNG, FLAKY, PASSED, SKIPPED)
NON_PASSING = frozenset({FAILED, HUNG, FLAKY})
MAX_MESSAGE = 500


class TestParseError(MultivacError):
    """A `tests:` parser definition is invalid (bad YAML, key, pattern or example)."""

    __test__ = False  # not a pytest test class, whatever its name says
    exit_code = 2


@dataclass(frozen=True)
class TestResult:
    """One test's outcome in one job.

    `test` is the framework's id normalised as docs/tests.md describes (a pytest node
    id, `pkg.TestX/sub` for Go, `com.a.BTest.testX` for Java, ...). `suite` is the file
    or suite when the output names one. `line_number` is the log line (GitHub's
    numbering) that first reported the test; None for JUnit results.
    """

    __test__ = False

    framework: str
    test: str
    status: str
    suite: str | None = None
    configuration: str | None = None
    line_number: int | None = None
    duration_s: float | None = None
    message: str = ""
    source: str = "log"  # "log", or "junit:<artifact>/<member>"

    @property
    def key(self) -> tuple[str, str, str | None]:
        """Identity within one job."""
        return (self.framework, self.test, self.configuration)


def clip_message(text: str | None) -> str:
    """One line of at most MAX_MESSAGE characters: the first failure line, whitespace
    collapsed so that it can travel as a field."""
    if not text:
        return ""
    return " ".join(text.split())[:MAX_MESSAGE]


def merge_status(old: str, new: str) -> str:
    """The status of a test reported twice in one job, `old` first.

    A failure (or hang) followed by a pass is flaky; a pass followed by a failure stays
    a failure (pytest reports a teardown error after the test passed); a hang outranks
    a plain failure of the same test (the timeout line and the fail line of one run);
    skipped yields to anything that actually ran.
    """
    if old == new:
        return old
    if new == SKIPPED:
        return old
    if old == SKIPPED:
        return new
    if FLAKY in (old, new):
        return FLAKY
    if old in (FAILED, HUNG) and new == PASSED:
        return FLAKY
    if old == PASSED:
        return new
    return HUNG  # {failed, hung}


def merge_results(
    old: TestResult, new: TestResult, *, repeat: bool = False, explicit: bool = False
) -> TestResult:
    """`old` updated with a later report of the same test in the same job.

    A `repeat` report (a summary restating results printed earlier) refines a status
    but never makes a test flaky: pytest's summary lists a teardown error and the
    passing call of the same test. An `explicit` message (the runner's own message
    rather than the whole line) replaces a line kept as the message."""
    status = merge_status(old.status, new.status)
    if repeat and status == FLAKY and FLAKY not in (old.status, new.status):
        status = old.status
    message = old.message
    takes_new = not message or explicit or (old.status == PASSED and status != PASSED)
    if new.message and new.status in (FAILED, HUNG, FLAKY) and takes_new:
        message = new.message
    return replace(
        old,
        status=status,
        suite=old.suite or new.suite,
        duration_s=new.duration_s if new.duration_s is not None else old.duration_s,
        message=message,
    )
