"""prometheus-client's multiprocess mode, for services with more than one worker process.

With ``WORKERS > 1`` gunicorn forks several workers and each keeps its own counters: a
scrape of ``/metrics`` would see one worker's numbers, chosen by whichever answered. In
multiprocess mode every process writes its values to memory-mapped files in one folder and
``/metrics`` sums them (gauges as each declares: ``multiprocess_mode``). The folder must be
set before prometheus-client is imported and cleaned at each start (files of an earlier
run would be summed in). Imports nothing from prometheus-client on purpose.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def workers() -> int:
    """gunicorn's worker count, as functions-framework reads it (``WORKERS``, default 1)."""
    try:
        return max(1, int(os.environ.get("WORKERS", "1")))
    except ValueError:
        return 1


def prepare(folder: str | Path | None = None) -> Path | None:
    """Switch this process (and the workers it will fork) to multiprocess metrics.

    Only with more than one worker: a single process is faster and exact without it.
    Call it in the master, before anything imports prometheus-client. Returns the folder,
    emptied of earlier runs' files, or None when not switched.
    """
    if workers() < 2:
        return None
    if "prometheus_client" in sys.modules:  # too late to switch (e.g. an in-process test)
        return None
    path = Path(folder or os.environ.get(ENV) or tempfile.mkdtemp(prefix="titanic-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):  # only prometheus-client's own files: never rmtree
        stale.unlink()
    os.environ[ENV] = str(path)
    return path


def active() -> bool:
    """Whether this process writes multiprocess metrics."""
    return bool(os.environ.get(ENV))
