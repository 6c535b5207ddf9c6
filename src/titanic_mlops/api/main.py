"""functions-framework targets (one per Cloud Run service), in ASGI mode.

    functions-framework --target logreg_classifier --source src/titanic_mlops/api/main.py --asgi

The service is built when this module is imported (once per instance, before gunicorn forks
its uvicorn workers): settings, storage, and the model resolved from the registry and
hash-verified.
"""

from __future__ import annotations

from titanic_mlops.api import startup

startup.begin()  # before the imports below: they import prometheus-client

from functions_framework import aio  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import Response  # noqa: E402

from titanic_mlops.api.asgi import keep_graceful_exit, respond  # noqa: E402
from titanic_mlops.api.service import PredictionService  # noqa: E402
from titanic_mlops.settings import load_settings  # noqa: E402

keep_graceful_exit()  # SIGTERM: the workers flush their prediction log before exiting
service = PredictionService(load_settings())
startup.done()


@aio.http
async def logreg_classifier(request: Request) -> Response:
    """Predictions (POST /), health, metrics, OpenAPI document and the web page."""
    return await respond(service, request)
