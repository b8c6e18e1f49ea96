"""The `steps`, `runs` and `runner_load` records and the billing fields of job records,
on hand-built jobs and runs; parsing the GitHub facts they need."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multivac.classify import load_catalog
from multivac.gather import Gatherer, GatherOptions
from multivac.github import job_from_json, run_from_json
from multivac.ingest import parse_line
from multivac.minutes import (
    CapacityBy,
    MinuteLoad,
    RunnerLoad,
    from_model,
    load_price_table,
    minute_load,
)
from multivac.minutes.records import (
    NO_LABELS,
    attempt_conclusion,
    load_lines,
    load_points,
    load_records,
    run_records,
    step_records,
)
from multivac.model import (
    JOB_SCHEMA,
    LOAD_SCHEMA,
    RUN_SCHEMA,
    STEP_SCHEMA,
    Classification,
    Job,
    JobRecord,
    LoadRecord,
    Record,
    RunRecord,
    Step,
    StepRecord,
    build_record,
    lean_offset_ns,
    record_type,
    table_columns,
    to_ns,
)
from multivac.sinks.lineproto import to_line, to_lines, to_point
from multivac.store import Store
from tests.factories import BASE, MemorySource, make_job, make_run

S = timedelta(seconds=1)


def record(job: Job, classification: Classification | None = None, **kw: Any) -> JobRecord:
    built = build_record(make_run(job.run_id), job, classification, **kw)
    assert built is not None
    return built


# ---------------------------------------------------------------------------- job billing


@pytest.mark.parametrize(
    ("labels", "group", "seconds", "runner_min", "billable", "cost"),
    [
        (("ubuntu-latest",), "GitHub Actions", 61, 61 / 60, 2, 0.012),
        (("ubuntu-latest",), "GitHub Actions", 60, 1.0, 1, 0.006),
        (("ubuntu-latest",), "GitHub Actions", 1, 1 / 60, 1, 0.006),
        (("windows-latest",), "GitHub Actions", 90, 1.5, 4, 0.02),
        (("macos-15",), "GitHub Actions", 30, 0.5, 10, 0.062),
        (("ubuntu-24.04-16core",), "larger", 120, 2.0, 2, 0.084),
        (("self-hosted", "linux"), "Default", 600, 10.0, 0, 0.0),
        # near miss: a hosted image name in an org's own runner group is self-hosted
        (("ubuntu-latest",), "Default", 600, 10.0, 0, 0.0),
        (("ubuntu-latest",), "GitHub Actions", 0, 0.0, 0, 0.0),
    ],
)
def test_every_job_record_carries_its_bill(
    labels: tuple[str, ...],
    group: str,
    seconds: float,
    runner_min: float,
    billable: int,
    cost: float,
) -> None:
    job = make_job(ran=seconds, labels=labels, runner_group=group)
    fields = record(job).fields
    assert fields["runner_min"] == pytest.approx(runner_min)
    assert fields["billable_min"] == billable and isinstance(fields["billable_min"], int)
    assert fields["cost_usd"] == cost and isinstance(fields["cost_usd"], float)


def test_a_job_that_never_ran_bills_nothing() -> None:
    job = make_job(conclusion="cancelled", started_at=None, completed_at=None)
    fields = record(job).fields
    assert (fields["runner_min"], fields["billable_min"], fields["cost_usd"]) == (0.0, 0, 0.0)


def test_a_price_table_override_reaches_the_job_record(tmp_path: Path) -> None:
    table = tmp_path / "prices.json"
    table.write_text('{"skus": {"linux": 0.5}, "larger": [["build-xl", "linux_32_core"]]}')
    prices = load_price_table(table)
    assert record(make_job(ran=120), prices=prices).fields["cost_usd"] == 1.0
    big = make_job(ran=60, labels=("build-xl",), runner_group="xl")
    assert record(big, prices=prices).fields["cost_usd"] == 0.082


def test_the_runner_group_is_a_tag_and_left_out_when_unknown() -> None:
    assert record(make_job(runner_group="linux-large")).tags["runner_group"] == "linux-large"
    assert "runner_group" not in record(make_job(runner_group="")).tags


# ---------------------------------------------------------------------------- steps

STEPS = (
    Step(1, "Set up job", "success", BASE + 10 * S, BASE + 12 * S),
    Step(2, "Run tests", "failure", BASE + 12 * S, BASE + 70 * S),
    Step(3, "Upload logs", "skipped", BASE + 70 * S, BASE + 70 * S),
    Step(4, "Post cleanup", "cancelled", BASE + 70 * S, BASE + 69 * S),  # clock skew
    Step(5, "Never ran", None),
    Step(6, "No times", "success"),
)
FAILED = Classification("test_failure", "pytest", "Run tests", 3, "FAILED t.py")


def test_one_point_per_completed_step_at_its_start() -> None:
    job = make_job(12, conclusion="failure", steps=STEPS)
    job_record = record(job, FAILED)
    steps = step_records(job, job_record)
    assert [(s.tags["step"], s.tags["step_number"], s.tags["conclusion"]) for s in steps] == [
        ("Set up job", "1", "success"),
        ("Run tests", "2", "failure"),
        ("Post cleanup", "4", "cancelled"),
    ]
    assert all(isinstance(s, StepRecord) and s.measurement == "steps" for s in steps)
    assert [s.time_ns for s in steps] == [to_ns(BASE + t * S) for t in (10, 12, 70)]
    assert [s.fields["duration_s"] for s in steps] == [2.0, 58.0, 0.0]
    for step in steps:
        # the job's tags, the job's conclusion still in `status`
        for key, value in job_record.tags.items():
            assert step.tags[key] == value
        assert step.tags["status"] == "failure"


def test_only_the_failed_step_carries_the_failure_type() -> None:
    job = make_job(12, conclusion="failure", steps=STEPS)
    steps = step_records(job, record(job, FAILED))
    assert {s.tags["step"]: s.fields.get("failure_type") for s in steps} == {
        "Set up job": None,
        "Run tests": "test_failure",
        "Post cleanup": None,
    }


def test_the_failure_type_goes_to_the_step_the_classification_names() -> None:
    # the log showed the failure in the second failed step, not the first
    steps = (
        Step(1, "Lint", "failure", BASE, BASE + 5 * S),
        Step(2, "Run tests", "failure", BASE + 5 * S, BASE + 9 * S),
    )
    job = make_job(12, conclusion="failure", steps=steps)
    marked = {
        s.tags["step"]: s.fields.get("failure_type") for s in step_records(job, record(job, FAILED))
    }
    assert marked == {"Lint": None, "Run tests": "test_failure"}


@pytest.mark.parametrize("conclusion", ["success", "cancelled"])
def test_steps_of_a_job_that_did_not_fail_carry_no_failure_type(conclusion: str) -> None:
    job = make_job(12, conclusion=conclusion, steps=STEPS)
    assert all("failure_type" not in s.fields for s in step_records(job, record(job)))


def test_steps_leave_the_flaky_tag_out() -> None:
    job = make_job(12, conclusion="failure", steps=STEPS)
    job_record = record(job, FAILED, flaky=True)
    assert job_record.tags["flaky"] == "true"
    assert all("flaky" not in s.tags for s in step_records(job, job_record))


def test_lean_steps_move_the_ids_to_fields_and_keep_jobs_apart() -> None:
    job = make_job(123_456, conclusion="failure", steps=STEPS)
    steps = step_records(job, record(job, FAILED, lean=True), lean=True)
    assert all("job_id" not in s.tags and s.fields["job_id"] == 123_456 for s in steps)
    assert steps[0].time_ns == to_ns(BASE + 10 * S) + lean_offset_ns(123_456)


# ---------------------------------------------------------------------------- runs


def attempt(run_records_: list[RunRecord], number: int) -> RunRecord:
    (found,) = [r for r in run_records_ if r.tags["run_attempt"] == str(number)]
    return found


def test_a_run_point_sums_its_jobs() -> None:
    run = make_run(
        5,
        run_started_at=BASE + 2 * S,
        actor="octocat",
        pr_number=17,
        conclusion="failure",
    )
    jobs = [
        make_job(1, 5, "success", queued=10, ran=61),  # starts BASE+10, ends BASE+71
        make_job(2, 5, "failure", queued=30, ran=100, labels=("windows-latest",)),
        make_job(3, 5, "skipped"),
    ]
    (point,) = run_records(run, jobs, {})
    assert isinstance(point, RunRecord) and point.measurement == "runs"
    assert point.tags == {
        "repository": "octo/app",
        "workflow": "CI",
        "branch": "main",
        "event": "push",
        "conclusion": "failure",
        "run_attempt": "1",
    }
    assert point.time_ns == to_ns(BASE) + lean_offset_ns(5)
    assert point.fields == {
        "duration_s": 128.0,  # run_started_at (BASE+2) to the last completion (BASE+130)
        "queued_s": 10.0,  # the run's creation to its first job's start
        "jobs": 2,  # the skipped job has no record
        "failed_jobs": 1,
        "billable_min": 2 + 2 * 2,  # 61 s on Linux, 100 s on Windows
        "cost_usd": 0.032,
        "pr_number": 17,
        "actor": "octocat",
        "html_url": "https://github.com/octo/app/actions/runs/5",
    }


def test_each_attempt_of_a_rerun_is_its_own_point() -> None:
    rerun_at = BASE + timedelta(hours=2)
    run = make_run(5, run_attempt=2, run_started_at=rerun_at + 3 * S, conclusion="success")
    jobs = [
        make_job(1, 5, "success", run_attempt=1, name="lint"),
        make_job(2, 5, "failure", run_attempt=1, name="test", ran=120),
        make_job(3, 5, "success", run_attempt=2, name="test", created_at=rerun_at, ran=45),
    ]
    points = run_records(run, jobs, {})
    first, second = attempt(points, 1), attempt(points, 2)
    # the first attempt's conclusion from its jobs, the latest as GitHub says
    assert (first.tags["conclusion"], second.tags["conclusion"]) == ("failure", "success")
    assert (first.fields["jobs"], first.fields["failed_jobs"]) == (2, 1)
    assert (second.fields["jobs"], second.fields["failed_jobs"]) == (1, 0)
    assert (first.fields["billable_min"], second.fields["billable_min"]) == (3, 1)
    # a later attempt stands at its first job's creation
    assert second.time_ns == to_ns(rerun_at) + lean_offset_ns(5)
    assert second.fields["duration_s"] == 10 + 45 - 3  # from run_started_at
    assert second.fields["queued_s"] == 10.0
    assert first.fields["html_url"].endswith("/runs/5/attempts/1")
    assert second.fields["html_url"].endswith("/runs/5")


def test_a_run_point_keeps_its_identity_when_the_run_is_rerun_later() -> None:
    """A gather writes a run's points again whenever it sees the run: the first
    attempt's point must not move when a second attempt appears."""
    jobs = [make_job(1, 5, "failure", name="test")]
    before = run_records(make_run(5, conclusion="failure", run_started_at=BASE), jobs, {})
    later = BASE + timedelta(hours=3)
    rerun = make_run(5, run_attempt=2, conclusion="success", run_started_at=later)
    after = run_records(rerun, [*jobs, make_job(2, 5, run_attempt=2, created_at=later)], {})
    assert attempt(after, 1).key == before[0].key


