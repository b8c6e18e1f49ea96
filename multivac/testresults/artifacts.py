"""JUnit reports from a run's artifacts: which to fetch, how to open them, how to merge.

Downloading belongs to the GitHub source (the list of a run's artifacts, then the zip
through the 302 to the blob host, never with the token there); this module takes what
it fetched. An artifact is somebody else's zip file, so nothing in it is trusted:

- member names are only labels, never paths (nothing is extracted to disk), and a
  name that would escape a folder (zip slip) is refused and reported;
- each member and the whole archive are capped in *decompressed* bytes, counted while
  reading (a zip bomb's headers lie), and a member over its cap is refused;
- junk, truncated or unsafe XML gives one sentence naming the artifact and member.

Every problem is reported in `ArtifactOutcome.problems`; the other members and the
other artifacts are still read.
"""

from __future__ import annotations

import fnmatch
import io
import re
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from multivac.model import SKIPPED as SKIPPED_CONCLUSION
from multivac.model import Job
from multivac.testresults.collector import DEFAULT_CAP
from multivac.testresults.junit import JUnitError, iter_junit
from multivac.testresults.model import (
    FAILED,
    FLAKY,
    HUNG,
    NON_PASSING,
    PASSED,
    TestResult,
    merge_results,
)

__all__ = [
    "MAX_MEMBERS",
    "MAX_MEMBER_BYTES",
    "MAX_TOTAL_BYTES",
    "ArtifactOutcome",
    "ArtifactRef",
    "artifacts_from_payload",
    "assign_artifacts",
    "download",
    "loose_key",
    "merge_job_results",
    "read_artifact",
    "select_artifacts",
    "unsafe_member_name",
]

MAX_MEMBER_BYTES = 64 << 20  # one XML report, decompressed
MAX_TOTAL_BYTES = 256 << 20  # all members of one artifact, decompressed
MAX_MEMBERS = 10_000
_SOURCE_SUFFIXES: tuple[str, ...] = (".py", ".rb", ".js", ".jsx", ".ts", ".tsx", ".mjs")
_SOURCE_SUFFIXES += (".cjs", ".go", ".rs", ".java", ".kt", ".php", ".lua", ".cs", ".t")


@dataclass(frozen=True)
class ArtifactRef:
    """One entry of `GET /repos/{o}/{r}/actions/runs/{id}/artifacts`."""

    id: int
    name: str
    size_in_bytes: int
    expired: bool
    archive_download_url: str
    created_at: datetime | None = None  # when the job that uploaded it did so


@dataclass(frozen=True)
class ArtifactOutcome:
    """What one artifact gave: its results, and one sentence per problem."""

    name: str
    results: tuple[TestResult, ...] = ()
    problems: tuple[str, ...] = ()
    members_read: int = 0
    dropped: int = 0  # results past the per-job cap, counted only


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def artifacts_from_payload(payload: Mapping[str, Any]) -> list[ArtifactRef]:
    """The artifacts of a listing page (entries missing an id or a name are skipped)."""
    refs = []
    for item in payload.get("artifacts") or ():
        if not isinstance(item, Mapping):
            continue
        artifact_id, name = item.get("id"), item.get("name")
        if not isinstance(artifact_id, int) or not isinstance(name, str):
            continue
        size = item.get("size_in_bytes")
        refs.append(
            ArtifactRef(
                id=artifact_id,
                name=name,
                size_in_bytes=size if isinstance(size, int) else 0,
                expired=bool(item.get("expired")),
                archive_download_url=str(item.get("archive_download_url") or ""),
                created_at=_moment(item.get("created_at")),
            )
        )
    return refs


def select_artifacts(refs: Iterable[ArtifactRef], pattern: str) -> list[ArtifactRef]:
    """The artifacts whose name matches a `--junit-artifacts` glob (case-sensitive, as
    artifact names are); expired ones included, so that they can be named as expired."""
    return [ref for ref in refs if fnmatch.fnmatchcase(ref.name, pattern)]


def unsafe_member_name(name: str) -> bool:
    """True for a member name that would leave a folder if it were a path."""
    if not name or "\x00" in name:
        return True
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":"):
        return True
    return any(part == ".." for part in normalized.split("/"))


class _TooBig(Exception):
    pass


