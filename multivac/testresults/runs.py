"""A run's test results as a gather sees them: per job, from the job's log (the
collector, in the classification pass) and from the run's JUnit artifacts.

Which jobs have results (docs/tests.md, "Where results come from"):

- a failed job's log is read to classify it: its results come from that same pass;
- a successful (or cancelled) job's log is never downloaded, so its results come only
  from JUnit artifacts (`--junit-artifacts`); without them multivac knows of such a job
  only that it ended well.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Protocol, TypeVar

from multivac.errors import GitHubError, LogPending
from multivac.model import Job
from multivac.testresults.artifacts import (
    MAX_TOTAL_BYTES,
    ArtifactOutcome,
    ArtifactRef,
    assign_artifacts,
    download,
    merge_job_results,
    read_artifact,
    select_artifacts,
)
from multivac.testresults.collector import TestCollector, TestSummary
from multivac.testresults.model import TestResult
from multivac.testresults.records import summarize

__all__ = [
    "ArtifactNote",
    "ArtifactSource",
    "JobTests",
    "RunArtifacts",
    "TestTally",
    "read_run_artifacts",
]

T = TypeVar("T")

# what became of one artifact (the store keeps it, so it is read once)
READ = "read"
EXPIRED = "expired"
PROBLEM = "problem"  # read, with problems (some files refused or broken)
UNREADABLE = "unreadable"  # nothing could be read from it
UNASSIGNED = "unassigned"  # read, but which job uploaded it cannot be told
TOO_LARGE = "too_large"


@dataclass(frozen=True)
class JobTests:
    """One job's test results (statuses as this job alone shows them), and how many
    were past the per-job cap (counted, not kept)."""

    results: tuple[TestResult, ...] = ()
    dropped: int = 0
    sources: frozenset[str] = frozenset()  # "log", "junit"

    @classmethod
    def from_collector(cls, collector: TestCollector) -> JobTests:
        results = tuple(collector.results())
        return cls(results, sum(collector.dropped.values()), frozenset({"log"}))

    def summary(self) -> TestSummary:
        return summarize(self.results, self.dropped)

    def with_artifacts(self, found: Sequence[TestResult], dropped: int = 0) -> JobTests:
        """Merged with results from JUnit artifacts: where both tell, the artifact wins."""
        merged = merge_job_results(self.results, found)
        return JobTests(tuple(merged), self.dropped + dropped, self.sources | {"junit"})


@dataclass(frozen=True)
class ArtifactNote:
    """What became of one matching artifact: for the summary and the store."""

    id: int
    name: str
    outcome: str  # READ, EXPIRED, PROBLEM, UNREADABLE, UNASSIGNED, TOO_LARGE
    job_id: int | None = None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunArtifacts:
    """The JUnit results of a run's matching artifacts, by the job that uploaded them."""

    by_job: dict[int, list[TestResult]] = field(default_factory=dict)
    dropped: dict[int, int] = field(default_factory=dict)
    notes: tuple[ArtifactNote, ...] = ()


class ArtifactSource(Protocol):
    """The part of a gather's source that lists and downloads artifacts."""

    def artifacts(self, repo: str, run_id: int) -> list[ArtifactRef]: ...

    def read_artifact(
        self, repo: str, artifact_id: int, consume: Callable[[Iterator[bytes]], T]
    ) -> T | None: ...


def _too_large(ref: ArtifactRef) -> tuple[str, ArtifactOutcome]:
    why = f"artifact {ref.name!r} is over the {MAX_TOTAL_BYTES >> 20} MiB limit; not read."
    return TOO_LARGE, ArtifactOutcome(ref.name, problems=(why,))


def _read_one(
    source: ArtifactSource, repo: str, ref: ArtifactRef
) -> tuple[str, ArtifactOutcome] | None:
    """One artifact, downloaded to a bounded temporary file and read: (READ or
    TOO_LARGE, what it gave); None when it expired or vanished."""
    if ref.size_in_bytes > MAX_TOTAL_BYTES:
        return _too_large(ref)  # not even downloaded

    def consume(chunks: Iterator[bytes]) -> tuple[str, ArtifactOutcome]:
        handle: IO[bytes] | None = download(chunks)
        if handle is None:
            return _too_large(ref)
        with handle:
            return READ, read_artifact(handle, ref.name)

    return source.read_artifact(repo, ref.id, consume)


