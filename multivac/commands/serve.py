"""`multivac serve`: the webhook receiver on uvicorn, from a plan.

The listening socket, the store, the output and the rules are opened before uvicorn
starts, so a port in use, a bad setting or an unreachable output is one sentence and
an exit code, never a traceback. SIGTERM and Ctrl-C stop it the way uvicorn stops:
no new connections, requests in flight answered; then the worker is stopped (its
queue is in the store), the last records are written and the output is closed, and
the command exits 0.
"""

from __future__ import annotations

import logging
import signal
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console

from multivac.config import ServePlan, redact
from multivac.errors import MultivacError, os_reason
from multivac.serve.app import Service

GRACE_S = 25  # how long requests in flight may take to finish after SIGTERM


class ServeError(MultivacError):
    """serve cannot listen or start."""


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it every answer waits out Nagle's algorithm (40 ms)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {os_reason(exc)}.") from None
    sock.setblocking(False)
    return sock


@contextmanager
def _signals_recorded(received: list[int]) -> Iterator[None]:
    """SIGTERM and SIGINT are recorded, not raised, while serve runs: uvicorn handles
    them once it runs (and raises them again when it stopped: for serve that is the
    normal end, not an interruption); one that came before is passed on to uvicorn as
    soon as it listens (`Service.on_start`)."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda signum, _frame: received.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(plan: ServePlan, console: Console, *, loop: str = "auto", http: str = "auto") -> None:
    """Run until SIGTERM or Ctrl-C. `loop` and `http` choose uvicorn's event loop and
    HTTP parser (`auto`: uvloop and httptools when installed; the benchmark compares)."""

    def log(message: str) -> None:
        console.print(redact(message), markup=False)

    catalog = None
    if plan.fetch_logs:
        from multivac.classify import load_catalog

        catalog = load_catalog(plan.rules)
    if plan.secret is None:
        log(
            "warning: --insecure-no-signature: deliveries are NOT checked; anyone who can "
            "reach this port can write records. Use it only for a local trial."
        )
    received: list[int] = []
    with _signals_recorded(received):
        sock = _listen(plan.host, plan.port)
        service = Service(plan, catalog, log)
        try:
            service.open()
        except BaseException:
            sock.close()
            raise
        try:
            _run(service, sock, plan, log, received, loop=loop, http=http)
        finally:
            sock.close()
            service.close()
            log("serve: stopped.")


def _run(
    service: Service,
    sock: socket.socket,
    plan: ServePlan,
    log: Callable[[str], None],
    received: list[int],
    *,
    loop: str,
    http: str,
) -> None:
    import uvicorn

    config = uvicorn.Config(
        service.app(),
        loop=loop,
        http=http,
        lifespan="on",
        access_log=False,
        log_config=None,
        log_level=logging.WARNING,
        server_header=False,
        timeout_graceful_shutdown=GRACE_S,
    )
    server = uvicorn.Server(config)

    def on_start() -> None:
        if received:  # a signal came before uvicorn took over: stop at once
            server.handle_exit(received[0], None)

    service.on_start = on_start
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    log(
        f"serve: listening on http://{shown}:{port} (POST /webhook, GET /metrics, "
        f"GET /healthz); records to {_where(plan)}."
    )
    server.run(sockets=[sock])


def _where(plan: ServePlan) -> str:
    if plan.targets:
        return ", ".join(f"InfluxDB at {t.url}, bucket {t.bucket}" for t in plan.targets)
    return f"{plan.output_format.value} on {plan.output or 'stdout'}"
