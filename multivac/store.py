"""The local store: SQLite in the state directory, the embedded default.

It remembers what was gathered (runs, jobs, classifications with an evidence excerpt,
the ETags of run-list pages) so that a repeated gather fetches only what is new, and so
that stats, reports and reclassification work offline, after GitHub deleted the logs.
Every write is an upsert on GitHub's ids; the schema can be created any number of times.
Only the thread that opened the store uses it.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from multivac.errors import StoreError
from multivac.model import Classification, Job, JobRecord, PointKey, Run, Step

SCHEMA_VERSION = 3
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    repository TEXT NOT NULL,
    workflow TEXT NOT NULL,
    workflow_path TEXT NOT NULL,
    run_attempt INTEGER NOT NULL,
    branch TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    event TEXT NOT NULL,
    status TEXT NOT NULL,
    conclusion TEXT,
    created_at TEXT,
    updated_at TEXT,
    html_url TEXT NOT NULL,
    jobs_complete INTEGER NOT NULL DEFAULT 0,
    github TEXT NOT NULL DEFAULT '',
    run_started_at TEXT,
    actor TEXT NOT NULL DEFAULT '',
    pr_number INTEGER
);
CREATE INDEX IF NOT EXISTS runs_by_repo_time ON runs (repository, created_at);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL,
    run_attempt INTEGER NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    conclusion TEXT,
    created_at TEXT,
    started_at TEXT,
    completed_at TEXT,
    labels TEXT NOT NULL,
    runner_name TEXT NOT NULL,
    html_url TEXT NOT NULL,
    steps TEXT NOT NULL,
    workflow TEXT NOT NULL,
    branch TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    runner_group TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS jobs_by_run ON jobs (run_id);
CREATE TABLE IF NOT EXISTS classifications (
    job_id INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    rule TEXT NOT NULL,
    step TEXT,
    line_number INTEGER,
    evidence TEXT NOT NULL,
    excerpt TEXT NOT NULL,
    classified_at REAL NOT NULL,
    also TEXT NOT NULL DEFAULT '',
    signature TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS signatures (
    hash TEXT PRIMARY KEY,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS emitted (
    job_id INTEGER PRIMARY KEY,
    measurement TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    flaky INTEGER NOT NULL DEFAULT 0,
    key TEXT
);
CREATE TABLE IF NOT EXISTS pending (
    job_id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL,
    reason TEXT NOT NULL,
    since REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_by_run ON pending (run_id);
CREATE TABLE IF NOT EXISTS pages (
    key TEXT PRIMARY KEY,
    etag TEXT NOT NULL,
    data TEXT NOT NULL,
    stored_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_by_time ON deliveries (received_at);
CREATE TABLE IF NOT EXISTS coverage (
    repository TEXT NOT NULL,
    since TEXT NOT NULL,
    until TEXT NOT NULL,
    gathered_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_commit ON runs (repository, commit_sha);
-- test results (multivac.testresults.store reads and writes them)
CREATE TABLE IF NOT EXISTS test_results (
    job_id INTEGER NOT NULL,
    framework TEXT NOT NULL,
    test TEXT NOT NULL,
    configuration TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    own_status TEXT NOT NULL,
    suite TEXT,
    line_number INTEGER,
    duration_s REAL,
    message TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT 'log',
    created_at TEXT,
    PRIMARY KEY (job_id, framework, test, configuration)
);
CREATE INDEX IF NOT EXISTS test_results_by_test ON test_results (test, created_at);
CREATE INDEX IF NOT EXISTS test_results_by_time ON test_results (created_at);
CREATE TABLE IF NOT EXISTS test_jobs (
    job_id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL,
    passed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    hung INTEGER NOT NULL DEFAULT 0,
    flaky INTEGER NOT NULL DEFAULT 0,
    dropped INTEGER NOT NULL DEFAULT 0,
    sources TEXT NOT NULL DEFAULT '',
    parsed_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS test_jobs_by_run ON test_jobs (run_id);
CREATE TABLE IF NOT EXISTS test_points (
    job_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (job_id, key)
);
CREATE TABLE IF NOT EXISTS artifacts (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    job_id INTEGER,
    outcome TEXT NOT NULL,
    problems TEXT NOT NULL DEFAULT '',
    read_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS artifacts_by_run ON artifacts (run_id);
CREATE TABLE IF NOT EXISTS artifact_listings (
    run_id INTEGER PRIMARY KEY,
    pattern TEXT NOT NULL,
    listed_at REAL NOT NULL
);
"""


