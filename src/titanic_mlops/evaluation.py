"""Classification metrics and evaluation of a registered bundle on the held-out split."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from titanic_mlops.schema import DECISION_THRESHOLD

METRIC_NAMES = ("accuracy", "roc_auc", "log_loss")


def classification_metrics(
    y_true: np.ndarray, p: np.ndarray, sample_weight: np.ndarray | None = None
) -> dict[str, float]:
    """Accuracy (at the decision threshold), ROC AUC and log loss of probabilities ``p``,
    optionally with a weight per row (the drift study's reweighted populations)."""
    p = np.asarray(p, dtype=np.float64)
    w = sample_weight
    return {
        "accuracy": float(accuracy_score(y_true, p >= DECISION_THRESHOLD, sample_weight=w)),
        "roc_auc": float(roc_auc_score(y_true, p, sample_weight=w)),
        "log_loss": float(
            log_loss(y_true, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1], sample_weight=w)
        ),
    }


def summarise_folds(scores: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean and (population) standard deviation of each metric over CV folds."""
    out = {}
    for name in METRIC_NAMES:
        values = np.array([s[name] for s in scores])
        out[f"{name}_mean"] = float(values.mean())
        out[f"{name}_std"] = float(values.std())
    return out


def evaluate_version(
    storage_uri: str, model_name: str, ref: str | int, test_raw_csv: Path | str
) -> dict[str, Any]:
    """Score a registered version with onnxruntime on the raw held-out split, as serving would."""
    from titanic_mlops import data
    from titanic_mlops.predictor import Predictor
    from titanic_mlops.registry import Registry
    from titanic_mlops.storage import open_storage

    registry = Registry(open_storage(storage_uri), model_name)
    version = registry.resolve(ref)
    predictor = Predictor(registry.load(version))
    records, y = data.read_records_csv(test_raw_csv)
    return {"version": version, **classification_metrics(y, predictor.predict_proba(records))}
