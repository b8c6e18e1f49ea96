"""`multivac reclassify`: the current rules over the evidence kept in the local store."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack

from rich.console import Console

from multivac.archive import LogArchive
from multivac.config import ReclassifyPlan
from multivac.errors import SinkError
from multivac.model import JobRecord
from multivac.publish import publish
from multivac.sinks import build_sink
from multivac.sinks.targets import InfluxTargets
from multivac.store import Store


def reclassify(plan: ReclassifyPlan, console: Console) -> None:
    """Re-apply the current rules to stored evidence; with a format, write the changed
    records (InfluxDB: each job's old point is deleted before its new one is written)."""
    from multivac.classify import load_catalog
    from multivac.reclassify import reclassify as changed

    catalog = load_catalog(plan.rules)
    with Store.open(plan.state_dir) as store:
        archive = LogArchive(plan.state_dir / "logs", 0)  # read only: full logs beat excerpts
        changes = changed(
            store, catalog, plan.repos, plan.since, plan.until, lean=plan.lean, archive=archive
        )
        moves = Counter(f"{c.old_measurement} -> {c.record.measurement}" for c in changes)
        verb = "would move" if plan.dry_run else "moved"
        if not plan.dry_run:
            for change in changes:
                store.set_classification(change.job_id, change.classification)
            if plan.output_format is not None and changes:
                _write(plan, store, [c.record for c in changes])
        for move, count in moves.most_common():
            console.print(f"{verb} {count} jobs: {move}", markup=False)
        if not plan.dry_run:
            console.print(f"reclassified {len(changes)} jobs.", markup=False)


def _write(plan: ReclassifyPlan, store: Store, records: Sequence[JobRecord]) -> None:
    assert plan.output_format is not None
    with ExitStack() as stack:
        sink = build_sink(
            plan.output_format,
            stack=stack,
            output=plan.output,
            lean=plan.lean,
            influx=plan.influx,
            targets=plan.targets,
            spool_dir=plan.state_dir / "spool",
            policy=plan.policy,
        )
        try:
            publish(sink, records, store)
        finally:
            sink.close()
        if isinstance(sink, InfluxTargets) and sink.failure:
            raise SinkError(sink.failure)
