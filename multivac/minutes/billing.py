"""What a job's minutes cost: its runner type, billable minutes and price.

A job runs on one of three kinds of runner, told apart by its runs-on labels and the
jobs API's `runner_group_name`:

- a standard GitHub-hosted runner (`ubuntu-24.04`, `windows-latest`, `macos-15`...):
  billable minutes are the job's whole minutes times GitHub's minute multiplier for
  the OS (Linux 1, Windows 2, macOS 10), priced at the SKU's per-minute rate;
- a GitHub-hosted larger runner (an org-named runner such as `ubuntu-24.04-16core`,
  or `macos-15-xlarge`): whole minutes at the SKU's rate, no multiplier (GitHub
  bills larger runners per minute and never from the included minutes);
- a self-hosted runner: no billable minutes, its runner minutes still count.

Labels that match none of these count as self-hosted and are flagged `unknown`, so a
summary can name them (a larger runner with an unusual name shows up there, and the
user maps it in `--price-table`). Prices and label rules are data, in
`multivac/data/prices.json`.
"""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from multivac.errors import ConfigError
from multivac.model import Job

#: the runner_group_name GitHub gives jobs on its standard hosted runners
HOSTED_GROUP = "GitHub Actions"
SELF_HOSTED_SKU = "self_hosted"


class RunnerKind(StrEnum):
    STANDARD = "github-hosted"
    LARGER = "larger"
    SELF_HOSTED = "self-hosted"


@dataclass(frozen=True, slots=True)
class Runner:
    """How one job's runner is billed."""

    kind: RunnerKind
    sku: str
    multiplier: int
    usd_per_minute: float
    #: its labels matched nothing known: counted as self-hosted, to be named in a summary
    unknown: bool = False


@dataclass(frozen=True, slots=True)
class Bill:
    """One job's minutes: wall-clock runner minutes, billable minutes, cost."""

    runner: Runner
    runner_min: float
    billable_min: int
    cost_usd: float


@dataclass(frozen=True)
class PriceTable:
    """Per-minute prices by SKU and the label rules that pick a SKU."""

    taken: str
    source: str
    rates: Mapping[str, float]
    multipliers: Mapping[str, int]
    standard_platforms: Mapping[str, str]
    standard_labels: tuple[tuple[str, str], ...]
    larger: tuple[tuple[str, str], ...]
    effective: str = ""
    _cache: dict[tuple[tuple[str, ...], str], Runner] = field(
        default_factory=dict, compare=False, repr=False
    )

    def runner(self, labels: Iterable[str], runner_group: str = "") -> Runner:
        """The runner a job with these runs-on labels and runner group was billed as."""
        key = (tuple(labels), runner_group)
        found = self._cache.get(key)
        if found is None:
            found = self._decide(key[0], runner_group)
            self._cache[key] = found
        return found

    def _decide(self, labels: tuple[str, ...], runner_group: str) -> Runner:
        lowered = [label.strip().lower() for label in labels if label and label.strip()]
        if "self-hosted" in lowered:
            return self._self_hosted(unknown=False)
        for pattern, sku in self.larger:
            if any(fnmatch.fnmatchcase(label, pattern) for label in lowered):
                return Runner(RunnerKind.LARGER, sku, 1, self.rates[sku])
        # Standard hosted runners always report the "GitHub Actions" group; a job that
        # names a hosted image but ran in another group ran on an org's own runner.
        if runner_group and runner_group != HOSTED_GROUP:
            return self._self_hosted(unknown=True)
        for pattern, sku in self.standard_labels:
            if any(fnmatch.fnmatchcase(label, pattern) for label in lowered):
                return self._standard(sku)
        hosted = _hosted_platform(lowered)
        if hosted is not None and hosted in self.standard_platforms:
            return self._standard(self.standard_platforms[hosted])
        return self._self_hosted(unknown=True)

    def _standard(self, sku: str) -> Runner:
        os_name = _sku_os(sku)
        return Runner(RunnerKind.STANDARD, sku, self.multipliers.get(os_name, 1), self.rates[sku])

    def _self_hosted(self, *, unknown: bool) -> Runner:
        rate = self.rates.get(SELF_HOSTED_SKU, 0.0)
        return Runner(RunnerKind.SELF_HOSTED, SELF_HOSTED_SKU, 0, rate, unknown)

    def bill(self, labels: Iterable[str], runner_group: str, in_progress_s: float | None) -> Bill:
        """One job's bill; `in_progress_s` None (never ran) or negative counts as 0."""
        runner = self.runner(labels, runner_group)
        seconds = in_progress_s if in_progress_s is not None and in_progress_s > 0 else 0.0
        whole = whole_minutes(seconds)
        return Bill(
            runner=runner,
            runner_min=seconds / 60,
            billable_min=whole * runner.multiplier,
            cost_usd=whole * runner.usd_per_minute,
        )

    def bill_job(self, job: Job) -> Bill:
        """The bill of a stored or fetched job (its `completed_at − started_at`)."""
        seconds = None
        if job.started_at is not None and job.completed_at is not None:
            seconds = (job.completed_at - job.started_at).total_seconds()
        return self.bill(job.labels, job.runner_group, seconds)