class _CappedReader(io.RawIOBase):
    """A member's decompressed stream that refuses to deliver more than `limit` bytes."""

    def __init__(self, raw: IO[bytes], limit: int) -> None:
        self.raw = raw
        self.limit = limit
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        want = min(len(view), self.limit - self.count + 1)
        data = self.raw.read(max(want, 1))
        self.count += len(data)
        if self.count > self.limit:
            raise _TooBig
        view[: len(data)] = data
        return len(data)


def read_artifact(
    data: bytes | Path | IO[bytes],
    name: str,
    *,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_members: int = MAX_MEMBERS,
    cap: int = DEFAULT_CAP,
) -> ArtifactOutcome:
    """The JUnit results of one artifact zip (`*.xml` members; other files ignored)."""
    source: Any = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        return ArtifactOutcome(name, problems=(f"artifact {name!r} is not a zip archive.",))
    results: list[TestResult] = []
    problems: list[str] = []
    dropped = 0
    total = 0
    read = 0
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) > max_members:
            problems.append(
                f"artifact {name!r} has {len(members)} files; only the first "
                f"{max_members} were looked at."
            )
            members = members[:max_members]
        for info in members:
            label = f"artifact {name!r}, file {info.filename!r}"
            if unsafe_member_name(info.filename):
                problems.append(f"{label}: unsafe name (it would leave the folder); skipped.")
                continue
            if not info.filename.lower().endswith(".xml"):
                continue
            if info.flag_bits & 0x1:
                problems.append(f"{label}: encrypted; skipped.")
                continue
            budget = min(max_member_bytes, max_total_bytes - total)
            if budget <= 0:
                problems.append(
                    f"artifact {name!r}: over {max_total_bytes >> 20} MiB of reports "
                    "decompressed; the remaining files were skipped."
                )
                break
            if info.file_size > budget:
                problems.append(
                    f"{label}: {info.file_size} bytes decompressed, over the "
                    f"{budget} byte limit (a zip bomb?); skipped."
                )
                continue
            try:
                with archive.open(info) as raw:
                    reader = _CappedReader(raw, budget)
                    stream = io.BufferedReader(reader, 1 << 16)
                    try:
                        for result in iter_junit(stream, f"{name}/{info.filename}"):
                            if len(results) >= cap:
                                dropped += 1
                                continue
                            results.append(result)
                    finally:
                        total += reader.count
                read += 1
            except _TooBig:
                problems.append(
                    f"{label}: expands past the {budget} byte limit (a zip bomb?); "
                    "the rest of it was skipped."
                )
            except JUnitError as exc:
                problems.append(f"artifact {name!r}: {exc}")
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
                problems.append(f"{label}: cannot be decompressed ({exc}).")
    return ArtifactOutcome(name, tuple(results), tuple(problems), read, dropped)


# ---------------------------------------------------------------------------- downloading


class _Refused(Exception):
    pass


def download(chunks: Iterable[bytes], limit: int = MAX_TOTAL_BYTES) -> IO[bytes] | None:
    """An artifact's zip, from the blob host's stream into a temporary file (in memory
    while small), or None when it is larger than `limit` bytes: an artifact's size is
    checked again as it arrives, whatever its listing said."""
    handle: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115
    total = 0
    try:
        for chunk in chunks:
            total += len(chunk)
            if total > limit:
                raise _Refused
            handle.write(chunk)
    except _Refused:
        handle.close()
        return None
    except BaseException:
        handle.close()
        raise
    handle.seek(0)
    return handle


# ---------------------------------------------------------------------------- jobs


_WORD = re.compile(r"[a-z0-9]+")
BEFORE_START = timedelta(seconds=5)  # clock differences between the runner and the API
AFTER_END = timedelta(minutes=2)  # an upload at the job's very end is listed a bit later


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def assign_artifacts(jobs: Sequence[Job], refs: Sequence[ArtifactRef]) -> dict[int, int | None]:
    """Which job uploaded each artifact (artifact id -> job id, None when it cannot be
    told). GitHub does not say: an artifact belongs to a run. The jobs that were running
    when it was created are the candidates (all the run's jobs when none was, or when
    the listing has no time); one candidate is the answer; among several, the one whose
    name shares the most words with the artifact's name (`junit-ubuntu-latest-3.12`
    names `test (ubuntu-latest, 3.12)`), when exactly one does."""
    eligible = [
        job
        for job in jobs
        if job.status == "completed" and job.conclusion not in (None, SKIPPED_CONCLUSION)
    ]
    found: dict[int, int | None] = {}
    for ref in refs:
        pool = eligible
        if ref.created_at is not None:
            running = [
                job
                for job in eligible
                if job.started_at is not None
                and job.started_at - BEFORE_START <= ref.created_at
                and (job.completed_at is None or ref.created_at <= job.completed_at + AFTER_END)
            ]
            pool = running or eligible
        if len(pool) == 1:
            found[ref.id] = pool[0].id
            continue
        words = _words(ref.name)
        scores = [(len(words & _words(job.name)), job.id) for job in pool]
        best = max((score for score, _ in scores), default=0)
        winners = [job_id for score, job_id in scores if score == best]
        found[ref.id] = winners[0] if best > 0 and len(winners) == 1 else None
    return found


