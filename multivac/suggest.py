"""Draft failure rules from the failures no rule knows yet (`multivac rules suggest`).

Each `unknown_failure` job keeps the lines before its failure. The last line there that
looks like an error stands for the job; jobs whose lines share a signature (the line
without times, numbers, ids and paths) form a cluster, and each cluster, largest first,
becomes a draft rule: a pattern made from the signature, and the cluster's own lines as
examples that must match. A person reviews the type, the id and adds a near-miss line;
nothing is written by this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import yaml

from multivac.signature import normalise, signature

#: a line that reads like an error, in any tool's words
_ERRORISH = re.compile(
    r"(?i)\b(error|errors|failed|failure|fatal|exception|panic|cannot|can't|could not|"
    r"unable to|not found|no such|denied|refused|timed? ?out|killed|abort(ed)?|invalid|"
    r"missing|unexpected|segmentation|traceback)\b"
)
_NOT_A_CAUSE = re.compile(
    r"^(##\[(error|group|endgroup)\]\s*)?(Process completed with exit code \d+\.?|Error: "
    r"Process completed.*|##\[endgroup\])$"
)
# what the signature put in place of a varying value, and a pattern that matches any
_PLACEHOLDERS = (
    (re.escape("<ws>/"), r"\S*/"),
    (re.escape("~/"), r"\S*/"),
    (re.escape("<tmp>"), r"\S+"),
    (re.escape("<time>"), r"\S+"),
    (re.escape("<id>"), r"[0-9a-fA-F-]+"),
    (re.escape("<hex>"), r"\w+"),
    (re.escape("<ip>"), r"[0-9.:]+"),
    (re.escape("<dur>"), r"\S+"),
    (re.escape("'<v>'"), r"'[^']*'"),
    (re.escape('"<v>"'), r'"[^"]*"'),
    (re.escape("?<q>"), r"\S*"),
    (re.escape("<n>"), r"\d+(?:[.,]\d+)*"),
)
#: a first guess at the type from the words of the line; the reviewer decides
_TYPE_HINTS = (
    (re.compile(r"(?i)timed? ?out|deadline exceeded"), "timeout"),
    (re.compile(r"(?i)no space left|disk (is )?full|quota"), "out_of_disk"),
    (re.compile(r"(?i)out of memory|oom|cannot allocate|killed"), "out_of_memory"),
    (re.compile(r"(?i)connection|resolve|dns|unreachable|network|tls|ssl|econn"), "network_error"),
    (re.compile(r"(?i)permission|denied|forbidden|unauthori[sz]ed|401|403"), "permission_error"),
    (re.compile(r"(?i)segmentation|sigsegv|sigabrt|core dumped|panic"), "crash"),
    (re.compile(r"(?i)\btests?\b|assert|expected .* got"), "test_failure"),
    (re.compile(r"(?i)dependenc|resolv|version|package|module not found"), "dependency_error"),
    (
        re.compile(r"(?i)syntax|undefined|undeclared|compil|type error|cannot find symbol"),
        "compile_error",
    ),
)


@dataclass(frozen=True)
class Cluster:
    signature: str
    text: str  # the normalised line
    lines: tuple[str, ...]  # distinct original lines, as examples
    jobs: int


def cause_line(excerpt: str) -> str | None:
    """The line of an unknown failure's kept lines that most likely names the cause:
    the last error-looking line before the end, else the last non-blank one."""
    lines = [line.strip() for line in excerpt.splitlines() if line.strip()]
    lines = [line for line in lines if not _NOT_A_CAUSE.match(line)]
    for line in reversed(lines):
        if _ERRORISH.search(line):
            return line
    return lines[-1] if lines else None


def clusters(excerpts: Iterable[str], *, examples: int = 3) -> list[Cluster]:
    """Unknown failures grouped by the signature of their cause line, largest first."""
    groups: dict[str, list[str]] = {}
    texts: dict[str, str] = {}
    for excerpt in excerpts:
        line = cause_line(excerpt)
        if line is None:
            continue
        sig, text = signature(line)
        if not sig:
            continue
        groups.setdefault(sig, []).append(line)
        texts[sig] = text
    found = [
        Cluster(sig, texts[sig], tuple(dict.fromkeys(lines))[:examples], len(lines))
        for sig, lines in groups.items()
    ]
    return sorted(found, key=lambda c: (-c.jobs, c.text))


def pattern_for(text: str) -> str:
    """An RE2 pattern matching every line of the signature `text`."""
    pattern = re.escape(text)
    for placeholder, loose in _PLACEHOLDERS:
        pattern = pattern.replace(placeholder, loose)
    return re.sub(r"(?:\\ )+", r"\\s+", pattern)


def _type_hint(text: str) -> str:
    for hint, kind in _TYPE_HINTS:
        if hint.search(text):
            return kind
    return "unknown_failure"


def _rule_id(text: str, taken: set[str]) -> str:
    words = re.findall(r"[a-z][a-z0-9]+", text.lower())
    base = "-".join(w for w in words if w not in {"n", "the", "a", "of", "to"})[:40].strip("-")
    base = base or "suggested"
    name, number = base, 2
    while name in taken:
        name, number = f"{base}-{number}", number + 1
    taken.add(name)
    return name


def draft_rules(found: list[Cluster]) -> str:
    """The clusters as a rules file (YAML) for review: pattern, type guess, examples."""
    taken: set[str] = set()
    rules = []
    for cluster in found:
        kind = _type_hint(cluster.text)
        rules.append(
            {
                "id": _rule_id(cluster.text, taken),
                "type": kind if kind != "unknown_failure" else "unclassified_failure",
                "description": f"Suggested from {cluster.jobs} unknown failures "
                f"(signature {cluster.signature}). Review before use.",
                "priority": 50,
                "patterns": [pattern_for(cluster.text)],
                "examples": {"match": list(cluster.lines), "no_match": []},
            }
        )
    header = (
        "# Draft rules suggested by `multivac rules suggest` from unknown failures,\n"
        "# largest cluster first. Review each: set the type, rename the id, tighten the\n"
        "# pattern and add a near-miss line under no_match; then check with\n"
        "# `multivac rules check FILE` and use with --rules FILE.\n"
    )
    body = yaml.safe_dump({"rules": rules}, sort_keys=False, allow_unicode=True, width=100)
    return header + body


__all__ = ["Cluster", "cause_line", "clusters", "draft_rules", "normalise", "pattern_for"]
