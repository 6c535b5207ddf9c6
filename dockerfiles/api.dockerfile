# Prediction service for Cloud Run: functions-framework target `logreg_classifier` in its ASGI
# mode (Starlette on gunicorn + uvicorn workers; uvloop and httptools come with the group).
# Only the `serve` dependency group from uv.lock: no torch, hydra, wandb or evidently.
#   docker build -f dockerfiles/api.dockerfile -t titanic-api .
#   docker run -p 8080:8080 -e STORAGE_URI=gs://bucket/prefix titanic-api
FROM python:3.11-slim AS build

COPY --from=ghcr.io/astral-sh/uv:0.9.5 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/venv

WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-default-groups --group serve --no-editable --no-install-project
COPY src ./src
# tests/integration/test_serving_image.py builds a venv from this exact line
RUN uv sync --locked --no-default-groups --group serve --no-editable

FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SERVING_CONFIG=/app/configs/serving.yaml \
    PORT=8080
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY configs/serving.yaml ./configs/serving.yaml
# functions-framework loads ./main.py: the thin module holding the targets
COPY src/titanic_mlops/api/main.py ./main.py

RUN useradd --create-home --uid 10001 app
USER app
EXPOSE 8080
CMD ["functions-framework", "--target", "logreg_classifier", "--asgi", "--host", "0.0.0.0", "--port", "8080"]