# ---------------------------------------------------------------------------- merging


_SEPARATORS = ("::", " > ", " › ", "#", "\\")


def loose_key(test: str) -> tuple[str, ...]:
    """A test id's words, for matching a log's id with a JUnit report's: separators
    (`/`, `.`, `::`, ` > `, ` › `, `#`, brackets) and source suffixes (`.py`, `.js`,
    ...) do not count, so `tests/test_a.py::TestX::test_y[1]` meets the JUnit
    `tests.test_a.TestX` + `test_y[1]`."""
    for separator in _SEPARATORS:
        test = test.replace(separator, "/")
    words: list[str] = []
    for part in test.split("/"):
        for suffix in _SOURCE_SUFFIXES:
            if part.endswith(suffix):
                part = part[: -len(suffix)]
                break
        word: list[str] = []
        for ch in part:
            if ch.isalnum() or ch == "_":
                word.append(ch)
            elif word:
                words.append("".join(word))
                word = []
        if word:
            words.append("".join(word))
    return tuple(words)


# (log, artifact) pairs where the log's status refines the artifact's rather than
# contradicts it: a report lists a rerun test as passed, and a killed test as failed
_REFINEMENTS = frozenset({(FLAKY, PASSED), (HUNG, FAILED)})


def _suffix_of(short: tuple[str, ...], long: tuple[str, ...]) -> bool:
    return 0 < len(short) <= len(long) and long[len(long) - len(short) :] == short


def merge_job_results(
    log: Sequence[TestResult], artifacts: Sequence[TestResult]
) -> list[TestResult]:
    """One job's results from its log and from its JUnit artifacts.

    A test found in both keeps the log's id, framework, configuration and line (the
    documented ids), and takes the artifact's status, message and duration: where they
    disagree, the artifact wins, except that a log's flaky (or hung) test stays so when
    the report only says passed (or failed). A JUnit test matches a log test when their ids have
    the same words (`loose_key`), or, failing that, when one's words end the other's
    and no other candidate does. Tests only in one source are kept as they are."""
    merged = list(log)
    exact: dict[tuple[str, ...], list[int]] = {}
    by_last: dict[str, list[int]] = {}  # a suffix match shares the last word
    for index, result in enumerate(merged):
        words = loose_key(result.test)
        exact.setdefault(words, []).append(index)
        if words:
            by_last.setdefault(words[-1], []).append(index)
    # a report may list a test twice (a rerun, or two reports of one run): one entry each
    unique: dict[tuple[str, ...], TestResult] = {}
    for found in artifacts:
        words = loose_key(found.test)
        seen = unique.get(words)
        unique[words] = found if seen is None else merge_results(seen, found)
    claimed: set[int] = set()
    extra: list[TestResult] = []
    for words, found in unique.items():
        candidates = [i for i in exact.get(words, []) if i not in claimed]
        if not candidates and words:
            candidates = [
                i
                for i in by_last.get(words[-1], [])
                if i not in claimed
                and (
                    _suffix_of(words, loose_key(merged[i].test))
                    or _suffix_of(loose_key(merged[i].test), words)
                )
            ]
        if len(candidates) != 1 and not (candidates and words in exact):
            extra.append(found)
            continue
        index = candidates[0]
        claimed.add(index)
        ours = merged[index]
        status = found.status
        if (ours.status, status) in _REFINEMENTS:
            status = ours.status  # the log saw more: a failure before the pass, a hang
        merged[index] = replace(
            ours,
            status=status,
            message=found.message
            if found.status in NON_PASSING
            else ("" if ours.status in NON_PASSING else ours.message),
            duration_s=found.duration_s if found.duration_s is not None else ours.duration_s,
            suite=ours.suite or found.suite,
            source=found.source,
        )
    return merged + extra
