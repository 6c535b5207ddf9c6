"""The drift study: shift weights reach their targets on real rows, the detection rule, and a
quick end-to-end run that writes every output."""

from __future__ import annotations

import os
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from titanic_mlops import data, drift_study, drift_study_summary, schema
from titanic_mlops.monitoring import drift


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    records, _ = data.load_raw()
    return pd.DataFrame.from_records(records, columns=list(schema.FEATURES))


@pytest.mark.parametrize(
    ("kind", "magnitude"),
    [("age", 3), ("age", 15), ("fare", 1.5), ("fare", 3), ("sex", 0.9), ("class", 0.2)],
)
def test_shift_weights_reach_the_target(frame, kind, magnitude):
    spec = drift_study.KINDS[kind]
    w = drift_study.shift_weights(frame, kind, magnitude)
    assert w.shape == (len(frame),) and (w >= 0).all() and w.sum() == pytest.approx(1)
    column = spec.column
    present = frame[column].notna().to_numpy()
    # missing values keep their share; the shifted statistic hits its target exactly
    assert w[~present].sum() == pytest.approx((~present).mean())
    if kind in ("age", "fare"):
        x = frame[column].to_numpy(dtype=float)[present]
        achieved = float(x @ (w[present] / w[present].sum()))
    else:
        chosen = (frame.sex == "female") if kind == "sex" else (frame.pclass == 3)
        achieved = float(w[chosen.to_numpy()].sum())
    assert achieved == pytest.approx(spec.target(spec.statistic(frame), magnitude), rel=1e-6)
    # a real shift moves weight: some rows now weigh more than uniform, others less
    assert w.max() > 1.5 / len(frame) and w.min() < 0.75 / len(frame)


def test_unreachable_shift_is_refused(frame):
    with pytest.raises(ValueError, match="age: mean .* out of reach"):
        drift_study.shift_weights(frame, "age", 100)


def test_no_shift_is_uniform(frame):
    w = drift_study.shift_weights(frame, drift_study.NULL, float("nan"))
    assert np.allclose(w, 1 / len(frame))


def test_min_detectable_needs_every_stronger_magnitude(frame):
    config = drift_study.StudyConfig.load(quick=False)
    rates = [0.5, 0.9, 0.7, 0.95, 1.0]  # 0.9 at 2 years is followed by a miss: not yet
    table = pd.DataFrame(
        {
            "kind": "age",
            "n": 500,
            "magnitude": [1.0, 2.0, 3.0, 4.0, 5.0],
            "column_flagged": rates,
            "dataset_drift": [0.0] * 5,
        }
    )
    config = replace(config, shifts={"age": config.shifts["age"]}, sizes=(500,))
    population = drift_study.Population(
        frame=frame, heldout=np.zeros(len(frame), bool), n_reference=1
    )
    row = drift_study_summary.min_detectable(table, config, population).iloc[0]
    assert row.column_flagged == 4.0
    assert np.isnan(row.dataset_drift)


@pytest.mark.slow
def test_quick_study_writes_its_outputs(tmp_path):
    config = drift_study.StudyConfig.load(quick=True)
    table = drift_study.run_study(config, tmp_path)
    kinds = len(config.shifts)
    assert len(table) == len(config.sizes) * (2 + 2 * kinds)  # null x 2 test sets + 2 magnitudes
    on_disk = pd.read_csv(tmp_path / "study.csv")
    assert len(on_disk) == len(table)
    rates = on_disk[[f"flag_{c}" for c in drift.DRIFT_COLUMNS] + ["dataset_drift"]]
    assert ((rates >= 0) & (rates <= 1)).all().all()
    assert set(on_disk.kind) == {drift_study.NULL, *config.shifts}
    shifted = on_disk[on_disk.kind != drift_study.NULL]
    assert shifted.draws.eq(config.draws).all() and shifted.achieved.notna().all()
    assert ((shifted.accuracy > 0.5) & (shifted.auc > 0.5)).all()
    text = (tmp_path / "study.md").read_text()
    assert "## Verdict" in text and "## Minimum detectable shift" in text
    assert "chisquare_two_sample" in text
    assert re.search(rf"in \d+ s\n\(.*{os.cpu_count()} cores", text)  # run time, machine
    for name in ("detection.png", "accuracy.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
