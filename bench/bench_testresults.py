"""Benchmark test-result parsing in the classification pass, against classification
alone, in one run.

Two logs:

- the big real log of bench_classify.py (the pytables job logs of ../shared/realdata
  repeated to --size-mb, one real failure at the end): the common case, few test lines;
- a test-heavy log (the real `pytest -v` fixture repeated, with distinct ids, until it
  has --test-lines lines): the worst case, where most lines are test results.

For each it times (best of --repeat interleaved rounds, in this process):

- classification alone: `multivac.classify.scan_log`, the scan gather runs on a log;
- the same scan with a TestCollector listening (`scan_log(listeners=[collector])`): its
  patterns join the classification prefilter and every candidate line also goes to
  `feed`, in the one pass gather makes;

and prints the added time as a share of classification's. It also prints the peak
memory the collector allocates on the test-heavy log (tracemalloc).

Usage: python bench/bench_testresults.py [--size-mb 200] [--test-lines 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_classify import REALDATA, build_log  # noqa: E402

from multivac import classify  # noqa: E402
from multivac.testresults import (  # noqa: E402
    ParserSet,
    TestCollector,
    load_parsers,
    parse_log_chunks,
)

PYTEST_FIXTURE = ROOT / "tests" / "fixtures" / "testresults" / "pytest" / "pytest-verbose.log"


def build_test_log(target: Path, lines: int) -> int:
    sample = PYTEST_FIXTURE.read_bytes()
    per_copy = sample.count(b"\n")
    with open(target, "wb") as out:
        written = 0
        copy = 0
        while written < lines:
            # distinct test ids per copy, so the cap (not deduplication) bounds memory
            out.write(sample.replace(b"test_auth.py", b"test_auth_%d.py" % copy))
            written += per_copy
            copy += 1
    return target.stat().st_size


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            yield chunk


def classify_alone(log: Path, catalog: classify.Catalog) -> str:
    found, _context = classify.scan_log(_chunks(log), catalog)
    return found.type if found else "-"


def classify_with_tests(log: Path, catalog: classify.Catalog, parsers: ParserSet) -> str:
    """One pass: every prefilter candidate goes to classification and to the collector."""
    collector = TestCollector(parsers)
    found, _context = classify.scan_log(_chunks(log), catalog, listeners=[collector])
    return f"{found.type if found else '-'}, {len(collector.results())} test results"


def compare(log: Path, catalog: classify.Catalog, parsers: ParserSet, repeat: int) -> None:
    """Both scans once per round, rounds interleaved (the machine may be shared), the
    best time of each kept."""
    mb = log.stat().st_size / 1_000_000
    print(f"{log.name}: {mb:.0f} MB")
    runs = {
        "classification alone": lambda: classify_alone(log, catalog),
        "classification + test results": lambda: classify_with_tests(log, catalog, parsers),
    }
    times: dict[str, float] = {}
    results: dict[str, str] = {}
    for _ in range(repeat):
        for label, run in runs.items():
            began = time.perf_counter()
            results[label] = run()
            took = time.perf_counter() - began
            times[label] = min(times.get(label, took), took)
    for label in runs:
        print(f"  {label:<36} {times[label]:7.2f}s  -> {results[label]}")
    alone, both = times["classification alone"], times["classification + test results"]
    print(
        f"  added by test parsing: {100 * (both - alone) / alone:+.0f}% (ratio {both / alone:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--test-lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not REALDATA.is_file():
        raise SystemExit(f"real data not found at {REALDATA}")
    catalog = classify.load_catalog(["tarantool"])
    parsers = load_parsers(["tarantool"])
    tmp = Path(tempfile.mkdtemp(prefix="multivac-bench-tests-"))
    try:
        big = tmp / "big.log"
        build_log(big, args.size_mb)
        compare(big, catalog, parsers, args.repeat)
        heavy = tmp / "tests.log"
        build_test_log(heavy, args.test_lines)
        compare(heavy, catalog, parsers, args.repeat)
        tracemalloc.start()
        with open(heavy, "rb") as handle:
            collector = parse_log_chunks(iter(lambda: handle.read(1 << 20), b""), parsers)
        _now, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        summary = collector.summary()
        print(
            f"test-heavy log: {len(collector.results())} results kept, {summary.dropped} "
            f"counted past the cap; collector peak allocation {peak / 2**20:.0f} MiB"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
