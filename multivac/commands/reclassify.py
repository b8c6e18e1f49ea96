"""`multivac reclassify`: the current rules over the evidence kept in the local store."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime

from rich.console import Console

from multivac.archive import LogArchive
from multivac.config import ReclassifyPlan
from multivac.model import JOB_SCHEMA, TEST_SCHEMA, JobRecord
from multivac.publish import publish
from multivac.reclassify import TestsChange
from multivac.sinks import build_sink
from multivac.sinks.base import Sink
from multivac.sinks.targets import InfluxTargets
from multivac.store import Store


def reclassify(plan: ReclassifyPlan, console: Console) -> None:
    """Re-apply the current rules (and test parsers) to the archived logs, else the
    stored evidence; with a format, write the changed records (InfluxDB: each job's old
    point is deleted before its new one is written)."""
    from multivac.classify import load_catalog
    from multivac.reclassify import reclassify_all
    from multivac.testresults import load_parsers

    catalog = load_catalog(plan.rules)
    parsers = load_parsers(plan.rules)
    with Store.open(plan.state_dir) as store:
        archive = LogArchive(plan.state_dir / "logs", 0)  # read only: full logs beat excerpts
        found = reclassify_all(
            store,
            catalog,
            plan.repos,
            plan.since,
            plan.until,
            lean=plan.lean,
            archive=archive,
            parsers=parsers,
        )
        changes = found.changes
        moves = Counter(f"{c.old_measurement} -> {c.record.measurement}" for c in changes)
        verb = "would move" if plan.dry_run else "moved"
        if not plan.dry_run:
            for change in changes:
                store.set_classification(change.job_id, change.classification)
            if (plan.output_format is not None and changes) or found.tests:
                _write(plan, store, [c.record for c in changes], found.tests)
        for move, count in moves.most_common():
            console.print(f"{verb} {count} jobs: {move}", markup=False)
        if found.tests:
            verb = "would change" if plan.dry_run else "changed"
            console.print(f"{verb} the test results of {len(found.tests)} jobs.", markup=False)
        if not plan.dry_run:
            console.print(f"reclassified {len(changes)} jobs.", markup=False)


def _write(
    plan: ReclassifyPlan,
    store: Store,
    records: Sequence[JobRecord],
    tests: Sequence[TestsChange],
) -> None:
    """Write the changed job records, and store (and write) the changed test results."""
    with ExitStack() as stack:
        sink = None
        if plan.output_format is not None:
            sink = build_sink(
                plan.output_format,
                stack=stack,
                output=plan.output,
                lean=plan.lean,
                influx=plan.influx,
                targets=plan.targets,
                spool_dir=plan.state_dir / "spool",
                policy=plan.policy,
                schemas=(JOB_SCHEMA, TEST_SCHEMA),
            )
        try:
            if sink is not None and records:
                publish(sink, records, store)
            _tests(sink, store, tests)
        finally:
            if sink is not None:
                sink.close()
        if isinstance(sink, InfluxTargets):
            sink.raise_failure()


def _tests(sink: Sink | None, store: Store, tests: Sequence[TestsChange]) -> None:
    """Each run's changed jobs through the gather's test publisher: merged with what the
    store holds, flaky decided by the job's family, written, stored."""
    from multivac.gather import GatherOptions, RunResult, Summary
    from multivac.testresults.gathered import TestPublisher

    by_run: dict[int, list[TestsChange]] = {}
    for change in tests:
        by_run.setdefault(change.run.id, []).append(change)
    options = GatherOptions(repos=(), since=None, until=datetime.now(UTC))
    publisher = TestPublisher(store, options, Summary(), parsing=True)
    for changes in by_run.values():
        run = changes[0].run
        result, decided = publisher.prepare(
            RunResult(
                run,
                tuple(store.jobs_of(run.id)),
                (),
                {},
                fetched=False,
                tests={change.job.id: change.tests for change in changes},
            )
        )
        if sink is not None:
            # without a format the store alone changes: the next gather writes the
            # new points and retracts the old ones
            publish(sink, result.records, store, tested=result.tested)
        publisher.save(decided)
