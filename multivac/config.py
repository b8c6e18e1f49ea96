"""Configuration resolved in one place: flags, then environment, then `.env` in the cwd,
then the config file (`multivac.toml`, see configfile.py).

Secrets are wrapped in `Secret` so that printing a settings object, an exception or a
log line can never show them; `redact()` scrubs them from any text shown to the user.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from dotenv import dotenv_values, find_dotenv

from multivac import configfile
from multivac.configfile import ConfigFile
from multivac.errors import ConfigError, os_reason
from multivac.retry import RetryPolicy

if TYPE_CHECKING:
    from multivac.alerts import Rule
    from multivac.minutes.billing import PriceTable
    from multivac.minutes.capacity import CapacityBy, CapacityFormat
    from multivac.minutes.usage import GroupBy, Period, UsageFormat
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


# the password of a URL's user part (http://user:password@host), never a known secret
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*):[^/\s@]+@", re.IGNORECASE)


def redact(text: str) -> str:
    """Replace every known secret, and any password in a URL, in text with ***."""
    for secret in sorted(_KNOWN_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    return _URL_PASSWORD.sub(r"\1:***@", text)


@dataclass(frozen=True)
class Setting:
    """A setting's value and where it came from, for `config show`."""

    value: str
    origin: str  # "flag", "environment (NAME)", ".env (NAME)", "FILE line N (key)", "default"


class Environment:
    """Environment variables over `.env` values over the config file; never writes to
    os.environ.

    The config file is `config_path` (the `--config` flag), else `$MULTIVAC_CONFIG`, else
    `multivac.toml` in the current directory; `use_config=False` reads none. A name with
    a dot (`gather.format`) is a key of the file only: a setting that has a flag but no
    variable.
    """

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        dotenv_path: str | None = None,
        *,
        config_path: Path | None = None,
        use_config: bool = True,
    ) -> None:
        self._environ = dict(os.environ if environ is None else environ)
        path = dotenv_path if dotenv_path is not None else find_dotenv(usecwd=True)
        self.dotenv_path = path or None
        self._dotenv: dict[str, str] = {}
        if path:
            try:
                values = dotenv_values(path, encoding="utf-8")
            except UnicodeDecodeError:
                raise ConfigError(f"cannot read {path}: it is not UTF-8 text.") from None
            except OSError as exc:
                raise ConfigError(f"cannot read {path}: {os_reason(exc)}.") from None
            self._dotenv = {k: v for k, v in values.items() if v is not None}
        self.config: ConfigFile | None = None
        if use_config:
            variable = self.variable(configfile.VARIABLE)
            chosen, how = configfile.locate(config_path, variable.value if variable else None)
            if how:
                if variable is not None and config_path is None:
                    how = variable.origin
                self.config = configfile.load(chosen, how)

    def variable(self, *names: str) -> Setting | None:
        variables = [name for name in names if "." not in name]
        for name in variables:
            value = self._environ.get(name)
            if value is not None and value != "":
                return Setting(value, f"environment ({name})")
        for name in variables:
            value = self._dotenv.get(name)
            if value is not None and value != "":
                return Setting(value, f".env ({name})")
        return None

    def lookup(self, *names: str) -> Setting | None:
        found = self.variable(*names)
        if found is not None or self.config is None:
            return found
        for name in names:
            entry = self.config.setting(name)
            if entry is not None:
                text = configfile.as_text(entry.value)
                if text != "":
                    return Setting(text, f"{self.config.where(entry.line)} ({entry.key})")
        return None

    def enabled(self, flag: bool, name: str) -> bool:
        """A switch: on when its flag is given, else as the file says (false)."""
        if flag:
            return True
        found = self.lookup(name)
        return found is not None and found.value == "true"


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
    """One InfluxDB target. `name` keeps its spool and retries apart from the others';
    `tests_bucket`, when set, takes its test results (measurement `tests`)."""

    url: str
    token: Secret
    org: str
    bucket: str
    name: str = "default"
    tests_bucket: str = ""


