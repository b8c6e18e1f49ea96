"""Flaky across jobs: a test that failed in one job and passed in another job that ran
the same code.

Within one job the collector already marks a test that failed and then passed
(`merge_status`). Across jobs, multivac compares the jobs of one *family*: the same
repository, workflow, job name (matrix values included), commit and event. Those jobs
ran the same code the same way: the attempts of one run, and the runs that the same
commit started again (a manual re-run, a scheduled run, a `workflow_dispatch`). The
event is part of the family because a `pull_request` run tests the merge of the head
commit into the base branch, not the commit itself, so it does not run the same code as
the `push` run of that commit.

In a family, a test that failed (or hung) in one job is flaky when another job of the
family

- passed it (its log or a JUnit report says so), or
- succeeded, and did not itself report the test as failing (a job that succeeded ran
  every test it ran without a failure: that is what its conclusion means).

What multivac cannot see: a successful job's log is never downloaded, so without
`--junit-artifacts` it knows only the job's conclusion, not which tests it ran (a job
that succeeded because it skipped the test still counts as a pass); runs on other
commits are never compared (a fix may have come in between); a job renamed between
runs is another family.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from multivac.model import SUCCEEDED
from multivac.testresults.model import FAILED, FLAKY, HUNG, PASSED, TestResult

__all__ = ["FamilyJob", "family_key", "family_statuses"]

Key = tuple[str, str, str | None]


@dataclass(frozen=True)
class FamilyJob:
    """One job of a family, with the statuses its own log and reports gave."""

    job_id: int
    conclusion: str | None
    results: Sequence[TestResult] = ()


def family_key(
    repository: str, workflow: str, job_name: str, commit_sha: str, event: str
) -> tuple[str, str, str, str, str]:
    return (repository, workflow, job_name, commit_sha, event)


def family_statuses(family: Sequence[FamilyJob]) -> dict[int, list[TestResult]]:
    """Each job's results with the statuses the family gives them: a failed or hung
    test becomes flaky when another job of the family passed it. Jobs without results
    map to []."""
    passed_in: dict[Key, set[int]] = {}
    failing_in: dict[Key, set[int]] = {}
    for member in family:
        for result in member.results:
            if result.status in (PASSED, FLAKY):
                passed_in.setdefault(result.key, set()).add(member.job_id)
            if result.status in (FAILED, HUNG, FLAKY):
                failing_in.setdefault(result.key, set()).add(member.job_id)
    succeeded = {member.job_id for member in family if member.conclusion == SUCCEEDED}
    out: dict[int, list[TestResult]] = {}
    for member in family:
        adjusted: list[TestResult] = []
        for result in member.results:
            if result.status in (FAILED, HUNG):
                others = passed_in.get(result.key, set()) | (
                    succeeded - failing_in.get(result.key, set())
                )
                if others - {member.job_id}:
                    result = replace(result, status=FLAKY)
            adjusted.append(result)
        out[member.job_id] = adjusted
    return out
