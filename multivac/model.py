"""The data that flows between stages, and the one definition of the record schema.

GitHub payloads become `Run`, `Job` and `Step` in github.py; `build_record` turns a job
(plus its classification) into the `JobRecord` that every sink writes. Durations,
platform and measurement are computed here and nowhere else.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, ClassVar, Self

if TYPE_CHECKING:
    from multivac.minutes.billing import PriceTable

# measurements that are not failure types of the catalog
SUCCESS = "successful_jobs"
CANCELLED = "cancelled"
UNKNOWN_FAILURE = "unknown_failure"
LOG_UNAVAILABLE = "log_unavailable"
TIMEOUT = "timeout"
#: measurements of the other record types
STEPS = "steps"
RUNS = "runs"
RUNNER_LOAD = "runner_load"

# GitHub's job conclusions, spelled once
SUCCEEDED = "success"
FAILED = "failure"
SKIPPED = "skipped"
JOB_CANCELLED = "cancelled"
TIMED_OUT = "timed_out"
#: conclusions whose jobs are classified by their log (and annotations)
FAILED_CONCLUSIONS = frozenset({FAILED, TIMED_OUT, "startup_failure"})
#: step conclusions that mark the step where a job stopped
STEP_FAILED = frozenset({FAILED, TIMED_OUT, JOB_CANCELLED})
#: conclusions a gather meets every day; others are named in its summary
USUAL_CONCLUSIONS = frozenset({SUCCEEDED, FAILED, JOB_CANCELLED, TIMED_OUT})
#: conclusions that are neither success nor failure; they keep their own measurement
OTHER_CONCLUSIONS = frozenset({"neutral", "action_required", "stale"})
#: measurements that do not count as failures in stats and reports
NOT_FAILURES = frozenset({SUCCESS, CANCELLED}) | OTHER_CONCLUSIONS

TAG_KEYS: tuple[str, ...] = (
    "repository",
    "workflow",
    "job_name",
    "job_id",
    "run_id",
    "run_attempt",
    "branch",
    "commit_sha",
    "platform",
    "status",
    "runner_label",
    "runner_group",
    "flaky",
)
#: tags that --lean-tags turns into fields, to keep the series count flat
LEAN_KEYS: tuple[str, ...] = ("job_id", "run_id", "run_attempt", "commit_sha")
FIELD_KEYS: tuple[str, ...] = (
    "queued_s",
    "in_progress_s",
    "runner_min",
    "billable_min",
    "cost_usd",
    "html_url",
    "runner_name",
    "failure_step",
    "rule",
    "evidence",
    "signature",
    "also",
)
_INT_LEAN_KEYS = frozenset({"job_id", "run_id", "run_attempt"})
MAX_STRING = 4096


@dataclass(frozen=True)
class Step:
    number: int
    name: str
    conclusion: str | None
    started_at: datetime | None = None
    completed_at: datetime | None = None


@dataclass(frozen=True)
class Run:
    id: int
    repository: str
    workflow: str
    workflow_path: str
    run_attempt: int
    branch: str
    commit_sha: str
    event: str
    status: str
    conclusion: str | None
    created_at: datetime | None
    updated_at: datetime | None
    html_url: str
    #: when the latest attempt started (GitHub resets it on a re-run)
    run_started_at: datetime | None = None
    actor: str = ""
    #: the first pull request GitHub links the run to (none for forks' pull requests)
    pr_number: int | None = None


@dataclass(frozen=True)
class Job:
    id: int
    run_id: int
    run_attempt: int
    name: str
    status: str
    conclusion: str | None
    created_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    labels: tuple[str, ...]
    runner_name: str
    html_url: str
    steps: tuple[Step, ...] = ()
    workflow: str = ""
    branch: str = ""
    commit_sha: str = ""
    #: the jobs API's runner_group_name ("GitHub Actions" for standard hosted runners)
    runner_group: str = ""

    @property
    def failed_step(self) -> Step | None:
        for step in self.steps:
            if step.conclusion in STEP_FAILED:
                return step
        return None


@dataclass(frozen=True)
class Classification:
    """Why a job failed, as found by classify.py or from annotations."""

    type: str
    rule: str
    step: str | None
    line_number: int | None
    evidence: str
    excerpt: str = ""
    also: str = ""  # types of steps that failed after the cause, comma-separated
    signature: str = ""  # short hash of the normalised evidence (signature.py)


#: tags that single out one job's point on their own (with measurement and time)
IDENTIFYING_TAGS = ("job_id",)


@dataclass(frozen=True)
class PointKey:
    """The identity of a point: measurement, tag set and time. Two records with the same
    key are one point in InfluxDB; a record whose key differs from what its job wrote
    before supersedes that point. The flaky retraction, `reclassify` and the store's
    emitted points all build the key here, and only here (`PointKey.of`).

    A delete names the point by `predicate_tags`: `job_id` when the key has it (with
    measurement and time it is unique), else every tag (--lean-tags, where a sub-second
    offset keeps jobs apart). A predicate cannot say "without tag X", so a retraction is
    always sent before the record that supersedes it (the spool keeps that order too)."""

    measurement: str
    tags: tuple[tuple[str, str], ...]
    time_ns: int

    @classmethod
    def identify(cls, measurement: str, tags: Mapping[str, str], time_ns: int) -> PointKey:
        return cls(measurement, tuple(sorted(tags.items())), time_ns)

    @classmethod
    def of(cls, record: Record) -> PointKey:
        return cls.identify(record.measurement, record.tags, record.time_ns)

    @property
    def predicate_tags(self) -> tuple[tuple[str, str], ...]:
        chosen = tuple((k, v) for k, v in self.tags if k in IDENTIFYING_TAGS)
        return chosen or self.tags

    def to_json(self) -> str:
        return json.dumps([self.measurement, [list(pair) for pair in self.tags], self.time_ns])

    @classmethod
    def from_json(cls, text: str) -> PointKey:
        measurement, tags, time_ns = json.loads(text)
        return cls(str(measurement), tuple((str(k), str(v)) for k, v in tags), int(time_ns))


@dataclass(frozen=True)
class Schema:
    """The columns of one record type in the tabular formats (CSV, JSON): every format
    writes the same keys. Line protocol, InfluxDB, annotated CSV and JSON Lines take
    each record's own tags and fields and need no schema."""

    kind: str
    tags: tuple[str, ...]
    fields: tuple[str, ...]
    lean: tuple[str, ...] = ()  # tags that --lean-tags writes as fields

    def columns(self, lean: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(tag keys, field keys) in column order."""
        if not lean or not self.lean:
            return self.tags, self.fields
        return tuple(k for k in self.tags if k not in self.lean), self.lean + self.fields


JOB_SCHEMA = Schema("job", TAG_KEYS, FIELD_KEYS, LEAN_KEYS)
#: a step carries its job's tags except `flaky`, which a later attempt can add after the
#: step's point was written (the step would then stand twice)
STEP_TAG_KEYS: tuple[str, ...] = (
    *(key for key in TAG_KEYS if key != "flaky"),
    "step",
    "step_number",
    "conclusion",
)
STEP_SCHEMA = Schema("step", STEP_TAG_KEYS, ("duration_s", "failure_type"), LEAN_KEYS)
RUN_TAG_KEYS: tuple[str, ...] = (
    "repository",
    "workflow",
    "branch",
    "event",
    "conclusion",
    "run_attempt",
)
RUN_FIELD_KEYS: tuple[str, ...] = (
    "duration_s",
    "queued_s",
    "jobs",
    "failed_jobs",
    "billable_min",
    "cost_usd",
    "pr_number",
    "actor",
    "html_url",
)
RUN_SCHEMA = Schema("run", RUN_TAG_KEYS, RUN_FIELD_KEYS)
#: `runner_group` instead of `runner_label` when capacity is counted by runner group
LOAD_SCHEMA = Schema("runner_load", ("runner_label", "runner_group"), ("queued", "running"))

# test results (docs/tests.md): the ids are fields from the start, one series per test
TEST_MEASUREMENT = "tests"
TEST_SUMMARY_MEASUREMENT = "test_summary"
TEST_TAG_KEYS: tuple[str, ...] = (
    "repository",
    "workflow",
    "job_name",
    "branch",
    "platform",
    "runner_label",
    "framework",
    "status",
    "test",
    "configuration",
)
TEST_FIELD_KEYS: tuple[str, ...] = (
    "job_id",
    "run_id",
    "run_attempt",
    "commit_sha",
    "duration_s",
    "message",
    "html_url",
)
TEST_SCHEMA = Schema("test", TEST_TAG_KEYS, TEST_FIELD_KEYS)
TEST_SUMMARY_SCHEMA = Schema(
    "test_summary",
    ("repository", "workflow", "job_name", "branch", "platform", "runner_label"),
    (
        "passed",
        "failed",
        "skipped",
        "hung",
        "flaky_tests",  # not `flaky`: that is the job record's tag, in the same CSV header
        "dropped",
        "job_id",
        "run_id",
        "run_attempt",
        "commit_sha",
        "html_url",
    ),
)

#: where a record goes in InfluxDB: the job bucket, or the tests bucket
#: (`INFLUX_TESTS_BUCKET`, default the job bucket). Each record type names its role.
JOBS_BUCKET = "jobs"
TESTS_BUCKET = "tests"
_TEST_MEASUREMENTS = frozenset({TEST_MEASUREMENT, TEST_SUMMARY_MEASUREMENT})


def bucket_role(measurement: str) -> str:
    """The bucket role of a point known only by its measurement (a spooled line, a key
    to delete); the measurements of test records are reserved for them."""
    return TESTS_BUCKET if measurement in _TEST_MEASUREMENTS else JOBS_BUCKET


def table_columns(schemas: Sequence[Schema], lean: bool) -> list[str]:
    """The header of a table holding records of these types: time, measurement, then
    every tag, then every field, each once, in schema order."""
    tags: dict[str, None] = {}
    fields: dict[str, None] = {}
    for schema in schemas:
        schema_tags, schema_fields = schema.columns(lean)
        tags.update(dict.fromkeys(schema_tags))
        fields.update(dict.fromkeys(schema_fields))
    fields = {k: None for k in fields if k not in tags}
    return ["time", "measurement", *tags, *fields]


@dataclass(frozen=True)
class Record:
    """A point, ready for any sink: measurement, tags, fields, time. Each record type
    (jobs, and later tests, steps, runs, runner load) is a subclass with its schema."""

    measurement: str
    time_ns: int
    tags: Mapping[str, str]
    fields: Mapping[str, float | int | str]
    job_id: int = 0  # the job it describes (0: none); keys the store, never written as such

    SCHEMA: ClassVar[Schema]
    BUCKET: ClassVar[str] = JOBS_BUCKET  # the bucket role (see `bucket_role`)

    @property
    def key(self) -> PointKey:
        return PointKey.of(self)

    def row(self, lean: bool) -> dict[str, Any]:
        """Every column of its schema (absent ones as None), for the tabular formats."""
        out: dict[str, Any] = {
            "time": format_time_ns(self.time_ns),
            "measurement": self.measurement,
        }
        tag_keys, field_keys = self.SCHEMA.columns(lean)
        for key in tag_keys:
            out[key] = self.tags.get(key)
        for key in field_keys:
            out[key] = self.fields.get(key)
        return out

    @classmethod
    def from_point(
        cls,
        measurement: str,
        time_ns: int,
        tags: Mapping[str, str],
        fields: Mapping[str, float | int | str],
    ) -> Self:
        """A record read back from a file: its job is the `job_id` tag or field."""
        found = tags.get("job_id", fields.get("job_id"))
        job_id = int(found) if isinstance(found, int | str) and str(found).isdigit() else 0
        return cls(measurement, time_ns, tags, fields, job_id)


@dataclass(frozen=True)
class JobRecord(Record):
    """One job attempt: measurement = its outcome or failure type."""

    SCHEMA: ClassVar[Schema] = JOB_SCHEMA


@dataclass(frozen=True)
class StepRecord(Record):
    """One completed step of a written job: measurement `steps`, time its start."""

    SCHEMA: ClassVar[Schema] = STEP_SCHEMA


@dataclass(frozen=True)
class RunRecord(Record):
    """One run attempt: measurement `runs`."""

    SCHEMA: ClassVar[Schema] = RUN_SCHEMA


@dataclass(frozen=True)
class LoadRecord(Record):
    """Jobs waiting for and running on one runner label in one minute: `runner_load`."""

    SCHEMA: ClassVar[Schema] = LOAD_SCHEMA


QUEUE = "queue"
QUEUE_SCHEMA = Schema("queue", ("runner_label",), ("queued", "running", "oldest_queued_s"))


@dataclass(frozen=True)
class QueueRecord(Record):
    """Live state of one runner label (from `serve`): the jobs queued and running at
    `time_ns`, and how long the oldest queued job has waited so far."""

    SCHEMA: ClassVar[Schema] = QUEUE_SCHEMA

    @classmethod
    def of(
        cls, runner_label: str, queued: int, running: int, oldest_queued_s: float, time_ns: int
    ) -> QueueRecord:
        return cls(
            measurement=QUEUE,
            time_ns=time_ns,
            tags={"runner_label": tag_safe(runner_label) or "none"},
            fields={
                "queued": queued,
                "running": running,
                "oldest_queued_s": float(oldest_queued_s),
            },
        )


@dataclass(frozen=True)
class TestRecord(Record):
    """One failed, hung or flaky test of one job (measurement `tests`). Passing tests
    are never points: the `test` tag is already the expensive one."""

    __test__ = False  # not a pytest test class, whatever its name says
    SCHEMA: ClassVar[Schema] = TEST_SCHEMA
    BUCKET: ClassVar[str] = TESTS_BUCKET


@dataclass(frozen=True)
class TestSummaryRecord(Record):
    """One job's test counts (measurement `test_summary`, with `--test-summary`)."""

    __test__ = False
    SCHEMA: ClassVar[Schema] = TEST_SUMMARY_SCHEMA
    BUCKET: ClassVar[str] = TESTS_BUCKET


#: the record types with a fixed measurement
_FIXED: dict[str, type[Record]] = {
    STEPS: StepRecord,
    RUNS: RunRecord,
    RUNNER_LOAD: LoadRecord,
    QUEUE: QueueRecord,
    TEST_MEASUREMENT: TestRecord,
    TEST_SUMMARY_MEASUREMENT: TestSummaryRecord,
}


def record_type(measurement: str) -> type[Record]:
    """The record type of a point read back: the other types have fixed measurements,
    every other measurement is a job's outcome or failure type."""
    return _FIXED.get(measurement, JobRecord)


def format_time_ns(ns: int) -> str:
    seconds, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac:09d}Z" if frac else f"{base}Z"


