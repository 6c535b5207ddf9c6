"""Experiment tracking with W&B: a run per training, its metrics and the bundle as an artifact.

``wandb.mode=auto`` is online with ``WANDB_API_KEY`` and offline without; every W&B folder
lives under the project. The storage registry stays the source of truth and works offline;
W&B Registry linking needs online mode. W&B is imported only when a run starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from titanic_mlops import config_schema


def wandb_mode(mode: str) -> str:
    """Resolve ``auto``: online with an API key, offline without one."""
    if mode == "auto":
        return "online" if os.environ.get("WANDB_API_KEY") else "offline"
    if mode not in config_schema.WANDB_MODES:
        modes = ", ".join(config_schema.WANDB_MODES)
        raise ValueError(f"wandb.mode must be one of {modes}, got {mode!r}")
    return mode


def start_run(cfg: DictConfig, root: Path) -> Any:
    """Start a W&B run with every W&B folder under ``root`` (None when disabled)."""
    mode = wandb_mode(str(cfg.wandb.mode))
    if mode == "disabled":
        return None
    import wandb  # heavy import: only when W&B is actually used

    for var, sub in (
        ("DIR", ""),
        ("CACHE_DIR", "cache"),
        ("DATA_DIR", "data"),
        ("CONFIG_DIR", "config"),
    ):
        os.environ.setdefault(f"WANDB_{var}", str(root / sub))
    root.mkdir(parents=True, exist_ok=True)
    return wandb.init(
        project=cfg.wandb.project,
        entity=cfg.wandb.entity,
        mode=mode,
        dir=str(root),
        config=OmegaConf.to_container(cfg, resolve=True),
        job_type="train",
    )


def log_result(
    run: Any,
    cfg: DictConfig,
    metrics: Mapping[str, Any],
    files: Mapping[str, bytes],
    version: int | None,
    bundle_uri: str | None,
) -> None:
    """Summary metrics, the bundle as a ``model`` artifact (linked to the W&B Registry when
    online and configured), then finish the run."""
    import wandb

    flat = {}
    for split_name in ("test", "cv"):
        for who, scores in metrics[split_name].items():
            if isinstance(scores, dict):
                flat.update({f"{split_name}/{who}/{k}": v for k, v in scores.items()})
    run.summary.update(flat)
    artifact = wandb.Artifact(
        name=cfg.registry.model_name,
        type="model",
        metadata={"registry_version": version, "bundle_uri": bundle_uri, **flat},
    )
    for name, payload in files.items():
        with artifact.new_file(name, mode="wb") as fh:
            fh.write(payload)
    run.log_artifact(artifact)
    if cfg.wandb.registry_collection and wandb_mode(str(cfg.wandb.mode)) == "online":
        run.link_artifact(artifact, f"wandb-registry-model/{cfg.wandb.registry_collection}")
    run.finish()
