"""The drift computation on real rows and the real model: same-population samples, a strong
shift, the result's shape, and clear errors for bad options and bad input."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from tests.conftest import load_torch_model
from titanic_mlops import bundle, data, encoding, schema
from titanic_mlops.monitoring import drift, drift_frames
from titanic_mlops.predictions import PREDICTION, PROBABILITY

SUMMARY_KEYS = {
    "dataset_drift",
    "drift_share",
    "drifted_columns",
    "columns",
    "n_reference",
    "n_current",
    "window",
    "model_versions",
}


@pytest.fixture(scope="module")
def score(trained):
    """The trained bundle's probability for raw records, as serving computes it."""
    prep = encoding.Preprocessing.from_json(trained.files[bundle.PREPROCESSING])
    model = load_torch_model(trained.files)

    def _score(frame: pd.DataFrame) -> np.ndarray:
        rows = frame[list(schema.FEATURES)].to_dict("records")
        records = [
            schema.check_record({k: None if pd.isna(v) else v for k, v in r.items()}) for r in rows
        ]
        return model.predict_proba(torch.from_numpy(encoding.encode(records, prep))).numpy()

    return _score


@pytest.fixture(scope="module")
def population(score) -> pd.DataFrame:
    """The 891 labelled rows in raw units with the model's probability and prediction."""
    records, y = data.load_raw()
    frame = pd.DataFrame.from_records(records, columns=list(schema.FEATURES))
    frame[schema.TARGET] = y
    frame[PROBABILITY] = score(frame)
    frame[PREDICTION] = (frame[PROBABILITY] >= schema.DECISION_THRESHOLD).astype(int)
    return frame


@pytest.fixture(scope="module")
def options() -> drift.DriftOptions:
    return drift.DriftOptions.load()


def draw(frame: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """An independent draw of ``n`` rows with replacement."""
    return frame.iloc[rng.integers(0, len(frame), n)].reset_index(drop=True)


def test_same_population_samples_rarely_drift(population, options):
    rng = np.random.default_rng(7)
    default_tests = {name: drift.ColumnTest("chisquare", 0.05) for name in ("pclass", "embarked")}
    evidently_default = replace(options, tests={**options.tests, **default_tests})
    draws, flags, default_flags, dataset = 60, dict.fromkeys(drift.DRIFT_COLUMNS, 0), 0, 0
    for _ in range(draws):
        reference, current = draw(population, 712, rng), draw(population, 500, rng)
        result = drift.compute_drift(reference, current, options)
        dataset += result.dataset_drift
        for name in result.drifted_columns:
            flags[name] += 1
        default = drift.compute_drift(reference, current, evidently_default)
        default_flags += sum(name in default.drifted_columns for name in default_tests)
    # Expected: ~1-2 % dataset drift and ~5 % per column; these bounds fail only if the
    # tests are miscalibrated (binomial tail probabilities well below 1 %).
    assert dataset <= 3
    assert max(flags.values()) <= 0.2 * draws, flags
    # The trap: the goodness-of-fit chi-square flags the categorical columns far more often.
    assert default_flags > flags["pclass"] + flags["embarked"] + 5


def test_strong_shift_is_dataset_drift_with_the_shifted_columns_flagged(population, options, score):
    rng = np.random.default_rng(11)
    women_first = population[(population.pclass == 1) & (population.sex == "female")]
    current = draw(women_first, 600, rng)
    current["age"] = current["age"] + 25  # missing ages stay missing
    current[PROBABILITY] = score(current)
    current[PREDICTION] = (current[PROBABILITY] >= 0.5).astype(int)
    result = drift.compute_drift(draw(population, 712, rng), current, options)
    assert result.dataset_drift
    assert {"pclass", "sex", "age", "probability", "prediction"} <= set(result.drifted_columns)
    assert result.drift_share == len(result.drifted_columns) / len(drift.DRIFT_COLUMNS)
    for name, column in result.columns.items():
        assert column.method == options.tests[name].method
        assert column.threshold == options.tests[name].threshold
        assert 0.0 <= column.score <= 1.0  # all configured tests give p-values
        assert column.drifted == (column.score <= column.threshold)
    # shifted columns are not borderline: their p-values are tiny
    assert max(result.columns[c].score for c in ("pclass", "sex", "age")) < 1e-6


def test_summary_is_json_and_derives_window_and_versions(population, options):
    rng = np.random.default_rng(3)
    current = draw(population, 200, rng)
    stamps = pd.date_range("2026-03-01T10:00:00Z", periods=len(current), freq="min")
    current["timestamp"] = rng.permutation([s.isoformat() for s in stamps])
    current["model_version"] = rng.choice([3, 1, 3, 2], len(current))
    current.loc[5, "model_version"] = None
    result = drift.compute_drift(draw(population, 712, rng), current, options)
    summary = result.summary()
    assert set(summary) == SUMMARY_KEYS
    assert json.loads(json.dumps(summary, allow_nan=False)) == summary
    assert summary["window"] == {"from": stamps[0].isoformat(), "to": stamps[-1].isoformat()}
    assert summary["model_versions"] == sorted(set(current.model_version.dropna().astype(int)))
    assert summary["n_current"] == 200 and summary["n_reference"] == 712
    assert list(summary["columns"]) == list(drift.DRIFT_COLUMNS)
    assert set(summary["columns"]["age"]) == {"method", "score", "threshold", "drifted"}
    assert result.html is None


def test_without_timestamps_or_versions_the_window_is_empty(population, options):
    rng = np.random.default_rng(4)
    result = drift.compute_drift(draw(population, 712, rng), draw(population, 100, rng), options)
    assert result.window == {"from": None, "to": None}
    assert result.model_versions == []


def test_html_report_shows_the_same_scores(population, options):
    rng = np.random.default_rng(5)
    reference = draw(population, 712, rng)
    current = draw(population[population.age.isna() | (population.age > 20)], 300, rng)
    result = drift.compute_drift(reference, current, options, html=True)
    assert result.html is not None and "<html" in result.html[:500].lower()
    assert all(name in result.html for name in drift.DRIFT_COLUMNS)
    snapshot = drift.run_report(
        drift_frames.prepare(reference, "reference"),
        drift_frames.prepare(current, "current"),
        options,
    )
    scores = {
        m["config"]["column"]: m["value"]
        for m in snapshot.dict()["metrics"]
        if m["config"]["type"].endswith("ValueDrift")
    }
    assert scores == pytest.approx({n: c.score for n, c in result.columns.items()}, rel=1e-9)


def test_reference_prediction_is_derived_and_category_spellings_agree(population, options):
    rng = np.random.default_rng(6)
    reference, current = draw(population, 712, rng), draw(population, 300, rng)
    expected = drift.compute_drift(reference, current, options)
    respelled = current.assign(
        pclass=current.pclass.astype(float), prediction=current.prediction.astype(bool)
    )
    got = drift.compute_drift(reference.drop(columns=[PREDICTION]), respelled, options)
    assert got.drifted_columns == expected.drifted_columns
    for name, column in got.columns.items():
        assert column.score == pytest.approx(expected.columns[name].score, rel=1e-9), name


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda v: v["columns"].update(cabin={"method": "z", "threshold": 0.05}), "columns.cabin"),
        (lambda v: v["columns"].pop("fare"), "columns.fare: is required"),
        (lambda v: v["columns"]["age"].update(method="nope"), "columns.age.method: 'nope'"),
        (lambda v: v["columns"]["age"].update(method="chisquare"), "for numerical columns"),
        (lambda v: v["columns"]["sex"].update(method="ks"), "columns.sex.method: 'ks'"),
        (lambda v: v["columns"]["sex"].update(threshold=0), "columns.sex.threshold"),
        (lambda v: v["columns"]["sex"].update(color="red"), "columns.sex.color: unknown key"),
        (lambda v: v.update(drift_share=1.5), "drift_share"),
        (lambda v: v.update(min_records=True), "min_records"),
        (lambda v: v.update(min_records=0), "min_records"),
        (lambda v: v.update(window="1h"), "drift options.window: unknown key"),
    ],
)
def test_bad_options_name_the_key(change, message):
    values = yaml.safe_load(drift.DEFAULT_CONFIG.read_text())
    change(values)
    with pytest.raises(ValueError, match=re.escape(message)):
        drift.DriftOptions.from_mapping(values)


