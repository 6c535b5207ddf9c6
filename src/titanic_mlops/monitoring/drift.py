"""Data drift of current (logged) rows against a reference sample, with Evidently 0.7.

The only module that imports Evidently (seconds to import): the prediction service never
does. Pure: frames and options in, a :class:`DriftResult` out. Columns: the 7 raw inputs of
:mod:`~titanic_mlops.schema` (categorical stay categorical; missing values stay missing and
are left out of the tests), the model's ``probability`` (numerical) and ``prediction``
(categorical 0/1). Each column has one Evidently stat test and threshold from
``configs/monitoring/drift.yaml``; ``drifted`` is Evidently's own decision for that test:

* p-value tests (``ks``, ``z``, ``chisquare``, ``chisquare_two_sample``, ``mannw``, …): small
  means different; drifted when ``score < threshold`` (``ks``, ``cramer_von_mises``: ``<=``).
* distances (``wasserstein``, ``jensenshannon``, ``psi``, ``hellinger``, …): large means
  different; drifted when ``score >= threshold`` (``ed``: ``>``).

Dataset drift is Evidently's rule: the share of drifted columns is at least ``drift_share``.
Scores come from Evidently's stat-test registry, the test objects ``DataDriftPreset`` calls;
``html=True`` also runs a ``Report`` with ``DataDriftPreset`` (same columns, types, tests,
thresholds) for the HTML, which shows the same scores (tested). Numbers alone skip
``Report.run``: it renders every plotly widget even when no HTML is wanted (~0.5 s vs ~15 ms
at n = 500), too slow for the robustness study's thousands of checks.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from scipy.stats import chi2_contingency

from titanic_mlops.monitoring.drift_frames import (
    COLUMN_KINDS,
    DRIFT_COLUMNS,
    ColumnKind,
    model_versions,
    prepare,
    window,
)
from titanic_mlops.settings import PROJECT_ROOT

with warnings.catch_warnings():
    # Evidently's import chain emits other packages' deprecation notices (litestar, numpy.core).
    warnings.simplefilter("ignore", DeprecationWarning)
    from evidently import DataDefinition, Dataset, Report
    from evidently.legacy.calculations.stattests import StatTest, get_stattest, register_stattest
    from evidently.legacy.calculations.stattests.registry import get_registered_stattest
    from evidently.legacy.core import ColumnType
    from evidently.presets import DataDriftPreset

_EVIDENTLY_TYPE = {"categorical": ColumnType.Categorical, "numerical": ColumnType.Numerical}

DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "monitoring" / "drift.yaml"
CONFIG_ENV = "DRIFT_CONFIG"


def _chisquare_two_sample(
    reference: pd.Series, current: pd.Series, feature_type: ColumnType, threshold: float
) -> tuple[float, bool]:
    """Pearson's chi-square test of homogeneity on the 2 x k table of category counts.

    Evidently's ``chisquare`` is a goodness-of-fit test that takes the reference
    proportions as exact, so the reference's own sampling error reads as drift; here both
    samples' sampling error enters the statistic.
    """
    table = pd.concat([reference.value_counts(), current.value_counts()], axis=1).fillna(0)
    if len(table) < 2:  # one category on both sides: nothing can differ
        return 1.0, False
    p_value = float(chi2_contingency(table.to_numpy().T, correction=False).pvalue)
    return p_value, p_value < threshold


CHISQUARE_TWO_SAMPLE = StatTest(
    name="chisquare_two_sample",
    display_name="chi-square two-sample p_value",
    allowed_feature_types=[ColumnType.Categorical],
    default_threshold=0.05,
)
register_stattest(CHISQUARE_TWO_SAMPLE, default_impl=_chisquare_two_sample)


class InsufficientDataError(ValueError):
    """Fewer current rows than ``min_records``: too few to test."""

    def __init__(self, n_current: int, min_records: int) -> None:
        self.n_current, self.min_records = n_current, min_records
        super().__init__(f"current: {n_current} rows, fewer than min_records={min_records}")


@dataclass(frozen=True)
class ColumnTest:
    """The Evidently stat test of one column and its threshold."""

    method: str
    threshold: float


@dataclass(frozen=True)
class DriftOptions:
    """Per-column tests, the dataset-drift share and the minimum number of current rows."""

    tests: Mapping[str, ColumnTest]
    drift_share: float
    min_records: int

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> DriftOptions:
        """Options from a parsed ``drift.yaml``; a bad key raises ValueError naming it."""
        _only_keys(values, ("drift_share", "min_records", "columns"), "drift options")
        share = _number(values, "drift_share", "drift_share")
        if not 0 < share <= 1:
            raise ValueError(f"drift_share: must be in (0, 1], got {share!r}")
        min_records = values["min_records"]
        if isinstance(min_records, bool) or not isinstance(min_records, int) or min_records < 1:
            raise ValueError(f"min_records: must be a whole number >= 1, got {min_records!r}")
        columns = values["columns"]
        if not isinstance(columns, Mapping):
            raise ValueError("columns: must map each drift column to {method, threshold}")
        _only_keys(columns, DRIFT_COLUMNS, "columns")
        tests = {name: _column_test(name, columns[name]) for name in DRIFT_COLUMNS}
        return cls(tests=tests, drift_share=share, min_records=min_records)

    @classmethod
    def load(cls, path: str | Path | None = None) -> DriftOptions:
        """Options from ``path`` (default: ``$DRIFT_CONFIG`` or configs/monitoring/drift.yaml)."""
        path = Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)
        try:
            values = yaml.safe_load(path.read_text())
        except FileNotFoundError as exc:
            raise ValueError(f"drift config {path} not found (set {CONFIG_ENV})") from exc
        if not isinstance(values, Mapping):
            raise ValueError(f"drift config {path}: expected a mapping")
        return cls.from_mapping(values)


def _only_keys(values: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    if not isinstance(values, Mapping):
        raise ValueError(f"{where}: expected a mapping of {', '.join(allowed)}")
    unknown = [k for k in values if k not in allowed]
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: unknown key; expected {', '.join(allowed)}")
    missing = [k for k in allowed if k not in values]
    if missing:
        raise ValueError(f"{where}.{missing[0]}: is required")


def _number(values: Mapping[str, Any], key: str, where: str) -> float:
    value = values[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: must be a number, got {value!r}")
    return float(value)


def _column_test(name: str, values: Any) -> ColumnTest:
    where = f"columns.{name}"
    _only_keys(values, ("method", "threshold"), where)
    method, kind = values["method"], COLUMN_KINDS[name]
    try:
        get_registered_stattest(method, _EVIDENTLY_TYPE[kind])
    except ValueError:
        raise ValueError(
            f"{where}.method: {method!r} is not an Evidently stat test for {kind} columns"
        ) from None
    threshold = _number(values, "threshold", f"{where}.threshold")
    if threshold <= 0:
        raise ValueError(f"{where}.threshold: must be > 0, got {threshold!r}")
    return ColumnTest(method=method, threshold=threshold)


@dataclass(frozen=True)
class ColumnDrift:
    """One column's test: method name, score (p-value or distance), threshold, decision."""

    method: str
    score: float
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class DriftResult:
    """The outcome of one check; :meth:`summary` is its JSON form (all but the HTML)."""

    dataset_drift: bool
    drift_share: float
    drifted_columns: list[str]
    columns: dict[str, ColumnDrift]
    n_reference: int
    n_current: int
    window: dict[str, str | None]
    model_versions: list[int]
    html: str | None = field(default=None, repr=False)

    def summary(self) -> dict[str, Any]:
        """JSON-ready dict of everything but the HTML report."""
        out = asdict(self)
        del out["html"]
        return out


