"""Training on Vertex AI: the custom-job spec in deploy/vertex/ and the commands that submit it.

The spec is a ``CustomJobSpec`` in YAML (the form ``gcloud ai custom-jobs create --config``
reads); :func:`to_proto` parses it into google-cloud-aiplatform's own type, which the tests
use to catch a misspelt or misplaced field before Vertex AI would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from titanic_mlops.delivery.gcp import CLOUDBUILD_TRAIN, ROOT, Target, cloud_build_command
from titanic_mlops.delivery.render import render

JOB_SPEC = ROOT / "deploy" / "vertex" / "train-job.yaml"


def job_values(target: Target, tag: str, git_commit: str) -> dict[str, str]:
    """Values for the spec's placeholders (the same names cloudbuild-train.yaml passes)."""
    return target.placeholders(tag, GIT_COMMIT=git_commit)


def load_spec(values: dict[str, str], path: Path = JOB_SPEC) -> dict[str, Any]:
    """The job spec with its placeholders filled, as a dict (camelCase field names)."""
    return yaml.safe_load(render(path.read_text(), values, str(path)))


def to_proto(spec: dict[str, Any]) -> Any:
    """``spec`` as ``google.cloud.aiplatform_v1.types.CustomJobSpec`` (unknown fields raise)."""
    from google.cloud.aiplatform_v1.types import CustomJobSpec
    from google.protobuf import json_format

    message = json_format.ParseDict(spec, CustomJobSpec.pb(CustomJobSpec()))
    return CustomJobSpec.wrap(message)


def submit_command(target: Target, spec_file: Path, tag: str) -> list[str]:
    """Submit a rendered spec file as a custom job."""
    return [
        "gcloud", "ai", "custom-jobs", "create", f"--project={target.project}",
        f"--region={target.region}", f"--display-name=titanic-train-{tag}",
        f"--config={spec_file}",
    ]  # fmt: skip


def build_and_submit_command(target: Target, tag: str, git_commit: str) -> list[str]:
    """Build and push the training image, then submit the job: cloudbuild-train.yaml."""
    return cloud_build_command(target, CLOUDBUILD_TRAIN, _TAG=tag, _GIT_COMMIT=git_commit)
