"""Benchmark `multivac serve`: signed `workflow_job` deliveries from several concurrent
clients, a fixed count, in one run:

1. the baseline: the same server stack (uvicorn, Starlette) answering 202 to every
   POST without looking at it, driven by the same clients;
2. `multivac serve` (line protocol to a file, the store in a temporary directory,
   --no-logs: no GitHub behind it): events accepted per second, p50 and p99 response
   times, the ratio to the baseline;
3. the server's RSS after 1,000 events and after all of them, and their ratio.

Each job is delivered three times, as GitHub does (queued, in_progress, completed:
success, one in ten failed), from one client in order; clients run in their own
processes with a keep-alive connection each, so the server, not the clients, is the
bottleneck. The machine's load average is printed before each part: other work on the
machine slows everything down.

Usage: python bench/bench_serve.py [--events 100000] [--clients 4] [--baseline-events 20000]
       [--loop auto|asyncio|uvloop] [--http auto|h11|httptools]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from multivac.config import Secret
from multivac.serve import sign

SECRET = "bench-secret-0123456789abcdef"
LISTENING = re.compile(r"listening on http://([\d.]+):(\d+)")
BASELINE_APP = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def webhook(request):
    await request.body()
    return JSONResponse({"accepted": "x"}, status_code=202)

app = Starlette(routes=[Route("/webhook", webhook, methods=["POST"])])
print("listening on http://127.0.0.1:" + sys.argv[1], file=sys.stderr, flush=True)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            access_log=False, loop=sys.argv[2], http=sys.argv[3])
"""
SERVE_APP = """
import sys
from rich.console import Console
from multivac import config
from multivac.commands.serve import serve
from multivac.sinks import Format

env = config.Environment()
plan = config.plan_serve(env, host="127.0.0.1", port=0, output_format=Format.line_protocol,
                         output=config.Path(sys.argv[1]), fetch_logs=False)
serve(plan, Console(stderr=True), loop=sys.argv[2], http=sys.argv[3])
"""


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def deliveries(client: int, start: int, count: int) -> Any:
    """(event, body) of `count` deliveries of this client, from its `start`-th on."""
    now = datetime.now(UTC).replace(microsecond=0)
    for n in range(start, start + count):
        job_number, stage = divmod(n, 3)
        job_id = 10_000_000 * (client + 1) + job_number
        action = ("queued", "in_progress", "completed")[stage]
        failed = job_number % 10 == 0
        job = {
            "id": job_id,
            "run_id": job_id // 5,
            "workflow_name": "CI",
            "head_branch": "main",
            "run_attempt": 1,
            "head_sha": "f" * 40,
            "html_url": f"https://github.com/bench/repo/actions/runs/{job_id // 5}/job/{job_id}",
            "status": "completed" if stage == 2 else action,
            "conclusion": ("failure" if failed else "success") if stage == 2 else None,
            "created_at": _stamp(now - timedelta(seconds=90)),
            "started_at": _stamp(now - timedelta(seconds=60)),
            "completed_at": _stamp(now) if stage == 2 else None,
            "name": f"job-{job_number % 7}",
            "steps": [],
            "labels": ["ubuntu-latest"] if job_number % 3 else ["self-hosted", "linux", "arm64"],
            "runner_name": "GitHub Actions 3" if stage else None,
        }
        payload = {
            "action": action,
            "workflow_job": job,
            "repository": {"id": 1, "full_name": "bench/repo", "name": "repo"},
            "sender": {"login": "octocat", "id": 1},
        }
        yield json.dumps(payload).encode()