def test_a_cancelled_job_past_its_timeout_counts_as_failed() -> None:
    jobs = [make_job(1, 5, "cancelled"), make_job(2, 5, "cancelled")]
    timeout = Classification("timeout", "annotation", None, None, "exceeded")
    (point,) = run_records(make_run(5, conclusion="cancelled"), jobs, {1: timeout})
    assert point.fields["failed_jobs"] == 1


def test_a_run_without_jobs_still_has_its_point() -> None:
    (point,) = run_records(make_run(5, conclusion="startup_failure"), [], {})
    assert point.tags["conclusion"] == "startup_failure"
    assert point.fields["jobs"] == 0
    assert "duration_s" not in point.fields and "queued_s" not in point.fields


def test_negative_run_durations_are_clamped() -> None:
    run = make_run(5, run_started_at=BASE + timedelta(hours=1))
    (point,) = run_records(run, [make_job(1, 5, queued=-30, ran=10)], {})
    assert (point.fields["duration_s"], point.fields["queued_s"]) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("conclusions", "expected"),
    [
        (["success", "failure", "cancelled"], "failure"),
        (["success", "timed_out"], "failure"),
        (["success", "startup_failure"], "failure"),
        (["success", "cancelled"], "cancelled"),
        (["success", "skipped"], "success"),
        (["skipped", "skipped"], "skipped"),
        (["neutral", "skipped"], "neutral"),
        ([None], ""),
        ([], ""),
    ],
)
def test_an_earlier_attempts_conclusion_from_its_jobs(
    conclusions: list[str | None], expected: str
) -> None:
    jobs = [make_job(i, conclusion=c) for i, c in enumerate(conclusions)]
    assert attempt_conclusion(jobs) == expected


