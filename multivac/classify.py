"""Why a job failed: a log stream (or annotations) in, a Classification out.

Rules are data (`rules/*.yaml`, safe-loaded) compiled with RE2, so matching is linear
in the log size whatever a rule says. One combined RE2 expression finds candidate
lines in large cleaned blocks (so Python only sees lines that matched something); an
RE2 set then tells which rules matched each candidate.

Where the job failed decides which matches count: the failed step's section (a
`##[group]Run …` header per step) and the lines just before the final `##[error]`
(`Error:` in logs copied from the web UI). Among the matches there the highest
priority wins, the earliest line breaking ties. A match elsewhere is used only when the
log tells nothing about where the failure is.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import re2
import yaml

from multivac.errors import RuleError
from multivac.logstream import clean_line, clean_text, raw_blocks
from multivac.model import Classification

__all__ = [
    "Catalog",
    "Classification",
    "Rule",
    "check_rules_file",
    "classify_annotations",
    "classify_file",
    "classify_log",
    "classify_text",
    "load_catalog",
    "scan_log",
    "shipped_packs",
]

SOURCES = ("log", "annotation", "both")
RESERVED_TYPES = frozenset({"successful_jobs", "cancelled"})
RULE_KEYS = frozenset(
    {"id", "type", "description", "patterns", "priority", "step", "source", "examples", "disabled"}
)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TYPE = re.compile(r"^[a-z][a-z0-9_]*$")
WINDOW = 40  # lines before the final error that count as "at the failure"
TAIL = 200  # without error markers or steps, the last lines of the log count
MAX_EVIDENCE = 500
MAX_TRACKED = 50_000  # (section, rule) pairs remembered: bounds memory on huge logs
GENERIC_ANNOTATION = re.compile(r"^Process completed with exit code \d+\.?$")
_MARKERS = r"##\[group\]|##\[error\]|Error: "


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

    @property
    def regex(self) -> str:
        return "|".join(f"(?:{p})" for p in self.patterns)


@dataclass(frozen=True)
class Catalog:
    """Compiled rules, highest priority first."""

    rules: tuple[Rule, ...]
    _log_rules: tuple[int, ...] = field(default=(), repr=False, compare=False)
    _log_set: Any = field(default=None, repr=False, compare=False)
    _prefilter: Any = field(default=None, repr=False, compare=False)
    _ann_rules: tuple[int, ...] = field(default=(), repr=False, compare=False)
    _ann_set: Any = field(default=None, repr=False, compare=False)
    _steps: tuple[Any, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def build(cls, rules: Iterable[Rule]) -> Catalog:
        ordered = tuple(sorted(rules, key=lambda r: (-r.priority, r.type, r.id)))
        log_rules = tuple(i for i, r in enumerate(ordered) if r.source in ("log", "both"))
        ann_rules = tuple(i for i, r in enumerate(ordered) if r.source in ("annotation", "both"))
        log_set = _compile_set([ordered[i].regex for i in log_rules])
        ann_set = _compile_set([ordered[i].regex for i in ann_rules])
        prefilter = _prefilter([ordered[i] for i in log_rules])
        steps = tuple(re2.compile(r.step, _options()) if r.step else None for r in ordered)
        return cls(ordered, log_rules, log_set, prefilter, ann_rules, ann_set, steps)

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


def unanchored(pattern: str) -> str:
    """The pattern without `^`, `$`, `\\A`, `\\z` outside character classes: a superset of
    its matches, usable on raw lines that still carry their timestamp."""
    out: list[str] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            if not in_class and pattern[i + 1] in "Az":
                i += 2
                continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append(ch)
            i += 1
            for literal in ("^", "]"):
                if i < n and pattern[i] == literal:
                    out.append(literal)
                    i += 1
            continue
        if ch not in "^$":
            out.append(ch)
        i += 1
    return "".join(out)


def _prefilter(rules: list[Rule]) -> Any:
    """One RE2 expression over raw blocks that finds every line any rule could match
    (and the step and error markers); the exact rules run on those lines only."""
    parts = []
    for rule in rules:
        for pattern in rule.patterns:
            loose = unanchored(pattern)
            try:
                re2.compile(loose, _options())
            except re2.error:
                loose = pattern
            parts.append(f"(?:{loose})")
    options = _options()
    options.never_nl = True
    return re2.compile("|".join([*parts, _MARKERS]).encode("utf-8"), options)


def _compile_set(patterns: list[str]) -> Any:
    if not patterns:
        return None
    rule_set = re2.Set.SearchSet(_options())
    for pattern in patterns:
        rule_set.Add(pattern)
    rule_set.Compile()
    return rule_set


# ---------------------------------------------------------------------------- loading


def shipped_packs() -> list[str]:
    folder = resources.files("multivac").joinpath("rules")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read_source(source: str) -> tuple[str, str]:
    """(text, name) of a rules file path or a shipped pack name."""
    path = Path(source).expanduser()
    if path.is_file():
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise RuleError(f"{source}: cannot read the rules file ({exc}).") from None
    if re.fullmatch(r"[a-z0-9_-]+", source) and source in shipped_packs():
        text = resources.files("multivac").joinpath(f"rules/{source}.yaml").read_text("utf-8")
        return text, f"pack {source}"
    packs = ", ".join(p for p in shipped_packs() if p != "generic")
    raise RuleError(f"--rules {source!r} is neither a rules file nor a shipped pack ({packs}).")


def _problems_in(text: str, name: str) -> tuple[list[Rule], list[str], set[str]]:
    """Rules of one file, the problems found, and the ids it disables."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        return [], [f"{name}: not valid YAML{where}: {getattr(exc, 'problem', exc)}"], set()
    entries = data.get("rules") if isinstance(data, dict) else data
    # `tests:` holds test-result parsers (multivac.testresults validates them)
    if isinstance(data, dict) and set(data) - {"rules", "tests", "version"}:
        extra = ", ".join(sorted(map(str, set(data) - {"rules", "tests", "version"})))
        return [], [f"{name}: unknown top-level keys: {extra} (expected 'rules')"], set()
    if not isinstance(entries, list):
        return [], [f"{name}: expected a list of rules under 'rules:'"], set()
    rules: list[Rule] = []
    problems: list[str] = []
    disabled: set[str] = set()
    seen: set[str] = set()
    for index, entry in enumerate(entries, 1):
        label = f"{name}: rule #{index}"
        if not isinstance(entry, dict):
            problems.append(f"{label}: expected a mapping with id, type and patterns")
            continue
        rule_id = entry.get("id")
        if isinstance(rule_id, str):
            label = f"{name}: rule {rule_id!r} (#{index})"
        rule, why = _rule_from(entry, name)
        if why:
            problems.extend(f"{label}: {reason}" for reason in why)
            continue
        if rule_id in seen:
            problems.append(f"{label}: duplicate id in this file")
            continue
        seen.add(str(rule_id))
        if entry.get("disabled") is True:
            disabled.add(str(rule_id))
            continue
        if rule is not None:
            rules.append(rule)
    return rules, problems, disabled


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _rule_from(entry: dict[str, Any], origin: str) -> tuple[Rule | None, list[str]]:
    why: list[str] = []
    unknown = set(map(str, entry)) - RULE_KEYS
    if unknown:
        why.append(f"unknown keys: {', '.join(sorted(unknown))}")
    rule_id = entry.get("id")
    if not isinstance(rule_id, str) or not _ID.match(rule_id):
        why.append("'id' must be a name of letters, digits, '.', '_' or '-'")
    if entry.get("disabled") is True and not why:
        return None, []
    if "disabled" in entry and not isinstance(entry["disabled"], bool):
        why.append("'disabled' must be true or false")
    kind = entry.get("type")
    if not isinstance(kind, str) or not _TYPE.match(kind):
        why.append("'type' must be a lower-case name like test_failure")
    elif kind in RESERVED_TYPES:
        why.append(f"'type' {kind!r} is reserved for jobs that did not fail")
    patterns = _strings(entry.get("patterns"))
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
        match = _strings(examples.get("match", []))
        no_match = _strings(examples.get("no_match", []))
        if match is None or no_match is None:
            why.append("'examples' lists must hold text lines")
    if why:
        return None, why
    return (
        Rule(
            id=str(rule_id),
            type=str(kind),
            patterns=tuple(patterns or ()),
            priority=int(priority),
            description=str(description).strip(),
            step=step,
            source=str(source),
            match_examples=tuple(match or ()),
            no_match_examples=tuple(no_match or ()),
            origin=origin,
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
        for line in rule.match_examples:
            if not single.search(clean_text(line).rstrip("\n")):
                problems.append(f"{name}: rule {rule.id!r}: example does not match: {line!r}")
        for line in rule.no_match_examples:
            if single.search(clean_text(line).rstrip("\n")):
                problems.append(f"{name}: rule {rule.id!r}: near-miss example matches: {line!r}")
    return problems


# ---------------------------------------------------------------------------- matching


def _evidence(line: str) -> str:
    text = " ".join(line.split())
    return text[:MAX_EVIDENCE]


@dataclass
class _Match:
    rule: int
    line_number: int
    section: int
    text: str
    excerpt: str


class _Scan:
    """State of one pass over a log; memory bounded by MAX_TRACKED and WINDOW."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.lines = 0
        self.section = 0
        self.headers: dict[int, str] = {}
        self.by_section: dict[tuple[int, int], _Match] = {}
        self.latest: dict[int, _Match] = {}
        self.recent: deque[_Match] = deque(maxlen=64)
        self.final_error: tuple[int, int] | None = None  # (line, section)
        self.final_window: list[_Match] = []
        self.final_context = ""  # the lines up to the final error, for the offline store

    def feed(self, block: bytes) -> None:
        """Scan one block of whole raw lines (timestamps still on)."""
        search = self.catalog._prefilter.search
        cursor = 0
        line_at_cursor = self.lines + 1
        pos, size = 0, len(block)
        while pos < size:
            found = search(block, pos)
            if found is None:
                break
            start = block.rfind(b"\n", 0, found.start()) + 1
            end = block.find(b"\n", found.start())
            end = size if end < 0 else end
            line_no = line_at_cursor + block.count(b"\n", cursor, start)
            cursor, line_at_cursor = start, line_no
            pos = end + 1
            self._line(clean_line(block[start:end]), line_no, block, start)
        self.lines += block.count(b"\n")

    def _line(self, line: str, line_no: int, block: bytes, start: int) -> None:
        if line.startswith("##[group]"):
            if line.startswith("##[group]Run "):
                self.section += 1
                if len(self.headers) < MAX_TRACKED:
                    self.headers[self.section] = line[len("##[group]Run ") :].strip()
            return
        for index in self.catalog.matching(line):
            match = _Match(index, line_no, self.section, line, _around(block, start))
            # the first match of a rule in a section is usually the root cause
            key = (self.section, index)
            if key not in self.by_section and len(self.by_section) < MAX_TRACKED:
                self.by_section[key] = match
            self.latest[index] = match
            self.recent.append(match)
        if line.startswith(("##[error]", "Error: ")):
            self.final_error = (line_no, self.section)
            self.final_window = [m for m in self.recent if line_no - m.line_number <= WINDOW]
            self.final_context = _around(block, start, before=30, after=0)

    def result(self, steps: Sequence[str], failed_step_number: int | None) -> Classification | None:
        catalog = self.catalog
        step_name = _step_name(steps, failed_step_number)
        failed_section = self._failed_section(step_name)
        located = failed_section is not None or self.final_error is not None
        candidates: list[_Match] = []
        if failed_section is not None:
            candidates.extend(m for (s, _), m in self.by_section.items() if s == failed_section)
        candidates.extend(self.final_window)
        if not candidates and not located:
            # nothing tells where the job failed: only the end of the log counts
            candidates = [m for m in self.latest.values() if self.lines - m.line_number < TAIL]
        candidates = [
            m for m in candidates if catalog.step_ok(m.rule, step_name, self.headers.get(m.section))
        ]
        if not candidates:
            return None
        # highest priority; among equals the earliest line (the first error, not the echo)
        best = max(candidates, key=lambda m: (catalog.rules[m.rule].priority, -m.line_number))
        rule = catalog.rules[best.rule]
        header = self.headers.get(best.section)
        step = step_name if best.section == failed_section and step_name else header
        return Classification(
            type=rule.type,
            rule=rule.id,
            step=step or step_name,
            line_number=best.line_number,
            evidence=_evidence(best.text),
            excerpt=best.excerpt,
        )

    def _failed_section(self, step_name: str | None) -> int | None:
        if step_name:
            wanted = step_name.strip()
            bare = wanted[4:] if wanted.startswith("Run ") else wanted
            for section in sorted(self.headers, reverse=True):
                header = self.headers[section]
                if header in (wanted, bare) or (len(bare) > 3 and header.startswith(bare)):
                    return section
        if self.final_error is not None and self.final_error[1] > 0:
            return self.final_error[1]
        return None


def _around(block: bytes, start: int, before: int = 8, after: int = 4) -> str:
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
    raw = block[begin:end].split(b"\n")
    lines = [" ".join(clean_line(line).split())[:300] for line in raw]
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
) -> tuple[Classification | None, str]:
    """The classification (None when no rule matched where the job failed) and the
    cleaned lines up to the final error, kept so that new rules can be tried later."""
    scan = _Scan(catalog)
    for block in raw_blocks(chunks):
        scan.feed(block)
    return scan.result(steps, failed_step_number), scan.final_context


def classify_log(
    chunks: Iterable[bytes],
    catalog: Catalog,
    *,
    steps: Sequence[str] = (),
    failed_step_number: int | None = None,
) -> Classification | None:
    """Classify a raw log stream; None when no rule matched where the job failed."""
    found, _context = scan_log(chunks, catalog, steps=steps, failed_step_number=failed_step_number)
    return found


def _file_chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(size):
            yield chunk


def classify_file(path: str | Path, catalog: Catalog) -> Classification | None:
    """Classify a log file: downloaded from GitHub or copied from the web UI."""
    return classify_log(_file_chunks(Path(path)), catalog)


def classify_text(text: str, catalog: Catalog) -> Classification | None:
    """Classify text such as a stored evidence excerpt."""
    return classify_log([text.encode("utf-8")], catalog)


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
    return Classification(rule.type, rule.id, None, None, _evidence(text), text[:4096])
