"""Configuration resolved in one place: flags, then environment, then `.env` in the cwd.

Secrets are wrapped in `Secret` so that printing a settings object, an exception or a
log line can never show them; `redact()` scrubs them from any text shown to the user.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from dotenv import dotenv_values, find_dotenv

from multivac.errors import ConfigError
from multivac.retry import RetryPolicy

if TYPE_CHECKING:
    from multivac.sinks import Format

DEFAULT_API_URL = "https://api.github.com"
_KNOWN_SECRETS: set[str] = set()


class Secret:
    """A token: its value is only reachable through `reveal()`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        if len(value) >= 4:
            _KNOWN_SECRETS.add(value)

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def redact(text: str) -> str:
    """Replace every known secret in text with ***."""
    for secret in sorted(_KNOWN_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


@dataclass(frozen=True)
class Setting:
    """A setting's value and where it came from, for `config show`."""

    value: str
    origin: str  # "flag", "environment", ".env (path)", "default"


class Environment:
    """Environment variables over `.env` values; never writes to os.environ."""

    def __init__(
        self, environ: Mapping[str, str] | None = None, dotenv_path: str | None = None
    ) -> None:
        self._environ = dict(os.environ if environ is None else environ)
        path = dotenv_path if dotenv_path is not None else find_dotenv(usecwd=True)
        self.dotenv_path = path or None
        self._dotenv: dict[str, str] = {}
        if path:
            values = dotenv_values(path)
            self._dotenv = {k: v for k, v in values.items() if v is not None}

    def lookup(self, *names: str) -> Setting | None:
        for name in names:
            value = self._environ.get(name)
            if value is not None and value != "":
                return Setting(value, f"environment ({name})")
        for name in names:
            value = self._dotenv.get(name)
            if value is not None and value != "":
                return Setting(value, f".env ({name})")
        return None


def pick(flag: str | None, env: Environment, *names: str, default: str | None = None) -> Setting:
    if flag is not None and flag != "":
        return Setting(flag, "flag")
    found = env.lookup(*names)
    if found is not None:
        return found
    return Setting(default or "", "default")


# ---------------------------------------------------------------------------- GitHub


@dataclass(frozen=True)
class GitHubSettings:
    api_url: str
    token: Secret = field(default_factory=lambda: Secret(""))


def github_settings(env: Environment, token: str | None = None) -> GitHubSettings:
    url = pick(None, env, "GITHUB_API_URL", default=DEFAULT_API_URL).value.rstrip("/")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"GITHUB_API_URL must be an http(s) URL, got {url!r}.")
    tok = pick(token, env, "GITHUB_TOKEN", "GH_TOKEN").value.strip()
    if any(ch.isspace() for ch in tok):
        raise ConfigError("GITHUB_TOKEN contains whitespace; check how it was set.")
    return GitHubSettings(api_url=url, token=Secret(tok))


# ---------------------------------------------------------------------------- InfluxDB


@dataclass(frozen=True)
class InfluxSettings:
    url: str
    token: Secret
    org: str
    bucket: str
    tests_bucket: str = ""  # INFLUX_TESTS_BUCKET; empty: test points go to `bucket`

    def bucket_for(self, role: str) -> str:
        """The bucket of a record's role (`Record.BUCKET`, `model.bucket_role`)."""
        from multivac.model import TESTS_BUCKET

        if role == TESTS_BUCKET and self.tests_bucket:
            return self.tests_bucket
        return self.bucket

    @property
    def buckets(self) -> tuple[str, ...]:
        """Every bucket these settings write to."""
        return tuple(dict.fromkeys((self.bucket, self.tests_bucket or self.bucket)))


