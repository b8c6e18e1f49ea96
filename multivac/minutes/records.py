"""The `steps`, `runs` and `runner_load` records, built from what a gather already has.

- `step_records`: one point per completed step of a written job, from the steps of the
  jobs response (no extra request). Skipped steps are left out, as skipped jobs are.
- `run_records`: one point per run attempt, from the run and its jobs.
- `load_records`: the `runner_load` points of `capacity --format influxdb`.

Point identity matters here as it does for jobs (model.PointKey): a gather writes a
run's points again whenever it sees the run, so each point's tags and time must come
out the same every time. Hence a run attempt's time and conclusion come from facts
that do not change once the attempt is over (see `run_records`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime

from multivac.minutes.billing import PriceTable
from multivac.minutes.capacity import CapacityBy, MinuteLoad, RunnerLoad
from multivac.model import (
    FAILED,
    FAILED_CONCLUSIONS,
    JOB_CANCELLED,
    LEAN_KEYS,
    NOT_FAILURES,
    RUNNER_LOAD,
    RUNS,
    SKIPPED,
    STEP_FAILED,
    STEPS,
    SUCCEEDED,
    TIMEOUT,
    Anomalies,
    Classification,
    Job,
    JobRecord,
    LoadRecord,
    Run,
    RunRecord,
    Step,
    StepRecord,
    clean,
    lean_offset_ns,
    packaged_prices,
    tag_safe,
    to_ns,
)

#: the runner_load tag value of jobs without runs-on labels (a tag cannot be empty)
NO_LABELS = "(no labels)"


def _marked_step(job: Job, record: JobRecord) -> Step | None:
    """The step a failed job's failure type belongs to: the failed step the record names
    (`failure_step`), else the job's first failed step."""
    named = record.fields.get("failure_step")
    for step in job.steps:
        if step.conclusion in STEP_FAILED and clean(step.name) == named:
            return step
    return job.failed_step


def step_records(job: Job, record: JobRecord, *, lean: bool = False) -> list[StepRecord]:
    """The completed steps of a job whose record is `record` (the job's tags come from it)."""
    failure = record.measurement if record.measurement not in NOT_FAILURES else None
    marked = _marked_step(job, record) if failure else None
    base = {key: value for key, value in record.tags.items() if key != "flaky"}
    moved = {key: record.fields[key] for key in LEAN_KEYS if key in record.fields}
    offset = lean_offset_ns(job.id) if lean else 0
    out: list[StepRecord] = []
    for step in job.steps:
        if step.conclusion is None or step.conclusion == SKIPPED:
            continue
        if step.started_at is None or step.completed_at is None:
            continue
        tags = dict(base)
        tags.update(
            step=tag_safe(step.name),
            step_number=str(step.number),
            conclusion=tag_safe(step.conclusion),
        )
        fields: dict[str, float | int | str] = dict(moved)
        fields["duration_s"] = max(0.0, (step.completed_at - step.started_at).total_seconds())
        if failure is not None and step is marked:
            fields["failure_type"] = failure
        out.append(
            StepRecord(
                measurement=STEPS,
                time_ns=to_ns(step.started_at) + offset,
                tags={key: value for key, value in tags.items() if value},
                fields=fields,
                job_id=job.id,
            )
        )
    return out


def _recorded(job: Job) -> bool:
    """Jobs that have a record: finished and not skipped (model.measurement_for)."""
    return job.status == "completed" and job.conclusion not in (None, SKIPPED)


def _failed(job: Job, classification: Classification | None) -> bool:
    if job.conclusion in FAILED_CONCLUSIONS:
        return True
    return classification is not None and classification.type == TIMEOUT


def attempt_conclusion(jobs: Sequence[Job]) -> str:
    """An earlier attempt's conclusion from its jobs, as GitHub concludes a run: failure
    when a job failed, else cancelled when one was cancelled, else success when one
    succeeded, else the other conclusion its jobs have (first by name), else skipped;
    "" for an attempt without a finished job."""
    conclusions = {job.conclusion for job in jobs if job.conclusion}
    if conclusions & FAILED_CONCLUSIONS:
        return FAILED
    for usual in (JOB_CANCELLED, SUCCEEDED):
        if usual in conclusions:
            return usual
    others = sorted(conclusions - {SKIPPED})
    if others:
        return others[0]
    return SKIPPED if conclusions else ""


def _earliest(moments: Iterable[datetime | None]) -> datetime | None:
    return min((m for m in moments if m is not None), default=None)


def _latest(moments: Iterable[datetime | None]) -> datetime | None:
    return max((m for m in moments if m is not None), default=None)


