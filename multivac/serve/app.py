"""The ASGI application (Starlette, served by uvicorn): `POST /webhook`, `GET /metrics`,
`GET /healthz`.

A delivery is checked in the order that costs the least for a request that is
refused: the content type, the declared size, the presence of a signature, then the
body is read (never past 25 MB, GitHub's payload cap) while it is hashed, the signature
compared, the JSON parsed. What a delivery changes is written to the store in one
transaction with its `X-GitHub-Delivery` id before it is answered, so a redelivery is
recognised (200, nothing changes) and an accepted delivery survives a crash. Nothing in
the answer waits for GitHub or for the output: records go to the output thread, logs to
be read to the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from multivac.classify import Catalog
from multivac.config import ServePlan, redact
from multivac.errors import StoreError
from multivac.github import job_from_json, run_from_json
from multivac.model import (
    FAILED_CONCLUSIONS,
    JOB_CANCELLED,
    Job,
    Record,
    Run,
)
from multivac.serve.emitter import Emitter
from multivac.serve.live import LiveState, label_of
from multivac.serve.metrics import CONTENT_TYPE, Metrics
from multivac.serve.records import attempt_records, run_records_of
from multivac.serve.signature import HEADER, Signature
from multivac.serve.worker import Worker
from multivac.store import Store

MAX_BODY = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
#: the one content type taken: a webhook must be set to send JSON (GitHub's `form`
#: default for hooks made through the REST API is refused with 415, as the docs say)
JSON = "application/json"
HANDLED_EVENTS = frozenset({"workflow_job", "workflow_run"})
#: conclusions whose cause is read from the log or the annotations (the gather's rule)
NEEDS_READING = FAILED_CONCLUSIONS | {JOB_CANCELLED}
LIVE_KEY = "serve.live"  # the jobs in flight, kept in the store's meta table over a restart
DELIVERY_MEMORY_S = 7 * 86400.0  # GitHub redelivers deliveries of the last few days
TICK_S = 1.0


def _positive_id(value: Any) -> bool:
    """A GitHub id: a positive integer (JSON number or digits)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value > 0
    return isinstance(value, str) and value.isdigit() and int(value) > 0


def _epoch(job: Job, fallback: float) -> tuple[float, float]:
    queued = job.created_at.timestamp() if job.created_at else fallback
    started = job.started_at.timestamp() if job.started_at else fallback
    return queued, started