DEFAULT_TARGET = "default"
#: the variables of the target named "default", by its keys in the config file
INFLUX_VARIABLES: dict[str, tuple[str, ...]] = {
    "url": ("INFLUX_URL", "INFLUXDB_V2_URL"),
    "token": ("INFLUX_TOKEN", "INFLUXDB_V2_TOKEN"),
    "org": ("INFLUX_ORG", "INFLUXDB_V2_ORG"),
    "bucket": ("INFLUX_BUCKET", "INFLUXDB_V2_BUCKET"),
    "tests_bucket": ("INFLUX_TESTS_BUCKET",),
}


def _check_url(url: str, what: str) -> None:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"{what} must be an http(s) URL, got {url!r}.")


def influx_settings(
    env: Environment,
    *,
    url: str | None = None,
    org: str | None = None,
    bucket: str | None = None,
) -> InfluxSettings:
    """The target named "default": the INFLUX_* variables, over a `default` target of the
    config file."""
    block = _default_block(env)
    resolved = {
        "INFLUX_URL": pick(url, env, *INFLUX_VARIABLES["url"]).value,
        "INFLUX_TOKEN": pick(None, env, *INFLUX_VARIABLES["token"]).value,
        "INFLUX_ORG": pick(org, env, *INFLUX_VARIABLES["org"]).value,
        "INFLUX_BUCKET": pick(bucket, env, *INFLUX_VARIABLES["bucket"]).value,
    }
    tests_bucket = pick(None, env, *INFLUX_VARIABLES["tests_bucket"]).value
    if block is not None:
        assert env.config is not None
        for key in ("url", "org", "bucket"):
            name = f"INFLUX_{key.upper()}"
            resolved[name] = resolved[name] or str(block.values.get(key, ""))
        tests_bucket = tests_bucket or str(block.values.get("tests_bucket", ""))
        if not resolved["INFLUX_TOKEN"]:
            resolved["INFLUX_TOKEN"] = _block_token(env, env.config, block).reveal()
    for name, value in resolved.items():
        if not value:
            raise ConfigError(f"{name} is not set; --format influxdb needs it (see .env.example).")
    _check_url(resolved["INFLUX_URL"], "INFLUX_URL")
    return InfluxSettings(
        url=resolved["INFLUX_URL"].rstrip("/"),
        token=Secret(resolved["INFLUX_TOKEN"]),
        org=resolved["INFLUX_ORG"],
        bucket=resolved["INFLUX_BUCKET"],
        tests_bucket=tests_bucket,
    )


def _blocks(env: Environment) -> tuple[configfile.Block, ...]:
    return env.config.blocks.get("influx", ()) if env.config is not None else ()


def _default_block(env: Environment) -> configfile.Block | None:
    for block in _blocks(env):
        if block.values["name"] == DEFAULT_TARGET:
            return block
    return None


def _block_token(env: Environment, config: ConfigFile, block: configfile.Block) -> Secret:
    """A target's token, from the variable its token_env names (environment or .env;
    never the file)."""
    variable = str(block.values["token_env"])
    found = env.variable(variable)
    if found is None:
        raise config.error(
            block.line_of("token_env"),
            f"{block.path}.token_env names {variable}, which is not set in the environment or .env",
        )
    token = found.value.strip()
    if any(ch.isspace() for ch in token):
        raise ConfigError(f"{variable} contains whitespace; check how it was set.")
    return Secret(token)


def _block_target(env: Environment, config: ConfigFile, block: configfile.Block) -> InfluxSettings:
    url = str(block.values["url"]).rstrip("/")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise config.error(
            block.line_of("url"), f"{block.path}.url must be an http(s) URL, got {url!r}"
        )
    for key in ("org", "bucket"):
        if not str(block.values[key]).strip():
            raise config.error(block.line_of(key), f"{block.path}.{key} is empty")
    return InfluxSettings(
        url=url,
        token=_block_token(env, config, block),
        org=str(block.values["org"]),
        bucket=str(block.values["bucket"]),
        name=str(block.values["name"]),
        tests_bucket=str(block.values.get("tests_bucket", "")),
    )


