"""Benchmark: several InfluxDB targets, and one of them down, against a single target.

A gather of `--runs` runs × 3 jobs is written to real VictoriaMetrics servers (the test
suite's `victoria-metrics` binary) through the config file's `[[influx]]` targets:

- one target (the baseline);
- two targets, both up: the cost of the second target;
- two targets, the second down: the wall time over the baseline should be about
  `MULTIVAC_INFLUX_WAIT` (the down target's retry budget), not more, because the
  targets are written side by side; every point still reaches the target that is up,
  and the other's points wait in its spool.

Usage: python bench/bench_targets.py [--runs 400] [--wait 5] [--repeat 3]
Each case runs --repeat times on a copy of the same warm store; the median is shown.
It runs the installed `multivac` command (pip install . first).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.ghserver import FakeGitHub
from tests.servers import VictoriaMetrics, free_port


def target(name: str, url: str) -> str:
    return (
        f'[[influx]]\nname = "{name}"\nurl = "{url}"\norg = "bench"\nbucket = "ci"\n'
        'token_env = "BENCH_INFLUX_TOKEN"\n'
    )


def gather(server: FakeGitHub, work: Path, urls: list[str], wait: float) -> tuple[float, str]:
    work.mkdir(parents=True, exist_ok=True)
    config = work / "multivac.toml"
    config.write_text("".join(target(f"t{i}", url) for i, url in enumerate(urls)), encoding="utf-8")
    env = {
        **os.environ,
        "GITHUB_API_URL": server.url,
        "GITHUB_TOKEN": "bench-token-0123456789",
        "BENCH_INFLUX_TOKEN": "bench-influx-token",
        "MULTIVAC_STATE_DIR": str(work / "state"),
        "MULTIVAC_INFLUX_WAIT": f"{wait:g}s",
        "MULTIVAC_CONFIG": str(config),
    }
    exe = shutil.which("multivac")
    cmd = [exe] if exe else [sys.executable, "-m", "multivac"]
    # the store is warm after the first gather: time the writing, not GitHub
    args = [*cmd, "gather", "bench/targets", "--no-logs", "--since", "1d", "-f", "influxdb"]
    began = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - began
    return wall, done.stderr.strip().splitlines()[-2 if done.returncode else -1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--wait", type=float, default=5.0, help="MULTIVAC_INFLUX_WAIT, s")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (median)")
    args = parser.parse_args()
    binary = shutil.which("victoria-metrics")
    if binary is None:
        raise SystemExit("victoria-metrics not found (apt-get install victoria-metrics)")

    with tempfile.TemporaryDirectory() as tmp, FakeGitHub() as server:
        root = Path(tmp)
        repo = server.add_repo("bench/targets")
        repo.add_runs_bulk(
            args.runs,
            datetime.now(UTC) - timedelta(hours=20),
            60,
            jobs_per_run=3,
            job_conclusions=("success", "failure", "cancelled"),
        )
        first, second = (VictoriaMetrics(binary, root / f"vm{i}") for i in range(2))
        first.start()
        second.start()
        down = f"http://127.0.0.1:{free_port()}"
        try:
            cases = [
                ("one target", [first.url]),
                ("two targets", [first.url, second.url]),
                ("two targets, one down", [first.url, down]),
            ]
            # warm the store once, so that every case reads the runs from it
            gather(server, root / "warm", [first.url], args.wait)
            baseline = 0.0
            for name, urls in cases:
                walls = []
                for attempt in range(args.repeat):
                    work = root / f"{name.replace(' ', '-').replace(',', '')}-{attempt}"
                    shutil.copytree(root / "warm" / "state", work / "state")
                    once, summary = gather(server, work, urls, args.wait)
                    walls.append(once)
                wall = statistics.median(walls)
                if not baseline:
                    baseline = wall
                line = f"{name}: {wall:.2f}s, ratio {wall / baseline:.2f} to one target"
                if "down" in name:
                    overrun = wall - baseline
                    line += (
                        f"; overrun {overrun:.2f}s against the down target's retry budget "
                        f"{args.wait:g}s: ratio {overrun / args.wait:.2f}"
                    )
                print(line)
                print(f"  {summary}")
        finally:
            first.stop()
            second.stop()


if __name__ == "__main__":
    main()
