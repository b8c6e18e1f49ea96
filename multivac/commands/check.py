"""`multivac check`: evaluate alert rules over the local store and tell who needs to know.

The findings go to stdout, one line each; inside GitHub Actions a Markdown table goes to
the step summary; when a rule fires and a webhook is set, the fired findings are posted
to it (with retries; the URL is never shown). The caller turns fired findings into exit
code 4 (alerts.EXIT_FIRED), distinct from errors.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import UTC, datetime

from rich.console import Console

from multivac.alerts import Report, evaluate, lines, markdown, message
from multivac.config import CheckPlan
from multivac.store import Store
from multivac.webhook import post_message, webhook_host, write_step_summary


def check(
    plan: CheckPlan,
    console: Console,
    *,
    now: datetime | None = None,
    environ: Mapping[str, str] | None = None,
) -> Report:
    """Evaluate the plan's rules; raises NotifyError when the webhook could not take the
    alert (after the findings were printed and summarised)."""
    with Store.open(plan.state_dir, github=plan.github_url) as store:
        report = evaluate(store, plan.rules, now=now or datetime.now(UTC), repos=plan.repos)
    out = sys.stdout
    for line in lines(report):
        out.write(line + "\n")
    out.flush()
    written = write_step_summary(markdown(report), environ=environ)
    if written is not None:
        console.print(f"wrote the findings to the step summary ({written}).", markup=False)
    fired = report.fired
    if fired and plan.webhook is not None:
        url = plan.webhook.reveal()
        delivery = post_message(url, message(report), policy=plan.policy)
        console.print(
            f"posted {len(fired)} alerts to the webhook at {webhook_host(url)} "
            f"(HTTP {delivery.status}).",
            markup=False,
        )
    elif fired:
        console.print(
            f"{plan.webhook_variable} is not set: no alert was posted to a webhook.",
            markup=False,
        )
    if not report.jobs:
        console.print(
            f"note: the local store in {plan.state_dir} holds no jobs for these windows; "
            "run `multivac gather` first.",
            markup=False,
        )
    return report
