"""Test-result parsers as data: `tests:` entries in YAML, checked and compiled.

A parser names a framework and RE2 patterns whose named groups carry the parts of a
result (`test`, `suite`/`file`, `configuration`, `duration`, `message`, `status`).
Formats that spread one result over several lines are still data, through a few
generic features (docs/tests.md describes each):

- `sets`: the line only remembers values (the file jest is reporting on, the crate
  cargo is running) for later lines of the same framework;
- `await`: the result waits for a later line that sets a value (go test names the
  package after its tests);
- `hold` / `release`: a test started but not finished yet (test-run prints the name,
  then the status on its own line; pytest-xdist prints the node id when a worker starts
  it). A held test that is never released gets the `unreported` status: a worker whose
  test never reports a result counts as failed;
- `block`: the parser counts only in the lines right after a header (ctest's
  `The following tests FAILED:`, test-run's `Failed tasks:`).

The built-in parsers ship as `multivac/testresults/parsers/*.yaml`; a rules file or
pack (`--rules tarantool`) may add a `tests:` section of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import re2

from multivac.logstream import clean_text
from multivac.testresults.model import (
    FAILED,
    HUNG,
    STATUSES,
    TestParseError,
    TestResult,
    clip_message,
)
from multivac.yamlentries import head_problems, load_yaml, read_entries, read_source, strings

__all__ = [
    "Block",
    "Example",
    "ParserSet",
    "TestParser",
    "builtin_parsers",
    "check_tests_file",
    "check_tests_text",
    "load_parsers",
    "parse_duration",
    "parsers_from_text",
]

PARSER_KEYS = frozenset(
    {
        "id",
        "framework",
        "description",
        "patterns",
        "status",
        "statuses",
        "test",
        "suite",
        "replace",
        "sets",
        "await",
        "hold",
        "release",
        "unreported",
        "block",
        "exclude",
        "normalize",
        "fallback",
        "repeat",
        "prefilter",
        "duration_unit",
        "examples",
        "disabled",
    }
)
BLOCK_KEYS = frozenset({"start", "within", "also", "end", "once"})
EXPECT_KEYS = frozenset(
    {"line", "test", "status", "suite", "configuration", "duration_s", "message", "context"}
)
TOP_LEVEL_KEYS = frozenset({"rules", "tests", "version"})
DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
NULL_CONFIGURATIONS = frozenset({"", "null", "none", "~", "-"})
_FRAMEWORK = re.compile(r"^[a-z][a-z0-9_.+-]*$")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_GROUP = re.compile(r"\(\?P<([A-Za-z_][A-Za-z0-9_]*)>")
_DURATION_PART = re.compile(
    r"(\d+(?:[.,]\d+)?)\s*(ns|us|µs|ms|sec(?:ond)?s?|s|m(?:in)?|h)?(?![A-Za-z])"
)
_DIGITS = re.compile(r"\d+(?:/\d+)?")


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 64 << 20
    return options


# ---------------------------------------------------------------------------- values


def parse_duration(text: str | None, unit: str = "s") -> float | None:
    """Seconds from the ways runners print durations: `0.01s`, `12 ms`, `(3 ms)`,
    `10m0s`, `1h2m3.5s`, `0.05 sec`, `[   1.000s]`, or a bare number in `unit`."""
    if not text:
        return None
    total = 0.0
    found = False
    for number, suffix in _DURATION_PART.findall(text.replace("<", " ").replace(">", " ")):
        value = float(number.replace(",", "."))
        key = (suffix or unit).lower()
        if key.startswith("sec"):
            key = "s"
        elif key.startswith("min"):
            key = "m"
        total += value * DURATION_UNITS.get(key, 1.0)
        found = True
    return round(total, 6) if found else None


def normalize_configuration(value: str | None) -> str | None:
    """test-run writes a missing configuration as `null` or `None`: both mean none."""
    if value is None:
        return None
    text = value.strip()
    return None if text.lower() in NULL_CONFIGURATIONS else text


def _unittest_id(fields: Mapping[str, str], test: str) -> str:
    """`pkg.mod.Class.test_x` from Python 3.11's `test_x (pkg.mod.Class.test_x)` and
    from older Pythons' `test_x (pkg.mod.Class)`; a subTest keeps its parameters."""
    method = fields.get("method", "")
    path = fields.get("path", test)
    dotted = path if path.endswith("." + method) or not method else f"{path}.{method}"
    subtest = fields.get("subtest")
    return f"{dotted} ({subtest})" if subtest else dotted


