"""functions-framework targets (one per Cloud Run service), in ASGI mode.

    functions-framework --target logreg_classifier --source src/titanic_mlops/api/main.py --asgi

The service is built when this module is imported (once per instance, before gunicorn forks
its uvicorn workers): settings, storage, and the model resolved from the registry and
hash-verified.
"""

from __future__ import annotations

import gc

gc.disable()  # start-up allocates long-lived objects only: no collection passes until frozen

import logging  # noqa: E402
import os  # noqa: E402

from titanic_mlops.monitoring import multiprocess  # noqa: E402

# With WORKERS > 1, every worker's metrics go to one folder that /metrics sums: this must
# happen before anything imports prometheus-client (the imports below do).
multiprocess.prepare()

from functions_framework import aio  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import Response  # noqa: E402

from titanic_mlops.api.asgi import keep_graceful_exit, respond  # noqa: E402
from titanic_mlops.api.service import PredictionService  # noqa: E402
from titanic_mlops.settings import load_settings  # noqa: E402

logging.basicConfig(
    level=os.environ.get("LOG_LEVEL", "INFO"),
    format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s",
)

keep_graceful_exit()  # SIGTERM: the workers flush their prediction log before exiting
service = PredictionService(load_settings())
# Start-up objects (modules, the bundle, the app) never die: keep the collector from
# rescanning them on every full collection under load.
gc.freeze()
gc.enable()


@aio.http
async def logreg_classifier(request: Request) -> Response:
    """Predictions (POST /), health, metrics, OpenAPI document and the web page."""
    return await respond(service, request)
