"""Serving settings: defaults from ``configs/serving.yaml``, overridden by environment variables.

The serving image has no Hydra (it stays small), so this reads the YAML directly; the
environment wins because that is how Cloud Run configures a revision. Every key of every
section is overridable: its path in upper case joined by ``_`` (``METRICS_EXPORT_ENABLED``).

Sections are plain frozen dataclasses; a field whose type is a dataclass is a nested section,
built the same way, so adding a section means adding a dataclass and its YAML block. A field's
``metadata`` may carry a ``rule`` (checked after overrides) and a ``fallback_env`` (another
variable used when the setting's own variable is absent, e.g. Cloud Run's ``K_SERVICE``).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FILE = PROJECT_ROOT / "configs" / "serving.yaml"


class SettingsError(ValueError):
    """A setting is missing, unknown, or has a value of the wrong type or out of range."""


# --- rules (field metadata) -------------------------------------------------------------


def _rule(check: Callable[[Any], bool], text: str, fallback_env: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"rule": (check, text)}
    if fallback_env:
        meta["fallback_env"] = fallback_env
    return meta


POSITIVE = _rule(lambda v: v > 0, "must be positive")
NON_NEGATIVE = _rule(lambda v: v >= 0, "must be 0 or more")


def between(low: float, high: float) -> dict[str, Any]:
    return _rule(lambda v: low <= v <= high, f"must be between {low} and {high}")


def one_of(*choices: Any) -> dict[str, Any]:
    return _rule(lambda v: v in choices, "expected one of " + ", ".join(map(str, choices)))


def _storage_uri_ok(uri: str) -> bool:
    if uri.startswith("gs://"):
        return bool(uri[5:].split("/", 1)[0])
    return bool(uri) and ("://" not in uri or uri.startswith("file://"))


# GCP label keys and values: lowercase letters, digits, "_" and "-"; keys start with a letter.
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{1,63}")


# --- sections ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PredictionLogSettings:
    enabled: bool
    flush_records: int = field(metadata=POSITIVE)
    flush_seconds: float = field(metadata=POSITIVE)
    max_buffer_records: int = field(metadata=POSITIVE)
    retry_seconds: float = field(metadata=POSITIVE)


@dataclass(frozen=True)
class MetricsExportSettings:
    """Push to Cloud Monitoring (see monitoring/exporter.py); on only with a project id."""

    enabled: bool
    project_id: str = field(metadata={"fallback_env": "GOOGLE_CLOUD_PROJECT"})
    # Cloud Monitoring accepts at most one point per time series every 5 s.
    period_seconds: float = field(metadata=between(5, 3600))
    location: str = field(metadata=_rule(bool, "must not be empty"))
    namespace: str = field(metadata=_rule(bool, "must not be empty"))
    job: str = field(metadata=_rule(bool, "must not be empty", fallback_env="K_SERVICE"))
    max_series_per_call: int = field(metadata=between(1, 200))  # the API's limit is 200
    timeout_seconds: float = field(metadata=between(0.1, 60))

    @property
    def active(self) -> bool:
        """Whether exports happen at all."""
        return self.enabled and bool(self.project_id)


@dataclass(frozen=True)
class UptimeCheckSettings:
    host: str  # the Cloud Run host, e.g. titanic-api-abc123-ew.a.run.app
    path: str = field(metadata=_rule(lambda v: v.startswith("/"), "must start with /"))
    period_seconds: int = field(metadata=one_of(60, 300, 600, 900))  # what the API accepts
    timeout_seconds: int = field(metadata=between(1, 60))


@dataclass(frozen=True)
class AlertingSettings:
    """What `invoke alerts-apply` creates in Cloud Monitoring."""

    notification_email: str = field(
        metadata=_rule(lambda v: not v or re.fullmatch(r"[^@\s]+@[^@\s]+", v), "expected an email")
    )
    policy_label_key: str = field(
        metadata=_rule(_LABEL_KEY.fullmatch, "expected a GCP label key ([a-z][a-z0-9_-]*)")
    )
    policy_label_value: str = field(
        metadata=_rule(_LABEL_VALUE.fullmatch, "expected a GCP label value ([a-z0-9_-]+)")
    )
    uptime_check: UptimeCheckSettings


@dataclass(frozen=True)
class DriftSettings:
    """The drift_check target (api/drift_main.py); the tests themselves: drift.yaml."""

    default_n_latest: int = field(metadata=between(10, 100_000))  # GET / without n_latest
    min_n_latest: int = field(metadata=POSITIVE)  # n_latest outside [min, max]: 400
    max_n_latest: int = field(metadata=POSITIVE)
    config: str  # the test options: path to drift.yaml (empty: $DRIFT_CONFIG or the default)


@dataclass(frozen=True)
class ServeSettings:
    storage_uri: str = field(
        metadata=_rule(_storage_uri_ok, "unsupported storage URI: use gs://bucket/prefix or a path")
    )
    model_name: str
    model_alias: str
    model_retry_seconds: float = field(metadata=NON_NEGATIVE)
    inference: str = field(metadata=one_of("auto", "onnxruntime"))
    max_body_bytes: int = field(metadata=_rule(lambda v: v >= 2, "must be at least 2"))
    max_instances: int = field(metadata=_rule(lambda v: v >= 1, "must be positive"))
    metrics_public: bool  # serve GET /metrics (false where metrics are pushed instead)
    prediction_log: PredictionLogSettings
    metrics_export: MetricsExportSettings
    alerting: AlertingSettings
    drift: DriftSettings


# --- building ---------------------------------------------------------------------------

_EXPECTED = {bool: "true or false", int: "integer", float: "a number", str: "text"}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _coerce(value: Any, kind: type) -> Any:
    """``value`` (from YAML or a string from the environment) as ``kind``; ValueError if not."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
    elif isinstance(value, bool):
        pass  # YAML true/false is never a number or a name
    elif kind is str:
        if value is None:
            return ""
        if isinstance(value, str | int | float):
            return str(value)
    elif kind is int:
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            return int(value.strip())
    elif kind is float and isinstance(value, int | float | str):
        return float(value.strip() if isinstance(value, str) else value)
    raise ValueError(value)