NORMALIZERS = {"unittest": _unittest_id}


_TEMPLATES: dict[str, tuple[tuple[str, ...], bool]] = {}


def render(templates: Sequence[str], fields: Mapping[str, str]) -> str | None:
    """The first template whose placeholders all have non-empty values."""
    for template in templates:
        parsed = _TEMPLATES.get(template)
        if parsed is None:
            names = tuple(_PLACEHOLDER.findall(template))
            parsed = _TEMPLATES[template] = (
                names,
                template == "{" + names[0] + "}" if len(names) == 1 else False,
            )
        names, single = parsed
        if all(fields.get(name) for name in names):
            if single:
                return fields[names[0]].strip() or None
            return _PLACEHOLDER.sub(lambda m: fields[m.group(1)], template).strip() or None
    return None


# a leading `^` and optional whitespace select nothing in a search: dropped
_CARET = re.compile(r"^\^?(?:\\s\*| \*)?")
_NAMED = re.compile(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>")


def loosen(pattern: str) -> str:
    """A superset of a pattern for prefiltering raw lines (timestamps still on): no
    `^`, no final `$`, and no named groups, so that many patterns share one expression."""
    loose = _CARET.sub("", pattern, count=1)
    if loose.endswith("$") and not loose.endswith("\\$"):
        loose = loose[:-1]
    return _NAMED.sub("(?:", loose)


def prefilter_patterns(parser: TestParser) -> list[str]:
    """The loose patterns that find every line a parser needs (see `loosen`)."""
    block = parser.block
    own = parser.prefilter or parser.patterns
    extra = (*block.start, *block.also, *block.end) if block is not None else ()
    return [loosen(pattern) for pattern in (*own, *extra)]


# ---------------------------------------------------------------------------- definitions


@dataclass(frozen=True)
class Block:
    """Lines that count only right after a header: `within` lines of the header or of
    the previous line of the block (1: the lines must follow each other); `also`
    lines keep the block open without producing anything; an `end` line closes it, and
    so does the first result of a `once` block."""

    start: tuple[str, ...]
    within: int = 1
    also: tuple[str, ...] = ()
    end: tuple[str, ...] = ()
    once: bool = False


@dataclass(frozen=True)
class Example:
    line: str
    expect: tuple[tuple[str, str | None], ...] = ()
    context: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class TestParser:
    """One `tests:` entry, validated."""

    __test__ = False

    id: str
    framework: str
    patterns: tuple[str, ...]
    status: str | None = None
    statuses: tuple[tuple[str, str], ...] = ()
    test: tuple[str, ...] = ("{test}",)
    suite: tuple[str, ...] = ("{suite}", "{file}")
    replace: tuple[tuple[str, str], ...] = ()
    sets: tuple[str, ...] = ()
    await_: str | None = None
    hold: str | None = None
    release: str | None = None
    unreported: str = FAILED
    block: Block | None = None
    exclude: tuple[str, ...] = ()
    normalize: str | None = None
    fallback: bool = False
    repeat: bool = False
    prefilter: tuple[str, ...] = ()
    duration_unit: str = "s"
    description: str = ""
    match_examples: tuple[Example, ...] = ()
    no_match_examples: tuple[str, ...] = ()
    origin: str = ""

    @property
    def trusted(self) -> bool:
        """Shipped with multivac (built-in or a shipped pack), not a user's file."""
        return self.origin.startswith(("built-in ", "pack "))

    def resolve_status(self, fields: Mapping[str, str]) -> str | None:
        """The status a line reports: its `status` text through `statuses` (exact,
        then with numbers as N, then its first word, then `*`), else the fixed one."""
        text = fields.get("status")
        if text is not None and self.statuses:
            table = dict(self.statuses)
            stripped = text.strip()
            for candidate in (
                stripped,
                _DIGITS.sub("N", stripped),
                stripped.split(" ", 1)[0] if stripped else "",
                "*",
            ):
                if candidate in table:
                    return table[candidate]
        elif text is not None and text.strip().lower() in STATUSES:
            return text.strip().lower()
        return self.status

    def test_id(self, fields: Mapping[str, str]) -> str | None:
        test = render(self.test, fields)
        if test is None:
            return None
        if self.normalize:
            test = NORMALIZERS[self.normalize](fields, test)
        for old, new in self.replace:
            test = test.replace(old, new)
        return test.strip() or None

    def build(
        self,
        fields: Mapping[str, str],
        line: str,
        line_number: int | None,
        status: str | None = None,
    ) -> TestResult | None:
        """The result a line reports, None when it names no test or no status."""
        test = self.test_id(fields)
        status = status or self.resolve_status(fields)
        if test is None or status is None:
            return None
        message = fields.get("message") or (line if status in (FAILED, HUNG) else "")
        return TestResult(
            framework=self.framework,
            test=test,
            status=status,
            suite=render(self.suite, fields),
            configuration=normalize_configuration(fields.get("configuration")),
            line_number=line_number,
            duration_s=parse_duration(fields.get("duration"), self.duration_unit),
            message=clip_message(message),
        )


@dataclass(frozen=True)
class ParserSet:
    """Parsers in a fixed order (built-in first, later sources override by id)."""

    parsers: tuple[TestParser, ...]
    _compiled: dict[tuple[str, bool], Any] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.parsers)

    def frameworks(self) -> list[str]:
        return sorted({p.framework for p in self.parsers})

    def regex(self, pattern: str, trusted: bool = False) -> Any:
        """A compiled pattern for taking a matched line apart. The shipped patterns
        use Python's `re` (ASCII classes, as in RE2), several times faster per line
        than the RE2 binding; a user's patterns stay RE2, whose time is linear whatever
        they say. Which lines match at all is always decided by RE2."""
        key = (pattern, trusted)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = (
                re.compile(pattern, re.ASCII) if trusted else re2.compile(pattern, _options())
            )
            self._compiled[key] = compiled
        return compiled


