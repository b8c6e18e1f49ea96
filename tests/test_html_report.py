"""The HTML report: content, escaping, self-containment, and a real browser."""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from multivac.html_report import percentile, render
from multivac.minutes import load_price_table
from multivac.model import Classification, Job, Run
from multivac.queries import Outcome
from multivac.store import Store, StoredJob
from tests.conftest import Invoke
from tests.factories import make_job, make_run

T0 = datetime(2026, 10, 2, 9, tzinfo=UTC)
EVIL = "<script>window.__pwned=1;alert(1)</script>"
ATTR = '"><img src=x onerror=alert(1)>'


def run_(rid: int, created: datetime) -> Run:
    return make_run(rid, conclusion="failure", created_at=created)


def job_(
    jid: int,
    rid: int,
    name: str,
    conclusion: str,
    created: datetime,
    queued: float,
    ran: float,
    labels: tuple[str, ...] = ("ubuntu-latest",),
    url: str | None = None,
) -> Job:
    extra = {"html_url": url} if url else {}
    return make_job(
        jid,
        rid,
        conclusion,
        queued=queued,
        ran=ran,
        created_at=created,
        name=name,
        labels=labels,
        runner_name="runner",
        **extra,
    )


def sample() -> list[Outcome]:
    items = []
    for i in range(10):
        created = T0 + timedelta(hours=i * 7)
        run = run_(100 + i, created)
        ok = job_(1000 + i, run.id, "build", "success", created, queued=10 * (i + 1), ran=60)
        items.append(Outcome(StoredJob(run, ok, None), "successful_jobs", False))
        bad = job_(
            2000 + i,
            run.id,
            f"test {EVIL}" if i == 0 else "test",
            "failure",
            created,
            queued=5,
            ran=300 + i,
            labels=("self-hosted", "Linux", "ARM64"),
            url="javascript:alert(1)" if i == 1 else None,
        )
        cls = Classification(
            "test_failure" if i % 3 else "out_of_memory",
            "r",
            "Run tests",
            12,
            f"FAILED t.py::test_{i} {EVIL if i == 0 else ATTR}",
        )
        items.append(Outcome(StoredJob(run, bad, cls), cls.type, i == 4))
    return items


def test_percentiles() -> None:
    assert percentile([1.0], 95) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile(list(map(float, range(101))), 95) == pytest.approx(95.0)


def test_page_sections_numbers_and_escaping() -> None:
    page = render(sample(), since=T0, until=T0 + timedelta(days=4))
    for heading in (
        "Failures by type over time",
        "Top failing jobs",
        "Queue time by runner label",
        "Slowest jobs",
        "Flaky jobs",
        "Failure types",
    ):
        assert heading in page
    assert "<b>20</b>job attempts" in page and "<b>10</b>failed" in page
    assert "50.0%" in page
    assert page.count("<rect") >= 10
    assert EVIL not in page and ATTR not in page
    assert "&lt;script&gt;window.__pwned=1;alert(1)&lt;/script&gt;" in page
    assert 'href="javascript:' not in page
    # queue p50 of ubuntu-latest: 10..100 s in steps of 10 -> 55 s
    assert re.search(r"ubuntu-latest</td><td class=num>10</td><td class=num>55s</td>", page)
    # self-contained: no external resources
    assert not re.search(
        r"""(src|href)=["']?(https?:)?//""", page.replace('href="https://github.com', "")
    )
    assert "<script" not in page
    assert render(sample(), since=T0, until=T0 + timedelta(days=4)) == page


def test_usage_cost_and_queue_depth_sections() -> None:
    page = render(sample(), since=T0, until=T0 + timedelta(days=4))
    for heading in ("Queue depth by runner label", "Usage by runner label", "Cost by failure type"):
        assert f"<h2>{heading}</h2>" in page
    # ten 60 s jobs on ubuntu-latest bill 10 minutes at $0.006; the self-hosted ones nothing
    assert re.search(
        r"<td>ubuntu-latest</td><td class=num>10</td><td class=num>10.0</td>"
        r"<td class=num>10</td><td class=num>0.06</td>",
        page,
    )
    assert re.search(
        r"<td>self-hosted,Linux,ARM64</td><td class=num>10</td><td class=num>50.8</td>"
        r"<td class=num>0</td><td class=num>0.00</td>",
        page,
    )
    # failures cost their minutes: 6 test_failure attempts of 300..309 s
    assert re.search(r"<td>test_failure</td><td class=num>6</td><td class=num>30.4</td>", page)
    # a queue-depth chart per label that had a queue
    assert "<title>Queue depth of ubuntu-latest</title>" in page
    assert "<title>Queue depth of self-hosted,Linux,ARM64</title>" in page