def whole_minutes(seconds: float) -> int:
    """GitHub rounds each job up to the next whole minute (61 s bill as 2 minutes)."""
    return math.ceil(seconds / 60) if seconds > 0 else 0


def _sku_os(sku: str) -> str:
    return sku.split("_", 1)[0]


@cache
def _hosted_patterns() -> tuple[tuple[str, str], ...]:
    raw = resources.files("multivac").joinpath("data/runner_labels.json").read_text("utf-8")
    table = json.loads(raw)
    return tuple((pattern, f"{os_name}-{arch}") for pattern, os_name, arch in table["hosted"])


def _hosted_platform(lowered: list[str]) -> str | None:
    """`os-arch` of the first label naming a GitHub-hosted image, else None."""
    for label in lowered:
        for pattern, platform in _hosted_patterns():
            if fnmatch.fnmatchcase(label, pattern):
                return platform
    return None


# ---------------------------------------------------------------------------- loading


def load_price_table(path: Path | None = None) -> PriceTable:
    """The packaged price table, with the parts `path` (JSON or YAML) gives replaced.

    An override file uses the packaged file's layout and may give any part of it:
    `skus` entries (a number, or an object with `usd_per_minute`) replace or add
    rates; its `larger` and `standard_labels` rules are tried before the packaged
    ones; `multipliers` and `standard_platforms` entries replace theirs; `taken`,
    `source` and `effective` replace the packaged ones.
    """
    base = _packaged()
    if path is None:
        return _build(base, "the packaged price table")
    where = f"the price table {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot read {where}: {reason}.") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        detail = str(exc).splitlines()[0].rstrip(".:")
        raise ConfigError(f"{where} is not valid {_format(path)}: {detail}.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must hold an object with a 'skus' table.")
    unknown = sorted(set(data) - set(base) - {"_comment"})
    if unknown:
        raise ConfigError(f"{where} has unknown keys: {', '.join(unknown)}.")
    merged = dict(base)
    merged["skus"] = {**base["skus"], **_section(data, "skus", dict, where)}
    merged["multipliers"] = {**base["multipliers"], **_section(data, "multipliers", dict, where)}
    merged["standard_platforms"] = {
        **base["standard_platforms"],
        **_section(data, "standard_platforms", dict, where),
    }
    for key in ("larger", "standard_labels"):
        merged[key] = [*_section(data, key, list, where), *base[key]]
    for key in ("taken", "source", "effective"):
        if key in data:
            merged[key] = data[key]
    if "taken" not in data:
        merged["taken"] = f"{base['taken']}, amended by {path}"
    return _build(merged, where)


def _format(path: Path) -> str:
    return "YAML" if path.suffix.lower() in (".yaml", ".yml") else "JSON"


@cache
def _packaged() -> dict[str, Any]:
    raw = resources.files("multivac").joinpath("data/prices.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(raw)
    return data


def _section(data: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = data.get(key, kind())
    if not isinstance(value, kind):
        shape = "an object" if kind is dict else "a list"
        raise ConfigError(f"{where}: '{key}' must be {shape}.")
    return value


def _rate(sku: str, value: Any, where: str) -> float:
    if isinstance(value, dict):
        value = value.get("usd_per_minute")
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(
            f"{where}: the rate of SKU '{sku}' must be a non-negative number of USD per minute."
        )
    return float(value)


def _rules(data: dict[str, Any], key: str, rates: Mapping[str, float], where: str) -> Any:
    rules = []
    for rule in data[key]:
        if (
            not isinstance(rule, list | tuple)
            or len(rule) != 2
            or not all(isinstance(part, str) and part for part in rule)
        ):
            raise ConfigError(f"{where}: each '{key}' rule must be a [label glob, SKU] pair.")
        pattern, sku = rule
        if sku not in rates:
            raise ConfigError(
                f"{where}: the '{key}' rule for '{pattern}' names SKU '{sku}', which has no rate."
            )
        rules.append((pattern.lower(), sku))
    return tuple(rules)


def _build(data: dict[str, Any], where: str) -> PriceTable:
    rates = {str(sku): _rate(str(sku), value, where) for sku, value in data["skus"].items()}
    multipliers: dict[str, int] = {}
    for os_name, value in data["multipliers"].items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(
                f"{where}: the multiplier of '{os_name}' must be a non-negative whole number."
            )
        multipliers[str(os_name)] = value
    platforms: dict[str, str] = {}
    for platform, sku in data["standard_platforms"].items():
        if sku not in rates:
            raise ConfigError(
                f"{where}: standard platform '{platform}' names SKU '{sku}', which has no rate."
            )
        platforms[str(platform)] = sku
    return PriceTable(
        taken=str(data.get("taken", "")),
        source=str(data.get("source", "")),
        effective=str(data.get("effective", "")),
        rates=rates,
        multipliers=multipliers,
        standard_platforms=platforms,
        standard_labels=_rules(data, "standard_labels", rates, where),
        larger=_rules(data, "larger", rates, where),
    )