# ---------------------------------------------------------------------------- loading


def _check_regex(pattern: str, what: str, why: list[str]) -> set[str]:
    """Problems of one RE2 pattern; returns its named groups."""
    try:
        re2.compile(pattern, _options())
    except re2.error as exc:
        why.append(f"{what} {pattern!r} is not a valid RE2 expression: {exc}")
        return set()
    return set(_GROUP.findall(pattern))


def _mapping(value: Any, what: str, why: list[str]) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict) or not all(
        isinstance(k, str | int) and isinstance(v, str) for k, v in value.items()
    ):
        why.append(f"'{what}' must map text to text")
        return ()
    return tuple((str(k), v) for k, v in value.items())


def _examples(value: Any, why: list[str]) -> tuple[tuple[Example, ...], tuple[str, ...]]:
    if value is None:
        return (), ()
    if not isinstance(value, dict) or set(value) - {"match", "no_match"}:
        why.append("'examples' must have only 'match' and 'no_match' lists")
        return (), ()
    matches: list[Example] = []
    raw_match = value.get("match") or []
    if not isinstance(raw_match, list):
        why.append("'examples.match' must be a list")
        raw_match = []
    for item in raw_match:
        if isinstance(item, str):
            matches.append(Example(item))
            continue
        if not isinstance(item, dict) or not isinstance(item.get("line"), str):
            why.append("each 'examples.match' item must be a line or a mapping with 'line'")
            continue
        unknown = set(map(str, item)) - EXPECT_KEYS
        if unknown:
            why.append(f"unknown keys in an example: {', '.join(sorted(unknown))}")
            continue
        context = item.get("context") or {}
        if not isinstance(context, dict):
            why.append("an example's 'context' must map names to text")
            continue
        expect = tuple(
            (str(k), None if v is None else str(v))
            for k, v in item.items()
            if k not in ("line", "context")
        )
        matches.append(
            Example(item["line"], expect, tuple((str(k), str(v)) for k, v in context.items()))
        )
    no_match = strings(value.get("no_match", []))
    if no_match is None:
        why.append("'examples.no_match' must be a list of lines")
        no_match = []
    return tuple(matches), tuple(no_match)


