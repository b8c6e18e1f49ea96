"""Per-test results from job logs and JUnit XML artifacts (see docs/tests.md).

- `TestCollector`: a line listener for the classification scan (one pass per log);
- `load_parsers` / `check_tests_file`: the `tests:` parsers, built-in and from rules files;
- `parse_junit` and `read_artifact`: JUnit XML, safely, from zipped artifacts;
- `merge_job_results`: log and artifact results of one job, the artifact winning.
"""

from multivac.testresults.collector import (
    DEFAULT_CAP,
    LineListener,
    TestCollector,
    TestSummary,
    parse_log_chunks,
    parse_log_file,
    scan_lines,
)
from multivac.testresults.model import (
    STATUSES,
    TestParseError,
    TestResult,
    merge_status,
)
from multivac.testresults.parsers import (
    ParserSet,
    TestParser,
    builtin_parsers,
    check_tests_file,
    check_tests_text,
    load_parsers,
)

__all__ = [
    "DEFAULT_CAP",
    "STATUSES",
    "LineListener",
    "ParserSet",
    "TestCollector",
    "TestParseError",
    "TestParser",
    "TestResult",
    "TestSummary",
    "builtin_parsers",
    "check_tests_file",
    "check_tests_text",
    "load_parsers",
    "merge_status",
    "parse_log_chunks",
    "parse_log_file",
    "scan_lines",
]
