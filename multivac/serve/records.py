"""The records serve writes, built as a gather builds them: a job's attempts (with
`flaky` over them and the same price table) and a whole run's `runs` points."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from multivac.config import ServePlan
from multivac.minutes.records import run_records, step_records
from multivac.model import Classification, Job, Record, Run, build_record, flaky_job_ids
from multivac.store import Store


def attempt_records(
    plan: ServePlan,
    run: Run,
    attempts: Sequence[Job],
    classifications: Mapping[int, Classification],
    *,
    waiting: Collection[int] = (),
    steps_of: Collection[int] = (),
) -> list[Record]:
    """The records of the attempts of one job of a run, as a gather builds them (flaky
    over those attempts, the same price table), leaving out the `waiting` ones; with
    --steps, the step points of the attempts `steps_of` (a step point never changes, so
    it is written once, with its job's first record)."""
    flaky = flaky_job_ids(list(attempts))
    records: list[Record] = []
    for attempt in attempts:
        if attempt.id in waiting:
            continue
        record = build_record(
            run,
            attempt,
            classifications.get(attempt.id),
            lean=plan.lean,
            flaky=attempt.id in flaky,
            prices=plan.prices,
        )
        if record is None:
            continue
        records.append(record)
        if plan.steps and attempt.id in steps_of:
            records.extend(step_records(attempt, record, lean=plan.lean))
    return records


def run_records_of(plan: ServePlan, store: Store, run: Run) -> list[Record]:
    """The `runs` points of a run whose jobs are all stored, as a gather writes them;
    written again when a classification changes what they count (same points)."""
    if not plan.runs:
        return []
    return list(
        run_records(
            run, store.jobs_of(run.id), store.classifications_of(run.id), prices=plan.prices
        )
    )