# ---------------------------------------------------------------------------- runner_load


@pytest.mark.parametrize(
    ("by", "label", "key", "value"),
    [
        (CapacityBy.LABEL, "self-hosted,linux", "runner_label", "self-hosted,linux"),
        (CapacityBy.LABEL, "", "runner_label", NO_LABELS),
        (CapacityBy.RUNNER_GROUP, "Default", "runner_group", "Default"),
    ],
)
def test_runner_load_points(by: CapacityBy, label: str, key: str, value: str) -> None:
    (point,) = load_records([RunnerLoad(label, 1_790_000_040, 3, 2)], by=by)
    assert isinstance(point, LoadRecord)
    assert (point.measurement, point.time_ns) == ("runner_load", 1_790_000_040 * 10**9)
    assert point.tags == {key: value}
    assert point.fields == {"queued": 3, "running": 2}


# ---------------------------------------------------------------------------- the types


@pytest.mark.parametrize(
    ("measurement", "kind"),
    [
        ("steps", StepRecord),
        ("runs", RunRecord),
        ("runner_load", LoadRecord),
        ("test_failure", JobRecord),
        ("successful_jobs", JobRecord),
        ("run", JobRecord),  # near miss: a failure type that merely looks like one
    ],
)
def test_a_point_read_back_gets_its_record_type(measurement: str, kind: type[Record]) -> None:
    assert record_type(measurement) is kind


