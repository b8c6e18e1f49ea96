"""Benchmark: a GitHub outage in the middle of a gather, against a fault-free gather.

The local GitHub test server answers every request (API and log host) with 503, or
drops the connection, for `--outage` seconds once the gather is under way. The same
gather without the outage is the baseline. It prints, for each kind of outage:

- whether the records are exactly those of the fault-free gather;
- the wall time against the fault-free one: the overrun must stay within the outage
  plus one backoff cap (the longest single wait of the retry policy).

Usage: python bench/bench_outage.py [--runs 60] [--outage 45] [--cap 60]
It runs the installed `multivac` command (pip install . first).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.ghserver import FakeGitHub, make_log

STEPS = [("Set up job", "success"), ("Run tests", "failure")]


def build(server: FakeGitHub, runs: int) -> None:
    repo = server.add_repo("bench/outage")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=20)
    for i in range(runs):
        run = repo.add_run(created_at=start + timedelta(seconds=i * 300))
        for k in range(3):
            if k == 2:
                tail = (
                    f"2026-10-01T12:00:05Z FAILED tests/test_{i}.py::test_y - assert 0\n"
                    "2026-10-01T12:00:05Z ##[error]Process completed with exit code 1.\n"
                )
                log = make_log(run.created_at, STEPS) + tail.encode()
                run.add_job(f"job-{k}", conclusion="failure", steps=STEPS, log=log)
            else:
                run.add_job(f"job-{k}", conclusion="success")


def gather(server: FakeGitHub, state: Path, cap: float) -> tuple[float, list[str], str]:
    env = {
        **os.environ,
        "GITHUB_API_URL": server.url,
        "GITHUB_TOKEN": "bench-token-0123456789",
        "MULTIVAC_STATE_DIR": str(state),
        "MULTIVAC_RETRY_CAP": str(cap),
    }
    exe = shutil.which("multivac")
    cmd = [exe] if exe else [sys.executable, "-m", "multivac"]
    began = time.perf_counter()
    done = subprocess.run(
        [*cmd, "gather", "bench/outage", "--since", "1d"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"gather failed ({done.returncode}): {done.stderr}")
    return wall, sorted(done.stdout.splitlines()[1:]), done.stderr.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--outage", type=float, default=45.0, help="seconds")
    parser.add_argument("--cap", type=float, default=60.0, help="backoff cap, seconds")
    parser.add_argument("--latency", type=float, default=0.05, help="per request, seconds")
    args = parser.parse_args()

    with FakeGitHub() as server, tempfile.TemporaryDirectory() as tmp:
        build(server, args.runs)
        # some latency, so that the gather lasts long enough to be in the middle of it
        server.faults.add(r".", "latency", count=None, seconds=args.latency)
        clean_wall, clean, _ = gather(server, Path(tmp) / "clean", args.cap)
        total = len(server.requests)
        print(f"fault-free gather: {len(clean)} records, {total} requests, {clean_wall:.1f}s")
        for kind in ("status", "drop"):
            server.reset_log()
            server.faults.outage(args.outage, after_requests=total // 3, kind=kind)
            wall, rows, summary = gather(server, Path(tmp) / kind, args.cap)
            overrun = wall - clean_wall
            bound = args.outage + args.cap
            name = "503 answers" if kind == "status" else "dropped connections"
            print(
                f"{args.outage:.0f}s of {name}: records identical: {rows == clean}; "
                f"{wall:.1f}s, overrun {overrun:.1f}s against a bound of {bound:.0f}s "
                f"(outage + backoff cap): ratio {overrun / bound:.2f}"
            )
            print(f"  summary: {summary}")


if __name__ == "__main__":
    main()