def client(port: int, index: int, start: int, count: int, out: Any) -> None:
    """Post `count` deliveries on one keep-alive connection; send back the latencies."""
    secret = Secret(SECRET)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    latencies: list[float] = []
    refused = 0
    for n, body in enumerate(deliveries(index, start, count)):
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "workflow_job",
            "X-GitHub-Delivery": f"bench-{index}-{start + n}",
            "X-Hub-Signature-256": sign(secret, body),
        }
        began = time.perf_counter()
        conn.request("POST", "/webhook", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        latencies.append(time.perf_counter() - began)
        if response.status != 202:
            refused += 1
    conn.close()
    out.send((latencies, refused))


def drive(port: int, clients: int, start: int, per_client: int) -> tuple[float, list[float], int]:
    """(wall seconds, latencies, refused) of `clients` processes posting `per_client` each."""
    pipes = [multiprocessing.Pipe(duplex=False) for _ in range(clients)]
    procs = [
        multiprocessing.Process(target=client, args=(port, i, start, per_client, pipes[i][1]))
        for i in range(clients)
    ]
    began = time.perf_counter()
    for proc in procs:
        proc.start()
    results = [pipe[0].recv() for pipe in pipes]
    wall = time.perf_counter() - began
    for proc in procs:
        proc.join()
    latencies = [x for lat, _ in results for x in lat]
    return wall, latencies, sum(refused for _, refused in results)


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1] if len(values) > 1 else 0.0


def start(argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert proc.stderr is not None
    lines: list[str] = []
    for raw in proc.stderr:
        line = raw.decode(errors="replace")
        lines.append(line)
        match = LISTENING.search(line)
        if match:
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            time.sleep(0.3)
            return proc, int(match.group(2))
    raise SystemExit("the server did not start:\n" + "".join(lines))


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()


def report(name: str, wall: float, latencies: list[float], refused: int) -> float:
    rate = len(latencies) / wall
    print(
        f"{name}: {len(latencies)} events in {wall:.1f}s = {rate:.0f} events/s accepted"
        f"{f' ({refused} refused!)' if refused else ''}; "
        f"p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--baseline-events", type=int, default=20_000)
    parser.add_argument("--loop", default="auto", choices=["auto", "asyncio", "uvloop"])
    parser.add_argument("--http", default="auto", choices=["auto", "h11", "httptools"])
    args = parser.parse_args()
    clients = args.clients
    first = 1000 // clients

    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "MULTIVAC_WEBHOOK_SECRET": SECRET,
            "MULTIVAC_STATE_DIR": str(Path(tmp) / "state"),
        }
        print(f"before the baseline: {load()}")
        from tests.servers import free_port

        port = free_port()
        proc, port = start(
            [sys.executable, "-c", BASELINE_APP, str(port), args.loop, args.http], env
        )
        try:
            wall, lat, refused = drive(port, clients, 0, args.baseline_events // clients)
        finally:
            stop(proc)
        name = "baseline (uvicorn + Starlette, answers 202, no work)"
        baseline = report(name, wall, lat, refused)

        print(f"before serve: {load()}")
        out = Path(tmp) / "out.lp"
        proc, port = start([sys.executable, "-c", SERVE_APP, str(out), args.loop, args.http], env)
        try:
            _, warm, refused_warm = drive(port, clients, 0, first)
            time.sleep(1.5)  # records of the first events are written
            rss_first = rss_mib(proc.pid)
            # the rest in two halves, to tell a plateau from a leak
            per_client = (args.events - first * clients) // clients
            half = per_client // 2
            wall1, lat1, refused1 = drive(port, clients, first, half)
            time.sleep(1.5)
            rss_half = rss_mib(proc.pid)
            wall2, lat2, refused2 = drive(port, clients, first + half, per_client - half)
            time.sleep(1.5)
            rss_last = rss_mib(proc.pid)
            wall, lat, refused = wall1 + wall2, lat1 + lat2, refused1 + refused2
        finally:
            stop(proc)
        total = len(warm) + len(lat)
        name = f"serve ({total} events, the first {len(warm)} as warm-up)"
        rate = report(name, wall, lat, refused)
        print(f"ratio serve / baseline: {rate / baseline:.2f}")
        middle = len(warm) + len(lat1)
        print(
            f"RSS after {len(warm)} events: {rss_first:.1f} MiB; after {middle}: "
            f"{rss_half:.1f} MiB; after {total}: {rss_last:.1f} MiB; "
            f"ratio last/first {rss_last / rss_first:.2f}, last/middle {rss_last / rss_half:.2f}"
        )
        records = len(out.read_text().splitlines()) if out.exists() else 0
        print(f"records written: {records} (jobs completed: {total // 3}, plus queue points)")
        if refused or refused_warm:
            raise SystemExit("some deliveries were refused")
        print(f"after: {load()}")


if __name__ == "__main__":
    main()
