"""`multivac tests`: test results of local logs (offline), and the failing tests the
local store holds (`tests stats`, `tests last-seen`)."""

from __future__ import annotations

import csv
import html
import json
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING

from rich.console import Console

from multivac.commands.local import not_a_file
from multivac.config import GitHubSettings, StorePlan
from multivac.errors import MultivacError, SinkError, os_reason
from multivac.retry import RetryPolicy

if TYPE_CHECKING:
    from multivac.testresults.store import StoredTest

__all__ = ["LastSeenFormat", "last_seen", "parse_logs", "stats"]


class LastSeenFormat(StrEnum):
    csv = "csv"
    html = "html"


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            yield chunk


def parse_logs(
    paths: Sequence[Path], rules: Sequence[str], as_json: bool, show_all: bool, console: Console
) -> int:
    """Each file's test results, read as gather reads a log (the same single pass as
    classification); passed results only with `show_all`. Returns the exit code."""
    from multivac.classify import load_catalog, scan_log
    from multivac.testresults import TestCollector, load_parsers
    from multivac.testresults.model import PASSED

    catalog = load_catalog(rules)
    parsers = load_parsers(rules)
    out: list[dict[str, object]] = []
    code = 0
    for path in paths:
        if not_a_file(path, console):
            code = 2
            continue
        collector = TestCollector(parsers)
        try:
            scan_log(_chunks(path), catalog, listeners=[collector])
        except OSError as exc:
            console.print(f"error: {path}: {os_reason(exc)}.", markup=False)
            code = 2
            continue
        results = collector.results()
        dropped = sum(collector.dropped.values())
        if dropped:
            console.print(
                f"{path}: {dropped} results past the cap of {collector.cap} per log were "
                "counted, not kept.",
                markup=False,
            )
        for result in results:
            if result.status == PASSED and not show_all:
                continue
            out.append(
                {
                    "path": str(path),
                    "framework": result.framework,
                    "test": result.test,
                    "configuration": result.configuration,
                    "status": result.status,
                    "line_number": result.line_number,
                    "message": result.message,
                }
            )
    if as_json:
        sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
        return code
    current = None
    for item in out:
        if item["path"] != current:
            current = item["path"]
            sys.stdout.write(f"{current}:\n")
        config = f" [{item['configuration']}]" if item["configuration"] else ""
        line = f"line {item['line_number']}" if item["line_number"] else ""
        sys.stdout.write(f"  {item['status']:<7} {item['test']}{config}  ({item['framework']}")
        sys.stdout.write(f", {line})\n" if line else ")\n")
        if item["message"] and item["status"] != PASSED:
            sys.stdout.write(f"          {item['message']}\n")
    shown = {str(p) for p in paths} - {str(i["path"]) for i in out}
    for name in sorted(shown):
        if Path(name).is_file():
            console.print(f"{name}: no test results.", markup=False)
    return code


def _failing(
    plan: StorePlan,
    github: GitHubSettings,
    policy: RetryPolicy,
    console: Console,
    branch: str | None = None,
) -> tuple[list[StoredTest], MultivacError | None]:
    from multivac.commands.failures import fill_store
    from multivac.store import Store
    from multivac.testresults.store import TestStore

    failed = fill_store(plan, github, policy, console)
    with Store.open(plan.state_dir, github=github.api_url) as store:
        repos = plan.repos or tuple(store.repositories())
        items = list(TestStore(store).failing(repos, plan.since, plan.until, branch=branch))
    return items, failed


def _iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def stats(
    plan: StorePlan,
    github: GitHubSettings,
    policy: RetryPolicy,
    console: Console,
    *,
    as_json: bool = False,
) -> None:
    """The failing tests of the window, most failures first."""
    from multivac.testresults.reports import count_failing

    items, failed = _failing(plan, github, policy, console)
    counts = count_failing(items)
    if as_json:
        rows = [
            {
                "test": c.test,
                "framework": c.framework,
                "failures": c.failures,
                "flaky": c.flaky,
                "first_seen": _iso(c.first_seen),
                "last_seen": _iso(c.last_seen),
                "last_url": c.last_url,
            }
            for c in counts
        ]
        sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    else:
        out = sys.stdout
        width = min(80, max([len("test"), *(len(c.test) for c in counts)]))
        out.write(
            f"{'test':<{width}}  {'framework':<10} {'failures':>8} {'flaky':>6}  "
            f"{'first seen':<16}  {'last seen':<16}  last job\n"
        )
        for c in counts:
            out.write(
                f"{c.test:<{width}}  {c.framework:<10} {c.failures:>8} "
                f"{100 * c.flaky_share:>5.0f}%  {_day(c.first_seen):<16}  "
                f"{_day(c.last_seen):<16}  {c.last_url}\n"
            )
    console.print(f"{len(counts)} failing tests in the window.", markup=False)
    if failed is not None:
        raise failed


def _day(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "?"


LAST_SEEN_COLUMNS = (
    "test",
    "configuration",
    "status",
    "runner_label",
    "last_seen",
    "branch",
    "count",
    "job_url",
    "log_url",
)


def last_seen(
    plan: StorePlan,
    github: GitHubSettings,
    policy: RetryPolicy,
    console: Console,
    *,
    branch: str | None,
    fmt: LastSeenFormat,
    output: Path | None,
) -> None:
    """Per test, configuration, status and runner label: last seen, branch, count, and
    links to the last job and its log (the original multivac's report)."""
    from multivac.testresults.reports import last_seen as rows_of

    items, failed = _failing(plan, github, policy, console, branch)
    rows = rows_of(items)
    cells = [
        [
            r.test,
            r.configuration,
            r.status,
            r.runner_label,
            _iso(r.last_seen) or "",
            r.branch,
            str(r.count),
            r.job_url,
            r.log_url,
        ]
        for r in rows
    ]
    try:
        if output is None or str(output) == "-":
            _write_table(sys.stdout, cells, fmt, plan, branch)
        else:
            output.parent.mkdir(parents=True, exist_ok=True)
            with open(output, "w", encoding="utf-8", newline="") as handle:
                _write_table(handle, cells, fmt, plan, branch)
    except OSError as exc:
        name = "stdout" if output is None or str(output) == "-" else output
        raise SinkError(f"cannot write {name}: {os_reason(exc)}.") from None
    console.print(f"{len(rows)} failing tests last seen in the window.", markup=False)
    if failed is not None:
        raise failed


def _write_table(
    out: IO[str], cells: list[list[str]], fmt: LastSeenFormat, plan: StorePlan, branch: str | None
) -> None:
    if fmt is LastSeenFormat.csv:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(LAST_SEEN_COLUMNS)
        writer.writerows(cells)
        return
    from multivac.html_report import CSS, esc, link

    title = f"Failing tests last seen, {plan.since:%Y-%m-%d} – {plan.until:%Y-%m-%d}" + (
        f", branch {branch}" if branch else ""
    )
    head = "".join(f"<th>{esc(name)}</th>" for name in LAST_SEEN_COLUMNS[:7])
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class=num>{esc(value)}</td>" if index == 6 else f"<td>{esc(value)}</td>"
            for index, value in enumerate(row[:7])
        )
        + f"<td>{link(row[7], 'job')} · {link(row[8], 'log')}</td></tr>"
        for row in cells
    )
    repos = ", ".join(plan.repos) or "every stored repository"
    out.write(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1><p class=muted>{html.escape(repos)}</p>"
        f"<table><tr>{head}<th>links</th></tr>{body}</table>"
        "<p class=muted>Generated by multivac.</p></body></html>\n"
    )
