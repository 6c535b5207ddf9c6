"""The feature schema: the one place that knows the model's inputs, their rules and the
encoded layout (columns and their order).

Requests, the raw CSV and drift records are checked here (:func:`check_record`); the fitted
imputation, scaling and encoding live in ``encoding.py``. Free of numpy, pandas and torch:
the serving path imports this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

SCHEMA_VERSION = "1"

FieldKind = Literal["categorical", "integer", "number"]


@dataclass(frozen=True)
class FieldSpec:
    """One model input: its type, the rule it must satisfy and its column in the raw CSV."""

    name: str
    raw_column: str
    kind: FieldKind
    required: bool
    description: str
    allowed: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None

    def rule(self) -> str:
        """Human-readable rule, used verbatim in validation errors."""
        if self.allowed is not None:
            return "must be one of " + ", ".join(repr(v) for v in self.allowed)
        kind = "an integer" if self.kind == "integer" else "a number"
        return f"must be {kind} between {self.minimum:g} and {self.maximum:g}"


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("pclass", "Pclass", "categorical", True, "Ticket class", allowed=(1, 2, 3)),
    FieldSpec("sex", "Sex", "categorical", True, "Sex", allowed=("male", "female")),
    FieldSpec("age", "Age", "number", False, "Age in years", minimum=0, maximum=120),
    FieldSpec("sibsp", "SibSp", "integer", False, "Siblings/spouses aboard", minimum=0, maximum=20),
    FieldSpec("parch", "Parch", "integer", False, "Parents/children aboard", minimum=0, maximum=20),
    FieldSpec("fare", "Fare", "number", False, "Fare paid (GBP)", minimum=0, maximum=10_000),
    FieldSpec(
        "embarked", "Embarked", "categorical", False, "Port of embarkation", allowed=("S", "C", "Q")
    ),
)
FEATURES: tuple[str, ...] = tuple(f.name for f in FIELDS)
_FEATURE_SET = frozenset(FEATURES)
FIELDS_BY_NAME: dict[str, FieldSpec] = {f.name: f for f in FIELDS}
TARGET = "survived"
# Probability at or above which a passenger is predicted to survive (serving and evaluation).
DECISION_THRESHOLD = 0.5
TARGET_RAW_COLUMN = "Survived"

# Numeric inputs that are standardised; fare is log1p-transformed first (heavy right tail).
SCALED: tuple[str, ...] = ("age", "sibsp", "parch", "fare")
LOG_TRANSFORMED: frozenset[str] = frozenset({"fare"})
ONE_HOT: tuple[str, ...] = ("pclass", "embarked")


def encoded_columns() -> list[str]:
    """Names of the model's input columns, in order."""
    cols: list[str] = []
    for spec in FIELDS:
        if spec.name in ONE_HOT:
            cols += [f"{spec.name}_{v}" for v in spec.allowed or ()]
        elif spec.name == "sex":
            cols.append("sex_male")
        else:
            cols.append(spec.name)
    return cols


N_ENCODED = len(encoded_columns())


class SchemaError(ValueError):
    """A value breaks the feature schema. ``field`` and ``rule`` say which and why."""

    def __init__(self, field: str, rule: str, index: int | None = None) -> None:
        self.field, self.rule, self.index = field, rule, index
        where = f"instances[{index}].{field}" if index is not None else field
        super().__init__(f"{where}: {rule}")


def is_missing(value: Any) -> bool:
    """None and NaN count as missing (pandas reads the raw CSV's empty cells as NaN)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def check_value(spec: FieldSpec, value: Any, index: int | None = None) -> Any:
    """Return ``value`` normalised to the field's type, or raise :class:`SchemaError`."""
    if is_missing(value):
        if spec.required:
            raise SchemaError(spec.name, "is required", index)
        return None
    if spec.allowed is not None:
        # Integers may arrive as 3.0 from a CSV or JSON; bools are never a class.
        if isinstance(value, float) and value.is_integer() and spec.kind == "categorical":
            value = int(value)
        if isinstance(value, bool) or value not in spec.allowed:
            raise SchemaError(spec.name, spec.rule(), index)
        if type(value) is not type(spec.allowed[0]):
            raise SchemaError(spec.name, spec.rule(), index)
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SchemaError(spec.name, spec.rule(), index)
    # Range first: comparing a huge int with a float bound is exact, while isfinite() on a
    # 400-digit int would raise OverflowError.
    if not (spec.minimum <= value <= spec.maximum) or not math.isfinite(value):
        raise SchemaError(spec.name, spec.rule(), index)
    if spec.kind == "integer":
        if not float(value).is_integer():
            raise SchemaError(spec.name, spec.rule(), index)
        return int(value)
    return float(value)


_SLOW = object()  # "not the common valid case: ask check_value"


def _quick_check(spec: FieldSpec) -> Callable[[Any], Any]:
    """The common valid case of :func:`check_value` for ``spec``, in a few operations.

    Returns the normalised value, or ``_SLOW`` for anything else (missing, wrong type,
    out of range, 3.0 for a class): :func:`check_value` then decides and names the rule.
    Serving validates every instance, so this is on the hot path.
    """
    if spec.allowed is not None:
        exact = frozenset((type(v), v) for v in spec.allowed)  # True is not the class 1

        def category(v: Any) -> Any:
            try:
                return v if (v.__class__, v) in exact else _SLOW
            except TypeError:  # unhashable (a list or an object): check_value names the rule
                return _SLOW

        return category
    lo, hi = spec.minimum, spec.maximum
    if spec.kind == "integer":
        return lambda v: v if v.__class__ is int and lo <= v <= hi else _SLOW

    def number(v: Any) -> Any:
        kind = v.__class__
        if (kind is float or kind is int) and lo <= v <= hi:  # NaN and inf fail the range
            return float(v)
        return _SLOW

    return number


_QUICK: tuple[tuple[str, FieldSpec, Callable[[Any], Any]], ...] = tuple(
    (spec.name, spec, _quick_check(spec)) for spec in FIELDS
)


def check_record(record: Mapping[str, Any], index: int | None = None) -> dict[str, Any]:
    """Validate one raw record (unknown keys are rejected) and return it normalised."""
    if not _FEATURE_SET.issuperset(record):
        unknown = sorted(set(record) - _FEATURE_SET)
        raise SchemaError(
            unknown[0], "is not a model input: expected " + ", ".join(FEATURES), index
        )
    out = {}
    for name, spec, quick in _QUICK:
        value = record.get(name)
        checked = quick(value)
        out[name] = check_value(spec, value, index) if checked is _SLOW else checked
    return out


# (field, kind, fill value, a, b): one_hot → a = classes; binary → a = the "1" class;
# linear/log → (x - a) / b with x = value or log1p(value).
