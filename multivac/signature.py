"""A failure's signature: its evidence line with everything that varies between two jobs
hitting the same failure taken out, and a short hash of what is left.

Two jobs that fail the same way differ in times, durations, line numbers, process ids,
addresses, ports, temporary paths and the runner's workspace path; the signature removes
those, so they share one signature. What names the failure (the message, the test, the
missing module, the file) stays, so two different failures of one type get two.

The expressions here are the project's own, applied to one evidence line of at most a
few hundred characters; user-written patterns never run here.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["normalise", "signature"]

MAX_TEXT = 300
HASH_CHARS = 12

_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        # GitHub's marker before the text
        (r"^(?:##\[(?:error|warning|notice)\]|::(?:error|warning)[^:]*::)", ""),
        # query strings and fragments of URLs: tokens, signatures, cache busters
        (r"(https?://[^\s'\"?#]+)[?#][^\s'\"]*", r"\1?<q>"),
        # runner workspaces: hosted (Linux, macOS, Windows, containers), self-hosted,
        # Jenkins and GitLab; the repository's own path below them stays
        (r"(?:/home/runner|/Users/runner)/work/[^/\s]+/[^/\s]+/", "<ws>/"),
        (r"\b[A-Za-z]:[\\/]a[\\/][^\\/\s]+[\\/][^\\/\s]+[\\/]", "<ws>/"),
        (r"/__w/[^/\s]+/[^/\s]+/", "<ws>/"),
        (r"/github/workspace/", "<ws>/"),
        (r"[^\s'\"]*/_work/[^/\s]+/[^/\s]+/", "<ws>/"),
        (r"[^\s'\"]*[/\\]workspace[/\\][^/\\\s]+[/\\]", "<ws>/"),
        (r"/builds/[^/\s]+/[^/\s]+/", "<ws>/"),
        # temporary files and folders
        (r"[^\s'\"]*[/\\](?:_temp|Temp|tmp|var/folders)[/\\][^\s'\",;)]*", "<tmp>"),
        (r"(?:/home|/Users)/[^/\s]+/", "~/"),
        (r"\b[A-Za-z]:\\Users\\[^\\\s]+\\", "~\\\\"),
        # times and dates
        (
            r"\b\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d)?(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)?",
            "<time>",
        ),
        (r"\b\d\d?:\d\d:\d\d(?:[.,]\d+)?\b", "<time>"),
        # ids and addresses
        (
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
            "<id>",
        ),
        (r"\b0x[0-9a-fA-F]+\b", "<hex>"),
        (r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,}\b", "<hex>"),
        (r"\b(?=[0-9A-F]*[A-F])(?=[0-9A-F]*\d)[0-9A-F]{8,}\b", "<hex>"),
        (r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b", "<ip>"),
        # durations: 12.3s, 250 ms, 6h0m0s, 3 minutes
        (r"\b\d+h\d+m\d+(?:\.\d+)?s\b|\b\d+m\d+(?:\.\d+)?s\b", "<dur>"),
        (
            r"\b\d+(?:\.\d+)?\s?(?:ns|us|µs|ms|s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?)\b",
            "<dur>",
        ),
        # values in quotes that hold paths, URLs, assignments or long free text: the
        # message around them is the failure, the value is this job's
        (r"'[^'\s]*[/\\=@][^']*'|'[^']{40,}'", "'<v>'"),
        (r"\"[^\"\s]*[/\\=@][^\"]*\"|\"[^\"]{40,}\"", '"<v>"'),
        # what is left of numbers: counts, line numbers, ports, pids, sizes
        (r"(?<![A-Za-z_])\d+(?:[.,]\d+)*", "<n>"),
        (r"\s+", " "),
    )
)


def normalise(evidence: str) -> str:
    """The evidence line without what varies between jobs hitting the same failure."""
    text = evidence.strip()
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text.strip()[:MAX_TEXT]


def signature(evidence: str) -> tuple[str, str]:
    """(short hash, normalised text) of an evidence line; ("", "") for no evidence."""
    text = normalise(evidence)
    if not text:
        return "", ""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_CHARS], text
