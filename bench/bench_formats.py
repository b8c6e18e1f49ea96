"""Benchmark the file formats: writing with each sink, reading back with multivac.ingest.

Baselines in the same run: writing is compared with the CSV sink, reading with the
standard library doing the least it can on the same file (csv.DictReader for the CSV
formats, json.loads per line for JSON Lines, str.split for line protocol), so the ratio
is the price of typed, checked records. Memory: the peak traced allocation while
reading N and 4N records; streaming means the two peaks stay close.

Usage: python bench/bench_formats.py [--records 100000]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from multivac.ingest import read_records  # noqa: E402
from multivac.model import JobRecord  # noqa: E402
from multivac.sinks import Format, build_sink  # noqa: E402

SUFFIX = {
    Format.csv: ".csv",
    Format.json: ".json",
    Format.jsonl: ".jsonl",
    Format.influx_csv: ".csv",
    Format.line_protocol: ".lp",
}


def records(n: int) -> Iterator[JobRecord]:
    """Job records shaped like gather's: 1 in 5 a failure with its evidence."""
    base = 1_790_000_000_000_000_000
    for i in range(n):
        failed = i % 5 == 0
        tags = {
            "repository": f"octo/repo{i % 7}",
            "workflow": "CI",
            "job_name": f"test (ubuntu-latest, 3.{i % 4 + 10})",
            "job_id": str(30_000_000_000 + i),
            "run_id": str(9_000_000_000 + i // 4),
            "run_attempt": "1",
            "branch": "main",
            "commit_sha": f"{i:040x}",
            "platform": "linux-x64",
            "status": "failure" if failed else "success",
            "runner_label": "ubuntu-latest",
        }
        fields: dict[str, float | int | str] = {
            "queued_s": 3.0 + i % 17,
            "in_progress_s": 120.5 + i % 300,
            "html_url": f"https://github.com/octo/repo/actions/runs/{i}/job/{i}",
            "runner_name": f"GitHub Actions {i % 50}",
        }
        if failed:
            fields.update(
                failure_step="Run pytest",
                rule="pytest-failed",
                evidence='FAILED tests/test_x.py::test_y - AssertionError: "a, b" != c',
            )
        yield JobRecord(
            "test_failure" if failed else "successful_jobs", base + i * 1000, tags, fields
        )


def write(fmt: Format, path: Path, n: int) -> float:
    start = time.perf_counter()
    with ExitStack() as stack:
        sink = build_sink(fmt, stack=stack, output=path)
        batch: list[JobRecord] = []
        for record in records(n):
            batch.append(record)
            if len(batch) == 200:  # about a page of runs' jobs, as gather writes them
                sink.write(batch)
                batch = []
        sink.write(batch)
        sink.close()
    return time.perf_counter() - start


def baseline_reader(fmt: Format) -> Callable[[Path], int]:
    def dict_reader(path: Path) -> int:
        with open(path, encoding="utf-8", newline="") as f:
            return sum(1 for row in csv.reader(f) if row and not row[0].startswith("#"))

    def json_lines(path: Path) -> int:
        with open(path, encoding="utf-8") as f:
            return sum(1 for line in f if json.loads(line))

    def json_array(path: Path) -> int:
        return len(json.loads(path.read_text(encoding="utf-8")))

    def split(path: Path) -> int:
        with open(path, encoding="utf-8") as f:
            return sum(1 for line in f if len(line.split(" ")) >= 3)

    return {
        Format.csv: dict_reader,
        Format.influx_csv: dict_reader,
        Format.jsonl: json_lines,
        Format.json: json_array,
        Format.line_protocol: split,
    }[fmt]


def timed(action: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    count = action()
    return time.perf_counter() - start, count


def peak_reading(path: Path) -> int:
    tracemalloc.start()
    for _ in read_records(path):
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    n = args.records
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"{n} records, batches of 200\n")
        print(f"{'format':<14} {'write/s':>10} {'vs csv':>7} {'MB':>7} {'read/s':>10} "
              f"{'stdlib/s':>10} {'ratio':>6}")  # fmt: skip
        csv_write = None
        for fmt in SUFFIX:
            path = folder / f"out-{fmt.value}{SUFFIX[fmt]}"
            seconds = write(fmt, path, n)
            csv_write = csv_write or seconds
            read_s, count = timed(lambda path=path: sum(1 for _ in read_records(path)))
            assert count == n, (fmt, count)
            base_s, _ = timed(lambda path=path, fmt=fmt: baseline_reader(fmt)(path))
            size = path.stat().st_size / 1e6
            print(
                f"{fmt.value:<14} {n / seconds:>10,.0f} {seconds / csv_write:>6.2f}x "
                f"{size:>7.1f} {n / read_s:>10,.0f} {n / base_s:>10,.0f} {read_s / base_s:>5.1f}x"
            )
        print("\npeak traced memory while reading (N vs 4N records):")
        small = max(1000, n // 20)
        for fmt in SUFFIX:
            peaks = []
            for size in (small, 4 * small):
                path = folder / f"mem-{fmt.value}-{size}{SUFFIX[fmt]}"
                write(fmt, path, size)
                peaks.append(peak_reading(path))
            print(
                f"{fmt.value:<14} {small:>7}: {peaks[0] / 1e6:6.2f} MB   {4 * small:>7}: "
                f"{peaks[1] / 1e6:6.2f} MB   ratio {peaks[1] / peaks[0]:.2f}"
            )


if __name__ == "__main__":
    main()
