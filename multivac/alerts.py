"""Alert rules over the local store: what `multivac check` evaluates.

Four kinds, each comparing the last `hours` (the window, ending now) with a threshold
or with the `hours` before it:

- `failure_share`: the share of all job attempts that failed with a type, against the
  period before; fires when it grew by `factor` or more and at least `min_jobs` jobs
  had the type. A period before with no jobs at all gives nothing to compare: no alert.
- `new_signatures`: a failure signature (`Classification.signature`, the evidence with
  what varies between jobs taken out) that no job had before the window.
- `queue_p95`: the 95th percentile of queue time (`started_at - created_at`) of a
  runner label, over `threshold`.
- `flaky_share`: the share of a workflow's failed job attempts that passed on a re-run
  (the `flaky` tag), over `threshold_percent`.

A subject of "*" (every type, label or workflow) makes one finding per subject. Jobs
count in the period their `created_at` (the point's time) falls in. Rules read the
store only, like every report; the InfluxDB template and the Grafana dashboard in
`dashboards/` carry the same conditions (docs/alerts.md).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from multivac.configfile import Block, ConfigFile
from multivac.errors import ConfigError
from multivac.html_report import percentile  # the report's, so that both agree
from multivac.model import NOT_FAILURES
from multivac.queries import Outcome, new_signatures, outcomes
from multivac.store import Store

EVERY = "*"
DEFAULT_HOURS = 24.0
#: a percentile of a handful of jobs says little: the default least number of jobs
DEFAULT_MIN_JOBS = 5
EXIT_FIRED = 4


# ---------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class FailureShare:
    type: str = EVERY
    factor: float = 2.0
    hours: float = DEFAULT_HOURS
    min_jobs: int = DEFAULT_MIN_JOBS
    kind = "failure_share"


@dataclass(frozen=True)
class NewSignatures:
    types: tuple[str, ...] = ()
    hours: float = DEFAULT_HOURS
    min_jobs: int = 1
    kind = "new_signatures"


@dataclass(frozen=True)
class QueueP95:
    threshold_s: float
    runner_label: str = EVERY
    hours: float = DEFAULT_HOURS
    min_jobs: int = DEFAULT_MIN_JOBS
    kind = "queue_p95"


@dataclass(frozen=True)
class FlakyShare:
    threshold_percent: float
    workflow: str = EVERY
    hours: float = DEFAULT_HOURS
    min_jobs: int = DEFAULT_MIN_JOBS
    kind = "flaky_share"


Rule = FailureShare | NewSignatures | QueueP95 | FlakyShare
KINDS = ("failure_share", "new_signatures", "queue_p95", "flaky_share")


@dataclass(frozen=True)
class Finding:
    """One rule's verdict on one subject (a type, a label, a workflow, a signature)."""

    kind: str
    subject: str
    fired: bool
    text: str  # one line, what was measured against what
    examples: tuple[str, ...] = ()  # evidence and links of the jobs behind it


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    jobs: int = 0  # job attempts in the longest window looked at

    @property
    def fired(self) -> list[Finding]:
        return [f for f in self.findings if f.fired]


# ---------------------------------------------------------------------------- parsing


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _seconds(text: str, what: str) -> float:
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(f"{what} {text!r} is not a duration like 10m, 90s or 1h.")
    return float(match.group(1)) * _UNITS[match.group(2).lower()]


def _split(spec: str, option: str, example: str) -> tuple[str, str | None]:
    name, sep, value = spec.rpartition("=")
    if not sep:
        return spec.strip(), None
    if not name.strip() or not value.strip():
        raise ConfigError(f"{option} {spec!r} must look like {example}.")
    return name.strip(), value.strip()


