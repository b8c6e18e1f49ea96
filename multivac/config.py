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
from urllib.parse import urlparse

from dotenv import dotenv_values, find_dotenv

from multivac.errors import ConfigError

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
class Source:
    """Where a setting came from, for `config show`."""

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

    def lookup(self, *names: str) -> Source | None:
        for name in names:
            value = self._environ.get(name)
            if value is not None and value != "":
                return Source(value, f"environment ({name})")
        for name in names:
            value = self._dotenv.get(name)
            if value is not None and value != "":
                return Source(value, f".env ({name})")
        return None


def pick(flag: str | None, env: Environment, *names: str, default: str | None = None) -> Source:
    if flag is not None and flag != "":
        return Source(flag, "flag")
    found = env.lookup(*names)
    if found is not None:
        return found
    return Source(default or "", "default")


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


def state_dir(flag: str | None, env: Environment) -> Path:
    chosen = pick(flag, env, "MULTIVAC_STATE_DIR").value
    if chosen:
        return Path(chosen).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "multivac"
