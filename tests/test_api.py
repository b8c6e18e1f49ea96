"""The Python API: every example of docs/api.md runs as written (in a fresh interpreter,
against the GitHub stand-in and a real VictoriaMetrics), and the surface is typed and
exported."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import multivac
from multivac.errors import IngestError
from tests.conftest import TOKEN
from tests.ghserver import FakeGitHub
from tests.servers import VictoriaMetrics

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "api.md"
NOW = datetime.now(UTC).replace(microsecond=0)
INFLUX_TOKEN = "api-influx-token-0123456789"
FAILING_LOG = (
    "2026-10-01T12:00:00.0000000Z ##[group]Run pytest\n"
    "2026-10-01T12:00:01.0000000Z FAILED tests/test_api.py::test_total - assert 3 == 4\n"
    "2026-10-01T12:00:01.0000000Z ##[error]Process completed with exit code 1.\n"
)


def examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


EXAMPLES = examples()


def test_the_page_has_an_example_of_each_part() -> None:
    assert len(EXAMPLES) == 4
    for name in ("gather_records", "classify_log", "open_writer"):
        assert any(f"multivac.{name}(" in code for code in EXAMPLES), name


@pytest.fixture
def world(ghserver: FakeGitHub, vm: VictoriaMetrics, tmp_path: Path) -> dict[str, str]:
    repo = ghserver.add_repo("octo-org/hello-world")
    for hours in (5, 3, 1):
        run = repo.add_run(created_at=NOW - timedelta(hours=hours), conclusion="failure")
        run.add_job("build", conclusion="success", created_at=NOW - timedelta(hours=hours))
        run.add_job(
            "test",
            conclusion="failure",
            created_at=NOW - timedelta(hours=hours),
            log=FAILING_LOG,
        )
    (tmp_path / "job.log").write_text(FAILING_LOG, encoding="utf-8")
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INFLUX"))},
        "GITHUB_API_URL": ghserver.url,
        "GITHUB_TOKEN": TOKEN,
        "INFLUX_URL": vm.url,
        "INFLUX_TOKEN": INFLUX_TOKEN,
        "INFLUX_ORG": "acme",
        "INFLUX_BUCKET": "ci",
        "MULTIVAC_STATE_DIR": str(tmp_path / "state"),
    }


def run(code: str, environ: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert TOKEN not in done.stdout + done.stderr
    assert INFLUX_TOKEN not in done.stdout + done.stderr
    return done.stdout


def test_gathering_records(world: dict[str, str], tmp_path: Path) -> None:
    out = run(EXAMPLES[0], world, tmp_path).splitlines()
    assert out[-1] == "3 runs, 6 job records"
    assert (
        sorted(line.split()[0] for line in out[:-1])
        == ["successful_jobs"] * 3 + ["test_failure"] * 3
    )
    assert all(re.search(r"waited \d+s$", line) for line in out[:-1])
    # the store keeps what was gathered: the same call again reads it from there
    again = run(EXAMPLES[0], world, tmp_path).splitlines()
    assert again[-1] == "3 runs, 6 job records"


def test_classifying_a_log(world: dict[str, str], tmp_path: Path) -> None:
    out = run(EXAMPLES[1], world, tmp_path).splitlines()
    assert out[0].startswith("test_failure ")
    assert "FAILED tests/test_api.py::test_total" in out[1]
    assert out[2].startswith("Classification(type='out_of_disk'")


def test_writing_dicts(world: dict[str, str], tmp_path: Path, vm: VictoriaMetrics) -> None:
    out = run(EXAMPLES[2], world, tmp_path)
    assert out == "default 2 written, 0 spooled\n"
    points = vm.points()
    assert sorted(p.tags["service"] for p in points) == ["api", "web"]
    api = next(p for p in points if p.tags["service"] == "api")
    assert api.fields == {"seconds": 42.5, "ok": 1.0} and api.tags["region"] == "eu"


def test_writing_gathered_records(
    world: dict[str, str], tmp_path: Path, vm: VictoriaMetrics
) -> None:
    out = run(EXAMPLES[3], world, tmp_path)
    assert out == "12 points written\n"  # 6 job attempts, 3 runs, 3 failed tests
    assert (
        sorted(p.measurement for p in vm.points(fields=["queued_s"]))
        == ["runs"] * 3 + ["successful_jobs"] * 3 + ["test_failure"] * 3
    )


def test_writing_with_the_target_down_spools(world: dict[str, str], tmp_path: Path) -> None:
    world = {**world, "INFLUX_URL": "http://127.0.0.1:9", "MULTIVAC_INFLUX_WAIT": "1s"}
    out = run(EXAMPLES[3], world, tmp_path)
    first, second = out.splitlines()
    assert first == "0 points written"
    assert second.startswith("spooled for later: InfluxDB at http://127.0.0.1:9 did not take")
    assert list((tmp_path / "state" / "spool").glob("*.lp"))


# ---------------------------------------------------------------------------- the surface


def test_everything_in_all_is_importable() -> None:
    for name in multivac.__all__:
        assert getattr(multivac, name) is not None, name
    with pytest.raises(AttributeError):
        _ = multivac.no_such_thing  # type: ignore[attr-defined]


def test_a_bad_dict_names_its_position_and_the_points_before_it_are_sent(
    tmp_path: Path, vm: VictoriaMetrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "INFLUX_URL": vm.url,
        "INFLUX_TOKEN": "t",
        "INFLUX_ORG": "o",
        "INFLUX_BUCKET": "b",
    }.items():
        monkeypatch.setenv(name, value)
    good = {"measurement": "m", "tags": {"k": "v"}, "fields": {"f": 1.0}}
    with multivac.open_writer() as writer, pytest.raises(IngestError) as caught:
        writer.write([good, {"tags": {}, "fields": {"f": 2.0}}])
    assert str(caught.value) == "point 2: the measurement is missing or not a string."
    assert len(vm.points()) == 1


def test_classify_log_takes_a_stream_of_chunks(tmp_path: Path) -> None:
    chunks = iter([FAILING_LOG[:50].encode(), FAILING_LOG[50:].encode()])
    found = multivac.classify_log(chunks, rules=[])
    assert found is not None and found.type == "test_failure"
    assert multivac.classify_log(b"all good\n", rules=[]) is None


def test_gather_records_checks_its_settings_at_once(tmp_path: Path) -> None:
    with pytest.raises(multivac.MultivacError, match="--since 'yesterday' is neither"):
        multivac.gather_records(["o/r"], since="yesterday")
