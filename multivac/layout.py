"""What kind of log this is, told from its first block, and how to clean its lines.

- `github`: a job log as GitHub serves it (a timestamp before most lines, `##[group]Run …`
  step headers, `##[error]` markers), or copied from the web UI (no timestamps, `Error:`
  before the failure markers).
- `gh`: the output of `gh run view --log` / `--log-failed`: `job<TAB>step<TAB>` columns
  before each raw line, so the step of every line is known.
- `plain`: any other console log (Jenkins, GitLab, a terminal), with or without a
  timestamp before each line. No line in it is a marker: `Error: ` is ordinary text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["GH", "GITHUB", "PLAIN", "Layout", "detect_layout"]

GITHUB = "github"
GH = "gh"
PLAIN = "plain"

_ISO_Z = rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ?"
_GITHUB_STAMP = re.compile(rb"^(?:\xef\xbb\xbf)?" + _ISO_Z)
_GH_COLUMNS = re.compile(rb"^([^\t\n]*)\t([^\t\n]*)\t(?:\xef\xbb\xbf)?")
_GH_LINE = re.compile(rb"^[^\t\n]+\t[^\t\n]*\t(?:\xef\xbb\xbf)?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
# timestamps console logs put before each line (Jenkins' timestamper, loggers, CI agents)
_PLAIN_STAMPS = (
    re.compile(rb"^" + _ISO_Z),
    re.compile(rb"^\[\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?\] ?"),
    re.compile(rb"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)? ?"),
    re.compile(rb"^\[?\d\d:\d\d:\d\d(?:[.,]\d+)?\]? "),
)
_GITHUB_SIGNS = re.compile(
    rb"(?m)^(?:\xef\xbb\xbf)?(?:" + _ISO_Z + rb")?(?:##\[(?:group|endgroup|error)\]"
    rb"|Error: (?:Process completed with exit code \d|The process '[^'\n]*' failed with exit code))"
)
SAMPLE_LINES = 400


@dataclass(frozen=True)
class Layout:
    kind: str
    stamp: re.Pattern[bytes] | None  # the timestamp to strip at the start of a line

    @property
    def markers(self) -> bool:
        """Whether GitHub's step headers and failure markers mean anything here."""
        return self.kind != PLAIN

    def split(self, raw: bytes) -> tuple[bytes, bytes]:
        """(step column or b"", the line's text without columns or timestamp)."""
        step = b""
        if self.kind == GH:
            columns = _GH_COLUMNS.match(raw)
            if columns is not None:
                step = columns.group(2)
                raw = raw[columns.end() :]
        if self.stamp is not None:
            stamp = self.stamp.match(raw)
            if stamp is not None:
                raw = raw[stamp.end() :]
        return step, raw


def detect_layout(sample: bytes) -> Layout:
    """The layout of a log from its first lines (whole lines, CRLF already turned to LF)."""
    lines = [line for line in sample.split(b"\n", SAMPLE_LINES)[:SAMPLE_LINES] if line.strip()]
    if not lines:
        return Layout(PLAIN, None)
    half = len(lines) / 2
    if sum(1 for line in lines if _GH_LINE.match(line)) >= half:
        return Layout(GH, _GITHUB_STAMP)
    if sum(1 for line in lines if _GITHUB_STAMP.match(line)) >= half or _GITHUB_SIGNS.search(
        sample
    ):
        return Layout(GITHUB, _GITHUB_STAMP)
    best, count = None, 0
    for stamp in _PLAIN_STAMPS:
        hits = sum(1 for line in lines if stamp.match(line))
        if hits > count:
            best, count = stamp, hits
    if best is None or count < half:
        return Layout(PLAIN, None)
    return Layout(PLAIN, _wide(best, lines))


def _wide(stamp: re.Pattern[bytes], lines: list[bytes]) -> re.Pattern[bytes]:
    """The stamp with the separator the log uses: Jenkins' Timestamper plugin writes two
    spaces after its time (`21:51:15  Started by user`), and the second must go too, or no
    `^` anchored pattern matches. A log whose lines only sometimes have a second space (an
    indented trace) keeps the one-space stamp, so its indentation stays."""
    rests = [line[m.end() :] for line in lines if (m := stamp.match(line)) and line[m.end() :]]
    if rests and sum(1 for rest in rests if rest.startswith(b" ")) >= 0.8 * len(rests):
        return re.compile(stamp.pattern + b" ?")
    return stamp
