"""Why a job failed: a log stream (or annotations) in, a Classification out.

Rules are data (`rules/*.yaml`, safe-loaded) compiled with RE2, so matching is linear in
the log's size whatever a rule says. One pass over the raw bytes: a multi-literal
prefilter (`prefilter.py`, Hyperscan when installed, else RE2) finds the few lines any
rule or listener could match; only those are cleaned and checked exactly with an RE2 set.

Where the job failed decides which matches count (see docs/rules.md):

- GitHub logs (raw, web-UI copies, `gh run view --log`): the first failed step's section.
  It is the step the job's `steps` name, else the section of the first
  `##[error]Process completed with exit code` (or another step-failure marker, or the
  `##[error]` of a step that runs an action), else the section of the last `##[error]`.
  Steps that fail after it (notifications, uploads, cleanup) are consequences: their types
  go to `Classification.also`.
- Other console logs: the last block of error-looking lines, however long the trace after
  it; `Error: ` is ordinary text there.

Among the matches there a cause beats a symptom (a rule marked `symptom: true`, such as
"N tests failed"), then the highest priority wins, then the earliest line.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import re2

from multivac import prefilter as _prefilter
from multivac.errors import RuleError
from multivac.layout import GH, PLAIN, Layout, detect_layout
from multivac.logstream import (
    BUILDKIT_BYTES,
    CONTROL_CLASS,
    CONTROL_DELETE,
    MAX_LINE,
    clean_bytes,
    clean_text,
    raw_blocks,
)
from multivac.model import Classification
from multivac.prefilter import active_engine, available_engines, engine_status, unanchored
from multivac.signature import signature
from multivac.yamlentries import (
    head_problems,
    load_yaml,
    read_entries,
    read_source,
    shipped_packs,
    strings,
)

__all__ = [
    "Catalog",
    "Classification",
    "LineListener",
    "Rule",
    "active_engine",
    "available_engines",
    "check_rules_file",
    "classify_annotations",
    "classify_file",
    "classify_log",
    "classify_text",
    "engine_status",
    "load_catalog",
    "scan_log",
    "shipped_packs",
    "unanchored",
]

SOURCES = ("log", "annotation", "both")
RESERVED_TYPES = frozenset({"successful_jobs", "cancelled", "tests", "test_summary"})
UNKNOWN = "unknown_failure"
RULE_KEYS = frozenset(
    {
        "id",
        "type",
        "description",
        "patterns",
        "priority",
        "symptom",
        "step",
        "source",
        "examples",
        "disabled",
    }
)
_TYPE = re.compile(r"^[a-z][a-z0-9_]*$")
GAP = 30  # error-looking lines at most this far apart form one block
BLOCKS_BACK = 3  # in console logs, how many blocks back from the last one may decide
MAX_EVIDENCE = 500
MAX_TRACKED = 50_000  # matches remembered: bounds memory on huge logs
PARALLEL_MIN = 48 << 20  # files at least this large are scanned by two processes
CONTEXT_BEFORE = 31  # lines kept before a candidate line scanned in another process
CONTEXT_AFTER = 5
CONTEXT_BYTES = 8192
MAX_CONTEXTS = 1000  # failure-marker contexts kept per log (each at most 4 KB)
GENERIC_ANNOTATION = re.compile(r"^Process completed with exit code \d+\.?$")

# GitHub's own markers. A step that fails ends with one of the STEP_FAILED lines; any
# other `##[error]` may come from a step that passed (`echo ::error::`). Logs copied from
# the web UI show `Error: ` instead of `##[error]`; there only the step-failure lines count,
# so a passing step that prints `Error: usage` is never taken for the failure.
STEP_FAILED = re.compile(
    r"^(?:##\[error\]|Error: )(?:Process completed with exit code \d+"
    r"|The process '.*' failed with exit code -?\d+"
    r"|The action '.*' has timed out after \d+ minutes|The action has timed out"
    r"|The operation was canceled|The runner has received a shutdown signal)"
)
# A step that runs an action (`uses: owner/repo@ref`, `docker://image`) has no exit-code
# line when it fails: the action's own `##[error]` (what `core.setFailed` prints) is the
# last thing it writes. So in such a step's section an `##[error]` marks the failure.
ACTION_STEP = re.compile(r"^(?:[\w.-]+/[\w./-]+@\S+|docker://\S+)$")
_MARKER_PATTERNS = (
    r"##\[group\]Run ",
    r"##\[error\]",
    r"Process completed with exit code ",
    r"' failed with exit code ",
    r"has timed out after ",
    r"The action has timed out",
    r"The operation was canceled",
    r"The runner has received a shutdown signal",
    CONTROL_CLASS,  # control bytes may hide a factor: such lines are always checked
)
# Lines that look like an error in a console log. They only delimit where the job
# failed; which failure it was is left to the rules.
ERRORISH = (
    r"(?i)\b(error|errors|fail|failed|failure|fatal|exception|traceback|panic|abort|aborted)\b",
    r"(?i)\b(cannot|could not|unable to|not found|denied|refused|timed out|killed)\b",
    r"^\s+at \S+[(:]",  # Java, JavaScript, C# stack frames
    r"^\s+File \".*\", line \d+",  # Python frames
    r"^\s*\.\.\. \d+ more$",
    r"^goroutine \d+ \[",  # Go stack dumps
    r"^\t\S+\.go:\d+ \+0x[0-9a-f]+$",
    r"^Caused by: ",
)


class LineListener(Protocol):
    """Something else that reads the same single pass over a log (test-result parsers)."""

    @property
    def patterns(self) -> Sequence[str]: ...  # RE2 syntax, searched in the cleaned line

    def feed(self, line: str, line_number: int) -> None: ...


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 256 << 20
    return options


@dataclass(frozen=True)
class Rule:
    id: str
    type: str
    patterns: tuple[str, ...]
    priority: int = 50
    description: str = ""
    step: str | None = None
    source: str = "log"
    match_examples: tuple[str, ...] = ()
    no_match_examples: tuple[str, ...] = ()
    origin: str = ""
    symptom: bool = False

    @property
    def regex(self) -> str:
        return "|".join(f"(?:{p})" for p in self.patterns)


@dataclass(frozen=True)
class Catalog:
    """Compiled rules, highest priority first."""

    rules: tuple[Rule, ...]
    _log_rules: tuple[int, ...] = field(default=(), repr=False, compare=False)
    _log_set: Any = field(default=None, repr=False, compare=False)
    _ann_rules: tuple[int, ...] = field(default=(), repr=False, compare=False)
    _ann_set: Any = field(default=None, repr=False, compare=False)
    _steps: tuple[Any, ...] = field(default=(), repr=False, compare=False)
    # prefilters by (engine, layout kind, listener patterns), built when first needed
    _prefilters: dict[tuple[str, str, tuple[str, ...]], Any] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def build(cls, rules: Iterable[Rule]) -> Catalog:
        ordered = tuple(sorted(rules, key=lambda r: (-r.priority, r.type, r.id)))
        log_rules = tuple(i for i, r in enumerate(ordered) if r.source in ("log", "both"))
        ann_rules = tuple(i for i, r in enumerate(ordered) if r.source in ("annotation", "both"))
        log_set = _compile_set([ordered[i].regex for i in log_rules])
        ann_set = _compile_set([ordered[i].regex for i in ann_rules])
        steps = tuple(re2.compile(r.step, _options()) if r.step else None for r in ordered)
        return cls(ordered, log_rules, log_set, ann_rules, ann_set, steps)

    def matching(self, line: str) -> list[int]:
        """Indexes (into .rules) of the log rules matching a cleaned line."""
        if self._log_set is None:
            return []
        return [self._log_rules[i] for i in self._log_set.Match(line) or ()]

    def step_ok(self, index: int, *names: str | None) -> bool:
        pattern = self._steps[index]
        if pattern is None:
            return True
        return any(name and pattern.search(name) for name in names)

    def prefilter(
        self, engine: str, kind: str, extra: tuple[str, ...] = ()
    ) -> _prefilter.Prefilter:
        """The prefilter for one engine and layout (cached: built once per catalog)."""
        key = (engine, kind, extra)
        found = self._prefilters.get(key)
        if found is None:
            patterns = [p for i in self._log_rules for p in self.rules[i].patterns]
            patterns.extend(_MARKER_PATTERNS)
            if kind == PLAIN:
                patterns.extend(ERRORISH)
            patterns.extend(extra)
            found = _prefilter.Prefilter(patterns, engine)
            self._prefilters[key] = found
        return found


def _compile_set(patterns: list[str]) -> Any:
    if not patterns:
        return None
    rule_set = re2.Set.SearchSet(_options())
    for pattern in patterns:
        rule_set.Add(pattern)
    rule_set.Compile()
    return rule_set


# ---------------------------------------------------------------------------- loading


def _read_source(source: str) -> tuple[str, str]:
    return read_source(source, RuleError)


def _problems_in(text: str, name: str) -> tuple[list[Rule], list[str], set[str]]:
    """Rules of one file, the problems found, and the ids it disables."""
    data, problem = load_yaml(text, name)
    if problem is not None:
        return [], [problem], set()
    entries = data.get("rules") if isinstance(data, dict) else data
    # `tests:` holds test-result parsers (multivac.testresults validates them)
    if isinstance(data, dict) and set(data) - {"rules", "tests", "version"}:
        extra = ", ".join(sorted(map(str, set(data) - {"rules", "tests", "version"})))
        return [], [f"{name}: unknown top-level keys: {extra} (expected 'rules')"], set()
    if entries is None and isinstance(data, dict) and "tests" in data:
        entries = []  # a file of test-result parsers only
    if not isinstance(entries, list):
        return [], [f"{name}: expected a list of rules under 'rules:'"], set()
    found = read_entries(entries, name, "rule", "a mapping with id, type and patterns", _rule_from)
    return found.built, found.problems, found.disabled


def _rule_from(entry: dict[str, Any], origin: str) -> tuple[Rule | None, list[str]]:
    why, only_disables = head_problems(entry, RULE_KEYS)
    if only_disables:
        return None, []
    kind = entry.get("type")
    if not isinstance(kind, str) or not _TYPE.match(kind):
        why.append("'type' must be a lower-case name like test_failure")
    elif kind in RESERVED_TYPES:
        why.append(f"'type' {kind!r} is reserved for jobs that did not fail")
    patterns = strings(entry.get("patterns"))
    if not patterns:
        why.append("'patterns' must be a non-empty list of regular expressions")
    else:
        for pattern in patterns:
            try:
                re2.compile(pattern, _options())
            except re2.error as exc:
                why.append(f"pattern {pattern!r} is not a valid RE2 expression: {exc}")
    priority = entry.get("priority", 50)
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 1000:
        why.append("'priority' must be an integer from 0 to 1000")
    step = entry.get("step")
    if step is not None:
        if not isinstance(step, str):
            why.append("'step' must be a regular expression")
        else:
            try:
                re2.compile(step, _options())
            except re2.error as exc:
                why.append(f"'step' {step!r} is not a valid RE2 expression: {exc}")
    symptom = entry.get("symptom", False)
    if not isinstance(symptom, bool):
        why.append("'symptom' must be true or false")
    source = entry.get("source", "log")
    if source not in SOURCES:
        why.append(f"'source' must be one of {', '.join(SOURCES)}")
    description = entry.get("description", "")
    if not isinstance(description, str):
        why.append("'description' must be text")
    examples = entry.get("examples") or {}
    match: list[str] | None = []
    no_match: list[str] | None = []
    if not isinstance(examples, dict) or set(examples) - {"match", "no_match"}:
        why.append("'examples' must have only 'match' and 'no_match' lists")
    else:
        match = strings(examples.get("match", []))
        no_match = strings(examples.get("no_match", []))
        if match is None or no_match is None:
            why.append("'examples' lists must hold text lines")
    if why:
        return None, why
    return (
        Rule(
            id=str(entry["id"]),
            type=str(kind),
            patterns=tuple(patterns or ()),
            priority=int(priority),
            description=str(description).strip(),
            step=step,
            source=str(source),
            match_examples=tuple(match or ()),
            no_match_examples=tuple(no_match or ()),
            origin=origin,
            symptom=bool(symptom),
        ),
        [],
    )


def load_catalog(sources: Sequence[str] = (), *, builtin: bool = True) -> Catalog:
    """The built-in catalog plus each source (a file or a shipped pack), later ones
    overriding earlier rules with the same id; `disabled: true` removes a rule."""
    merged: dict[str, Rule] = {}
    names = (["generic"] if builtin else []) + list(sources)
    for source in names:
        text, name = _read_source(source)
        rules, problems, disabled = _problems_in(text, name)
        if problems:
            more = f" (and {len(problems) - 1} more; see `multivac rules check`)"
            raise RuleError(problems[0] + ("" if len(problems) == 1 else more) + ".")
        for rule_id in disabled:
            merged.pop(rule_id, None)
        for rule in rules:
            merged[rule.id] = rule
    return Catalog.build(merged.values())


def check_rules_file(path: str) -> list[str]:
    """Every problem of a rules file (empty when it is fine), examples included."""
    try:
        text, name = _read_source(path)
    except RuleError as exc:
        return [str(exc)]
    rules, problems, _disabled = _problems_in(text, name)
    for rule in rules:
        single = re2.compile(rule.regex, _options())
        search = _prefilter.Prefilter(list(rule.patterns), "re2")
        for line in rule.match_examples:
            if not single.search(clean_text(line).rstrip("\n")):
                problems.append(f"{name}: rule {rule.id!r}: example does not match: {line!r}")
            elif not list(search.lines(line.encode("utf-8") + b"\n")):
                # the literal prefilter would never hand this line to the rule
                problems.append(f"{name}: rule {rule.id!r}: prefilter misses example: {line!r}")
        for line in rule.no_match_examples:
            if single.search(clean_text(line).rstrip("\n")):
                problems.append(f"{name}: rule {rule.id!r}: near-miss example matches: {line!r}")
    return problems


# ---------------------------------------------------------------------------- matching
# ---------------------------------------------------------------------------- matching


def _evidence(line: str) -> str:
    text = " ".join(line.split())
    return text[:MAX_EVIDENCE]


# (line number in its stretch, the lines around it, where the line starts and ends there)
_Candidate = tuple[int, bytes, int, int]


@dataclass
class _Match:
    rule: int
    line_number: int
    section: int
    block: int
    text: str
    excerpt: str


@dataclass
class _Section:
    header: str
    named: bool = False  # its header is the failed step's name
    failed_at: int | None = None  # first step-failure marker (exit code, timeout)
    error_at: int | None = None  # last other ##[error] line
    action: bool | None = None  # its first `##[group]Run` names an action (None: none yet)
    context: str = ""  # cleaned lines up to its last failure marker


def _names_step(header: str, step_name: str | None) -> bool:
    """Whether a section header (`##[group]Run <command>`, or the step column of the `gh`
    layout) is the step the jobs API names (`Run <command>` for unnamed steps)."""
    if not step_name or not header:
        return False
    wanted = step_name.strip()
    bare = wanted[4:] if wanted.startswith("Run ") else wanted
    return header in (wanted, bare) or (len(bare) > 3 and header.startswith(bare))


# The step column `gh run view --log` writes when the run's log archive has no per-step
# files (cli/cli#10740: it then shows the whole job's log under this name): the sections
# come from the `##[group]Run` headers, as in a raw job log.
UNKNOWN_STEPS = (b"UNKNOWN STEP", b"UNKNOWN")


class _Scan:
    """State of one pass over a log; memory bounded by MAX_TRACKED."""

    def __init__(
        self,
        catalog: Catalog,
        step_name: str | None,
        step_number: int | None,
        listeners: Sequence[LineListener],
        engine: str | None,
    ) -> None:
        self.catalog = catalog
        self.engine = engine or active_engine()
        self.step_name = step_name
        self.step_number = step_number if step_name else None
        self.run_sections: list[int] = []
        self.listeners = list(listeners)
        self.listener_patterns: tuple[str, ...] = ()
        self.listener_of: list[int] = []
        for index, listener in enumerate(self.listeners):
            for pattern in listener.patterns:
                self.listener_patterns += (pattern,)
                self.listener_of.append(index)
        listener_set = _compile_set(list(self.listener_patterns))
        # the compiled sets' own Match, on bytes: the wrapper would encode each line again
        self.listener_set: Any = listener_set._set.Match if listener_set is not None else None
        self.rule_set: Any = catalog._log_set._set.Match if catalog._log_set is not None else None
        self.rule_of = catalog._log_rules
        self.layout: Layout | None = None
        self.search: Any = None
        self.errorish: Any = None
        self.lines = 0
        self.section = 0
        self.sections: dict[int, _Section] = {0: _Section("")}
        self.step_column: bytes | None = None
        self.block = 0
        self.last_errorish = -(GAP + 1)
        self.matches: dict[tuple[int, int, int], _Match] = {}
        self.first_failed: int | None = None  # section of the first step-failure marker
        self.last_error: int | None = None  # section of the last other ##[error]
        self.contexts = 0  # sections that keep the lines before their failure marker
        self.errorish_at: tuple[bytes, int] | None = None  # the last error-looking line

    def prime(self, block: bytes) -> None:
        """Learn the layout from the log's first block and build the prefilter for it."""
        self.layout = detect_layout(block)
        self.search = self.catalog.prefilter(
            self.engine, self.layout.kind, self.listener_patterns
        ).lines
        if self.layout.kind == PLAIN:
            options = _options()
            self.errorish = re2.compile(
                "|".join(f"(?:{p})" for p in ERRORISH).encode("utf-8"), options
            ).search

    def candidates(self, chunks: Iterable[bytes]) -> tuple[int, list[_Candidate]]:
        """The candidate lines of a stretch of the log, each with the lines around it that
        `_line` may keep as context, and the stretch's line count: the part of a scan
        that needs no state, so another process can do it (see `_scan_file_in_two`)."""
        assert self.layout is not None
        items: list[_Candidate] = []
        lines = 0
        plain = self.layout.kind == PLAIN
        for block in raw_blocks(chunks):
            cursor = 0
            line_at_cursor = lines + 1
            for start in self.search(block):
                line_no = line_at_cursor + block.count(b"\n", cursor, start)
                cursor, line_at_cursor = start, line_no
                end = min(block.find(b"\n", start), start + MAX_LINE + 256)
                begin, stop = start, end
                # 8 lines before for an excerpt; 31 where the line may mark the failure
                wide = plain or b"##[error]" in block[start:end] or b"Error: " in block[start:end]
                for _ in range(CONTEXT_BEFORE if wide else 8):
                    previous = block.rfind(b"\n", 0, max(begin - 1, 0))
                    if previous < 0 or start - previous > CONTEXT_BYTES:
                        begin = 0 if previous < 0 and start <= CONTEXT_BYTES else begin
                        break
                    begin = previous + 1
                for _ in range(CONTEXT_AFTER):
                    following = block.find(b"\n", stop + 1)
                    if following < 0 or following - end > CONTEXT_BYTES:
                        break
                    stop = following
                items.append((line_no, block[begin : stop + 1], start - begin, end - begin))
            lines = line_at_cursor - 1 + block.count(b"\n", cursor)
        return lines, items

    def feed(self, block: bytes) -> None:
        """Scan one block of whole raw lines (tidied; timestamps still on)."""
        if self.layout is None:
            self.prime(block)
        cursor = 0
        line_at_cursor = self.lines + 1
        find, count = block.find, block.count
        for start in self.search(block):
            line_no = line_at_cursor + count(b"\n", cursor, start)
            cursor, line_at_cursor = start, line_no
            self._line(block, start, find(b"\n", start), line_no)
        self.lines = line_at_cursor - 1 + count(b"\n", cursor)

    def _new_section(self, header: str) -> None:
        self.section += 1
        if len(self.sections) < MAX_TRACKED:
            self.sections[self.section] = _Section(header, _names_step(header, self.step_name))

    def _line(self, block: bytes, start: int, end: int, line_no: int) -> None:
        # The hot path: work on bytes, decode only what is kept (evidence, headers).
        layout = self.layout
        assert layout is not None
        step, raw = layout.split(block[start : min(end, start + MAX_LINE + 256)])
        if raw[:3] == b"\xef\xbb\xbf":
            raw = raw[3:]
        raw = raw[:MAX_LINE].translate(None, CONTROL_DELETE)
        if raw[:1] == b"#":
            prefix = BUILDKIT_BYTES.match(raw)  # a Docker build's `#12 3.456 ` (logstream)
            if prefix is not None:
                raw = raw[prefix.end() :]
        if not raw.isascii():
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                raw = raw.decode("utf-8", "replace").encode("utf-8")
        if layout.markers:
            if layout.kind == GH and step not in UNKNOWN_STEPS:
                if step != self.step_column:
                    self.step_column = step
                    self._new_section(step.decode("utf-8", "replace"))
            elif raw.startswith(b"##[group]Run "):
                self._new_section(raw[len(b"##[group]Run ") :].decode("utf-8", "replace").strip())
                if len(self.run_sections) < MAX_TRACKED:
                    self.run_sections.append(self.section)
            if raw.startswith(b"##[group]Run "):
                section = self.sections.get(self.section)
                if section is not None and section.action is None:
                    command = raw[len(b"##[group]Run ") :].decode("utf-8", "replace").strip()
                    section.action = ACTION_STEP.match(command) is not None
            marker = raw.lstrip()
            if marker.startswith((b"##[error]", b"Error: ")):
                self._marker(marker, line_no, block, start)
        found = self.rule_set(raw) if self.rule_set is not None else None
        if found or (self.errorish is not None and self.errorish(raw)):
            if line_no - self.last_errorish > GAP:
                self.block += 1
            self.last_errorish = line_no
            self.errorish_at = (block, start)
        if found:
            text = raw.decode("utf-8")
            for hit in found:
                index = self.rule_of[hit]
                key = (self.section, self.block, index)
                if key in self.matches:
                    continue  # the first match of a rule in a stretch is usually the cause
                if len(self.matches) >= MAX_TRACKED:
                    self._prune()
                    if len(self.matches) >= MAX_TRACKED:
                        continue
                excerpt = _around(layout, block, start)
                self.matches[key] = _Match(index, line_no, self.section, self.block, text, excerpt)
        if self.listener_set is not None:
            heard = self.listener_set(raw)
            if heard:
                text = raw.decode("utf-8")
                for index in sorted({self.listener_of[i] for i in heard}):
                    self.listeners[index].feed(text, line_no)

    def _marker(self, marker: bytes, line_no: int, block: bytes, start: int) -> None:
        section = self.sections.get(self.section)
        failed = STEP_FAILED.match(marker.decode("utf-8", "replace")) is not None
        if not failed and section is not None and section.action:
            failed = marker.startswith(b"##[error]")  # an action's own failure
        if failed:
            if section is not None and section.failed_at is None:
                section.failed_at = line_no
            if self.first_failed is None:
                self.first_failed = self.section
        elif marker.startswith(b"##[error]"):
            if section is not None:
                section.error_at = line_no
            self.last_error = self.section
        else:
            return
        if section is not None and self.contexts < MAX_CONTEXTS:
            # the lines up to the section's last failure marker: kept for an unknown failure
            # so that rules written later can read it (bounded: a few KB per section)
            assert self.layout is not None
            section.context = _around(self.layout, block, start, before=30, after=0)
            self.contexts += 1

    def _prune(self) -> None:
        """Forget matches that can no longer decide: outside any failed or named step,
        and blocks behind the last few."""
        keep = {self.section, self.first_failed, self.last_error}
        keep.update(
            number
            for number, section in self.sections.items()
            if section.named or section.failed_at is not None or section.error_at is not None
        )
        oldest = self.block - BLOCKS_BACK
        self.matches = {
            key: match
            for key, match in self.matches.items()
            if match.section in keep or match.block >= oldest
        }

    # ------------------------------------------------------------------ the answer

    def _choose(self, candidates: Iterable[_Match], header_of: int | None) -> _Match | None:
        catalog = self.catalog
        usable = [
            m
            for m in candidates
            if catalog.step_ok(m.rule, self.step_name, self._header(m.section))
        ]
        causes = [m for m in usable if not catalog.rules[m.rule].symptom]
        pool = causes or usable
        if not pool:
            return None
        # highest priority; among equals the earliest line (the first error, not its echo)
        return max(pool, key=lambda m: (catalog.rules[m.rule].priority, -m.line_number))

    def _header(self, section: int) -> str | None:
        found = self.sections.get(section)
        return found.header if found is not None and found.header else None

    def _failed_section(self) -> int | None:
        if self.step_name:
            named = [n for n, s in sorted(self.sections.items()) if s.named]
            failing = [n for n in named if self._failing(n)]
            if failing or named:
                return (failing or named)[0]
            # A named step's header shows its command, not its name. Step 1 is "Set up
            # job" and each later step that ran opens one `Run` section, so the failed
            # step is usually the (number - 1)-th of them: take it when it did fail. That
            # keeps an earlier step that failed under continue-on-error from being taken.
            if self.step_number is not None and 2 <= self.step_number <= len(self.run_sections) + 1:
                candidate = self.run_sections[self.step_number - 2]
                if self._failing(candidate):
                    return candidate
        if self.first_failed is not None:
            return self.first_failed
        return self.last_error

    def _failing(self, number: int) -> bool:
        section = self.sections.get(number)
        return section is not None and (
            section.failed_at is not None or section.error_at is not None
        )

    def result(self) -> tuple[Classification | None, str]:
        layout = self.layout
        if layout is None:
            return None, ""
        failed = self._failed_section() if layout.markers else None
        also: list[str] = []
        best: _Match | None = None
        if failed is not None:
            best = self._choose((m for m in self.matches.values() if m.section == failed), failed)
            for number, section in sorted(self.sections.items()):
                if number <= failed or (section.failed_at is None and section.error_at is None):
                    continue
                later = self._choose(
                    (m for m in self.matches.values() if m.section == number), number
                )
                kind = self.catalog.rules[later.rule].type if later is not None else UNKNOWN
                if kind not in also:
                    also.append(kind)
            kept = self.sections.get(failed)
            context = kept.context if kept is not None else ""
        else:
            # nothing says which step failed: the last block of error-looking lines that
            # holds a match, a few blocks back at most
            blocks = sorted({m.block for m in self.matches.values()}, reverse=True)
            for number in blocks:
                if number < self.block - BLOCKS_BACK:
                    break
                best = self._choose((m for m in self.matches.values() if m.block == number), None)
                if best is not None:
                    break
            where = self.errorish_at
            context = _around(layout, where[0], where[1], before=30, after=0) if where else ""
        if best is None:
            return None, context
        rule = self.catalog.rules[best.rule]
        header = self._header(best.section)
        step = self.step_name if failed is not None and self.step_name else header
        evidence = _evidence(best.text)
        return (
            Classification(
                type=rule.type,
                rule=rule.id,
                step=step or self.step_name,
                line_number=best.line_number,
                evidence=evidence,
                excerpt=best.excerpt,
                also=",".join(also),
                signature=signature(evidence)[0],
            ),
            context,
        )