def read_run_artifacts(
    source: ArtifactSource,
    repo: str,
    run_id: int,
    jobs: Sequence[Job],
    pattern: str,
    *,
    known: frozenset[int] = frozenset(),
    notify: Callable[[str], None] = lambda _message: None,
) -> RunArtifacts:
    """List a run's artifacts, read those whose name matches `pattern` (and not in
    `known`: read by an earlier gather), and give their results to the jobs that
    uploaded them. Every problem is one sentence in a note; the gather goes on.

    Raises GitHubError when the listing itself is refused, LogPending when the blob
    host stays down past the retry budget (the run is then listed again next time)."""
    refs = [ref for ref in select_artifacts(source.artifacts(repo, run_id), pattern)]
    refs = [ref for ref in refs if ref.id not in known]
    owners = assign_artifacts(jobs, refs)
    by_job: dict[int, list[TestResult]] = {}
    dropped: dict[int, int] = {}
    notes: list[ArtifactNote] = []
    for ref in refs:
        owner = owners.get(ref.id)
        if ref.expired:
            notes.append(ArtifactNote(ref.id, ref.name, EXPIRED, owner))
            continue
        try:
            read = _read_one(source, repo, ref)
        except GitHubError as exc:
            if isinstance(exc, LogPending):
                raise
            notes.append(ArtifactNote(ref.id, ref.name, UNREADABLE, owner, (str(exc),)))
            notify(str(exc))
            continue
        if read is None:
            notes.append(ArtifactNote(ref.id, ref.name, EXPIRED, owner))
            continue
        kind, outcome = read
        for problem in outcome.problems:
            notify(problem)
        if kind == TOO_LARGE or (outcome.problems and not outcome.results):
            kind = kind if kind == TOO_LARGE else UNREADABLE
            notes.append(ArtifactNote(ref.id, ref.name, kind, owner, outcome.problems))
            continue
        if owner is None:
            why = (
                f"artifact {ref.name!r}: which job uploaded it cannot be told (name it after "
                "its job, e.g. junit-${{ matrix.os }}); its results were left out.",
            )
            notify(why[0])
            notes.append(ArtifactNote(ref.id, ref.name, UNASSIGNED, None, why))
            continue
        by_job.setdefault(owner, []).extend(outcome.results)
        dropped[owner] = dropped.get(owner, 0) + outcome.dropped
        kind = PROBLEM if outcome.problems else READ
        notes.append(ArtifactNote(ref.id, ref.name, kind, owner, outcome.problems))
    return RunArtifacts(by_job, dropped, tuple(notes))


@dataclass
class TestTally:
    """What a gather found of test results, for its summary line."""

    __test__ = False

    jobs: int = 0  # jobs whose results were parsed now (log or artifacts)
    statuses: Counter[str] = field(default_factory=Counter)  # results parsed now
    dropped: int = 0  # results past the per-job cap, counted only
    capped_jobs: int = 0
    artifacts_read: int = 0
    expired: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # names of artifacts with problems
    unassigned: list[str] = field(default_factory=list)
    runs_without_artifacts: int = 0  # listing or download failed: tried again next time

    def add_job(self, tests: JobTests, statuses: Sequence[TestResult]) -> None:
        self.jobs += 1
        self.statuses.update(result.status for result in statuses)
        if tests.dropped:
            self.dropped += tests.dropped
            self.capped_jobs += 1

    def add_notes(self, notes: Sequence[ArtifactNote]) -> None:
        for note in notes:
            if note.outcome in (READ, PROBLEM, UNASSIGNED):
                self.artifacts_read += 1
            if note.outcome == EXPIRED:
                self.expired.append(note.name)
            elif note.outcome in (PROBLEM, UNREADABLE, TOO_LARGE):
                self.problems.append(note.name)
            elif note.outcome == UNASSIGNED:
                self.unassigned.append(note.name)

    def notes(self) -> list[str]:
        """Parts of the gather's summary line (empty when nothing was parsed)."""
        out: list[str] = []
        if self.jobs:
            counts = ", ".join(
                f"{status} {self.statuses[status]}"
                for status in ("failed", "hung", "flaky", "passed", "skipped")
                if self.statuses[status]
            )
            total = sum(self.statuses.values())
            out.append(
                f"{total} test results in {self.jobs} jobs" + (f" ({counts})" if counts else "")
            )
        if self.dropped:
            out.append(
                f"{self.dropped} test results past the per-job cap in {self.capped_jobs} jobs "
                "(counted, not kept)"
            )
        if self.artifacts_read:
            out.append(f"{self.artifacts_read} JUnit artifacts read")
        for names, what in (
            (self.expired, "expired"),
            (self.problems, "with problems"),
            (self.unassigned, "not matched to a job"),
        ):
            if names:
                shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
                out.append(f"{len(names)} artifacts {what} ({shown})")
        if self.runs_without_artifacts:
            out.append(f"{self.runs_without_artifacts} runs' artifacts not read (next gather)")
        return out