def rules_from_flags(
    *,
    failure_share: Sequence[str] = (),
    new_signatures: bool = False,
    queue_p95: Sequence[str] = (),
    flaky_share: Sequence[str] = (),
    hours: float = DEFAULT_HOURS,
    min_jobs: int | None = None,
) -> list[Rule]:
    """`--failure-share TYPE[=FACTOR]`, `--new-signatures`, `--queue-p95 LABEL=DURATION`,
    `--flaky-share WORKFLOW=PERCENT`; TYPE, LABEL and WORKFLOW may be `*`."""
    if hours <= 0:
        raise ConfigError(f"--hours must be more than 0, got {hours:g}.")
    least = {} if min_jobs is None else {"min_jobs": min_jobs}
    rules: list[Rule] = []
    for spec in failure_share:
        name, value = _split(spec, "--failure-share", "test_failure=2 or '*'")
        factor = 2.0
        if value is not None:
            try:
                factor = float(value.rstrip("xX"))
            except ValueError:
                raise ConfigError(
                    f"--failure-share {spec!r}: {value!r} is not a factor like 2 or 1.5."
                ) from None
        if factor <= 1:
            raise ConfigError(f"--failure-share {spec!r}: the factor must be more than 1.")
        rules.append(FailureShare(name, factor, hours, **least))
    if new_signatures:
        rules.append(NewSignatures((), hours, **least))
    for spec in queue_p95:
        name, value = _split(spec, "--queue-p95", "ubuntu-latest=10m or '*=10m'")
        if value is None:
            raise ConfigError(f"--queue-p95 {spec!r} must look like ubuntu-latest=10m.")
        rules.append(QueueP95(_seconds(value, "--queue-p95"), name, hours, **least))
    for spec in flaky_share:
        name, value = _split(spec, "--flaky-share", "ci.yml=20%")
        if value is None:
            raise ConfigError(f"--flaky-share {spec!r} must look like ci.yml=20%.")
        try:
            percent = float(value.rstrip("%"))
        except ValueError:
            raise ConfigError(f"--flaky-share {spec!r}: {value!r} is not a percentage.") from None
        if not 0 <= percent <= 100:
            raise ConfigError(f"--flaky-share {spec!r}: the percentage must be from 0 to 100.")
        rules.append(FlakyShare(percent, name, hours, **least))
    return rules


def rules_from_file(config: ConfigFile) -> list[Rule]:
    """The `[[alerts.*]]` rules of the config file (types were checked when it was read;
    values are checked here, naming the line)."""
    default_hours = DEFAULT_HOURS
    found = config.entries.get("alerts.hours")
    if found is not None:
        default_hours = float(found.value)
        if default_hours <= 0:
            raise config.error(found.line, "alerts.hours must be more than 0")
    rules: list[Rule] = []
    for kind in KINDS:
        for block in config.blocks.get(f"alerts.{kind}", ()):
            rules.append(_rule(config, block, kind, default_hours))
    return rules


def _rule(config: ConfigFile, block: Block, kind: str, default_hours: float) -> Rule:
    values: Mapping[str, object] = block.values

    def number(key: str, default: float) -> float:
        value = values.get(key, default)
        return float(value) if isinstance(value, int | float) else default

    hours = number("hours", default_hours)
    if hours <= 0:
        raise config.error(block.line_of("hours"), f"{block.path}.hours must be more than 0")
    defaults = {"new_signatures": 1}
    least = int(number("min_jobs", defaults.get(kind, DEFAULT_MIN_JOBS)))
    if least < 1:
        raise config.error(block.line_of("min_jobs"), f"{block.path}.min_jobs must be 1 or more")
    if kind == "failure_share":
        factor = number("factor", 2.0)
        if factor <= 1:
            raise config.error(block.line_of("factor"), f"{block.path}.factor must be more than 1")
        return FailureShare(str(values["type"]), factor, hours, least)
    if kind == "new_signatures":
        types = values.get("types", [])
        chosen = tuple(str(t) for t in types) if isinstance(types, list) else ()
        return NewSignatures(chosen, hours, least)
    if kind == "queue_p95":
        try:
            threshold = _seconds(str(values["threshold"]), "threshold")
        except ConfigError:
            raise config.error(
                block.line_of("threshold"),
                f'{block.path}.threshold must be a duration like "10m"',
            ) from None
        return QueueP95(threshold, str(values.get("runner_label", EVERY)), hours, least)
    workflow = str(values.get("workflow", EVERY))
    return FlakyShare(number("threshold_percent", 0.0), workflow, hours, least)


# ---------------------------------------------------------------------------- evaluation


def _when(item: Outcome) -> datetime | None:
    return item.stored.job.created_at or item.stored.run.created_at


def _queued(item: Outcome) -> float | None:
    job = item.stored.job
    if job.started_at is None or job.created_at is None:
        return None
    return max(0.0, (job.started_at - job.created_at).total_seconds())


def duration(seconds: float) -> str:
    if seconds < 600:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def _hours(hours: float) -> str:
    return f"{hours:g}h"


