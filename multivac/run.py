"""One function per command: builds the pipeline from resolved settings and runs it.

cli.py stays free of business logic; this module wires source, classifier, sink and
store together and prints progress and the summary to the stderr console.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from multivac.config import (
    Environment,
    InfluxSettings,
    github_settings,
    in_shard,
    influx_settings,
    parse_moment,
    parse_shard,
    parse_window,
    repositories,
    state_dir,
)
from multivac.errors import ConfigError, GitHubError, MultivacError, SinkError
from multivac.gather import Gatherer, GatherOptions, Summary
from multivac.github import GitHubSource, RateLimitStop, RequestStats, RetryPolicy
from multivac.model import JobRecord
from multivac.reports import Outcome, failure_stats, failures_of, outcomes
from multivac.sinks import Format, build_sink
from multivac.sinks.base import Sink
from multivac.sinks.influx import InfluxSink
from multivac.store import Store

EXIT_RATE_LIMIT = 3


@dataclass
class GatherRequest:
    repos: list[str]
    since: str | None
    until: str | None
    latest: int | None
    branches: list[str]
    workflows: list[str]
    event: str | None
    fmt: Format
    output: Path | None
    lean: bool
    create_bucket: bool
    rules: list[str]
    fetch_logs: bool
    concurrency: int
    max_wait: str
    state_dir: Path | None
    org: str | None = None
    shard: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _seconds(text: str, option: str) -> float:
    from datetime import UTC, datetime

    now = datetime(2000, 1, 1, tzinfo=UTC)
    try:
        moment = parse_moment(text, option, now)
    except ConfigError:
        raise ConfigError(f"{option} {text!r} is not a duration like 15m, 1h or 90s.") from None
    seconds = (now - moment).total_seconds()
    if seconds < 0:
        raise ConfigError(f"{option} {text!r} is not a duration like 15m, 1h or 90s.")
    return seconds


def policy_from_env(env: Environment, max_wait: float) -> RetryPolicy:
    """Retry timings; the MULTIVAC_RETRY_* variables exist for tests and impatient users."""
    policy = RetryPolicy(max_wait=max_wait)
    for name, attr in (
        ("MULTIVAC_RETRY_BASE", "base"),
        ("MULTIVAC_RETRY_CAP", "cap"),
        ("MULTIVAC_SECONDARY_WAIT", "secondary_wait"),
        ("MULTIVAC_HTTP_TIMEOUT", "timeout"),
    ):
        found = env.lookup(name)
        if found is None:
            continue
        try:
            setattr(policy, attr, float(found.value))
        except ValueError:
            raise ConfigError(f"{name} must be a number of seconds, got {found.value!r}.") from None
    return policy


def _describe(summary: Summary, stats: RequestStats, influx_note: str | None) -> str:
    parts = [
        f"{summary.runs} runs, {summary.jobs} jobs, {summary.records} records",
    ]
    if summary.measurements:
        by = ", ".join(f"{name} {count}" for name, count in summary.measurements.most_common())
        parts[0] += f" ({by})"
    requests = f"{stats.requests} requests"
    if stats.not_modified:
        requests += f" ({stats.not_modified} not modified)"
    if stats.log_downloads:
        requests += f", {stats.log_downloads} log downloads"
    budget = stats.budget
    if budget.remaining is not None:
        used = stats.requests - stats.not_modified  # GitHub does not count a 304
        requests += f"; API budget: {used} used, {budget.remaining} left"
        if budget.limit:
            requests += f" of {budget.limit}"
    parts.append(requests)
    notes: list[str] = []
    anomalies = summary.anomalies
    if anomalies.clamped:
        notes.append(f"{anomalies.clamped} negative durations clamped to 0")
    if summary.skipped_jobs:
        notes.append(f"{summary.skipped_jobs} skipped jobs left out")
    if summary.unfinished_jobs:
        notes.append(f"{summary.unfinished_jobs} unfinished jobs left out")
    if anomalies.missing_times:
        notes.append(f"{anomalies.missing_times} jobs with missing timestamps")
    if summary.unchanged_runs:
        notes.append(f"{summary.unchanged_runs} unchanged runs from the local store")
    if summary.vanished_runs:
        notes.append(f"{summary.vanished_runs} runs deleted while gathering")
    if summary.logs_unavailable:
        notes.append(f"{summary.logs_unavailable} logs unavailable")
    for conclusion, count in summary.odd_conclusions.items():
        notes.append(f"{count} jobs concluded {conclusion}")
    if stats.retries:
        notes.append(f"{stats.retries} retries")
    if stats.waited_s >= 1:
        notes.append(f"{stats.waited_s:.0f}s waited on GitHub")
    if influx_note:
        notes.append(influx_note)
    line = "gathered " + "; ".join(parts)
    if notes:
        line += "; " + ", ".join(notes)
    return line + "."


class NullSink:
    """Keeps nothing: for gathers that only fill the local store."""

    def write(self, records: Iterable[JobRecord]) -> None:
        for _record in records:
            pass

    def close(self) -> None:
        pass


def gather(
    request: GatherRequest, env: Environment, console: Console, *, sink: Sink | None = None
) -> int:
    """Run a gather; returns the exit code. Raises MultivacError for bad settings."""
    window = parse_window(
        request.since if request.since or not request.latest else None,
        request.until,
    )
    since = window.since if (request.since or not request.latest) else None
    repos = repositories(request.repos, env, org=request.org)
    shard = parse_shard(request.shard)
    settings = github_settings(env)
    max_wait = _seconds(request.max_wait, "--max-wait")
    influx: InfluxSettings | None = None
    if request.fmt is Format.influxdb:
        influx = influx_settings(env)
    catalog = None
    if request.fetch_logs:
        from multivac.classify import load_catalog

        catalog = load_catalog(request.rules)
    root = state_dir(str(request.state_dir) if request.state_dir else None, env)

    def notify(message: str) -> None:
        console.print(message, markup=False)

    stats = RequestStats()
    store = Store.open(root)
    source = GitHubSource(
        settings,
        policy=policy_from_env(env, max_wait),
        notify=notify,
        stats=stats,
        cache=store,
        concurrency=request.concurrency,
    )
    options = GatherOptions(
        repos=tuple(repos),
        since=since,
        until=window.until,
        latest=request.latest,
        branches=tuple(request.branches),
        workflows=tuple(request.workflows),
        event=request.event,
        lean=request.lean,
        concurrency=request.concurrency,
        fetch_logs=request.fetch_logs,
    )
    show_progress = console.is_terminal and not request.extra.get("quiet")
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not show_progress,
    )
    task = progress.add_task("runs", total=0)
    gatherer = Gatherer(
        source,
        options,
        catalog,
        progress=lambda n: progress.advance(task, n),
        on_total=lambda n: progress.update(task, total=(progress.tasks[0].total or 0) + n),
        store=store,
    )
    code = 0
    influx_note: str | None = None
    with ExitStack() as stack:
        stack.callback(store.close)
        sink = sink or build_sink(
            request.fmt,
            stack=stack,
            output=request.output,
            lean=request.lean,
            influx=influx,
            spool_dir=root / "spool",
            create_bucket=request.create_bucket,
        )
        influx_sink = sink if isinstance(sink, InfluxSink) else None
        if influx_sink is not None:
            delivered = influx_sink.replay()
            if delivered:
                notify(f"delivered {delivered} spooled points to InfluxDB first.")
        try:
            if request.org:
                repos = sorted(set(repos) | set(source.org_repos(request.org)))
            repos = [repo for repo in repos if in_shard(repo, shard)]
            if shard is not None:
                notify(f"shard {shard[0]}/{shard[1]}: {len(repos)} repositories.")
            gatherer.options = replace(options, repos=tuple(repos))
            for repo in repos:
                source.check_repo(repo)
            with progress:
                gatherer.run(sink)
            if since is not None and not (request.branches or request.workflows or request.event):
                for repo in repos:
                    store.add_coverage(repo, since, window.until)
        except RateLimitStop as exc:
            console.print(f"error: {exc}", markup=False)
            code = EXIT_RATE_LIMIT
        except (GitHubError, MultivacError) as exc:
            console.print(f"error: {exc}", markup=False)
            code = exc.exit_code if isinstance(exc, MultivacError) else 1
        except KeyboardInterrupt:
            console.print("interrupted; the records gathered so far were written.", markup=False)
            code = 130
        finally:
            sink.close()
        if influx_sink is not None:
            failure = influx_sink.failure
            istats = influx_sink.stats
            influx_note = f"{istats.written} points written to InfluxDB"
            if istats.spooled:
                influx_note += f", {istats.spooled} spooled to {root / 'spool'}"
            if istats.rejected:
                influx_note += f", {istats.rejected} rejected"
            if failure:
                console.print(f"error: {failure}", markup=False)
                if istats.spooled:
                    console.print(
                        "the spooled points are delivered by the next gather or `multivac replay`.",
                        markup=False,
                    )
                code = code or 1
    if source.limiter.cut:
        console.print(
            f"note: concurrency was cut to {source.limiter.width} after a secondary rate limit.",
            markup=False,
        )
    for lost in source.truncated_windows:
        console.print(f"warning: {lost}", markup=False)
    console.print(_describe(gatherer.summary, stats, influx_note), markup=False)
    return code


def replay(env: Environment, state: Path | None, console: Console) -> int:
    """Deliver the InfluxDB spool; returns the exit code."""
    root = state_dir(str(state) if state else None, env)
    from multivac.sinks.influx import Spool

    pending = Spool(root / "spool").pending()
    if not pending:
        console.print(f"nothing to replay: the spool in {root / 'spool'} is empty.", markup=False)
        return 0
    sink = InfluxSink(influx_settings(env), root / "spool")
    try:
        delivered = sink.replay()
    finally:
        sink.close()
    left = len(sink.spool.pending())
    console.print(
        f"delivered {delivered} spooled points to InfluxDB; {left} spool files left.",
        markup=False,
    )
    for message in sink.stats.messages:
        console.print(f"error: {message}", markup=False)
    if sink.failure:
        console.print(f"error: {sink.failure}", markup=False)
        return 1
    return 0


# ---------------------------------------------------------------------------- failures


@dataclass
class FailuresRequest:
    repos: list[str]
    since: str | None
    until: str | None
    rules: list[str]
    state_dir: Path | None
    offline: bool = False
    concurrency: int = 4


def _outcomes_for(
    request: FailuresRequest, env: Environment, console: Console
) -> tuple[list[Outcome], int]:
    """Stored outcomes of the window; gathers first what the store does not cover."""
    window = parse_window(request.since or "7d", request.until)
    repos = repositories(request.repos, env)
    root = state_dir(str(request.state_dir) if request.state_dir else None, env)
    code = 0
    with Store.open(root) as store:
        missing = [r for r in repos if not store.covers(r, window.since, window.until)]
    if missing and not request.offline:
        gather_request = GatherRequest(
            repos=missing,
            since=window.since.strftime("%Y-%m-%dT%H:%M:%SZ"),
            until=window.until.strftime("%Y-%m-%dT%H:%M:%SZ"),
            latest=None,
            branches=[],
            workflows=[],
            event=None,
            fmt=Format.csv,
            output=None,
            lean=False,
            create_bucket=False,
            rules=request.rules,
            fetch_logs=True,
            concurrency=request.concurrency,
            max_wait="15m",
            state_dir=root,
        )
        code = gather(gather_request, env, console, sink=NullSink())
    elif missing:
        console.print(
            "warning: the local store does not cover the whole window for "
            + ", ".join(missing)
            + "; showing what it has.",
            markup=False,
        )
    with Store.open(root) as store:
        return list(outcomes(store, repos, window.since, window.until)), code


def failure_stats_command(request: FailuresRequest, env: Environment, console: Console) -> int:
    items, code = _outcomes_for(request, env, console)
    stats = failure_stats(items)
    total = sum(s.jobs for s in stats)
    width = max([len("failure type"), *(len(s.type) for s in stats)])
    out = sys.stdout
    out.write(f"{'failure type':<{width}}  {'jobs':>6}  {'share':>6}  {'flaky':>6}\n")
    for s in stats:
        share = 100.0 * s.jobs / total if total else 0.0
        flaky = f"{100.0 * s.flaky / s.jobs:.0f}%" if s.jobs else "0%"
        out.write(f"{s.type:<{width}}  {s.jobs:>6}  {share:>5.1f}%  {flaky:>6}\n")
    out.write(f"{'total':<{width}}  {total:>6}\n")
    return code


def failures_watch_command(
    failure_type: str, request: FailuresRequest, env: Environment, console: Console
) -> int:
    items, code = _outcomes_for(request, env, console)
    chosen = failures_of(items, failure_type)
    out = sys.stdout
    for item in chosen:
        job, run = item.stored.job, item.stored.run
        when = job.created_at.strftime("%Y-%m-%d %H:%M") if job.created_at else "?"
        flaky = " [flaky]" if item.flaky else ""
        out.write(f"{when}  {run.repository}  {run.workflow} / {job.name}  ({run.branch}){flaky}\n")
        out.write(f"    {job.html_url or run.html_url}\n")
        cls = item.stored.classification
        if cls is not None and cls.evidence:
            step = f"[{cls.step}] " if cls.step else ""
            out.write(f"    {step}{cls.evidence}\n")
    console.print(f"{len(chosen)} jobs of type {failure_type}.", markup=False)
    return code


def report_command(request: FailuresRequest, html: Path, env: Environment, console: Console) -> int:
    """Write the self-contained HTML report of the window."""
    from multivac.html_report import render

    window = parse_window(request.since or "7d", request.until)
    items, code = _outcomes_for(request, env, console)
    page = render(items, since=window.since, until=window.until)
    try:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise SinkError(f"cannot write {html}: {exc.strerror or exc}.") from None
    console.print(f"wrote {html} ({len(items)} job attempts).", markup=False)
    return code


# ---------------------------------------------------------------------------- reclassify


@dataclass
class ReclassifyRequest:
    repos: list[str]
    since: str | None
    until: str | None
    rules: list[str]
    state_dir: Path | None
    fmt: Format | None
    output: Path | None
    lean: bool = False
    dry_run: bool = False


def reclassify_command(request: ReclassifyRequest, env: Environment, console: Console) -> int:
    """Re-apply the current rules to stored evidence; rewrite the points that changed."""
    from collections import Counter

    from multivac.classify import load_catalog
    from multivac.reclassify import reclassify

    catalog = load_catalog(request.rules)
    since = parse_moment(request.since, "--since") if request.since else None
    until = parse_moment(request.until, "--until") if request.until else None
    root = state_dir(str(request.state_dir) if request.state_dir else None, env)
    influx = influx_settings(env) if request.fmt is Format.influxdb else None
    code = 0
    with Store.open(root) as store:
        changes = reclassify(store, catalog, request.repos, since, until, lean=request.lean)
        moves = Counter(f"{c.old_measurement} -> {c.record.measurement}" for c in changes)
        if request.dry_run:
            for move, count in moves.most_common():
                console.print(f"would move {count} jobs: {move}", markup=False)
            return 0
        for change in changes:
            store.set_classification(change.job_id, change.classification)
        with ExitStack() as stack:
            if request.fmt is not None and changes:
                sink = build_sink(
                    request.fmt,
                    stack=stack,
                    output=request.output,
                    lean=request.lean,
                    influx=influx,
                    spool_dir=root / "spool",
                )
                if isinstance(sink, InfluxSink):
                    # a job must never count under two types: drop its old point first
                    for change in changes:
                        if change.old_time_ns is None:
                            continue
                        try:
                            sink.writer.delete_point(
                                change.old_measurement, change.identity, change.old_time_ns
                            )
                        except Exception as exc:
                            console.print(
                                f"error: cannot delete the old point of job {change.job_id} "
                                f"({change.old_measurement}): {exc}",
                                markup=False,
                            )
                            code = 1
                            break
                try:
                    sink.write([c.record for c in changes])
                finally:
                    sink.close()
                if isinstance(sink, InfluxSink) and sink.failure:
                    console.print(f"error: {sink.failure}", markup=False)
                    code = 1
        store.note_emitted(
            (
                change.job_id,
                change.record.measurement,
                change.record.time_ns,
                change.record.tags.get("flaky") == "true",
            )
            for change in changes
        )
    for move, count in moves.most_common():
        console.print(f"moved {count} jobs: {move}", markup=False)
    console.print(f"reclassified {len(changes)} jobs.", markup=False)
    return code


__all__ = ["GatherRequest", "MultivacError", "gather"]
