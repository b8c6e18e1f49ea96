"""The config file: `multivac.toml` in the working directory, `--config FILE` or
`MULTIVAC_CONFIG`.

It holds every setting that has a flag or a variable, InfluxDB targets (`[[influx]]`)
and alert rules (`[[alerts.*]]`). It comes last in the precedence (flags, environment,
`.env`, then the file): `config.Environment` reads it behind the other two, so every
setting and every plan gets it without knowing it exists.

Secrets are never in the file: a target names the environment variable that holds its
token (`token_env`), and a `token` key is refused. Every problem is one sentence naming
the file, the line and the key. `tomllib` gives the line of a syntax error only; the
lines of keys come from `_key_lines`, a scan of the text that knows just enough TOML
(tables, arrays of tables, dotted and quoted keys, strings and multi-line values).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multivac.errors import ConfigError

FILENAME = "multivac.toml"
VARIABLE = "MULTIVAC_CONFIG"
FORMATS = ("csv", "json", "influxdb", "line-protocol", "influx-csv", "jsonl")

# ---------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Key:
    """One key of the file: its type, and the variable it stands for (None: a flag only)."""

    kind: str  # "str", "strlist", "bool", "int", "number", "duration", "percent"
    env: str | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    keys: Mapping[str, Key | Table | Array]


@dataclass(frozen=True)
class Array:
    """An array of tables (`[[name]]`)."""

    table: Table
    required: tuple[str, ...] = ()


_RULE_COMMON: dict[str, Key | Table | Array] = {
    "hours": Key("number"),
    "min_jobs": Key("int"),
}

SCHEMA = Table(
    {
        "state_dir": Key("str", "MULTIVAC_STATE_DIR"),
        "rules": Key("strlist", "MULTIVAC_RULES"),
        "price_table": Key("str", "MULTIVAC_PRICE_TABLE"),
        "github": Table(
            {
                "api_url": Key("str", "GITHUB_API_URL"),
                "repositories": Key("strlist", "GITHUB_REPOSITORY"),
                "org": Key("str"),
            }
        ),
        "gather": Table(
            {
                "since": Key("str"),
                "format": Key("str", choices=FORMATS),
                "output": Key("str"),
                "lean_tags": Key("bool"),
                "logs": Key("bool"),
                "concurrency": Key("int"),
                "create_bucket": Key("bool"),
                "log_archive_mb": Key("int", "MULTIVAC_LOG_ARCHIVE_MB"),
                "steps": Key("bool"),
                "runs": Key("bool"),
                "junit_artifacts": Key("str"),
                "test_summary": Key("bool"),
            }
        ),
        "retry": Table(
            {
                "max_wait": Key("duration"),
                "influx_wait": Key("duration", "MULTIVAC_INFLUX_WAIT"),
                "base": Key("number", "MULTIVAC_RETRY_BASE"),
                "cap": Key("number", "MULTIVAC_RETRY_CAP"),
                "secondary_wait": Key("number", "MULTIVAC_SECONDARY_WAIT"),
                "http_timeout": Key("number", "MULTIVAC_HTTP_TIMEOUT"),
            }
        ),
        "influx": Array(
            Table(
                {
                    "name": Key("str"),
                    "url": Key("str"),
                    "org": Key("str"),
                    "bucket": Key("str"),
                    "token_env": Key("str"),
                    "tests_bucket": Key("str"),
                }
            ),
            required=("name", "url", "org", "bucket", "token_env"),
        ),
        "alerts": Table(
            {
                "hours": Key("number"),
                "webhook_env": Key("str"),
                "failure_share": Array(
                    Table({"type": Key("str"), "factor": Key("number"), **_RULE_COMMON}),
                    required=("type",),
                ),
                "new_signatures": Array(Table({"types": Key("strlist"), **_RULE_COMMON})),
                "queue_p95": Array(
                    Table(
                        {"runner_label": Key("str"), "threshold": Key("duration"), **_RULE_COMMON}
                    ),
                    required=("threshold",),
                ),
                "flaky_share": Array(
                    Table(
                        {
                            "workflow": Key("str"),
                            "threshold_percent": Key("percent"),
                            **_RULE_COMMON,
                        }
                    ),
                    required=("threshold_percent",),
                ),
            }
        ),
    }
)

_TYPE_NAMES = {
    "str": "a string",
    "strlist": "a list of strings",
    "bool": "true or false",
    "int": "an integer",
    "number": "a number",
    "duration": 'a duration like "15m" or "1h"',
    "percent": "a number from 0 to 100",
}
_DURATION = re.compile(r"^\s*\d+(?:\.\d+)?\s*[smhdw]\s*$", re.IGNORECASE)


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__  # dates and times


def _fits(key: Key, value: object) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    match key.kind:
        case "str":
            return isinstance(value, str)
        case "strlist":
            return isinstance(value, list) and all(isinstance(v, str) for v in value)
        case "bool":
            return isinstance(value, bool)
        case "int":
            return isinstance(value, int) and not isinstance(value, bool)
        case "number":
            return number
        case "duration":
            return isinstance(value, str) and bool(_DURATION.match(value))
        case "percent":
            return number and 0 <= float(value) <= 100  # type: ignore[arg-type]
    return False  # pragma: no cover - the schema's kinds are listed above


def as_text(value: object) -> str:
    """A file value as the string a variable would hold (lists comma-separated)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


