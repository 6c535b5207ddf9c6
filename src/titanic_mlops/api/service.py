"""The prediction service behind the functions-framework target ``logreg_classifier``.

functions-framework sends every path and method to one function, so routing happens here
on ``request.path`` and ``request.method``. Nothing a client sends can produce a 5xx: bad
input is a 400 naming the field and the rule, oversize is a 413, other methods a 405,
unknown paths a 404, and a missing model a 503. The serving path imports neither torch
nor evidently.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Generic, TypeVar

from flask import Request, Response
from werkzeug.exceptions import ClientDisconnected

from titanic_mlops import schema
from titanic_mlops.api import openapi
from titanic_mlops.bundle import Bundle
from titanic_mlops.monitoring import metrics
from titanic_mlops.prediction_log import PredictionLog
from titanic_mlops.predictor import Predictor
from titanic_mlops.registry import Registry
from titanic_mlops.settings import ServeSettings
from titanic_mlops.storage import Storage, open_storage

log = logging.getLogger(__name__)

# Not /static: Flask (inside functions-framework) reserves that path for its own folder.
ASSETS = resources.files("titanic_mlops.api") / "assets"
ASSET_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


PREDICTED = {label: metrics.PREDICTIONS.labels(str(label)) for label in (0, 1)}
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


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
    return ApiError(400, "invalid_input", f"{field}: {rule}", field, rule)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body: bytes) -> Any:
    """Strict JSON (no NaN/Infinity), or a 400 naming the body."""
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise invalid("body", f"must be valid JSON ({str(exc)[:120]})") from None


def instances_of(payload: Any, max_instances: int) -> tuple[list[Any], bool]:
    """The instances a body carries, and whether they came as a batch (``instances``)."""
    if isinstance(payload, dict) and "instances" in payload:
        extra = sorted(set(payload) - {"instances"})
        if extra:
            raise invalid(extra[0], "is not allowed next to 'instances'")
        items = payload["instances"]
        if not isinstance(items, list):
            raise invalid("instances", "must be an array of instances")
        if not items:
            raise invalid("instances", "must contain at least 1 instance")
        if len(items) > max_instances:
            raise ApiError(
                413,
                "too_many_instances",
                f"instances: at most {max_instances} per request, got {len(items)}",
                "instances",
                f"must contain at most {max_instances} instances",
            )
        return items, True
    if isinstance(payload, dict | list):
        return [payload], False
    raise invalid("body", "must be an object, {'instances': [...]}, or a positional array")


def to_record(item: Any, index: int | None) -> dict[str, Any]:
    """Validate one instance (named object or legacy positional array) against the schema."""
    where = f"instances[{index}]" if index is not None else "body"
    if isinstance(item, list):
        if len(item) != len(schema.FEATURES):
            raise invalid(
                where,
                f"a positional instance must have {len(schema.FEATURES)} "
                f"values: [{', '.join(schema.FEATURES)}]",
            )
        item = dict(zip(schema.FEATURES, item, strict=True))
    elif not isinstance(item, dict):
        raise invalid(where, "must be an object with the passenger's features")
    try:
        return schema.check_record(item, index)
    except schema.SchemaError as exc:
        field = f"instances[{index}].{exc.field}" if index is not None else exc.field
        raise invalid(field, exc.rule) from None


@functools.lru_cache(maxsize=256)
def request_metrics(route: str, method: str, status: int) -> _RequestMetrics:
    """The labelled metric children of one (route, method, status): looked up once."""
    return _RequestMetrics(
        metrics.REQUESTS.labels(route, method, str(status)), metrics.REQUEST_LATENCY.labels(route)
    )


@dataclass(frozen=True)
class _RequestMetrics:
    count: Any
    latency: Any

    def observe(self, seconds: float) -> None:
        self.count.inc()
        self.latency.observe(seconds)


def _forget_body(request: Request) -> None:
    """Stop anyone reading the rest of a rejected body.

    functions-framework's after-request hook calls ``request.get_data()``, which would
    read a 400 MB body into memory after we answered 413 (or fail again on a truncated
    one). Marking the body as already read makes that a no-op; gunicorn then discards the
    unread bytes as they arrive instead of buffering them.
    """
    request._cached_data = b""  # werkzeug's get_data() cache


def _static(path: Any) -> Callable[[Request, str], Response]:
    """A route handler answering with one file shipped in the package."""
    content_type = ASSET_TYPES.get(os.path.splitext(path.name)[1], "application/octet-stream")

    def handler(request: Request, request_id: str) -> Response:
        return Response(path.read_bytes(), status=200, content_type=content_type)

    return handler


def json_response(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


T = TypeVar("T")


class PerProcess(Generic[T]):
    """A value created lazily, once per process.

    gunicorn imports the target in the master and forks workers: clients holding sockets,
    threads or native runtimes must be created in the process that uses them.
    """

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._values: dict[int, T] = {}
        self._lock = threading.Lock()

    def get(self) -> T:
        pid = os.getpid()
        value = self._values.get(pid)
        if value is None:
            with self._lock:
                value = self._values.get(pid)
                if value is None:
                    value = self._values[pid] = self._factory()
        return value

    def current(self) -> T | None:
        """This process's value if it was created, without creating it."""
        return self._values.get(os.getpid())