def influx_targets(env: Environment) -> tuple[InfluxSettings, ...]:
    """Every InfluxDB target: "default" from the INFLUX_* variables (and a `default`
    target of the file), then the file's other targets in file order."""
    targets: list[InfluxSettings] = []
    if env.variable(*INFLUX_VARIABLES["url"]) is not None or _default_block(env) is not None:
        targets.append(influx_settings(env))
    for block in _blocks(env):
        if block.values["name"] != DEFAULT_TARGET:
            assert env.config is not None
            targets.append(_block_target(env, env.config, block))
    if not targets:
        raise ConfigError(
            "INFLUX_URL is not set and the config file names no [[influx]] target; "
            "--format influxdb needs one (see .env.example)."
        )
    return tuple(targets)


def influx_configured(env: Environment) -> bool:
    """Whether any InfluxDB target is set up (for doctor)."""
    return env.variable(*INFLUX_VARIABLES["url"]) is not None or bool(_blocks(env))


# ---------------------------------------------------------------------------- time


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_moment(text: str, option: str, now: datetime | None = None) -> datetime:
    """`30d`, `12h`, `45m` (ago), or an ISO date/datetime (UTC when no zone is given)."""
    now = now or datetime.now(UTC)
    if not text.strip():
        raise ConfigError(f"{option} is empty; give a duration like 30d or an ISO date.")
    match = _DURATION.match(text)
    if match:
        amount = float(match.group(1)) * _UNITS[match.group(2).lower()]
        try:
            return now - timedelta(seconds=amount)
        except OverflowError:
            raise ConfigError(
                f"{option} {text!r} reaches back before the year 1; give a shorter duration."
            ) from None
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
    # an empty value ("--since ''", an unset shell variable) is a mistake, not the default
    start = parse_moment(since if since is not None else "1d", "--since", now)
    end = parse_moment(until, "--until", now) if until is not None else now
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
            raise ConfigError(
                "Name a repository (OWNER/REPO), set GITHUB_REPOSITORY or list "
                "repositories in multivac.toml."
            )
        # the file's github.repositories arrive comma-separated, like a variable
        repos = [part.strip() for part in found.value.split(",") if part.strip()]
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


def price_table(flag: Path | None, env: Environment) -> PriceTable | None:
    """--price-table over MULTIVAC_PRICE_TABLE, read and checked now; None: the packaged
    table."""
    chosen = pick(str(flag) if flag else None, env, "MULTIVAC_PRICE_TABLE").value
    if not chosen:
        return None
    from multivac.minutes.billing import load_price_table

    return load_price_table(Path(chosen).expanduser())


def retry_policy(env: Environment, max_wait: str | None = None) -> RetryPolicy:
    """The retry policy: --max-wait (or the file's retry.max_wait), and the
    MULTIVAC_RETRY_* timings (for tests and impatient users)."""
    budget = pick(max_wait, env, "retry.max_wait", default="15m")
    option = "--max-wait" if budget.origin in ("flag", "default") else budget.origin
    values: dict[str, float] = {"max_wait_s": parse_duration(budget.value, option)}
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
            raise ConfigError(
                f"{name} must be a positive number of seconds ({found.origin} says {found.value})."
            )
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
    influx: InfluxSettings | None = None  # the first of `targets`
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
    targets: tuple[InfluxSettings, ...] = ()  # every InfluxDB target (--format influxdb)
    log_archive_mb: int = 2048
    junit_artifacts: str | None = None
    test_summary: bool = False
    steps: bool = False
    runs: bool = True
    prices: PriceTable | None = None  # None: the packaged price table

    @property
    def records_coverage(self) -> bool:
        """Whether a finished gather covers the whole window of its repositories (a
        filtered or --latest gather does not)."""
        return self.since is not None and not (self.branches or self.workflows or self.event)


