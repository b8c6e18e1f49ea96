"""Alert rules on a hand-built store, each firing and not firing; rules from flags and
from the config file; `multivac check`'s exit codes, step summary and webhook."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from multivac import alerts
from multivac.alerts import (
    FailureShare,
    FlakyShare,
    NewSignatures,
    QueueP95,
    Rule,
    evaluate,
    rules_from_flags,
)
from multivac.errors import ConfigError
from multivac.model import Classification
from multivac.store import Store
from tests.conftest import Invoke
from tests.factories import make_job, make_run
from tests.test_webhook import SECRET, Hook, Reply

NOW = datetime(2026, 10, 10, 12, tzinfo=UTC)
_ids = itertools.count(1000)


class Builder:
    """Runs of one job each, at given hours before `now`."""

    def __init__(self, store: Store, now: datetime = NOW) -> None:
        self.store = store
        self.now = now

    def job(
        self,
        hours_ago: float,
        conclusion: str = "success",
        *,
        type: str | None = None,
        signature: str = "",
        evidence: str = "",
        labels: tuple[str, ...] = ("ubuntu-latest",),
        queued: float = 10.0,
        workflow: str = "CI",
        workflow_path: str = ".github/workflows/ci.yml",
        retried: bool = False,
        repo: str = "octo/app",
    ) -> None:
        """One run; `retried`: the failed job passed on attempt 2 (it is flaky)."""
        when = self.now - timedelta(hours=hours_ago)
        run_id = next(_ids)
        run = make_run(
            run_id,
            created_at=when,
            workflow=workflow,
            workflow_path=workflow_path,
            repository=repo,
            run_attempt=2 if retried else 1,
        )
        job = make_job(
            next(_ids), run_id, conclusion, created_at=when, labels=labels, queued=queued
        )
        jobs = [job]
        if retried:
            jobs.append(make_job(next(_ids), run_id, "success", created_at=when, run_attempt=2))
        classifications = {}
        if type is not None:
            classifications[job.id] = Classification(
                type, "rule", "Run tests", 3, evidence or f"{type} happened", signature=signature
            )
        self.store.save_run(run, jobs, classifications)

    def many(self, count: int, hours_ago: float, conclusion: str = "success", **kw: object) -> None:
        for n in range(count):
            self.job(hours_ago - n * 0.01, conclusion, **kw)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "state") as opened:
        yield opened


def findings(store: Store, *rules: Rule) -> list[alerts.Finding]:
    return evaluate(store, rules, now=NOW).findings


def fired(store: Store, *rules: Rule) -> list[str]:
    return [f.subject for f in findings(store, *rules) if f.fired]


# ---------------------------------------------------------------------------- failure share


def share_store(store: Store, before: int, now: int) -> None:
    """20 jobs in each period: `before` and `now` of them failed with test_failure."""
    b = Builder(store)
    b.many(before, 30, "failure", type="test_failure")
    b.many(20 - before, 36, "success")
    b.many(now, 6, "failure", type="test_failure")
    b.many(20 - now, 12, "success")


def test_failure_share_fires_when_a_type_spikes(store: Store) -> None:
    share_store(store, before=1, now=6)
    (finding,) = findings(store, FailureShare("test_failure"))
    assert finding.fired
    assert finding.text.startswith(
        "test_failure: 30.0% of 20 jobs in the last 24h, 5.0% of 20 before (x6.0;"
    )
    assert len(finding.examples) == 3 and "test_failure happened" in finding.examples[0]


@pytest.mark.parametrize(
    ("before", "now", "rule", "why"),
    [
        (4, 6, FailureShare("test_failure"), "grew x1.5 only"),
        (1, 4, FailureShare("test_failure"), "4 jobs, fewer than min_jobs"),
        (6, 1, FailureShare("test_failure"), "it fell"),
        (1, 6, FailureShare("test_failure", factor=7.0), "x6 under the factor"),
        (1, 6, FailureShare("compile_error"), "another type"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_failure_share_near_misses(
    store: Store, before: int, now: int, rule: FailureShare, why: str
) -> None:
    share_store(store, before, now)
    assert fired(store, rule) == [], why


def test_failure_share_without_jobs_before_does_not_compare(store: Store) -> None:
    Builder(store).many(8, 3, "failure", type="test_failure")
    (finding,) = findings(store, FailureShare("test_failure"))
    assert not finding.fired and "no jobs before to compare with" in finding.text


def test_failure_share_of_every_type_names_the_one_that_spiked(store: Store) -> None:
    share_store(store, before=1, now=6)
    b = Builder(store)
    b.many(2, 30, "failure", type="network_error")
    b.many(2, 6, "failure", type="network_error")
    result = findings(store, FailureShare("*"))
    assert sorted(f.subject for f in result) == ["network_error", "test_failure"]
    assert [f.subject for f in result if f.fired] == ["test_failure"]


def test_jobs_outside_both_periods_do_not_count(store: Store) -> None:
    share_store(store, before=1, now=6)
    b = Builder(store)
    b.many(30, 60, "failure", type="test_failure")  # two days ago: neither period
    b.many(5, -1, "failure", type="test_failure")  # in the future of `now`
    (finding,) = findings(store, FailureShare("test_failure"))
    assert finding.fired and "5.0% of 20 before" in finding.text


# ---------------------------------------------------------------------------- signatures


def test_a_new_signature_fires_and_a_known_one_does_not(store: Store) -> None:
    b = Builder(store)
    b.job(72, "failure", type="test_failure", signature="aaaaaaaaaaaa", evidence="old failure")
    b.job(3, "failure", type="test_failure", signature="aaaaaaaaaaaa", evidence="old failure")
    b.job(2, "failure", type="crash", signature="bbbbbbbbbbbb", evidence="Segmentation fault")
    b.job(1, "failure", type="crash", signature="bbbbbbbbbbbb", evidence="Segmentation fault")
    b.job(1, "failure", type="test_failure", signature="")  # no signature: not counted
    (finding,) = findings(store, NewSignatures())
    assert finding.fired and finding.subject == "bbbbbbbbbbbb"
    assert finding.text == (
        "bbbbbbbbbbbb (crash): 2 jobs in the last 24h, never seen before: Segmentation fault"
    )


@pytest.mark.parametrize(
    ("rule", "why"),
    [
        (NewSignatures(types=("test_failure",)), "only test_failure, whose signature is known"),
        (NewSignatures(min_jobs=3), "two jobs, fewer than min_jobs"),
        (NewSignatures(hours=0.5), "the new signature's jobs are older than the window"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_new_signature_near_misses(store: Store, rule: NewSignatures, why: str) -> None:
    b = Builder(store)
    b.job(72, "failure", type="test_failure", signature="aaaaaaaaaaaa")
    b.job(3, "failure", type="test_failure", signature="aaaaaaaaaaaa")
    b.job(2, "failure", type="crash", signature="bbbbbbbbbbbb")
    b.job(1.5, "failure", type="crash", signature="bbbbbbbbbbbb")
    result = findings(store, rule)
    assert [f.fired for f in result] == [False], why
    assert result[0].text.startswith("no new failure signature")


def test_a_signature_seen_in_another_repository_is_not_new(store: Store) -> None:
    b = Builder(store)
    b.job(72, "failure", type="crash", signature="cccccccccccc", repo="octo/other")
    b.job(2, "failure", type="crash", signature="cccccccccccc")
    assert fired(store, NewSignatures()) == []
    only_app = evaluate(store, [NewSignatures()], now=NOW, repos=["octo/app"])
    assert [f.subject for f in only_app.fired] == ["cccccccccccc"]


# ---------------------------------------------------------------------------- queue p95


def queue_store(store: Store) -> None:
    b = Builder(store)
    for seconds in range(10, 200, 10):  # 19 jobs on ubuntu-latest: 10 .. 190 s
        b.job(2, queued=float(seconds))
    for _ in range(6):
        b.job(2, queued=900.0, labels=("self-hosted", "gpu"))


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (QueueP95(120.0, "ubuntu-latest"), ["ubuntu-latest"]),
        (QueueP95(181.0, "ubuntu-latest"), []),  # p95 is 181 s: not over it
        (QueueP95(180.0, "ubuntu-latest"), ["ubuntu-latest"]),
        (QueueP95(600.0), ["self-hosted,gpu"]),
        (QueueP95(600.0, "self-hosted,gpu", min_jobs=7), []),
        (QueueP95(60.0, "macos-14"), []),
        (QueueP95(60.0, "ubuntu-latest", hours=1.0), []),  # the jobs are 2 hours old
    ],
)
def test_queue_p95_per_runner_label(store: Store, rule: QueueP95, expected: list[str]) -> None:
    queue_store(store)
    assert fired(store, rule) == expected


def test_queue_p95_text_says_what_was_measured(store: Store) -> None:
    queue_store(store)
    (finding,) = findings(store, QueueP95(120.0, "ubuntu-latest"))
    assert finding.text == (
        "ubuntu-latest: queue time p95 181s over 19 jobs in the last 24h (threshold 120s, 5+ jobs)"
    )


# ---------------------------------------------------------------------------- flaky share


def flaky_store(store: Store) -> None:
    b = Builder(store)
    for n in range(10):  # 10 failed attempts of CI, 3 passed on a re-run
        b.job(4, "failure", type="test_failure", retried=n < 3)
    for _ in range(5):  # 5 failed attempts of Nightly, none retried
        b.job(
            4,
            "failure",
            type="test_failure",
            workflow="Nightly",
            workflow_path=".github/workflows/nightly.yml",
            retried=False,
        )


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (FlakyShare(20.0, "CI"), ["CI"]),
        (FlakyShare(20.0, "ci.yml"), ["ci.yml"]),
        (FlakyShare(20.0, ".github/workflows/ci.yml"), [".github/workflows/ci.yml"]),
        (FlakyShare(30.0, "CI"), []),  # 30% is not over 30%
        (FlakyShare(20.0, "CI", min_jobs=11), []),
        (FlakyShare(20.0), ["CI"]),
        (FlakyShare(0.0, "Nightly"), []),
    ],
)
def test_flaky_share_per_workflow(store: Store, rule: FlakyShare, expected: list[str]) -> None:
    flaky_store(store)
    assert fired(store, rule) == expected


def test_flaky_share_text(store: Store) -> None:
    flaky_store(store)
    (finding,) = findings(store, FlakyShare(20.0, "CI"))
    assert finding.text == (
        "CI: 30% of 10 failed jobs in the last 24h passed on a re-run (threshold 20%, "
        "5+ failed jobs)"
    )
    assert len(finding.examples) == 3


# ---------------------------------------------------------------------------- rules from flags


def test_rules_from_flags() -> None:
    rules = rules_from_flags(
        failure_share=["test_failure=1.5", "*"],
        new_signatures=True,
        queue_p95=["ubuntu-latest=10m", "*=1h"],
        flaky_share=["ci.yml=20%", "*=5"],
        hours=12,
    )
    assert rules == [
        FailureShare("test_failure", 1.5, 12.0),
        FailureShare("*", 2.0, 12.0),
        NewSignatures((), 12.0),
        QueueP95(600.0, "ubuntu-latest", 12.0),
        QueueP95(3600.0, "*", 12.0),
        FlakyShare(20.0, "ci.yml", 12.0),
        FlakyShare(5.0, "*", 12.0),
    ]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"failure_share": ["x=often"]}, "--failure-share 'x=often': 'often' is not a factor"),
        ({"failure_share": ["x=1"]}, "--failure-share 'x=1': the factor must be more than 1."),
        ({"failure_share": ["=2"]}, "--failure-share '=2' must look like"),
        ({"queue_p95": ["ubuntu-latest"]}, "--queue-p95 'ubuntu-latest' must look like"),
        ({"queue_p95": ["a=ten"]}, "--queue-p95 'ten' is not a duration like 10m"),
        ({"flaky_share": ["ci.yml"]}, "--flaky-share 'ci.yml' must look like ci.yml=20%."),
        ({"flaky_share": ["ci.yml=120%"]}, "the percentage must be from 0 to 100."),
        ({"flaky_share": ["ci.yml=lots"]}, "'lots' is not a percentage."),
        ({"new_signatures": True, "hours": 0}, "--hours must be more than 0, got 0."),
    ],
)
def test_bad_rule_flags_are_one_sentence(flags: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        rules_from_flags(**flags)  # type: ignore[arg-type]
    assert message in str(caught.value)


# ---------------------------------------------------------------------------- the command


def live_store(state: Path) -> None:
    """A store where test_failure spiked in the last hours, relative to the real now."""
    with Store.open(state) as opened:
        now = datetime.now(UTC).replace(microsecond=0)
        b = Builder(opened, now)
        b.many(1, 30, "failure", type="test_failure")
        b.many(19, 36, "success")
        b.many(6, 6, "failure", type="test_failure", evidence="FAILED tests/test_a.py::test_x")
        b.many(14, 12, "success")


def test_check_exits_4_when_a_rule_fires_and_0_when_none(cli: Invoke, tmp_path: Path) -> None:
    state = tmp_path / "state"
    live_store(state)
    args = ("check", "--state-dir", str(state))
    firing = cli(*args, "--failure-share", "test_failure", "--queue-p95", "*=1h")
    assert firing.exit_code == alerts.EXIT_FIRED == 4
    lines = firing.stdout.splitlines()
    assert lines[0].startswith("FIRING  failure share  test_failure: 30.0% of 20 jobs")
    assert lines[1].startswith("ok      queue p95      ubuntu-latest: queue time p95 10s")
    assert "MULTIVAC_ALERT_WEBHOOK is not set: no alert was posted" in firing.stderr
    assert firing.stderr.strip().endswith("1 of 2 findings fired.")
    quiet = cli(*args, "--failure-share", "test_failure=9")
    assert quiet.exit_code == 0, quiet.stderr
    assert quiet.stdout.startswith("ok      failure share  test_failure")


def test_check_takes_its_rules_from_the_config_file(cli: Invoke, tmp_path: Path) -> None:
    state = tmp_path / "state"
    live_store(state)
    (tmp_path / "multivac.toml").write_text(
        f'state_dir = "{state}"\n[alerts]\nhours = 24\n'
        '[[alerts.failure_share]]\ntype = "test_failure"\nfactor = 3\n'
        '[[alerts.queue_p95]]\nrunner_label = "ubuntu-latest"\nthreshold = "5s"\n'
    )
    result = cli("check", env={"MULTIVAC_STATE_DIR": ""})
    assert result.exit_code == 4, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["FIRING", "FIRING"]
    # flags replace the file's rules
    flagged = cli("check", "--failure-share", "test_failure=9", env={"MULTIVAC_STATE_DIR": ""})
    assert flagged.exit_code == 0 and len(flagged.stdout.splitlines()) == 1


def test_check_without_rules_is_a_settings_error(cli: Invoke) -> None:
    result = cli("check")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no alert rules: give --failure-share, ")


def test_check_on_an_empty_store_says_so(cli: Invoke, tmp_path: Path) -> None:
    result = cli("check", "--new-signatures", "--state-dir", str(tmp_path / "empty"))
    assert result.exit_code == 0
    assert "holds no jobs for these windows; run `multivac gather` first." in result.stderr


# ---------------------------------------------------------------------------- summary, webhook


def test_inside_github_actions_check_writes_the_step_summary(cli: Invoke, tmp_path: Path) -> None:
    state = tmp_path / "state"
    live_store(state)
    summary = tmp_path / "summary.md"
    summary.write_text("## an earlier step's summary\n")
    result = cli(
        "check",
        "--state-dir",
        str(state),
        "--failure-share",
        "test_failure",
        "--flaky-share",
        "*=50",
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert result.exit_code == 4
    text = summary.read_text()
    assert text.startswith("## an earlier step's summary\n## multivac check: 1 alert fired\n")
    assert "| 🔴 | failure share | test_failure: 30.0% of 20 jobs in the last 24h" in text
    assert "| ✅ | flaky share | CI: 0% of 6 failed jobs" in text
    assert text.index("🔴") < text.index("✅")
    assert "- octo/app CI / test: FAILED tests/test_a.py::test_x (https://github.com/" in text
    assert f"wrote the findings to the step summary ({summary})" in result.stderr


def test_a_pipe_in_a_finding_does_not_break_the_summary_table() -> None:
    report = alerts.Report(
        [alerts.Finding("new_signatures", "abc", True, "crash: a | b", ("x | y",))], 1
    )
    text = alerts.markdown(report)
    assert "| 🔴 | new signature | crash: a \\| b |" in text and "- x \\| y" in text


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.close()


def test_a_fired_alert_is_posted_to_the_webhook(cli: Invoke, tmp_path: Path, hook: Hook) -> None:
    state = tmp_path / "state"
    live_store(state)
    args = ("check", "--state-dir", str(state), "--failure-share", "test_failure")
    hook.script(Reply(503), Reply(200))
    result = cli(*args, env={"MULTIVAC_ALERT_WEBHOOK": hook.url})
    assert result.exit_code == 4, result.stderr
    assert len(hook.seen) == 2  # retried after the 503
    text = json.loads(hook.seen[-1].body)["text"]
    assert text.startswith("*multivac: 1 alert fired*\n• *failure share* test_failure: 30.0%")
    assert "FAILED tests/test_a.py::test_x" in text
    assert f"posted 1 alerts to the webhook at {hook.host} (HTTP 200)" in result.stderr
    assert SECRET not in result.stdout + result.stderr
    # nothing fired: nothing posted
    calm = cli(*args[:-1], "test_failure=9", env={"MULTIVAC_ALERT_WEBHOOK": hook.url})
    assert calm.exit_code == 0 and len(hook.seen) == 2


def test_a_webhook_that_refuses_is_an_error_that_never_shows_the_url(
    cli: Invoke, tmp_path: Path, hook: Hook
) -> None:
    state = tmp_path / "state"
    live_store(state)
    hook.script(Reply(404, f"no such hook {SECRET}".encode()))
    (tmp_path / ".env").write_text(f"OUR_HOOK={hook.url}\n")
    (tmp_path / "multivac.toml").write_text('[alerts]\nwebhook_env = "OUR_HOOK"\n')
    result = cli("check", "--state-dir", str(state), "--failure-share", "test_failure")
    assert result.exit_code == 1
    assert result.stdout.startswith("FIRING")  # the findings are shown all the same
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: the alert webhook at {hook.host} answered HTTP 404 (no such hook …)."
    )
    assert SECRET not in result.stdout + result.stderr
    assert "/services/" not in result.stderr


def test_an_unreachable_webhook_is_retried_within_the_budget(cli: Invoke, tmp_path: Path) -> None:
    from tests.test_webhook import free_port

    state = tmp_path / "state"
    live_store(state)
    url = f"http://127.0.0.1:{free_port()}/services/T0001/B0002/{SECRET}"
    result = cli(
        "check",
        "--state-dir",
        str(state),
        "--failure-share",
        "test_failure",
        "--max-wait",
        "2s",
        env={"MULTIVAC_ALERT_WEBHOOK": url, "MULTIVAC_HTTP_TIMEOUT": "0.5"},
    )
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the alert webhook at 127.0.0.1:")
    assert "could not be reached (connection refused); gave up after" in last
    assert last.endswith(" attempts in 2 s.")
    assert SECRET not in result.stderr
