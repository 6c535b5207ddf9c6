"""The drift check behind the functions-framework target ``drift_check``.

``GET /?n_latest=500[&format=html][&source=live]`` reads the newest ``n_latest`` prediction
records, compares them with the drift reference sealed in the served model's bundle
(``monitoring/drift.py``, Evidently), writes the HTML report and the JSON summary as new
objects ``drift/reports/dt=YYYY-MM-DD/<ts>.{html,json}``, sets the drift gauges and pushes
the metrics right away, so that an alert can fire on drift. ``GET /report?id=<report_id>``
answers a stored report again (the HTML, or ``&format=json`` its summary) without running a
check. Framework-free like the prediction service (``api/asgi.py`` adapts it); the check and
storage reads run in worker threads.

This module imports Evidently (through ``monitoring/drift.py``): only the drift image has it.
"""

from __future__ import annotations

import asyncio
import atexit
import io
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from titanic_mlops import predictions
from titanic_mlops.api.http import (
    ApiError,
    Call,
    HttpService,
    Reply,
    invalid,
    json_reply,
)
from titanic_mlops.bundle import Bundle, BundleIntegrityError, NoDriftReference
from titanic_mlops.monitoring import drift, metrics
from titanic_mlops.per_process import PerProcess
from titanic_mlops.registry import Registry, RegistryError
from titanic_mlops.settings import ServeSettings
from titanic_mlops.storage import (
    NotFound,
    PreconditionFailed,
    Storage,
    StorageError,
    open_storage,
)

log = logging.getLogger(__name__)

REPORTS = "drift/reports/"
FORMATS = ("json", "html")


# A report's id is its key without the prefix and the suffix: all a client may name.
REPORT_ID = re.compile(r"dt=\d{4}-\d{2}-\d{2}/\d{8}T\d{6}\.\d{6}Z(?:-\d{1,2})?", re.ASCII)
REPORT_ID_RULE = "must be the report_id of a check, such as dt=2026-11-30/20261130T091500.123456Z"


def report_id(at: datetime, attempt: int = 0) -> str:
    """``dt=YYYY-MM-DD/<ts>`` (time-sortable; ``attempt`` breaks ties)."""
    tie = f"-{attempt}" if attempt else ""
    return f"dt={at:%Y-%m-%d}/{at:%Y%m%dT%H%M%S}.{at.microsecond:06d}Z{tie}"


def report_key(rid: str, suffix: str) -> str:
    """``drift/reports/<report id>.<suffix>``, the object of one check's report or summary."""
    return f"{REPORTS}{rid}.{suffix}"


class Unavailable(Exception):
    """No model, no bundle or no reference to check against: a 503 with the reason."""


@dataclass(frozen=True)
class Outcome:
    """One check: the JSON answer, and the HTML report when the check ran."""

    body: dict[str, Any]
    html: str | None = None


def reference_frame(bundle: Bundle) -> pd.DataFrame:
    """The bundle's sealed drift reference (raises NoDriftReference for an old bundle)."""
    return pd.read_csv(io.BytesIO(bundle.reference))


def current_frame(records: list[predictions.PredictionRecord]) -> pd.DataFrame:
    """Logged records as the rows the drift computation reads."""
    return pd.DataFrame.from_records([predictions.flatten(r) for r in records])


def set_gauges(result: drift.DriftResult) -> None:
    """Publish a check's outcome in the drift gauges (monitoring/metrics.py)."""
    metrics.DRIFT_DATASET.set(1 if result.dataset_drift else 0)
    metrics.DRIFT_SHARE.set(result.drift_share)
    metrics.DRIFT_ROWS.set(result.n_current)
    for name, column in result.columns.items():
        metrics.DRIFT_COLUMN_SCORE.labels(name, column.method).set(column.score)
        metrics.DRIFT_COLUMN_DRIFTED.labels(name).set(1 if column.drifted else 0)
    metrics.DRIFT_LAST_CHECK.set(time.time())


