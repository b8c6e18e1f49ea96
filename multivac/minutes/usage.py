"""`multivac usage`: jobs, runner minutes, billable minutes and cost per period and group.

A job counts whole in the period holding its record time (its `created_at`), as
everywhere else in multivac: a job queued at 23:59 and running past midnight counts
on the first day. Periods are UTC days, ISO weeks (from Monday) and calendar months,
each named by its first day.

`--by failure_type` answers "what do failures cost": each failed attempt's minutes go
to its failure type, and so do the minutes of the re-runs it caused (the jobs of the
run's next attempt); see `_failure_causes`.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from multivac.minutes.billing import PriceTable, whole_minutes
from multivac.minutes.jobs import UsageJob

_EPOCH = date(1970, 1, 1)


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class GroupBy(StrEnum):
    LABEL = "label"
    WORKFLOW = "workflow"
    REPOSITORY = "repository"
    JOB = "job"
    FAILURE_TYPE = "failure_type"


class UsageFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One period × group: the keys of `usage --format json`."""

    period: str
    group: str
    jobs: int
    runner_minutes: float
    billable_minutes: int
    cost_usd: float


@dataclass(frozen=True)
class UsageReport:
    rows: tuple[UsageRow, ...]
    #: runs-on label sets matching no known runner (counted as self-hosted) → jobs
    unknown_labels: Mapping[str, int]
    #: price table provenance, for a footnote: (taken, source)
    prices: tuple[str, str]


