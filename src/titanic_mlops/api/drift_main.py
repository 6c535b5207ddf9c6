"""functions-framework target ``drift_check`` (its own Cloud Run service and image).

    functions-framework --target drift_check --source src/titanic_mlops/api/drift_main.py --asgi

The only entry point that imports the drift computation (Evidently, seconds to import):
the prediction image never loads this file.
"""

from __future__ import annotations

import gc
import logging
import os

from functions_framework import aio
from starlette.requests import Request
from starlette.responses import Response

from titanic_mlops.api.asgi import keep_graceful_exit, respond
from titanic_mlops.api.drift_service import DriftService
from titanic_mlops.settings import load_settings

logging.basicConfig(
    level=os.environ.get("LOG_LEVEL", "INFO"),
    format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s",
)

keep_graceful_exit()  # SIGTERM: the final metrics export runs before the worker exits
service = DriftService(load_settings())
gc.freeze()


@aio.http
async def drift_check(request: Request) -> Response:
    """GET /?n_latest=500[&format=html][&source=live]; /health; /metrics."""
    return await respond(service, request)
