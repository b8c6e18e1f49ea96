"""`multivac config show` and `multivac doctor`: what is set, and whether it works."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from multivac.config import (
    DEFAULT_API_URL,
    Environment,
    InfluxSettings,
    Setting,
    github_settings,
    influx_configured,
    influx_targets,
    pick,
    state_dir,
)
from multivac.errors import MultivacError

SECRET_NAMES = frozenset(
    {"GITHUB_TOKEN", "INFLUX_TOKEN", "MULTIVAC_WEBHOOK_SECRET", "MULTIVAC_ALERT_WEBHOOK"}
)

#: (shown name, variable names in order of precedence, default)
SETTINGS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("GITHUB_API_URL", ("GITHUB_API_URL",), DEFAULT_API_URL),
    ("GITHUB_TOKEN", ("GITHUB_TOKEN", "GH_TOKEN"), ""),
    ("GITHUB_REPOSITORY", ("GITHUB_REPOSITORY",), ""),
    ("INFLUX_URL", ("INFLUX_URL", "INFLUXDB_V2_URL"), ""),
    ("INFLUX_TOKEN", ("INFLUX_TOKEN", "INFLUXDB_V2_TOKEN"), ""),
    ("INFLUX_ORG", ("INFLUX_ORG", "INFLUXDB_V2_ORG"), ""),
    ("INFLUX_BUCKET", ("INFLUX_BUCKET", "INFLUXDB_V2_BUCKET"), ""),
    ("INFLUX_TESTS_BUCKET", ("INFLUX_TESTS_BUCKET",), ""),
    ("MULTIVAC_STATE_DIR", ("MULTIVAC_STATE_DIR",), ""),
    ("MULTIVAC_RULES", ("MULTIVAC_RULES",), ""),
    ("MULTIVAC_PRICE_TABLE", ("MULTIVAC_PRICE_TABLE",), ""),
    ("MULTIVAC_WEBHOOK_SECRET", ("MULTIVAC_WEBHOOK_SECRET",), ""),
    ("MULTIVAC_ALERT_WEBHOOK", ("MULTIVAC_ALERT_WEBHOOK",), ""),
    ("MULTIVAC_RETRY_BASE", ("MULTIVAC_RETRY_BASE",), "1"),
    ("MULTIVAC_RETRY_CAP", ("MULTIVAC_RETRY_CAP",), "60"),
    ("MULTIVAC_SECONDARY_WAIT", ("MULTIVAC_SECONDARY_WAIT",), "60"),
    ("MULTIVAC_HTTP_TIMEOUT", ("MULTIVAC_HTTP_TIMEOUT",), "30"),
    ("MULTIVAC_INFLUX_WAIT", ("MULTIVAC_INFLUX_WAIT",), "30s"),
    ("MULTIVAC_LOG_ARCHIVE_MB", ("MULTIVAC_LOG_ARCHIVE_MB",), "2048"),
    # settings of the config file that have a flag but no variable
    ("github.org", ("github.org",), ""),
    ("gather.since", ("gather.since",), "1d"),
    ("gather.format", ("gather.format",), "csv"),
    ("gather.output", ("gather.output",), "-"),
    ("gather.lean_tags", ("gather.lean_tags",), "false"),
    ("gather.logs", ("gather.logs",), "true"),
    ("gather.concurrency", ("gather.concurrency",), "4"),
    ("gather.create_bucket", ("gather.create_bucket",), "false"),
    ("gather.steps", ("gather.steps",), "false"),
    ("gather.runs", ("gather.runs",), "true"),
    ("gather.junit_artifacts", ("gather.junit_artifacts",), ""),
    ("gather.test_summary", ("gather.test_summary",), "false"),
    ("retry.max_wait", ("retry.max_wait",), "15m"),
)


def effective(env: Environment, state: Path | None = None) -> list[tuple[str, Setting]]:
    """Every setting with its value (secrets redacted) and where it came from."""
    rows: list[tuple[str, Setting]] = []
    for name, names, default in SETTINGS:
        flag = str(state) if name == "MULTIVAC_STATE_DIR" and state else None
        found = pick(flag, env, *names, default=default)
        if name == "MULTIVAC_STATE_DIR" and not found.value:
            found = Setting(str(state_dir(None, env)), "default")
        value = found.value
        if name in SECRET_NAMES and value:
            value = f"*** (set, {len(value)} characters)"
        elif not value:
            value = "(not set)"
            found = Setting(value, "-")
        rows.append((name, Setting(value, found.origin)))
    config = env.config
    for block in config.blocks.get("influx", ()) if config is not None else ():
        assert config is not None
        values = block.values
        shown = f"{values['url']} org {values['org']} bucket {values['bucket']}"
        if values.get("tests_bucket"):
            shown += f" tests_bucket {values['tests_bucket']}"
        token_set = env.variable(str(values["token_env"])) is not None
        shown += f", token from {values['token_env']} ({'set' if token_set else 'NOT SET'})"
        rows.append((f"influx {values['name']}", Setting(shown, config.where(block.line))))
    return rows


@dataclass(frozen=True)
class Check:
    ok: bool | None  # None: a warning, not a failure
    text: str


def _github_checks(env: Environment, repos: list[str]) -> list[Check]:
    from multivac.github import GitHubSource
    from multivac.retry import RetryPolicy

    checks: list[Check] = []
    try:
        settings = github_settings(env)
    except MultivacError as exc:
        return [Check(False, str(exc))]
    # a check, not a gather: one short retry, no outage to wait out
    source = GitHubSource(settings, policy=RetryPolicy(max_wait_s=2, base_s=0.5, timeout_s=15))
    try:
        budget, scopes = source.rate_limit()
    except MultivacError as exc:
        return [Check(False, f"GitHub API {settings.api_url}: {exc}")]
    reset = ""
    if budget.reset:
        reset = f", resets in {max(0, int(budget.reset - time.time())) // 60} min"
    checks.append(
        Check(
            True,
            f"GitHub API {settings.api_url} reachable; rate limit "
            f"{budget.remaining}/{budget.limit} left{reset}",
        )
    )
    if not settings.token:
        checks.append(Check(None, "no GITHUB_TOKEN: 60 requests an hour, public repositories only"))
    elif scopes is not None:
        checks.append(Check(True, f"token scopes: {scopes or '(none: fine-grained or app token)'}"))
    if budget.remaining is not None and budget.limit and budget.remaining < budget.limit // 10:
        checks.append(Check(None, f"only {budget.remaining} API requests left until the reset"))
    for repo in repos:
        try:
            total = source.can_read_actions(repo)
            checks.append(Check(True, f"{repo}: Actions readable ({total} workflow runs)"))
        except MultivacError as exc:
            checks.append(Check(False, f"{repo}: {exc}"))
    return checks


def _influx_checks(env: Environment) -> list[Check]:
    if not influx_configured(env):
        return [
            Check(None, "InfluxDB not configured (INFLUX_URL unset, no [[influx]]): files only")
        ]
    try:
        targets = influx_targets(env)
    except MultivacError as exc:
        return [Check(False, str(exc))]
    checks: list[Check] = []
    for target in targets:
        checks += _target_checks(target, len(targets) > 1)
    return checks


def _target_checks(settings: InfluxSettings, named: bool) -> list[Check]:
    """Reachability, token and bucket of one target."""
    from influxdb_client.client.influxdb_client import InfluxDBClient
    from influxdb_client.rest import ApiException

    label = f"InfluxDB {settings.name} {settings.url}" if named else f"InfluxDB {settings.url}"
    checks: list[Check] = []
    with InfluxDBClient(
        url=settings.url, token=settings.token.reveal(), org=settings.org, timeout=10_000
    ) as client:
        if not client.ping():
            return [Check(False, f"{label} does not answer /ping")]
        checks.append(Check(True, f"{label} reachable"))
        writes = _write_check(settings, label)
        if writes is not None:
            return [*checks, writes]
        for bucket in filter(None, (settings.bucket, settings.tests_bucket)):
            try:
                found = client.buckets_api().find_bucket_by_name(bucket)
            except ApiException as exc:
                if exc.status in (401, 403):
                    checks.append(Check(False, f"{label} rejected its token (HTTP {exc.status})"))
                else:
                    checks.append(
                        Check(
                            None,
                            f"{label}: cannot list buckets (HTTP {exc.status}); "
                            f"bucket {bucket!r} not checked",
                        )
                    )
                return checks
            except Exception as exc:
                checks.append(Check(False, f"{label}: bucket check failed ({type(exc).__name__})"))
                return checks
            if found is None:
                checks.append(
                    Check(
                        False,
                        f"{label}: bucket {bucket!r} does not exist "
                        "(gather --create-bucket creates it)",
                    )
                )
            else:
                checks.append(Check(True, f"{label}: bucket {bucket!r} exists"))
    return checks


def _write_check(settings: InfluxSettings, label: str) -> Check | None:
    """An empty write to the v2 API: a server without it (InfluxDB before 1.8) answers
    404 with no word of a bucket, a wrong token 401 or 403. None when writes can go on
    to the bucket checks."""
    import requests

    try:
        response = requests.post(
            settings.url.rstrip("/") + "/api/v2/write",
            params={"org": settings.org, "bucket": settings.bucket, "precision": "ns"},
            headers={"Authorization": f"Token {settings.token.reveal()}"},
            data=b"",
            timeout=10,
        )
    except requests.RequestException as exc:
        return Check(False, f"{label}: a test write failed ({type(exc).__name__})")
    if response.status_code in (401, 403):
        return Check(False, f"{label} rejected its token (HTTP {response.status_code})")
    if response.status_code == 404 and "bucket" not in response.text.lower():
        return Check(
            False,
            f"{label} has no InfluxDB 2 write API (/api/v2/write: HTTP 404); "
            "InfluxDB 1.8 or later, InfluxDB 2 or a compatible server is needed",
        )
    return None


def _engine_check() -> Check:
    """Which log scanner classification uses; RE2 alone gives the same types, slower."""
    from multivac.prefilter import active_engine, engine_status

    fast = active_engine() == "hyperscan"
    return Check(True if fast else None, f"log classification engine: {engine_status()}")


def doctor(env: Environment, repos: list[str], emit: Callable[[Check], None]) -> bool:
    """Run every check, emit one line each; True when nothing failed."""
    found = env.lookup("GITHUB_REPOSITORY")
    targets = repos or ([found.value] if found else [])
    ok = True
    for check in [*_github_checks(env, targets), *_influx_checks(env), _engine_check()]:
        emit(check)
        ok = ok and check.ok is not False
    return ok
