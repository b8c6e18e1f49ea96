"""`multivac gather` and `multivac replay`: build the pipeline from a plan and run it.

`results()` is the one pipeline; `gather()` writes it to a sink, and the Python API
(api.py) hands its records to the caller.

Errors are raised, not printed: cli.py turns them into one line and an exit code. The
summary of what was gathered is printed whatever happens (in `finally`), so a stopped
gather still tells what it kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from multivac.archive import LogArchive
from multivac.config import GatherPlan, InfluxSettings, in_shard
from multivac.errors import GitHubError, IngestError, MultivacError, SinkError
from multivac.gather import Gatherer, GatherOptions, RunResult, Summary
from multivac.github import GitHubSource
from multivac.model import (
    JOB_SCHEMA,
    RUN_SCHEMA,
    STEP_SCHEMA,
    TEST_SCHEMA,
    TEST_SUMMARY_SCHEMA,
    PointKey,
    Record,
    Schema,
)
from multivac.publish import publish
from multivac.retry import RetryPolicy
from multivac.sinks import build_sink
from multivac.sinks.base import Sink
from multivac.sinks.influx import CHUNK
from multivac.sinks.targets import InfluxTargets
from multivac.store import Store

if TYPE_CHECKING:
    from multivac.classify import Catalog


class NullSink:
    """Keeps nothing: for gathers that only fill the local store."""

    def write(self, records: Iterable[Record]) -> None:
        for _record in records:
            pass

    def retract(self, keys: Sequence[PointKey]) -> None:
        return None

    def close(self) -> None:
        pass


class PendingLogs(MultivacError):
    """Some failed jobs' logs could not be read; the next gather reads them."""


def describe(summary: Summary, source: GitHubSource, influx_note: str | None) -> str:
    """The one-line summary of a gather."""
    head = f"{summary.runs} runs, {summary.jobs} jobs, {summary.records} records"
    if summary.measurements:
        by = ", ".join(f"{name} {count}" for name, count in summary.measurements.most_common())
        head += f" ({by})"
    if summary.points:
        head += " and " + ", ".join(
            f"{count} {name} points" for name, count in sorted(summary.points.items())
        )
    notes: list[str] = []
    anomalies = summary.anomalies
    for count, text in (
        (anomalies.clamped, "negative durations clamped to 0"),
        (summary.skipped_jobs, "skipped jobs left out"),
        (summary.unfinished_jobs, "unfinished jobs left out"),
        (anomalies.missing_times, "jobs with missing timestamps"),
        (summary.unchanged_runs, "unchanged runs from the local store"),
        (summary.vanished_runs, "runs deleted while gathering"),
        (summary.logs_unavailable, "logs unavailable"),
        (summary.pending_jobs, "failed jobs pending (log not read yet)"),
    ):
        if count:
            notes.append(f"{count} {text}")
    for conclusion, count in summary.odd_conclusions.items():
        notes.append(f"{count} jobs concluded {conclusion}")
    notes.extend(summary.tests.notes())
    if summary.unknown_labels:
        named = "; ".join(
            f"{labels} ({count})" for labels, count in sorted(summary.unknown_labels.items())
        )
        notes.append(
            f"{summary.unknown_labels.total()} jobs on unknown runners billed as self-hosted: "
            f"{named} (map them with --price-table)"
        )
    governor = source.governor
    if governor.retries:
        notes.append(f"{governor.retries} retries")
    if governor.waited_s >= 1:
        notes.append(f"{governor.waited_s:.0f}s waited on GitHub")
    if influx_note:
        notes.append(influx_note)
    line = f"gathered {head}; {source.summary()}"
    if notes:
        line += "; " + ", ".join(notes)
    return line + "."


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def _repositories(plan: GatherPlan, source: GitHubSource, console: Console) -> tuple[str, ...]:
    repos = set(plan.repos)
    if plan.org:
        repos |= set(source.org_repos(plan.org))
    chosen = tuple(sorted(r for r in repos if in_shard(r, plan.shard)))
    if plan.shard is not None:
        console.print(
            f"shard {plan.shard[0]}/{plan.shard[1]}: {len(chosen)} repositories.", markup=False
        )
    return chosen


