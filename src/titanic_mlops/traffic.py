"""Realistic traffic for demos and tests: passengers of the dataset, shifted if asked.

    uv run invoke simulate-traffic --url http://127.0.0.1:8080 --n 1000 --shift age

Requests are real rows of the 891 labelled passengers, drawn with replacement; a shift
reweights the rows (``shifts.py``, as in the drift study) so that the sample comes from a
shifted population made only of real passengers. Every request declares itself with
``X-Traffic-Source: simulate-traffic``, so a drift check on live traffic can leave it out.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import yaml

from titanic_mlops import data, predictions
from titanic_mlops.shifts import KINDS, NULL, shift_weights

SOURCE = "simulate-traffic"
STUDY_CONFIG = data.PROJECT_ROOT / "configs" / "monitoring" / "drift_study.yaml"
SHIFTS = (NULL, *KINDS)


def strongest_magnitude(kind: str, config: Path = STUDY_CONFIG) -> float:
    """The strongest magnitude of ``kind`` in the drift study's grid (the default shift)."""
    return float(yaml.safe_load(config.read_text())["shifts"][kind]["magnitudes"][-1])


def draw(n: int, shift: str = NULL, magnitude: float | None = None, seed: int = 0) -> list[dict]:
    """``n`` passengers (raw records, as a client sends them) of the shifted population."""
    if shift not in SHIFTS:
        raise ValueError(f"shift must be one of {', '.join(SHIFTS)}, got {shift!r}")
    records, _ = data.load_raw()
    if shift != NULL and magnitude is None:
        magnitude = strongest_magnitude(shift)
    weights = shift_weights(pd.DataFrame.from_records(records), shift, magnitude or 0.0)
    rows = np.random.default_rng(seed).choice(len(records), size=n, replace=True, p=weights)
    return [records[i] for i in rows]


def send(
    url: str, records: list[dict[str, Any]], source: str = SOURCE, clients: int = 4
) -> Counter:
    """POST each record as one request from ``clients`` keep-alive connections.

    Returns the count of each HTTP status (0 for a connection error).
    """
    target = urlsplit(url)
    if target.scheme != "http" or not target.hostname:
        raise ValueError(f"{url!r}: expected http://host:port")
    headers = {"Content-Type": "application/json", predictions.SOURCE_HEADER: source}
    statuses: Counter = Counter()
    lock = threading.Lock()
    queue: Iterator[dict[str, Any]] = iter(records)

    def client() -> None:
        conn = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=30)
        mine: Counter = Counter()
        while True:
            with lock:
                record = next(queue, None)
            if record is None:
                break
            try:
                conn.request("POST", target.path or "/", json.dumps(record), headers)
                response = conn.getresponse()
                response.read()
                mine[response.status] += 1
            except OSError:
                mine[0] += 1
                conn.close()
        with lock:
            statuses.update(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses
