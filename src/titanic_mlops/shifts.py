"""Shifts of the passenger population, made by reweighting real rows (labels stay true).

Used by the drift robustness study (``drift_study.py``) and the traffic simulator
(``traffic.py``): a shift kind names the column it moves, its statistic and the row
weights that move that statistic to a target, so a draw with these weights is a sample of a
shifted population made only of real passengers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq

NULL = "none"  # the kind of the unshifted draws


def _tilt(values: pd.Series, target: float, transform: Callable = lambda x: x) -> np.ndarray:
    """Exponential tilting: weights ∝ exp(λ·transform(x)) with the weighted mean of x at
    ``target``; rows where x is missing keep their share."""
    x = values.to_numpy(dtype=float)
    present = ~np.isnan(x)
    xs = x[present]
    if not xs.mean() <= target < xs.max():
        raise ValueError(f"{values.name}: mean {target:g} is out of reach by reweighting")
    t = transform(xs) - transform(xs).mean()

    def tilted(lam: float) -> np.ndarray:
        w = np.exp(lam * t - (lam * t).max())
        return w / w.sum()

    hi = 1.0
    while tilted(hi) @ xs < target:
        hi *= 2
    lam = brentq(lambda v: tilted(v) @ xs - target, 0.0, hi) if target > xs.mean() else 0.0
    w = np.full(len(x), 1 / len(x))
    w[present] = tilted(lam) * present.mean()
    return w


def _reweight(mask: pd.Series, share: float) -> np.ndarray:
    """Rows in ``mask`` carry ``share`` of the mass, the others the rest, each group as before."""
    m = mask.to_numpy(dtype=bool)
    return np.where(m, share / m.sum(), (1 - share) / (~m).sum())


@dataclass(frozen=True)
class Kind:
    """A shift kind: the column it moves, its statistic, the target statistic of a
    magnitude, the unshifted magnitude and the row weights that reach a target."""

    column: str
    statistic: Callable[[pd.DataFrame], float]
    target: Callable[[float, float], float]
    unshifted: Callable[[float], float]
    weights: Callable[[pd.DataFrame, float], np.ndarray]


KINDS: dict[str, Kind] = {
    "age": Kind(
        "age",
        lambda f: f["age"].mean(),
        lambda base, m: base + m,
        lambda base: 0.0,
        lambda f, target: _tilt(f["age"], target),
    ),
    "sex": Kind(
        "sex",
        lambda f: f["sex"].eq("female").mean(),
        lambda base, m: m,
        lambda base: base,
        lambda f, target: _reweight(f["sex"].eq("female"), target),
    ),
    "fare": Kind(
        "fare",
        lambda f: f["fare"].mean(),
        lambda base, m: base * m,
        lambda base: 1.0,
        lambda f, target: _tilt(f["fare"], target, np.log1p),
    ),
    "class": Kind(
        "pclass",
        lambda f: f["pclass"].eq(3).mean(),
        lambda base, m: m,
        lambda base: base,
        lambda f, target: _reweight(f["pclass"].eq(3), target),
    ),
}


def shift_weights(frame: pd.DataFrame, kind: str, magnitude: float) -> np.ndarray:
    """Probability of drawing each row under a shift of ``kind`` by ``magnitude``."""
    if kind == NULL:
        return np.full(len(frame), 1 / len(frame))
    spec = KINDS[kind]
    return spec.weights(frame, spec.target(spec.statistic(frame), magnitude))