def plan_gather(
    env: Environment,
    *,
    repos: list[str] | None,
    output_format: Format | None = None,
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
    concurrency: int | None = None,
    max_wait: str | None = None,
    state: Path | None = None,
    log_archive_mb: int | None = None,
    junit_artifacts: str | None = None,
    test_summary: bool = False,
    steps: bool = False,
    runs: bool = True,
    prices: Path | None = None,
) -> GatherPlan:
    """Resolve and check a gather's flags against the environment, `.env` and the config
    file. Repositories and org are one choice: named on the command line, else
    GITHUB_REPOSITORY, else the file's github.repositories and github.org."""
    from multivac.sinks import Format

    fmt = _format(env, output_format)
    if since is not None and not since.strip():
        raise ConfigError("--since is empty; give a duration like 30d or an ISO date.")
    all_history = latest is not None and not since
    if not all_history:
        since = pick(since, env, "gather.since", default="1d").value
    window = parse_window(None if all_history else since, until)
    policy = retry_policy(env, max_wait)
    if not repos and not org and env.variable("GITHUB_REPOSITORY") is None:
        # the file's choice: its repositories and its organisation, together
        org = pick(None, env, "github.org").value or None
        listed = pick(None, env, "GITHUB_REPOSITORY").value
        repos = [part.strip() for part in listed.split(",") if part.strip()] or None
    targets = influx_targets(env) if fmt is Format.influxdb else ()
    chosen_output = pick(str(output) if output else None, env, "gather.output").value
    return GatherPlan(
        repos=tuple(repositories(repos, env, org=org)),
        until=window.until,
        since=None if all_history else window.since,
        output_format=fmt,
        state_dir=state_dir(state, env),
        github=github_settings(env),
        policy=policy,
        influx=targets[0] if targets else None,
        influx_policy=influx_wait(env, policy),
        output=Path(chosen_output).expanduser() if chosen_output else None,
        org=org,
        shard=parse_shard(shard),
        latest=latest,
        branches=tuple(branches or ()),
        workflows=tuple(workflows or ()),
        event=event,
        lean=env.enabled(lean, "gather.lean_tags"),
        create_bucket=env.enabled(create_bucket, "gather.create_bucket"),
        rules=rule_sources(rules, env),
        fetch_logs=fetch_logs and pick(None, env, "gather.logs").value != "false",
        concurrency=_concurrency(env, concurrency),
        targets=targets,
        log_archive_mb=archive_budget(env, log_archive_mb),
        steps=env.enabled(steps, "gather.steps"),
        runs=runs and pick(None, env, "gather.runs").value != "false",
        prices=price_table(prices, env),
        junit_artifacts=junit_glob(
            pick(junit_artifacts, env, "gather.junit_artifacts").value or None
        ),
        test_summary=env.enabled(test_summary, "gather.test_summary"),
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


def _format(env: Environment, flag: Format | None) -> Format:
    from multivac.sinks import Format

    if flag is not None:
        return flag
    chosen = pick(None, env, "gather.format", default=Format.csv.value)
    return Format(chosen.value)  # the file's value was checked against the choices


def _concurrency(env: Environment, flag: int | None) -> int:
    chosen = pick(None if flag is None else str(flag), env, "gather.concurrency", default="4")
    value = int(chosen.value)
    if not 1 <= value <= 32:
        raise ConfigError(f"concurrency must be from 1 to 32 ({chosen.origin} says {value}).")
    return value


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
    window = parse_window(since if since is not None else default_since, until)
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


def _output_format(fmt: str, as_json: bool, default: str) -> str:
    """--format, or json for --json; both given must agree."""
    if not as_json:
        return fmt
    if fmt not in (default, "json"):
        raise ConfigError(f"--json and --format {fmt} ask for two formats; give one.")
    return "json"


@dataclass(frozen=True)
class UsagePlan:
    """`multivac usage`: the store window, what to group by, how to print it."""

    store: StorePlan
    org: str | None
    by: GroupBy
    period: Period
    output_format: UsageFormat
    prices: PriceTable | None = None  # None: the packaged price table


def plan_usage(
    env: Environment,
    *,
    repos: list[str] | None,
    org: str | None,
    since: str | None,
    until: str | None,
    by: GroupBy,
    period: Period,
    output_format: UsageFormat,
    as_json: bool = False,
    prices: Path | None = None,
    state: Path | None = None,
    offline: bool = False,
) -> UsagePlan:
    """Resolve `usage` flags: repositories, or an organisation, or every stored one."""
    from multivac.minutes.usage import UsageFormat

    if org is not None:
        repositories([], env, org=org)  # checks the name
    store = plan_store(
        env,
        repos=repos,
        since=since,
        until=until,
        state=state,
        offline=offline,
        default_since="30d",
        all_stored=True,
    )
    if org is not None and not repos:
        store = replace(store, repos=())  # the organisation's, not $GITHUB_REPOSITORY
    return UsagePlan(
        store=store,
        org=org,
        by=by,
        period=period,
        output_format=UsageFormat(_output_format(output_format.value, as_json, "table")),
        prices=price_table(prices, env),
    )


@dataclass(frozen=True)
class CapacityPlan:
    """`multivac capacity`: the store window (whole minutes), grouping, output."""

    store: StorePlan
    by: CapacityBy
    output_format: CapacityFormat
    influx: InfluxSettings | None = None
    influx_policy: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_wait_s=30.0))
    create_bucket: bool = False
    targets: tuple[InfluxSettings, ...] = ()  # every InfluxDB target (--format influxdb)


