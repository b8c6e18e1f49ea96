"""The record schema: platform labels, payload parsing, line-protocol safety."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from multivac.github import job_from_json, next_link, run_from_json
from multivac.model import build_record, lean_offset_ns, platform, tag_safe
from multivac.sinks.lineproto import to_line


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["ubuntu-latest"], "linux-x64"),
        (["ubuntu-24.04-arm"], "linux-arm64"),
        (["ubuntu-22.04-arm"], "linux-arm64"),
        (["macos-14"], "macos-arm64"),
        (["macos-15"], "macos-arm64"),
        (["macos-26"], "macos-arm64"),
        (["macos-latest"], "macos-arm64"),
        (["macos-15-intel"], "macos-x64"),
        (["macos-14-large"], "macos-x64"),
        (["macos-13"], "macos-x64"),
        (["windows-latest"], "windows-x64"),
        (["windows-2025"], "windows-x64"),
        (["windows-11-arm"], "windows-arm64"),
        (["self-hosted", "Linux", "ARM64"], "linux-arm64"),
        (["self-hosted", "Linux", "X64"], "linux-x64"),
        (["self-hosted", "macOS"], "macos"),
        (["self-hosted", "gpu"], "unknown"),
        ([], "unknown"),
    ],
)
def test_platform_from_labels(labels: list[str], expected: str) -> None:
    assert platform(labels) == expected


def test_real_run_payload_parses(realdata: Path) -> None:
    data = json.loads((realdata / "ghalogs-pytables-run200" / "run.json").read_text())
    run = run_from_json("PyTables/PyTables", data["metadata"])
    assert run.id == 6261949618
    assert run.workflow == "Wheels"
    assert run.workflow_path == ".github/workflows/wheels.yml"
    assert run.branch == "releases/v3.9.0"
    assert run.created_at == datetime(2023, 9, 21, 12, 55, 26, tzinfo=UTC)
    assert run.status == "completed" and run.run_attempt == 1


def test_job_payload_with_nulls_never_crashes() -> None:
    job = job_from_json(
        {
            "id": 5,
            "run_id": 1,
            "name": None,
            "status": "completed",
            "conclusion": None,
            "created_at": None,
            "started_at": "garbage",
            "labels": None,
            "steps": None,
        }
    )
    assert job.created_at is None and job.started_at is None
    assert job.labels == () and job.steps == () and job.name == ""


def test_link_header_next() -> None:
    header = (
        '<https://api.github.com/repositories/1/actions/runs?page=2&per_page=100>; rel="next", '
        '<https://api.github.com/repositories/1/actions/runs?page=5&per_page=100>; rel="last"'
    )
    assert next_link({"link": header}).endswith("page=2&per_page=100")  # type: ignore[union-attr]
    assert next_link({}) is None


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("C:\\dir\\file", "C:\\dir\\file"),
        ("ends\\", "ends/"),
        ("a\\ b", "a/ b"),
        ("line\nbreak\ttab", "line break tab"),
        ("ü 日本 😀", "ü 日本 😀"),
    ],
)
def test_tag_values_are_made_safe(raw: str, safe: str) -> None:
    assert tag_safe(raw) == safe


def test_lean_offsets_keep_neighbouring_ids_apart_in_milliseconds() -> None:
    offsets = {lean_offset_ns(30_000_000_000 + i) // 1_000_000 for i in range(1000)}
    assert len(offsets) == 1000
    assert all(lean_offset_ns(i) < 1_000_000_000 for i in (0, 999_999_999, 12_345_678_901))


def test_no_raw_newline_reaches_line_protocol() -> None:
    run = run_from_json(
        "o/r",
        {
            "id": 1,
            "name": "CI\nevil",
            "status": "completed",
            "head_branch": "main",
            "head_sha": "abc",
            "created_at": "2026-10-01T12:00:00Z",
        },
    )
    job = job_from_json(
        {
            "id": 2,
            "run_id": 1,
            "name": 'x "quoted"\r\ny',
            "status": "completed",
            "conclusion": "failure",
            "created_at": "2026-10-01T12:00:00Z",
            "started_at": "2026-10-01T12:00:05Z",
            "completed_at": "2026-10-01T12:01:05Z",
            "labels": ["ubuntu-latest"],
            "runner_name": "r\n1",
            "html_url": "https://x/2",
        }
    )
    record = build_record(run, job, None)
    assert record is not None
    line = to_line(record)
    assert "\n" not in line and "\r" not in line
    assert record.fields["queued_s"] == 5.0 and record.fields["in_progress_s"] == 60.0


def test_a_table_of_several_record_types_has_each_column_once() -> None:
    from multivac.model import JOB_SCHEMA, Schema, table_columns

    steps = Schema("step", (*JOB_SCHEMA.tags, "step", "step_number"), ("duration_s", "rule"))
    header = table_columns([JOB_SCHEMA, steps], lean=False)
    assert header[:2] == ["time", "measurement"]
    assert len(header) == len(set(header))
    assert header.index("step") < header.index("queued_s")  # tags, then fields
    assert header[-1] == "duration_s"
    lean = table_columns([JOB_SCHEMA], lean=True)
    assert "job_id" in lean and lean.index("job_id") > lean.index("runner_label")
