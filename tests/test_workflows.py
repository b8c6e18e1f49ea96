"""The workflows and the composite action: schema-valid, zizmor-clean, pinned, injection-free.

check-jsonschema and zizmor come with the `test` extra. When one is missing the test
fails in CI (where it must run) and is skipped elsewhere with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ACTION = ROOT / "action.yml"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        # a tool installed in this interpreter's environment but not on PATH
        candidate = Path(sys.executable).parent / name
        found = str(candidate) if candidate.exists() else None
    if found is None:
        message = f"{name} is not installed (pip install -e '.[test]')"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name} is not a YAML mapping"
    return data


def test_there_is_something_to_check() -> None:
    names = {path.name for path in WORKFLOWS}
    assert {"ci.yml", "gather.yml"} <= names
    assert ACTION.is_file()


# ---------------------------------------------------------------------------- tools


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_workflow_matches_the_github_schema(workflow: Path) -> None:
    exe = tool("check-jsonschema")
    result = run(exe, "--builtin-schema", "vendor.github-workflows", str(workflow))
    assert result.returncode == 0, result.stdout + result.stderr


def test_action_matches_the_github_schema() -> None:
    exe = tool("check-jsonschema")
    result = run(exe, "--builtin-schema", "vendor.github-actions", str(ACTION))
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_has_no_findings() -> None:
    exe = tool("zizmor")
    # --offline: no network, so no online audits (e.g. known-vulnerable action versions)
    files = [str(path) for path in (*WORKFLOWS, ACTION)]
    result = run(exe, "--offline", "--no-progress", "--color", "never", *files)
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------- pins and hardening


def uses_lines(path: Path) -> list[str]:
    """Every `uses:` value with its trailing comment, as written (YAML drops comments)."""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*(?:-\s+)?uses:\s*(\S.*?)\s*$", line)
        if match:
            found.append(match.group(1))
    return found


@pytest.mark.parametrize("path", [*WORKFLOWS, ACTION], ids=lambda path: path.name)
def test_every_action_is_pinned_to_a_commit(path: Path) -> None:
    refs = uses_lines(path)
    assert refs, f"{path.name} uses no actions"
    for ref in refs:
        if ref.startswith(("./", "$/")):
            continue  # this repository, at the commit being run
        assert SHA_PIN.match(ref), f"{path.name}: {ref!r} is not `owner/repo@<40 hex> # vX.Y.Z`"


def test_the_same_action_is_pinned_to_the_same_commit_everywhere() -> None:
    pins: dict[str, set[str]] = {}
    for path in [*WORKFLOWS, ACTION]:
        for ref in uses_lines(path):
            if "@" in ref:
                name, _, rest = ref.partition("@")
                pins.setdefault(name.split("/")[0] + "/" + name.split("/")[1], set()).add(rest)
    for name, refs in pins.items():
        assert len(refs) == 1, f"{name} is pinned differently: {sorted(refs)}"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_workflow_is_least_privilege(workflow: Path) -> None:
    data = load(workflow)
    assert "permissions" in data, f"{workflow.name}: no top-level permissions"
    permissions = data["permissions"]
    assert isinstance(permissions, dict)
    assert all(level in ("read", "none") for level in permissions.values()), permissions
    assert "concurrency" in data, f"{workflow.name}: no concurrency group"
    for job_id, job in data["jobs"].items():
        assert "timeout-minutes" in job, f"{workflow.name}: job {job_id} has no timeout"
        for step in job.get("steps", []):
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, (
                    f"{workflow.name}: checkout in {job_id} keeps the token in .git/config"
                )


def test_gather_never_overlaps_and_runs_hourly() -> None:
    data = load(ROOT / ".github" / "workflows" / "gather.yml")
    assert data["concurrency"]["cancel-in-progress"] is False
    triggers = data[True]  # PyYAML reads the key `on` as a boolean
    assert triggers["schedule"][0]["cron"].split()[1:] == ["*", "*", "*", "*"]
    inputs = triggers["workflow_dispatch"]["inputs"]
    assert {"repositories", "since"} <= set(inputs)
    assert data["permissions"] == {"actions": "read", "checks": "read", "contents": "read"}


# ---------------------------------------------------------------------------- the action


def action_steps() -> list[dict[str, Any]]:
    steps = load(ACTION)["runs"]["steps"]
    assert isinstance(steps, list)
    return steps


def test_action_inputs_referenced_exist_and_are_used() -> None:
    action = load(ACTION)
    declared = set(action["inputs"])
    text = ACTION.read_text(encoding="utf-8")
    referenced = set(re.findall(r"inputs\.([A-Za-z0-9_-]+)", text))
    assert referenced <= declared, f"undeclared inputs: {sorted(referenced - declared)}"
    assert declared <= referenced, f"inputs never used: {sorted(declared - referenced)}"
    assert action["runs"]["using"] == "composite"
    for name in ("repositories", "github-token"):
        assert "${{" in action["inputs"][name]["default"]


def test_action_run_steps_hold_no_expressions() -> None:
    # `${{ }}` inside `run:` is pasted into the script before bash sees it: template injection
    for step in action_steps():
        if "run" in step:
            assert "${{" not in step["run"], f"step {step.get('name')!r} expands an expression"
            assert step.get("shell") == "bash", f"step {step.get('name')!r} needs `shell: bash`"


def test_workflow_run_steps_hold_no_expressions() -> None:
    for workflow in WORKFLOWS:
        for job in load(workflow)["jobs"].values():
            for step in job.get("steps", []):
                assert "${{" not in step.get("run", ""), f"{workflow.name}: {step}"


def gather_script() -> tuple[str, dict[str, str]]:
    step = next(step for step in action_steps() if step.get("id") == "gather")
    return step["run"], step["env"]


@pytest.fixture
def fake_action(tmp_path: Path) -> dict[str, Path]:
    """A runner temp dir whose multivac venv records its arguments instead of gathering."""
    temp = tmp_path / "runner-temp"
    bindir = temp / "multivac-venv" / "bin"
    bindir.mkdir(parents=True)
    (bindir / "python").symlink_to(sys.executable)
    argv = tmp_path / "argv.json"
    fake = bindir / "multivac"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"json.dump({{'argv': sys.argv[1:], 'env': {{k: os.environ.get(k) for k in "
        f"('GITHUB_TOKEN', 'INFLUX_URL', 'INFLUX_TOKEN', 'INFLUX_ORG', 'INFLUX_BUCKET')}}}}, "
        f"open({str(argv)!r}, 'w'))\n"
        "sys.exit(int(os.environ.get('FAKE_EXIT', '0')))\n",
        encoding="utf-8",
    )
    fake.chmod(0o755)
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    return {"temp": temp, "argv": argv, "workspace": workspace, "output": tmp_path / "out.txt"}


def run_gather(fake: dict[str, Path], **inputs: str) -> tuple[int, dict[str, Any], str]:
    """Run the action's gather step with bash, as the runner would, for these inputs."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    script, env_template = gather_script()
    action = load(ACTION)
    values = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    values["repositories"] = "octo/default"
    values["github-token"] = "ghs_fromtheworkflow"
    values.update({key.replace("_", "-"): value for key, value in inputs.items()})
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "RUNNER_TEMP": str(fake["temp"]),
        "GITHUB_OUTPUT": str(fake["output"]),
        "GITHUB_REPOSITORY": "octo/default",
    }
    if "FAKE_EXIT" in os.environ:
        env["FAKE_EXIT"] = os.environ["FAKE_EXIT"]
    for name, template in env_template.items():
        match = re.fullmatch(r"\$\{\{ inputs\.([\w-]+) \}\}", str(template))
        assert match, f"env {name} is not a plain input: {template!r}"
        env[name] = values[match.group(1)]
    fake["output"].write_text("", encoding="utf-8")
    result = subprocess.run(
        [bash, "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", script],
        cwd=fake["workspace"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    recorded = json.loads(fake["argv"].read_text()) if fake["argv"].exists() else {}
    outputs = fake["output"].read_text(encoding="utf-8")
    return result.returncode, recorded, outputs + result.stderr


def test_action_defaults_gather_this_repository_to_influxdb(fake_action: dict[str, Path]) -> None:
    code, recorded, _ = run_gather(
        fake_action, influx_url="http://influx:8086", influx_token="tok-secret"
    )
    assert code == 0
    assert recorded["argv"] == [
        "gather",
        "--format",
        "influxdb",
        "--since",
        "1d",
        "--",
        "octo/default",
    ]
    # secrets travel in the environment, never on the command line
    assert recorded["env"]["GITHUB_TOKEN"] == "ghs_fromtheworkflow"
    assert recorded["env"]["INFLUX_TOKEN"] == "tok-secret"
    assert recorded["env"]["INFLUX_URL"] == "http://influx:8086"


def test_action_builds_every_option(fake_action: dict[str, Path]) -> None:
    code, recorded, outputs = run_gather(
        fake_action,
        repositories="a/one, b/two\nc/three",
        since="7d",
        until="2026-10-01",
        format="csv",
        output="out/jobs.csv",
        create_bucket="true",
        lean_tags="True",
        rules="rules/a.yaml, tarantool\n\n  rules/b c.yaml  ",
        state_dir="/tmp/state dir",
        extra_args="--no-logs --workflow 'ci build.yml' --concurrency 2",
    )
    assert code == 0, outputs
    written = str(fake_action["workspace"] / "out" / "jobs.csv")
    assert recorded["argv"] == [
        "gather",
        "--format",
        "csv",
        "--since",
        "7d",
        "--until",
        "2026-10-01",
        "--output",
        written,
        "--state-dir",
        "/tmp/state dir",
        "--create-bucket",
        "--lean-tags",
        "--rules",
        "rules/a.yaml",
        "--rules",
        "tarantool",
        "--rules",
        "rules/b c.yaml",
        "--no-logs",
        "--workflow",
        "ci build.yml",
        "--concurrency",
        "2",
        "--",
        "a/one",
        "b/two",
        "c/three",
    ]
    assert f"output={written}" in outputs


def test_action_with_an_org_drops_the_default_repository(fake_action: dict[str, Path]) -> None:
    _, recorded, _ = run_gather(fake_action, org="my-org", extra_args="--shard 2/4")
    assert recorded["argv"] == [
        "gather",
        "--format",
        "influxdb",
        "--since",
        "1d",
        "--org",
        "my-org",
        "--shard",
        "2/4",
        "--",
    ]
    assert "octo/default" not in recorded["argv"]
    _, recorded, _ = run_gather(fake_action, org="my-org", repositories="other/repo")
    assert recorded["argv"][-2:] == ["--", "other/repo"]


def test_action_ignores_empty_list_entries(fake_action: dict[str, Path]) -> None:
    code, recorded, outputs = run_gather(
        fake_action, repositories=" a/one,,\n", rules="r.yaml,\n,", extra_args="  "
    )
    assert code == 0, outputs
    assert recorded["argv"][-4:] == ["--rules", "r.yaml", "--", "a/one"]


def test_action_inputs_are_data_not_code(fake_action: dict[str, Path], tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = f"$(touch {marker}) `touch {marker}`; touch {marker}"
    code, recorded, outputs = run_gather(
        fake_action,
        repositories=hostile,
        since=hostile,
        rules=hostile,
        extra_args=f"--event '{hostile}'",
    )
    assert code == 0, outputs
    assert not marker.exists()
    assert recorded["argv"][4] == hostile  # --since, verbatim
    assert hostile in recorded["argv"]


def test_action_passes_the_exit_code_on(
    fake_action: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_EXIT", "3")
    code, _, _ = run_gather(fake_action)
    assert code == 3


def test_gather_checks_the_alert_rules_after_gathering_and_before_saving() -> None:
    steps = load(ROOT / ".github" / "workflows" / "gather.yml")["jobs"]["gather"]["steps"]
    names = [step["name"] for step in steps]
    assert names.index("Gather") < names.index("Check alert rules") < names.index("Save the state")
    check = steps[names.index("Check alert rules")]
    assert check["run"].startswith('"$MULTIVAC" check ')
    assert check["env"]["MULTIVAC"] == "${{ steps.gather.outputs.command }}"
    assert "secrets.MULTIVAC_ALERT_WEBHOOK" in check["env"]["MULTIVAC_ALERT_WEBHOOK"]
    assert "!cancelled()" in check["if"]
    # the command it runs parses: every rule flag is one multivac knows
    from multivac.alerts import rules_from_flags

    args = shlex.split(check["run"].removeprefix('"$MULTIVAC" check'))
    flags: dict[str, list[str]] = {}
    new_signatures = False
    while args:
        flag = args.pop(0)
        if flag == "--new-signatures":
            new_signatures = True
            continue
        flags.setdefault(flag.removeprefix("--").replace("-", "_"), []).append(args.pop(0))
    rules = rules_from_flags(new_signatures=new_signatures, **flags)  # type: ignore[arg-type]
    assert len(rules) == 4


def test_the_action_tells_later_steps_where_multivac_is() -> None:
    action = load(ACTION)
    assert action["outputs"]["command"]["value"] == "${{ steps.install.outputs.command }}"
    install = next(step for step in action_steps() if step.get("id") == "install")
    assert 'echo "command=$venv/bin/multivac" >> "$GITHUB_OUTPUT"' in install["run"]
