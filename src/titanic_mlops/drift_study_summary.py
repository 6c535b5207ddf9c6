"""The drift study's outcomes → its tables: rates per cell, minimum detectable shifts, and
whether the run meets the targets of ``configs/monitoring/drift_study.yaml``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from titanic_mlops import evaluation, schema
from titanic_mlops.monitoring.drift_frames import DRIFT_COLUMNS
from titanic_mlops.predictions import PROBABILITY
from titanic_mlops.shifts import KINDS, NULL, shift_weights

if TYPE_CHECKING:
    from titanic_mlops.drift_study import Cell, Population, StudyConfig


def _accuracy(pop: Population, kind: str, magnitude: float) -> dict[str, float]:
    w = shift_weights(pop.frame, kind, magnitude)
    y, p = pop.frame[schema.TARGET].to_numpy(), pop.frame[PROBABILITY].to_numpy()
    everyone = evaluation.classification_metrics(y, p, w)
    held = evaluation.classification_metrics(y[pop.heldout], p[pop.heldout], w[pop.heldout])
    return {
        "accuracy": everyone["accuracy"],
        "auc": everyone["roc_auc"],
        "accuracy_heldout": held["accuracy"],
        "auc_heldout": held["roc_auc"],
        "ess": float(1 / np.sum(w**2)),
    }


def summarise(outcomes: Sequence[dict[str, Any]], config: StudyConfig, pop: Population):
    """One row per kind x magnitude x size x test set: rates, targets, accuracy."""
    rows = []
    for outcome in outcomes:
        cell: Cell = outcome["cell"]
        base = KINDS[cell.kind].statistic(pop.frame) if cell.kind != NULL else float("nan")
        shifted = KINDS[cell.kind].column if cell.kind != NULL else ""
        for tests, res in outcome["results"].items():
            rates = {f"flag_{c}": k / cell.draws for c, k in res["flags"].items()}
            rows.append(
                {
                    "kind": cell.kind,
                    "column": shifted,
                    "magnitude": cell.magnitude,
                    "n": cell.n,
                    "draws": cell.draws,
                    "tests": tests,
                    "target": KINDS[cell.kind].target(base, cell.magnitude) if shifted else base,
                    "achieved": outcome["achieved"],
                    **_accuracy(pop, cell.kind, cell.magnitude),
                    "column_flagged": rates[f"flag_{shifted}"] if shifted else float("nan"),
                    "dataset_drift": res["dataset"] / cell.draws,
                    "mean_drifted_columns": float(np.mean(res["n_drifted"])),
                    **rates,
                }
            )
    return pd.DataFrame(rows)


def min_detectable(table: pd.DataFrame, config: StudyConfig, pop: Population) -> pd.DataFrame:
    """Per kind, size, direction and rate column: the smallest magnitude from which every
    stronger one is detected in at least ``detect_rate`` of the draws."""
    rows = []
    for kind in config.shifts:
        unshifted = KINDS[kind].unshifted(KINDS[kind].statistic(pop.frame))
        for n in config.sizes:
            part = table[(table.kind == kind) & (table.n == n)]
            for direction in (-1, 1):
                side = part[np.sign(part.magnitude - unshifted) == direction]
                side = side.iloc[np.argsort(np.abs(side.magnitude - unshifted).to_numpy())]
                if side.empty:
                    continue
                row = {"kind": kind, "n": n, "direction": "up" if direction > 0 else "down"}
                for rate in ("column_flagged", "dataset_drift"):
                    ok = (side[rate] >= config.detect_rate).to_numpy()
                    tail = np.flatnonzero(~ok)
                    first = 0 if len(tail) == 0 else tail[-1] + 1
                    row[rate] = side.magnitude.iloc[first] if first < len(side) else float("nan")
                rows.append(row)
    return pd.DataFrame(rows)


def strongest(config: StudyConfig, pop: Population) -> dict[str, list[float]]:
    """Per kind, the magnitude farthest from no shift on each side that the grid covers."""
    out = {}
    for kind, shift in config.shifts.items():
        unshifted = KINDS[kind].unshifted(KINDS[kind].statistic(pop.frame))
        grid = np.array(shift["magnitudes"], dtype=float)
        out[kind] = [
            float(side[np.argmax(np.abs(side - unshifted))])
            for side in (grid[grid < unshifted], grid[grid > unshifted])
            if len(side)
        ]
    return out


def verdicts(table: pd.DataFrame, config: StudyConfig, pop: Population) -> list[tuple[str, bool]]:
    """The study's targets, each with whether this run meets it."""
    t = config.targets
    null = table[(table.kind == NULL) & (table.tests == "configured")]
    worst_column = float(null[[f"flag_{c}" for c in DRIFT_COLUMNS]].max().max())
    out = [
        (
            f"dataset false alarms <= {t['dataset_false_alarm']:.0%} "
            f"(worst {null.dataset_drift.max():.1%})",
            bool(null.dataset_drift.max() <= t["dataset_false_alarm"]),
        ),
        (
            f"per-column false alarms <= {t['column_false_alarm']:.0%} (worst {worst_column:.1%})",
            worst_column <= t["column_false_alarm"],
        ),
    ]
    n = max(config.sizes)
    for kind, magnitudes in strongest(config, pop).items():
        shift = config.shifts[kind]
        for m in magnitudes:
            row = table[(table.kind == kind) & (table.n == n) & (table.magnitude == m)]
            rate = float(row.column_flagged.iloc[0])
            out.append(
                (
                    f"{kind} ({shift['label']} {m:g}): {KINDS[kind].column} flagged >= "
                    f"{t['strongest_detection']:.0%} at n={n} ({rate:.0%})",
                    rate >= t["strongest_detection"],
                )
            )
    return out
