"""Several InfluxDB targets: every point goes to every target.

Each target is an `InfluxSink` of its own: its own client, its own spool directory and
its own retry state (`Outage`), so a target that is down spools its points and never
holds back or loses the others'. The targets are written side by side, one thread each,
so a target waiting out its retry budget does not delay the writes to the others.

A target with a `tests_bucket` sends the test records there (each record type names
its bucket: `Record.BUCKET`, `model.bucket_role` for a key), through a second sink
with a spool of its own.

Spools: the target named "default" keeps `STATE/spool` (where a single InfluxDB always
spooled); another target NAME spools to `STATE/spool/targets/NAME`, and a tests bucket
to `<the target's spool>/tests`. `Spool.pending()` reads only its own directory, so
the spools never mix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from multivac.config import DEFAULT_TARGET, InfluxSettings
from multivac.errors import SinkError
from multivac.model import TESTS_BUCKET, PointKey, Record, bucket_role
from multivac.retry import Notify, RetryPolicy
from multivac.sinks.influx import CHUNK, InfluxSink

T = TypeVar("T")


def spool_dir(spool_root: Path, target: str, *, tests: bool = False) -> Path:
    """Where a target's undelivered points wait; `spool_root` is STATE/spool."""
    base = spool_root if target == DEFAULT_TARGET else spool_root / "targets" / target
    return base / "tests" if tests else base


@dataclass(frozen=True)
class TargetStats:
    name: str
    url: str
    written: int
    spooled: int
    rejected: int
    spool: Path


class _Target:
    """One target: its sink, and a second one for its tests bucket."""

    def __init__(
        self,
        settings: InfluxSettings,
        spool_root: Path,
        *,
        policy: RetryPolicy | None,
        notify: Notify | None,
        create_bucket: bool,
        chunk_size: int,
    ) -> None:
        self.settings = settings
        self.spool = spool_dir(spool_root, settings.name)
        label = f"InfluxDB {settings.name}" if settings.name != DEFAULT_TARGET else "InfluxDB"
        self.main = InfluxSink(
            settings,
            self.spool,
            policy=policy,
            notify=notify,
            create_bucket=create_bucket,
            chunk_size=chunk_size,
            label=label,
        )
        self.tests: InfluxSink | None = None
        if settings.tests_bucket:
            self.tests = InfluxSink(
                replace(settings, bucket=settings.tests_bucket),
                spool_dir(spool_root, settings.name, tests=True),
                policy=policy,
                notify=notify,
                create_bucket=create_bucket,
                chunk_size=chunk_size,
                label=f"{label} (tests bucket)",
            )

    @property
    def sinks(self) -> list[InfluxSink]:
        return [self.main] + ([self.tests] if self.tests is not None else [])

    def write(self, records: Sequence[Record]) -> None:
        if self.tests is None:
            self.main.write(records)
            return
        self.main.write([r for r in records if r.BUCKET != TESTS_BUCKET])
        self.tests.write([r for r in records if r.BUCKET == TESTS_BUCKET])

    def retract(self, keys: Sequence[PointKey]) -> None:
        if self.tests is None:
            self.main.retract(keys)
            return
        main = [k for k in keys if bucket_role(k.measurement) != TESTS_BUCKET]
        tests = [k for k in keys if bucket_role(k.measurement) == TESTS_BUCKET]
        if main:
            self.main.retract(main)
        if tests:
            self.tests.retract(tests)

    def replay(self) -> int:
        return sum(sink.replay() for sink in self.sinks)

    def flush(self) -> None:
        for sink in self.sinks:
            sink.flush()

    def close(self) -> None:
        errors: list[BaseException] = []
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # close the others all the same
                errors.append(exc)
        if errors:
            raise errors[0]

    def stats(self) -> TargetStats:
        return TargetStats(
            name=self.settings.name,
            url=self.settings.url,
            written=sum(s.stats.written for s in self.sinks),
            spooled=sum(s.stats.spooled for s in self.sinks),
            rejected=sum(s.stats.rejected for s in self.sinks),
            spool=self.spool,
        )


