"""The HTML report: one self-contained page (inline CSS and SVG, no script, no network).

Every text from GitHub or a log goes through `html.escape`, and only http(s) URLs
become links, so nothing in a job name or a log line can run in the page.
"""

from __future__ import annotations

import html
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from multivac.minutes import GroupBy, MinuteLoad, Period, UsageJob, from_model, minute_load, usage
from multivac.model import packaged_prices
from multivac.queries import Outcome, failure_stats

if TYPE_CHECKING:
    from multivac.minutes import PriceTable
    from multivac.testresults.store import StoredTest

PALETTE = (
    "#d62728", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
)  # fmt: skip
CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;padding:0 1rem;color:#222}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd}
.muted{color:#666}.cards{display:flex;gap:1rem;flex-wrap:wrap}
.card{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem;min-width:9rem}
.card b{display:block;font-size:1.5rem}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #eee;vertical-align:top}
th{background:#f6f6f6}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;
word-break:break-word}.legend span{display:inline-block;margin-right:1rem}
.swatch{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:middle}
svg{max-width:100%;height:auto}
"""


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def link(url: str | None, text: str) -> str:
    """A link only for http(s) URLs; anything else (javascript:, data:) stays text."""
    if url and url.lower().startswith(("https://", "http://")):
        return f'<a href="{esc(url)}">{esc(text)}</a>'
    return esc(text)


def _seconds(end: datetime | None, start: datetime | None) -> float | None:
    if end is None or start is None:
        return None
    return max(0.0, (end - start).total_seconds())


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of non-empty values."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def _when(item: Outcome) -> datetime | None:
    return item.stored.job.created_at or item.stored.run.created_at


def _colours(types: Iterable[str]) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(types)}


def _failures_chart(failed: list[Outcome], since: datetime, until: datetime) -> str:
    if not failed:
        return '<p class="muted">No failures in this window.</p>'
    hourly = (until - since) <= timedelta(days=2)
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    start = since.replace(minute=0, second=0, microsecond=0)
    if not hourly:
        start = start.replace(hour=0)
    buckets: list[datetime] = []
    cursor = start
    while cursor <= until and len(buckets) < 400:
        buckets.append(cursor)
        cursor += step
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    for item in failed:
        when = _when(item)
        if when is None:
            continue
        index = int((when - start) / step)
        if 0 <= index < len(buckets):
            counts[index][item.measurement] += 1
    order = [name for name, _ in Counter(i.measurement for i in failed).most_common()]
    colour = _colours(order)
    tallest = max((sum(c.values()) for c in counts.values()), default=1)
    width, height, left, bottom = 900, 260, 40, 30
    bar = (width - left - 10) / max(len(buckets), 1)
    parts = [
        f'<svg role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>Failures by type over time</title>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" '
        'stroke="#999"/>',
        f'<text x="{left - 6}" y="14" text-anchor="end" font-size="11">{tallest}</text>',
        f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end" font-size="11">0</text>',
    ]
    scale = (height - bottom - 10) / tallest
    for index, bucket in enumerate(buckets):
        x = left + index * bar
        y: float = height - bottom
        for name in order:
            count = counts.get(index, Counter()).get(name, 0)
            if not count:
                continue
            h = count * scale
            y -= h
            label = f"{bucket:%Y-%m-%d %H:00} {name}: {count}"
            parts.append(
                f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{max(bar - 2, 1):.1f}" '
                f'height="{h:.1f}" fill="{colour[name]}"><title>{esc(label)}</title></rect>'
            )
    every = max(1, len(buckets) // 8)
    for index in range(0, len(buckets), every):
        x = left + index * bar + bar / 2
        text = f"{buckets[index]:%H:00}" if hourly else f"{buckets[index]:%m-%d}"
        parts.append(
            f'<text x="{x:.1f}" y="{height - 10}" text-anchor="middle" font-size="11">{text}</text>'
        )
    parts.append("</svg>")
    legend = "".join(
        f'<span><i class="swatch" style="background:{colour[n]}"></i>{esc(n)}</span>' for n in order
    )
    return "".join(parts) + f'<p class="legend">{legend}</p>'


def _queue_section(items: list[Outcome]) -> str:
    by_label: dict[str, list[float]] = defaultdict(list)
    for item in items:
        job = item.stored.job
        queued = _seconds(job.started_at, job.created_at)
        if queued is None:
            continue
        by_label[",".join(job.labels) or "(no labels)"].append(queued)
    if not by_label:
        return '<p class="muted">No started jobs in this window.</p>'
    rows = sorted(
        (
            (label, percentile(v, 50), percentile(v, 95), max(v), len(v))
            for label, v in by_label.items()
        ),
        key=lambda row: -row[2],
    )[:25]
    top = max(row[2] for row in rows) or 1.0
    width, row_h, left = 900, 22, 260
    height = row_h * len(rows) + 10
    svg = [
        f'<svg role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>Queue time p50 and p95 by runner label'
        "</title>"
    ]
    for i, (label, p50, p95, _mx, _n) in enumerate(rows):
        y = 5 + i * row_h
        w95 = (width - left - 80) * p95 / top
        w50 = (width - left - 80) * p50 / top
        svg.append(
            f'<text x="{left - 8}" y="{y + 14}" text-anchor="end" font-size="11">'
            f"{esc(label[:40])}</text>"
            f'<rect x="{left}" y="{y + 3}" width="{max(w95, 1):.1f}" height="14" fill="#aec7e8">'
            f"<title>p95 {duration(p95)}</title></rect>"
            f'<rect x="{left}" y="{y + 3}" width="{max(w50, 1):.1f}" height="14" fill="#1f77b4">'
            f"<title>p50 {duration(p50)}</title></rect>"
            f'<text x="{left + max(w95, 1) + 6:.1f}" y="{y + 14}" font-size="11">'
            f"{duration(p50)} / {duration(p95)}</text>"
        )
    svg.append("</svg>")
    table = "".join(
        f"<tr><td>{esc(label)}</td><td class=num>{n}</td><td class=num>{duration(p50)}</td>"
        f"<td class=num>{duration(p95)}</td><td class=num>{duration(mx)}</td></tr>"
        for label, p50, p95, mx, n in rows
    )
    return (
        "".join(svg)
        + "<table><tr><th>runner label</th><th class=num>jobs</th><th class=num>p50</th>"
        + f"<th class=num>p95</th><th class=num>max</th></tr>{table}</table>"
    )


def _evidence(item: Outcome) -> str:
    found = item.stored.classification
    if found is None or not found.evidence:
        return ""
    step = f"[{found.step}] " if found.step else ""
    return f"<code>{esc(step + found.evidence)}</code>"


def _job_cell(item: Outcome) -> str:
    run, job = item.stored.run, item.stored.job
    return (
        f"{esc(run.repository)} · {esc(run.workflow)} / "
        f"{link(job.html_url or run.html_url, job.name)}"
    )


def _top_failing(failed: list[Outcome]) -> str:
    if not failed:
        return '<p class="muted">No failures in this window.</p>'
    groups: dict[tuple[str, str, str], list[Outcome]] = defaultdict(list)
    for item in failed:
        run, job = item.stored.run, item.stored.job
        groups[(run.repository, run.workflow, job.name)].append(item)
    ranked = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:20]
    rows = []
    far = datetime.min.replace(tzinfo=UTC)
    for (repo, workflow, name), items in ranked:
        last = max(items, key=lambda i: _when(i) or far)
        types = ", ".join(
            f"{t} {c}" for t, c in Counter(i.measurement for i in items).most_common()
        )
        url = last.stored.job.html_url or last.stored.run.html_url
        rows.append(
            f"<tr><td>{esc(repo)} · {esc(workflow)} / {esc(name)}</td>"
            f"<td class=num>{len(items)}</td><td>{esc(types)}</td>"
            f"<td>{link(url, 'last failure')}<br>{_evidence(last)}</td></tr>"
        )
    return (
        "<table><tr><th>job</th><th class=num>failures</th><th>types</th>"
        f"<th>latest evidence</th></tr>{''.join(rows)}</table>"
    )


def _slowest(items: list[Outcome]) -> str:
    timed = [
        (secs, item)
        for item in items
        if (secs := _seconds(item.stored.job.completed_at, item.stored.job.started_at)) is not None
    ]
    if not timed:
        return '<p class="muted">No finished jobs in this window.</p>'
    timed.sort(key=lambda pair: (-pair[0], pair[1].stored.job.id))
    rows = "".join(
        f"<tr><td>{_job_cell(item)}</td><td class=num>{duration(secs)}</td>"
        f"<td>{esc(item.measurement)}</td></tr>"
        for secs, item in timed[:20]
    )
    return f"<table><tr><th>job</th><th class=num>ran</th><th>outcome</th></tr>{rows}</table>"


def _flaky(items: list[Outcome]) -> str:
    flaky = [i for i in items if i.flaky]
    if not flaky:
        return '<p class="muted">No flaky jobs in this window.</p>'
    rows = "".join(
        f"<tr><td>{_job_cell(item)}</td><td>{esc(item.measurement)}</td>"
        f"<td>{_evidence(item)}</td></tr>"
        for item in flaky[:50]
    )
    return f"<table><tr><th>job</th><th>failure</th><th>evidence</th></tr>{rows}</table>"


def _types_table(items: list[Outcome]) -> str:
    stats = failure_stats(items)
    if not stats:
        return '<p class="muted">No failures in this window.</p>'
    total = sum(s.jobs for s in stats)
    rows = "".join(
        f"<tr><td>{esc(s.type)}</td><td class=num>{s.jobs}</td>"
        f"<td class=num>{100 * s.jobs / total:.1f}%</td>"
        f"<td class=num>{100 * s.flaky / s.jobs:.0f}%</td></tr>"
        for s in stats
    )
    return (
        "<table><tr><th>failure type</th><th class=num>jobs</th><th class=num>share</th>"
        f"<th class=num>flaky</th></tr>{rows}<tr><th>total</th><th class=num>{total}</th>"
        "<th></th><th></th></tr></table>"
    )


def _test_cell(repository: str, test: str, framework: str) -> str:
    return f"{esc(test)}<br><span class=muted>{esc(framework)} · {esc(repository)}</span>"


def _top_tests(tests: Sequence[StoredTest]) -> str:
    from multivac.testresults.reports import count_failing

    counts = count_failing(tests)
    if not counts:
        return '<p class="muted">No failing tests in this window.</p>'
    rows = "".join(
        f"<tr><td>{_test_cell(c.repository, c.test, c.framework)}</td>"
        f"<td class=num>{c.failures}</td><td class=num>{100 * c.flaky_share:.0f}%</td>"
        f"<td>{esc(c.last_seen.strftime('%Y-%m-%d %H:%M') if c.last_seen else '?')}</td>"
        f"<td>{link(c.last_url, 'last failure')}<br><code>{esc(c.last_message)}</code></td></tr>"
        for c in counts[:25]
    )
    return (
        "<table><tr><th>test</th><th class=num>failures</th><th class=num>flaky</th>"
        f"<th>last seen</th><th>latest message</th></tr>{rows}</table>"
    )


def _flaky_tests(tests: Sequence[StoredTest]) -> str:
    from multivac.testresults.reports import count_failing

    flaky = sorted(
        (c for c in count_failing(tests) if c.flaky),
        key=lambda c: (-c.flaky, -c.failures, c.test),
    )
    if not flaky:
        return '<p class="muted">No flaky tests in this window.</p>'
    rows = "".join(
        f"<tr><td>{_test_cell(c.repository, c.test, c.framework)}</td>"
        f"<td class=num>{c.flaky}</td><td class=num>{c.failures}</td>"
        f"<td>{link(c.last_url, 'last seen')}</td></tr>"
        for c in flaky[:50]
    )
    return (
        "<table><tr><th>test</th><th class=num>flaky</th><th class=num>failures</th>"
        f"<th>job</th></tr>{rows}</table>"
    )


# ---------------------------------------------------------------------------- minutes


def _minutes_of(items: list[Outcome]) -> list[UsageJob]:
    found = (from_model(i.stored.run, i.stored.job, i.stored.classification) for i in items)
    return [job for job in found if job is not None]


def _usage_chart(jobs: list[UsageJob], prices: PriceTable, since: datetime, until: datetime) -> str:
    """Runner minutes per runner label and day (week past two months), stacked."""
    if not jobs:
        return '<p class="muted">No jobs in this window.</p>'
    period = Period.DAY if until - since <= timedelta(days=62) else Period.WEEK
    report = usage(jobs, prices, by=GroupBy.LABEL, period=period)
    periods = sorted({row.period for row in report.rows})
    minutes: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0, 0.0])
    for row in report.rows:
        label = row.group or "(no labels)"
        minutes[row.period][label] += row.runner_minutes
        cell = totals[label]
        cell[0] += row.jobs
        cell[1] += row.runner_minutes
        cell[2] += row.billable_minutes
        cell[3] += row.cost_usd
    order = sorted(totals, key=lambda label: (-totals[label][1], label))
    colour = _colours(order)
    tallest = max((sum(c.values()) for c in minutes.values()), default=0.0) or 1.0
    width, height, left, bottom = 900, 240, 50, 30
    bar = (width - left - 10) / max(len(periods), 1)
    scale = (height - bottom - 10) / tallest
    parts = [
        f'<svg role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'xmlns="http://www.w3.org/2000/svg"><title>Runner minutes by runner label over time'
        "</title>",
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" '
        'stroke="#999"/>',
        f'<text x="{left - 6}" y="14" text-anchor="end" font-size="11">{tallest:.0f}</text>',
        f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end" font-size="11">0</text>',
    ]
    for index, name in enumerate(periods):
        x = left + index * bar
        y: float = height - bottom
        for label in order:
            value = minutes[name].get(label, 0.0)
            if not value:
                continue
            h = value * scale
            y -= h
            parts.append(
                f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{max(bar - 2, 1):.1f}" '
                f'height="{max(h, 0.5):.1f}" fill="{colour[label]}">'
                f"<title>{esc(f'{name} {label}: {value:.1f} runner min')}</title></rect>"
            )
    every = max(1, len(periods) // 8)
    for index in range(0, len(periods), every):
        x = left + index * bar + bar / 2
        parts.append(
            f'<text x="{x:.1f}" y="{height - 10}" text-anchor="middle" font-size="11">'
            f"{esc(periods[index][5:])}</text>"
        )
    parts.append("</svg>")
    legend = "".join(
        f'<span><i class="swatch" style="background:{colour[n]}"></i>{esc(n)}</span>' for n in order
    )
    rows = "".join(
        f"<tr><td>{esc(label)}</td><td class=num>{totals[label][0]:.0f}</td>"
        f"<td class=num>{totals[label][1]:.1f}</td><td class=num>{totals[label][2]:.0f}</td>"
        f"<td class=num>{totals[label][3]:.2f}</td></tr>"
        for label in order
    )
    return (
        "".join(parts)
        + f'<p class="legend">{legend}</p>'
        + "<table><tr><th>runner label</th><th class=num>jobs</th><th class=num>runner min</th>"
        + "<th class=num>billable min</th><th class=num>cost USD</th></tr>"
        + rows
        + "</table>"
        + f'<p class="muted">Runner minutes per UTC {period}, each job in the {period} it was '
        + f"queued; prices from {esc(prices.source)} (taken {esc(prices.taken)}).</p>"
    )


def _failure_cost(jobs: list[UsageJob], prices: PriceTable) -> str:
    """What failures cost: failed attempts and the re-runs they caused, per failure type."""
    report = usage(jobs, prices, by=GroupBy.FAILURE_TYPE, period=Period.MONTH)
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0, 0.0])
    for row in report.rows:
        cell = totals[row.group]
        cell[0] += row.jobs
        cell[1] += row.runner_minutes
        cell[2] += row.billable_minutes
        cell[3] += row.cost_usd
    if not totals:
        return '<p class="muted">No failures in this window.</p>'
    # cost first; self-hosted failures cost nothing but still took minutes
    order = sorted(totals, key=lambda kind: (-totals[kind][3], -totals[kind][1], kind))
    key = 3 if any(totals[kind][3] for kind in order) else 1
    top = max(totals[kind][key] for kind in order) or 1.0
    colour = _colours(order)
    width, row_h, left = 900, 22, 200
    height = row_h * len(order) + 10
    svg = [
        f'<svg role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'xmlns="http://www.w3.org/2000/svg"><title>Cost by failure type</title>'
    ]
    for i, kind in enumerate(order):
        y = 5 + i * row_h
        _jobs, runner, _billable, cost = totals[kind]
        w = (width - left - 140) * totals[kind][key] / top
        text = f"${cost:.2f} · {runner:.0f} runner min" if key == 3 else f"{runner:.1f} runner min"
        svg.append(
            f'<text x="{left - 8}" y="{y + 14}" text-anchor="end" font-size="11">'
            f"{esc(kind[:32])}</text>"
            f'<rect x="{left}" y="{y + 3}" width="{max(w, 1):.1f}" height="14" '
            f'fill="{colour[kind]}"><title>{esc(f"{kind}: {text}")}</title></rect>'
            f'<text x="{left + max(w, 1) + 6:.1f}" y="{y + 14}" font-size="11">{esc(text)}</text>'
        )
    svg.append("</svg>")
    rows = "".join(
        f"<tr><td>{esc(kind)}</td><td class=num>{totals[kind][0]:.0f}</td>"
        f"<td class=num>{totals[kind][1]:.1f}</td><td class=num>{totals[kind][2]:.0f}</td>"
        f"<td class=num>{totals[kind][3]:.2f}</td></tr>"
        for kind in order
    )
    return (
        "".join(svg)
        + "<table><tr><th>failure type</th><th class=num>jobs</th><th class=num>runner min</th>"
        + "<th class=num>billable min</th><th class=num>cost USD</th></tr>"
        + rows
        + "</table>"
        + '<p class="muted">Failed attempts plus the re-runs they caused '
        + "(<code>multivac usage --by failure_type</code>).</p>"
    )


def _queue_depth(load: MinuteLoad, since: datetime, until: datetime, limit: int = 8) -> str:
    """Per runner label with a queue: the longest queue in each slice of the window."""
    queued = {
        label: minutes
        for label, minutes in load.minutes.items()
        if any(cell[0] for cell in minutes.values())
    }
    if not queued:
        return '<p class="muted">No job waited for a runner in this window.</p>'
    start = int(since.timestamp()) // 60
    end = max(start + 1, -(-int(until.timestamp()) // 60))
    slices = 180
    step = max(1, -(-(end - start) // slices))
    peak = {label: max(cell[0] for cell in minutes.values()) for label, minutes in queued.items()}
    chosen = sorted(queued, key=lambda label: (-peak[label], label))[:limit]
    out = []
    width, height, left, bottom = 900, 90, 50, 18
    count = -(-(end - start) // step)
    bar = (width - left - 10) / count
    for label in chosen:
        depth: dict[int, int] = {}
        for minute, cell in queued[label].items():
            index = (minute - start) // step
            if 0 <= index < count and cell[0] > depth.get(index, 0):
                depth[index] = cell[0]
        scale = (height - bottom - 8) / peak[label]
        parts = [
            f'<svg role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'xmlns="http://www.w3.org/2000/svg"><title>{esc(f"Queue depth of {label}")}</title>',
            f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" '
            'stroke="#999"/>',
            f'<text x="{left - 6}" y="12" text-anchor="end" font-size="11">{peak[label]}</text>',
        ]
        for index in sorted(depth):
            h = depth[index] * scale
            when = datetime.fromtimestamp((start + index * step) * 60, UTC)
            parts.append(
                f'<rect x="{left + index * bar:.1f}" y="{height - bottom - h:.1f}" '
                f'width="{max(bar, 1):.1f}" height="{h:.1f}" fill="#ff7f0e">'
                f"<title>{when:%Y-%m-%d %H:%M} up to {depth[index]} waiting</title></rect>"
            )
        for index in range(0, count, max(1, count // 6)):
            when = datetime.fromtimestamp((start + index * step) * 60, UTC)
            parts.append(
                f'<text x="{left + index * bar:.1f}" y="{height - 4}" font-size="10">'
                f"{when:%m-%d %H:%M}</text>"
            )
        parts.append("</svg>")
        out.append(f"<h3>{esc(label or '(no labels)')}</h3>" + "".join(parts))
    note = (
        f"{len(queued) - len(chosen)} more labels had a queue; "
        "<code>multivac capacity</code> lists them all."
        if len(queued) > len(chosen)
        else "Jobs waiting for a runner: the most at once in each slice of the window."
    )
    return "".join(out) + f'<p class="muted">{note}</p>'


def render(
    items: Sequence[Outcome],
    *,
    since: datetime,
    until: datetime,
    prices: PriceTable | None = None,
    tests: Sequence[StoredTest] = (),
) -> str:
    """The whole page for the job attempts of a window and their failing tests; minutes
    are priced with `prices` (default: the packaged price table)."""
    items = list(items)
    prices = prices or packaged_prices()
    jobs = _minutes_of(items)
    load = minute_load(jobs, since=since, until=until)
    failed = [i for i in items if i.failed]
    repos = sorted({i.stored.run.repository for i in items})
    rate = 100.0 * len(failed) / len(items) if items else 0.0
    title = f"multivac report {since:%Y-%m-%d %H:%M} – {until:%Y-%m-%d %H:%M} UTC"
    cards = "".join(
        f'<div class="card"><b>{value}</b>{esc(label)}</div>'
        for value, label in (
            (len(items), "job attempts"),
            (len(failed), "failed"),
            (f"{rate:.1f}%", "failure rate"),
            (sum(1 for i in items if i.flaky), "flaky"),
        )
    )
    sections = (
        ("Failures by type over time", _failures_chart(failed, since, until)),
        ("Top failing jobs", _top_failing(failed)),
        ("Queue time by runner label (p50 / p95)", _queue_section(items)),
        ("Queue depth by runner label", _queue_depth(load, since, until)),
        ("Usage by runner label", _usage_chart(jobs, prices, since, until)),
        ("Cost by failure type", _failure_cost(jobs, prices)),
        ("Slowest jobs", _slowest(items)),
        ("Flaky jobs", _flaky(items)),
        ("Top failing tests", _top_tests(tests)),
        ("Flaky tests", _flaky_tests(tests)),
        ("Failure types", _types_table(items)),
    )
    body = "".join(f"<h2>{esc(name)}</h2>{content}" for name, content in sections)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1>"
        f'<p class="muted">{esc(", ".join(repos) or "no repositories")}</p>'
        f'<div class="cards">{cards}</div>{body}'
        '<p class="muted">Generated by multivac.</p></body></html>\n'
    )