def _block(value: Any, why: list[str]) -> Block | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - BLOCK_KEYS or "start" not in value:
        why.append("'block' must have 'start' and optionally 'within', 'also', 'end', 'once'")
        return None
    start = strings(value["start"])
    also = strings(value.get("also", []))
    end = strings(value.get("end", []))
    within = value.get("within", 1)
    if not start:
        why.append("'block.start' must be a pattern or a list of patterns")
        return None
    if also is None or end is None:
        why.append("'block.also' and 'block.end' must be lists of patterns")
        return None
    if isinstance(within, bool) or not isinstance(within, int) or not 1 <= within <= 100_000:
        why.append("'block.within' must be a number of lines from 1 to 100000")
        return None
    once = value.get("once", False)
    if not isinstance(once, bool):
        why.append("'block.once' must be true or false")
        return None
    for pattern in [*start, *also, *end]:
        _check_regex(pattern, "block pattern", why)
    return Block(tuple(start), within, tuple(also), tuple(end), once)


def _templates(value: Any, default: tuple[str, ...], what: str, why: list[str]) -> tuple[str, ...]:
    if value is None:
        return default
    templates = strings(value)
    if not templates:
        why.append(f"'{what}' must be a template like '{{class}}.{{method}}' or a list of them")
        return default
    return tuple(templates)


