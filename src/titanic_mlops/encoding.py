"""Imputation, scaling and encoding: fitted on the training split, applied everywhere.

Training, serving and drift all go through :func:`encode` (or :func:`encode_row`) with a
:class:`Preprocessing` fitted by :func:`fit` on the training split, so there is no
training/serving skew. The encoded layout itself (columns, their order) is the schema's
(``schema.encoded_columns``). The serving path imports this module: it stays free of pandas
and torch, and imports numpy only where a matrix is built, so a one-row request never needs
it (and the service starts faster).
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from titanic_mlops.schema import (
    FEATURES,
    FIELDS,
    FIELDS_BY_NAME,
    LOG_TRANSFORMED,
    N_ENCODED,
    ONE_HOT,
    SCALED,
    SCHEMA_VERSION,
    SchemaError,
    encoded_columns,
    is_missing,
)

if TYPE_CHECKING:
    import numpy as np

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
