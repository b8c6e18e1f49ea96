"""Shared fixtures: the fake GitHub server, real InfluxDB-compatible servers, a CLI runner."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from multivac.cli import app

pytest_plugins = ["tests.ghserver", "tests.servers"]

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
TOKEN = "ghp_testtoken0123456789abcdefSECRET"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test starts in an empty directory (no .env) with no multivac settings."""
    for name in list(os.environ):
        if name.startswith(("GITHUB_", "INFLUX", "MULTIVAC_", "GH_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MULTIVAC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MULTIVAC_RETRY_BASE", "0.01")
    monkeypatch.setenv("MULTIVAC_SECONDARY_WAIT", "0.05")
    # the spool keeps what InfluxDB does not take: no test needs to wait 30s for it
    monkeypatch.setenv("MULTIVAC_INFLUX_WAIT", "1s")


Invoke = Callable[..., Result]


@pytest.fixture
def cli() -> Invoke:
    """Run the typer app in-process: cli(args..., env={...})."""

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        runner = CliRunner()
        return runner.invoke(app, list(args), env=env, catch_exceptions=False)

    return invoke


@pytest.fixture
def realdata() -> Iterator[Path]:
    if not REALDATA.is_dir():
        pytest.skip(f"real data not present at {REALDATA}")
    yield REALDATA
