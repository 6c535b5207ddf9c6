"""Framework-free HTTP for the functions-framework targets: calls, replies, errors, routing.

functions-framework sends every path and method to one function, so each service routes
on the path and method itself. This module holds what both targets (predictions and
drift) share: the :class:`Call` a web adapter builds from its request, the :class:`Reply`
it turns back into a response, :class:`ApiError` for everything a client can get wrong,
and :class:`HttpService`, which dispatches, turns errors into JSON, and counts every
request. Nothing here imports a web framework (see ``api/asgi.py`` for the adapter).
"""

from __future__ import annotations

import functools
import logging
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING, Any

import orjson

from titanic_mlops.monitoring import metrics

if TYPE_CHECKING:
    from titanic_mlops.monitoring.exporter import MetricsExporter
    from titanic_mlops.settings import ServeSettings

log = logging.getLogger(__name__)

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
JSON = "application/json"
ASSETS = resources.files("titanic_mlops.api") / "assets"
ASSET_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, before any framework sees it."""

    status: int
    body: bytes
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(body: Any, status: int = 200) -> Reply:
    """A JSON document as a :class:`Reply` (orjson: the answer is on every request's path)."""
    return Reply(status, orjson.dumps(body), JSON)


class ApiError(Exception):
    """A client error: HTTP status, machine code, and (for input errors) field and rule."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        rule: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.rule = rule
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error = {"code": self.code, "message": self.message}
        if self.field is not None:
            error.update(field=self.field, rule=self.rule)
        return {"error": error}


def invalid(field: str, rule: str) -> ApiError:
    """A 400 naming the field and the rule it breaks."""
    return ApiError(400, "invalid_input", f"{field}: {rule}", field, rule)


def too_large(limit: int) -> ApiError:
    """The 413 for a body over ``limit`` bytes."""
    rule = f"must be at most {limit} bytes"
    return ApiError(413, "body_too_large", f"body: at most {limit} bytes", "body", rule)


# Reads the request body, at most ``limit`` bytes; raises ApiError (413, or 400 when cut
# short) instead of reading more.
BodyReader = Callable[[int], Awaitable[bytes]]


async def _no_body(limit: int) -> bytes:
    return b""


@dataclass(frozen=True)
class Call:
    """One request as a service sees it: no framework objects, the body read on demand."""

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    read_body: BodyReader = _no_body
    request_id: str = ""


Handler = Callable[[Call], Awaitable[Reply]]


def new_request_id() -> str:
    """128 random bits as hex, without a getrandom() syscall per request (uuid4: ~9 µs).

    The random module reseeds itself in forked workers.
    """
    return f"{random.getrandbits(128):032x}"


def constant(reply: Reply) -> Handler:
    """A handler that always answers ``reply`` (built once, at start-up)."""

    async def handler(call: Call) -> Reply:
        return reply

    return handler


def static(path: Traversable) -> Handler:
    """A handler answering with one file shipped in the package (read once, at start-up)."""
    suffix = path.name[path.name.rfind(".") :] if "." in path.name else ""
    return constant(
        Reply(200, path.read_bytes(), ASSET_TYPES.get(suffix, "application/octet-stream"))
    )


def asset_routes() -> dict[str, dict[str, Handler]]:
    """``/assets/<name>`` for every file of the web page."""
    return {
        f"/assets/{asset.name}": {"GET": static(asset)}
        for asset in ASSETS.iterdir()
        if asset.is_file()
    }


@dataclass(frozen=True)
class _RequestMetrics:
    count: Any
    latency: Any

    def observe(self, seconds: float) -> None:
        self.count.inc()
        self.latency.observe(seconds)


@functools.lru_cache(maxsize=256)
def request_metrics(route: str, method: str, status: int) -> _RequestMetrics:
    """The labelled metric children of one (route, method, status): looked up once."""
    return _RequestMetrics(
        metrics.REQUESTS.labels(route, method, str(status)), metrics.REQUEST_LATENCY.labels(route)
    )


class HttpService:
    """Routing, error replies and request metrics; subclasses fill :attr:`routes`.

    With an :attr:`exporter`, every request may start a due metrics export (in the
    background): Cloud Run gives an instance CPU only while it serves requests.
    """

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.started = time.monotonic()
        # one id per instance: exported series (task_id) and log objects carry it
        self.instance = f"{socket.gethostname()[:24]}-{uuid.uuid4().hex[:8]}"
        self.exporter: MetricsExporter | None = exporter_for(settings, self.instance)
        self.routes: dict[str, dict[str, Handler]] = {}
        if settings.metrics_public:
            self.routes["/metrics"] = {"GET": metrics_reply}

    def uptime(self) -> float:
        """Seconds since this service was built, to the millisecond."""
        return round(time.monotonic() - self.started, 3)

    def route_label(self, path: str) -> str:
        """The bounded ``route`` label of a path: known routes, ``/assets`` or ``other``."""
        if path not in self.routes:
            return "other"
        return "/assets" if path.startswith("/assets/") else path

    async def handle(self, call: Call) -> Reply:
        """Route, answer and count one request. Never raises."""
        start = time.perf_counter()
        path = call.path.rstrip("/") or "/"
        try:
            reply = await self._dispatch(call, path)
        except ApiError as exc:
            reply = json_reply({**exc.body(), "request_id": call.request_id}, exc.status)
            reply.headers.update(exc.headers)  # a fresh reply: safe to fill in
        except Exception:  # a bug, not the client's fault: logged with its traceback
            log.exception("unhandled error in %s %s", call.method, path)
            reply = json_reply(
                {
                    "error": {"code": "internal", "message": "internal error"},
                    "request_id": call.request_id,
                },
                500,
            )
        # Replies may be shared (static files): never mutate one, copy its headers.
        reply = Reply(
            reply.status,
            reply.body,
            reply.content_type,
            {**reply.headers, "X-Request-ID": call.request_id},
        )
        # Labels stay bounded whatever clients send: known routes and methods only.
        method = call.method if call.method in KNOWN_METHODS else "other"
        request_metrics(self.route_label(path), method, reply.status).observe(
            time.perf_counter() - start
        )
        if self.exporter is not None:
            self.exporter.maybe_export()
        return reply

    async def _dispatch(self, call: Call, path: str) -> Reply:
        methods = self.routes.get(path)
        if methods is None:
            raise ApiError(404, "not_found", f"no route {path}")
        handler = methods.get(call.method)
        if handler is None:
            allowed = ", ".join(sorted(methods))
            raise ApiError(
                405,
                "method_not_allowed",
                f"{call.method} not allowed on {path}; use {allowed}",
                headers={"Allow": allowed},
            )
        return await handler(call)


def exporter_for(settings: ServeSettings, instance: str) -> MetricsExporter | None:
    """The metrics exporter of a service, or None when export is off (not even imported:
    it would only lengthen every cold start)."""
    if not settings.metrics_export.active:
        return None
    from titanic_mlops.monitoring.exporter import MetricsExporter

    # series are per instance and worker pid (task_id): nothing overwrites anything
    return MetricsExporter(settings.metrics_export, metrics.REGISTRY, instance)


async def metrics_reply(call: Call) -> Reply:
    """``GET /metrics``: the Prometheus text exposition."""
    body, content_type = metrics.exposition()
    return Reply(200, body, content_type)
