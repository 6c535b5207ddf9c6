"""functions-framework targets (one per Cloud Run service).

    functions-framework --target logreg_classifier --source src/titanic_mlops/api/main.py

The service is built when this module is imported (once per instance): settings, storage,
and the model resolved from the registry and hash-verified.
"""

from __future__ import annotations

import gc
import logging
import os

import functions_framework
from flask import Request, Response

from titanic_mlops.api.service import PredictionService
from titanic_mlops.settings import load_settings

logging.basicConfig(
    level=os.environ.get("LOG_LEVEL", "INFO"),
    format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s",
)

service = PredictionService(load_settings())
# Start-up objects (modules, the bundle, the app) never die: keep the collector from
# rescanning them on every full collection under load.
gc.freeze()


@functions_framework.http
def logreg_classifier(request: Request) -> Response:
    """Predictions (POST /), health, metrics, OpenAPI document and the web page."""
    return service.handle(request)
