"""Where the project lives in Google Cloud: names derived once, from the Cloud Build defaults.

The region, Artifact Registry repository, bucket and storage prefix default to the
``substitutions`` of ``cloudbuild.yaml`` (one source: the build and the tasks agree), and
every service account is named here.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from titanic_mlops.delivery.render import render
from titanic_mlops.vcs import describe_commit

ROOT = Path(__file__).resolve().parents[3]
CLOUDBUILD = ROOT / "cloudbuild.yaml"
CLOUDBUILD_TRAIN = ROOT / "cloudbuild-train.yaml"
PROJECT_ENV = ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT")
# Where `gcloud builds submit` uploads the source (in the bucket, outside the registry prefix).
BUILD_SOURCE_PREFIX = "cloudbuild/"


@dataclass(frozen=True)
class Account:
    """A service account with one job (see :mod:`titanic_mlops.delivery.gcp_setup`)."""

    name: str
    purpose: str

    def email(self, project: str) -> str:
        return f"{self.name}@{project}.iam.gserviceaccount.com"


ACCOUNTS: dict[str, Account] = {
    "api": Account("titanic-api", "prediction service: reads the registry, writes predictions"),
    "drift": Account("titanic-drift", "drift service: reads predictions, writes drift reports"),
    "train": Account("titanic-train", "training (Vertex AI, retrain workflow): writes registry"),
    "ci": Account("titanic-ci", "CI/CD: builds, pushes and deploys; submits training jobs"),
    "scheduler": Account("titanic-scheduler", "Cloud Scheduler: invokes the private drift service"),
}


def cloudbuild_defaults(path: Path = CLOUDBUILD) -> dict[str, str]:
    """The ``substitutions`` block of a Cloud Build file: ``{"_REGION": "europe-west1", ...}``."""
    return {k: str(v) for k, v in yaml.safe_load(path.read_text())["substitutions"].items()}


@dataclass(frozen=True)
class Target:
    """One deployment: project, region, repository, bucket and the registry's prefix in it."""

    project: str
    region: str
    repo: str
    bucket: str
    prefix: str

    @classmethod
    def from_defaults(cls, project: str, **overrides: str) -> Target:
        """Defaults from cloudbuild.yaml (``${PROJECT_ID}`` filled in); non-empty overrides win."""
        defaults = {
            k.removeprefix("_").lower(): render(v, {"PROJECT_ID": project})
            for k, v in cloudbuild_defaults().items()
        }
        values = {name: defaults[name] for name in ("region", "repo", "bucket", "prefix")}
        values.update({k: v for k, v in overrides.items() if v})
        return cls(project=project, **values)

    @property
    def storage_uri(self) -> str:
        return f"gs://{self.bucket}/{self.prefix}"

    @property
    def build_source_dir(self) -> str:
        return f"gs://{self.bucket}/{BUILD_SOURCE_PREFIX}source"

    def image(self, name: str, tag: str) -> str:
        return f"{self.region}-docker.pkg.dev/{self.project}/{self.repo}/{name}:{tag}"

    def account(self, role: str) -> str:
        return ACCOUNTS[role].email(self.project)

    def placeholders(self, tag: str, **extra: str) -> dict[str, str]:
        """Values for the placeholders of deploy/ files (same names as in the Cloud Build steps)."""
        return {
            "PROJECT_ID": self.project,
            "REGION": self.region,
            "REPO": self.repo,
            "TAG": tag,
            "STORAGE_URI": self.storage_uri,
            **extra,
        }


def cloud_build_command(target: Target, config: Path, **substitutions: str) -> list[str]:
    """``gcloud builds submit`` of ``config`` with this repository as source, run as the CI
    account (least privilege: not the default Cloud Build or compute account)."""
    subs = {"_REGION": target.region, "_REPO": target.repo, "_BUCKET": target.bucket,
            "_PREFIX": target.prefix, **substitutions}  # fmt: skip
    return [
        "gcloud", "builds", "submit", str(ROOT), f"--project={target.project}",
        f"--config={config}",
        "--substitutions=" + ",".join(f"{k}={v}" for k, v in subs.items()),
        f"--service-account=projects/{target.project}/serviceAccounts/{target.account('ci')}",
        f"--gcs-source-staging-dir={target.build_source_dir}",
    ]  # fmt: skip


def project_number(project: str) -> str:
    """The project's number (Workload Identity principals name it), asked from gcloud."""
    from titanic_mlops.delivery.shell import CommandFailed, gcloud

    cmd = [gcloud(), "projects", "describe", project, "--format=value(projectNumber)"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    number = proc.stdout.strip()
    if proc.returncode != 0 or not number.isdigit():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise CommandFailed(f"cannot read the number of project {project}: {last}")
    return number


def configured_project(project: str = "") -> str:
    """``--project``, else ``$GOOGLE_CLOUD_PROJECT`` / ``$CLOUDSDK_CORE_PROJECT``, else ``""``."""
    return project or next((os.environ[v] for v in PROJECT_ENV if os.environ.get(v)), "")


def image_tag() -> str:
    """The commit as an image tag: ``<sha12>`` or ``<sha12>-dirty``."""
    return describe_commit(12)
