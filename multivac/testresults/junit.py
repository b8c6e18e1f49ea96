"""JUnit XML test reports, parsed safely and in bounded memory.

The XML comes from other people's artifacts, so it is parsed with defusedxml: no entity
expansion (billion laughs), no external entities or DTDs fetched. It is read as a stream
(`iterparse`), each finished <testcase> turned into a result and cleared, so a report of
millions of cases never sits in memory whole. The shapes handled are the ones common
runners write: <testsuites> or a bare <testsuite> root, nested suites, <failure>,
<error>, <skipped>, and Surefire's/nextest's <flakyFailure>, <flakyError>,
<rerunFailure>, <rerunError>.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import IO, Any

import defusedxml
import defusedxml.ElementTree as SafeET

from multivac.errors import MultivacError
from multivac.testresults.model import (
    FAILED,
    FLAKY,
    HUNG,
    PASSED,
    SKIPPED,
    TestResult,
    clip_message,
)

__all__ = ["JUnitError", "iter_junit", "junit_id"]

JUNIT_ROOTS = frozenset({"testsuites", "testsuite"})
_FILE_SUFFIXES = (".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".mts", ".cts")
_TIMEOUT = re.compile(
    r"^(?:Failed: )?Timeout\b|Timeout of \d+ ?ms exceeded|test timed out after|\btimed out\b",
    re.IGNORECASE,
)


class JUnitError(MultivacError):
    """A file that is not a readable JUnit XML report (one sentence, names the file)."""


def _local(tag: Any) -> str:
    text = tag if isinstance(tag, str) else ""
    return text.rsplit("}", 1)[-1]


def junit_id(classname: str, name: str) -> str:
    """The test id a JUnit <testcase> gives: `classname.name`, or `name` alone when the
    class is empty or already starts the name (jest-junit repeats it there)."""
    classname, name = classname.strip(), name.strip()
    if not classname or classname == name or name.startswith(classname + " "):
        return name or classname
    if not name:
        return classname
    if "/" in classname or classname.endswith(_FILE_SUFFIXES):
        return f"{classname} > {name}"  # vitest: the class is the test file
    return f"{classname}.{name}"


def _seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value.replace(",", ""))
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _framework(attrs: dict[str, str], case: dict[str, str]) -> str:
    """The runner that wrote the report, where its shape tells; else "junit"."""
    name = attrs.get("name", "").lower()
    if "pytest" in name:
        return "pytest"
    if name.startswith("jest"):
        return "jest"
    if name.startswith("vitest"):
        return "vitest"
    if name.startswith("nextest"):
        return "nextest"
    if "assertions" in case and "class" in case:
        return "phpunit"
    if case.get("status") in ("run", "fail", "notrun", "disabled"):
        return "ctest"
    return "junit"


def iter_junit(stream: IO[bytes], origin: str) -> Iterator[TestResult]:
    """Each <testcase> of a JUnit XML stream as a result, in document order.

    Raises JUnitError (naming `origin`) for XML that is malformed or truncated, that
    declares entities or external references, or whose root is not a JUnit element;
    results already yielded stay valid."""
    suites: list[str] = []
    root: str | None = None
    root_attrs: dict[str, str] = {}
    framework: str | None = None
    children: list[tuple[str, dict[str, str], str]] = []
    try:
        events = SafeET.iterparse(
            stream, events=("start", "end"), forbid_dtd=False, forbid_entities=True
        )
        for event, element in events:
            tag = _local(element.tag)
            if event == "start":
                if root is None:
                    root = tag
                    root_attrs = dict(element.attrib)
                    if tag not in JUNIT_ROOTS:
                        raise JUnitError(
                            f"{origin}: not JUnit XML (the root element is <{tag}>, "
                            "expected <testsuites> or <testsuite>)."
                        )
                if tag == "testsuite":
                    suites.append(element.get("name", ""))
                elif tag == "testcase":
                    children = []
                continue
            if tag == "testcase":
                case = dict(element.attrib)
                if framework is None:
                    framework = _framework(root_attrs, case)
                yield _result(case, children, suites, framework, origin)
                children = []
                element.clear()
            elif tag in (
                "failure",
                "error",
                "skipped",
                "flakyFailure",
                "flakyError",
                "rerunFailure",
                "rerunError",
            ):
                text = element.text or ""
                children.append((tag, dict(element.attrib), text[:2000]))
                element.clear()
            elif tag == "testsuite":
                if suites:
                    suites.pop()
                element.clear()
            elif tag in ("system-out", "system-err", "properties"):
                element.clear()
    except JUnitError:
        raise
    except defusedxml.DefusedXmlException as exc:
        raise JUnitError(f"{origin}: refused unsafe XML ({type(exc).__name__}).") from None
    except ET.ParseError as exc:
        raise JUnitError(f"{origin}: not well-formed XML ({exc}).") from None
    if root is None:
        raise JUnitError(f"{origin}: empty file, not JUnit XML.")


def _result(
    case: dict[str, str],
    children: list[tuple[str, dict[str, str], str]],
    suites: list[str],
    framework: str,
    origin: str,
) -> TestResult:
    tags = {tag for tag, _attrs, _text in children}
    failing = [c for c in children if c[0] in ("failure", "error", "rerunFailure", "rerunError")]
    flaky = [c for c in children if c[0] in ("flakyFailure", "flakyError")]
    message = ""
    if failing or flaky:
        _tag, attrs, text = (failing or flaky)[0]
        first = text.strip().splitlines()[0] if text.strip() else ""
        message = attrs.get("message") or first or attrs.get("type", "")
    if failing:
        status = HUNG if _TIMEOUT.search(message) else FAILED
    elif flaky:
        status = FLAKY
    elif "skipped" in tags or case.get("status") in ("notrun", "disabled", "skipped"):
        status = SKIPPED
    else:
        status = PASSED
    classname = case.get("classname") or case.get("class") or ""
    test = junit_id(classname, case.get("name", ""))
    suite = case.get("file") or classname or (suites[-1] if suites else None) or None
    return TestResult(
        framework=framework,
        test=test or "(unnamed)",
        status=status,
        suite=suite,
        line_number=None,
        duration_s=_seconds(case.get("time")),
        message=clip_message(message),
        source=f"junit:{origin}",
    )
