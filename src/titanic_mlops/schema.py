"""The feature schema: the one place that knows the model's inputs and how they are encoded.

Training, serving and drift all go through :func:`encode` with a :class:`Preprocessing`
fitted on the training split, so there is no training/serving skew. The serving path
imports this module: it stays free of pandas and torch, and imports numpy only where a
matrix is built, so a one-row request never needs it (and the service starts faster).
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np

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
_Step = tuple[str, str, Any, Any, Any]


@dataclass(frozen=True)
class Preprocessing:
    """Imputation and scaling values learned from the training split."""

    impute: dict[str, Any]
    mean: dict[str, float]
    std: dict[str, float]
    schema_version: str = SCHEMA_VERSION
    features: list[str] = field(default_factory=lambda: list(FEATURES))
    encoded_columns: list[str] = field(default_factory=encoded_columns)

    @functools.cached_property
    def plan(self) -> tuple[_Step, ...]:
        """Per-field encoding steps with their constants resolved once (hot path of serving)."""
        steps = []
        for spec in FIELDS:
            fill = self.impute.get(spec.name)
            if spec.name in ONE_HOT:
                steps.append((spec.name, "one_hot", fill, spec.allowed, None))
            elif spec.name == "sex":
                steps.append((spec.name, "binary", fill, "male", None))
            else:
                kind = "log" if spec.name in LOG_TRANSFORMED else "linear"
                steps.append((spec.name, kind, fill, self.mean[spec.name], self.std[spec.name]))
        return tuple(steps)

    def to_json(self) -> str:
        """Deterministic JSON (sorted keys) so that equal inputs give byte-identical files."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Preprocessing:
        """Parse and check that the file was written for this schema."""
        data = json.loads(text)
        if data.get("schema_version") != SCHEMA_VERSION:
            raise SchemaError(
                "schema_version",
                f"preprocessing was written for schema {data.get('schema_version')!r}, "
                f"this code expects {SCHEMA_VERSION!r}",
            )
        if data.get("encoded_columns") != encoded_columns():
            raise SchemaError("encoded_columns", "do not match this code's feature encoding")
        return cls(**data)


def _mode(values: Iterable[Any]) -> Any:
    counts = Counter(v for v in values if not is_missing(v))
    # Ties broken by value so the result never depends on row order.
    return min(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[0]


def _column(records: Sequence[Mapping[str, Any]], name: str) -> list[Any]:
    return [r.get(name) for r in records]


def _numeric(values: Sequence[Any], name: str, impute: Mapping[str, Any]) -> np.ndarray:
    import numpy as np

    fill = impute[name]
    arr = np.array([fill if is_missing(v) else v for v in values], dtype=np.float64)
    return np.log1p(arr) if name in LOG_TRANSFORMED else arr


def fit(records: Sequence[Mapping[str, Any]]) -> Preprocessing:
    """Learn imputation (median age/fare, modal embarked/sibsp/parch) and scaling from ``records``.

    Call it on the training split only: statistics from the test split would leak.
    """
    import numpy as np

    if not records:
        raise ValueError("cannot fit preprocessing on zero records")
    impute: dict[str, Any] = {}
    for name in SCALED:
        present = [float(v) for v in _column(records, name) if not is_missing(v)]
        if FIELDS_BY_NAME[name].kind == "integer":
            impute[name] = int(_mode(present))
        else:
            impute[name] = float(np.median(present))
    impute["embarked"] = _mode(_column(records, "embarked"))
    mean: dict[str, float] = {}
    std: dict[str, float] = {}
    for name in SCALED:
        arr = _numeric(_column(records, name), name, impute)
        mean[name] = float(arr.mean())
        # A constant column would divide by zero; scaling by 1 leaves it centred.
        std[name] = float(arr.std()) or 1.0
    return Preprocessing(impute=impute, mean=mean, std=std)


def encode_row(record: Mapping[str, Any], plan: tuple[_Step, ...]) -> list[float]:
    """One validated raw record as the model's input row (``plan``: ``Preprocessing.plan``)."""
    row: list[float] = []
    for name, kind, fill, a, b in plan:
        value = record.get(name)
        if value is None or (value.__class__ is float and value != value):  # missing or NaN
            value = fill
        if kind == "one_hot":
            row += [1.0 if value == allowed else 0.0 for allowed in a]
        elif kind == "binary":
            row.append(1.0 if value == a else 0.0)
        else:
            x = math.log1p(value) if kind == "log" else float(value)
            row.append((x - a) / b)
    return row


def encode(records: Sequence[Mapping[str, Any]], prep: Preprocessing) -> np.ndarray:
    """Encode validated raw records into the model's float32 input matrix (n, N_ENCODED).

    Row by row in plain Python: serving encodes one or a few rows per request, where
    per-column numpy calls cost more than the arithmetic.
    """
    import numpy as np

    plan = prep.plan
    rows = [encode_row(r, plan) for r in records]
    return np.array(rows, dtype=np.float32).reshape(len(rows), N_ENCODED)