def _parser_from(entry: dict[str, Any], origin: str) -> tuple[TestParser | None, list[str]]:
    why, only_disables = head_problems(entry, PARSER_KEYS)
    if only_disables:
        return None, []
    framework = entry.get("framework")
    if not isinstance(framework, str) or not _FRAMEWORK.match(framework):
        why.append("'framework' must be a lower-case name like pytest")
    patterns = strings(entry.get("patterns"))
    groups: set[str] = set()
    if not patterns:
        why.append("'patterns' must be a non-empty list of regular expressions")
        patterns = []
    for pattern in patterns:
        groups |= _check_regex(pattern, "pattern", why)
    status = entry.get("status")
    if status is not None and status not in STATUSES:
        why.append(f"'status' must be one of {', '.join(STATUSES)}")
    statuses = _mapping(entry.get("statuses"), "statuses", why)
    for text, value in statuses:
        if value not in STATUSES:
            why.append(f"'statuses' maps {text!r} to {value!r}, not one of {', '.join(STATUSES)}")
    unreported = entry.get("unreported", FAILED)
    if unreported not in STATUSES:
        why.append(f"'unreported' must be one of {', '.join(STATUSES)}")
    sets = strings(entry.get("sets", []))
    if sets is None:
        why.append("'sets' must be a list of group names")
        sets = []
    for name in sets:
        if patterns and name not in groups:
            why.append(f"'sets' names {name!r}, which no pattern captures")
    wait = entry.get("await")
    hold = entry.get("hold")
    release = entry.get("release")
    for key, given in (("await", wait), ("hold", hold), ("release", release)):
        if given is not None and not isinstance(given, str):
            why.append(f"'{key}' must be text")
    if hold is not None and release is not None:
        why.append("'hold' and 'release' exclude each other")
    if sets and (hold or release or wait):
        why.append("a parser that 'sets' values produces no result: drop hold/release/await")
    normalize = entry.get("normalize")
    if normalize is not None and normalize not in NORMALIZERS:
        why.append(f"'normalize' must be one of {', '.join(sorted(NORMALIZERS))}")
    exclude = strings(entry.get("exclude", []))
    if exclude is None:
        why.append("'exclude' must be a list of patterns")
        exclude = []
    for pattern in exclude:
        _check_regex(pattern, "exclude pattern", why)
    prefilter = strings(entry.get("prefilter", []))
    if prefilter is None:
        why.append("'prefilter' must be a list of patterns")
        prefilter = []
    for pattern in prefilter:
        _check_regex(pattern, "prefilter pattern", why)
    fallback = entry.get("fallback", False)
    repeat = entry.get("repeat", False)
    for key, flag in (("fallback", fallback), ("repeat", repeat)):
        if not isinstance(flag, bool):
            why.append(f"'{key}' must be true or false")
    unit = entry.get("duration_unit", "s")
    if unit not in DURATION_UNITS:
        why.append(f"'duration_unit' must be one of {', '.join(DURATION_UNITS)}")
    description = entry.get("description", "")
    if not isinstance(description, str):
        why.append("'description' must be text")
    replace = _mapping(entry.get("replace"), "replace", why)
    block = _block(entry.get("block"), why)
    test = _templates(entry.get("test"), ("{test}",), "test", why)
    suite = _templates(entry.get("suite"), ("{suite}", "{file}"), "suite", why)
    match, no_match = _examples(entry.get("examples"), why)
    if not sets and status is None and not statuses and hold is None:
        why.append("a parser needs a 'status', a 'statuses' map, 'sets' or 'hold'")
    if why:
        return None, why
    return (
        TestParser(
            id=str(entry["id"]),
            framework=str(framework),
            patterns=tuple(patterns),
            status=status,
            statuses=statuses,
            test=test,
            suite=suite,
            replace=replace,
            sets=tuple(sets),
            await_=wait,
            hold=hold,
            release=release,
            unreported=str(unreported),
            block=block,
            exclude=tuple(exclude),
            normalize=normalize,
            fallback=bool(fallback),
            repeat=bool(repeat),
            prefilter=tuple(prefilter),
            duration_unit=str(unit),
            description=str(description).strip(),
            match_examples=match,
            no_match_examples=no_match,
            origin=origin,
        ),
        [],
    )


def parsers_from_text(text: str, name: str) -> tuple[list[TestParser], list[str], set[str]]:
    """Parsers of one file's `tests:` section, the problems found, the ids it disables.

    A file without a `tests:` key has no parsers and no problems: a plain rules file."""
    data, problem = load_yaml(text, name)
    if problem is not None:
        return [], [problem], set()
    if isinstance(data, list) or data is None:
        return [], [], set()
    if not isinstance(data, dict):
        return [], [f"{name}: expected a mapping with 'rules' and/or 'tests'"], set()
    extra = set(map(str, data)) - TOP_LEVEL_KEYS
    if extra:
        keys = ", ".join(sorted(extra))
        return [], [f"{name}: unknown top-level keys: {keys} (expected 'rules' or 'tests')"], set()
    entries = data.get("tests")
    if entries is None:
        return [], [], set()
    if not isinstance(entries, list):
        return [], [f"{name}: expected a list of parsers under 'tests:'"], set()
    found = read_entries(
        entries, name, "tests parser", "a mapping with id, framework and patterns", _parser_from
    )
    return found.built, found.problems, found.disabled


def _builtin_texts() -> list[tuple[str, str]]:
    folder = resources.files("multivac.testresults").joinpath("parsers")
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".yaml"))
    return [(folder.joinpath(n).read_text("utf-8"), f"built-in {n}") for n in names]


def _read_source(source: str) -> tuple[str, str]:
    """(text, name) of a rules file or a shipped rules pack holding a `tests:` section."""
    return read_source(source, TestParseError, flag="--rules")