def test_one_csv_header_holds_jobs_steps_and_runs() -> None:
    columns = table_columns((JOB_SCHEMA, STEP_SCHEMA, RUN_SCHEMA), lean=False)
    assert columns[:2] == ["time", "measurement"]
    assert len(columns) == len(set(columns))
    for name in ("runner_group", "step", "step_number", "conclusion", "event"):
        assert name in columns
    for name in ("billable_min", "cost_usd", "duration_s", "failure_type", "jobs", "pr_number"):
        assert name in columns
    assert table_columns((LOAD_SCHEMA,), lean=False) == [
        "time",
        "measurement",
        "runner_label",
        "runner_group",
        "queued",
        "running",
    ]


# ---------------------------------------------------------------------------- parsing


def test_run_payload_gives_start_actor_and_pull_request() -> None:
    run = run_from_json(
        "o/r",
        {
            "id": 5,
            "run_started_at": "2026-10-01T06:00:03Z",
            "actor": {"login": "octocat", "id": 1},
            "pull_requests": [
                {
                    "url": "https://api.github.com/repos/o/r/pulls/17",
                    "id": 99,
                    "number": 17,
                    "head": {"ref": "f", "sha": "a", "repo": {"id": 1, "url": "u", "name": "r"}},
                    "base": {"ref": "main", "sha": "b", "repo": {"id": 1, "url": "u", "name": "r"}},
                },
                {"number": 18},
            ],
        },
    )
    assert run.run_started_at == BASE + 3 * S
    assert (run.actor, run.pr_number) == ("octocat", 17)