def influx_settings(
    env: Environment,
    *,
    url: str | None = None,
    org: str | None = None,
    bucket: str | None = None,
) -> InfluxSettings:
    resolved = {
        "INFLUX_URL": pick(url, env, "INFLUX_URL", "INFLUXDB_V2_URL").value,
        "INFLUX_TOKEN": pick(None, env, "INFLUX_TOKEN", "INFLUXDB_V2_TOKEN").value,
        "INFLUX_ORG": pick(org, env, "INFLUX_ORG", "INFLUXDB_V2_ORG").value,
        "INFLUX_BUCKET": pick(bucket, env, "INFLUX_BUCKET", "INFLUXDB_V2_BUCKET").value,
    }
    for name, value in resolved.items():
        if not value:
            raise ConfigError(f"{name} is not set; --format influxdb needs it (see .env.example).")
    parsed = urlparse(resolved["INFLUX_URL"])
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"INFLUX_URL must be an http(s) URL, got {resolved['INFLUX_URL']!r}.")
    return InfluxSettings(
        url=resolved["INFLUX_URL"].rstrip("/"),
        token=Secret(resolved["INFLUX_TOKEN"]),
        org=resolved["INFLUX_ORG"],
        bucket=resolved["INFLUX_BUCKET"],
        tests_bucket=pick(None, env, "INFLUX_TESTS_BUCKET").value,
    )


# ---------------------------------------------------------------------------- time


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_moment(text: str, option: str, now: datetime | None = None) -> datetime:
    """`30d`, `12h`, `45m` (ago), or an ISO date/datetime (UTC when no zone is given)."""
    now = now or datetime.now(UTC)
    match = _DURATION.match(text)
    if match:
        amount = float(match.group(1)) * _UNITS[match.group(2).lower()]
        return now - timedelta(seconds=amount)
    raw = text.strip()
    if raw.lower() == "now":
        return now
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{option} {text!r} is neither a duration like 30d, 12h or 45m nor an ISO date "
            "like 2026-10-01 or 2026-10-01T12:00:00Z."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime


def parse_window(since: str | None, until: str | None, now: datetime | None = None) -> Window:
    now = now or datetime.now(UTC)
    start = parse_moment(since or "1d", "--since", now)
    end = parse_moment(until, "--until", now) if until else now
    if start > end:
        raise ConfigError(
            f"--since ({start:%Y-%m-%dT%H:%M:%SZ}) is after --until ({end:%Y-%m-%dT%H:%M:%SZ})."
        )
    return Window(start.replace(microsecond=0), end.replace(microsecond=0))


_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """`K/N` (1 <= K <= N): this job's share of the repositories."""
    if not text:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise ConfigError(f"--shard {text!r} must be K/N with 1 <= K <= N, like 2/4.")
    return int(match.group(1)), int(match.group(2))


def in_shard(repo: str, shard: tuple[int, int] | None) -> bool:
    """Deterministic: the same repository always falls in the same shard."""
    if shard is None:
        return True
    k, n = shard
    return zlib.crc32(repo.lower().encode("utf-8")) % n == k - 1


def repositories(given: list[str] | None, env: Environment, *, org: str | None = None) -> list[str]:
    repos = list(given or [])
    if org is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", org):
        raise ConfigError(f"--org {org!r} is not an organisation name.")
    if not repos and org:
        return []
    if not repos:
        found = env.lookup("GITHUB_REPOSITORY")
        if found is None:
            raise ConfigError("Name a repository (OWNER/REPO) or set GITHUB_REPOSITORY.")
        repos = [found.value]
    for repo in repos:
        if not _REPO.match(repo):
            raise ConfigError(f"Repository {repo!r} is not of the form OWNER/REPO.")
    return list(dict.fromkeys(repos))


def state_dir(flag: Path | None, env: Environment) -> Path:
    chosen = pick(str(flag) if flag else None, env, "MULTIVAC_STATE_DIR").value
    if chosen:
        return Path(chosen).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "multivac"


def rule_sources(flag: list[str] | None, env: Environment) -> tuple[str, ...]:
    """--rules (repeatable) over MULTIVAC_RULES (comma-separated)."""
    if flag:
        return tuple(flag)
    found = env.lookup("MULTIVAC_RULES")
    if found is None:
        return ()
    return tuple(part.strip() for part in found.value.split(",") if part.strip())