def _merge(texts: Iterable[tuple[str, str]]) -> ParserSet:
    merged: dict[str, TestParser] = {}
    for text, name in texts:
        parsers, problems, disabled = parsers_from_text(text, name)
        if problems:
            more = f" (and {len(problems) - 1} more; see `multivac rules check`)"
            raise TestParseError(problems[0] + ("" if len(problems) == 1 else more) + ".")
        for parser_id in disabled:
            merged.pop(parser_id, None)
        for parser in parsers:
            merged.pop(parser.id, None)  # an override moves to the end, after what it uses
            merged[parser.id] = parser
    return ParserSet(tuple(merged.values()))


def builtin_parsers() -> ParserSet:
    return _merge(_builtin_texts())


def load_parsers(sources: Sequence[str] = (), *, builtin: bool = True) -> ParserSet:
    """The built-in parsers plus the `tests:` sections of each source (a rules file or a
    shipped pack such as `tarantool`); later entries override earlier ones by id and
    `disabled: true` removes one."""
    texts = _builtin_texts() if builtin else []
    texts += [_read_source(source) for source in sources]
    return _merge(texts)


# ---------------------------------------------------------------------------- checking


def evaluate_line(
    parser: TestParser,
    line: str,
    context: Mapping[str, str] | None = None,
) -> dict[str, str | None] | None:
    """What one line alone gives under one parser (blocks, holds and awaits aside):
    None when no pattern matches or an `exclude` does; else its fields, with the
    rendered `test`, `status`, `suite`, `configuration`, `duration_s` and `message`."""
    for pattern in parser.exclude:
        if re2.search(pattern, line, _options()):
            return None
    for pattern in parser.patterns:
        found = re2.search(pattern, line, _options())
        if found is None:
            continue
        fields = dict(context or {})
        fields.update({k: v for k, v in found.groupdict().items() if v is not None})
        out: dict[str, str | None] = dict(fields)
        if parser.sets:
            return out
        result = parser.build(fields, line, None, parser.unreported if parser.hold else None)
        if result is None:
            out["test"] = parser.test_id(fields)
            out["status"] = parser.resolve_status(fields)
            return out
        out.update(
            test=result.test,
            status=result.status,
            suite=result.suite,
            configuration=result.configuration,
            duration_s=None if result.duration_s is None else f"{result.duration_s:g}",
            message=result.message,
        )
        return out
    return None


def check_tests_text(text: str, name: str) -> list[str]:
    """Every problem of a file's `tests:` section, examples included (empty: fine)."""
    parsers, problems, _disabled = parsers_from_text(text, name)
    for parser in parsers:
        label = f"{name}: tests parser {parser.id!r}"
        for example in parser.match_examples:
            line = clean_text(example.line).rstrip("\n")
            got = evaluate_line(parser, line, dict(example.context))
            if got is None:
                problems.append(f"{label}: example does not match: {example.line!r}")
                continue
            loose = [re2.compile(p, _options()) for p in prefilter_patterns(parser)]
            if not any(p.search(line) for p in loose):
                problems.append(f"{label}: 'prefilter' misses the example {example.line!r}")
            for key, want in example.expect:
                have = got.get(key)
                if have != want:
                    problems.append(
                        f"{label}: example {example.line!r} gives {key} {have!r}, not {want!r}"
                    )
        for raw in parser.no_match_examples:
            line = clean_text(raw).rstrip("\n")
            got = evaluate_line(parser, line)
            if got is not None and (parser.sets or got.get("test")):
                problems.append(f"{label}: near-miss example matches: {raw!r}")
    return problems


def check_tests_file(path: str) -> list[str]:
    """Every problem of the `tests:` section of a rules file or pack (empty when it is
    fine or has none), examples included; for `multivac rules check`."""
    try:
        text, name = _read_source(path)
    except TestParseError as exc:
        return [str(exc)]
    return check_tests_text(text, name)
