"""The parts of `multivac serve` on their own: the signature, the live state, the queue
record, the store's webhook writes, the output's choice of what to write, the plan."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from multivac.config import ConfigError, Environment, Secret, plan_serve
from multivac.model import QUEUE_SCHEMA, QueueRecord, build_record
from multivac.serve.emitter import _fresh
from multivac.serve.live import MAX_QUEUED_S, LiveState
from multivac.serve.signature import Signature, sign
from multivac.sinks import Format
from multivac.sinks.lineproto import to_line
from multivac.store import Store
from tests.factories import make_job, make_run

# ---------------------------------------------------------------------------- signature

# GitHub Docs, "Validating webhook deliveries", "Testing the webhook payload validation"
DOC_SECRET = "It's a Secret to Everybody"
DOC_PAYLOAD = b"Hello, World!"
DOC_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_the_signature_matches_githubs_documented_example() -> None:
    assert sign(Secret(DOC_SECRET), DOC_PAYLOAD) == DOC_SIGNATURE
    signature = Signature(Secret(DOC_SECRET))
    for part in (DOC_PAYLOAD[:5], DOC_PAYLOAD[5:]):  # hashed as the body arrives
        signature.update(part)
    assert signature.matches(DOC_SIGNATURE)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        DOC_SIGNATURE[len("sha256=") :],  # no prefix
        "sha1=" + DOC_SIGNATURE[len("sha256=") :],
        DOC_SIGNATURE.upper(),
        DOC_SIGNATURE[:-1] + "f",
        DOC_SIGNATURE + "0",
        "sha256=é" + DOC_SIGNATURE[8:],
    ],
)
def test_near_miss_signatures_do_not_match(header: str | None) -> None:
    signature = Signature(Secret(DOC_SECRET))
    signature.update(DOC_PAYLOAD)
    assert not signature.matches(header)


def test_another_body_or_secret_does_not_match() -> None:
    other_body = Signature(Secret(DOC_SECRET))
    other_body.update(b"Hello, World?")
    assert not other_body.matches(DOC_SIGNATURE)
    other_secret = Signature(Secret("It's a secret to everybody"))
    other_secret.update(DOC_PAYLOAD)
    assert not other_secret.matches(DOC_SIGNATURE)


# ---------------------------------------------------------------------------- live state

T0 = 1_800_000_000.0


def counts(live: LiveState, now: float = T0) -> list[tuple[str, int, int]]:
    return [(s.label, s.queued, s.running) for s in live.snapshot(now)]


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([("queued", 1)], [("L", 1, 0)]),
        ([("queued", 1), ("started", 1)], [("L", 0, 1)]),
        ([("queued", 1), ("started", 1), ("finished", 1)], [("L", 0, 0)]),
        ([("started", 1), ("queued", 1)], [("L", 0, 1)]),  # a late queued
        ([("finished", 1), ("queued", 1), ("started", 1)], []),  # all late
        ([("queued", 1), ("queued", 1)], [("L", 1, 0)]),  # a redelivery
        ([("queued", 1), ("queued", 2), ("started", 2)], [("L", 1, 1)]),
        ([("finished", 3)], []),  # never seen in flight
    ],
)
def test_jobs_only_move_forward(events: list[tuple[str, int]], expected: list) -> None:
    live = LiveState()
    for what, job_id in events:
        if what == "queued":
            live.queued(job_id, 10, "L", T0)
        elif what == "started":
            live.started(job_id, 10, "L", T0, T0 + 5)
        else:
            live.finished(job_id)
    assert counts(live) == expected


def test_oldest_queued_age_and_runs_in_flight() -> None:
    live = LiveState()
    live.queued(1, 10, "linux", T0 - 30)
    live.queued(2, 11, "linux", T0 - 90)
    live.started(3, 12, "mac", T0 - 100, T0 - 50)
    (linux, mac) = live.snapshot(T0)
    assert (linux.label, linux.queued, linux.oldest_queued_s) == ("linux", 2, 90.0)
    assert (mac.label, mac.running, mac.oldest_queued_s) == ("mac", 1, 0.0)
    assert live.in_flight(11) and not live.in_flight(99)
    live.finished(2)
    assert not live.in_flight(11)
    assert live.snapshot(T0)[0].oldest_queued_s == 30.0


def test_queue_points_at_most_every_ten_seconds_and_only_on_change() -> None:
    live = LiveState()
    live.queued(1, 10, "L", T0)
    (first,) = live.due(T0)
    assert (first.fields["queued"], first.fields["running"]) == (1, 0)
    assert list(live.due(T0 + 1)) == []  # nothing changed
    live.started(1, 10, "L", T0, T0 + 2)
    assert list(live.due(T0 + 5)) == []  # changed, but within ten seconds
    (second,) = live.due(T0 + 10)
    assert (second.fields["queued"], second.fields["running"]) == (0, 1)
    assert second.time_ns == int((T0 + 10) * 1e9)
    live.finished(1)
    (last,) = live.due(T0 + 20)
    assert (last.fields["queued"], last.fields["running"]) == (0, 0)
    assert list(live.due(T0 + 40)) == [] and counts(live) == []  # forgotten


def test_the_jobs_in_flight_survive_a_restart_and_stale_ones_expire() -> None:
    live = LiveState()
    live.queued(1, 10, "L", T0)
    live.started(2, 10, "L", T0, T0 + 1)
    live.queued(3, 11, "M", T0 - MAX_QUEUED_S - 10)  # GitHub gave up on it long ago
    again = LiveState()
    assert again.loads(live.dumps(), T0) == 2
    assert counts(again) == [("L", 1, 1)]
    assert again.in_flight(10)
    assert LiveState().loads("not json", T0) == 0


# ---------------------------------------------------------------------------- queue record


def test_the_queue_record_in_line_protocol_and_csv() -> None:
    record = QueueRecord.of("self-hosted,linux", 3, 2, 41.5, 1_800_000_000_000_000_000)
    assert to_line(record) == (
        "queue,runner_label=self-hosted\\,linux oldest_queued_s=41.5,queued=3i,running=2i "
        "1800000000000000000"
    )
    assert record.SCHEMA is QUEUE_SCHEMA
    row = record.row(lean=False)
    assert row["runner_label"] == "self-hosted,linux" and row["queued"] == 3


# ---------------------------------------------------------------------------- store


def test_a_delivery_is_taken_once(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        job = make_job(7, run_id=1, conclusion="failure")
        assert store.take_job("d-1", "octo/app", job, pending="log to read")
        assert not store.take_job("d-1", "octo/app", make_job(8, run_id=1), pending=None)
        assert store.job_of(8) is None  # the duplicate wrote nothing
        assert store.pending_queue() == [(7, 1)]
        run = store.run_of(1)
        assert run is not None and run.repository == "octo/app" and run.status == ""
        assert store.known_run(make_run(1)) is None  # a provisional run is never gathered
        assert store.take_delivery("d-2") and not store.take_delivery("d-2")
        assert store.has_delivery("d-1") and not store.has_delivery("d-3")


def test_a_run_from_a_webhook_counts_as_gathered_only_when_complete(tmp_path: Path) -> None:
    run = make_run(1)
    with Store.open(tmp_path) as store:
        store.take_job("d-1", "octo/app", make_job(7, run_id=1), pending=None)
        assert store.take_run("d-2", run, complete=False)
        assert store.known_run(run) is None
        assert store.run_completion(1) == (True, False)
        store.mark_jobs_complete(1)
        known = store.known_run(run)
        assert known is not None and [j.id for j in known.jobs] == [7]
        assert not store.take_run("d-2", run, complete=True)


def test_a_run_a_gather_took_stays_gathered(tmp_path: Path) -> None:
    run = make_run(1)
    with Store.open(tmp_path) as store:
        store.save_run(run, [make_job(7, run_id=1)], {})
        assert store.take_run("d-1", run, complete=False)
        assert store.known_run(run) is not None
        rerun = make_run(1, run_attempt=2, updated_at=datetime(2026, 10, 2, tzinfo=UTC))
        assert store.take_run("d-2", rerun, complete=False)
        assert store.known_run(rerun) is None  # a new attempt: its jobs are not all known


def test_settling_a_classification_takes_the_job_off_the_queue(tmp_path: Path) -> None:
    from multivac.model import Classification

    with Store.open(tmp_path) as store:
        store.take_job("d-1", "octo/app", make_job(7, run_id=1, conclusion="failure"), pending="x")
        store.take_job("d-2", "octo/app", make_job(8, run_id=1, conclusion="failure"), pending="x")
        found = Classification("out_of_disk", "no-space-left", "Run tests", 3, "No space")
        store.settle({7: found})
        assert store.pending_queue() == [(8, 1)]
        assert store.classifications_for([7, 8]) == {7: found}
        assert store.pending_jobs() == 1


def test_the_queue_holds_only_jobs_of_the_stores_github(tmp_path: Path) -> None:
    with Store.open(tmp_path, github="https://ghe.example.com/api/v3") as other:
        other.take_job("d-1", "octo/app", make_job(7, run_id=1, conclusion="failure"), pending="x")
    with Store.open(tmp_path, github="https://api.github.com") as store:
        store.take_job("d-2", "octo/app", make_job(8, run_id=2, conclusion="failure"), pending="x")
        assert store.pending_queue() == [(8, 2)]


def test_old_deliveries_are_forgotten(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.take_delivery("old")
        assert store.forget_deliveries(before=datetime.now(UTC).timestamp() + 1) == 1
        assert store.take_delivery("old")


# ---------------------------------------------------------------------------- output


def test_only_new_or_changed_points_are_written(tmp_path: Path) -> None:
    run = make_run(1)
    ok = build_record(run, make_job(7, run_id=1), None)
    failed = build_record(run, make_job(8, run_id=1, conclusion="failure"), None)
    flaky = build_record(run, make_job(8, run_id=1, conclusion="failure"), None, flaky=True)
    assert ok is not None and failed is not None and flaky is not None
    queue = QueueRecord.of("L", 1, 0, 0.0, 1)
    with Store.open(tmp_path) as store:
        store.note_emitted([ok, failed])
        assert _fresh([ok, failed, queue], store) == [queue]
        assert _fresh([ok, flaky], store) == [flaky]
        assert _fresh([flaky, failed], store) == []  # the newest record of a job counts


# ---------------------------------------------------------------------------- metrics


def test_metrics_text_and_a_bounded_set_of_ignored_names() -> None:
    from multivac.serve.metrics import MAX_IGNORED_NAMES, Metrics

    live = LiveState()
    live.queued(1, 10, "ubuntu-latest", T0)
    metrics = Metrics(live, lambda: 4)
    for n in range(MAX_IGNORED_NAMES + 20):
        metrics.ignore(f"event_{n}")
    text = metrics.render().decode()
    assert 'multivac_jobs_queued{runner_label="ubuntu-latest"} 1.0' in text
    assert "multivac_worker_backlog 4.0" in text
    assert 'multivac_deliveries_ignored_total{event="other"} 20.0' in text
    assert text.count("multivac_deliveries_ignored_total{") == MAX_IGNORED_NAMES + 1
    assert "_created" not in text


# ---------------------------------------------------------------------------- plan


def env_of(**values: str) -> Environment:
    return Environment(values, dotenv_path="")


def test_the_plan_needs_a_secret_unless_told_otherwise(tmp_path: Path) -> None:
    common = {"host": "127.0.0.1", "port": 8080, "output_format": Format.json, "state": tmp_path}
    with pytest.raises(ConfigError, match="MULTIVAC_WEBHOOK_SECRET is not set"):
        plan_serve(env_of(), **common)  # type: ignore[arg-type]
    assert plan_serve(env_of(), insecure=True, **common).secret is None  # type: ignore[arg-type]
    plan = plan_serve(env_of(MULTIVAC_WEBHOOK_SECRET="abcdefgh"), **common)  # type: ignore[arg-type]
    assert plan.secret is not None and plan.secret.reveal() == "abcdefgh"
    assert "abcdefgh" not in repr(plan)
    with pytest.raises(ConfigError, match="--host"):
        plan_serve(env_of(MULTIVAC_WEBHOOK_SECRET="abcdefgh"), **{**common, "host": "a b"})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="INFLUX_URL"):
        plan_serve(
            env_of(MULTIVAC_WEBHOOK_SECRET="abcdefgh"),
            **{**common, "output_format": Format.influxdb},  # type: ignore[arg-type]
        )