@pytest.mark.parametrize(
    "pull_requests", [[], None, "17", [None], [{"number": None}], [{"number": 0}], [{}]]
)
def test_a_run_without_a_usable_pull_request_has_none(pull_requests: object) -> None:
    run = run_from_json("o/r", {"id": 5, "pull_requests": pull_requests, "actor": None})
    assert (run.pr_number, run.actor) == (None, "")


def test_job_payload_gives_step_times_and_runner_group() -> None:
    job = job_from_json(
        {
            "id": 7,
            "runner_group_name": "GitHub Actions",
            "steps": [
                {
                    "name": "Set up job",
                    "status": "completed",
                    "conclusion": "success",
                    "number": 1,
                    "started_at": "2026-10-01T06:00:10Z",
                    "completed_at": "2026-10-01T06:00:12.000+00:00",
                },
                {"name": "Run", "status": "queued", "conclusion": None, "number": 2},
            ],
        }
    )
    assert job.runner_group == "GitHub Actions"
    assert job.steps == (
        Step(1, "Set up job", "success", BASE + 10 * S, BASE + 12 * S),
        Step(2, "Run", None),
    )


# ---------------------------------------------------------------------------- gatherer


class Keeping:
    def __init__(self) -> None:
        self.records: list[Record] = []

    def write(self, records: Any) -> None:
        self.records.extend(records)

    def retract(self, keys: Any) -> None:
        pass

    def close(self) -> None:
        pass


def gather(source: MemorySource, store: Store | None = None, **options: Any) -> tuple[Keeping, Any]:
    opts = GatherOptions(repos=("octo/app",), since=None, until=BASE + timedelta(days=1), **options)
    sink = Keeping()
    summary = Gatherer(source, opts, load_catalog(), store=store).run(sink)
    return sink, summary


def timed_job(job_id: int, **kw: Any) -> Job:
    return make_job(job_id, steps=STEPS[:2], **kw)


def test_steps_are_opt_in_and_runs_on_by_default() -> None:
    source = MemorySource()
    source.add(make_run(1), timed_job(10, conclusion="success"))
    sink, summary = gather(source)
    assert sorted(type(r).__name__ for r in sink.records) == ["JobRecord", "RunRecord"]
    sink, summary = gather(source, steps=True, runs=False)
    assert sorted(type(r).__name__ for r in sink.records) == ["JobRecord", *["StepRecord"] * 2]
    assert (summary.records, summary.points) == (1, {"steps": 2})


def test_unknown_labels_are_counted_for_the_summary() -> None:
    source = MemorySource()
    source.add(
        make_run(1),
        make_job(10, labels=("gpu", "big")),
        make_job(11, labels=("gpu", "big")),
        make_job(12, labels=("self-hosted", "gpu")),
        make_job(13, labels=()),
    )
    _, summary = gather(source)
    assert summary.unknown_labels == {"gpu,big": 2, "(no labels)": 1}


def test_a_run_stored_without_step_times_is_fetched_again_for_steps(tmp_path: Path) -> None:
    source = MemorySource()
    source.add(make_run(1), timed_job(10, conclusion="success"))
    with Store.open(tmp_path) as store:
        gather(source, store)
        # as a multivac without step times stored it
        store.db.execute("""UPDATE jobs SET steps = '[[1, "Set up job", "success"]]'""")
        sink, summary = gather(source, store)  # no steps wanted: the store serves
        assert summary.unchanged_runs == 1
        sink, summary = gather(source, store, steps=True)
        assert summary.unchanged_runs == 0
        assert sum(1 for r in sink.records if isinstance(r, StepRecord)) == 2
        sink, summary = gather(source, store, steps=True)  # now stored with times
        assert summary.unchanged_runs == 1
        assert sum(1 for r in sink.records if isinstance(r, StepRecord)) == 2


