"""Test results from log lines, in the same single pass as classification.

`TestCollector` is a line listener: the classification scan passes it every cleaned
line that one of its `patterns` may match, with GitHub's line number, and asks for the
results at the end. Memory is bounded whatever the log: at most `cap` distinct results
are kept (passing ones take at most half of them), the rest are only counted; held and
awaiting results have their own bounds.

`parse_log_file` and `scan_lines` drive collectors without the classifier, for the
`multivac tests LOG...` command and for tests.
"""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import re2

from multivac.logstream import clean_line, raw_blocks
from multivac.testresults.model import (
    FAILED,
    NON_PASSING,
    PASSED,
    STATUSES,
    TestResult,
    clip_message,
    merge_results,
)
from multivac.testresults.parsers import (
    Block,
    ParserSet,
    TestParser,
    builtin_parsers,
    loosen,
    normalize_configuration,
    parse_duration,
    prefilter_patterns,
    render,
)

__all__ = [
    "DEFAULT_CAP",
    "LineListener",
    "TestCollector",
    "TestSummary",
    "parse_log_chunks",
    "parse_log_file",
    "scan_lines",
]

DEFAULT_CAP = 10_000  # distinct results kept per job
_GROUP = re.compile(r"\(\?P<(\w+)>")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
MAX_PENDING = 10_000  # held or awaiting results per job
NEVER_REPORTED = "started but never reported a result"


class LineListener(Protocol):
    """What the classification scan feeds (the contract with multivac.classify)."""

    @property
    def patterns(self) -> Sequence[str]: ...

    def feed(self, line: str, line_number: int) -> None: ...


@dataclass(frozen=True)
class TestSummary:
    """Per-job counts; `dropped` results were past the cap (counted, not kept) and may
    count a test reported twice twice."""

    __test__ = False

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    hung: int = 0
    flaky: int = 0
    dropped: int = 0

    @property
    def truncated(self) -> bool:
        return self.dropped > 0


@dataclass
class _Window:
    open_until: int = -1


@dataclass
class _Held:
    result: TestResult
    parser: TestParser
    line: str


@dataclass
class _Awaiting:
    parser: TestParser
    fields: dict[str, str]
    line: str
    line_number: int


# a line may end one block and start another: ends first, then starts, then the rest
_ROLE_END, _ROLE_START, _ROLE_ALSO, _ROLE_PATTERN = 0, 1, 2, 3