def parse_duration(text: str, option: str) -> float:
    """Seconds of a duration like 15m, 1h or 90s."""
    now = datetime(2000, 1, 1, tzinfo=UTC)
    message = f"{option} {text!r} is not a duration like 15m, 1h or 90s."
    try:
        moment = parse_moment(text, option, now)
    except ConfigError:
        raise ConfigError(message) from None
    seconds = (now - moment).total_seconds()
    if seconds < 0 or not _DURATION.match(text):
        raise ConfigError(message)
    return seconds


def retry_policy(env: Environment, max_wait: str = "15m") -> RetryPolicy:
    """The retry policy: --max-wait, and the MULTIVAC_RETRY_* timings (for tests and
    impatient users)."""
    values: dict[str, float] = {"max_wait_s": parse_duration(max_wait, "--max-wait")}
    for name, attr in (
        ("MULTIVAC_RETRY_BASE", "base_s"),
        ("MULTIVAC_RETRY_CAP", "cap_s"),
        ("MULTIVAC_SECONDARY_WAIT", "secondary_wait_s"),
        ("MULTIVAC_HTTP_TIMEOUT", "timeout_s"),
    ):
        found = env.lookup(name)
        if found is None:
            continue
        try:
            values[attr] = float(found.value)
        except ValueError:
            raise ConfigError(f"{name} must be a number of seconds, got {found.value!r}.") from None
        if values[attr] <= 0:
            raise ConfigError(f"{name} must be a positive number of seconds.")
    return RetryPolicy(**values)


def influx_wait(env: Environment, policy: RetryPolicy) -> RetryPolicy:
    """InfluxDB writes retry like GitHub requests, but give up sooner (MULTIVAC_INFLUX_WAIT,
    default 30s): what InfluxDB cannot take is spooled, not lost."""
    found = env.lookup("MULTIVAC_INFLUX_WAIT")
    seconds = parse_duration(found.value, "MULTIVAC_INFLUX_WAIT") if found else 30.0
    return policy.bounded(seconds)


# ---------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class GatherPlan:
    """Everything a gather needs, resolved and checked before anything runs."""

    repos: tuple[str, ...]
    until: datetime
    since: datetime | None  # None: all history (--latest without --since)
    output_format: Format
    state_dir: Path
    github: GitHubSettings
    policy: RetryPolicy
    influx: InfluxSettings | None = None
    influx_policy: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_wait_s=30.0))
    output: Path | None = None
    org: str | None = None
    shard: tuple[int, int] | None = None
    latest: int | None = None
    branches: tuple[str, ...] = ()
    workflows: tuple[str, ...] = ()
    event: str | None = None
    lean: bool = False
    create_bucket: bool = False
    rules: tuple[str, ...] = ()
    fetch_logs: bool = True
    concurrency: int = 4
    log_archive_mb: int = 2048
    junit_artifacts: str | None = None
    test_summary: bool = False

    @property
    def records_coverage(self) -> bool:
        """Whether a finished gather covers the whole window of its repositories (a
        filtered or --latest gather does not)."""
        return self.since is not None and not (self.branches or self.workflows or self.event)


def plan_gather(
    env: Environment,
    *,
    repos: list[str] | None,
    output_format: Format,
    since: str | None = None,
    until: str | None = None,
    latest: int | None = None,
    org: str | None = None,
    shard: str | None = None,
    branches: list[str] | None = None,
    workflows: list[str] | None = None,
    event: str | None = None,
    output: Path | None = None,
    lean: bool = False,
    create_bucket: bool = False,
    rules: list[str] | None = None,
    fetch_logs: bool = True,
    concurrency: int = 4,
    max_wait: str = "15m",
    state: Path | None = None,
    log_archive_mb: int | None = None,
    junit_artifacts: str | None = None,
    test_summary: bool = False,
) -> GatherPlan:
    """Resolve and check a gather's flags against the environment."""
    from multivac.sinks import Format

    all_history = latest is not None and not since
    window = parse_window(None if all_history else since, until)
    policy = retry_policy(env, max_wait)
    return GatherPlan(
        repos=tuple(repositories(repos, env, org=org)),
        until=window.until,
        since=None if all_history else window.since,
        output_format=output_format,
        state_dir=state_dir(state, env),
        github=github_settings(env),
        policy=policy,
        influx=influx_settings(env) if output_format is Format.influxdb else None,
        influx_policy=influx_wait(env, policy),
        output=output,
        org=org,
        shard=parse_shard(shard),
        latest=latest,
        branches=tuple(branches or ()),
        workflows=tuple(workflows or ()),
        event=event,
        lean=lean,
        create_bucket=create_bucket,
        rules=rule_sources(rules, env),
        fetch_logs=fetch_logs,
        concurrency=concurrency,
        log_archive_mb=archive_budget(env, log_archive_mb),
        junit_artifacts=junit_glob(junit_artifacts),
        test_summary=test_summary,
    )