# ---------------------------------------------------------------------------- line protocol

NAMES = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    measurement=NAMES,
    tags=st.dictionaries(NAMES, NAMES, max_size=3),
    fields=st.dictionaries(NAMES, st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=3),
    time_ns=st.integers(0, 2**62),
)
def test_integer_records_take_a_faster_road_to_the_same_line(
    measurement: str, tags: dict[str, str], fields: dict[str, int], time_ns: int
) -> None:
    record = LoadRecord(measurement, time_ns, tags, fields)
    assert to_line(record) == to_point(record).to_line_protocol()


def test_runner_load_lines_read_back() -> None:
    (point,) = load_records([RunnerLoad("self-hosted, gpu=big", 1_790_000_040, 3, 2)])
    line = to_line(point)
    assert line == r"runner_load,runner_label=self-hosted\,\ gpu\=big queued=3i,running=2i " + str(
        1_790_000_040 * 10**9
    )
    assert parse_line(line) == point


def test_many_runner_load_lines_are_the_lines_of_each_record() -> None:
    shared = {"runner_label": "self-hosted, linux"}
    records: list[Record] = [
        LoadRecord("runner_load", 60 * 10**9 * i, shared, {"queued": i, "running": 2 * i})
        for i in range(3)
    ]
    # the same tags mapping with other fields, a fresh mapping, another record type
    records.append(LoadRecord("runner_load", 0, shared, {"queued": 1}))
    records.append(LoadRecord("runner_load", 0, {"runner_group": "Default"}, {"running": 4}))
    records.append(make_run_point())
    assert to_lines(records) == [to_point(r).to_line_protocol() for r in records]


@settings(max_examples=200, deadline=None)
@given(
    label=st.text(alphabet=st.sampled_from('ab {}0=, \\"\n#'), min_size=1, max_size=12),
    queued=st.integers(0, 10**6),
    running=st.integers(0, 10**6),
)
def test_runner_load_lines_of_any_label_are_points_lines(
    label: str, queued: int, running: int
) -> None:
    """The template path (braces in a label must not be read as its fields) writes what
    influxdb-client's Point writes."""
    (record,) = load_records([RunnerLoad(label, 1_790_000_040, queued, running)])
    assert to_lines([record, record]) == [to_point(record).to_line_protocol()] * 2
    load = MinuteLoad({label: {1_790_000_040 // 60: [queued, running]}}, 0)
    assert list(load_lines(load)) == [to_point(record).to_line_protocol() + "\n"]


def make_run_point() -> RunRecord:
    (point,) = run_records(make_run(5, actor="octocat"), [make_job(1, 5)], {})
    return point


@pytest.mark.parametrize("by", list(CapacityBy))
def test_load_points_are_the_records_of_the_load_rows(by: CapacityBy) -> None:
    jobs = [
        from_model(make_run(1), make_job(i, labels=labels, runner_group=group, queued=q, ran=r))
        for i, (labels, group, q, r) in enumerate(
            [
                (("ubuntu-latest",), "GitHub Actions", 5, 600),
                (("self-hosted", "gpu"), "Default", 3600, 900),
                ((), "", 30, 30),
            ]
        )
    ]
    load = minute_load([j for j in jobs if j is not None], by=by)
    points = list(load_points(load, by=by))
    assert points == list(load_records(load.rows(), by=by))
    assert len(points) > 60
    # capacity -f line-protocol writes these lines without the records
    assert "".join(load_lines(load, by=by)).splitlines() == to_lines(points)
