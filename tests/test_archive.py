"""The log archive: complete logs only, a size budget with the oldest removed first."""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from multivac.archive import LogArchive


def noisy_log(seed: int, lines: int = 2000) -> bytes:
    """Log-like text that compresses like a real log does, not to nothing."""
    rng = random.Random(seed)
    return b"".join(
        f"2026-10-01T12:00:{i % 60:02d}.{rng.randrange(10**7):07d}Z step {i} "
        f"{rng.getrandbits(64):x}\n".encode()
        for i in range(lines)
    )


def archived(archive: LogArchive, job_id: int, data: bytes) -> bytes:
    return b"".join(archive.tee(job_id, [data[: len(data) // 2], data[len(data) // 2 :]]))


def test_a_log_passes_through_unchanged_and_reads_back(tmp_path: Path) -> None:
    archive = LogArchive(tmp_path / "logs", 10 << 20)
    data = noisy_log(1)
    assert archived(archive, 7, data) == data
    read = archive.read(7)
    assert read is not None and b"".join(read) == data
    assert gzip.decompress(archive.path(7).read_bytes()) == data  # plain gzip on disk
    assert archive.read(8) is None


def test_a_download_that_breaks_off_leaves_nothing(tmp_path: Path) -> None:
    archive = LogArchive(tmp_path / "logs", 10 << 20)

    def broken() -> Iterator[bytes]:
        yield b"first half\n"
        raise ConnectionError("cut")

    with pytest.raises(ConnectionError):
        b"".join(archive.tee(7, broken()))
    assert not archive.has(7)
    assert list((tmp_path / "logs").iterdir()) == []


def test_the_budget_removes_the_oldest_logs_first(tmp_path: Path) -> None:
    size = {i: len(gzip.compress(noisy_log(i), 1)) for i in range(1, 7)}
    room = size[4] + size[5] + size[6] + 200  # the three newest, not a fourth
    archive = LogArchive(tmp_path / "logs", budget_bytes=room)
    for job_id in range(1, 7):
        archived(archive, job_id, noisy_log(job_id))
    assert archive.size() <= archive.budget
    kept = sorted(int(p.name.split(".")[0]) for p in (tmp_path / "logs").iterdir())
    assert kept == [4, 5, 6]
    # a new archive object over the same folder finds the same size
    assert LogArchive(tmp_path / "logs", archive.budget).size() == archive.size()


def test_zero_turns_the_archive_off(tmp_path: Path) -> None:
    archive = LogArchive(tmp_path / "logs", 0)
    data = noisy_log(2)
    assert archived(archive, 7, data) == data
    assert not archive.has(7)
    assert not (tmp_path / "logs").exists()
