"""Queries over the local store, defined once for the commands and the HTML report."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from multivac.model import NOT_FAILURES, Job, flaky_job_ids, measurement_for
from multivac.store import Store, StoredJob


@dataclass(frozen=True)
class Outcome:
    """A stored job with its measurement and flakiness worked out."""

    stored: StoredJob
    measurement: str
    flaky: bool

    @property
    def failed(self) -> bool:
        return self.measurement not in NOT_FAILURES


def outcomes(
    store: Store, repositories: Iterable[str], since: datetime | None, until: datetime | None
) -> Iterator[Outcome]:
    """Every stored job attempt in the window that a gather would emit, newest run first."""
    by_run: dict[int, list[StoredJob]] = defaultdict(list)
    order: list[int] = []
    for item in store.stored_jobs(repositories, since, until):
        if item.run.id not in by_run:
            order.append(item.run.id)
        by_run[item.run.id].append(item)
    for run_id in order:
        items = by_run[run_id]
        jobs: list[Job] = [item.job for item in items]
        flaky = flaky_job_ids(jobs)
        for item in items:
            measurement = measurement_for(item.job, item.classification)
            if measurement is None:
                continue
            yield Outcome(item, measurement, item.job.id in flaky)


@dataclass(frozen=True)
class TypeCount:
    type: str
    jobs: int
    flaky: int


def failure_stats(items: Iterable[Outcome]) -> list[TypeCount]:
    """Failed jobs per failure type, largest first (ties by name)."""
    counts: Counter[str] = Counter()
    flaky: Counter[str] = Counter()
    for item in items:
        if not item.failed:
            continue
        counts[item.measurement] += 1
        if item.flaky:
            flaky[item.measurement] += 1
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [TypeCount(name, count, flaky[name]) for name, count in ordered]


def failures_of(items: Iterable[Outcome], failure_type: str) -> list[Outcome]:
    return [item for item in items if item.measurement == failure_type]


# ---------------------------------------------------------------------------- signatures


@dataclass(frozen=True)
class SignatureCount:
    """One failure signature: how often, since when, and where to look."""

    signature: str
    type: str
    text: str
    jobs: int
    flaky: int
    first_seen: datetime | None
    last_seen: datetime | None
    first_url: str
    first_commit: str
    last_url: str


def _when(item: Outcome) -> datetime | None:
    return item.stored.job.created_at or item.stored.run.created_at


def _url(item: Outcome) -> str:
    return item.stored.job.html_url or item.stored.run.html_url


def signature_stats(items: Iterable[Outcome], texts: dict[str, str]) -> list[SignatureCount]:
    """Failed jobs per signature (and type), largest first; `texts` maps a signature to
    its normalised text (`Store.signature_texts`)."""
    groups: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
    for item in items:
        cls = item.stored.classification
        if item.failed and cls is not None and cls.signature:
            groups[(cls.signature, item.measurement)].append(item)
    far = datetime.min.replace(tzinfo=UTC)
    counts = []
    for (sig, kind), members in groups.items():
        members.sort(key=lambda item: (_when(item) or far, item.stored.job.id))
        first, last = members[0], members[-1]
        counts.append(
            SignatureCount(
                signature=sig,
                type=kind,
                text=texts.get(sig, ""),
                jobs=len(members),
                flaky=sum(1 for m in members if m.flaky),
                first_seen=_when(first),
                last_seen=_when(last),
                first_url=_url(first),
                first_commit=first.stored.run.commit_sha or first.stored.job.commit_sha,
                last_url=_url(last),
            )
        )
    return sorted(counts, key=lambda c: (-c.jobs, c.type, c.signature))


def new_signatures(
    history: Iterable[Outcome], texts: dict[str, str], since: datetime, until: datetime
) -> list[SignatureCount]:
    """Signatures first seen in [since, until] (over all of `history`), with the first
    job and commit and how many jobs of the window have them, newest first."""
    items = list(history)
    first = {c.signature: c.first_seen for c in signature_stats(items, texts)}
    fresh = {sig for sig, seen in first.items() if seen is not None and since <= seen <= until}
    inside = [
        item
        for item in items
        if (when := _when(item)) is not None
        and since <= when <= until
        and item.stored.classification is not None
        and item.stored.classification.signature in fresh
    ]
    far = datetime.min.replace(tzinfo=UTC)
    return sorted(signature_stats(inside, texts), key=lambda c: c.first_seen or far, reverse=True)