class Service:
    """Everything serve runs. The store connection, the live state and the handlers
    belong to the event loop's thread; the output and the worker have threads (and
    store connections) of their own."""

    def __init__(
        self, plan: ServePlan, catalog: Catalog | None, log: Callable[[str], None]
    ) -> None:
        self.plan = plan
        self.catalog = catalog
        self.log = log
        self.live = LiveState()
        self.metrics = Metrics(self.live, self._backlog)
        self.emitter = Emitter(plan, self.metrics, log)
        self.worker: Worker | None = None
        if plan.fetch_logs and catalog is not None:
            self.worker = Worker(plan, catalog, self.emitter, self.metrics, log)
        self.store: Store | None = None
        self.listening_since = time.time()
        self._ticker: asyncio.Task[None] | None = None
        #: called once the server runs (uvicorn handles signals from then on)
        self.on_start: Callable[[], None] = lambda: None

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> None:
        """Open the store and the output and start the threads (in the thread that
        will run the event loop); raises a MultivacError when something cannot start."""
        store = Store.open(self.plan.state_dir, github=self.plan.github.api_url)
        try:
            kept = store.get_meta(LIVE_KEY)
            if kept:
                self.live.loads(kept, time.time())
            store.forget_deliveries(time.time() - DELIVERY_MEMORY_S)
            self.emitter.start()
        except BaseException:
            store.close()
            raise
        self.store = store
        if self.worker is not None:
            self.worker.start()
        self.listening_since = time.time()

    def close(self) -> None:
        """After the server stopped taking requests: the last `queue` points, the live
        state kept for the next start, the worker stopped (its queue is in the store),
        every record written and the output closed."""
        store = self.store
        if store is not None:
            self.emitter.submit(list(self.live.due(time.time(), every_s=0.0)))
            with contextlib.suppress(StoreError):
                store.set_meta(LIVE_KEY, self.live.dumps())
        if self.worker is not None and not self.worker.stop():
            self.log("the worker was reading a log; that job stays queued for the next start.")
        self.emitter.stop()
        if store is not None:
            store.close()
            self.store = None

    @asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self._ticker = asyncio.create_task(self._tick())
        self.on_start()
        try:
            yield
        finally:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker

    async def _tick(self) -> None:
        """Every second: due `queue` points; now and then, forget stale things."""
        last_cleanup = time.monotonic()
        while True:
            await asyncio.sleep(TICK_S)
            now = time.time()
            records = list(self.live.due(now))
            if records:
                self.emitter.submit(records)
            if time.monotonic() - last_cleanup > 3600 and self.store is not None:
                last_cleanup = time.monotonic()
                self.live.expire(now)
                with contextlib.suppress(StoreError):
                    self.store.forget_deliveries(now - DELIVERY_MEMORY_S)

    def _backlog(self) -> int:
        return self.worker.backlog if self.worker is not None else 0

    # ------------------------------------------------------------------ requests

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/webhook", self.webhook, methods=["POST"]),
                Route("/metrics", self.prometheus, methods=["GET"]),
                Route("/healthz", self.healthz, methods=["GET"]),
            ],
            lifespan=self.lifespan,
        )

    def _refuse(self, status: int, reason: str, message: str, *, close: bool = False) -> Response:
        """A refused request: counted by reason; `close` when its body was not read, so
        that the connection is not kept to read the rest."""
        self.metrics.rejected.labels(reason).inc()
        headers = {"connection": "close"} if close else None
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    async def webhook(self, request: Request) -> Response:
        headers = request.headers
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != JSON:
            return self._refuse(
                415,
                "content_type",
                "the body must be JSON (set the webhook's content type to application/json)",
                close=True,
            )
        declared = headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > MAX_BODY:
            return self._refuse(413, "too_large", "the body is over 25 MB", close=True)
        signature = Signature(self.plan.secret) if self.plan.secret is not None else None
        given = headers.get(HEADER)
        if signature is not None and not given:
            return self._refuse(401, "signature_missing", f"no {HEADER} header", close=True)
        body = bytearray()
        try:
            async for chunk in request.stream():
                if len(body) + len(chunk) > MAX_BODY:
                    return self._refuse(413, "too_large", "the body is over 25 MB", close=True)
                body += chunk
                if signature is not None:
                    signature.update(chunk)
        except ClientDisconnect:
            self.metrics.rejected.labels("disconnected").inc()
            return Response(status_code=400)
        if signature is not None and not signature.matches(given):
            return self._refuse(401, "signature_invalid", "the signature does not match")
        event = headers.get("x-github-event", "")
        if not event:
            return self._refuse(400, "no_event", "no X-GitHub-Event header")
        if event == "ping":
            self.metrics.accepted.labels("ping").inc()
            return JSONResponse({"ok": "pong"})
        if event not in HANDLED_EVENTS:
            self.metrics.ignore(event)
            return JSONResponse({"ignored": f"event {event[:64]}"}, status_code=202)
        delivery = headers.get("x-github-delivery", "").strip()
        if not delivery or len(delivery) > 200:
            return self._refuse(400, "no_delivery", "no X-GitHub-Delivery header")
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: arrays nested 100,000 deep
            return self._refuse(400, "malformed_json", "the body is not valid JSON")
        if not isinstance(payload, dict):
            return self._refuse(400, "malformed_json", "the body is not a JSON object")
        try:
            return self._take(event, delivery, payload)
        except StoreError as exc:
            # not taken: GitHub shows the failure and the delivery can be sent again
            self.log(f"error: {redact(str(exc))}")
            self.metrics.rejected.labels("store").inc()
            return JSONResponse({"error": "the local store cannot be written"}, status_code=503)

    def _take(self, event: str, delivery: str, payload: dict[str, Any]) -> Response:
        repository = payload.get("repository")
        repo = repository.get("full_name") if isinstance(repository, dict) else None
        action = payload.get("action")
        subject = payload.get(event)
        if not isinstance(repo, str) or not repo or not isinstance(subject, dict):
            return self._refuse(
                400, "malformed_payload", f"not a {event} payload (no repository or {event})"
            )
        # without its ids a job or run would be stored as id 0, mixed with every other
        required = ("id", "run_id") if event == "workflow_job" else ("id",)
        missing = [key for key in required if not _positive_id(subject.get(key))]
        if missing:
            return self._refuse(
                400, "malformed_payload", f"not a {event} payload (no {' or '.join(missing)})"
            )
        if event == "workflow_job":
            taken = self._job(delivery, repo, str(action), subject)
        else:
            taken = self._run(delivery, repo, str(action), subject)
        if taken is None:
            self.metrics.ignore(f"{event}.{action}")
            return JSONResponse({"ignored": f"{event} {action}"}, status_code=202)
        if not taken:
            self.metrics.duplicates.inc()
            return JSONResponse({"duplicate": delivery})
        self.metrics.accepted.labels(event).inc()
        return JSONResponse({"accepted": delivery}, status_code=202)

    # ------------------------------------------------------------------ events

    def _job(self, delivery: str, repo: str, action: str, data: dict[str, Any]) -> bool | None:
        """A workflow_job delivery: True when taken, False when seen before, None when
        its action is none of queued, waiting, in_progress, completed."""
        store = self.store
        assert store is not None
        job = job_from_json(data)
        now = time.time()
        if action in ("queued", "waiting", "in_progress"):
            if not store.take_delivery(delivery):
                return False
            label = label_of(job.labels)
            queued_at, started_at = _epoch(job, now)
            if action == "waiting" or (action == "queued" and job.status == "waiting"):
                # an environment's reviewers hold it: it waits for them, not for a runner
                # (GitHub sends `queued` again once it is approved)
                self.live.waiting(job.id)
            elif action == "queued":
                self.live.queued(job.id, job.run_id, label, queued_at, now)
            else:
                self.live.started(job.id, job.run_id, label, queued_at, started_at)
            return True
        if action != "completed":
            return None
        reading = self.worker is not None and job.conclusion in NEEDS_READING
        why = "serve: log to be read" if reading else None
        if not store.take_job(delivery, repo, job, pending=why):
            return False
        self.live.finished(job.id)
        if reading and self.worker is not None:
            self.worker.wake()
        else:
            self.emitter.submit(self._records(job.run_id, job.name, steps_of=(job.id,)))
        self._complete_if_whole(job.run_id)
        return True

    def _records(self, run_id: int, name: str, *, steps_of: Sequence[int] = ()) -> list[Record]:
        """The records of every stored attempt of one job of a run not waiting for its
        log (a later attempt can make an earlier failure flaky: a new point for it), and
        the steps of the attempts `steps_of`."""
        store = self.store
        assert store is not None
        run = store.run_of(run_id)
        if run is None:
            return []
        attempts = store.attempts_of(run_id, name)
        ids = [attempt.id for attempt in attempts]
        return attempt_records(
            self.plan,
            run,
            attempts,
            store.classifications_for(ids),
            waiting=store.pending_of(ids),
            steps_of=steps_of,
        )

    def _whole(self, run_id: int, created: float | None) -> bool:
        """Whether serve saw every job of a run: the run began after serve started
        listening (no delivery of it was missed while down), and none of its jobs is
        still in flight."""
        return (
            created is not None
            and created >= self.listening_since
            and not (self.live.in_flight(run_id))
        )

    def _complete_if_whole(self, run_id: int) -> None:
        """A job completed after its run did (deliveries come in any order): once the
        last one is in, the run counts as gathered."""
        store = self.store
        assert store is not None
        state = store.run_completion(run_id)
        if state is None or not state[0] or state[1]:
            return
        run = store.run_of(run_id)
        created = run.created_at.timestamp() if run and run.created_at else None
        if self._whole(run_id, created):
            store.mark_jobs_complete(run_id)
            if run is not None:
                self.emitter.submit(run_records_of(self.plan, store, run))

    def _run(self, delivery: str, repo: str, action: str, data: dict[str, Any]) -> bool | None:
        """A workflow_run delivery: `completed` stores the run; its jobs are the ones
        their own deliveries stored, and when those are all of them the run counts as
        gathered (a gather of its window takes it from the store)."""
        store = self.store
        assert store is not None
        if action != "completed":
            return None
        run = run_from_json(repo, data)
        created = run.created_at.timestamp() if run.created_at else None
        whole = self._whole(run.id, created)
        unnamed = self._unnamed_jobs(run)
        if not store.take_run(delivery, run, complete=whole):
            return False
        for name in unnamed:  # their points again, under the workflow's name
            self.emitter.submit(self._records(run.id, name))
        if whole:  # else a gather of the window writes them, with every job
            self.emitter.submit(run_records_of(self.plan, store, run))
        return True

    def _unnamed_jobs(self, run: Run) -> list[str]:
        """Jobs written before their run was stored, from deliveries without a
        `workflow_name` (GitHub Enterprise Server before it had the field): their points
        lack the workflow tag that a gather gives them from the run."""
        store = self.store
        assert store is not None
        before = store.run_of(run.id)
        if not run.workflow or before is None or before.workflow:
            return []
        return sorted({job.name for job in store.jobs_of(run.id) if not job.workflow})

    # ------------------------------------------------------------------ reading

    async def prometheus(self, _request: Request) -> Response:
        return Response(self.metrics.render(), media_type=CONTENT_TYPE)

    async def healthz(self, _request: Request) -> Response:
        store_ok, store_text = True, "ok"
        try:
            assert self.store is not None
            self.store.db.execute("SELECT count(*) FROM meta").fetchone()
        except Exception as exc:
            store_ok, store_text = False, redact(f"{type(exc).__name__}: {exc}")
        sink_ok, sink_text = await run_in_threadpool(self.emitter.reachable)
        body = {
            "ok": store_ok and sink_ok,
            "store": {"ok": store_ok, "detail": store_text},
            "output": {"ok": sink_ok, "detail": redact(sink_text)},
            "worker_backlog": self._backlog(),
            "jobs_in_flight": len(self.live),
        }
        return JSONResponse(body, status_code=200 if body["ok"] else 503)
