"""The documentation: the CLI reference matches the CLI, and the site builds."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def gen_cli() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli", DOCS / "gen_cli.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_generated_from_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    module = gen_cli()
    for name, value in module.PINNED_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    expected = module.render()
    current = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert current == expected, "docs/cli.md is out of date: run `python docs/gen_cli.py`"


def test_cli_reference_covers_every_command() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for path in ("multivac", "multivac gather", "multivac classify", "multivac rules list"):
        assert f"## `{path}`" in text
    assert "\x1b[" not in text, "colour codes in docs/cli.md"
    assert max(len(line) for line in text.splitlines()) <= 110


SETTINGS = (
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "GITHUB_API_URL",
    "GITHUB_REPOSITORY",
    "INFLUX_URL",
    "INFLUX_TOKEN",
    "INFLUX_ORG",
    "INFLUX_BUCKET",
    "INFLUX_TESTS_BUCKET",
    "MULTIVAC_STATE_DIR",
    "MULTIVAC_RULES",
    "MULTIVAC_PRICE_TABLE",
    "MULTIVAC_RETRY_BASE",
    "MULTIVAC_RETRY_CAP",
    "MULTIVAC_SECONDARY_WAIT",
    "MULTIVAC_HTTP_TIMEOUT",
    "MULTIVAC_INFLUX_WAIT",
    "MULTIVAC_WEBHOOK_SECRET",
    "MULTIVAC_CONFIG",
    "MULTIVAC_ALERT_WEBHOOK",
    "INFLUX_TESTS_BUCKET",
)


@pytest.mark.parametrize("name", SETTINGS)
def test_env_example_and_docs_name_every_setting(name: str) -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    names = {
        line.split("=", 1)[0].lstrip("# ").strip() for line in text.splitlines() if "=" in line
    }
    documented = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert name in names, f".env.example does not list {name}"
    assert f"`{name}`" in documented, f"docs/configuration.md does not describe {name}"


def test_mkdocs_site_builds_strictly(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs") or str(Path(sys.executable).parent / "mkdocs")
    if not Path(mkdocs).exists():
        message = "mkdocs is not installed (pip install -e '.[test]')"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run(
        [
            mkdocs,
            "build",
            "--strict",
            "--quiet",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "cli" / "index.html").is_file()