def run_records(
    run: Run,
    jobs: Sequence[Job],
    classifications: Mapping[int, Classification],
    *,
    prices: PriceTable | None = None,
    anomalies: Anomalies | None = None,
) -> list[RunRecord]:
    """One point per attempt of a completed run.

    - Time: attempt 1 at the run's `created_at`; a later attempt at the creation of
      its first job (GitHub gives `run_started_at` for the latest attempt only, and
      resets it on a re-run). Runs have no id tag, so the run id's sub-second offset
      (`lean_offset_ns`) keeps two runs of one workflow created in one second apart.
    - `conclusion`: GitHub's for the latest attempt; an earlier one's from its jobs.
    - `duration_s`: from the attempt's start (`run_started_at` for the latest one) to
      its last job's completion; `queued_s`: from the attempt's creation to its first
      job's start.
    - `jobs`, `failed_jobs`, `billable_min`, `cost_usd`: over the attempt's own jobs
      with a record (a job carried from an earlier attempt counts there).
    """
    anomalies = anomalies if anomalies is not None else Anomalies()
    prices = prices or packaged_prices()
    if run.created_at is None:
        anomalies.missing_times += 1
        return []
    by_attempt: dict[int, list[Job]] = defaultdict(list)
    for job in jobs:
        by_attempt[job.run_attempt or 1].append(job)
    latest = run.run_attempt or 1
    out: list[RunRecord] = []
    for attempt in sorted(set(by_attempt) | {latest}):
        own = by_attempt.get(attempt, [])
        recorded = [job for job in own if _recorded(job)]
        created: datetime | None
        if attempt == 1:
            created = run.created_at
        else:
            created = _earliest(job.created_at for job in own)
            if created is None:
                created = run.run_started_at if attempt == latest else None
            if created is None:
                anomalies.missing_times += 1
                continue
        if attempt == latest and run.conclusion:
            conclusion = run.conclusion
        else:
            conclusion = attempt_conclusion(own)
        started = run.run_started_at if attempt == latest and run.run_started_at else created
        fields: dict[str, float | int | str] = {}
        last = _latest(job.completed_at for job in recorded)
        first = _earliest(job.started_at for job in recorded)
        for key, value in (
            ("duration_s", (last - started).total_seconds() if last else None),
            ("queued_s", (first - created).total_seconds() if first else None),
        ):
            if value is None:
                continue
            if value < 0:
                anomalies.clamped += 1
                value = 0.0
            fields[key] = float(value)
        bills = [prices.bill_job(job) for job in recorded]
        fields["jobs"] = len(recorded)
        fields["failed_jobs"] = sum(
            1 for job in recorded if _failed(job, classifications.get(job.id))
        )
        fields["billable_min"] = sum(bill.billable_min for bill in bills)
        fields["cost_usd"] = round(sum(bill.cost_usd for bill in bills), 6)
        if run.pr_number is not None:
            fields["pr_number"] = run.pr_number
        if run.actor:
            fields["actor"] = clean(run.actor)
        url = run.html_url or f"https://github.com/{run.repository}/actions/runs/{run.id}"
        fields["html_url"] = clean(url if attempt == latest else f"{url}/attempts/{attempt}")
        tags = {
            "repository": run.repository,
            "workflow": run.workflow or next((job.workflow for job in own if job.workflow), ""),
            "branch": run.branch,
            "event": run.event,
            "conclusion": conclusion,
            "run_attempt": str(attempt),
        }
        tags = {key: tag_safe(value) for key, value in tags.items()}
        out.append(
            RunRecord(
                measurement=RUNS,
                time_ns=to_ns(created) + lean_offset_ns(run.id),
                tags={key: value for key, value in tags.items() if value},
                fields=fields,
            )
        )
    return out


def load_records(
    rows: Iterable[RunnerLoad], *, by: CapacityBy = CapacityBy.LABEL
) -> Iterable[LoadRecord]:
    """`runner_load` points: tag `runner_label` (or `runner_group`), fields `queued`
    and `running`, at the minute's start."""
    key = "runner_group" if by is CapacityBy.RUNNER_GROUP else "runner_label"
    tags: dict[str, dict[str, str]] = {}  # one tag set per label, shared by its minutes
    for row in rows:
        found = tags.get(row.label)
        if found is None:
            found = tags[row.label] = {key: tag_safe(row.label) or NO_LABELS}
        # positional: a quarter of a million of these take a third of the time so
        yield LoadRecord(
            RUNNER_LOAD, row.minute * 1_000_000_000, found, {"queued": row[2], "running": row[3]}
        )


def load_lines(load: MinuteLoad, *, by: CapacityBy = CapacityBy.LABEL) -> Iterator[str]:
    """The line protocol of `load_points`, one block of lines per label, written without
    a record per point: a month of minutes is a quarter of a million lines, and the
    records' objects were half of `capacity -f line-protocol`'s time."""
    from multivac.sinks.lineproto import int_template

    key = "runner_group" if by is CapacityBy.RUNNER_GROUP else "runner_label"
    for label in sorted(load.minutes):
        table = load.minutes[label]
        template = int_template(
            RUNNER_LOAD, ((key, tag_safe(label) or NO_LABELS),), ("queued", "running")
        ).format
        lines = [template(*table[minute], minute * 60_000_000_000) for minute in sorted(table)]
        if lines:
            yield "\n".join(lines) + "\n"


def load_points(load: MinuteLoad, *, by: CapacityBy = CapacityBy.LABEL) -> Iterator[LoadRecord]:
    """`load_records(load.rows())`, read straight from the per-minute tables: a month of
    minutes is a quarter of a million points, and each object less per point counts."""
    key = "runner_group" if by is CapacityBy.RUNNER_GROUP else "runner_label"
    for label in sorted(load.minutes):
        table = load.minutes[label]
        tags = {key: tag_safe(label) or NO_LABELS}
        for minute in sorted(table):
            cell = table[minute]
            yield LoadRecord(
                RUNNER_LOAD, minute * 60_000_000_000, tags, {"queued": cell[0], "running": cell[1]}
            )
