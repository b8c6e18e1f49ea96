"""Raw log bytes to clean text blocks, in bounded memory.

GitHub logs arrive as byte chunks with arbitrary boundaries: CRLF or LF, a UTF-8 BOM,
a timestamp at the start of most lines, ANSI colour codes, and sometimes invalid UTF-8
or NUL bytes. `clean_blocks` yields blocks of whole, cleaned lines (each ending in
"\\n"), at most about `block` bytes each, however long the log.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator

# the timestamp GitHub puts before each line: 2026-10-01T12:00:00.1234567Z
_TIMESTAMP = re.compile(r"(?m)^\ufeff?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ?")
_ANSI = re.compile(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MAX_LINE = 8192  # longer lines are cut: a match needs no more, memory stays bounded


def clean_text(text: str) -> str:
    """Cleaned lines of a text: no BOM, timestamps, colours, CR, NUL or control characters."""
    # a lone CR (progress bars) becomes a space so line numbers stay GitHub's
    text = text.replace("\r\n", "\n").replace("\r", " ")
    text = _TIMESTAMP.sub("", text)
    text = _ANSI.sub("", text)
    text = _CONTROL.sub("", text)
    return text.lstrip("\ufeff")


def _cap_lines(text: str) -> str:
    if len(text) <= MAX_LINE or all(len(line) <= MAX_LINE for line in text.split("\n")):
        return text
    return "\n".join(line[:MAX_LINE] for line in text.split("\n"))


def clean_blocks(chunks: Iterable[bytes], block: int = 1 << 20) -> Iterator[str]:
    """Blocks of cleaned whole lines from raw chunks; the last line gets a newline."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending: list[str] = []
    size = 0
    carry = ""
    first = True
    for chunk in chunks:
        if not chunk:
            continue
        text = decoder.decode(chunk)
        if first:
            text = text.lstrip("\ufeff")
            first = False
        pending.append(text)
        size += len(text)
        if size < block:
            continue
        joined = carry + "".join(pending)
        pending, size = [], 0
        # keep a trailing CR with the next chunk: it may be half of a CRLF
        cut = joined.rfind("\n")
        if cut < 0:
            # one giant line so far: keep only its start
            carry = joined[:MAX_LINE] if len(joined) > MAX_LINE * 4 else joined
            continue
        carry = joined[cut + 1 :]
        yield _cap_lines(clean_text(joined[: cut + 1]))
    tail = carry + "".join(pending) + decoder.decode(b"", final=True)
    if tail:
        if not tail.endswith("\n"):
            tail += "\n"
        yield _cap_lines(clean_text(tail))
