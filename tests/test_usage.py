"""Billing (runner type, whole minutes, multipliers, price table) and `usage` aggregation."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multivac.errors import ConfigError
from multivac.minutes import (
    GroupBy,
    Period,
    RunnerKind,
    UsageFormat,
    UsageJob,
    from_model,
    load_price_table,
    period_start,
    usage,
    usage_jobs,
    whole_minutes,
)
from multivac.minutes.usage import render, unknown_labels_note
from multivac.model import Classification, Job, Run
from multivac.store import Store

PRICES = load_price_table()


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def ujob(
    job_id: int,
    *,
    created: str = "2026-10-01T10:00:00",
    queued_s: float = 0,
    run_s: float | None = 60,
    labels: tuple[str, ...] = ("ubuntu-latest",),
    group: str = "",
    run_id: int | None = None,
    attempt: int = 1,
    name: str = "build",
    workflow: str = "CI",
    repository: str = "octo/repo",
    conclusion: str = "success",
    failure_type: str | None = None,
) -> UsageJob:
    created_s = ts(created)
    started_s = created_s + queued_s if run_s is not None else None
    completed_s = started_s + run_s if started_s is not None and run_s is not None else None
    if failure_type is None:
        failure_type = {"success": "successful_jobs", "cancelled": "cancelled"}.get(
            conclusion, "unknown_failure"
        )
    return UsageJob(
        job_id=job_id,
        run_id=run_id if run_id is not None else job_id,
        run_attempt=attempt,
        repository=repository,
        workflow=workflow,
        job_name=name,
        conclusion=conclusion,
        failure_type=failure_type,
        labels=labels,
        label=",".join(labels),
        runner_group=group,
        created_s=created_s,
        started_s=started_s,
        completed_s=completed_s,
        at_s=created_s,
    )


# ---------------------------------------------------------------------------- runner type

RUNNERS = [
    # (labels, runner group) → (kind, sku, multiplier, unknown)
    (("ubuntu-latest",), "GitHub Actions", RunnerKind.STANDARD, "linux", 1, False),
    (("ubuntu-24.04",), "", RunnerKind.STANDARD, "linux", 1, False),
    (("Ubuntu-22.04",), "", RunnerKind.STANDARD, "linux", 1, False),
    (("ubuntu-slim",), "", RunnerKind.STANDARD, "linux_slim", 1, False),
    (("ubuntu-24.04-arm",), "", RunnerKind.STANDARD, "linux_2_core_arm", 1, False),
    (("windows-latest",), "GitHub Actions", RunnerKind.STANDARD, "windows", 2, False),
    (("windows-11-arm",), "", RunnerKind.STANDARD, "windows_2_core_arm", 2, False),
    (("macos-15",), "GitHub Actions", RunnerKind.STANDARD, "macos", 10, False),
    (("macos-13",), "", RunnerKind.STANDARD, "macos", 10, False),
    # larger runners: GitHub's macOS sizes and org-named Linux/Windows runners
    (("macos-15-xlarge",), "GitHub Actions", RunnerKind.LARGER, "macos_xl", 1, False),
    (("macos-14-large",), "", RunnerKind.LARGER, "macos_l", 1, False),
    (("ubuntu-24.04-16core-64gb",), "Default", RunnerKind.LARGER, "linux_16_core", 1, False),
    (("ubuntu-22.04-4core",), "big", RunnerKind.LARGER, "linux_4_core", 1, False),
    (("ubuntu-22.04-64core",), "big", RunnerKind.LARGER, "linux_64_core", 1, False),
    (("ubuntu-latest-8-cores",), "", RunnerKind.LARGER, "linux_8_core", 1, False),
    (("ubuntu-24.04-arm-4core",), "", RunnerKind.LARGER, "linux_4_core_arm", 1, False),
    (("windows-2022-16core",), "", RunnerKind.LARGER, "windows_16_core", 1, False),
    (("gpu-t4-4-core",), "", RunnerKind.LARGER, "linux_4_core_gpu", 1, False),
    # self-hosted: named so, or not nameable (then flagged unknown)
    (("self-hosted", "linux", "x64"), "Default", RunnerKind.SELF_HOSTED, "self_hosted", 0, False),
    (("Self-Hosted", "ubuntu-latest"), "", RunnerKind.SELF_HOSTED, "self_hosted", 0, False),
    (("linux", "gpu"), "", RunnerKind.SELF_HOSTED, "self_hosted", 0, True),
    (("my-runner",), "GitHub Actions", RunnerKind.SELF_HOSTED, "self_hosted", 0, True),
    ((), "", RunnerKind.SELF_HOSTED, "self_hosted", 0, True),
    # near misses: a hosted image name, but the job ran in an org's own runner group
    (("ubuntu-22.04",), "Default", RunnerKind.SELF_HOSTED, "self_hosted", 0, True),
    (("windows-latest",), "build-farm", RunnerKind.SELF_HOSTED, "self_hosted", 0, True),
    # near misses: "4core" inside "14core" or "64core" is no 4-core runner
    (("ubuntu-22.04-14core",), "", RunnerKind.STANDARD, "linux", 1, False),
    (("macos-15-largest",), "", RunnerKind.SELF_HOSTED, "self_hosted", 0, True),
]


@pytest.mark.parametrize(("labels", "group", "kind", "sku", "multiplier", "unknown"), RUNNERS)
def test_runner_type_from_labels_and_group(
    labels: tuple[str, ...], group: str, kind: RunnerKind, sku: str, multiplier: int, unknown: bool
) -> None:
    runner = PRICES.runner(labels, group)
    assert (runner.kind, runner.sku, runner.multiplier, runner.unknown) == (
        kind,
        sku,
        multiplier,
        unknown,
    )
    assert runner.usd_per_minute == PRICES.rates[sku]


def test_price_table_says_where_its_figures_come_from() -> None:
    assert PRICES.source.startswith("https://docs.github.com/")
    datetime.strptime(PRICES.taken, "%Y-%m-%d")
    raw = json.loads(resources.files("multivac").joinpath("data/prices.json").read_text("utf-8"))
    for sku, entry in raw["skus"].items():
        assert entry["source"].startswith("https://docs.github.com/"), sku
    assert PRICES.rates["self_hosted"] == 0.0
    assert PRICES.multipliers == {"linux": 1, "windows": 2, "macos": 10}


def test_the_usage_page_lists_every_packaged_price() -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "usage.md").read_text("utf-8")
    listed = {
        match.group(1): float(match.group(2))
        for match in re.finditer(r"^\| `(\w+)` \| [^|]+ \| ([0-9.]+) \|$", page, re.MULTILINE)
    }
    assert listed == dict(PRICES.rates)
    assert PRICES.taken in page and PRICES.source in page


# ---------------------------------------------------------------------------- minutes


@pytest.mark.parametrize(
    ("seconds", "minutes"),
    [(0, 0), (-3, 0), (0.4, 1), (1, 1), (59, 1), (60, 1), (60.5, 2), (61, 2), (3600, 60)],
)
def test_each_job_rounds_up_to_a_whole_minute(seconds: float, minutes: int) -> None:
    assert whole_minutes(seconds) == minutes


@pytest.mark.parametrize(
    ("labels", "seconds", "billable", "cost"),
    [
        (("ubuntu-latest",), 90, 2, 2 * 0.006),
        (("windows-2025",), 90, 4, 2 * 0.010),
        (("macos-15",), 90, 20, 2 * 0.062),
        (("macos-15",), 600, 100, 10 * 0.062),
        (("ubuntu-24.04-16core",), 90, 2, 2 * 0.042),
        (("self-hosted", "linux"), 90, 0, 0.0),
        (("ubuntu-latest",), None, 0, 0.0),
    ],
)
def test_bill_applies_the_multiplier_to_whole_minutes(
    labels: tuple[str, ...], seconds: float | None, billable: int, cost: float
) -> None:
    bill = PRICES.bill(labels, "", seconds)
    assert bill.billable_min == billable
    assert bill.cost_usd == pytest.approx(cost)
    assert bill.runner_min == pytest.approx((seconds or 0) / 60)


def test_two_short_jobs_bill_two_minutes_not_one() -> None:
    report = usage([ujob(1, run_s=20), ujob(2, run_s=20)], PRICES)
    (row,) = report.rows
    assert row.runner_minutes == pytest.approx(40 / 60)
    assert row.billable_minutes == 2


def test_bill_job_reads_the_job_times() -> None:
    start = datetime(2026, 10, 1, 10, tzinfo=UTC)
    job = Job(
        id=1,
        run_id=1,
        run_attempt=1,
        name="b",
        status="completed",
        conclusion="success",
        created_at=start,
        started_at=start,
        completed_at=start + timedelta(seconds=61),
        labels=("windows-latest",),
        runner_name="",
        html_url="",
        runner_group="GitHub Actions",
    )
    bill = PRICES.bill_job(job)
    assert (bill.billable_min, bill.runner.sku) == (4, "windows")


def test_self_hosted_minutes_count_but_cost_nothing() -> None:
    report = usage(
        [ujob(1, run_s=600, labels=("self-hosted", "linux"), group="Default")],
        PRICES,
    )
    (row,) = report.rows
    assert (row.jobs, row.runner_minutes, row.billable_minutes, row.cost_usd) == (1, 10, 0, 0)
    assert report.unknown_labels == {}


def test_unknown_labels_are_counted_as_self_hosted_and_named() -> None:
    report = usage(
        [ujob(1, labels=("gpu", "linux")), ujob(2, labels=("gpu", "linux")), ujob(3)], PRICES
    )
    assert report.unknown_labels == {"gpu,linux": 2}
    gpu = next(row for row in report.rows if row.group == "gpu,linux")
    assert (gpu.billable_minutes, gpu.cost_usd) == (0, 0)
    note = unknown_labels_note(report)
    assert note is not None and "gpu,linux (2 jobs)" in note and "--price-table" in note
    assert unknown_labels_note(usage([ujob(1)], PRICES)) is None


# ---------------------------------------------------------------------------- price table


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_price_table_override_replaces_rates_and_adds_rules(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "prices.json",
        json.dumps(
            {
                "taken": "2027-01-05",
                "source": "our contract",
                "skus": {"linux": 0.004, "self_hosted": 0.002, "gpu_box": {"usd_per_minute": 0.5}},
                "larger": [["big-*", "linux_8_core"], ["cuda-*", "gpu_box"]],
            }
        ),
    )
    table = load_price_table(path)
    assert (table.taken, table.source) == ("2027-01-05", "our contract")
    assert table.bill(("ubuntu-latest",), "", 60).cost_usd == pytest.approx(0.004)
    assert table.runner(("big-runner",), "Default").sku == "linux_8_core"
    assert table.bill(("cuda-1",), "", 120).cost_usd == pytest.approx(1.0)
    # the packaged rules and rates still apply where the file is silent
    assert table.runner(("macos-15",), "").usd_per_minute == PRICES.rates["macos"]
    assert table.bill(("self-hosted",), "", 60).cost_usd == pytest.approx(0.002)
    assert table.bill(("self-hosted",), "", 60).billable_min == 0


def test_price_table_override_in_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "prices.yaml", "skus:\n  windows: 0.02\nmultipliers:\n  windows: 3\n")
    table = load_price_table(path)
    bill = table.bill(("windows-latest",), "", 60)
    assert (bill.billable_min, bill.cost_usd) == (3, pytest.approx(0.02))
    assert str(path) in table.taken


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("p.json", None, "cannot read the price table"),
        ("p.json", "{", "is not valid JSON"),
        ("p.yaml", "skus: [", "is not valid YAML"),
        ("p.json", "[1, 2]", "must hold an object"),
        ("p.json", '{"sku": {}}', "unknown keys: sku"),
        ("p.json", '{"skus": []}', "'skus' must be an object"),
        ("p.json", '{"skus": {"linux": -1}}', "rate of SKU 'linux' must be a non-negative"),
        ("p.json", '{"skus": {"linux": "cheap"}}', "rate of SKU 'linux'"),
        ("p.json", '{"skus": {"linux": true}}', "rate of SKU 'linux'"),
        ("p.json", '{"skus": {"x": {"usd": 1}}}', "rate of SKU 'x'"),
        ("p.json", '{"larger": [["big-*", "nope"]]}', "names SKU 'nope', which has no rate"),
        ("p.json", '{"larger": [["big-*"]]}', "must be a [label glob, SKU] pair"),
        ("p.json", '{"larger": {"big-*": "linux"}}', "'larger' must be a list"),
        ("p.json", '{"multipliers": {"linux": 1.5}}', "multiplier of 'linux'"),
        ("p.json", '{"standard_platforms": {"linux-x64": "nope"}}', "names SKU 'nope'"),
    ],
)
def test_a_bad_price_table_is_one_sentence(
    tmp_path: Path, name: str, text: str | None, message: str
) -> None:
    path = tmp_path / name if text is None else write(tmp_path, name, text)
    with pytest.raises(ConfigError) as caught:
        load_price_table(path)
    said = str(caught.value)
    assert message in said
    assert str(path) in said
    assert said.endswith(".") and "\n" not in said


# ---------------------------------------------------------------------------- periods


@pytest.mark.parametrize(
    ("moment", "period", "first"),
    [
        ("2026-10-01T00:00:00", Period.DAY, "2026-10-01"),
        ("2026-10-01T23:59:59", Period.DAY, "2026-10-01"),
        ("2026-10-02T00:00:00", Period.DAY, "2026-10-02"),
        ("2026-10-04T23:00:00", Period.WEEK, "2026-09-28"),  # a Sunday: week from Monday
        ("2026-10-05T00:00:00", Period.WEEK, "2026-10-05"),  # the Monday after
        ("2026-12-31T23:59:59", Period.MONTH, "2026-12-01"),
        ("2027-01-01T00:00:00", Period.MONTH, "2027-01-01"),
        ("2026-01-01T12:00:00", Period.WEEK, "2025-12-29"),  # a week across new year
    ],
)
def test_period_is_named_by_its_first_day(moment: str, period: Period, first: str) -> None:
    assert period_start(ts(moment), period) == first


def test_a_job_running_past_midnight_counts_whole_on_its_first_day() -> None:
    late = ujob(1, created="2026-10-01T23:50:00", queued_s=300, run_s=3600)
    report = usage([late], PRICES, period=Period.DAY)
    (row,) = report.rows
    assert row.period == "2026-10-01"
    assert (row.runner_minutes, row.billable_minutes) == (60, 60)


def test_periods_and_groups_are_sorted() -> None:
    jobs = [
        ujob(1, created="2026-10-02T08:00:00", labels=("windows-latest",)),
        ujob(2, created="2026-10-01T08:00:00", labels=("windows-latest",)),
        ujob(3, created="2026-10-01T09:00:00"),
    ]
    report = usage(jobs, PRICES)
    assert [(row.period, row.group) for row in report.rows] == [
        ("2026-10-01", "ubuntu-latest"),
        ("2026-10-01", "windows-latest"),
        ("2026-10-02", "windows-latest"),
    ]
    monthly = usage(jobs, PRICES, period=Period.MONTH)
    assert [(row.period, row.jobs) for row in monthly.rows] == [
        ("2026-10-01", 1),
        ("2026-10-01", 2),
    ]


@pytest.mark.parametrize(
    ("by", "groups"),
    [
        (GroupBy.LABEL, {"ubuntu-latest": 2, "macos-15": 1}),
        (GroupBy.WORKFLOW, {"CI": 2, "Release": 1}),
        (GroupBy.REPOSITORY, {"octo/a": 1, "octo/b": 2}),
        (GroupBy.JOB, {"CI / build": 1, "CI / test": 1, "Release / build": 1}),
        (GroupBy.FAILURE_TYPE, {"test_failure": 1}),
    ],
)
def test_group_by(by: GroupBy, groups: dict[str, int]) -> None:
    jobs = [
        ujob(1, repository="octo/a", workflow="CI", name="build"),
        ujob(
            2,
            repository="octo/b",
            workflow="CI",
            name="test",
            conclusion="failure",
            failure_type="test_failure",
        ),
        ujob(3, repository="octo/b", workflow="Release", name="build", labels=("macos-15",)),
    ]
    report = usage(jobs, PRICES, by=by)
    assert {row.group: row.jobs for row in report.rows} == groups


# ---------------------------------------------------------------------------- re-runs


def test_rerun_attempts_each_count_their_own_minutes() -> None:
    jobs = [
        ujob(1, run_id=9, attempt=1, run_s=300, conclusion="failure", failure_type="test_failure"),
        ujob(2, run_id=9, attempt=2, created="2026-10-01T11:00:00", run_s=240),
    ]
    (row,) = usage(jobs, PRICES).rows
    assert (row.jobs, row.runner_minutes, row.billable_minutes) == (2, 9, 9)


# Each case: jobs as (id, attempt, name, conclusion, failure type, minutes), and the
# expected {failure type: (jobs, minutes)} of `--by failure_type`.
RERUNS = [
    pytest.param(
        [(1, 1, "test", "failure", "test_failure", 5), (2, 2, "test", "success", None, 4)],
        {"test_failure": (2, 9)},
        id="failed-then-passed",
    ),
    pytest.param(
        [
            (1, 1, "test", "failure", "test_failure", 5),
            (2, 2, "test", "failure", "infrastructure", 3),
            (3, 3, "test", "success", None, 4),
        ],
        {"test_failure": (1, 5), "infrastructure": (2, 7)},
        id="chain-charges-each-rerun-to-the-failure-before-it",
    ),
    pytest.param(
        [
            (1, 1, "build", "success", None, 2),
            (2, 1, "test", "failure", "test_failure", 5),
            (3, 2, "build", "success", None, 2),
            (4, 2, "test", "success", None, 5),
        ],
        {"test_failure": (3, 12)},
        id="re-run-all-charges-every-job-of-the-attempt",
    ),
    pytest.param(
        [
            (1, 1, "lint", "failure", "lint", 1),
            (2, 1, "a", "failure", "test_failure", 5),
            (3, 1, "b", "failure", "test_failure", 5),
            (4, 2, "lint", "success", None, 1),
            (5, 2, "deploy", "success", None, 3),
        ],
        {"lint": (2, 2), "test_failure": (3, 13)},
        id="same-name-first-then-the-attempt's-commonest-failure",
    ),
    pytest.param(
        [(1, 1, "test", "success", None, 5), (2, 2, "test", "success", None, 5)],
        {},
        id="re-run-of-a-green-run-costs-failures-nothing",
    ),
    pytest.param(
        [(1, 1, "test", "cancelled", None, 5), (2, 2, "test", "success", None, 5)],
        {},
        id="a-cancel-is-no-failure",
    ),
    pytest.param(
        [(1, 1, "test", "cancelled", "timeout", 60), (2, 2, "test", "success", None, 5)],
        {"timeout": (2, 65)},
        id="a-timeout-is-a-failure",
    ),
]


@pytest.mark.parametrize(("spec", "expected"), RERUNS)
def test_failure_type_counts_failed_attempts_and_the_reruns_they_caused(
    spec: list[tuple[int, int, str, str, str | None, int]],
    expected: dict[str, tuple[int, int]],
) -> None:
    jobs = [
        ujob(
            job_id,
            run_id=7,
            attempt=attempt,
            name=name,
            conclusion=conclusion,
            failure_type=kind,
            run_s=minutes * 60,
            created=f"2026-10-01T{9 + attempt:02d}:00:00",
        )
        for job_id, attempt, name, conclusion, kind, minutes in spec
    ]
    jobs.append(ujob(99, run_id=8, run_s=600))  # an unrelated green run
    report = usage(jobs, PRICES, by=GroupBy.FAILURE_TYPE, period=Period.MONTH)
    found = {row.group: (row.jobs, round(row.runner_minutes)) for row in report.rows}
    assert found == expected


# ---------------------------------------------------------------------------- output


def sample_report() -> tuple[list[UsageJob], GroupBy]:
    jobs = [
        ujob(1, run_s=61),
        ujob(2, run_s=30, labels=("macos-15",)),
        ujob(3, created="2026-10-02T01:00:00", labels=("self-hosted", "linux")),
    ]
    return jobs, GroupBy.LABEL


def test_json_is_an_array_of_objects_with_the_documented_keys() -> None:
    jobs, by = sample_report()
    data = json.loads(render(usage(jobs, PRICES, by=by), UsageFormat.JSON))
    assert isinstance(data, list) and len(data) == 3
    for item in data:
        assert list(item) == [
            "period",
            "group",
            "jobs",
            "runner_minutes",
            "billable_minutes",
            "cost_usd",
        ]
    assert data[0] == {
        "period": "2026-10-01",
        "group": "macos-15",
        "jobs": 1,
        "runner_minutes": 0.5,
        "billable_minutes": 10,
        "cost_usd": 0.062,
    }
    assert render(usage([], PRICES), UsageFormat.JSON) == "[]\n"


def test_csv_has_a_header_and_one_line_per_row() -> None:
    jobs, by = sample_report()
    rows = list(csv.DictReader(io.StringIO(render(usage(jobs, PRICES, by=by), UsageFormat.CSV))))
    assert [row["group"] for row in rows] == ["macos-15", "ubuntu-latest", "self-hosted,linux"]
    assert rows[1]["billable_minutes"] == "2"
    assert float(rows[1]["cost_usd"]) == pytest.approx(0.012)


def test_table_aligns_columns_and_ends_with_a_total() -> None:
    jobs, by = sample_report()
    text = render(usage(jobs, PRICES, by=by), UsageFormat.TABLE, by=by)
    lines = text.splitlines()
    assert lines[0].startswith("period      label")
    assert lines[0].endswith("runner min  billable min  cost USD")
    assert lines[-1].split() == ["total", "3", "2.5", "12", "0.07"]
    assert len({len(line) for line in lines[1:-1]}) == 1


# ---------------------------------------------------------------------------- from the store


def stored(tmp_path: Path) -> Store:
    store = Store.open(tmp_path / "state")
    base = datetime(2026, 10, 1, 23, 50, tzinfo=UTC)
    run = Run(
        id=100,
        repository="octo/repo",
        workflow="CI",
        workflow_path=".github/workflows/ci.yml",
        run_attempt=2,
        branch="main",
        commit_sha="abc",
        event="push",
        status="completed",
        conclusion="success",
        created_at=base,
        updated_at=base + timedelta(hours=2),
        html_url="https://github.com/octo/repo/actions/runs/100",
    )

    def job(job_id: int, attempt: int, conclusion: str, offset_min: int, **extra: object) -> Job:
        created = base + timedelta(minutes=offset_min)
        fields: dict[str, object] = {
            "id": job_id,
            "run_id": 100,
            "run_attempt": attempt,
            "name": "test",
            "status": "completed",
            "conclusion": conclusion,
            "created_at": created,
            "started_at": created + timedelta(seconds=30),
            "completed_at": created + timedelta(seconds=30 + 125),
            "labels": ("ubuntu-latest",),
            "runner_name": "GitHub Actions 2",
            "html_url": "",
        }
        fields.update(extra)
        return Job(**fields)  # type: ignore[arg-type]

    jobs = [
        job(1, 1, "failure", 0),
        job(2, 2, "success", 60),
        job(3, 1, "skipped", 0, started_at=None, completed_at=None),
        job(4, 1, "cancelled", 1, started_at=None),
        job(5, 1, "success", 2, created_at=None, labels=("macos-15",)),
    ]
    kinds = {1: Classification("test_failure", "pytest", "Run tests", 10, "FAILED x")}
    store.save_run(run, jobs, kinds)
    return store


def test_store_query_reads_what_the_model_would_build(tmp_path: Path) -> None:
    with stored(tmp_path) as store:
        fast = sorted(usage_jobs(store), key=lambda job: job.job_id)
        slow = [
            built
            for item in store.stored_jobs([], None, None)
            if (built := from_model(item.run, item.job, item.classification)) is not None
        ]
    slow.sort(key=lambda job: job.job_id)
    assert fast == slow
    assert [job.job_id for job in fast] == [1, 2, 4, 5]  # the skipped job has no record
    assert fast[0].failure_type == "test_failure"
    assert fast[3].at_s == fast[3].started_s  # no created_at: started_at is its time


@pytest.mark.parametrize(
    ("since", "until", "ids"),
    [
        (None, None, [1, 2, 4, 5]),
        ("2026-10-02T00:00:00", None, [2]),  # jobs queued from 23:50 belong to the day before
        (None, "2026-10-01T23:59:59", [1, 4, 5]),
        ("2026-10-01T23:52:30", "2026-10-01T23:52:30", [5]),  # no created_at: started_at
        ("2026-10-02T00:50:00", "2026-10-02T00:50:00", [2]),
    ],
)
def test_store_query_window_is_on_the_jobs_own_time(
    tmp_path: Path, since: str | None, until: str | None, ids: list[int]
) -> None:
    def moment(text: str | None) -> datetime | None:
        return datetime.fromisoformat(text).replace(tzinfo=UTC) if text else None

    with stored(tmp_path) as store:
        found = usage_jobs(store, ["octo/repo"], moment(since), moment(until))
        assert sorted(job.job_id for job in found) == ids
        assert usage_jobs(store, ["octo/other"]) == []


def test_usage_from_the_store_end_to_end(tmp_path: Path) -> None:
    with stored(tmp_path) as store:
        report = usage(usage_jobs(store), PRICES, by=GroupBy.FAILURE_TYPE)
    # attempt 1 failed (155 s → 3 min) and caused attempt 2 (3 min), both on 10-01/10-02
    assert [(row.period, row.group, row.billable_minutes) for row in report.rows] == [
        ("2026-10-01", "test_failure", 3),
        ("2026-10-02", "test_failure", 3),
    ]


# ---------------------------------------------------------------------------- invariants

_LABELS = [("ubuntu-latest",), ("windows-2022",), ("macos-15",), ("self-hosted", "x"), ("odd",)]
_usage_jobs = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=90 * 86_400),  # created, seconds into the quarter
        st.one_of(st.none(), st.integers(min_value=0, max_value=4 * 3600)),  # run time
        st.sampled_from(_LABELS),
        st.sampled_from(["CI", "Nightly"]),
        st.sampled_from(["octo/a", "octo/b"]),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(_usage_jobs, st.sampled_from(list(Period)))
def test_every_grouping_adds_up_to_the_sum_of_the_jobs_bills(
    spec: list[tuple[int, int | None, tuple[str, ...], str, str]], period: Period
) -> None:
    jobs = []
    for index, (offset, run_s, labels, workflow, repository) in enumerate(spec):
        created = datetime(2026, 10, 1, tzinfo=UTC) + timedelta(seconds=offset)
        jobs.append(
            ujob(
                index,
                created=created.isoformat()[:19],
                run_s=run_s,
                labels=labels,
                workflow=workflow,
                repository=repository,
            )
        )
    bills = [PRICES.bill(job.labels, job.runner_group, job.in_progress_s) for job in jobs]
    for by in (GroupBy.LABEL, GroupBy.WORKFLOW, GroupBy.REPOSITORY, GroupBy.JOB):
        rows = usage(jobs, PRICES, by=by, period=period).rows
        assert sum(row.jobs for row in rows) == len(jobs)
        assert sum(row.billable_minutes for row in rows) == sum(b.billable_min for b in bills)
        assert sum(row.runner_minutes for row in rows) == pytest.approx(
            sum(b.runner_min for b in bills), abs=1e-4
        )
        assert sum(row.cost_usd for row in rows) == pytest.approx(
            sum(b.cost_usd for b in bills), abs=1e-4
        )
        for row in rows:
            assert period_start(ts(row.period), period) == row.period
