"""The prediction record: its one definition, its builder, where it is stored, how it is read.

The service builds records, the prediction log (``prediction_log.py``) writes them, and the
drift check and the tests read them back: all through this module, which needs nothing but
the storage layer. Records are stored as JSON Lines in create-only objects::

    predictions/dt=YYYY-MM-DD/HH/<utc-ts>-<instance>-<seq>.jsonl

so the newest ``n`` records are found by walking days and hours newest-first and opening
only the objects needed: the cost follows ``n``, not the history stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from titanic_mlops.storage import Storage

PREFIX = "predictions/"
SUFFIX = ".jsonl"
# Where a record came from: real clients by default; load tests, benchmarks and the traffic
# simulator declare themselves in this request header so that drift checks can leave them out.
SOURCE_HEADER = "x-traffic-source"
LIVE = "live"
_SOURCE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")


class PredictionRecord(TypedDict):
    """One predicted instance, as logged (a plain dict at run time: cheap to build and encode)."""

    request_id: str
    index: int  # position of the instance in its request
    timestamp: str  # ISO 8601, UTC, when the request was answered
    model_version: int
    source: str  # "live", or what the client declared in the X-Traffic-Source header
    features: dict[str, Any]  # the validated raw features (missing optional ones: null)
    prediction: int  # 0 or 1
    probability: float
    latency_ms: float  # request received → prediction ready


FIELDS: tuple[str, ...] = tuple(PredictionRecord.__annotations__)
# Fields read beside the features (drift check, the bundle's reference.csv): one spelling.
PROBABILITY, PREDICTION, TIMESTAMP, MODEL_VERSION = (
    "probability",
    "prediction",
    "timestamp",
    "model_version",
)


def source_of(declared: str | None) -> str:
    """The record's ``source``: the declared value if it is a short lower-case name, else live.

    Bounded on purpose: a client cannot inject arbitrary text into the log or its filters.
    """
    if declared and _SOURCE.match(declared):
        return declared
    return LIVE


def build(
    request_id: str,
    timestamp: str,
    model_version: int,
    source: str,
    features: Sequence[dict[str, Any]],
    probabilities: Sequence[float],
    predictions: Sequence[int],
    latency_ms: float,
) -> list[PredictionRecord]:
    """The records of one answered request, one per instance, in request order."""
    return [
        {
            "request_id": request_id,
            "index": i,
            "timestamp": timestamp,
            "model_version": model_version,
            "source": source,
            "features": f,
            "prediction": c,
            "probability": p,
            "latency_ms": latency_ms,
        }
        for i, (f, p, c) in enumerate(zip(features, probabilities, predictions, strict=True))
    ]


def object_key(at: datetime, instance: str, seq: int) -> str:
    """Partitioned, time-sortable, per-instance-unique object name for one flush."""
    return (
        f"{PREFIX}dt={at:%Y-%m-%d}/{at:%H}/"
        f"{at:%Y%m%dT%H%M%S}.{at.microsecond:06d}Z-{instance}-{seq:08d}{SUFFIX}"
    )


@dataclass(frozen=True)
class LogSlice:
    """The newest records (oldest first) and how many objects were opened to get them."""

    records: list[PredictionRecord]
    objects_read: int


def read_latest(storage: Storage, n: int, source: str | None = None) -> LogSlice:
    """The newest ``n`` records (of ``source`` only, if given), oldest first.

    Walks days and hours newest-first and stops as soon as it has ``n``: it opens only the
    objects it needs. Order is by object (flush time, then instance): across instances it
    is exact to within one flush interval.
    """
    if n < 1:
        raise ValueError("n must be >= 1")
    newest_first: list[PredictionRecord] = []
    opened = 0
    for day in reversed(storage.list_children(PREFIX)):
        for hour in reversed(storage.list_children(day)):
            for key in reversed(storage.list(hour)):
                if not key.endswith(SUFFIX):
                    continue
                lines = storage.read(key).decode().splitlines()
                opened += 1
                for line in reversed(lines):
                    if not line:
                        continue
                    record = json.loads(line)
                    # records written before `source` existed were all live traffic
                    if source is None or record.get("source", LIVE) == source:
                        newest_first.append(record)
                if len(newest_first) >= n:
                    return LogSlice(list(reversed(newest_first[:n])), opened)
    return LogSlice(list(reversed(newest_first)), opened)


def flatten(record: PredictionRecord) -> dict[str, Any]:
    """One record as a flat row: the features, then prediction, probability, time, version."""
    return {
        **record["features"],
        **{name: record[name] for name in (PREDICTION, PROBABILITY, TIMESTAMP, MODEL_VERSION)},
    }