def _deliver_spool(sink: Sink, console: Console) -> None:
    if isinstance(sink, InfluxTargets):
        for target, delivered in zip(sink.targets, sink.replay().values(), strict=True):
            if delivered:
                console.print(
                    f"delivered {delivered} spooled points to {target.main.label} first.",
                    markup=False,
                )


def schemas(plan: GatherPlan) -> tuple[Schema, ...]:
    """The record types a gather with this plan writes (one CSV header holds them all).
    Test records come from the logs read, the artifacts, and the jobs the store parsed
    before."""
    return (
        JOB_SCHEMA,
        *((STEP_SCHEMA,) if plan.steps else ()),
        *((RUN_SCHEMA,) if plan.runs else ()),
        TEST_SCHEMA,
        *((TEST_SUMMARY_SCHEMA,) if plan.test_summary else ()),
    )


@contextmanager
def session(
    plan: GatherPlan, notify: Callable[[str], None]
) -> Iterator[tuple[Store, GitHubSource, Catalog | None]]:
    """The store, the GitHub source and the failure catalog a gather works with."""
    catalog = None
    if plan.fetch_logs:
        from multivac.classify import load_catalog

        catalog = load_catalog(plan.rules)
    with Store.open(plan.state_dir, github=plan.github.api_url) as store:
        source = GitHubSource(
            plan.github,
            policy=plan.policy,
            notify=notify,
            cache=store,
            concurrency=plan.concurrency,
        )
        yield store, source, catalog


def gather(plan: GatherPlan, console: Console, *, sink: Sink | None = None) -> Summary:
    """Run a gather. Raises a MultivacError (after printing the summary) when it could
    not finish; what was gathered before is written and kept in the store."""

    def notify(message: str) -> None:
        console.print(message, markup=False)

    spool = plan.state_dir / "spool"
    summary = Summary()
    with ExitStack() as stack:
        store, source, catalog = stack.enter_context(session(plan, notify))
        try:
            sink = sink or build_sink(
                plan.output_format,
                stack=stack,
                output=plan.output,
                lean=plan.lean,
                influx=plan.influx,
                targets=plan.targets,
                spool_dir=spool,
                create_bucket=plan.create_bucket,
                policy=plan.influx_policy,
                notify=notify,
                schemas=schemas(plan),
            )
            try:
                _deliver_spool(sink, console)
                for result in results(plan, source, store, catalog, summary, console):
                    publish(sink, result.records, store, tested=result.tested)
            finally:
                sink.close()
        finally:
            influx = sink if isinstance(sink, InfluxTargets) else None
            if source.governor.limiter.cut:
                notify(
                    f"note: concurrency was cut to {source.governor.limiter.width} after a "
                    "secondary rate limit."
                )
            for lost in source.truncated_windows:
                notify(f"warning: {lost}")
            notify(describe(summary, source, influx.note() if influx else None))
    if influx is not None:
        influx.raise_failure()
    if summary.unreadable:
        raise GitHubError(
            f"{len(summary.unreadable)} repositories of {plan.org} could not be read and were "
            f"skipped: {', '.join(summary.unreadable)} (403 or 404: the token cannot read their "
            "Actions); the others were gathered."
        )
    if summary.pending_jobs:
        raise PendingLogs(
            f"the logs of {summary.pending_jobs} failed jobs could not be read; they are "
            "kept pending and the next gather reads them."
        )
    return summary


