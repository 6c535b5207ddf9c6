# Drift service for Cloud Run: functions-framework target `drift_check` in its ASGI mode.
# The `serve-base` and `drift` dependency groups from uv.lock (evidently, pandas): no torch,
# onnxruntime, hydra or wandb. Private on Cloud Run: invoked with an identity token
# (deploy/cloudrun/drift.yaml).
#   docker build -f dockerfiles/drift.dockerfile -t titanic-drift .
#   docker run -p 8080:8080 -e STORAGE_URI=gs://bucket/prefix titanic-drift
FROM python:3.11-slim AS build

COPY --from=ghcr.io/astral-sh/uv:0.9.5 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv

WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-default-groups --group serve-base --group drift --no-editable --no-install-project
COPY src ./src
# tests/integration/test_serving_image.py builds a venv from this exact line
RUN uv sync --locked --no-default-groups --group serve-base --group drift --no-editable

FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SERVING_CONFIG=/app/configs/serving.yaml \
    DRIFT_CONFIG=/app/configs/monitoring/drift.yaml \
    PORT=8080
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY configs/serving.yaml ./configs/serving.yaml
COPY configs/monitoring/drift.yaml ./configs/monitoring/drift.yaml
# functions-framework loads ./main.py: the thin module holding the target
COPY src/titanic_mlops/api/drift_main.py ./main.py

RUN useradd --create-home --uid 10001 app
USER app
EXPOSE 8080
CMD ["functions-framework", "--target", "drift_check", "--asgi", "--host", "0.0.0.0", "--port", "8080"]