def _whole_minutes(window: StorePlan) -> StorePlan:
    """The window widened to whole minutes: every minute it reports is counted whole."""
    since = window.since.replace(second=0, microsecond=0)
    until = window.until.replace(second=0, microsecond=0)
    if until < window.until:
        until += timedelta(minutes=1)
    return replace(window, since=since, until=until)


def plan_capacity(
    env: Environment,
    *,
    repos: list[str] | None,
    since: str | None,
    until: str | None,
    by: CapacityBy,
    output_format: CapacityFormat,
    as_json: bool = False,
    create_bucket: bool = False,
    max_wait: str | None = None,
    state: Path | None = None,
    offline: bool = False,
) -> CapacityPlan:
    from multivac.minutes.capacity import CapacityFormat

    store = plan_store(
        env,
        repos=repos,
        since=since,
        until=until,
        state=state,
        offline=offline,
        default_since="7d",
        all_stored=True,
    )
    fmt = CapacityFormat(_output_format(output_format.value, as_json, "table"))
    policy = retry_policy(env, max_wait)
    targets = influx_targets(env) if fmt is CapacityFormat.INFLUXDB else ()
    return CapacityPlan(
        store=_whole_minutes(store),
        by=by,
        output_format=fmt,
        influx=targets[0] if targets else None,
        influx_policy=influx_wait(env, policy),
        create_bucket=create_bucket,
        targets=targets,
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
    targets: tuple[InfluxSettings, ...] = ()


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
    targets = influx_targets(env) if output_format is Format.influxdb else ()
    return ReclassifyPlan(
        repos=tuple(repos or ()),
        since=parse_moment(since, "--since") if since is not None else None,
        until=parse_moment(until, "--until") if until is not None else None,
        rules=rule_sources(rules, env),
        state_dir=state_dir(state, env),
        output_format=output_format,
        output=output,
        influx=targets[0] if targets else None,
        policy=influx_wait(env, policy),
        lean=env.enabled(lean, "gather.lean_tags"),
        dry_run=dry_run,
        targets=targets,
    )


@dataclass(frozen=True)
class CheckPlan:
    """`multivac check`: alert rules over the local store, and where alerts go."""

    repos: tuple[str, ...]  # empty: every stored repository
    state_dir: Path
    github_url: str  # the store keeps runs per GitHub
    rules: tuple[Rule, ...]
    webhook: Secret | None  # the webhook URL is a secret: whoever has it can post
    webhook_variable: str
    policy: RetryPolicy


ALERT_WEBHOOK = "MULTIVAC_ALERT_WEBHOOK"


def plan_check(
    env: Environment,
    *,
    repos: list[str] | None,
    failure_share: list[str] | None = None,
    new_signatures: bool = False,
    queue_p95: list[str] | None = None,
    flaky_share: list[str] | None = None,
    hours: float | None = None,
    min_jobs: int | None = None,
    state: Path | None = None,
    max_wait: str | None = None,
) -> CheckPlan:
    """Rules from the flags when any is given, else from the config file."""
    from multivac import alerts

    for repo in repos or ():
        if not _REPO.match(repo):
            raise ConfigError(f"Repository {repo!r} is not of the form OWNER/REPO.")
    default_hours = 24.0
    entry = env.config.entries.get("alerts.hours") if env.config is not None else None
    if entry is not None and env.config is not None:
        default_hours = float(entry.value)
        if default_hours <= 0:
            raise env.config.error(entry.line, "alerts.hours must be more than 0")
    rules: list[Rule] = alerts.rules_from_flags(
        failure_share=failure_share or (),
        new_signatures=new_signatures,
        queue_p95=queue_p95 or (),
        flaky_share=flaky_share or (),
        hours=hours if hours is not None else default_hours,
        min_jobs=min_jobs,
    )
    if not rules and env.config is not None:
        rules = alerts.rules_from_file(env.config)
    if not rules:
        raise ConfigError(
            "no alert rules: give --failure-share, --new-signatures, --queue-p95 or "
            "--flaky-share, or add [[alerts.*]] rules to the config file "
            "(`multivac config init` shows them)."
        )
    variable = pick(None, env, "alerts.webhook_env", default=ALERT_WEBHOOK).value
    found = env.variable(variable)
    webhook = Secret(found.value.strip()) if found is not None else None
    return CheckPlan(
        repos=tuple(repos or ()),
        state_dir=state_dir(state, env),
        github_url=github_settings(env).api_url,
        rules=tuple(rules),
        webhook=webhook,
        webhook_variable=variable,
        # a webhook is retried for a minute, not for a gather's budget
        policy=retry_policy(env, max_wait or "1m"),
    )


@dataclass(frozen=True)
class ServePlan:
    """`multivac serve`: where to listen, what to check, where the records go."""

    host: str
    port: int
    output_format: Format
    state_dir: Path
    github: GitHubSettings
    policy: RetryPolicy
    secret: Secret | None  # None: --insecure-no-signature, deliveries are not checked
    influx: InfluxSettings | None = None  # the first of `targets`
    influx_policy: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_wait_s=30.0))
    output: Path | None = None
    lean: bool = False
    create_bucket: bool = False
    rules: tuple[str, ...] = ()
    fetch_logs: bool = True
    log_archive_mb: int = 2048
    steps: bool = False
    runs: bool = True
    prices: PriceTable | None = None  # None: the packaged price table
    targets: tuple[InfluxSettings, ...] = ()  # every InfluxDB target (--format influxdb)
    test_summary: bool = False  # the file's gather.test_summary: a point per job with tests


