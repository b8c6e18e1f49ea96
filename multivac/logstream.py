"""Raw log bytes to blocks of whole lines and clean text, in bounded memory.

GitHub logs arrive as byte chunks with arbitrary boundaries: CRLF or LF, a UTF-8 BOM,
a timestamp at the start of most lines, ANSI colour codes, and sometimes invalid UTF-8
or NUL bytes. `raw_blocks` yields blocks of whole lines (each ending in a newline) of
about `block` bytes however long the log; `clean_line` cleans one of their lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

# the timestamp GitHub puts before each line: 2026-10-01T12:00:00.1234567Z
_TIMESTAMP = re.compile(r"(?m)^\ufeff?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ?")
_ANSI = re.compile(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MAX_LINE = 8192  # longer lines are cut: a match needs no more, memory stays bounded
# BuildKit's plain progress (what `docker build` prints without a terminal, so in every CI)
# puts the build step's number and the seconds since it started before each line of a RUN
# command's output: `#12 3.456 FAILED tests/test_a.py::test_b`. Like a timestamp it goes,
# so that `^` means the start of the tool's own line inside a Docker build too.
_BUILDKIT = re.compile(r"(?m)^#\d+ \d+\.\d+ ")
BUILDKIT_BYTES = re.compile(rb"^#\d+ \d+\.\d+ ")


def clean_text(text: str) -> str:
    """Cleaned lines of a text: no BOM, timestamps, colours, CR, NUL or control characters."""
    # a lone CR (progress bars) becomes a space so line numbers stay GitHub's
    text = text.replace("\r\n", "\n").replace("\r", " ")
    text = _TIMESTAMP.sub("", text)
    text = _ANSI.sub("", text)
    text = _CONTROL.sub("", text)
    return _BUILDKIT.sub("", text.lstrip("\ufeff"))


_TIMESTAMP_BYTES = re.compile(rb"^(?:\xef\xbb\xbf)?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ?")
_ANSI_BYTES = re.compile(rb"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
CONTROL_DELETE = bytes([*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F])
#: control bytes a line may still hold after `tidy` (lines with them are always checked)
CONTROL_BYTES = bytes(
    [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x1B), *range(0x1C, 0x20), 0x7F]
)
CONTROL_CLASS = r"[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]"


def clean_line(raw: bytes) -> str:
    """One raw log line (no newline) as clean text: no timestamp, BOM, BuildKit step
    prefix or control bytes."""
    raw = _TIMESTAMP_BYTES.sub(b"", raw[:MAX_LINE], count=1)
    return _BUILDKIT.sub("", clean_bytes(raw), count=1)


def clean_bytes(raw: bytes) -> str:
    """Text of a line whose prefix (columns, timestamp) is already gone."""
    text = raw[:MAX_LINE].translate(None, CONTROL_DELETE).decode("utf-8", "replace")
    return text.lstrip("\ufeff")


def tidy(block: bytes) -> bytes:
    """Line endings and colours of a block of whole lines. Timestamps and other control
    bytes stay: they are removed per candidate line, far cheaper than per block."""
    if b"\r" in block:
        block = block.replace(b"\r\n", b"\n")
        if b"\r" in block:
            block = block.replace(b"\r", b" ")  # progress bars: keep GitHub's line numbers
    if b"\x1b" in block:
        block = _ANSI_BYTES.sub(b"", block)
    return block


def raw_blocks(chunks: Iterable[bytes], block: int = 1 << 20) -> Iterator[bytes]:
    """Blocks of whole lines (each ending in a newline) from raw chunks, tidied."""
    pending: list[bytes] = []
    size = 0
    carry = b""
    first = True
    for chunk in chunks:
        if not chunk:
            continue
        if first:
            chunk = chunk.removeprefix(b"\xef\xbb\xbf")
            first = False
        pending.append(chunk)
        size += len(chunk)
        if size < block:
            continue
        joined = carry + b"".join(pending)
        pending, size = [], 0
        cut = joined.rfind(b"\n")
        if cut < 0:
            # one giant line so far: keep only its start, memory stays bounded
            carry = joined[:MAX_LINE] if len(joined) > MAX_LINE * 4 else joined
            continue
        # a CR at the very end stays in carry with the rest: it may be half of a CRLF
        carry = joined[cut + 1 :]
        yield tidy(joined[: cut + 1])
    tail = carry + b"".join(pending)
    if tail:
        if not tail.endswith(b"\n"):
            tail += b"\n"
        yield tidy(tail)