# ---------------------------------------------------------------------------- lines


_BARE = r"[A-Za-z0-9_-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"|\'[^\']*\''
_PART = rf"\s*(?:{_BARE}|{_QUOTED})\s*"
_DOTTED = rf"{_PART}(?:\.{_PART})*"
_HEADER = re.compile(rf"^\s*(\[\[|\[)({_DOTTED})(\]\]|\])")
_ASSIGN = re.compile(rf"^({_DOTTED})=")


def _parts(dotted: str) -> list[str]:
    found = re.findall(rf"\s*({_BARE}|{_QUOTED})\s*", dotted)
    out = []
    for part in found:
        if part[:1] in "\"'":
            part = tomllib.loads(f"x = {part}")["x"]
        out.append(part)
    return out


def _scan(line: str, open_string: str | None, depth: int) -> tuple[str | None, int]:
    """The multi-line string still open and the bracket depth at the end of a line."""
    i = 0
    while i < len(line):
        if open_string is not None:
            end = line.find(open_string, i)
            if end < 0:
                return open_string, depth
            if open_string == '"""':
                # an escaped quote does not close the string
                slashes = len(line[:end]) - len(line[:end].rstrip("\\"))
                if slashes % 2:
                    i = end + 1
                    continue
            i = end + 3
            open_string = None
            continue
        ch = line[i]
        if ch == "#":
            break
        if line.startswith(('"""', "'''"), i):
            open_string = line[i : i + 3]
            i += 3
            continue
        if ch == '"':
            match = re.match(r'"(?:[^"\\]|\\.)*"', line[i:])
            i += match.end() if match else len(line)
            continue
        if ch == "'":
            end = line.find("'", i + 1)
            i = end + 1 if end >= 0 else len(line)
            continue
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        i += 1
    return open_string, depth


def _key_lines(text: str) -> dict[str, int]:
    """The line of every key and table header, by path (`influx[1].url`)."""
    lines: dict[str, int] = {}
    counts: dict[str, int] = {}
    table: list[str] = []
    open_string: str | None = None
    depth = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if open_string is None and depth == 0:
            header = _HEADER.match(line)
            if header:
                names = _parts(header.group(2))
                if header.group(1) == "[[":
                    prefix = table_prefix(names[:-1], counts)
                    base = _path([*prefix, names[-1]])
                    index = counts.get(base, 0)
                    counts[base] = index + 1
                    table = [*prefix, f"{names[-1]}[{index}]"]
                else:
                    table = table_prefix(names, counts)
                lines.setdefault(_path(table), number)
                continue
            assign = _ASSIGN.match(line)
            if assign:
                lines.setdefault(_path([*table, *_parts(assign.group(1))]), number)
                line = line[assign.end() :]
        open_string, depth = _scan(line, open_string, depth)
    return lines