def webhook_secret(env: Environment, insecure: bool) -> Secret | None:
    """MULTIVAC_WEBHOOK_SECRET; without it serve starts only when told it may accept
    unsigned deliveries."""
    found = env.variable("MULTIVAC_WEBHOOK_SECRET")  # a secret: never from the file
    if found is not None:
        return Secret(found.value)
    if insecure:
        return None
    raise ConfigError(
        "MULTIVAC_WEBHOOK_SECRET is not set: serve accepts only deliveries signed with the "
        "webhook's secret (set it, or pass --insecure-no-signature for a local trial)."
    )


def plan_serve(
    env: Environment,
    *,
    host: str,
    port: int,
    output_format: Format,
    output: Path | None = None,
    insecure: bool = False,
    lean: bool = False,
    create_bucket: bool = False,
    rules: list[str] | None = None,
    fetch_logs: bool = True,
    max_wait: str | None = None,
    state: Path | None = None,
    steps: bool = False,
    runs: bool = True,
    prices: Path | None = None,
) -> ServePlan:
    """Resolve and check serve's flags against the environment."""
    from multivac.sinks import Format

    if not host.strip() or any(ch.isspace() for ch in host):
        raise ConfigError(f"--host {host!r} is not a host name or address.")
    policy = retry_policy(env, max_wait)
    targets = influx_targets(env) if output_format is Format.influxdb else ()
    # the choices that shape the records are the gathers' (the file's gather.* keys), so
    # that serve and gather write the same points
    return ServePlan(
        host=host,
        port=port,
        output_format=output_format,
        state_dir=state_dir(state, env),
        github=github_settings(env),
        policy=policy,
        secret=webhook_secret(env, insecure),
        influx=targets[0] if targets else None,
        influx_policy=influx_wait(env, policy),
        output=output,
        lean=env.enabled(lean, "gather.lean_tags"),
        create_bucket=env.enabled(create_bucket, "gather.create_bucket"),
        rules=rule_sources(rules, env),
        fetch_logs=fetch_logs and pick(None, env, "gather.logs").value != "false",
        log_archive_mb=archive_budget(env, None),
        steps=env.enabled(steps, "gather.steps"),
        runs=runs and pick(None, env, "gather.runs").value != "false",
        prices=price_table(prices, env),
        targets=targets,
        test_summary=env.enabled(False, "gather.test_summary"),
    )