def _around(layout: Layout, block: bytes, start: int, before: int = 8, after: int = 4) -> str:
    """A few cleaned lines around a match, for the offline store (bounded)."""
    begin = start
    for _ in range(before):
        previous = block.rfind(b"\n", 0, max(begin - 1, 0))
        if previous < 0:
            begin = 0
            break
        begin = previous + 1
    end = start
    for _ in range(after + 1):
        following = block.find(b"\n", end + 1)
        if following < 0:
            end = len(block)
            break
        end = following
    lines = []
    for raw in block[begin:end].split(b"\n"):
        _step, body = layout.split(raw)
        lines.append(" ".join(clean_bytes(body).split())[:300])
    return "\n".join(lines)[:4096]


def _step_name(steps: Sequence[str], number: int | None) -> str | None:
    if number is None or not steps:
        return None
    if 1 <= number <= len(steps):
        return steps[number - 1]
    return None


def scan_log(
    chunks: Iterable[bytes],
    catalog: Catalog,
    *,
    steps: Sequence[str] = (),
    failed_step_number: int | None = None,
    listeners: Sequence[LineListener] = (),
    engine: str | None = None,
) -> tuple[Classification | None, str]:
    """The classification (None when no rule matched where the job failed) and the
    cleaned lines up to where it failed, kept so that new rules can be tried later.

    `steps` are the job's step names in order and `failed_step_number` the number of the
    first step whose conclusion is `failure`; a step under `continue-on-error` has
    conclusion `success`, so it is never taken for the cause. `listeners` read the same
    pass: their patterns join the prefilter, and every cleaned line one of them may match
    is passed to its `feed`. `engine` forces 'hyperscan' or 're2' (tests, benchmarks)."""
    scan = _Scan(
        catalog, _step_name(steps, failed_step_number), failed_step_number, listeners, engine
    )
    for block in raw_blocks(chunks):
        scan.feed(block)
    return scan.result()