@dataclass
class _Model:
    """A verified bundle and, per process, the onnxruntime session running it.

    onnxruntime is never initialised before a fork: gunicorn imports the target in the
    master and forks workers, and a child that inherits onnxruntime's environment aborts
    at exit (it joins threads that only exist in the parent). So the master verifies the
    bundle's hashes, and each process creates its session on first use.
    """

    bundle: Bundle
    version: int
    backend: str = "auto"

    def __post_init__(self) -> None:
        self._sessions = PerProcess(lambda: Predictor(self.bundle, backend=self.backend))

    def predictor(self) -> Predictor:
        return self._sessions.get()


class PredictionService:
    """One per process: the model (loaded once), the prediction log, the routes."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        # Per process: a storage client created before the fork would share its pooled
        # HTTP connections between workers, and their requests would interleave.
        self._storage = PerProcess(lambda: open_storage(settings.storage_uri))
        self._log = PerProcess(
            lambda: PredictionLog(
                self.storage, settings.prediction_log, f"{self.instance}-{os.getpid()}"
            )
        )
        self.started = time.monotonic()
        self.instance = f"{socket.gethostname()[:24]}-{uuid.uuid4().hex[:8]}"
        self._model: _Model | None = None
        self._model_error = "not loaded yet"
        self._next_attempt = 0.0
        self._load_lock = threading.Lock()
        self._spec = json.dumps(openapi.build(settings.max_instances))
        self.routes: dict[str, dict[str, Callable[[Request, str], Response]]] = {
            "/": {"GET": _static(ASSETS / "index.html"), "POST": self.predict},
            "/health": {"GET": self.health},
            "/metrics": {"GET": self.metrics},
            "/openapi.json": {"GET": self.openapi},
        }
        for asset in ASSETS.iterdir():
            if asset.is_file():
                self.routes[f"/assets/{asset.name}"] = {"GET": _static(asset)}
        atexit.register(self.close)
        self.model()  # load at start-up so the first request does not pay for it

    @property
    def storage(self) -> Storage:
        """This process's storage client."""
        return self._storage.get()

    @property
    def registry(self) -> Registry:
        return Registry(self.storage, self.settings.model_name)

    # --- model -----------------------------------------------------------------------
    def model(self) -> _Model | None:
        """The loaded model, retrying (rate-limited) while none could be loaded."""
        if self._model is not None or time.monotonic() < self._next_attempt:
            return self._model
        with self._load_lock:
            if self._model is None and time.monotonic() >= self._next_attempt:
                self._load()
        return self._model

    def _load(self) -> None:
        try:
            version = self.registry.resolve(self.settings.model_alias)
            self._model = _Model(self.registry.load(version), version, self.settings.inference)
        except Exception as exc:  # any failure means "no model": 503 and retry later
            self._model_error = f"{type(exc).__name__}: {exc}"
            self._next_attempt = time.monotonic() + self.settings.model_retry_seconds
            metrics.MODEL_LOAD_FAILURES.inc()
            log.error("no model loadable from %s: %s", self.storage.uri, self._model_error)
            return
        metrics.MODEL_INFO.labels(
            self.settings.model_name, str(version), self.settings.model_alias
        ).set(1)
        log.info(
            "serving %s version %d (%s)",
            self.settings.model_name,
            version,
            self.settings.model_alias,
        )

    def prediction_log(self) -> PredictionLog:
        """This process's prediction log."""
        return self._log.get()

    def close(self) -> None:
        """Flush this process's prediction log (atexit: gunicorn workers exit via sys.exit)."""
        found = self._log.current()
        if found is not None:
            found.close()

    # --- HTTP ------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        """Route, answer, and count one request."""
        start = time.perf_counter()
        # 128 random bits without a getrandom() syscall per request (uuid4 costs ~9 µs);
        # the random module reseeds itself in forked workers.
        request_id = f"{random.getrandbits(128):032x}"
        path = request.path.rstrip("/") or "/"
        if path not in self.routes:
            route = "other"
        else:  # one label for all assets keeps the label set small
            route = "/assets" if path.startswith("/assets/") else path
        try:
            response = self._dispatch(request, path, request_id)
        except ApiError as exc:
            response = json_response({**exc.body(), "request_id": request_id}, exc.status)
            response.headers.update(exc.headers)
        except Exception:  # a bug, not the client's fault: logged with its traceback
            log.exception("unhandled error in %s %s", request.method, path)
            response = json_response(
                {
                    "error": {"code": "internal", "message": "internal error"},
                    "request_id": request_id,
                },
                500,
            )
        response.headers["X-Request-ID"] = request_id
        # Labels stay bounded whatever clients send: known routes and methods only.
        method = request.method if request.method in KNOWN_METHODS else "other"
        request_metrics(route, method, response.status_code).observe(time.perf_counter() - start)
        return response

    def _dispatch(self, request: Request, path: str, request_id: str) -> Response:
        methods = self.routes.get(path)
        if methods is None:
            raise ApiError(404, "not_found", f"no route {path}")
        handler = methods.get(request.method)
        if handler is None:
            allowed = ", ".join(sorted(methods))
            raise ApiError(
                405,
                "method_not_allowed",
                f"{request.method} not allowed on {path}; use {allowed}",
                headers={"Allow": allowed},
            )
        return handler(request, request_id)

    def _body(self, request: Request) -> bytes:
        limit = self.settings.max_body_bytes
        too_large = ApiError(
            413, "body_too_large", f"body: at most {limit} bytes", "body",
            f"must be at most {limit} bytes",
        )  # fmt: skip
        if request.content_length is not None and request.content_length > limit:
            _forget_body(request)
            raise too_large
        try:
            data = request.stream.read(limit + 1)  # also bounds bodies sent without a length
        except ClientDisconnected:
            _forget_body(request)
            raise invalid("body", "was shorter than its Content-Length") from None
        if len(data) > limit:
            _forget_body(request)
            raise too_large
        return data

    def predict(self, request: Request, request_id: str) -> Response:
        start = time.perf_counter()
        model = self.model()
        if model is None:
            raise ApiError(503, "model_unavailable", f"no model loaded: {self._model_error}")
        items, batch = instances_of(parse_json(self._body(request)), self.settings.max_instances)
        records = [to_record(item, i if batch else None) for i, item in enumerate(items)]
        try:
            predictor = model.predictor()
        except Exception as exc:  # a verified bundle whose graph onnxruntime rejects
            log.exception("model version %s cannot run", model.version)
            raise ApiError(503, "model_unavailable", f"model cannot run: {exc}") from None
        t0 = time.perf_counter()
        probabilities = predictor.predict_proba(records).tolist()
        metrics.INFERENCE_LATENCY.observe(time.perf_counter() - t0)
        predictions = [
            {"survived": int(p >= schema.DECISION_THRESHOLD), "probability": p}
            for p in probabilities
        ]
        for p in predictions:
            PREDICTED[p["survived"]].inc()
        if self.settings.prediction_log.enabled:
            now = datetime.now(UTC).isoformat(timespec="microseconds")
            latency_ms = round((time.perf_counter() - start) * 1000, 3)
            self.prediction_log().append(
                [
                    {
                        "request_id": request_id,
                        "index": i,
                        "timestamp": now,
                        "model_version": model.version,
                        "features": items_raw,
                        "prediction": p["survived"],
                        "probability": p["probability"],
                        "latency_ms": latency_ms,
                    }
                    for i, (items_raw, p) in enumerate(zip(records, predictions, strict=True))
                ]
            )
        return json_response(
            {"predictions": predictions, "model_version": model.version, "request_id": request_id}
        )

    def health(self, request: Request, request_id: str) -> Response:
        model = self.model()
        body = {
            "status": "ok" if model else "unavailable",
            "model_name": self.settings.model_name,
            "model_alias": self.settings.model_alias,
            "model_version": model.version if model else None,
            "inference": self._backend(model),
            "uptime_seconds": round(time.monotonic() - self.started, 3),
            "instance": self.instance,
        }
        if model is None:
            body["error"] = self._model_error
        return json_response(body, 200 if model else 503)

    @staticmethod
    def _backend(model: _Model | None) -> str | None:
        if model is None:
            return None
        try:
            return model.predictor().backend
        except Exception as exc:  # reported, not raised: /health must answer
            return f"unavailable: {exc}"

    def metrics(self, request: Request, request_id: str) -> Response:
        body, content_type = metrics.exposition()
        return Response(body, status=200, content_type=content_type)

    def openapi(self, request: Request, request_id: str) -> Response:
        return Response(self._spec, status=200, mimetype="application/json")
