"""The prediction service behind the functions-framework target ``logreg_classifier``.

Framework-free: it answers :class:`~titanic_mlops.api.http.Call` objects with
:class:`~titanic_mlops.api.http.Reply` objects (``api/asgi.py`` adapts them to
functions-framework's ASGI mode). Nothing a client sends can produce a 5xx: bad input is a
400 naming the field and the rule, oversize is a 413, other methods a 405, unknown paths a
404, and a missing model a 503. The request path does no blocking I/O: the model is loaded
at start-up (a retry while none is loadable runs in a worker thread), the prediction log is
written by its own thread. The serving path imports neither torch nor evidently.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from titanic_mlops import predictions, schema
from titanic_mlops.api import openapi
from titanic_mlops.api.http import (
    ASSETS,
    ApiError,
    Call,
    HttpService,
    Reply,
    asset_routes,
    constant,
    json_reply,
    static,
)
from titanic_mlops.api.instances import instances_of, parse_json, to_record
from titanic_mlops.bundle import Bundle
from titanic_mlops.monitoring import metrics
from titanic_mlops.per_process import PerProcess
from titanic_mlops.prediction_log import PredictionLog
from titanic_mlops.predictor import Predictor
from titanic_mlops.registry import Registry
from titanic_mlops.settings import ServeSettings
from titanic_mlops.storage import Storage, open_storage

log = logging.getLogger(__name__)

PREDICTED = {label: metrics.PREDICTIONS.labels(str(label)) for label in (0, 1)}


@dataclass
class _Model:
    """A verified bundle and, per process, the predictor running it.

    onnxruntime is never initialised before a fork: gunicorn imports the target in the
    master and forks workers, and a child that inherits onnxruntime's environment aborts
    at exit (it joins threads that only exist in the parent). So the master verifies the
    bundle's hashes, and each process builds its predictor on first use (without
    onnxruntime when the bundle seals a linear form).
    """

    bundle: Bundle
    version: int
    backend: str = "auto"

    def __post_init__(self) -> None:
        self._sessions = PerProcess(lambda: Predictor(self.bundle, backend=self.backend))

    def predictor(self) -> Predictor:
        return self._sessions.get()


class PredictionService(HttpService):
    """One per instance: the model (loaded once), the prediction log, the routes."""

    def __init__(self, settings: ServeSettings) -> None:
        super().__init__(settings)
        # Per process: a storage client created before the fork would share its pooled
        # HTTP connections between workers, and their requests would interleave.
        self._storage = PerProcess(lambda: open_storage(settings.storage_uri))
        self._log = PerProcess(
            lambda: PredictionLog(
                self.storage, settings.prediction_log, f"{self.instance}-{os.getpid()}"
            )
        )
        self._model: _Model | None = None
        self._model_error = "not loaded yet"
        self._next_attempt = 0.0
        self._load_lock = threading.Lock()
        self.routes.update(
            {
                "/": {"GET": static(ASSETS / "index.html"), "POST": self.predict},
                "/health": {"GET": self.health},
                "/openapi.json": {
                    "GET": constant(json_reply(openapi.build(settings.max_instances)))
                },
                **asset_routes(),
            }
        )
        atexit.register(self.close)
        self.model()  # load at start-up so that no request pays for it

    @property
    def storage(self) -> Storage:
        """This process's storage client."""
        return self._storage.get()

    @property
    def registry(self) -> Registry:
        return Registry(self.storage, self.settings.model_name)

    # --- model -----------------------------------------------------------------------
    def _load_due(self) -> bool:
        return self._model is None and time.monotonic() >= self._next_attempt

    def model(self) -> _Model | None:
        """The loaded model, retrying (rate-limited) while none could be loaded. Blocking."""
        if self._load_due():
            with self._load_lock:
                if self._load_due():
                    self._load()
        return self._model

    async def current_model(self) -> _Model | None:
        """:meth:`model` for the event loop: a due retry reads storage in a worker thread."""
        if self._load_due():
            return await asyncio.to_thread(self.model)
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
        """Flush this process's prediction log, then push its metrics a last time.

        Runs at exit (workers end in sys.exit on SIGTERM, see ``api/asgi.py``).
        """
        found = self._log.current()
        if found is not None:
            found.close()
        if self.exporter is not None:
            self.exporter.close()

    # --- routes ----------------------------------------------------------------------
    async def predict(self, call: Call) -> Reply:
        start = time.perf_counter()
        model = await self.current_model()
        if model is None:
            raise ApiError(503, "model_unavailable", f"no model loaded: {self._model_error}")
        body = await call.read_body(self.settings.max_body_bytes)
        items, batch = instances_of(parse_json(body), self.settings.max_instances)
        records = [to_record(item, i if batch else None) for i, item in enumerate(items)]
        try:
            predictor = model.predictor()
        except Exception as exc:  # a verified bundle whose graph onnxruntime rejects
            log.exception("model version %s cannot run", model.version)
            raise ApiError(503, "model_unavailable", f"model cannot run: {exc}") from None
        t0 = time.perf_counter()
        probabilities = predictor.probabilities(records)
        metrics.INFERENCE_LATENCY.observe(time.perf_counter() - t0)
        classes = [int(p >= schema.DECISION_THRESHOLD) for p in probabilities]
        for c in classes:
            PREDICTED[c].inc()
        if self.settings.prediction_log.enabled:
            self.prediction_log().append(
                predictions.build(
                    request_id=call.request_id,
                    timestamp=datetime.now(UTC).isoformat(timespec="microseconds"),
                    model_version=model.version,
                    source=predictions.source_of(call.headers.get(predictions.SOURCE_HEADER)),
                    features=records,
                    probabilities=probabilities,
                    predictions=classes,
                    latency_ms=round((time.perf_counter() - start) * 1000, 3),
                )
            )
        return json_reply(
            {
                "predictions": [
                    {"survived": c, "probability": p}
                    for c, p in zip(classes, probabilities, strict=True)
                ],
                "model_version": model.version,
                "request_id": call.request_id,
            }
        )

    async def health(self, call: Call) -> Reply:
        model = await self.current_model()
        body = {
            "status": "ok" if model else "unavailable",
            "model_name": self.settings.model_name,
            "model_alias": self.settings.model_alias,
            "model_version": model.version if model else None,
            "inference": self._backend(model),
            "uptime_seconds": self.uptime(),
            "instance": self.instance,
        }
        if model is None:
            body["error"] = self._model_error
        return json_reply(body, 200 if model else 503)

    @staticmethod
    def _backend(model: _Model | None) -> str | None:
        if model is None:
            return None
        try:
            return model.predictor().backend
        except Exception as exc:  # reported, not raised: /health must answer
            return f"unavailable: {exc}"