class TestCollector:
    """Collects the test results of one job's log, line by line (a `LineListener`)."""

    __test__ = False

    def __init__(self, parsers: ParserSet | None = None, *, cap: int = DEFAULT_CAP) -> None:
        self.parser_set = parsers if parsers is not None else builtin_parsers()
        self.cap = max(cap, 2)
        self._roles: list[list[tuple[int, int]]] = []  # per distinct regex: (role, parser)
        index: dict[str, int] = {}

        def add(pattern: str, role: int, parser: int) -> None:
            if pattern not in index:
                index[pattern] = len(self._roles)
                self._roles.append([])
            self._roles[index[pattern]].append((role, parser))

        for number, parser in enumerate(self.parser_set.parsers):
            for pattern in parser.patterns:
                add(pattern, _ROLE_PATTERN, number)
            if parser.block is not None:
                for pattern in parser.block.start:
                    add(pattern, _ROLE_START, number)
                for pattern in parser.block.also:
                    add(pattern, _ROLE_ALSO, number)
                for pattern in parser.block.end:
                    add(pattern, _ROLE_END, number)
        self._exact = tuple(index)
        self._set: Any = None
        if self._exact:
            options = re2.Options()
            options.log_errors = False
            self._set = re2.Set.SearchSet(options)
            for pattern in self._exact:
                self._set.Add(pattern)
            self._set.Compile()
        self._patterns = tuple(
            dict.fromkeys(
                p for parser in self.parser_set.parsers for p in prefilter_patterns(parser)
            )
        )
        # parsers whose every test id needs a value only an earlier line gives (jest's
        # --verbose lines need the file a PASS/FAIL line named): without it a line of
        # theirs cannot be a result, so it is not even searched
        self._needs: dict[int, frozenset[str]] = {}
        for number, parser in enumerate(self.parser_set.parsers):
            if parser.block or parser.sets or parser.hold or parser.release or parser.await_:
                continue
            groups = {name for pattern in parser.patterns for name in _GROUP.findall(pattern)}
            needed = [set(_PLACEHOLDER.findall(template)) - groups for template in parser.test]
            if needed and all(needed):
                self._needs[number] = frozenset.intersection(*map(frozenset, needed))
        self._windows: dict[tuple[str, ...], _Window] = {}
        self._context: dict[str, dict[str, str]] = {}
        self._held: OrderedDict[tuple[str, str], _Held] = OrderedDict()
        self._awaiting: dict[tuple[str, str], list[_Awaiting]] = {}
        self._awaiting_count = 0
        self._results: dict[tuple[str, str, str | None], TestResult] = {}
        self._fallback: set[tuple[str, str, str | None]] = set()
        self._passed_kept = 0
        self._dropped: Counter[str] = Counter()
        self._finished: list[TestResult] | None = None

    # ------------------------------------------------------------------ listener

    @property
    def patterns(self) -> Sequence[str]:
        """RE2 patterns searched in cleaned lines; a line matching none is never needed.
        They are loose supersets of the parsers' patterns, without anchors or captures
        and led by literal text where a parser's `prefilter` gives it, so that they can
        join the classification prefilter cheaply; `feed` checks each line exactly."""
        return self._patterns

    def feed(self, line: str, line_number: int) -> None:
        """One cleaned line (any superset of the lines `patterns` match is fine)."""
        if self._set is None:
            return
        hits = self._set.Match(line)
        if not hits:
            return
        roles = sorted(role for hit in hits for role in self._roles[hit])
        parsers = self.parser_set.parsers
        done: set[int] = set()
        for role, number in roles:
            parser = parsers[number]
            block = parser.block
            if role == _ROLE_END and block is not None:
                self._window(block).open_until = -1
            elif role == _ROLE_START and block is not None:
                self._window(block).open_until = line_number + block.within
            elif role == _ROLE_ALSO and block is not None:
                window = self._window(block)
                if line_number <= window.open_until:
                    window.open_until = line_number + block.within
            elif role == _ROLE_PATTERN and number not in done:
                done.add(number)
                needs = self._needs.get(number)
                if needs and not needs <= self._context.get(parser.framework, {}).keys():
                    continue
                self._apply(parser, line, line_number)

    # ------------------------------------------------------------------ results

    def results(self) -> list[TestResult]:
        """Every kept result in log order; ends the log (holds and awaits resolve)."""
        if self._finished is None:
            for key in list(self._awaiting):
                self._flush_awaiting(key, None)
            while self._held:
                _key, held = self._held.popitem(last=False)
                self._emit(held.result, held.parser)
            kept = [
                result
                for key, result in self._results.items()
                if key not in self._fallback or not self._covered(result)
            ]
            kept.sort(key=lambda r: r.line_number if r.line_number is not None else 1 << 62)
            self._finished = kept
        return list(self._finished)

    def summary(self) -> TestSummary:
        counts: Counter[str] = Counter(result.status for result in self.results())
        return TestSummary(
            passed=counts[PASSED],
            failed=counts[FAILED],
            skipped=counts["skipped"],
            hung=counts["hung"],
            flaky=counts["flaky"],
            dropped=sum(self._dropped.values()),
        )

    @property
    def dropped(self) -> dict[str, int]:
        """Results past the cap, by status: counted and reported, not kept."""
        return {status: self._dropped[status] for status in STATUSES if self._dropped[status]}

    # ------------------------------------------------------------------ internals

    def _window(self, block: Block) -> _Window:
        window = self._windows.get(block.start)
        if window is None:
            window = self._windows[block.start] = _Window()
        return window

    def _apply(self, parser: TestParser, line: str, line_number: int) -> None:
        regex = self.parser_set.regex
        trusted = parser.trusted
        for pattern in parser.exclude:
            if regex(pattern, trusted).search(line):
                return
        found = None
        for pattern in parser.patterns:
            found = regex(pattern, trusted).search(line)
            if found is not None:
                break
        if found is None:
            return
        if parser.block is not None:
            window = self._window(parser.block)
            if line_number > window.open_until:
                return
            window.open_until = -1 if parser.block.once else line_number + parser.block.within
        context = self._context.setdefault(parser.framework, {})
        groups = {k: v for k, v in found.groupdict().items() if v is not None}
        if parser.sets:
            for name in parser.sets:
                value = groups.get(name)
                if value:
                    context[name] = value
                else:
                    context.pop(name, None)
                if value and (parser.framework, name) in self._awaiting:
                    self._flush_awaiting((parser.framework, name), value)
            return
        fields = {**context, **groups}
        if parser.await_ is not None:
            self._await(parser, fields, line, line_number)
            return
        if parser.hold is not None:
            self._hold(parser, fields, line, line_number)
            return
        if parser.release is not None:
            self._release(parser, fields, line, line_number)
            return
        if self._passed_kept >= self.cap // 2 and self._past_cap(parser, fields):
            return
        result = parser.build(fields, line, line_number)
        if result is not None:
            self._emit(result, parser, "message" in fields)

    def _past_cap(self, parser: TestParser, fields: dict[str, str]) -> bool:
        """Count, without building it, a passing result that could only be dropped: the
        common line of a huge log once the cap is reached."""
        if parser.resolve_status(fields) != PASSED:
            return False
        test = parser.test_id(fields)
        if test is None:
            return True
        key = (parser.framework, test, normalize_configuration(fields.get("configuration")))
        if key in self._results:
            return False  # it may turn an earlier failure into a flaky test
        self._dropped[PASSED] += 1
        return True

    def _await(self, parser: TestParser, fields: dict[str, str], line: str, number: int) -> None:
        assert parser.await_ is not None
        fields.pop(parser.await_, None)  # the value comes from a later line
        if self._awaiting_count >= MAX_PENDING:
            # the closing line never came: resolve the oldest without it
            oldest = next(iter(self._awaiting))
            self._flush_awaiting(oldest, None)
        key = (parser.framework, parser.await_)
        self._awaiting.setdefault(key, []).append(_Awaiting(parser, fields, line, number))
        self._awaiting_count += 1

    def _flush_awaiting(self, key: tuple[str, str], value: str | None) -> None:
        for waiting in self._awaiting.pop(key, []):
            self._awaiting_count -= 1
            fields = dict(waiting.fields)
            if value is not None:
                fields[key[1]] = value
            result = waiting.parser.build(fields, waiting.line, waiting.line_number)
            if result is not None:
                self._emit(result, waiting.parser)

    def _hold(self, parser: TestParser, fields: dict[str, str], line: str, number: int) -> None:
        assert parser.hold is not None
        key = render([parser.hold], fields)
        test = parser.test_id(fields)
        if key is None or test is None:
            return
        result = parser.build(fields, line, number, status=parser.unreported)
        if result is None:
            return
        result = replace(result, message=clip_message(NEVER_REPORTED))
        slot = (parser.framework, key)
        previous = self._held.pop(slot, None)
        if previous is not None and previous.result.key != result.key:
            self._emit(previous.result, previous.parser)  # superseded: it never reported
        elif previous is not None:
            result = replace(result, line_number=previous.result.line_number)
        if len(self._held) >= MAX_PENDING:
            _oldest, stale = self._held.popitem(last=False)
            self._emit(stale.result, stale.parser)
        self._held[slot] = _Held(result, parser, line)

    def _release(self, parser: TestParser, fields: dict[str, str], line: str, number: int) -> None:
        assert parser.release is not None
        key = render([parser.release], fields)
        held = self._held.pop((parser.framework, key), None) if key is not None else None
        own = parser.build(fields, line, number)
        if held is None:
            if own is not None:
                self._emit(own, parser)
            return
        if own is not None and own.key != held.result.key and parser.test_id(fields):
            self._emit(held.result, held.parser)  # a different test: the held one never reported
            self._emit(own, parser)
            return
        status = parser.resolve_status(fields) or held.result.status
        base = held.result
        message = own.message if own is not None and own.message else ""
        if not message and status in NON_PASSING:
            # the status line alone ("[ fail ]", "null]") says little: keep the held line too
            message = clip_message(fields.get("message") or f"{held.line} {line}")
        duration = parse_duration(fields.get("duration"), parser.duration_unit)
        self._emit(
            replace(
                base,
                status=status,
                configuration=base.configuration
                or normalize_configuration(fields.get("configuration")),
                duration_s=duration if duration is not None else base.duration_s,
                message=message,
            ),
            parser,
        )

    def _emit(self, result: TestResult, parser: TestParser, explicit: bool = False) -> None:
        key = result.key
        old = self._results.get(key)
        if old is not None:
            self._results[key] = merge_results(old, result, repeat=parser.repeat, explicit=explicit)
            if not parser.fallback:
                self._fallback.discard(key)
            return
        passing = result.status not in NON_PASSING
        if len(self._results) >= self.cap or (passing and self._passed_kept >= self.cap // 2):
            self._dropped[result.status] += 1
            return
        self._results[key] = result
        if passing:
            self._passed_kept += 1
        if parser.fallback:
            self._fallback.add(key)

    def _covered(self, fallback: TestResult) -> bool:
        """A file-level fallback result says nothing new when a test of that file failed."""
        return any(
            other.framework == fallback.framework
            and other.suite == fallback.test
            and other.status in NON_PASSING
            and other.key != fallback.key
            for other in self._results.values()
        )


# ---------------------------------------------------------------------------- drivers


def _prefilter(patterns: Iterable[str]) -> Any:
    """One RE2 expression over raw blocks (timestamps still on) that finds every line
    any listener pattern may match: the patterns without anchors, as classification
    builds its own prefilter."""
    parts = [f"(?:{loosen(pattern)})" for pattern in patterns]
    options = re2.Options()
    options.log_errors = False
    options.never_nl = True
    options.max_mem = 256 << 20
    return re2.compile("|".join(parts).encode("utf-8"), options)


def scan_lines(chunks: Iterable[bytes], listeners: Sequence[LineListener]) -> int:
    """Feed each listener the cleaned lines its patterns may match, with GitHub's line
    numbers, in one pass over raw log chunks; returns the number of lines read. (The
    classification scan does the same for its listeners.)"""
    patterns = [p for listener in listeners for p in listener.patterns]
    if not patterns:
        return sum(block.count(b"\n") for block in raw_blocks(chunks))
    search = _prefilter(patterns).search
    lines = 0
    for block in raw_blocks(chunks):
        cursor, line_at_cursor, pos, size = 0, lines + 1, 0, len(block)
        while pos < size:
            found = search(block, pos)
            if found is None:
                break
            start = block.rfind(b"\n", 0, found.start()) + 1
            end = block.find(b"\n", found.start())
            end = size if end < 0 else end
            line_number = line_at_cursor + block.count(b"\n", cursor, start)
            cursor, line_at_cursor, pos = start, line_number, end + 1
            text = clean_line(block[start:end])
            for listener in listeners:
                listener.feed(text, line_number)
        lines += block.count(b"\n")
    return lines


def _file_chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(size):
            yield chunk


def parse_log_chunks(
    chunks: Iterable[bytes], parsers: ParserSet | None = None, *, cap: int = DEFAULT_CAP
) -> TestCollector:
    """A finished collector for a raw log stream (results, summary, dropped counts)."""
    collector = TestCollector(parsers, cap=cap)
    scan_lines(chunks, [collector])
    collector.results()
    return collector


def parse_log_file(
    path: str | Path, parsers: ParserSet | None = None, *, cap: int = DEFAULT_CAP
) -> list[TestResult]:
    """The test results of a log file, downloaded from GitHub or copied from the web UI."""
    return parse_log_chunks(_file_chunks(Path(path)), parsers, cap=cap).results()
