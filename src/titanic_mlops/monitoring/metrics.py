"""Every Prometheus metric of the service, defined once (names carry the ``titanic_`` prefix).

They live in their own :class:`CollectorRegistry` so that tests can read exact values and
the exporter pushes only what the service defines.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from titanic_mlops.monitoring import multiprocess

PREFIX = "titanic_"
REGISTRY = CollectorRegistry(auto_describe=True)
# System metrics of this process: titanic_process_cpu_seconds_total,
# titanic_process_resident_memory_bytes, open fds, start time.
PROCESS = ProcessCollector(namespace="titanic", registry=REGISTRY)

# Request latency buckets: sub-millisecond no-ops up to the 1 s alerting threshold and beyond.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
INFERENCE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0)

REQUESTS = Counter(
    "titanic_requests",
    "HTTP requests by route, method and status code.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
REQUEST_LATENCY = Histogram(
    "titanic_request_duration_seconds",
    "Wall time from request received to response ready.",
    ["route"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
PREDICTIONS = Counter(
    "titanic_predictions",
    "Predicted instances by predicted class.",
    ["survived"],
    registry=REGISTRY,
)
INFERENCE_LATENCY = Histogram(
    "titanic_inference_duration_seconds",
    "Time spent in encoding + ONNX inference per request.",
    buckets=INFERENCE_BUCKETS,
    registry=REGISTRY,
)
MODEL_INFO = Gauge(
    "titanic_model_info",
    "1 for the model version this instance serves.",
    ["model", "version", "alias"],
    registry=REGISTRY,
    multiprocess_mode="max",  # set in the master before the fork
)
MODEL_LOAD_FAILURES = Counter(
    "titanic_model_load_failures",
    "Failed attempts to resolve, verify or load the model bundle.",
    registry=REGISTRY,
)
LOG_RECORDS_WRITTEN = Counter(
    "titanic_prediction_log_records_written",
    "Prediction records durably written to storage.",
    registry=REGISTRY,
)
LOG_WRITE_ERRORS = Counter(
    "titanic_prediction_log_write_errors",
    "Failed attempts to write a prediction-log object (records stay buffered and are retried).",
    registry=REGISTRY,
)
LOG_RECORDS_DROPPED = Counter(
    "titanic_prediction_log_records_dropped",
    "Prediction records that could not be kept (buffer full while storage was failing).",
    registry=REGISTRY,
)
LOG_BUFFERED = Gauge(
    "titanic_prediction_log_buffered_records",
    "Prediction records waiting in memory to be written.",
    registry=REGISTRY,
    multiprocess_mode="sum",  # every worker has its own buffer
)

STORAGE_WRITE_LATENCY = Histogram(
    "titanic_storage_write_duration_seconds",
    "Wall time of one storage write (prediction-log objects, drift reports), success or not.",
    ["kind"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)

# --- drift (set by the drift_check target after each check) -----------------------------
DRIFT_DATASET = Gauge(
    "titanic_drift_dataset_drift",
    "1 if the last drift check declared dataset drift, else 0.",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",  # the last check, whichever worker ran it
)
DRIFT_SHARE = Gauge(
    "titanic_drift_share",
    "Share of checked columns flagged as drifted by the last drift check.",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",  # the last check, whichever worker ran it
)
DRIFT_COLUMN_SCORE = Gauge(
    "titanic_drift_column_score",
    "Drift test score (p-value or distance, see method) per column in the last check.",
    ["column", "method"],
    registry=REGISTRY,
    multiprocess_mode="mostrecent",  # the last check, whichever worker ran it
)
DRIFT_COLUMN_DRIFTED = Gauge(
    "titanic_drift_column_drifted",
    "1 if the column was flagged as drifted by the last check, else 0.",
    ["column"],
    registry=REGISTRY,
    multiprocess_mode="mostrecent",  # the last check, whichever worker ran it
)
DRIFT_ROWS = Gauge(
    "titanic_drift_rows_checked",
    "Current (logged) rows compared against the reference in the last check.",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",  # the last check, whichever worker ran it
)
DRIFT_LAST_CHECK = Gauge(
    "titanic_drift_last_check_timestamp_seconds",
    "Unix time of the last completed drift check.",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",  # the last check, whichever worker ran it
)

# --- export to Cloud Monitoring ----------------------------------------------------------
EXPORTS = Counter(
    "titanic_metrics_exports",
    "Pushes of this process's metrics to Cloud Monitoring, by outcome (ok, error).",
    ["outcome"],
    registry=REGISTRY,
)


def exposition() -> tuple[bytes, str]:
    """The Prometheus text exposition and its content type.

    With several workers (multiprocess mode, see monitoring/multiprocess.py) it sums every
    worker's values, so a scrape does not depend on which worker answers; process metrics
    are then per worker and reach Cloud Monitoring through each worker's exporter.
    """
    if multiprocess.active():
        merged = CollectorRegistry()
        MultiProcessCollector(merged)
        return generate_latest(merged), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    """Current value of one sample (0 if absent): for tests and health output."""
    value = REGISTRY.get_sample_value(name, labels or {})
    return 0.0 if value is None else value