def results(
    plan: GatherPlan,
    source: GitHubSource,
    store: Store,
    catalog: Catalog | None,
    summary: Summary,
    console: Console,
) -> Iterator[RunResult]:
    """The one pipeline: each run's result in listing order, for the caller to write
    (a sink, or the Python API's iterator) before it asks for the next. The window
    counts as covered only when every run was taken."""
    parsers = None
    if plan.fetch_logs:
        from multivac.testresults import load_parsers

        parsers = load_parsers(plan.rules)  # the rules files' `tests:` sections too
    found = _repositories(plan, source, console)
    optional = frozenset(found) - frozenset(plan.repos)
    checked: list[str] = []
    for repo in found:
        try:
            checked.append(source.check_repo(repo))
        except GitHubError as exc:
            if repo not in optional or exc.status not in (403, 404):
                raise
            console.print(f"warning: skipping {repo}: {exc}", markup=False)
            summary.unreadable.append(repo)
    repos = tuple(dict.fromkeys(checked))
    progress = _progress(console)
    task = progress.add_task("runs", total=0)
    gatherer = Gatherer(
        source,
        GatherOptions(
            repos=repos,
            since=plan.since,
            until=plan.until,
            latest=plan.latest,
            branches=plan.branches,
            workflows=plan.workflows,
            event=plan.event,
            lean=plan.lean,
            concurrency=plan.concurrency,
            fetch_logs=plan.fetch_logs,
            junit_artifacts=plan.junit_artifacts,
            test_summary=plan.test_summary,
            steps=plan.steps,
            runs=plan.runs,
            prices=plan.prices,
            optional=optional,
        ),
        catalog,
        summary=summary,
        archive=LogArchive(plan.state_dir / "logs", plan.log_archive_mb << 20),
        notify=source.notify,
        progress=lambda n: progress.advance(task, n),
        on_total=lambda n: progress.update(task, total=(progress.tasks[0].total or 0) + n),
        store=store,
        parsers=parsers,
    )
    with progress:
        yield from gatherer.stream()
    if plan.records_coverage and plan.since is not None:
        for repo in repos:
            if repo not in summary.unreadable:
                store.add_coverage(repo, plan.since, plan.until)


def replay(
    state: Path,
    targets: Sequence[InfluxSettings],
    policy: RetryPolicy,
    console: Console,
    files: Sequence[Path] = (),
) -> None:
    """Deliver every target's spool, then load `files` (any format multivac reads back)
    into every target. Raises SinkError when some points stay spooled, IngestError at
    the first bad line of a file (the records before it are written)."""
    spool = state / "spool"
    sink = InfluxTargets(targets, spool, policy=policy)
    loaded = 0
    try:
        if not files and not sink.pending():
            console.print(f"nothing to replay: the spools in {spool} are empty.", markup=False)
            return
        delivered = sink.replay()
        for target, count in zip(sink.targets, delivered.values(), strict=True):
            if count or not files:
                console.print(
                    f"delivered {count} spooled points to {target.main.label}.", markup=False
                )
        for path in files:
            loaded += _load(sink, path, loaded)
            console.print(f"read {path}: {loaded} records in all so far.", markup=False)
    finally:
        sink.close()
    if files:
        console.print(f"loaded {loaded} records: {sink.note()}.", markup=False)
    left = sink.pending()
    if left:
        console.print(f"{left} spool files left.", markup=False)
    for message in sink.messages[1:]:
        console.print(f"error: {message}", markup=False)
    if sink.failure:
        raise SinkError(sink.failure)


def _load(sink: InfluxTargets, path: Path, before: int) -> int:
    """Write a file's records in chunks; on a bad line, write what came before it and
    raise the IngestError saying so."""
    from multivac.ingest import read_records

    batch: list[Record] = []
    count = 0
    try:
        for record in read_records(path):
            batch.append(record)
            if len(batch) >= CHUNK:
                sink.write(batch)
                count += len(batch)
                batch = []
    except IngestError as exc:
        sink.write(batch)
        count += len(batch)
        total = before + count
        raise IngestError(
            f"{str(exc).rstrip('.')}; the {total} records before it were written to the "
            "InfluxDB targets (or spooled for them)."
        ) from None
    sink.write(batch)
    return count + len(batch)