def period_start(at_s: float, period: Period) -> str:
    """The first day (`YYYY-MM-DD`, UTC) of the period holding POSIX second `at_s`."""
    return _period_of_day(int(at_s // 86_400), period)


_PERIOD_CACHE: dict[tuple[int, Period], str] = {}


def _period_of_day(day: int, period: Period) -> str:
    key = (day, period)
    found = _PERIOD_CACHE.get(key)
    if found is None:
        first = _EPOCH + timedelta(days=day)
        if period is Period.WEEK:
            first -= timedelta(days=first.weekday())
        elif period is Period.MONTH:
            first = first.replace(day=1)
        found = first.isoformat()
        _PERIOD_CACHE[key] = found
    return found


def _group_key(by: GroupBy) -> Callable[[UsageJob], str]:
    if by is GroupBy.LABEL:
        return lambda job: job.label
    if by is GroupBy.WORKFLOW:
        return lambda job: job.workflow
    if by is GroupBy.REPOSITORY:
        return lambda job: job.repository
    if by is GroupBy.JOB:
        # the same job name in two workflows is two jobs
        return lambda job: f"{job.workflow} / {job.job_name}"
    return lambda job: job.failure_type


def usage(
    jobs: Iterable[UsageJob],
    prices: PriceTable,
    *,
    by: GroupBy = GroupBy.LABEL,
    period: Period = Period.DAY,
) -> UsageReport:
    """Aggregate jobs into rows sorted by period, then group."""
    pairs: Iterable[tuple[UsageJob, str]]
    if by is GroupBy.FAILURE_TYPE:
        listed = list(jobs)
        causes = _failure_causes(listed)
        pairs = ((job, causes[job.job_id]) for job in listed if job.job_id in causes)
    else:
        key = _group_key(by)
        pairs = ((job, key(job)) for job in jobs)

    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0, 0.0])
    unknown: Counter[str] = Counter()
    runner = prices.runner
    for job, group in pairs:
        seconds = job.in_progress_s
        billed_as = runner(job.labels, job.runner_group)
        if billed_as.unknown:
            unknown[job.label] += 1
        whole = whole_minutes(seconds)
        cell = totals[(_period_of_day(int(job.at_s // 86_400), period), group)]
        cell[0] += 1
        cell[1] += seconds
        cell[2] += whole * billed_as.multiplier
        cell[3] += whole * billed_as.usd_per_minute
    rows = tuple(
        UsageRow(
            period=period_name,
            group=group,
            jobs=int(cell[0]),
            # rounding only hides float noise (0.1 + 0.2); no figure needs more digits
            runner_minutes=round(cell[1] / 60, 6),
            billable_minutes=int(cell[2]),
            cost_usd=round(cell[3], 6),
        )
        for (period_name, group), cell in sorted(totals.items())
    )
    return UsageReport(rows, dict(sorted(unknown.items())), (prices.taken, prices.source))


def _failure_causes(jobs: Sequence[UsageJob]) -> dict[int, str]:
    """Job id → the failure type its minutes are charged to, for jobs failures cost.

    - A failed attempt is charged to its own failure type.
    - A job of a later attempt that did not fail itself is a re-run caused by the
      previous attempt's failures: it is charged to the failure type of the job of
      the same name there, if that one failed, else to the previous attempt's most
      common failure type (ties broken by name).
    - Jobs of first attempts that did not fail, and re-runs of attempts that had no
      failure (a manual re-run of a green run), cost nothing to failures.

    Each job is charged once, so a chain (fails, fails again, passes) charges the
    second failure to its own type and the passing re-run to the second failure.
    """
    causes: dict[int, str] = {}
    rerun_runs: set[int] = set()
    for job in jobs:
        if job.failed:
            causes[job.job_id] = job.failure_type
        if job.run_attempt > 1:
            rerun_runs.add(job.run_id)
    if not rerun_runs:
        return causes
    # failed jobs by (run, attempt): name → type, and the attempt's dominant type
    failed_by_name: dict[tuple[int, int], dict[str, str]] = defaultdict(dict)
    for job in jobs:
        if job.failed and job.run_id in rerun_runs:
            failed_by_name[(job.run_id, job.run_attempt)][job.job_name] = job.failure_type
    dominant: dict[tuple[int, int], str] = {}
    for attempt, names in failed_by_name.items():
        counts = Counter(names.values())
        dominant[attempt] = min(counts, key=lambda kind: (-counts[kind], kind))
    for job in jobs:
        if job.failed or job.run_attempt <= 1:
            continue
        previous = (job.run_id, job.run_attempt - 1)
        if previous not in dominant:
            continue
        causes[job.job_id] = failed_by_name[previous].get(job.job_name, dominant[previous])
    return causes


# ---------------------------------------------------------------------------- output

COLUMNS = ("period", "group", "jobs", "runner_minutes", "billable_minutes", "cost_usd")


def render(report: UsageReport, fmt: UsageFormat, *, by: GroupBy = GroupBy.LABEL) -> str:
    """The report as text for stdout: an aligned table, CSV or a JSON array."""
    if fmt is UsageFormat.JSON:
        return json.dumps([asdict(row) for row in report.rows], indent=2) + "\n"
    if fmt is UsageFormat.CSV:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in report.rows:
            writer.writerow(
                [
                    row.period,
                    row.group,
                    row.jobs,
                    row.runner_minutes,
                    row.billable_minutes,
                    row.cost_usd,
                ]
            )
        return out.getvalue()
    return _table(report, by)


def _table(report: UsageReport, by: GroupBy) -> str:
    header = ["period", str(by), "jobs", "runner min", "billable min", "cost USD"]
    body = [
        [
            row.period,
            row.group or "-",
            str(row.jobs),
            f"{row.runner_minutes:.1f}",
            str(row.billable_minutes),
            f"{row.cost_usd:.2f}",
        ]
        for row in report.rows
    ]
    if report.rows:
        body.append(
            [
                "total",
                "",
                str(sum(row.jobs for row in report.rows)),
                f"{sum(row.runner_minutes for row in report.rows):.1f}",
                str(sum(row.billable_minutes for row in report.rows)),
                f"{sum(row.cost_usd for row in report.rows):.2f}",
            ]
        )
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = []
    for line in [header, *body]:
        cells = [
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def unknown_labels_note(report: UsageReport) -> str | None:
    """One sentence naming labels counted as self-hosted for want of a known runner."""
    if not report.unknown_labels:
        return None
    named = ", ".join(
        f"{label or '(no labels)'} ({count} jobs)" for label, count in report.unknown_labels.items()
    )
    return (
        f"counted as self-hosted (no price): {named}; "
        "map larger runners to a SKU with --price-table."
    )


def to_datetime(period: str) -> datetime:
    """A row's period as a UTC datetime (its first instant), for time-series sinks."""
    return datetime.fromisoformat(period).replace(tzinfo=UTC)