def to_ns(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def clean(text: str | None, limit: int = MAX_STRING) -> str:
    """One printable line: control characters (newlines included) become spaces."""
    if not text:
        return ""
    text = _CONTROL.sub(" ", text).strip()
    return text[:limit]


_AWKWARD_BACKSLASH = re.compile(r"\\(?=[\s,=\\]|$)")


def tag_safe(text: str | None, limit: int = 256) -> str:
    """A name or tag value that reads back unchanged from every line protocol parser.

    Control characters become spaces; a backslash stays, except where parsers disagree
    on it (before a space, comma, `=`, another backslash, or at the end), where it
    becomes `/`.
    """
    return _AWKWARD_BACKSLASH.sub("/", clean(text, limit))


# ---------------------------------------------------------------------------- platform


@cache
def _label_table() -> dict[str, Any]:
    raw = resources.files("multivac").joinpath("data/runner_labels.json").read_text("utf-8")
    table: dict[str, Any] = json.loads(raw)
    return table


def platform(labels: tuple[str, ...] | list[str]) -> str:
    """`linux`, `macos` or `windows`, with `-arch` when the labels tell it, else `unknown`."""
    table = _label_table()
    lowered = [label.strip().lower() for label in labels if label and label.strip()]
    for label in lowered:
        for pattern, os_name, arch in table["hosted"]:
            if fnmatch.fnmatchcase(label, pattern):
                return f"{os_name}-{arch}"
    os_found = next((table["os"][lb] for lb in lowered if lb in table["os"]), None)
    arch_found = next((table["arch"][lb] for lb in lowered if lb in table["arch"]), None)
    if os_found is None:
        return "unknown"
    return f"{os_found}-{arch_found}" if arch_found else os_found


# ---------------------------------------------------------------------------- records


def flaky_job_ids(jobs: Sequence[Job]) -> set[int]:
    """Failed attempts of a job whose later attempt (same run, same commit) succeeded."""
    succeeded: dict[str, int] = {}
    for job in jobs:
        if job.conclusion == SUCCEEDED:
            succeeded[job.name] = max(succeeded.get(job.name, 0), job.run_attempt)
    return {
        job.id
        for job in jobs
        if job.conclusion in FAILED_CONCLUSIONS and succeeded.get(job.name, 0) > job.run_attempt
    }


@dataclass
class Anomalies:
    """Oddities met while building records, reported in the end-of-run summary."""

    clamped: int = 0
    missing_times: int = 0

    def merge(self, other: Anomalies) -> None:
        self.clamped += other.clamped
        self.missing_times += other.missing_times


def measurement_for(job: Job, classification: Classification | None) -> str | None:
    """The measurement a job is keyed by; None for jobs left out (skipped, unfinished)."""
    conclusion = job.conclusion
    if conclusion == SKIPPED or job.status != "completed" or conclusion is None:
        return None
    if conclusion == SUCCEEDED:
        return SUCCESS
    if conclusion == JOB_CANCELLED:
        # a job past its timeout-minutes is reported cancelled; its annotation says so
        if classification is not None and classification.type == TIMEOUT:
            return TIMEOUT
        return CANCELLED
    if conclusion in FAILED_CONCLUSIONS:
        return classification.type if classification is not None else UNKNOWN_FAILURE
    # neutral, action_required, stale and future conclusions keep their own name; a
    # measurement never starts with `#` (that line protocol line would be a comment)
    return tag_safe(conclusion, 64).lstrip("#").strip() or None


def _seconds(end: datetime | None, start: datetime | None) -> float | None:
    if end is None or start is None:
        return None
    return (end - start).total_seconds()


@cache
def packaged_prices() -> PriceTable:
    """The price table shipped in multivac/data, read once."""
    from multivac.minutes.billing import load_price_table

    return load_price_table()


def lean_offset_ns(job_id: int) -> int:
    """A sub-second offset from the job id that keeps jobs with equal tags apart.

    Without the ids as tags, two jobs queued in the same second (GitHub times are whole
    seconds) would be one point. The millisecond part comes from the id's last three
    digits because some servers (VictoriaMetrics) keep only milliseconds; the
    microseconds add the next three digits for servers that keep nanoseconds.
    """
    return (job_id % 1000) * 1_000_000 + (job_id // 1000 % 1000) * 1000


def build_record(
    run: Run,
    job: Job,
    classification: Classification | None,
    *,
    lean: bool = False,
    flaky: bool = False,
    anomalies: Anomalies | None = None,
    prices: PriceTable | None = None,
) -> JobRecord | None:
    """The record of one job attempt, or None when the job is left out. Its minutes are
    billed with `prices` (default: the packaged price table)."""
    anomalies = anomalies if anomalies is not None else Anomalies()
    measurement = measurement_for(job, classification)
    if measurement is None:
        return None

    queued_at = job.created_at or job.started_at or run.created_at
    if queued_at is None:
        anomalies.missing_times += 1
        return None
    if job.created_at is None:
        anomalies.missing_times += 1

    fields: dict[str, float | int | str] = {}
    queued = _seconds(job.started_at, job.created_at)
    running = _seconds(job.completed_at, job.started_at)
    for key, value in (("queued_s", queued), ("in_progress_s", running)):
        if value is None:
            continue
        if value < 0:
            anomalies.clamped += 1
            value = 0.0
        fields[key] = float(value)
    bill = (prices or packaged_prices()).bill_job(job)
    fields["runner_min"] = bill.runner_min
    fields["billable_min"] = bill.billable_min
    # whole minutes times a rate: rounding only hides float noise (3 × 0.006)
    fields["cost_usd"] = round(bill.cost_usd, 6)

    html_url = job.html_url or run.html_url
    fields["html_url"] = (
        clean(html_url) or f"https://github.com/{run.repository}/actions/runs/{run.id}"
    )
    if job.runner_name:
        fields["runner_name"] = clean(job.runner_name)
    if classification is not None and measurement not in (SUCCESS, CANCELLED):
        step = classification.step or (job.failed_step.name if job.failed_step else "")
        if step:
            fields["failure_step"] = clean(step)
        if classification.rule:
            fields["rule"] = clean(classification.rule)
        if classification.evidence:
            fields["evidence"] = clean(classification.evidence)
        if classification.signature:
            fields["signature"] = classification.signature
        if classification.also:
            fields["also"] = clean(classification.also)
    elif measurement not in (SUCCESS, CANCELLED) and job.failed_step is not None:
        fields["failure_step"] = clean(job.failed_step.name)

    tags: dict[str, str] = {
        "repository": run.repository,
        "workflow": run.workflow or job.workflow,
        "job_name": job.name,
        "job_id": str(job.id),
        "run_id": str(run.id),
        "run_attempt": str(job.run_attempt or run.run_attempt),
        "branch": run.branch or job.branch,
        "commit_sha": run.commit_sha or job.commit_sha,
        "platform": platform(job.labels),
        "status": job.conclusion or "",
        "runner_label": ",".join(job.labels),
        "runner_group": job.runner_group,
    }
    if flaky:
        tags["flaky"] = "true"
    tags = {key: tag_safe(value) for key, value in tags.items()}
    tags = {key: value for key, value in tags.items() if value}

    time_ns = to_ns(queued_at)
    if lean:
        for key in LEAN_KEYS:
            moved = tags.pop(key, None)
            if moved is None:
                continue
            fields[key] = int(moved) if key in _INT_LEAN_KEYS and moved.isdigit() else moved
        time_ns += lean_offset_ns(job.id)
    return JobRecord(
        measurement=measurement, time_ns=time_ns, tags=tags, fields=fields, job_id=job.id
    )