def table_prefix(names: list[str], counts: Mapping[str, int]) -> list[str]:
    """Header names with the latest index of each array of tables they pass through:
    `[alerts.x]` after two `[[alerts]]` is `alerts[1].x`."""
    out: list[str] = []
    for name in names:
        path = _path([*out, name])
        if path in counts:
            out.append(f"{name}[{counts[path] - 1}]")
        else:
            out.append(name)
    return out


def _path(parts: list[str]) -> str:
    return ".".join(parts)


# ---------------------------------------------------------------------------- the file


@dataclass(frozen=True)
class Entry:
    """A setting the file holds: its value and line."""

    key: str
    value: Any
    line: int


@dataclass(frozen=True)
class Block:
    """One table of an array of tables (`[[influx]]`, `[[alerts.queue_p95]]`)."""

    path: str  # "influx[1]"
    line: int
    values: Mapping[str, Any]
    lines: Mapping[str, int]

    def line_of(self, key: str) -> int:
        return self.lines.get(key, self.line)


@dataclass(frozen=True)
class ConfigFile:
    path: Path
    entries: Mapping[str, Entry]  # settings by dotted key: "github.api_url"
    blocks: Mapping[str, tuple[Block, ...]] = field(default_factory=dict)  # "influx": (...)
    how: str = ""  # how it was chosen: "--config", "MULTIVAC_CONFIG", "current directory"

    def where(self, line: int) -> str:
        return f"{self.path} line {line}"

    def error(self, line: int, text: str) -> ConfigError:
        return ConfigError(f"{self.where(line)}: {text}.")

    def by_variable(self, name: str) -> Entry | None:
        """The entry that stands for an environment variable."""
        key = _BY_VARIABLE.get(name)
        return self.entries.get(key) if key else None

    def setting(self, name: str) -> Entry | None:
        """A setting by dotted key or by the variable it stands for."""
        return self.entries.get(name) or self.by_variable(name)


def _keys(table: Table, prefix: str = "") -> Iterator[tuple[str, Key]]:
    for name, spec in table.keys.items():
        if isinstance(spec, Key):
            yield prefix + name, spec
        elif isinstance(spec, Table):
            yield from _keys(spec, f"{prefix}{name}.")


_BY_VARIABLE = {key.env: path for path, key in _keys(SCHEMA) if key.env}


def every_key(table: Table = SCHEMA, prefix: str = "") -> Iterator[str]:
    """Every key the schema knows, arrays of tables as `influx[].name`."""
    for name, spec in table.keys.items():
        if isinstance(spec, Key):
            yield prefix + name
        elif isinstance(spec, Table):
            yield from every_key(spec, f"{prefix}{name}.")
        else:
            yield from every_key(spec.table, f"{prefix}{name}[].")