def _example(item: Outcome) -> str:
    job, run = item.stored.job, item.stored.run
    cls = item.stored.classification
    evidence = f": {cls.evidence}" if cls is not None and cls.evidence else ""
    link = job.html_url or run.html_url
    return f"{run.repository} {run.workflow} / {job.name}{evidence} ({link})"


class _Periods:
    """The stored job attempts of the current and previous periods of one rule."""

    def __init__(self, items: Sequence[Outcome], now: datetime, hours: float) -> None:
        start = now - timedelta(hours=hours)
        before = start - timedelta(hours=hours)
        self.current: list[Outcome] = []
        self.previous: list[Outcome] = []
        for item in items:
            when = _when(item)
            if when is None or when > now:
                continue
            if when > start:
                self.current.append(item)
            elif when > before:
                self.previous.append(item)


def _failure_share(rule: FailureShare, periods: _Periods) -> list[Finding]:
    now = Counter(i.measurement for i in periods.current)
    before = Counter(i.measurement for i in periods.previous)
    total_now, total_before = len(periods.current), len(periods.previous)
    if rule.type == EVERY:
        subjects = sorted(t for t in now if t not in NOT_FAILURES)
    else:
        subjects = [rule.type]
    findings = []
    for subject in subjects:
        count = now[subject]
        share = count / total_now if total_now else 0.0
        earlier = before[subject] / total_before if total_before else 0.0
        text = (
            f"{subject}: {100 * share:.1f}% of {total_now} jobs in the last "
            f"{_hours(rule.hours)}, {100 * earlier:.1f}% of {total_before} before"
        )
        if not total_before:
            fired = False
            text += " (no jobs before to compare with)"
        else:
            fired = count >= rule.min_jobs and share > earlier and share >= rule.factor * earlier
            growth = f"x{share / earlier:.1f}" if earlier else "new"
            text += f" ({growth}; fires at x{rule.factor:g} with {rule.min_jobs}+ jobs)"
        examples = tuple(_example(i) for i in periods.current if i.measurement == subject)[:3]
        findings.append(Finding(rule.kind, subject, fired, text, examples if fired else ()))
    return findings


def _new_signatures(
    rule: NewSignatures, history: Sequence[Outcome], texts: dict[str, str], now: datetime
) -> list[Finding]:
    """Signatures first seen in the window over all stored history: the same query as
    `multivac failures new`."""
    start = now - timedelta(hours=rule.hours)
    found = new_signatures(history, texts, start, now)
    findings = []
    for count in sorted(found, key=lambda c: (-c.jobs, c.signature)):
        if rule.types and count.type not in rule.types:
            continue
        if count.jobs < rule.min_jobs:
            continue
        text = (
            f"{count.signature} ({count.type}): {count.jobs} jobs in the last "
            f"{_hours(rule.hours)}, never seen before: {count.text}"
        )
        examples = [
            _example(item)
            for item in history
            if (cls := item.stored.classification) is not None
            and cls.signature == count.signature
            and (when := _when(item)) is not None
            and start <= when <= now
        ]
        findings.append(Finding(rule.kind, count.signature, True, text, tuple(examples[:3])))
    if not findings:
        scope = f" of {', '.join(rule.types)}" if rule.types else ""
        findings.append(
            Finding(
                rule.kind,
                EVERY,
                False,
                f"no new failure signature{scope} in the last {_hours(rule.hours)}",
            )
        )
    return findings


def _queue_p95(rule: QueueP95, periods: _Periods) -> list[Finding]:
    by_label: dict[str, list[float]] = defaultdict(list)
    for item in periods.current:
        queued = _queued(item)
        if queued is not None:
            by_label[",".join(item.stored.job.labels)].append(queued)
    subjects = sorted(by_label) if rule.runner_label == EVERY else [rule.runner_label]
    findings = []
    for label in subjects:
        values = by_label.get(label, [])
        if not values:
            text = f"{label}: no started jobs in the last {_hours(rule.hours)}"
            findings.append(Finding(rule.kind, label, False, text))
            continue
        p95 = percentile(values, 95)
        fired = len(values) >= rule.min_jobs and p95 > rule.threshold_s
        text = (
            f"{label or '(no labels)'}: queue time p95 {duration(p95)} over {len(values)} jobs "
            f"in the last {_hours(rule.hours)} (threshold {duration(rule.threshold_s)}, "
            f"{rule.min_jobs}+ jobs)"
        )
        findings.append(Finding(rule.kind, label, fired, text))
    return findings


