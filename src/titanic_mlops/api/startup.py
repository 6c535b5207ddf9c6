"""How a functions-framework target's process starts (gunicorn's master, before the fork).

Imports nothing that imports prometheus-client: :func:`begin` must run first.
"""

from __future__ import annotations

import gc
import logging
import os

from titanic_mlops.monitoring import multiprocess


def begin() -> None:
    """Before the target's imports: no GC passes, multiprocess metrics, logging."""
    # start-up allocates long-lived objects only: no collection passes until they are frozen
    gc.disable()
    # with WORKERS > 1 every worker's metrics go to one folder that /metrics sums: this must
    # happen before anything imports prometheus-client
    multiprocess.prepare()
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s",
    )


def done() -> None:
    """After the service is built: start-up objects (modules, the bundle, the app) never die,
    so the collector does not rescan them on every full collection under load."""
    gc.freeze()
    gc.enable()