def classify_log(
    chunks: Iterable[bytes],
    catalog: Catalog,
    *,
    steps: Sequence[str] = (),
    failed_step_number: int | None = None,
    engine: str | None = None,
) -> Classification | None:
    """Classify a raw log stream; None when no rule matched where the job failed."""
    found, _context = scan_log(
        chunks, catalog, steps=steps, failed_step_number=failed_step_number, engine=engine
    )
    return found


def _file_chunks(
    path: Path, size: int = 1 << 20, start: int = 0, end: int | None = None
) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        if start:
            handle.seek(start)  # a pipe (`<(zcat job.log.gz)`, /dev/stdin) is read from 0
        left = None if end is None else end - start
        while left is None or left > 0:
            chunk = handle.read(size if left is None else min(size, left))
            if not chunk:
                break
            if left is not None:
                left -= len(chunk)
            yield chunk


def classify_file(
    path: str | Path, catalog: Catalog, *, engine: str | None = None
) -> Classification | None:
    """Classify a log file: downloaded from GitHub, `gh run view --log`, or any console."""
    path = Path(path)
    size = path.stat().st_size
    if size >= PARALLEL_MIN and hasattr(os, "fork") and (os.cpu_count() or 1) > 1:
        scan = _Scan(catalog, None, None, (), engine)
        if _scan_file_in_two(path, size, scan):
            return scan.result()[0]
    return classify_log(_file_chunks(path), catalog, engine=engine)


