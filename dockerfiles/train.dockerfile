# Training image (Vertex AI custom job, deploy/vertex/train-job.yaml): torch, hydra, wandb,
# scikit-learn, and onnxruntime for the validation gate the job runs before moving an alias.
#   docker build -f dockerfiles/train.dockerfile -t titanic-train .
#   docker run -e STORAGE_URI=gs://bucket/prefix titanic-train registry.promote_to=staging
#   docker run -e STORAGE_URI=gs://bucket/prefix --entrypoint python titanic-train \
#     -m titanic_mlops.delivery.train_job --alias staging
FROM python:3.11-slim AS base

COPY --from=ghcr.io/astral-sh/uv:0.9.5 /uv /usr/local/bin/uv

# UV_NO_CACHE: uv's download cache (about as large as the venv) never lands in a layer.
ENV UV_COMPILE_BYTECODE=1 \
    UV_NO_CACHE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1

WORKDIR /app
# Dependencies first (cached layer), then the project.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-default-groups --group train --group serve --no-install-project
COPY src ./src
COPY configs ./configs
COPY data/raw ./data/raw
RUN uv sync --locked --no-default-groups --group train --group serve

RUN useradd --create-home --uid 10001 trainer && chown -R trainer /app
USER trainer

ENV WANDB_MODE=auto
ENTRYPOINT ["python", "-m", "titanic_mlops.train"]
