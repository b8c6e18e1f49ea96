"""The source stage: the only package that talks to GitHub.

- `transport`: HTTP (one PyGithub requester per thread, the log host), pages via the
  `Link` header, conditional requests against the ETag cache;
- `governor`: the primary budget, pacing, secondary-limit concurrency cuts and the retry
  decision for every request;
- `endpoints`: runs, jobs, logs, annotations, repositories, as model dataclasses;
- `parse`: GitHub's JSON to those dataclasses.

No PyGithub object leaves this package.
"""

from multivac.errors import LogPending
from multivac.github.endpoints import GitHubSource
from multivac.github.parse import job_from_json, next_link, run_from_json

__all__ = ["GitHubSource", "LogPending", "job_from_json", "next_link", "run_from_json"]
