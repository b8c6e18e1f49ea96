"""`failures stats`, `failures watch` and `report`: read the local store over a window,
gathering first whatever part of the window it lacks (unless --offline)."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from multivac.config import GatherPlan, GitHubSettings, StorePlan
from multivac.errors import ConfigError, MultivacError, SinkError, os_reason
from multivac.queries import (
    Outcome,
    SignatureCount,
    failure_stats,
    failures_of,
    new_signatures,
    outcomes,
    signature_stats,
)
from multivac.retry import RetryPolicy
from multivac.sinks import Format
from multivac.store import Store

if TYPE_CHECKING:
    from multivac.minutes import PriceTable


def fill_store(
    plan: StorePlan, github: GitHubSettings, policy: RetryPolicy, console: Console
) -> MultivacError | None:
    """Gather whatever part of the window the store does not cover for the plan's
    repositories (all stored ones when it names none). A gather that stops early is
    returned, not raised: the command shows what the store has, then raises it."""
    with Store.open(plan.state_dir, github=github.api_url) as store:
        repos = plan.repos or tuple(store.repositories())
        if not repos:
            raise ConfigError(
                f"the local store in {plan.state_dir} holds no runs from {github.api_url}; "
                "name a repository (OWNER/REPO) or gather one first."
            )
        missing = [r for r in repos if not store.covers(r, plan.since, plan.until)]
    if missing and not plan.offline:
        # the GitHub client and the sinks load only when a gather is due: a report of
        # a covered window starts in a fraction of the time
        from multivac.commands.gather import NullSink, gather

        try:
            gather(
                GatherPlan(
                    repos=tuple(missing),
                    since=plan.since,
                    until=plan.until,
                    output_format=Format.csv,
                    state_dir=plan.state_dir,
                    github=github,
                    policy=policy,
                    rules=plan.rules,
                    concurrency=plan.concurrency,
                ),
                console,
                sink=NullSink(),
            )
        except MultivacError as exc:
            return exc
    elif missing:
        console.print(
            "warning: the local store does not cover the whole window for "
            + ", ".join(missing)
            + "; showing what it has.",
            markup=False,
        )
    return None


def _outcomes(
    plan: StorePlan, github: GitHubSettings, policy: RetryPolicy, console: Console
) -> tuple[list[Outcome], MultivacError | None]:
    """Stored outcomes of the window, and the error of the gather that came first."""
    failed = fill_store(plan, github, policy, console)
    with Store.open(plan.state_dir, github=github.api_url) as store:
        repos = plan.repos or tuple(store.repositories())
        return list(outcomes(store, repos, plan.since, plan.until)), failed


def _done(failed: MultivacError | None) -> None:
    if failed is not None:
        raise failed


def stats(
    plan: StorePlan,
    github: GitHubSettings,
    policy: RetryPolicy,
    console: Console,
    *,
    by_signature: bool = False,
) -> None:
    items, failed = _outcomes(plan, github, policy, console)
    if by_signature:
        with Store.open(plan.state_dir, github=github.api_url) as store:
            texts = store.signature_texts()
        _signature_table(signature_stats(items, texts))
        _done(failed)
        return
    counts = failure_stats(items)
    total = sum(s.jobs for s in counts)
    width = max([len("failure type"), *(len(s.type) for s in counts)])
    out = sys.stdout
    out.write(f"{'failure type':<{width}}  {'jobs':>6}  {'share':>6}  {'flaky':>6}\n")
    for s in counts:
        share = 100.0 * s.jobs / total if total else 0.0
        flaky = f"{100.0 * s.flaky / s.jobs:.0f}%" if s.jobs else "0%"
        out.write(f"{s.type:<{width}}  {s.jobs:>6}  {share:>5.1f}%  {flaky:>6}\n")
    out.write(f"{'total':<{width}}  {total:>6}\n")
    _done(failed)


def _day(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "?"


def _signature_table(counts: list[SignatureCount]) -> None:
    """Signatures, most jobs first: hash, type, jobs, flaky, first and last seen, text."""
    out = sys.stdout
    width = max([len("failure type"), *(len(c.type) for c in counts)])
    out.write(
        f"{'signature':<12}  {'failure type':<{width}}  {'jobs':>5}  {'flaky':>5}  "
        f"{'first seen':<16}  {'last seen':<16}  text\n"
    )
    for c in counts:
        out.write(
            f"{c.signature:<12}  {c.type:<{width}}  {c.jobs:>5}  {c.flaky:>5}  "
            f"{_day(c.first_seen):<16}  {_day(c.last_seen):<16}  {c.text}\n"
        )


def new(
    plan: StorePlan,
    github: GitHubSettings,
    policy: RetryPolicy,
    console: Console,
    *,
    as_json: bool = False,
) -> None:
    """Failure signatures first seen in the window, with the first job, commit and count."""
    failed = fill_store(plan, github, policy, console)
    with Store.open(plan.state_dir, github=github.api_url) as store:
        repos = plan.repos or tuple(store.repositories())
        history = list(outcomes(store, repos, None, plan.until))
        texts = store.signature_texts()
    found = new_signatures(history, texts, plan.since, plan.until)
    if as_json:
        rows = [
            {
                "signature": c.signature,
                "type": c.type,
                "text": c.text,
                "jobs": c.jobs,
                "first_seen": c.first_seen.isoformat() if c.first_seen else None,
                "first_url": c.first_url,
                "commit_sha": c.first_commit,
            }
            for c in found
        ]
        sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    else:
        for c in found:
            sys.stdout.write(
                f"{c.signature}  {c.type}  {c.jobs} jobs  first {_day(c.first_seen)}  "
                f"commit {c.first_commit[:12]}\n    {c.text}\n    {c.first_url}\n"
            )
    console.print(f"{len(found)} new failure signatures in the window.", markup=False)
    _done(failed)


def watch(
    failure_type: str,
    plan: StorePlan,
    github: GitHubSettings,
    policy: RetryPolicy,
    console: Console,
) -> None:
    items, failed = _outcomes(plan, github, policy, console)
    chosen = failures_of(items, failure_type)
    if not chosen:
        _check_type(failure_type, plan, {item.measurement for item in items})
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
    _done(failed)


def _check_type(failure_type: str, plan: StorePlan, seen: set[str]) -> None:
    """A type no rule gives and no job has is a typo, not "0 jobs": say which exist."""
    from multivac.classify import load_catalog
    from multivac.model import (
        CANCELLED,
        LOG_UNAVAILABLE,
        OTHER_CONCLUSIONS,
        SUCCESS,
        TIMEOUT,
        UNKNOWN_FAILURE,
    )

    known = {rule.type for rule in load_catalog(plan.rules).rules} | seen
    known |= {SUCCESS, CANCELLED, TIMEOUT, UNKNOWN_FAILURE, LOG_UNAVAILABLE} | OTHER_CONCLUSIONS
    if failure_type not in known:
        raise ConfigError(
            f"{failure_type!r} is not a failure type; the types are: {', '.join(sorted(known))}."
        )


def report(
    plan: StorePlan,
    html: Path,
    github: GitHubSettings,
    policy: RetryPolicy,
    console: Console,
    prices: PriceTable | None = None,
) -> None:
    """Write the self-contained HTML report of the window (minutes priced with `prices`,
    default the packaged table)."""
    from multivac.html_report import render
    from multivac.testresults.store import TestStore

    items, failed = _outcomes(plan, github, policy, console)
    with Store.open(plan.state_dir, github=github.api_url) as store:
        repos = plan.repos or tuple(store.repositories())
        tests = list(TestStore(store).failing(repos, plan.since, plan.until))
    page = render(items, since=plan.since, until=plan.until, prices=prices, tests=tests)
    try:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise SinkError(f"cannot write {html}: {os_reason(exc)}.") from None
    console.print(f"wrote {html} ({len(items)} job attempts).", markup=False)
    _done(failed)