class _Reader:
    def __init__(self, path: Path, lines: dict[str, int]) -> None:
        self.path = path
        self.lines = lines
        self.entries: dict[str, Entry] = {}
        self.blocks: dict[str, list[Block]] = {}

    def line(self, path: str) -> int:
        """The line of a key, or of the nearest enclosing table that has one."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path.rpartition(".")[0]
        return 1

    def fail(self, path: str, text: str) -> ConfigError:
        return ConfigError(f"{self.path} line {self.line(path)}: {text}.")

    def table(self, spec: Table, data: Mapping[str, Any], prefix: str, shown: str) -> None:
        for name, value in data.items():
            path = prefix + name
            label = shown + name
            if name == "token":
                raise self.fail(
                    path,
                    f"{label}: a token is never written in the config file; name the "
                    "environment variable that holds it with token_env",
                )
            known = spec.keys.get(name)
            if known is None:
                names = ", ".join(sorted(spec.keys))
                where = f"[{shown.rstrip('.')}]" if shown else "the top level"
                raise self.fail(path, f"unknown key {label} ({where} knows {names})")
            if isinstance(known, Table):
                if not isinstance(value, dict):
                    raise self.fail(path, f"{label} must be a table, got {_describe(value)}")
                self.table(known, value, path + ".", label + ".")
            elif isinstance(known, Array):
                self.array(known, value, path, label)
            else:
                self.key(known, value, path, label)

    def key(self, key: Key, value: Any, path: str, label: str) -> None:
        if not _fits(key, value):
            raise self.fail(
                path, f"{label} must be {_TYPE_NAMES[key.kind]}, got {_describe(value)}"
            )
        if key.choices and value not in key.choices:
            raise self.fail(path, f"{label} must be one of {', '.join(key.choices)}, got {value!r}")
        if "[" not in path:
            self.entries[path] = Entry(label, value, self.line(path))

    def array(self, spec: Array, value: Any, path: str, label: str) -> None:
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(
                path, f"{label} must be an array of tables ([[{label}]]), got {_describe(value)}"
            )
        blocks = self.blocks.setdefault(label, [])
        for index, item in enumerate(value):
            at = f"{path}[{index}]"
            shown = f"{label}[{index}]"
            self.table(spec.table, item, at + ".", shown + ".")
            for name in spec.required:
                if name not in item:
                    raise self.fail(at, f"{shown} has no {name}")
            lines = {name: self.line(f"{at}.{name}") for name in item}
            blocks.append(Block(shown, self.line(at), dict(item), lines))


def parse(text: str, path: Path, how: str = "") -> ConfigFile:
    """Check a config file's text against the schema; ConfigError names file and line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
        if match:
            reason = message[: match.start()]
            raise ConfigError(
                f"{path} line {match.group(1)}: not valid TOML ({reason[:1].lower()}"
                f"{reason[1:]}, column {match.group(2)})."
            ) from None
        raise ConfigError(f"{path}: not valid TOML ({message}).") from None
    reader = _Reader(path, _key_lines(text))
    reader.table(SCHEMA, data, "", "")
    influx = reader.blocks.get("influx", [])
    seen: dict[str, Block] = {}
    for block in influx:
        name = str(block.values["name"])
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise ConfigError(
                f"{path} line {block.line_of('name')}: {block.path}.name {name!r} must be "
                "letters, digits, '.', '_' or '-'."
            )
        if name in seen:
            raise ConfigError(
                f"{path} line {block.line_of('name')}: {block.path}.name {name!r} is "
                f"already the name of the target at line {seen[name].line}."
            )
        seen[name] = block
    return ConfigFile(
        path=path,
        entries=reader.entries,
        blocks={name: tuple(blocks) for name, blocks in reader.blocks.items()},
        how=how,
    )


def load(path: Path, how: str = "") -> ConfigFile:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"the config file {path} ({how}) does not exist.") from None
    except IsADirectoryError:
        raise ConfigError(f"the config file {path} ({how}) is a directory.") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = "it is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc.strerror
        raise ConfigError(f"cannot read the config file {path}: {reason}.") from None
    return parse(text, path, how)


def locate(flag: Path | None, variable: str | None, cwd: Path | None = None) -> tuple[Path, str]:
    """The file to read and how it was chosen: --config, then MULTIVAC_CONFIG, then
    multivac.toml in the current directory. The path is "" when there is none."""
    if flag is not None:
        return flag, "--config"
    if variable:
        return Path(variable).expanduser(), VARIABLE
    here = (cwd or Path.cwd()) / FILENAME
    if here.is_file():
        return Path(FILENAME), "current directory"
    return Path(), ""


# ---------------------------------------------------------------------------- config init

