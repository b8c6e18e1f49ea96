"""`multivac gather` and `multivac replay`: build the pipeline from a plan and run it.

Errors are raised, not printed: cli.py turns them into one line and an exit code. The
summary of what was gathered is printed whatever happens (in `finally`), so a stopped
gather still tells what it kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from multivac.archive import LogArchive
from multivac.config import GatherPlan, InfluxSettings, in_shard
from multivac.errors import MultivacError, SinkError
from multivac.gather import Gatherer, GatherOptions, Summary
from multivac.github import GitHubSource
from multivac.model import (
    JOB_SCHEMA,
    TEST_SCHEMA,
    TEST_SUMMARY_SCHEMA,
    PointKey,
    Record,
    Schema,
)
from multivac.retry import RetryPolicy
from multivac.sinks import build_sink
from multivac.sinks.base import Sink
from multivac.sinks.influx import InfluxSink
from multivac.store import Store

if TYPE_CHECKING:
    from multivac.classify import Catalog
    from multivac.testresults.parsers import ParserSet


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
    if isinstance(sink, InfluxSink):
        delivered = sink.replay()
        if delivered:
            console.print(f"delivered {delivered} spooled points to InfluxDB first.", markup=False)


def gather(plan: GatherPlan, console: Console, *, sink: Sink | None = None) -> Summary:
    """Run a gather. Raises a MultivacError (after printing the summary) when it could
    not finish; what was gathered before is written and kept in the store."""
    catalog = None
    parsers = None
    if plan.fetch_logs:
        from multivac.classify import load_catalog
        from multivac.testresults import load_parsers

        catalog = load_catalog(plan.rules)
        parsers = load_parsers(plan.rules)  # the rules files' `tests:` sections too

    def notify(message: str) -> None:
        console.print(message, markup=False)

    spool = plan.state_dir / "spool"
    summary = Summary()
    with ExitStack() as stack:
        store = stack.enter_context(Store.open(plan.state_dir, github=plan.github.api_url))
        source = GitHubSource(
            plan.github,
            policy=plan.policy,
            notify=notify,
            cache=store,
            concurrency=plan.concurrency,
        )
        try:
            sink = sink or build_sink(
                plan.output_format,
                stack=stack,
                output=plan.output,
                lean=plan.lean,
                influx=plan.influx,
                spool_dir=spool,
                create_bucket=plan.create_bucket,
                policy=plan.influx_policy,
                notify=notify,
                schemas=schemas(plan),
            )
            try:
                _deliver_spool(sink, console)
                _gather_into(sink, plan, source, store, catalog, parsers, summary, console)
            finally:
                sink.close()
        finally:
            influx = sink if isinstance(sink, InfluxSink) else None
            if source.governor.limiter.cut:
                notify(
                    f"note: concurrency was cut to {source.governor.limiter.width} after a "
                    "secondary rate limit."
                )
            for lost in source.truncated_windows:
                notify(f"warning: {lost}")
            notify(describe(summary, source, influx.note(spool) if influx else None))
    if influx is not None and influx.failure:
        later = (
            " The spooled points are delivered by the next gather or `multivac replay`."
            if influx.stats.spooled or influx.stats.spooled_retractions
            else ""
        )
        raise SinkError(influx.failure + later)
    if summary.pending_jobs:
        raise PendingLogs(
            f"the logs of {summary.pending_jobs} failed jobs could not be read; they are "
            "kept pending and the next gather reads them."
        )
    return summary


def schemas(plan: GatherPlan) -> tuple[Schema, ...]:
    """The record types a gather may write (the CSV header names their columns)."""
    found = [JOB_SCHEMA]
    if plan.fetch_logs or plan.junit_artifacts:
        found.append(TEST_SCHEMA)
        if plan.test_summary:
            found.append(TEST_SUMMARY_SCHEMA)
    return tuple(found)


def _gather_into(
    sink: Sink,
    plan: GatherPlan,
    source: GitHubSource,
    store: Store,
    catalog: Catalog | None,
    parsers: ParserSet | None,
    summary: Summary,
    console: Console,
) -> None:
    repos = _repositories(plan, source, console)
    for repo in repos:
        source.check_repo(repo)
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
        gatherer.run(sink)
    if plan.records_coverage and plan.since is not None:
        for repo in repos:
            store.add_coverage(repo, plan.since, plan.until)


def replay(state: Path, influx: InfluxSettings, policy: RetryPolicy, console: Console) -> None:
    """Deliver the InfluxDB spool; raises SinkError when some of it stays."""
    from multivac.sinks.influx import Spool

    spool = state / "spool"
    if not Spool(spool).pending():
        console.print(f"nothing to replay: the spool in {spool} is empty.", markup=False)
        return
    sink = InfluxSink(influx, spool, policy=policy)
    try:
        delivered = sink.replay()
    finally:
        sink.close()
    left = len(sink.spool.pending())
    console.print(
        f"delivered {delivered} spooled points to InfluxDB; {left} spool files left.",
        markup=False,
    )
    for message in sink.stats.messages[1:]:
        console.print(f"error: {message}", markup=False)
    if sink.failure:
        raise SinkError(sink.failure)