def _build(cls: type, values: Any, env: dict[str, str], path: tuple[str, ...], source: str):
    dotted = ".".join(path)
    if not isinstance(values, dict):
        raise SettingsError(f"{dotted or 'serving config'} in {source}: expected a mapping")
    types = get_type_hints(cls)
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        where = f"{dotted}." if dotted else ""
        raise SettingsError(
            f"unknown setting {where}{unknown[0]} in {source} (known: {', '.join(known)})"
        )
    kwargs = {}
    for f in fields(cls):
        key_path = (*path, f.name)
        name = "_".join(key_path).upper()
        if f.name not in values:
            raise SettingsError(f"{'.'.join(key_path)} is missing from the serving config")
        kind = types[f.name]
        if dataclasses.is_dataclass(kind):
            kwargs[f.name] = _build(kind, values[f.name], env, key_path, source)
            continue
        fallback = f.metadata.get("fallback_env")
        if name in env:
            raw, origin = env[name], "environment"
        elif fallback and env.get(fallback):
            raw, origin = env[fallback], f"environment ({fallback})"
        else:
            raw, origin = values[f.name], source
        try:
            value = _coerce(raw, kind)
        except ValueError:
            raise SettingsError(
                f"{name}={raw!r}: expected {_EXPECTED[kind]} (from {origin})"
            ) from None
        rule = f.metadata.get("rule")
        if rule and not rule[0](value):
            raise SettingsError(f"{name}={value!r}: {rule[1]} (from {origin})")
        kwargs[f.name] = value
    return cls(**kwargs)


def load_settings(
    path: str | Path | None = None, env: dict[str, str] | None = None
) -> ServeSettings:
    """Settings from ``path`` (default: ``$SERVING_CONFIG`` or configs/serving.yaml) and ``env``.

    Raises :class:`SettingsError` with one line naming the setting and the rule it breaks.
    """
    env = dict(os.environ if env is None else env)
    path = Path(path or env.get("SERVING_CONFIG") or DEFAULT_FILE)
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise SettingsError(f"serving config {path} not found (set SERVING_CONFIG)") from None
    except yaml.YAMLError as exc:
        line = str(exc).replace("\n", " ")
        raise SettingsError(f"serving config {path} is not valid YAML: {line}") from None
    settings = _build(ServeSettings, values, env, (), str(path))
    drift = settings.drift
    if not drift.min_n_latest <= drift.default_n_latest <= drift.max_n_latest:
        raise SettingsError(
            f"drift.default_n_latest={drift.default_n_latest}: must be between "
            f"drift.min_n_latest={drift.min_n_latest} and drift.max_n_latest={drift.max_n_latest}"
        )
    return settings
