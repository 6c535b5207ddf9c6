"""The adapter between functions-framework's ASGI mode (Starlette) and a framework-free service.

    functions-framework --target logreg_classifier --source src/titanic_mlops/api/main.py --asgi

A target is an ``async`` function taking a Starlette ``Request``; :func:`respond` turns it
into a :class:`~titanic_mlops.api.http.Call`, awaits the service and turns the
:class:`~titanic_mlops.api.http.Reply` back into a response. The body is read only when a
handler asks for it, and only up to its limit: a declared or actual body over the limit is
refused with a 413 without the rest being read into memory (uvicorn stops reading the socket
while a request's unread body exceeds its buffer).
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from titanic_mlops.api.http import Call, HttpService, invalid, new_request_id, too_large


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, at most ``limit`` bytes: 413 beyond it, 400 if it is cut short."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise invalid("Content-Length", "must be a whole number of bytes")
        if int(declared) > limit:
            raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:  # also bounds bodies sent without a length (chunked)
                raise too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        raise invalid("body", "was shorter than its Content-Length") from None
    return b"".join(chunks)


async def respond(service: HttpService, request: Request) -> Response:
    """Answer one Starlette request with ``service``."""
    call = Call(
        method=request.method,
        path=request.scope["path"],  # not request.url: that parses the Host header
        query=request.query_params,
        headers=request.headers,
        read_body=lambda limit: read_body(request, limit),
        request_id=new_request_id(),
    )
    reply = await service.handle(call)
    return Response(reply.body, reply.status, reply.headers, media_type=reply.content_type)


def _exit_normally(signum: int, frame: FrameType | None) -> None:
    sys.exit(0)


def keep_graceful_exit() -> None:
    """Let uvicorn workers end with a normal interpreter exit after a graceful shutdown.

    uvicorn-worker resets SIGTERM and SIGINT to their default action, and uvicorn re-raises
    the signal it caught once its graceful shutdown is done: the default action then kills
    the worker before ``atexit`` handlers run, and the prediction log's final flush is lost
    (measured: every record still buffered at SIGTERM). With this, the re-raised signal
    ends the worker with ``SystemExit`` instead: ``atexit`` runs, the exit code is 0.
    Called in the master when the target module is imported, before gunicorn forks.
    """
    from uvicorn_worker import UvicornWorker

    original = UvicornWorker.init_signals
    if getattr(original, "keeps_graceful_exit", False):
        return

    def init_signals(self: UvicornWorker) -> None:
        original(self)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _exit_normally)

    init_signals.keeps_graceful_exit = True  # type: ignore[attr-defined]
    UvicornWorker.init_signals = init_signals  # type: ignore[method-assign]
