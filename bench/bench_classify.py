"""Benchmark log classification against grep, in one run.

Builds a large log (default 200 MB) from the real pytables job logs in
../shared/realdata (timestamps, ANSI colours, ##[group] markers as GitHub serves them)
with one real failure near the end, then times:

- `multivac classify LOG` (the installed command, the whole catalog),
- `grep -E -f patterns.txt LOG` with the catalog's patterns translated to ERE (those
  grep accepts), with LC_ALL=C, grep's fastest setting,

and prints MB/s for each, the ratio against grep, and the peak memory of each multivac
process. multivac runs three times: with an empty cache (it compiles its Hyperscan
database), again (the database comes from the cache, as in everyday use), and with the RE2
engine (what runs where Hyperscan is not installed).

Then, in this process, the scan gather runs on every failed job's log,
`multivac.classify.scan_log`, alone and with a `TestCollector` listening
(`listeners=[collector]`: test results in the same single pass), and prints what the
test parsers add to classification time (the budget: at most 25%).

The machine may be shared: every command runs once per round, rounds interleaved, and the
best time of each is kept (its peak memory is the largest seen).

Usage: python bench/bench_classify.py [--size-mb 200] [--rounds 3] [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from multivac.classify import load_catalog, scan_log  # noqa: E402
from multivac.testresults import TestCollector, load_parsers  # noqa: E402

TESTS_BUDGET = 0.25  # test parsing may add at most this share to classification time

REALDATA = ROOT.parent / "shared" / "realdata" / "ghalogs-pytables-run200" / "log.tar.gz"
FAILURE = (
    b"2024-01-01T00:00:00.0000000Z ##[group]Run python -m pytest\n"
    b"2024-01-01T00:00:01.0000000Z E   AssertionError: tables differ\n"
    b"2024-01-01T00:00:01.0000000Z FAILED tests/test_tables.py::test_roundtrip - "
    b"AssertionError: tables differ\n"
    b"2024-01-01T00:00:02.0000000Z ##[error]Process completed with exit code 1.\n"
)


def build_log(target: Path, size_mb: int) -> int:
    with tarfile.open(REALDATA) as tar:
        pieces = []
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(".txt"):
                handle = tar.extractfile(member)
                if handle is not None:
                    pieces.append(handle.read())
    corpus = b"".join(pieces)
    want = size_mb * 1_000_000
    with open(target, "wb") as out:
        written = 0
        while written < want:
            out.write(corpus)
            written += len(corpus)
        out.write(FAILURE)
        written += len(FAILURE)
    return written


def to_ere(pattern: str) -> str:
    ere = pattern.replace("(?:", "(").replace("(?i)", "")
    ere = ere.replace("\\d", "[0-9]")
    return ere


def pattern_file(target: Path) -> int:
    kept = []
    for rule in load_catalog(["tarantool"]).rules:
        for pattern in rule.patterns:
            ere = to_ere(pattern)
            check = subprocess.run(
                ["grep", "-E", "-e", ere, "/dev/null"], capture_output=True, check=False
            )
            if check.returncode != 2:  # 2: grep rejects the expression
                kept.append(ere)
    target.write_text("\n".join(kept) + "\n")
    return len(kept)


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str, float]:
    """Wall time, stdout and peak memory (MiB) of one run of a command."""
    began = time.perf_counter()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as proc:
        _pid, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - began
        out = proc.stdout.read().decode() if proc.stdout else ""
        err = proc.stderr.read().decode() if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    if code not in (0, 1):
        raise SystemExit(f"{cmd[0]} failed: {err}")
    return elapsed, out, usage.ru_maxrss / 1024


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            yield chunk


def tests_in_the_pass(log: Path, mb: float, rounds: int) -> None:
    """Classification alone against classification with the test collector listening,
    through the real `scan_log(listeners=...)`, interleaved rounds, best of each."""
    catalog = load_catalog(["tarantool"])
    parsers = load_parsers(["tarantool"])
    best = {"alone": float("inf"), "with tests": float("inf")}
    verdicts: dict[str, str] = {}
    for _ in range(rounds):
        for label in best:
            collector = TestCollector(parsers) if label == "with tests" else None
            began = time.perf_counter()
            found, _context = scan_log(
                _chunks(log), catalog, listeners=[collector] if collector else ()
            )
            took = time.perf_counter() - began
            best[label] = min(best[label], took)
            verdict = found.type if found else "-"
            if collector is not None:
                verdict += f", {len(collector.results())} test results"
            verdicts[label] = verdict
    alone, both = best["alone"], best["with tests"]
    added = (both - alone) / alone
    print(f"scan_log on {mb:.0f} MB (one process, as gather reads a log), best of {rounds}:")
    for label, took in best.items():
        print(f"  {label:<12} {took:6.2f}s {mb / took:6.0f} MB/s -> {verdicts[label]}")
    verdict = "within" if added <= TESTS_BUDGET else "OVER"
    print(
        f"  test results add {100 * added:+.0f}% (ratio {both / alone:.2f}); "
        f"{verdict} the {100 * TESTS_BUDGET:.0f}% budget"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the generated log")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (best kept)")
    args = parser.parse_args()
    if not REALDATA.is_file():
        raise SystemExit(f"real data not found at {REALDATA}")
    tmp = Path(tempfile.mkdtemp(prefix="multivac-bench-"))
    try:
        log = tmp / "big.log"
        size = build_log(log, args.size_mb)
        patterns = tmp / "patterns.txt"
        count = pattern_file(patterns)
        mb = size / 1_000_000
        exe = shutil.which("multivac")
        cmd = [exe] if exe else [sys.executable, "-m", "multivac"]
        classify = [*cmd, "classify", "--rules", "tarantool", str(log)]
        cache = tmp / "cache"  # empty: the first run compiles the Hyperscan database
        base = {**os.environ, "MULTIVAC_CACHE_DIR": str(cache)}
        runs = [
            (
                "grep -E -f (LC_ALL=C)",
                ["grep", "-E", "-c", "-f", str(patterns), str(log)],
                {**os.environ, "LC_ALL": "C"},
            ),
            ("multivac, first run", classify, base),
            ("multivac", classify, base),
            ("multivac, RE2 engine", classify, {**base, "MULTIVAC_ENGINE": "re2"}),
        ]
        print(f"log: {mb:.0f} MB, {count} grep patterns (the catalog's, as ERE)")
        engine = subprocess.run(
            [
                sys.executable,
                "-c",
                "from multivac.classify import engine_status; print(engine_status())",
            ],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        print(f"engine: {engine}; {args.rounds} rounds, each command once per round, interleaved")
        best: dict[str, tuple[float, float, str]] = {}
        for round_number in range(args.rounds):
            if round_number:
                shutil.rmtree(cache, ignore_errors=True)  # "first run" stays a first run
            for label, command, env in runs:
                took, out, rss = timed(command, env)
                found = re.search(r": (\S+)", out) if command is classify else None
                verdict = found.group(1) if found else ""
                if label not in best or took < best[label][0]:
                    best[label] = (took, max(rss, best.get(label, (0, 0, ""))[1]), verdict)
        grep_time = best[runs[0][0]][0]
        for label, (took, rss, verdict) in best.items():
            line = f"{label:<24} {took:6.2f}s {mb / took:6.0f} MB/s"
            if label != runs[0][0]:
                line += f"  ratio {grep_time / took:.2f}  peak RSS {rss:.0f} MiB -> {verdict}"
            print(line)
        print("best time of each command; ratio = grep's time / multivac's time (>= 1.0: faster)")
        tests_in_the_pass(log, mb, args.rounds)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