def _workflow_matches(item: Outcome, workflow: str) -> bool:
    run = item.stored.run
    return workflow in (run.workflow, run.workflow_path, run.workflow_path.rsplit("/", 1)[-1])


def _flaky_share(rule: FlakyShare, periods: _Periods) -> list[Finding]:
    failed = [i for i in periods.current if i.failed]
    if rule.workflow == EVERY:
        subjects = sorted({i.stored.run.workflow for i in failed})
        groups = {w: [i for i in failed if i.stored.run.workflow == w] for w in subjects}
    else:
        groups = {rule.workflow: [i for i in failed if _workflow_matches(i, rule.workflow)]}
    findings = []
    for workflow, items in groups.items():
        flaky = [i for i in items if i.flaky]
        share = 100 * len(flaky) / len(items) if items else 0.0
        fired = len(items) >= rule.min_jobs and share > rule.threshold_percent
        text = (
            f"{workflow}: {share:.0f}% of {len(items)} failed jobs in the last "
            f"{_hours(rule.hours)} passed on a re-run (threshold "
            f"{rule.threshold_percent:g}%, {rule.min_jobs}+ failed jobs)"
        )
        examples = tuple(_example(i) for i in flaky[:3]) if fired else ()
        findings.append(Finding(rule.kind, workflow, fired, text, examples))
    return findings


def evaluate(
    store: Store, rules: Iterable[Rule], *, now: datetime, repos: Sequence[str] = ()
) -> Report:
    """Every rule's findings over the stored jobs of `repos` (all stored when empty)."""
    rules = list(rules)
    report = Report()
    if not rules:
        return report
    longest = max(rule.hours for rule in rules)
    # runs are filed by their creation; a job can be queued a while after its run began
    since = now - timedelta(hours=2 * longest) - timedelta(days=1)
    chosen = list(repos) or store.repositories()
    items = list(outcomes(store, chosen, since, now)) if chosen else []
    report.jobs = len(items)
    # new signatures are new against all stored history, read once when a rule needs it
    history: list[Outcome] | None = None
    texts: dict[str, str] = {}
    for rule in rules:
        periods = _Periods(items, now, rule.hours)
        if isinstance(rule, FailureShare):
            report.findings += _failure_share(rule, periods)
        elif isinstance(rule, NewSignatures):
            if history is None:
                history = list(outcomes(store, chosen, None, now)) if chosen else []
                texts = store.signature_texts()
            report.findings += _new_signatures(rule, history, texts, now)
        elif isinstance(rule, QueueP95):
            report.findings += _queue_p95(rule, periods)
        else:
            report.findings += _flaky_share(rule, periods)
    return report


# ---------------------------------------------------------------------------- messages

_NAMES = {
    "failure_share": "failure share",
    "new_signatures": "new signature",
    "queue_p95": "queue p95",
    "flaky_share": "flaky share",
}


def lines(report: Report) -> list[str]:
    """One line per finding, for stdout."""
    return [
        f"{'FIRING' if f.fired else 'ok    '}  {_NAMES[f.kind]:<13}  {f.text}"
        for f in report.findings
    ]


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown(report: Report) -> str:
    """The GitHub step summary: a table of every finding, the fired ones first."""
    fired = report.fired
    head = (
        f"## multivac check: {len(fired)} alert{'s' if len(fired) != 1 else ''} fired"
        if fired
        else "## multivac check: no alert fired"
    )
    rows = ["| | rule | finding |", "| --- | --- | --- |"]
    for finding in sorted(report.findings, key=lambda f: not f.fired):
        mark = "🔴" if finding.fired else "✅"
        rows.append(f"| {mark} | {_NAMES[finding.kind]} | {_cell(finding.text)} |")
    parts = [head, "", f"{report.jobs} job attempts in the store for these windows.", ""]
    parts += rows
    for finding in fired:
        if finding.examples:
            parts += ["", f"**{_cell(_NAMES[finding.kind])} {_cell(finding.subject)}**", ""]
            parts += [f"- {_cell(example)}" for example in finding.examples]
    return "\n".join(parts) + "\n"


def message(report: Report) -> str:
    """The webhook's text (Slack mrkdwn): the fired findings only."""
    fired = report.fired
    parts = [f"*multivac: {len(fired)} alert{'s' if len(fired) != 1 else ''} fired*"]
    for finding in fired:
        parts.append(f"• *{_NAMES[finding.kind]}* {finding.text}")
        parts += [f"    ◦ {example}" for example in finding.examples]
    return "\n".join(parts)