def _test_column(
    reference: pd.Series, current: pd.Series, kind: ColumnKind, test: ColumnTest
) -> ColumnDrift:
    ref, cur = reference.dropna(), current.dropna()
    column_type = _EVIDENTLY_TYPE[kind]
    result = get_stattest(ref, cur, column_type, test.method)(ref, cur, column_type, test.threshold)
    return ColumnDrift(
        method=test.method,
        score=float(result.drift_score),
        threshold=float(result.actual_threshold),
        drifted=bool(result.drifted),
    )


def run_report(reference: pd.DataFrame, current: pd.DataFrame, options: DriftOptions) -> Any:
    """Evidently ``Report`` with ``DataDriftPreset`` over prepared frames; its snapshot."""
    kinds = {
        kind: [c for c in DRIFT_COLUMNS if COLUMN_KINDS[c] == kind] for kind in _EVIDENTLY_TYPE
    }
    definition = DataDefinition(
        numerical_columns=kinds["numerical"], categorical_columns=kinds["categorical"]
    )
    preset = DataDriftPreset(
        columns=list(DRIFT_COLUMNS),
        drift_share=options.drift_share,
        per_column_method={name: t.method for name, t in options.tests.items()},
        per_column_threshold={name: t.threshold for name, t in options.tests.items()},
    )
    with warnings.catch_warnings():
        # pandas' notice about Evidently's own replace() downcasting: not ours to act on
        warnings.simplefilter("ignore", FutureWarning)
        return Report([preset]).run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )


def compute_drift(
    reference: pd.DataFrame, current: pd.DataFrame, options: DriftOptions, html: bool = False
) -> DriftResult:
    """Test every drift column of ``current`` against ``reference``.

    ``reference``: the 7 features, ``probability`` (``prediction`` is derived from it when
    absent), other columns (the label) ignored. ``current``: the 7 features,
    ``probability``, ``prediction`` and optionally ``timestamp`` (ISO 8601) and
    ``model_version``, which give the window and the versions seen. Raises ValueError
    naming a missing or malformed column, :class:`InsufficientDataError` below
    ``options.min_records`` current rows.
    """
    ref, cur = prepare(reference, "reference"), prepare(current, "current")
    if len(cur) < options.min_records:
        raise InsufficientDataError(len(cur), options.min_records)
    columns = {
        name: _test_column(ref[name], cur[name], COLUMN_KINDS[name], options.tests[name])
        for name in DRIFT_COLUMNS
    }
    drifted = [name for name, column in columns.items() if column.drifted]
    share = len(drifted) / len(columns)
    return DriftResult(
        dataset_drift=share >= options.drift_share,
        drift_share=share,
        drifted_columns=drifted,
        columns=columns,
        n_reference=len(ref),
        n_current=len(cur),
        window=window(current),
        model_versions=model_versions(current),
        html=run_report(ref, cur, options).get_html_str(as_iframe=False) if html else None,
    )