class DriftChecker:
    """Reads the log and the reference, runs the check, stores the report. Blocking I/O."""

    def __init__(self, settings: ServeSettings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage
        self.options = drift.DriftOptions.load(settings.drift.config or None)
        self._bundles: dict[int, Bundle] = {}

    @property
    def registry(self) -> Registry:
        return Registry(self.storage, self.settings.model_name)

    def bundle(self) -> tuple[int, Bundle]:
        """The served alias's version and its verified bundle (cached per version)."""
        try:
            version = self.registry.resolve(self.settings.model_alias)
            if version not in self._bundles:
                self._bundles[version] = self.registry.load(version)
        except (RegistryError, BundleIntegrityError, StorageError) as exc:
            raise Unavailable(f"no model to check against: {exc}") from None
        return version, self._bundles[version]

    def check(self, n_latest: int, source: str | None = None, store: bool = True) -> Outcome:
        """Compare the newest ``n_latest`` records (of ``source``) with the reference."""
        version, bundle = self.bundle()
        try:
            reference = reference_frame(bundle)
        except NoDriftReference as exc:
            raise Unavailable(str(exc)) from None
        try:
            logged = predictions.read_latest(self.storage, n_latest, source).records
        except Exception as exc:  # storage down or unreadable: a dependency, not a bug here
            raise Unavailable(f"prediction log unreadable: {type(exc).__name__}: {exc}") from None
        if len(logged) < self.options.min_records:
            return Outcome(
                {
                    "status": "insufficient_data",
                    "n_current": len(logged),
                    "min_records": self.options.min_records,
                    "n_latest": n_latest,
                    "source": source,
                    "model_version": version,
                }
            )
        result = drift.compute_drift(reference, current_frame(logged), self.options, html=True)
        body = {
            "status": "ok",
            **result.summary(),
            "n_latest": n_latest,
            "source": source,
            "model_version": version,
        }
        if store:
            body.update(self._store(body, result.html or ""))
        set_gauges(result)
        return Outcome(body, result.html)

    def _store(self, body: dict[str, Any], html: str) -> dict[str, str]:
        """Write the report and its summary as new objects; return their id and URIs."""
        at = datetime.now(UTC)
        timer = metrics.STORAGE_WRITE_LATENCY.labels("drift_report")
        for attempt in range(10):
            rid = report_id(at, attempt)
            keys = {s: report_key(rid, s) for s in FORMATS}
            uris = {"report_id": rid,
                    "report_uri": self.storage.join(keys["html"]),
                    "summary_uri": self.storage.join(keys["json"])}  # fmt: skip
            try:
                with timer.time():
                    self.storage.create(keys["html"], html.encode())
                with timer.time():
                    self.storage.create(keys["json"], json.dumps({**body, **uris}).encode())
                return uris
            except PreconditionFailed:
                continue  # another check in the same microsecond: take the next name
        raise StorageError(f"could not name a drift report at {at.isoformat()}")

    def stored(self, rid: str, fmt: str) -> bytes:
        """A stored report (``html``) or summary (``json``); NotFound if there is none."""
        return self.storage.read(report_key(rid, fmt))


class DriftService(HttpService):
    """One per instance: routes, per-process storage and checker, metrics export."""

    def __init__(self, settings: ServeSettings) -> None:
        super().__init__(settings)
        # per process: a storage client created before gunicorn's fork would be shared
        self._checker = PerProcess(
            lambda: DriftChecker(settings, open_storage(settings.storage_uri))
        )
        self._checker.get()  # read the options now: a bad drift.yaml stops start-up
        self.routes.update(
            {
                "/": {"GET": self.check},
                "/report": {"GET": self.report},
                "/health": {"GET": self.health},
            }
        )
        if self.exporter is not None:
            atexit.register(self.exporter.close)

    @staticmethod
    def parse_format(query: Any, default: str = "json") -> str:
        fmt = query.get("format", default)
        if fmt not in FORMATS:
            raise invalid("format", "must be one of " + ", ".join(FORMATS))
        return fmt

    def parse(self, query: Any) -> tuple[int, str, str | None]:
        """``n_latest``, ``format`` and ``source`` from the query string, or a 400."""
        d = self.settings.drift
        rule = f"must be a whole number between {d.min_n_latest} and {d.max_n_latest}"
        raw = query.get("n_latest")
        if raw is None:
            n = d.default_n_latest
        elif not raw.isdigit() or len(raw) > 9 or not d.min_n_latest <= int(raw) <= d.max_n_latest:
            raise invalid("n_latest", rule)
        else:
            n = int(raw)
        fmt = self.parse_format(query)
        source = query.get("source")
        if source is not None and predictions.source_of(source) != source:
            raise invalid("source", "must be a traffic source name such as live or locust")
        return n, fmt, source

    async def check(self, call: Call) -> Reply:
        n, fmt, source = self.parse(call.query)
        try:
            outcome = await asyncio.to_thread(self._checker.get().check, n, source)
        except Unavailable as exc:
            raise ApiError(503, "drift_unavailable", str(exc)) from None
        if outcome.body["status"] == "ok" and self.exporter is not None:
            self.exporter.maybe_export(force=True)  # so that an alert can fire on drift now
        if fmt == "html" and outcome.html is not None:
            return Reply(200, outcome.html.encode(), "text/html; charset=utf-8")
        return json_reply(outcome.body)

    async def report(self, call: Call) -> Reply:
        """A stored report again, by the ``report_id`` its check answered (HTML by default)."""
        rid = call.query.get("id")
        if rid is None or not REPORT_ID.fullmatch(rid):
            raise invalid("id", REPORT_ID_RULE)
        fmt = self.parse_format(call.query, default="html")
        try:
            data = await asyncio.to_thread(self._checker.get().stored, rid, fmt)
        except NotFound:
            raise ApiError(404, "report_not_found", f"no drift report {rid}") from None
        except Exception as exc:  # storage down: a dependency, not a bug here
            raise ApiError(503, "drift_unavailable", f"report unreadable: {exc}") from None
        if fmt == "html":
            return Reply(200, data, "text/html; charset=utf-8")
        return Reply(200, data)

    async def health(self, call: Call) -> Reply:
        try:
            version, bundle = await asyncio.to_thread(self._checker.get().bundle)
        except Unavailable as exc:
            return json_reply({"status": "unavailable", "error": str(exc)}, 503)
        return json_reply(
            {
                "status": "ok",
                "model_name": self.settings.model_name,
                "model_alias": self.settings.model_alias,
                "model_version": version,
                "drift_reference": bundle.format >= 2,
                "uptime_seconds": self.uptime(),
                "instance": self.instance,
                "pid": os.getpid(),
            }
        )