def junit_glob(text: str | None) -> str | None:
    """`--junit-artifacts GLOB`: a pattern over artifact names (`*` for all)."""
    if text is None:
        return None
    if not text.strip() or any(ch in text for ch in "\r\n\x00"):
        raise ConfigError(
            f"--junit-artifacts {text!r} must be a glob over artifact names, like 'junit-*'."
        )
    return text.strip()


def archive_budget(env: Environment, flag: int | None) -> int:
    """Megabytes of failed jobs' logs to keep (--log-archive-mb, MULTIVAC_LOG_ARCHIVE_MB)."""
    if flag is not None:
        return flag
    found = env.lookup("MULTIVAC_LOG_ARCHIVE_MB")
    if found is None:
        return 2048
    if not found.value.strip().isdigit():
        raise ConfigError(
            f"MULTIVAC_LOG_ARCHIVE_MB must be a whole number of megabytes, got {found.value!r}."
        )
    return int(found.value)


@dataclass(frozen=True)
class StorePlan:
    """A command that reads the store over a window (failures, report, reclassify)."""

    repos: tuple[str, ...]  # empty: every repository the store holds
    since: datetime
    until: datetime
    state_dir: Path
    rules: tuple[str, ...] = ()
    offline: bool = False
    concurrency: int = 4


def plan_store(
    env: Environment,
    *,
    repos: list[str] | None,
    since: str | None,
    until: str | None,
    rules: list[str] | None = None,
    state: Path | None = None,
    offline: bool = False,
    default_since: str = "7d",
    all_stored: bool = False,
) -> StorePlan:
    """Resolve a store command's flags; with `all_stored`, no repository means all."""
    window = parse_window(since or default_since, until)
    if all_stored and not repos and env.lookup("GITHUB_REPOSITORY") is None:
        chosen: list[str] = []
    else:
        chosen = repositories(repos, env)
    return StorePlan(
        repos=tuple(chosen),
        since=window.since,
        until=window.until,
        state_dir=state_dir(state, env),
        rules=rule_sources(rules, env),
        offline=offline,
    )


@dataclass(frozen=True)
class ReclassifyPlan:
    repos: tuple[str, ...]  # empty: every stored repository
    since: datetime | None
    until: datetime | None
    rules: tuple[str, ...]
    state_dir: Path
    output_format: Format | None
    output: Path | None
    influx: InfluxSettings | None
    policy: RetryPolicy
    lean: bool = False
    dry_run: bool = False


def plan_reclassify(
    env: Environment,
    *,
    repos: list[str] | None,
    since: str | None,
    until: str | None,
    rules: list[str] | None,
    state: Path | None,
    output_format: Format | None,
    output: Path | None,
    lean: bool,
    dry_run: bool,
) -> ReclassifyPlan:
    from multivac.sinks import Format

    for repo in repos or ():
        if not _REPO.match(repo):
            raise ConfigError(f"Repository {repo!r} is not of the form OWNER/REPO.")
    policy = retry_policy(env)
    return ReclassifyPlan(
        repos=tuple(repos or ()),
        since=parse_moment(since, "--since") if since else None,
        until=parse_moment(until, "--until") if until else None,
        rules=rule_sources(rules, env),
        state_dir=state_dir(state, env),
        output_format=output_format,
        output=output,
        influx=influx_settings(env) if output_format is Format.influxdb else None,
        policy=influx_wait(env, policy),
        lean=lean,
        dry_run=dry_run,
    )
