"""Serving settings: defaults from ``configs/serving.yaml``, overridden by environment variables.

The serving image has no Hydra (it stays small), so this reads the YAML directly; the
environment wins because that is how Cloud Run configures a revision.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FILE = PROJECT_ROOT / "configs" / "serving.yaml"


class SettingsError(ValueError):
    """A setting is missing or has a value of the wrong type."""


@dataclass(frozen=True)
class PredictionLogSettings:
    enabled: bool
    flush_records: int
    flush_seconds: float
    max_buffer_records: int
    retry_seconds: float


@dataclass(frozen=True)
class ServeSettings:
    storage_uri: str
    model_name: str
    model_alias: str
    model_retry_seconds: float
    inference: str
    max_body_bytes: int
    max_instances: int
    prediction_log: PredictionLogSettings


def _cast(value: str, kind: type, name: str) -> Any:
    if kind is bool:
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name}={value!r}: expected true or false")
    try:
        return kind(value)
    except ValueError as exc:
        raise SettingsError(f"{name}={value!r}: expected {kind.__name__}") from exc


def _build(cls: type, values: dict[str, Any], env: dict[str, str], prefix: str) -> Any:
    kwargs = {}
    for f in fields(cls):
        name = f"{prefix}{f.name}".upper()
        if f.name not in values:
            raise SettingsError(f"{name.lower()} is missing from the serving config")
        raw = values[f.name]
        if isinstance(raw, dict):
            kwargs[f.name] = _build(PredictionLogSettings, raw, env, f"{prefix}{f.name}_")
            continue
        kind = type(raw)
        kwargs[f.name] = _cast(env[name], kind, name) if name in env else raw
        if kind is float and isinstance(kwargs[f.name], int):
            kwargs[f.name] = float(kwargs[f.name])
    return cls(**kwargs)


def load_settings(
    path: str | Path | None = None, env: dict[str, str] | None = None
) -> ServeSettings:
    """Settings from ``path`` (default: ``$SERVING_CONFIG`` or configs/serving.yaml) and ``env``."""
    env = dict(os.environ if env is None else env)
    path = Path(path or env.get("SERVING_CONFIG") or DEFAULT_FILE)
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as exc:
        raise SettingsError(f"serving config {path} not found (set SERVING_CONFIG)") from exc
    settings = _build(ServeSettings, values, env, "")
    if settings.max_instances < 1 or settings.max_body_bytes < 2:
        raise SettingsError("max_instances and max_body_bytes must be positive")
    if settings.inference not in ("auto", "onnxruntime"):
        raise SettingsError(f"INFERENCE={settings.inference!r}: expected auto or onnxruntime")
    return settings