EXAMPLE = """\
# multivac.toml: multivac's settings. Flags win over the environment, the environment
# over .env, and .env over this file. Every key is optional. Tokens are never written
# here: a target names the environment variable that holds its token (token_env).
# `multivac config show` prints every setting and where it came from.

# the local store and the InfluxDB spool (MULTIVAC_STATE_DIR, --state-dir)
state_dir = "~/.local/state/multivac"
# extra failure rules: YAML files or shipped pack names (MULTIVAC_RULES, --rules)
rules = []
# USD per runner minute, overriding the packaged table (MULTIVAC_PRICE_TABLE, --price-table)
# price_table = "prices.json"

[github]
# the API root; GitHub Enterprise Server: https://HOST/api/v3 (GITHUB_API_URL)
api_url = "https://api.github.com"
# repositories gathered when none is named (GITHUB_REPOSITORY wins when it is set,
# as it is in every GitHub Actions job)
repositories = ["octo-org/hello-world"]
# every non-archived repository of this organisation as well (--org)
# org = "octo-org"

[gather]
# the window's start when --since is not given: a duration ago or an ISO date
since = "1d"
# csv, json, jsonl, influx-csv, line-protocol or influxdb (--format)
format = "csv"
# where file formats go; "-" is stdout (--output)
output = "-"
# job_id, run_id, run_attempt and commit_sha as fields, not tags (--lean-tags)
lean_tags = false
# read failed jobs' logs to classify them (false: --no-logs)
logs = true
# runs fetched at once, 1 to 32 (--concurrency)
concurrency = 4
# create each target's bucket when it is missing (--create-bucket)
create_bucket = false
# megabytes of failed jobs' logs kept in the state directory, 0: none
# (MULTIVAC_LOG_ARCHIVE_MB, --log-archive-mb)
log_archive_mb = 2048
# one `steps` point per step of each written job (--steps)
steps = false
# one `runs` point per run attempt (false: --no-runs)
runs = true
# read test results from the JUnit XML in run artifacts whose name matches (--junit-artifacts)
# junit_artifacts = "test-results*"
# a `test_summary` point per job with passed/failed/skipped/hung counts (--test-summary)
test_summary = false

[retry]
# how long to wait out a GitHub outage or rate limit before stopping (--max-wait)
max_wait = "15m"
# how long InfluxDB writes are retried before they go to the spool (MULTIVAC_INFLUX_WAIT)
influx_wait = "30s"
# first backoff, longest backoff, wait after a secondary rate limit and the timeout of
# every request, in seconds (MULTIVAC_RETRY_BASE, _RETRY_CAP, _SECONDARY_WAIT, _HTTP_TIMEOUT)
base = 1
cap = 60
secondary_wait = 60
http_timeout = 30

# InfluxDB 2 targets: every point goes to every target, each with its own spool and
# retries, so one being down never holds back the others. INFLUX_URL, INFLUX_TOKEN,
# INFLUX_ORG and INFLUX_BUCKET in the environment make a target named "default" (and
# override the fields of a target named "default" here).
[[influx]]
name = "station"
url = "http://localhost:8086"
org = "my-org"
bucket = "multivac"
# the environment variable (or .env entry) that holds this target's token
token_env = "INFLUX_TOKEN"
# test results (measurement "tests") go to this bucket instead, when it is set
tests_bucket = "multivac-tests"

[[influx]]
name = "cloud"
url = "https://eu-central-1-1.aws.cloud2.influxdata.com"
org = "my-org"
bucket = "multivac"
token_env = "INFLUX_CLOUD_TOKEN"

# `multivac check` evaluates these rules over the local store and exits 4 when one fires.
[alerts]
# the window of every rule that does not set its own, in hours
hours = 24
# the environment variable that holds the Slack-compatible webhook URL
webhook_env = "MULTIVAC_ALERT_WEBHOOK"

# a failure type's share of all jobs in the last `hours`, against the `hours` before;
# fires when it grew by `factor` and at least `min_jobs` jobs had it. type "*": each type
[[alerts.failure_share]]
type = "*"
factor = 2.0
min_jobs = 5
hours = 24

# a failure signature no job had before the last `hours` (types: only these types)
[[alerts.new_signatures]]
types = []
min_jobs = 1
hours = 24

# queue time p95 of a runner label over `threshold`; runner_label "*": each label
[[alerts.queue_p95]]
runner_label = "*"
threshold = "10m"
min_jobs = 5
hours = 24

# the share of a workflow's failed jobs that passed on a re-run; workflow "*": each
[[alerts.flaky_share]]
workflow = "*"
threshold_percent = 20
min_jobs = 5
hours = 168
"""
