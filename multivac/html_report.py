"""The HTML report: one self-contained page (placeholder until the report lands)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime

from multivac.reports import Outcome


def render(items: Sequence[Outcome], *, since: datetime, until: datetime) -> str:
    title = f"multivac report {since:%Y-%m-%d} to {until:%Y-%m-%d}"
    return f"<!doctype html><title>{html.escape(title)}</title><p>{len(items)} jobs</p>"
