"""functions-framework target ``drift_check`` (its own Cloud Run service and image).

    functions-framework --target drift_check --source src/titanic_mlops/api/drift_main.py --asgi

The only entry point that imports the drift computation (Evidently, seconds to import):
the prediction image never loads this file.
"""

from __future__ import annotations

from titanic_mlops.api import startup

startup.begin()  # before the imports below: they import prometheus-client

from functions_framework import aio  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import Response  # noqa: E402

from titanic_mlops.api.asgi import keep_graceful_exit, respond  # noqa: E402
from titanic_mlops.api.drift_service import DriftService  # noqa: E402
from titanic_mlops.settings import load_settings  # noqa: E402

keep_graceful_exit()  # SIGTERM: the final metrics export runs before the worker exits
service = DriftService(load_settings())
startup.done()


@aio.http
async def drift_check(request: Request) -> Response:
    """GET /?n_latest=500[&format=html][&source=live]; /report?id=…; /health; /metrics."""
    return await respond(service, request)
