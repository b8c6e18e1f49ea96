"""Benchmark the gatherer against the local GitHub test server, in one run:

1. requests per gathered job against the REST minimum (run-list pages + one job list
   per run and page + one log per failed job);
2. the requests of a repeated gather (and how many GitHub would count);
3. wall time with 100 ms of injected latency per request, --concurrency 4 against a
   serial gather (--concurrency 1);
4. peak memory (max RSS) of the gather process.

Usage: python bench/bench_gather.py [--runs 300] [--jobs 5] [--latency 0.1]
It runs the installed `multivac` command (pip install . first).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.ghserver import FakeGitHub, make_log

FAILING_LOG_STEPS = [("Set up job", "success"), ("Run tests", "failure")]


def build(server: FakeGitHub, runs: int, jobs: int) -> tuple[int, int]:
    """Runs with `jobs` jobs each; every 10th job fails with a real-looking log."""
    repo = server.add_repo("bench/repo")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=20)
    failed = 0
    for i in range(runs):
        run = repo.add_run(created_at=start + timedelta(seconds=i * 200))
        for k in range(jobs):
            if (i * jobs + k) % 10 == 0:
                created = run.created_at
                log = make_log(created, FAILING_LOG_STEPS) + (
                    b"2026-10-01T12:00:05.0000000Z FAILED tests/test_x.py::test_y - assert 1 == 2\n"
                    b"2026-10-01T12:00:05.0000000Z ##[error]Process completed with exit code 1.\n"
                )
                run.add_job(f"job-{k}", conclusion="failure", steps=FAILING_LOG_STEPS, log=log)
                failed += 1
            else:
                run.add_job(f"job-{k}", conclusion="success")
    return runs * jobs, failed


def gather(server: FakeGitHub, state: Path, *extra: str) -> tuple[float, int, str]:
    """Wall time, max RSS (KiB) and stderr of one `multivac gather`."""
    env = {
        **os.environ,
        "GITHUB_API_URL": server.url,
        "GITHUB_TOKEN": "bench-token-0123456789",
        "MULTIVAC_STATE_DIR": str(state),
    }
    exe = shutil.which("multivac")
    cmd = [exe] if exe else [sys.executable, "-m", "multivac"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    began = time.perf_counter()
    done = subprocess.run(
        [*cmd, "gather", "bench/repo", "--since", "1d", "-o", os.devnull, *extra],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"gather failed ({done.returncode}): {done.stderr}")
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(rss, before), done.stderr.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args()

    with FakeGitHub() as server, tempfile.TemporaryDirectory() as tmp:
        jobs, failed = build(server, args.runs, args.jobs)
        minimum = math.ceil(args.runs / 100) + args.runs * math.ceil(args.jobs / 100) + failed
        state = Path(tmp) / "state"

        wall, rss, summary = gather(server, state)
        api = [r for r in server.requests if not r.path.startswith("/_signed/")]
        sent = len(api)
        counted = sum(1 for r in api if r.counted)
        print(f"jobs gathered: {jobs} ({failed} failed, their logs classified)")
        print(
            f"first gather: {sent} API requests; REST minimum {minimum}; "
            f"ratio {sent / minimum:.3f}; {sent / jobs:.3f} requests per job; "
            f"{wall:.2f}s; peak RSS {rss / 1024:.0f} MiB"
        )
        print(f"  summary: {summary}")

        server.reset_log()
        wall2, _, summary2 = gather(server, state)
        api2 = [r for r in server.requests if not r.path.startswith("/_signed/")]
        sent2 = len(api2)
        counted2 = sum(1 for r in api2 if r.counted)
        print(
            f"repeated gather: {sent2} requests, {counted2} counted by the rate limit "
            f"(first gather: {counted}); {wall2:.2f}s"
        )
        print(f"  summary: {summary2}")

        server.faults.add(r".", "latency", count=None, seconds=args.latency)
        timings = {}
        for width in (1, 4):
            fresh = Path(tmp) / f"latency-{width}"
            timings[width], _, _ = gather(server, fresh, "--concurrency", str(width))
        print(
            f"with {args.latency * 1000:.0f} ms latency per request: serial "
            f"{timings[1]:.1f}s, --concurrency 4 {timings[4]:.1f}s, "
            f"speed-up {timings[1] / timings[4]:.2f}x"
        )


if __name__ == "__main__":
    main()
