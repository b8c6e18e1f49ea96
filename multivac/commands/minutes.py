"""`multivac usage` and `multivac capacity`: where the minutes go, from the local store.

Like `report`, both gather first whatever part of the window the store lacks (unless
--offline), then answer from the store alone (minutes/query.py reads only the columns
they need, so 100,000 jobs take about a second). Data goes to stdout, notes to stderr;
`capacity --format influxdb` writes its `runner_load` points through the InfluxDB sink
and its spool, as a gather does.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from itertools import islice

from rich.console import Console

from multivac.commands.failures import fill_store
from multivac.config import CapacityPlan, GitHubSettings, StorePlan, UsagePlan
from multivac.errors import ConfigError, MultivacError
from multivac.minutes import CapacityFormat, capacity_jobs, minute_load, usage, usage_jobs
from multivac.minutes.capacity import MinuteLoad, render_json, render_table
from multivac.minutes.records import load_lines, load_points
from multivac.minutes.usage import render, unknown_labels_note
from multivac.model import LOAD_SCHEMA, LoadRecord, packaged_prices
from multivac.retry import RetryPolicy
from multivac.sinks import Format, build_sink
from multivac.store import Store

#: runner_load points handed to the sink at a time (a month of minutes is ~250,000)
BATCH = 5000


def _org_repos(org: str, plan: StorePlan, github: GitHubSettings, policy: RetryPolicy) -> list[str]:
    """The organisation's repositories: from GitHub, or with --offline from the store."""
    if plan.offline:
        with Store.open(plan.state_dir, github=github.api_url) as store:
            prefix = f"{org.lower()}/"
            return [r for r in store.repositories() if r.lower().startswith(prefix)]
    from multivac.github import GitHubSource

    return GitHubSource(github, policy=policy).org_repos(org)


def _filled(
    plan: StorePlan, github: GitHubSettings, policy: RetryPolicy, console: Console
) -> tuple[StorePlan, MultivacError | None]:
    """The plan with its repositories named, after gathering what the store lacks."""
    failed = fill_store(plan, github, policy, console)
    if plan.repos:
        return plan, failed
    with Store.open(plan.state_dir, github=github.api_url) as store:
        return replace(plan, repos=tuple(store.repositories())), failed


def usage_report(
    plan: UsagePlan, github: GitHubSettings, policy: RetryPolicy, console: Console
) -> None:
    """Print jobs, runner minutes, billable minutes and cost per period and group."""
    window = plan.store
    if plan.org is not None:
        repos = _org_repos(plan.org, window, github, policy)
        if not repos:
            raise ConfigError(
                f"no repositories of {plan.org} are "
                + ("in the local store." if window.offline else "visible with this token.")
            )
        window = replace(window, repos=tuple(sorted({*window.repos, *repos})))
    window, failed = _filled(window, github, policy, console)
    prices = plan.prices or packaged_prices()
    with Store.open(window.state_dir, github=github.api_url) as store:
        jobs = usage_jobs(store, window.repos, window.since, window.until)
    report = usage(jobs, prices, by=plan.by, period=plan.period)
    sys.stdout.write(render(report, plan.output_format, by=plan.by))
    note = unknown_labels_note(report)
    if note:
        console.print(note, markup=False)
    console.print(
        f"{len(jobs)} jobs; prices from {prices.source} (taken {prices.taken}).", markup=False
    )
    if failed is not None:
        raise failed


def _batches(records: Iterable[LoadRecord]) -> Iterator[list[LoadRecord]]:
    found = iter(records)
    while batch := list(islice(found, BATCH)):
        yield batch


def capacity_report(
    plan: CapacityPlan, github: GitHubSettings, policy: RetryPolicy, console: Console
) -> None:
    """Print per-label capacity, or write the per-minute `runner_load` points."""
    window, failed = _filled(plan.store, github, policy, console)
    with Store.open(window.state_dir, github=github.api_url) as store:
        jobs = capacity_jobs(store, window.repos, window.since, window.until)
    load = minute_load(jobs, by=plan.by, since=window.since, until=window.until)
    if load.missing_times:
        console.print(
            f"{load.missing_times} jobs left out: GitHub gave too few of their times.",
            markup=False,
        )
    fmt = plan.output_format
    if fmt is CapacityFormat.JSON:
        sys.stdout.write(render_json(load.summary()))
    elif fmt is CapacityFormat.TABLE:
        sys.stdout.write(render_table(load.summary(), by=plan.by))
    else:
        _write_load(plan, load, console)
    if failed is not None:
        raise failed


def _write_load(plan: CapacityPlan, load: MinuteLoad, console: Console) -> None:
    if plan.output_format is not CapacityFormat.INFLUXDB:
        # line protocol on stdout, as `usage` writes its report (cli.py turns a failed
        # write into one sentence)
        points = 0
        out = sys.stdout.buffer
        for block in load_lines(load, by=plan.by):
            out.write(block.encode("utf-8"))
            points += block.count("\n")
        out.flush()
        console.print(f"{points} runner_load points.", markup=False)
        return
    from multivac.sinks.targets import InfluxTargets  # the InfluxDB client: only here

    spool = plan.store.state_dir / "spool"
    points = 0
    with ExitStack() as stack:
        sink = build_sink(
            Format.influxdb,
            stack=stack,
            influx=plan.influx,
            targets=plan.targets,
            spool_dir=spool,
            create_bucket=plan.create_bucket,
            policy=plan.influx_policy,
            notify=lambda message: console.print(message, markup=False),
            schemas=(LOAD_SCHEMA,),
        )
        assert isinstance(sink, InfluxTargets)
        # The per-minute tables (a quarter of a million cells for a month) live until the
        # end: frozen, the collector stops walking them again for every batch of points.
        gc.freeze()
        try:
            delivered = sum(sink.replay().values())
            if delivered:
                console.print(f"delivered {delivered} spooled points first.", markup=False)
            for batch in _batches(load_points(load, by=plan.by)):
                sink.write(batch)
                points += len(batch)
        finally:
            gc.unfreeze()
            sink.close()
    console.print(f"{points} runner_load points; {sink.note()}.", markup=False)
    sink.raise_failure()