def test_options_load_default_and_missing_file(tmp_path: Path, monkeypatch):
    options = drift.DriftOptions.load()
    assert set(options.tests) == set(drift.DRIFT_COLUMNS)
    assert options.min_records >= 1 and 0 < options.drift_share <= 1
    monkeypatch.setenv(drift.CONFIG_ENV, str(tmp_path / "nope.yaml"))
    with pytest.raises(ValueError, match="nope.yaml not found"):
        drift.DriftOptions.load()


@pytest.mark.parametrize(
    ("which", "change", "message"),
    [
        ("current", lambda f: f.drop(columns=["fare"]), "current: missing column.*fare"),
        ("current", lambda f: f.iloc[:0], "current: no rows"),
        ("reference", lambda f: f.drop(columns=["probability"]), "reference: missing.*probability"),
        ("current", lambda f: f.assign(age="old"), "current: column age must be numeric"),
        ("current", lambda f: f.assign(embarked=None), "current: column embarked has no values"),
        ("current", lambda f: f.assign(timestamp="yesterday"), "current: column timestamp"),
        ("current", lambda f: f.assign(model_version=1.5), "current: column model_version"),
    ],
)
def test_bad_input_names_the_column(population, options, which, change, message):
    rng = np.random.default_rng(8)
    frames = {"reference": draw(population, 712, rng), "current": draw(population, 100, rng)}
    frames[which] = change(frames[which])
    with pytest.raises(ValueError, match=message):
        drift.compute_drift(frames["reference"], frames["current"], options)


def test_too_few_current_rows_is_insufficient_data(population, options):
    rng = np.random.default_rng(9)
    current = draw(population, options.min_records - 1, rng)
    with pytest.raises(drift.InsufficientDataError) as err:
        drift.compute_drift(draw(population, 712, rng), current, options)
    assert (err.value.n_current, err.value.min_records) == (len(current), options.min_records)


def test_two_sample_chisquare_is_registered_and_symmetric(population):
    from evidently.legacy.calculations.stattests import get_stattest
    from evidently.legacy.core import ColumnType

    rng = np.random.default_rng(10)
    a, b = draw(population, 300, rng).pclass, draw(population, 500, rng).pclass
    test = get_stattest(a, b, ColumnType.Categorical, "chisquare_two_sample")
    ab, ba = test(a, b, ColumnType.Categorical, 0.05), test(b, a, ColumnType.Categorical, 0.05)
    assert ab.drift_score == pytest.approx(ba.drift_score)  # no side is taken as exact
    assert test(a, a, ColumnType.Categorical, 0.05).drift_score == pytest.approx(1.0)
    one = pd.Series(["S"] * 50)
    assert test(one, one.iloc[:20], ColumnType.Categorical, 0.05).drift_score == 1.0