def _scan_file_in_two(path: Path, size: int, scan: _Scan) -> bool:
    """Scan a large file with a second process: a forked child finds the candidate lines
    of the second half (prefilter, line counting, tidying: most of the work) while this
    process scans the first half; then the child's candidates are read in order, so the
    answer is exactly that of one pass. False, with `scan` untouched, when it cannot."""
    with open(path, "rb") as handle:
        head = handle.read(1 << 20)
        handle.seek(size // 2)
        cut = handle.read(1 << 20).find(b"\n")
    if cut < 0 or not head:
        return False
    middle = size // 2 + cut + 1
    first = next(raw_blocks([head[: head.rfind(b"\n") + 1] or head]), b"")
    scan.prime(first)
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: candidates of the second half, pickled to the parent
        code = 0
        try:
            os.close(reader)
            with os.fdopen(writer, "wb") as out:
                pickle.dump(scan.candidates(_file_chunks(path, start=middle)), out, protocol=5)
        except BaseException:
            code = 1
        os._exit(code)
    os.close(writer)
    try:
        for block in raw_blocks(_file_chunks(path, end=middle)):
            scan.feed(block)
        with os.fdopen(reader, "rb") as pipe:
            data = pipe.read()
    finally:
        _pid, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0 or not data:
        for block in raw_blocks(_file_chunks(path, start=middle)):
            scan.feed(block)  # the child failed: this process reads the rest itself
        return True
    count, items = pickle.loads(data)  # from our own child, never from outside
    base = scan.lines
    for line_no, window, start, end in items:
        scan._line(window, start, end, base + line_no)
    scan.lines = base + count
    return True


def classify_text(
    text: str, catalog: Catalog, *, engine: str | None = None
) -> Classification | None:
    """Classify text such as a stored evidence excerpt."""
    return classify_log([text.encode("utf-8")], catalog, engine=engine)


def classify_annotations(messages: Iterable[str], catalog: Catalog) -> Classification | None:
    """The cause told by check-run annotations (runner lost, job timeout, ...)."""
    if catalog._ann_set is None:
        return None
    best: tuple[int, Rule, str] | None = None
    for message in messages:
        text = " ".join(clean_text(message or "").split())
        if not text or GENERIC_ANNOTATION.match(text):
            continue
        for hit in catalog._ann_set.Match(text) or ():
            rule = catalog.rules[catalog._ann_rules[hit]]
            if best is None or rule.priority > best[0]:
                best = (rule.priority, rule, text)
    if best is None:
        return None
    _, rule, text = best
    evidence = _evidence(text)
    return Classification(
        rule.type,
        rule.id,
        None,
        None,
        evidence,
        text[:4096],
        signature=signature(evidence)[0],
    )
