"""Failed jobs' logs kept compressed in the state directory, within a size budget.

GitHub deletes logs after 90 days or less; with the archive, `reclassify` and the test
parsers read the full log again long after. A log is archived in the same pass that
classifies it (`tee`): no second download, no second read. It counts only once it is
complete (written to a temporary file, then renamed), so a download that breaks off and
starts again leaves no half log. The oldest logs go first when the budget is exceeded.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import threading
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from multivac.errors import StoreError

SUFFIX = ".log.gz"
_TEMPORARIES = itertools.count()  # a download started again never shares a temporary file
_LEVEL = 1  # logs compress about 10:1 even at the fastest level; the scan must not wait


class DamagedLog(StoreError):
    """An archived log that does not decompress to its end: not gzip, or cut off (a disk
    that filled up, a copy that broke off). It must not pass for the whole log."""


class LogArchive:
    """`<state>/logs/<job id>.log.gz`; `budget_bytes` 0 keeps no new logs (the ones
    already there can still be read)."""

    def __init__(self, directory: Path, budget_bytes: int) -> None:
        self.directory = directory
        self.budget = max(0, budget_bytes)
        self._lock = threading.Lock()
        self._oldest: list[tuple[float, str]] | None = None  # (mtime, name), a heap
        self._sizes: dict[str, int] = {}
        self._total = 0

    @property
    def enabled(self) -> bool:
        return self.budget > 0

    def path(self, job_id: int) -> Path:
        return self.directory / f"{job_id}{SUFFIX}"

    def has(self, job_id: int) -> bool:
        return self.path(job_id).is_file()

    # ------------------------------------------------------------------ writing

    def tee(self, job_id: int, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """The chunks, unchanged, while they are compressed into the archive; the log
        is kept once the stream ends, and dropped when it breaks off."""
        if not self.enabled:
            yield from chunks
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._load()  # before this log lands, so that it is counted once
        final = self.path(job_id)
        temporary = final.with_name(f".{final.name}.{os.getpid()}.{next(_TEMPORARIES)}")
        # gzip framing (wbits 31): `zcat` and `gzip -d` read the archive as it is
        packer = zlib.compressobj(_LEVEL, zlib.DEFLATED, 31)
        complete = False
        try:
            with open(temporary, "wb") as out:
                for chunk in chunks:
                    out.write(packer.compress(chunk))
                    yield chunk
                out.write(packer.flush())
            complete = True
        finally:
            if complete:
                os.replace(temporary, final)
                self._added(final)
            else:
                with contextlib.suppress(FileNotFoundError):
                    temporary.unlink()

    def _load(self) -> list[tuple[float, str]]:
        """The heap of (mtime, name), read from the folder once; `_sizes` is the truth,
        the heap may hold stale entries of logs written again since."""
        if self._oldest is None:
            heap: list[tuple[float, str]] = []
            if self.directory.is_dir():
                with os.scandir(self.directory) as entries:
                    for entry in entries:
                        if entry.name.endswith(SUFFIX) and entry.is_file():
                            info = entry.stat()
                            heap.append((info.st_mtime, entry.name))
                            self._sizes[entry.name] = info.st_size
                            self._total += info.st_size
            heapq.heapify(heap)
            self._oldest = heap
        return self._oldest

    def _added(self, path: Path) -> None:
        info = path.stat()
        with self._lock:
            heap = self._load()
            heapq.heappush(heap, (info.st_mtime, path.name))
            self._total += info.st_size - self._sizes.get(path.name, 0)
            self._sizes[path.name] = info.st_size
            self._prune()

    def _prune(self) -> None:
        """Remove the oldest logs until the archive fits its budget (a log larger than
        the whole budget is not kept either)."""
        heap = self._load()
        while self._total > self.budget and heap:
            mtime, name = heapq.heappop(heap)
            path = self.directory / name
            try:
                if name not in self._sizes or path.stat().st_mtime != mtime:
                    continue  # stale: the log was written again, a newer entry stands
                path.unlink()
            except FileNotFoundError:
                pass
            self._total -= self._sizes.pop(name, 0)

    def size(self) -> int:
        """Bytes the archive takes on disk."""
        with self._lock:
            self._load()
            return self._total

    # ------------------------------------------------------------------ reading

    def read(self, job_id: int, size: int = 1 << 20) -> Iterator[bytes] | None:
        """The archived log's bytes in chunks, or None when it is not archived."""
        path = self.path(job_id)
        if not path.is_file():
            return None
        return _inflate(path, size)


def _inflate(path: Path, size: int) -> Iterator[bytes]:
    unpacker = zlib.decompressobj(31)
    damaged = (
        f"the archived log {path} is damaged ({{}}); remove it (a gather reads the log "
        "again while GitHub keeps it)."
    )
    with open(path, "rb") as handle:
        while packed := handle.read(size):
            try:
                data = unpacker.decompress(packed)
            except zlib.error as exc:
                raise DamagedLog(damaged.format(f"not gzip: {exc}")) from None
            if data:
                yield data
    rest = unpacker.flush()
    if rest:
        yield rest
    if not unpacker.eof:
        raise DamagedLog(damaged.format("cut off before its end"))
