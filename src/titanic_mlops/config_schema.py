"""The typed schema of the training config: Hydra checks the types, :func:`check` the ranges.

``configs/config.yaml`` starts its defaults list with ``train_schema`` (:class:`TrainConfig`,
stored in Hydra's ConfigStore when this module is imported), so a value of the wrong type
(``hyperparameters.lr=abc``) fails while Hydra composes the config, and :func:`check` then
applies each field's rule (``hyperparameters.epochs=-5``). Either way the run stops with
:class:`ConfigError`, one line naming the key and the rule, before any work starts.

The values live in the YAML files only: every field here is ``MISSING``.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.errors import CompactHydraException
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from titanic_mlops.evaluation import METRIC_NAMES
from titanic_mlops.registry import ALIAS_NAME

SCHEMA_NAME = "train_schema"  # the first entry of configs/config.yaml's defaults list
WANDB_MODES = ("auto", "online", "offline", "disabled")
OPTIMIZERS = ("adam", "sgd")
OBJECTIVES = frozenset(
    [f"test.{who}.{m}" for who in ("model", "baseline") for m in METRIC_NAMES]
    + [f"cv.{who}.{m}_{s}" for who in ("model", "baseline") for m in METRIC_NAMES
       for s in ("mean", "std")]
)  # fmt: skip


class ConfigError(ValueError):
    """A config value breaks the schema; the message is one line naming the key and the rule."""


@dataclass(frozen=True)
class Rule:
    """What a value must be (``text`` completes "must be …") and the test of a typed value."""

    text: str
    test: Callable[[Any], bool] = lambda value: True


def _field(rule: Rule) -> Any:
    return field(default=MISSING, metadata={"rule": rule})


def one_of(*choices: str) -> Rule:
    return Rule(f"one of {', '.join(choices)}", lambda v: v in choices)


NAME = Rule(f"a name matching {ALIAS_NAME.pattern}", lambda v: bool(ALIAS_NAME.match(v)))
TEXT = Rule("a non-empty string", lambda v: bool(str(v).strip()))
OBJECTIVE = Rule("a metric like cv.model.accuracy_mean", OBJECTIVES.__contains__)


@dataclass
class HyperParameters:
    optimizer: str = _field(one_of(*OPTIMIZERS))
    lr: float = _field(Rule("a number > 0", lambda v: v > 0))
    momentum: float = _field(Rule("a number in [0, 1)", lambda v: 0 <= v < 1))
    weight_decay: float = _field(Rule("a number >= 0", lambda v: v >= 0))
    epochs: int = _field(Rule("an integer >= 1", lambda v: v >= 1))
    batch_size: int = _field(Rule("an integer >= 1", lambda v: v >= 1))


@dataclass
class ModelConfig:
    name: str = _field(one_of("logistic_regression"))


@dataclass
class DataConfig:
    raw: str = _field(TEXT)
    processed_dir: str = _field(TEXT)
    test_size: float = _field(Rule("a number in (0, 1)", lambda v: 0 < v < 1))


@dataclass
class EvaluationConfig:
    cv_folds: int = _field(Rule("an integer >= 2", lambda v: v >= 2))
    baseline_c: float = _field(Rule("a number > 0", lambda v: v > 0))
    baseline_max_iter: int = _field(Rule("an integer >= 1", lambda v: v >= 1))


@dataclass
class RegistryConfig:
    storage_uri: str = _field(TEXT)
    model_name: str = _field(NAME)
    register: bool = _field(Rule("true or false"))
    promote_to: str | None = _field(NAME)


@dataclass
class WandbConfig:
    mode: str = _field(one_of(*WANDB_MODES))
    project: str = _field(TEXT)
    entity: str | None = _field(TEXT)
    dir: str = _field(TEXT)
    registry_collection: str | None = _field(TEXT)


@dataclass
class TrainConfig:
    """``configs/config.yaml`` with its hyperparameters and model groups."""

    hyperparameters: HyperParameters = field(default_factory=HyperParameters)
    model: ModelConfig = field(default_factory=ModelConfig)
    seed: int = _field(Rule("an integer in [0, 2**32)", lambda v: 0 <= v < 2**32))
    data: DataConfig = field(default_factory=DataConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    objective: str = _field(OBJECTIVE)
    metrics_file: str | None = _field(TEXT)


ConfigStore.instance().store(name=SCHEMA_NAME, node=TrainConfig)


def _fields(schema: type) -> Iterator[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        yield f, hints[f.name]


def rule_for(key: str) -> Rule | None:
    """The rule of a dotted key (``hyperparameters.lr``), or None if the schema has no such key."""
    schema: Any = TrainConfig
    rule = None
    for part in key.split("."):
        if not dataclasses.is_dataclass(schema):
            return None
        found = {f.name: (f, hint) for f, hint in _fields(schema)}
        if part not in found:
            return None
        f, schema = found[part]
        rule = f.metadata.get("rule")
    return rule


def _nullable(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)


def violations(values: dict[str, Any], schema: type = TrainConfig, prefix: str = "") -> list[str]:
    """One ``key = value (must be …)`` per value of a resolved config that breaks its rule."""
    out = []
    for f, hint in _fields(schema):
        key, value = f"{prefix}{f.name}", values.get(f.name)
        if dataclasses.is_dataclass(hint):
            out += violations(value or {}, hint, f"{key}.")
        elif not (value is None and _nullable(hint)) and not f.metadata["rule"].test(value):
            out.append(f"{key} = {value!r} (must be {f.metadata['rule'].text})")
    return out


def _first_line(text: str) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def describe(exc: BaseException) -> str:
    """One line for a config error raised by Hydra or OmegaConf (names the key and the rule)."""
    if isinstance(exc, ConfigError):
        return str(exc)
    cause = exc if isinstance(exc, OmegaConfBaseException) else exc.__cause__
    if isinstance(cause, OmegaConfBaseException) and cause.full_key:
        key = str(cause.full_key)
        rule = rule_for(key)
        if rule is not None and "value" in vars(cause):
            return f"{key} = {cause.value!r} (must be {rule.text})"
        return f"{key}: {_first_line(cause.msg)}"
    parts = [_first_line(str(exc))]
    if cause is not None and cause is not exc:
        parts.append(_first_line(str(cause)))
    return "; ".join(p for p in parts if p)


# what composing and checking a config raises for a bad value (Hydra wraps OmegaConf's errors)
CONFIG_ERRORS: tuple[type[Exception], ...] = (ConfigError, CompactHydraException)


def check(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` unless ``cfg`` has the schema's keys, types and ranges."""
    try:
        typed = OmegaConf.merge(OmegaConf.structured(TrainConfig), cfg)
        values = OmegaConf.to_container(typed, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(describe(exc)) from None
    assert isinstance(values, dict)
    problems = violations(values)
    if problems:
        raise ConfigError("; ".join(problems))


def compose(overrides: list[str]) -> DictConfig:
    """Compose ``configs/config.yaml`` with ``overrides`` and check it (:class:`ConfigError`)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from titanic_mlops.data import PROJECT_ROOT

    try:
        with initialize_config_dir(config_dir=str(PROJECT_ROOT / "configs"), version_base="1.3"):
            cfg = hydra_compose("config", overrides=overrides)
    except CONFIG_ERRORS as exc:
        raise ConfigError(describe(exc)) from None
    check(cfg)
    return cfg