def test_the_new_sections_escape_labels_and_take_a_price_table(tmp_path: Path) -> None:
    run = run_(1, T0)
    job = job_(1, 1, "build", "failure", T0, queued=120, ran=600, labels=(EVIL, ATTR))
    cls = Classification(EVIL, "r", "Run tests", 1, "x")
    items = [Outcome(StoredJob(run, job, cls), EVIL, False)]
    page = render(items, since=T0, until=T0 + timedelta(hours=3))
    assert EVIL not in page and ATTR not in page
    assert "Queue depth of &lt;script&gt;" in page
    table = tmp_path / "prices.json"
    table.write_text('{"skus": {"self_hosted": 0.5}, "source": "our <b>deal</b>"}')
    priced = render(items, since=T0, until=T0 + timedelta(hours=3), prices=load_price_table(table))
    assert "<td class=num>5.00</td>" in priced  # 10 minutes at $0.50, our table
    assert "our &lt;b&gt;deal&lt;/b&gt;" in priced


def test_empty_window_is_a_valid_page() -> None:
    page = render([], since=T0, until=T0 + timedelta(hours=5))
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "No failures in this window." in page


def test_report_command_from_the_store(cli: Invoke, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with Store.open(state) as store:
        for item in sample():
            cls = item.stored.classification
            store.save_run(
                item.stored.run, [item.stored.job], {item.stored.job.id: cls} if cls else {}
            )
        store.add_coverage("octo/app", T0 - timedelta(days=1), T0 + timedelta(days=6))
    out = tmp_path / "r" / "report.html"
    result = cli(
        "report",
        "octo/app",
        "--html",
        str(out),
        "--offline",
        "--since",
        "2026-10-01",
        "--until",
        "2026-10-08",
        env={"MULTIVAC_STATE_DIR": str(state)},
    )
    assert result.exit_code == 0, result.stderr
    assert "wrote" in result.stderr
    page = out.read_text()
    assert "octo/app" in page and "out_of_memory" in page
    prices = tmp_path / "prices.json"
    prices.write_text('{"skus": {"self_hosted": 1.0}}')
    args = ["report", "octo/app", "--html", str(out), "--offline", "--since", "2026-10-01"]
    env = {"MULTIVAC_STATE_DIR": str(state)}
    priced = cli(*args, "--until", "2026-10-08", "--price-table", str(prices), env=env)
    assert priced.exit_code == 0, priced.stderr
    # the ten self-hosted failures ran 300..309 s: 5 whole minutes, then 6 each, at $1
    assert "<td class=num>59.00</td>" in out.read_text()
    prices.write_text('{"skus": {"linux": -1}}')
    bad = cli(*args, "--until", "2026-10-08", "--price-table", str(prices), env=env)
    assert bad.exit_code == 2
    assert "rate of SKU 'linux' must be a non-negative number" in bad.stderr


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def test_report_renders_in_a_real_browser(tmp_path: Path) -> None:
    browser_path = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None  # type: ignore[assignment]
    if browser_path is None or sync_playwright is None:
        if os.environ.get("CI"):
            pytest.fail("chromium and playwright are needed in CI (tests/run.sh installs them)")
        pytest.skip("chromium or playwright missing: bash tests/run.sh installs them")
    page_file = tmp_path / "report.html"
    page_file.write_text(render(sample(), since=T0, until=T0 + timedelta(days=4)))
    dialogs: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=browser_path,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(page_file.as_uri())
            sizes = page.evaluate(
                "() => [...document.querySelectorAll('svg')].map(s => {"
                " const r = s.getBoundingClientRect();"
                " return [r.width, r.height, s.querySelectorAll('rect').length]; })"
            )
            assert len(sizes) >= 5  # failures, queue time and depth, usage, failure cost
            assert all(w > 100 and h > 20 and n > 0 for w, h, n in sizes), sizes
            text = page.inner_text("body")
            assert EVIL in text  # shown as text
            assert page.evaluate("() => window.__pwned === undefined")
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert dialogs == []
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_report_without_a_repository_covers_every_stored_one(cli: Invoke, tmp_path: Path) -> None:
    state = tmp_path / "state"
    api = "https://ghe.example.com/api/v3"
    with Store.open(state, github=api) as store:
        for item in sample():
            cls = item.stored.classification
            store.save_run(
                item.stored.run, [item.stored.job], {item.stored.job.id: cls} if cls else {}
            )
            other = Run(**{**item.stored.run.__dict__, "id": item.stored.run.id + 10_000})
            other = Run(**{**other.__dict__, "repository": "octo/lib"})
            job = Job(**{**item.stored.job.__dict__, "id": item.stored.job.id + 10_000})
            store.save_run(other, [Job(**{**job.__dict__, "run_id": other.id})], {})
    with Store.open(state, github="https://api.github.com") as store:
        elsewhere = make_run(99, repository="someone/else", created_at=T0)
        store.save_run(elsewhere, [make_job(99_999, 99, created_at=T0)], {})
    out = tmp_path / "all.html"
    args = ["report", "--html", str(out), "--offline", "--since", "2026-10-01"]
    result = cli(*args, "--until", "2026-10-08", env={"GITHUB_API_URL": api})
    assert result.exit_code == 0, result.stderr
    assert "wrote" in result.stderr and "(40 job attempts)" in result.stderr
    page = out.read_text()
    assert "octo/app" in page and "octo/lib" in page
    assert "someone/else" not in page  # stored from another GitHub
    empty = cli(*args, env={"MULTIVAC_STATE_DIR": str(tmp_path / "none")})
    assert empty.exit_code == 2
    assert "holds no runs from https://api.github.com" in empty.stderr
