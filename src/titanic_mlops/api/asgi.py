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
from collections.abc import Iterator, Mapping
from types import FrameType
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from titanic_mlops.api.http import Call, HttpService, invalid, new_request_id, too_large


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, at most ``limit`` bytes: 413 beyond it, 400 if it is cut short."""
    declared = _header(request.scope, b"content-length")
    if declared is not None:
        if not declared.isdigit():
            raise invalid("Content-Length", "must be a whole number of bytes")
        if int(declared) > limit:
            raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:  # ASGI messages, as Starlette's Request.stream() reads them
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise invalid("body", "was shorter than its Content-Length")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:  # also bounds bodies sent without a length (chunked)
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _header(scope: Scope, name: bytes) -> str | None:
    """One request header from the raw ASGI scope (no Headers object per request)."""
    for key, value in scope["headers"]:
        if key == name:  # ASGI servers give header names in lower case
            return value.decode("latin-1")
    return None


class ScopeHeaders(Mapping[str, str]):
    """Read-only, case-insensitive view of the request headers, decoded on access."""

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    def __getitem__(self, name: str) -> str:
        value = _header(self._scope, name.lower().encode("latin-1"))
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return (key.decode("latin-1") for key, _ in self._scope["headers"])

    def __len__(self) -> int:
        return len(self._scope["headers"])


class ScopeQuery(Mapping[str, str]):
    """The query string's parameters (last value wins), parsed on first access."""

    def __init__(self, scope: Scope) -> None:
        self._scope = scope
        self._params: dict[str, str] | None = None

    @property
    def params(self) -> dict[str, str]:
        if self._params is None:
            raw = self._scope.get("query_string", b"").decode("latin-1")
            self._params = dict(parse_qsl(raw, keep_blank_values=True))
        return self._params

    def __getitem__(self, name: str) -> str:
        return self.params[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)


async def respond(service: HttpService, request: Request) -> Response:
    """Answer one Starlette request with ``service``."""
    scope = request.scope
    call = Call(
        method=scope["method"],
        path=scope["path"],  # not request.url: that parses the Host header
        query=ScopeQuery(scope),
        headers=ScopeHeaders(scope),
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
    # uvicorn-worker's extension point for uvicorn's Config: the services speak plain HTTP,
    # so no websocket protocol is loaded at each worker's boot (~16 ms of imports), and
    # functions-framework's app has no lifespan handlers to run.
    UvicornWorker.CONFIG_KWARGS = {**UvicornWorker.CONFIG_KWARGS, "ws": "none", "lifespan": "off"}