class InfluxTargets:
    """The sink for --format influxdb: every InfluxDB target, each on its own."""

    def __init__(
        self,
        targets: Sequence[InfluxSettings],
        spool_root: Path,
        *,
        policy: RetryPolicy | None = None,
        notify: Notify | None = None,
        create_bucket: bool = False,
        chunk_size: int = CHUNK,
    ) -> None:
        if not targets:
            raise SinkError("--format influxdb needs at least one InfluxDB target.")
        self.spool_root = spool_root
        self.targets: list[_Target] = []
        try:
            for settings in targets:
                self.targets.append(
                    _Target(
                        settings,
                        spool_root,
                        policy=policy,
                        notify=notify,
                        create_bucket=create_bucket,
                        chunk_size=chunk_size,
                    )
                )
        except BaseException:
            for target in self.targets:
                target.close()
            raise
        self._pool = ThreadPoolExecutor(
            max_workers=len(self.targets), thread_name_prefix="multivac-influx"
        )

    def _each(self, call: Callable[[_Target], T]) -> list[T]:
        """`call` on every target at once; the first error is raised once all are done."""
        if len(self.targets) == 1:
            return [call(self.targets[0])]
        futures = [self._pool.submit(call, target) for target in self.targets]
        results: list[T] = []
        error: BaseException | None = None
        for future in futures:
            try:
                results.append(future.result())
            except BaseException as exc:
                error = error or exc
        if error is not None:
            raise error
        return results

    def write(self, records: Iterable[Record]) -> None:
        batch = list(records)
        if batch:
            self._each(lambda target: target.write(batch))

    def retract(self, keys: Sequence[PointKey]) -> None:
        if keys:
            self._each(lambda target: target.retract(keys))

    def replay(self) -> dict[str, int]:
        """Deliver every target's spool; points delivered, by target name."""
        counts = self._each(lambda target: target.replay())
        return {t.settings.name: n for t, n in zip(self.targets, counts, strict=True)}

    def flush(self) -> None:
        """Send what is buffered to every target now (what cannot go is spooled)."""
        self._each(lambda target: target.flush())

    def pending(self) -> int:
        """Spool files waiting, over every target."""
        return sum(len(sink.spool.pending()) for t in self.targets for sink in t.sinks)

    def close(self) -> None:
        try:
            self._each(lambda target: target.close())
        finally:
            self._pool.shutdown(wait=True)

    @property
    def sinks(self) -> list[InfluxSink]:
        return [sink for target in self.targets for sink in target.sinks]

    @property
    def stats(self) -> list[TargetStats]:
        return [target.stats() for target in self.targets]

    @property
    def spooled(self) -> bool:
        return any(s.stats.spooled or s.stats.spooled_retractions for s in self.sinks)

    @property
    def messages(self) -> list[str]:
        return [message for sink in self.sinks for message in sink.stats.messages]

    @property
    def failure(self) -> str | None:
        """Why some target spooled or set aside points, for the exit code."""
        failures = [sink.failure for sink in self.sinks if sink.failure]
        return "; ".join(failures) if failures else None

    def raise_failure(self) -> None:
        """Raise the `SinkError` a command exits with when some target spooled or set
        aside points, saying where spooled points go next."""
        if self.failure is None:
            return
        later = (
            " The spooled points are delivered by the next gather or `multivac replay`."
            if self.spooled
            else ""
        )
        raise SinkError(self.failure.rstrip(".") + "." + later)

    def note(self) -> str:
        """What happened to the points, per target, for the gather summary."""
        if len(self.targets) == 1 and self.targets[0].tests is None:
            sink = self.targets[0].main
            return sink.note(sink.spool.directory)
        return "; ".join(
            sink.note(sink.spool.directory) for target in self.targets for sink in target.sinks
        )
