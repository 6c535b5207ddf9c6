"""Train, register, gate, and only then move an alias: the Vertex AI job and the retrain workflow.

    python -m titanic_mlops.delivery.train_job --alias staging [hydra overrides ...]

1. ``WANDB_API_KEY_SECRET`` (a Secret Manager version name) → ``WANDB_API_KEY`` if it has a
   value, so W&B logs online; the key never appears in the job spec. Otherwise W&B is offline.
2. Train and register a new version without touching any alias (``titanic_mlops.train.run``).
3. The validation gate (configs/validation.yaml) on that exact version.
4. Accepted: move ``--alias``. Rejected: exit 1 with the reasons; the version stays unaliased.
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

SECRET_ENV = "WANDB_API_KEY_SECRET"
SECRET_MANAGER = "https://secretmanager.googleapis.com/v1"


def fetch_secret(name: str, session: Any = None, endpoint: str = SECRET_MANAGER) -> str:
    """The payload of Secret Manager version ``name`` (REST, Application Default Credentials)."""
    if session is None:
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        credentials, _ = google.auth.default(
            scopes=["https://www.googleapis.com/auth/cloud-platform"]
        )
        session = AuthorizedSession(credentials)
    response = session.get(f"{endpoint}/{name}:access", timeout=30)
    response.raise_for_status()
    return base64.b64decode(response.json()["payload"]["data"]).decode().strip()


def wandb_key_from_secret(env: dict[str, str] | os._Environ = os.environ, **kwargs: Any) -> bool:
    """Set ``WANDB_API_KEY`` from the secret named in ``WANDB_API_KEY_SECRET``; True if set."""
    name = env.get(SECRET_ENV)
    if not name or env.get("WANDB_API_KEY"):
        return bool(env.get("WANDB_API_KEY"))
    try:
        env["WANDB_API_KEY"] = fetch_secret(name, **kwargs)
    except Exception as exc:  # no version yet, no access, no network: train offline
        log.warning("W&B offline: cannot read %s (%s)", name, str(exc).splitlines()[0])
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alias", required=True, help="alias to move if the gate accepts")
    parser.add_argument(
        "--gate", default="", help='overrides of configs/validation.yaml, e.g. "min_accuracy=0.8"'
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for training")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    wandb_key_from_secret()

    from hydra import compose, initialize_config_dir

    from titanic_mlops import train
    from titanic_mlops.registry import Registry
    from titanic_mlops.storage import open_storage
    from titanic_mlops.validation import load_policy, validate

    with initialize_config_dir(config_dir=train.CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=[*args.overrides, "registry.promote_to=null"])
    result = train.run(cfg)
    if result.version is None:
        print("registry.register=false: nothing to validate", file=sys.stderr)
        return 1
    uri = train.storage_uri(cfg.registry.storage_uri)
    registry = Registry(open_storage(uri), cfg.registry.model_name)
    # the gate scores the held-out rows of the very split this run trained on
    held_out = train.project_path(cfg.data.processed_dir) / "test_raw.csv"
    policy = load_policy([f"held_out={held_out}", *args.gate.split()])
    if not validate(registry, result.version, policy).show():
        print(f"version {result.version} stays without alias", file=sys.stderr)
        return 1
    previous = registry.set_alias(args.alias, result.version)
    print(f"{registry.model}:{args.alias} -> version {result.version} (was {previous})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
