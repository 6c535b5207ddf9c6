"""Both Cloud Run services as code: their files, the build that deploys them, the pre-flight check.

``deploy/cloudrun/api.yaml`` (public prediction service) and ``deploy/cloudrun/drift.yaml``
(private drift service) are Knative Service files for ``gcloud run services replace``;
``cloudbuild.yaml`` builds and pushes both images, renders the files and applies them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from titanic_mlops.delivery.gcp import CLOUDBUILD, ROOT, Target, cloud_build_command
from titanic_mlops.delivery.render import render

SERVICE_FILES = {
    "api": ROOT / "deploy" / "cloudrun" / "api.yaml",
    "drift": ROOT / "deploy" / "cloudrun" / "drift.yaml",
}
# The startup probe of both services needs a model behind this alias.
REQUIRED_ALIAS = "production"


class DeployRefused(RuntimeError):
    """Deploying now would fail or do harm (the message is one line)."""


def load_service(path: Path, values: dict[str, str]) -> dict[str, Any]:
    """A service file with its placeholders filled, parsed."""
    return yaml.safe_load(render(path.read_text(), values, str(path)))


@dataclass(frozen=True)
class ServiceSummary:
    """What a service file says, in the terms the docs and the tests use."""

    name: str
    image: str
    account: str
    public: bool
    concurrency: int
    min_instances: int
    max_instances: int
    cpu: str
    memory: str
    cpu_always: bool
    env: dict[str, str]

    @classmethod
    def of(cls, doc: dict[str, Any]) -> ServiceSummary:
        template = doc["spec"]["template"]
        notes = template["metadata"]["annotations"]
        (container,) = template["spec"]["containers"]
        limits = container["resources"]["limits"]
        return cls(
            name=doc["metadata"]["name"],
            image=container["image"],
            account=template["spec"]["serviceAccountName"],
            public=doc["metadata"]["annotations"]["run.googleapis.com/invoker-iam-disabled"]
            == "true",
            concurrency=int(template["spec"]["containerConcurrency"]),
            min_instances=int(notes["autoscaling.knative.dev/minScale"]),
            max_instances=int(notes["autoscaling.knative.dev/maxScale"]),
            cpu=str(limits["cpu"]),
            memory=str(limits["memory"]),
            cpu_always=notes["run.googleapis.com/cpu-throttling"] == "false",
            env={e["name"]: str(e["value"]) for e in container.get("env", [])},
        )

    def line(self) -> str:
        access = "public" if self.public else "private (identity token + run.invoker)"
        cpu = "always" if self.cpu_always else "during requests"
        return (
            f"{self.name}: {access}; {self.image}; runs as {self.account}; concurrency "
            f"{self.concurrency}; instances {self.min_instances}-{self.max_instances}; "
            f"{self.cpu} CPU ({cpu}), {self.memory}"
        )


def services(target: Target, tag: str) -> dict[str, ServiceSummary]:
    """The services as they would be deployed to ``target`` with images tagged ``tag``."""
    values = target.placeholders(tag)
    return {k: ServiceSummary.of(load_service(p, values)) for k, p in SERVICE_FILES.items()}


def deploy_command(target: Target, tag: str) -> list[str]:
    """Build, push and deploy both services: the Cloud Build submission of cloudbuild.yaml."""
    return cloud_build_command(target, CLOUDBUILD, _TAG=tag)


def require_production(storage_uri: str, model: str) -> int:
    """The version behind ``production``; :class:`DeployRefused` (one line) if there is none.

    Both services' startup probes call /health, which answers 503 until a production model
    is loaded: a first deploy before any promotion can only fail.
    """
    from titanic_mlops.registry import Registry, RegistryError
    from titanic_mlops.storage import open_storage

    try:
        return Registry(open_storage(storage_uri), model).get_alias(REQUIRED_ALIAS)
    except RegistryError:
        pass
    except Exception as exc:  # no credentials, no access, no network: cannot confirm, refuse
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DeployRefused(f"refusing to deploy: cannot read {storage_uri}: {first}") from None
    raise DeployRefused(
        f"refusing to deploy: {storage_uri} has no '{REQUIRED_ALIAS}' alias for {model} "
        "(the startup probe on /health would fail): train (invoke train-cloud), validate "
        "and promote a version first"
    )