def _ts(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _dt(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


RUN_COLUMNS = (
    "id, repository, workflow, workflow_path, run_attempt, branch, commit_sha, event, "
    "status, conclusion, created_at, updated_at, html_url, run_started_at, actor, pr_number"
)
CLASSIFICATION_COLUMNS = "type, rule, step, line_number, evidence, excerpt, also, signature"
JOB_COLUMNS = (
    "id, run_id, run_attempt, name, status, conclusion, created_at, started_at, "
    "completed_at, labels, runner_name, html_url, steps, workflow, branch, commit_sha, "
    "runner_group"
)
_RUNS = len(RUN_COLUMNS.split(","))
_JOBS = len(JOB_COLUMNS.split(","))


def _marks(count: int) -> str:
    return ",".join("?" * count)


def _steps_json(steps: Iterable[Step]) -> str:
    return json.dumps(
        [[s.number, s.name, s.conclusion, _ts(s.started_at), _ts(s.completed_at)] for s in steps]
    )


def _steps(text: str) -> tuple[Step, ...]:
    """Stored steps; a store older than step times kept [number, name, conclusion]."""
    steps = []
    for number, name, conclusion, *times in json.loads(text):
        started, completed = [*times, None, None][:2]
        steps.append(Step(number, name, conclusion, _dt(started), _dt(completed)))
    return tuple(steps)


_UPSERT_RUN = (
    f"INSERT INTO runs ({RUN_COLUMNS}, jobs_complete, github) VALUES ({_marks(_RUNS + 2)}) "
    "ON CONFLICT(id) DO UPDATE SET repository=excluded.repository, "
    "workflow=excluded.workflow, "
    "workflow_path=excluded.workflow_path, run_attempt=excluded.run_attempt, "
    "branch=excluded.branch, commit_sha=excluded.commit_sha, event=excluded.event, "
    "status=excluded.status, conclusion=excluded.conclusion, "
    "created_at=excluded.created_at, updated_at=excluded.updated_at, "
    "html_url=excluded.html_url, run_started_at=excluded.run_started_at, "
    "actor=excluded.actor, pr_number=excluded.pr_number, "
    "jobs_complete=excluded.jobs_complete, github=excluded.github"
)
_REPLACE_JOB = f"INSERT OR REPLACE INTO jobs ({JOB_COLUMNS}) VALUES ({_marks(_JOBS)})"


def _run_values(run: Run, jobs_complete: bool, github: str) -> tuple[Any, ...]:
    """A run's row for _UPSERT_RUN; `jobs_complete`: its stored jobs are all of them."""
    return (
        run.id,
        run.repository,
        run.workflow,
        run.workflow_path,
        run.run_attempt,
        run.branch,
        run.commit_sha,
        run.event,
        run.status,
        run.conclusion,
        _ts(run.created_at),
        _ts(run.updated_at),
        run.html_url,
        _ts(run.run_started_at),
        run.actor,
        run.pr_number,
        int(jobs_complete),
        github,
    )


def _job_values(run_id: int, job: Job) -> tuple[Any, ...]:
    return (
        job.id,
        run_id,
        job.run_attempt,
        job.name,
        job.status,
        job.conclusion,
        _ts(job.created_at),
        _ts(job.started_at),
        _ts(job.completed_at),
        json.dumps(list(job.labels)),
        job.runner_name,
        job.html_url,
        _steps_json(job.steps),
        job.workflow,
        job.branch,
        job.commit_sha,
        job.runner_group,
    )


def _prefixed(columns: str, alias: str) -> str:
    return ", ".join(f"{alias}.{name.strip()}" for name in columns.split(","))


#: columns added since the first schema: (table, column, definition)
_ADDED_COLUMNS = (
    ("runs", "github", "TEXT NOT NULL DEFAULT ''"),
    ("emitted", "key", "TEXT"),
    ("classifications", "also", "TEXT NOT NULL DEFAULT ''"),
    ("classifications", "signature", "TEXT NOT NULL DEFAULT ''"),
    ("runs", "run_started_at", "TEXT"),
    ("runs", "actor", "TEXT NOT NULL DEFAULT ''"),
    ("runs", "pr_number", "INTEGER"),
    ("jobs", "runner_group", "TEXT NOT NULL DEFAULT ''"),
)
#: indexes on added columns: created after the columns, or an older store cannot open
_ADDED_INDEXES = (
    "CREATE INDEX IF NOT EXISTS classifications_by_signature ON classifications (signature)",
)


def _migrate(connection: sqlite3.Connection) -> None:
    """Bring a store written by an older multivac up to this schema, in place."""
    for table, column, definition in _ADDED_COLUMNS:
        names = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        if column not in names:
            connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
    for index in _ADDED_INDEXES:
        connection.execute(index)
    found = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if found is None or found[0] != str(SCHEMA_VERSION):
        connection.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )


@dataclass(frozen=True)
class StoredJob:
    run: Run
    job: Job
    classification: Classification | None


@dataclass(frozen=True)
class KnownRun:
    """A stored run that did not change on GitHub since it was gathered."""

    jobs: list[Job]
    classifications: dict[int, Classification]
    pending: frozenset[int]  # failed jobs whose log is still to be read


@dataclass(frozen=True)
class Emitted:
    """What was last written for a job. `key` is None for points written by a multivac
    older than PointKey, which kept only measurement, time and the flaky flag."""

    key: PointKey | None
    measurement: str
    time_ns: int
    flaky: bool


def _cannot_write(path: Path, exc: sqlite3.Error) -> StoreError:
    hint = ""
    if "locked" in str(exc):
        hint = " (another multivac is writing to it: run one at a time per state directory)"
    return StoreError(f"cannot write the local store {path}: {exc}{hint}.")


class Store:
    """The SQLite store; open with `Store.open(state_dir)`."""

    FILENAME = "multivac.sqlite3"

    def __init__(self, connection: sqlite3.Connection, path: Path, github: str = "") -> None:
        self.db = connection
        self.path = path
        self.github = github

    @classmethod
    def open(cls, directory: Path, *, github: str = "") -> Store:
        """Open (and create or upgrade) the store; `github` is the API URL the runs come
        from, so that one state directory can serve several GitHub instances."""
        if directory.exists() and not directory.is_dir():
            raise StoreError(
                f"the state directory {directory} is a file, not a directory "
                "(--state-dir, MULTIVAC_STATE_DIR)."
            )
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / cls.FILENAME
            connection = sqlite3.connect(path, timeout=30, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(SCHEMA)
            _migrate(connection)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the local store in {directory}: {exc}.") from None
        return cls(connection, path, github)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _write(self, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
        try:
            self.db.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise _cannot_write(self.path, exc) from None

    # ------------------------------------------------------------------ runs and jobs

    def save_run(
        self,
        run: Run,
        jobs: Iterable[Job],
        classifications: Mapping[int, Classification],
        pending: Mapping[int, str] | None = None,
    ) -> None:
        """Upsert a run with all its jobs and classifications, in one transaction;
        `pending` maps failed jobs whose log could not be read yet to why."""
        jobs = list(jobs)
        pending = pending or {}
        # a full disk fails the COMMIT itself: the transaction says so in one sentence
        with _Transaction(self):
            self._write(_UPSERT_RUN, [_run_values(run, True, self.github)])
            self._write(_REPLACE_JOB, [_job_values(run.id, job) for job in jobs])
            self._classify(classifications)
            self._write("DELETE FROM pending WHERE run_id = ?", [(run.id,)])
            self._write(
                "INSERT INTO pending VALUES (?,?,?,?)",
                [(job_id, run.id, why, time.time()) for job_id, why in pending.items()],
            )

    def known_run(self, run: Run) -> KnownRun | None:
        """The stored jobs of a run when nothing changed since (same attempt, same update)."""
        row = self.db.execute(
            "SELECT run_attempt, updated_at, jobs_complete FROM runs WHERE id = ?", (run.id,)
        ).fetchone()
        if row is None or not row[2]:
            return None
        if row[0] != run.run_attempt or row[1] != _ts(run.updated_at) or run.updated_at is None:
            return None
        pending = frozenset(
            job_id
            for (job_id,) in self.db.execute(
                "SELECT job_id FROM pending WHERE run_id = ?", (run.id,)
            )
        )
        return KnownRun(self.jobs_of(run.id), self.classifications_of(run.id), pending)

    def pending_jobs(self) -> int:
        """Failed jobs whose log is still to be read."""
        row = self.db.execute("SELECT count(*) FROM pending").fetchone()
        return int(row[0])

    def jobs_of(self, run_id: int) -> list[Job]:
        cursor = self.db.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE run_id = ? ORDER BY rowid", (run_id,)
        )
        return [self._job(row) for row in cursor]

    @staticmethod
    def _job(row: tuple[Any, ...]) -> Job:
        return Job(
            id=row[0],
            run_id=row[1],
            run_attempt=row[2],
            name=row[3],
            status=row[4],
            conclusion=row[5],
            created_at=_dt(row[6]),
            started_at=_dt(row[7]),
            completed_at=_dt(row[8]),
            labels=tuple(json.loads(row[9])),
            runner_name=row[10],
            html_url=row[11],
            steps=_steps(row[12]),
            workflow=row[13],
            branch=row[14],
            commit_sha=row[15],
            runner_group=row[16] or "",
        )

    @staticmethod
    def _run(row: tuple[Any, ...]) -> Run:
        return Run(
            id=row[0],
            repository=row[1],
            workflow=row[2],
            workflow_path=row[3],
            run_attempt=row[4],
            branch=row[5],
            commit_sha=row[6],
            event=row[7],
            status=row[8],
            conclusion=row[9],
            created_at=_dt(row[10]),
            updated_at=_dt(row[11]),
            html_url=row[12],
            run_started_at=_dt(row[13]),
            actor=row[14] or "",
            pr_number=row[15],
        )

    def classifications_of(self, run_id: int) -> dict[int, Classification]:
        cursor = self.db.execute(
            f"SELECT c.job_id, {_prefixed(CLASSIFICATION_COLUMNS, 'c')} "
            "FROM classifications c JOIN jobs j ON j.id = c.job_id WHERE j.run_id = ?",
            (run_id,),
        )
        return {row[0]: Classification(*row[1:]) for row in cursor}

    def _by_ids(self, sql: str, job_ids: Iterable[int]) -> Iterator[tuple[Any, ...]]:
        """Rows of `sql` (with one `{marks}` placeholder) for many ids, 500 at a time."""
        ids = list(job_ids)
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            yield from self.db.execute(sql.format(marks=",".join("?" * len(part))), part)

    def set_classification(self, job_id: int, classification: Classification) -> None:
        self._classify({job_id: classification})

    def _classify(self, classifications: Mapping[int, Classification]) -> None:
        """Upsert classifications, and the normalised text of their signatures."""
        from multivac.signature import signature

        now = time.time()
        self._write(
            f"INSERT OR REPLACE INTO classifications (job_id, {CLASSIFICATION_COLUMNS}, "
            "classified_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    job_id,
                    c.type,
                    c.rule,
                    c.step,
                    c.line_number,
                    c.evidence,
                    c.excerpt,
                    c.also,
                    c.signature,
                    now,
                )
                for job_id, c in classifications.items()
            ],
        )
        texts = {
            c.signature: signature(c.evidence)[1]
            for c in classifications.values()
            if c.signature and c.evidence
        }
        self._write(
            "INSERT OR IGNORE INTO signatures VALUES (?,?)",
            [(hash_, text) for hash_, text in texts.items() if text],
        )

    def stored_jobs(
        self, repositories: Iterable[str], since: datetime | None, until: datetime | None
    ) -> Iterator[StoredJob]:
        """Every stored job of runs created in the window, with its classification."""
        repos = list(repositories)
        clauses = []
        params: list[Any] = []
        if repos:
            clauses.append(f"r.repository COLLATE NOCASE IN ({','.join('?' * len(repos))})")
            params.extend(repos)
        if since is not None:
            clauses.append("r.created_at >= ?")
            params.append(_ts(since))
        if until is not None:
            clauses.append("r.created_at <= ?")
            params.append(_ts(until))
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        with closing(
            self.db.execute(
                f"SELECT {_prefixed(RUN_COLUMNS, 'r')}, {_prefixed(JOB_COLUMNS, 'j')}, "
                f"{_prefixed(CLASSIFICATION_COLUMNS, 'c')} "
                f"FROM runs r JOIN jobs j ON j.run_id = r.id "
                f"LEFT JOIN classifications c ON c.job_id = j.id {where} "
                "ORDER BY r.created_at DESC, r.id DESC, j.rowid",
                params,
            )
        ) as cursor:
            for row in cursor:
                run = self._run(row[:_RUNS])
                job = self._job(row[_RUNS : _RUNS + _JOBS])
                rest = row[_RUNS + _JOBS :]
                cls = Classification(*rest) if rest[0] is not None else None
                yield StoredJob(run, job, cls)

    # ------------------------------------------------------------------ emitted points

    def emitted(self, job_ids: Iterable[int]) -> dict[int, Emitted]:
        """What was last written for each job."""
        rows = self._by_ids(
            "SELECT job_id, measurement, time_ns, flaky, key FROM emitted "
            "WHERE job_id IN ({marks})",
            job_ids,
        )
        return {
            row[0]: Emitted(
                PointKey.from_json(row[4]) if row[4] else None, row[1], row[2], bool(row[3])
            )
            for row in rows
        }

    def note_emitted(self, records: Iterable[JobRecord]) -> None:
        self._write(
            "INSERT OR REPLACE INTO emitted VALUES (?,?,?,?,?)",
            [
                (
                    r.job_id,
                    r.measurement,
                    r.time_ns,
                    int(r.tags.get("flaky") == "true"),
                    r.key.to_json(),
                )
                for r in records
            ],
        )

    def signature_texts(self) -> dict[str, str]:
        """Every signature's normalised text."""
        return dict(self.db.execute("SELECT hash, text FROM signatures").fetchall())

    def repositories(self) -> list[str]:
        """Repositories with stored runs from this store's GitHub (runs stored before the
        GitHub was recorded count for every GitHub)."""
        rows = self.db.execute(
            "SELECT DISTINCT repository FROM runs WHERE github IN (?, '') ORDER BY repository",
            (self.github,),
        )
        return [row[0] for row in rows]

    # ------------------------------------------------------------------ coverage

    def add_coverage(self, repository: str, since: datetime, until: datetime) -> None:
        self._write(
            "INSERT INTO coverage VALUES (?,?,?,?)",
            [(repository, _ts(since), _ts(until), time.time())],
        )

    def covers(self, repository: str, since: datetime, until: datetime) -> bool:
        """True when gathered windows of the repository, joined, span [since, until]."""
        rows = self.db.execute(
            "SELECT since, until FROM coverage WHERE repository = ? COLLATE NOCASE ORDER BY since",
            (repository,),
        ).fetchall()
        reach = _ts(since) or ""
        goal = _ts(until) or ""
        for start, end in rows:
            if start > reach:
                # a gap: tolerate one second, windows are inclusive
                start_dt, reach_dt = _dt(start), _dt(reach)
                if start_dt is None or reach_dt is None:
                    return False
                if (start_dt - reach_dt).total_seconds() > 1:
                    return False
            if end > reach:
                reach = end
            if reach >= goal:
                return True
        return reach >= goal

    # ------------------------------------------------------------------ page cache

    def get_page(self, key: str) -> tuple[str, Any] | None:
        row = self.db.execute("SELECT etag, data FROM pages WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return row[0], json.loads(row[1])

    def put_page(self, key: str, etag: str, data: Any) -> None:
        self._write(
            "INSERT OR REPLACE INTO pages VALUES (?,?,?,?)",
            [(key, etag, json.dumps(data), time.time())],
        )

    # ------------------------------------------------------------------ webhooks (serve)

    def _transaction(self) -> _Transaction:
        return _Transaction(self)

    def has_delivery(self, delivery: str) -> bool:
        """Whether a webhook delivery (`X-GitHub-Delivery`) was taken already."""
        row = self.db.execute("SELECT 1 FROM deliveries WHERE id = ?", (delivery,)).fetchone()
        return row is not None

    def _take_delivery(self, delivery: str) -> bool:
        """Inside a transaction: remember the delivery; False when it was taken before."""
        try:
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO deliveries VALUES (?, ?)", (delivery, time.time())
            )
        except sqlite3.Error as exc:
            raise _cannot_write(self.path, exc) from None
        return cursor.rowcount == 1

    def take_delivery(self, delivery: str) -> bool:
        """Remember a delivery that changes nothing; False when it was taken before."""
        with self._transaction() as tx:
            return tx.commit_unless(not self._take_delivery(delivery))

    def forget_deliveries(self, before: float) -> int:
        """Drop delivery ids received before `before` (epoch seconds): GitHub redelivers
        only recent deliveries, so older ids cannot come back."""
        try:
            cursor = self.db.execute("DELETE FROM deliveries WHERE received_at < ?", (before,))
        except sqlite3.Error as exc:
            raise _cannot_write(self.path, exc) from None
        return cursor.rowcount

    def take_job(self, delivery: str, repository: str, job: Job, *, pending: str | None) -> bool:
        """A completed job from a webhook, in one transaction with its delivery id: the
        job row, a provisional row for its run when the run is not stored yet (replaced
        by the run itself when it completes; never counted as gathered), and a pending
        row when its log is still to be read (`pending` says why). False, and nothing
        written, when the delivery was taken before."""
        provisional = Run(
            id=job.run_id,
            repository=repository,
            workflow=job.workflow,
            workflow_path="",
            run_attempt=job.run_attempt,
            branch=job.branch,
            commit_sha=job.commit_sha,
            event="",
            status="",
            conclusion=None,
            created_at=job.created_at,
            updated_at=None,
            html_url="",
        )
        with self._transaction() as tx:
            if not self._take_delivery(delivery):
                return tx.commit_unless(True)
            self._write(
                f"INSERT INTO runs ({RUN_COLUMNS}, jobs_complete, github) "
                f"VALUES ({_marks(_RUNS + 2)}) ON CONFLICT(id) DO NOTHING",
                [_run_values(provisional, False, self.github)],
            )
            self._write(_REPLACE_JOB, [_job_values(job.run_id, job)])
            if pending is not None:
                self._write(
                    "INSERT OR REPLACE INTO pending VALUES (?,?,?,?)",
                    [(job.id, job.run_id, pending, time.time())],
                )
            return True

    def take_run(self, delivery: str, run: Run, *, complete: bool) -> bool:
        """A completed run from a webhook, in one transaction with its delivery id. Its
        jobs are the ones stored from their own webhooks; `complete` says they are all
        of them (a later gather then takes the run from the store). False, and nothing
        written, when the delivery was taken before."""
        with self._transaction() as tx:
            if not self._take_delivery(delivery):
                return tx.commit_unless(True)
            # a gather that already took this very attempt keeps it as gathered
            self._write(
                _UPSERT_RUN.replace(
                    "jobs_complete=excluded.jobs_complete",
                    "jobs_complete=CASE WHEN runs.run_attempt = excluded.run_attempt "
                    "AND runs.updated_at IS excluded.updated_at "
                    "THEN max(runs.jobs_complete, excluded.jobs_complete) "
                    "ELSE excluded.jobs_complete END",
                ),
                [_run_values(run, complete, self.github)],
            )
            return True

    def run_of(self, run_id: int) -> Run | None:
        row = self.db.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return self._run(row) if row is not None else None

    def run_completion(self, run_id: int) -> tuple[bool, bool] | None:
        """(the run itself is stored as completed, its jobs are marked complete)."""
        row = self.db.execute(
            "SELECT status, jobs_complete FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        return None if row is None else (row[0] == "completed", bool(row[1]))

    def mark_jobs_complete(self, run_id: int) -> None:
        self._write("UPDATE runs SET jobs_complete = 1 WHERE id = ?", [(run_id,)])

    def attempts_of(self, run_id: int, name: str) -> list[Job]:
        """Every stored attempt of one job of a run (what makes a failure flaky)."""
        cursor = self.db.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE run_id = ? AND name = ? ORDER BY rowid",
            (run_id, name),
        )
        return [self._job(row) for row in cursor]

    def classifications_for(self, job_ids: Iterable[int]) -> dict[int, Classification]:
        rows = self._by_ids(
            f"SELECT job_id, {CLASSIFICATION_COLUMNS} FROM classifications "
            "WHERE job_id IN ({marks})",
            job_ids,
        )
        return {row[0]: Classification(*row[1:]) for row in rows}

    def pending_of(self, job_ids: Iterable[int]) -> set[int]:
        rows = self._by_ids("SELECT job_id FROM pending WHERE job_id IN ({marks})", job_ids)
        return {row[0] for row in rows}

    def pending_queue(self) -> list[tuple[int, int]]:
        """(job id, run id) of every job of this store's GitHub whose log is still to be
        read, oldest first."""
        rows = self.db.execute(
            "SELECT p.job_id, p.run_id FROM pending p JOIN runs r ON r.id = p.run_id "
            "WHERE r.github IN (?, '') ORDER BY p.since, p.job_id",
            (self.github,),
        )
        return [(row[0], row[1]) for row in rows]

    def job_of(self, job_id: int) -> Job | None:
        row = self.db.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._job(row) if row is not None else None

    def settle(self, classifications: Mapping[int, Classification]) -> None:
        """Classified jobs: keep their classification and take them off the pending list."""
        with self._transaction():
            self._classify(classifications)
            self._write("DELETE FROM pending WHERE job_id = ?", [(i,) for i in classifications])

    def drop_pending(self, job_id: int) -> None:
        self._write("DELETE FROM pending WHERE job_id = ?", [(job_id,)])

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._write("INSERT OR REPLACE INTO meta VALUES (?, ?)", [(key, value)])


class _Transaction:
    """BEGIN ... COMMIT, rolled back on any exception (or on `commit_unless(True)`)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._rollback = False

    def commit_unless(self, rollback: bool) -> bool:
        self._rollback = rollback
        return not rollback

    def __enter__(self) -> _Transaction:
        try:
            self.store.db.execute("BEGIN")
        except sqlite3.Error as exc:
            raise _cannot_write(self.store.path, exc) from None
        return self

    def __exit__(self, exc_type: object, *_rest: object) -> None:
        db = self.store.db
        if exc_type is not None or self._rollback:
            self._roll_back()
            return
        try:
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._roll_back()
            raise _cannot_write(self.store.path, exc) from None

    def _roll_back(self) -> None:
        # a ROLLBACK that fails too (a vanished disk) must not hide the first error
        if self.store.db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.store.db.execute("ROLLBACK")
