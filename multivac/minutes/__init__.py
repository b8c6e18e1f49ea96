"""Where the minutes go: billing per job, usage per period and group, runner capacity.

Reports read the store only (`query.py`); `billing.py` also serves job records at
gather time (`PriceTable.bill_job`).
"""

from multivac.minutes.billing import (
    Bill,
    PriceTable,
    Runner,
    RunnerKind,
    load_price_table,
    whole_minutes,
)
from multivac.minutes.capacity import (
    Capacity,
    CapacityBy,
    CapacityFormat,
    CapacityReport,
    MinuteLoad,
    RunnerLoad,
    capacity,
    minute_load,
    runner_load,
)
from multivac.minutes.jobs import JobTimes, Timed, UsageJob, from_model
from multivac.minutes.query import capacity_jobs, usage_jobs
from multivac.minutes.usage import (
    GroupBy,
    Period,
    UsageFormat,
    UsageReport,
    UsageRow,
    period_start,
    usage,
)

__all__ = [
    "Bill",
    "Capacity",
    "CapacityBy",
    "CapacityFormat",
    "CapacityReport",
    "GroupBy",
    "JobTimes",
    "MinuteLoad",
    "Period",
    "PriceTable",
    "Runner",
    "RunnerKind",
    "RunnerLoad",
    "Timed",
    "UsageFormat",
    "UsageJob",
    "UsageReport",
    "UsageRow",
    "capacity",
    "capacity_jobs",
    "from_model",
    "load_price_table",
    "minute_load",
    "period_start",
    "runner_load",
    "usage",
    "usage_jobs",
    "whole_minutes",
]
