"""Find the lines of a raw log block that any pattern could match, fast.

The exact rules run with RE2 on cleaned lines; this module only has to find a superset of
those lines in raw bytes (timestamps, `gh` columns still on). It does so with literal
*factors*: for each pattern, a few strings one of which appears in every match (the
factors of `^\\S+:\\d+: (fatal )?error: ` are ` error: ` and ` fatal error: `). A
multi-pattern literal search is far faster than any regular expression scan and compiles
in milliseconds, and the exact check on the few lines it finds costs little.

Two engines search for the factors, with the same factors and so the same candidate lines:

- Hyperscan (the `hyperscan` package, `pip install multivac[fast]`), SIMD literal and
  regex matching built for this;
- RE2, one alternation of the factors: always there, linear time as well.

A pattern without a useful factor (too short, or syntax the factor extraction does not
follow) is searched whole, unanchored: by Hyperscan when it accepts it, else by RE2. Either
way the time stays linear in the log's size whatever a user writes.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import re2

from multivac.logstream import CONTROL_BYTES, CONTROL_CLASS

_hs: Any
try:  # the optional fast engine: wheels exist for most but not all platforms
    import hyperscan as _hs
except ImportError:  # pragma: no cover - depends on the platform
    _hs = None

__all__ = [
    "ENGINES",
    "Factors",
    "Prefilter",
    "active_engine",
    "available_engines",
    "engine_status",
    "factors_of",
    "unanchored",
]

ENGINES = ("hyperscan", "re2")
MIN_FACTOR = 3  # shorter literals match too many lines to be worth it
MAX_SET = 32  # bound on the strings one node may stand for
CACHE_ENTRIES = 16  # compiled databases kept on disk
_re_parser: Any = getattr(re, "_parser", None)
_re_constants: Any = getattr(re, "_constants", None)


def available_engines() -> list[str]:
    """Engines usable here, fastest first."""
    return [name for name in ENGINES if name != "hyperscan" or _hs is not None]


def active_engine() -> str:
    """The engine classification uses: `MULTIVAC_ENGINE` if set and usable, else the
    fastest one installed. For `doctor`: 're2' means the optional extra is missing."""
    wanted = os.environ.get("MULTIVAC_ENGINE", "").strip().lower()
    usable = available_engines()
    if wanted in usable:
        return wanted
    return usable[0]


def engine_status() -> str:
    """One line for `multivac doctor`: the engine in use and, if Hyperscan is missing, how
    to get it (classification gives the same types either way)."""
    engine = active_engine()
    if engine == "hyperscan":
        return f"hyperscan {getattr(_hs, '__version__', '')}".strip()
    if _hs is None:
        return "re2 (Hyperscan not installed: pip install 'multivac[fast]' for faster scans)"
    return "re2 (chosen by MULTIVAC_ENGINE)"


def _re2_options() -> Any:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 256 << 20
    return options


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


# ---------------------------------------------------------------------------- factors


@dataclass(frozen=True)
class Factors:
    """What the prefilter searches for one pattern: literal strings (one of which is in
    every match; lower case when `caseless`), or, when none is good enough, the whole
    pattern unanchored."""

    literals: tuple[str, ...] = ()
    caseless: bool = False
    regex: str = ""


@dataclass(frozen=True)
class _Info:
    exact: frozenset[str] | None  # every string the node can match, when few
    match: frozenset[str] | None  # one of these is in every match (None: no constraint)


def _as_match(exact: frozenset[str] | None) -> frozenset[str] | None:
    if exact is None or "" in exact:
        return None
    return exact


def _better(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    if a is None:
        return b
    if b is None:
        return a
    key_a = (min(map(len, a)), -len(a))
    key_b = (min(map(len, b)), -len(b))
    return a if key_a >= key_b else b


def _concat(infos: list[_Info]) -> _Info:
    exact: frozenset[str] | None = frozenset({""})
    best: frozenset[str] | None = None
    whole = True
    for info in infos:
        if exact is not None and info.exact is not None and len(exact) * len(info.exact) <= MAX_SET:
            exact = frozenset(a + b for a in exact for b in info.exact)
            continue
        whole = False
        best = _better(best, _as_match(exact))
        best = _better(best, info.match if info.exact is None else _as_match(info.exact))
        exact = info.exact
    if whole:
        return _Info(exact, _as_match(exact))
    return _Info(None, _better(best, _as_match(exact)))


def _alternate(infos: list[_Info]) -> _Info:
    if all(i.exact is not None for i in infos):
        union = frozenset().union(*(i.exact or () for i in infos))
        if len(union) <= MAX_SET:
            return _Info(union, _as_match(union))
    matches = [i.match if i.exact is None else _as_match(i.exact) for i in infos]
    if any(m is None for m in matches):
        return _Info(None, None)
    union = frozenset().union(*(m or () for m in matches))
    return _Info(None, union if len(union) <= MAX_SET * 2 else None)


_ANY = _Info(None, None)


def _walk(items: Any, caseless: bool) -> _Info:
    c = _re_constants
    infos: list[_Info] = []
    for op, value in items:
        if op is c.LITERAL:
            char = chr(value)
            infos.append(_Info(frozenset({char.lower() if caseless else char}), None))
        elif op is c.AT:
            infos.append(_Info(frozenset({""}), None))
        elif op is c.IN:
            chars: set[str] = set()
            simple = True
            for kind, item in value:
                if kind is c.LITERAL:
                    chars.add(chr(item).lower() if caseless else chr(item))
                else:
                    simple = False
            if simple and 0 < len(chars) <= 4:
                infos.append(_Info(frozenset(chars), None))
            else:
                infos.append(_ANY)
        elif op is c.SUBPATTERN:
            infos.append(_walk(value[-1], caseless))
        elif op is c.BRANCH:
            infos.append(_alternate([_walk(branch, caseless) for branch in value[1]]))
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT):
            low, high, body = value
            inner = _walk(body, caseless)
            if low == 0:
                if high == 1 and inner.exact is not None:
                    infos.append(_Info(inner.exact | {""}, None))
                else:
                    infos.append(_Info(frozenset({""}), None) if high == 0 else _ANY)
            elif low == high == 1:
                infos.append(inner)
            elif inner.exact is not None and low <= 8 and len(inner.exact) == 1:
                # x{2,} is xx then x*: the two copies join the literal run around them
                infos.append(_Info(frozenset(e * low for e in inner.exact), None))
                if high != low:
                    infos.append(_ANY)
            else:
                infos.append(_Info(None, inner.match))
        else:  # ANY, NOT_LITERAL, categories, anything else: no constraint
            infos.append(_ANY)
    return _concat(infos)


def factors_of(pattern: str) -> Factors:
    """The literals one of which appears in every line the RE2 pattern matches, or the
    pattern itself (unanchored) when there are none worth searching for."""
    whole = Factors(regex=unanchored(pattern))
    # constructs whose meaning differs between RE2 and Python's parser: search whole
    if _re_parser is None or "[:" in pattern or "\\Q" in pattern:
        return whole
    caseless = "(?i" in pattern
    try:
        parsed = _re_parser.parse(pattern)
    except (re.error, RecursionError, OverflowError, ValueError):
        return whole
    info = _walk(list(parsed), caseless)
    found = info.match if info.exact is None else _as_match(info.exact)
    if not found or min(map(len, found)) < MIN_FACTOR:
        return whole
    if "\n" in "".join(found) or (caseless and not "".join(found).isascii()):
        return whole
    return Factors(tuple(sorted(found)), caseless)


# ---------------------------------------------------------------------------- engines


class Prefilter:
    """Candidate line starts of a block, from the factors of many patterns."""

    def __init__(self, patterns: Sequence[str], engine: str | None = None) -> None:
        self.engine = engine or active_engine()
        if self.engine not in available_engines():
            raise ValueError(f"engine {self.engine!r} is not available here")
        literals: dict[tuple[str, bool], None] = {}
        regexes: dict[str, None] = {}
        self.control = False
        for pattern in patterns:
            if pattern == CONTROL_CLASS:
                self.control = True  # searched as single bytes: no regex in the literal set
                continue
            found = factors_of(pattern)
            if found.regex:
                regexes[found.regex] = None
            for literal in found.literals:
                literals[(literal, found.caseless)] = None
        self.literals = list(literals)
        self.regexes = list(regexes)
        self._leftover: Any = None  # RE2 for what Hyperscan would not take
        self._scan: Callable[[bytes], list[int]]
        if self.engine == "hyperscan":
            self._scan = self._build_hyperscan()
        else:
            control = [CONTROL_CLASS] if self.control else []
            self._scan = self._build_re2(
                [_re2_literal(text, caseless) for text, caseless in self.literals]
                + self.regexes
                + control
            )

    # -- RE2

    def _build_re2(self, parts: list[str]) -> Callable[[bytes], list[int]]:
        if not parts:
            return lambda _block: []
        options = _re2_options()
        options.never_nl = True
        regex = re2.compile("|".join(f"(?:{p})" for p in parts).encode("utf-8"), options)
        search = regex.search

        def scan(block: bytes) -> list[int]:
            starts: list[int] = []
            pos, size = 0, len(block)
            while pos < size:
                found = search(block, pos)
                if found is None:
                    break
                start = block.rfind(b"\n", 0, found.start()) + 1
                starts.append(start)
                end = block.find(b"\n", found.start())
                pos = size if end < 0 else end + 1
            return starts

        return scan

    # -- Hyperscan

    def _build_hyperscan(self) -> Callable[[bytes], list[int]]:
        # Literals go in one database, regexes in another: one regex among the literals
        # makes compiling ten times slower and the scan slower too.
        assert _hs is not None
        literal_scan = _hs_scanner(
            [escape(text).encode("utf-8") for text, _ in self.literals]
            + ([b"\\x%02x" % byte for byte in CONTROL_BYTES] if self.control else []),
            [_hs.HS_FLAG_CASELESS if caseless else 0 for _, caseless in self.literals]
            + ([0] * len(CONTROL_BYTES) if self.control else []),
        )
        accepted: list[bytes] = []
        flags: list[int] = []
        leftover: list[str] = []
        for regex in self.regexes:
            compiled = _hs_compiles(regex)
            if compiled is None:
                leftover.append(regex)
            else:
                accepted.append(regex.encode("utf-8"))
                flags.append(compiled)
        scans = [literal_scan]
        if accepted:
            scans.append(_hs_scanner(accepted, flags))
        if leftover:
            scans.append(self._build_re2(leftover))
        if len(scans) == 1:
            return literal_scan

        def scan(block: bytes) -> list[int]:
            return sorted(set().union(*(one(block) for one in scans)))

        return scan

    def lines(self, block: bytes) -> Iterator[int]:
        """Start offsets of the lines of `block` that may match, in order."""
        yield from self._scan(block)


def cache_dir() -> Path:
    """Where compiled Hyperscan databases are kept between runs."""
    chosen = os.environ.get("MULTIVAC_CACHE_DIR")
    if chosen:
        return Path(chosen).expanduser()
    state = os.environ.get("MULTIVAC_STATE_DIR")
    if state:
        return Path(state).expanduser() / "cache"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "multivac"


def _hs_database(expressions: list[bytes], flags: list[int]) -> Any:
    """A compiled block-mode database, from the on-disk cache when it holds one.

    Compiling the catalog's few hundred literals takes about 0.1 s and some 40 MB at its
    peak; loading the serialised database takes a millisecond. The cache key covers the
    expressions, flags and Hyperscan's version; a damaged entry is compiled again."""
    assert _hs is not None
    key = repr((getattr(_hs, "__version__", ""), expressions, flags))
    digest = hashlib.sha256(key.encode()).hexdigest()
    folder = cache_dir()
    path = folder / f"hs-{digest[:24]}.db"
    try:
        return _hs.loadb(path.read_bytes(), _hs.HS_MODE_BLOCK)
    except Exception:  # absent, unreadable, or from another build: compile it
        pass
    database = _hs.Database(mode=_hs.HS_MODE_BLOCK)
    database.compile(
        expressions=expressions,
        ids=list(range(len(expressions))),
        elements=len(expressions),
        flags=flags,
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(_hs.dumpb(database))
        os.replace(partial, path)
        entries = sorted(folder.glob("hs-*.db"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-CACHE_ENTRIES]:
            old.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only home: compile every time, nothing else changes
    return database


def _hs_scanner(expressions: list[bytes], flags: list[int]) -> Callable[[bytes], list[int]]:
    """Line starts of the lines where any of the expressions match (Hyperscan)."""
    assert _hs is not None
    if not expressions:
        return lambda _block: []
    database = _hs_database(expressions, flags)
    # a scratch space serves one scan at a time: one per thread (gather classifies logs
    # in several threads, and a match callback may let another thread run)
    local = threading.local()

    def scan(block: bytes) -> list[int]:
        ends: list[int] = []
        add = ends.append

        def on_match(_id: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            add(end)

        scratch = getattr(local, "scratch", None)
        if scratch is None:
            scratch = local.scratch = _hs.Scratch(database)
        database.scan(block, match_event_handler=on_match, scratch=scratch)
        starts: list[int] = []
        line_end = -1
        rfind, find = block.rfind, block.find
        for end in sorted(ends):
            if end <= line_end:
                continue  # another factor on a line already taken
            last = end - 1 if end > 0 else 0
            starts.append(rfind(b"\n", 0, last) + 1)
            line_end = find(b"\n", last)
            if line_end < 0:
                line_end = len(block)
        return starts

    return scan


def _hs_compiles(regex: str) -> int | None:
    """Hyperscan flags that compile the regex alone, or None if Hyperscan refuses it."""
    assert _hs is not None
    options: tuple[int, ...] = (_hs.HS_FLAG_PREFILTER, _hs.HS_FLAG_PREFILTER | _hs.HS_FLAG_UTF8)
    for flags in options:
        try:
            db = _hs.Database(mode=_hs.HS_MODE_BLOCK)
            db.compile(expressions=[regex.encode("utf-8")], flags=flags)
            return flags
        except Exception:  # hyperscan.error, and whatever its compiler raises
            continue
    return None


_SPECIAL = frozenset("\\.^$|?*+()[]{}")


def escape(text: str) -> str:
    """A literal as a pattern both RE2 and Hyperscan read the same way."""
    return "".join("\\" + ch if ch in _SPECIAL else ch for ch in text)


def _re2_literal(text: str, caseless: bool) -> str:
    escaped = escape(text)
    return f"(?i:{escaped})" if caseless else escaped
