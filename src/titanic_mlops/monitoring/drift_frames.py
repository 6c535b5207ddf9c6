"""The rows a drift check reads: its columns, their kinds, and frames made ready to test.

Pandas only (no Evidently): the column names are the prediction record's
(``predictions.py``), the 7 inputs keep the kinds of ``schema.FIELDS``. ``prepare`` gives
each column one dtype and one spelling per category, so that 1, 1.0 and True cannot count as
different categories; ValueError names the fault.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from titanic_mlops import schema
from titanic_mlops.predictions import MODEL_VERSION, PREDICTION, PROBABILITY, TIMESTAMP

ColumnKind = Literal["categorical", "numerical"]

COLUMN_KINDS: dict[str, ColumnKind] = {
    **{f.name: "categorical" if f.kind == "categorical" else "numerical" for f in schema.FIELDS},
    PROBABILITY: "numerical",
    PREDICTION: "categorical",
}
# The columns every check tests, in report order.
DRIFT_COLUMNS: tuple[str, ...] = tuple(COLUMN_KINDS)


def _canonical(value: Any) -> Any:
    # One spelling per category: 1, 1.0, np.int64(1) and True/1 would otherwise differ.
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, (bool, np.bool_, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    return value


def _categorical(values: pd.Series) -> pd.Series:
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if inferred in ("string", "integer", "empty"):  # already one spelling per category
        return values
    return pd.Series([_canonical(v) for v in values], dtype=object)


def prepare(frame: pd.DataFrame, which: str) -> pd.DataFrame:
    """The drift columns of ``frame`` with one dtype per kind; ValueError names the fault."""
    if not isinstance(frame, pd.DataFrame) or frame.empty:
        raise ValueError(f"{which}: no rows")
    if PREDICTION not in frame and PROBABILITY in frame:
        frame = frame.assign(**{PREDICTION: frame[PROBABILITY] >= schema.DECISION_THRESHOLD})
    missing = [c for c in DRIFT_COLUMNS if c not in frame]
    if missing:
        raise ValueError(f"{which}: missing column(s) {', '.join(missing)}")
    out = {}
    for name in DRIFT_COLUMNS:
        values = frame[name].reset_index(drop=True)
        if COLUMN_KINDS[name] == "numerical":
            try:
                values = pd.to_numeric(values).astype(float)
            except (ValueError, TypeError):
                raise ValueError(f"{which}: column {name} must be numeric") from None
            values = values.where(np.isfinite(values))  # ±inf count as missing, as in Evidently
        else:
            values = _categorical(values)
        if values.isna().all():
            raise ValueError(f"{which}: column {name} has no values (all missing)")
        out[name] = values
    return pd.DataFrame(out)


def window(current: pd.DataFrame) -> dict[str, str | None]:
    """The first and last ``timestamp`` of the current rows, as logged (None without times)."""
    if TIMESTAMP not in current:
        return {"from": None, "to": None}
    raw = current[TIMESTAMP].reset_index(drop=True)
    parsed = pd.to_datetime(raw, utc=True, format="ISO8601", errors="coerce")
    bad = parsed.isna() & raw.notna()
    if bad.any():
        got = raw[bad].iloc[0]
        raise ValueError(f"current: column {TIMESTAMP} must hold ISO 8601 times (got {got!r})")
    if parsed.isna().all():
        return {"from": None, "to": None}

    def text(i: int) -> str:
        value = raw[i]
        return value if isinstance(value, str) else pd.Timestamp(value).isoformat()

    return {"from": text(parsed.idxmin()), "to": text(parsed.idxmax())}


def model_versions(current: pd.DataFrame) -> list[int]:
    """The model versions seen in the current rows, sorted."""
    if MODEL_VERSION not in current:
        return []
    numbers = pd.to_numeric(current[MODEL_VERSION].dropna(), errors="coerce")
    if numbers.isna().any() or not (numbers % 1 == 0).all():
        raise ValueError(f"current: column {MODEL_VERSION} must hold whole numbers")
    return sorted({int(v) for v in numbers})
