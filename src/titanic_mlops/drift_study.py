"""Robustness study of the drift check: false alarms, detection power and model accuracy.

The 891 labelled rows are the population and every sample is an independent draw from it
with replacement: a reference of the training split's size, never shifted, fresh per draw,
and a current sample of n rows, drawn uniformly (no shift) or with weights that move one
column (mean age, share of women, mean fare, share of third class) while every row stays a
real passenger with its true label. The model is the project's own (``encoding.fit`` and
``train.fit_model`` on the training split, the default Hydra hyperparameters); its
probability of each row gives the ``probability`` and ``prediction`` columns.

    uv run invoke drift-study            # configs/monitoring/drift_study.yaml → reports/drift/
    python -m titanic_mlops.drift_study --quick --out /tmp/study
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import platform
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from titanic_mlops import data, encoding, schema
from titanic_mlops import drift_study_summary as summary
from titanic_mlops.monitoring import drift
from titanic_mlops.predictions import PREDICTION, PROBABILITY
from titanic_mlops.shifts import KINDS, NULL, shift_weights

STUDY_CONFIG = data.PROJECT_ROOT / "configs" / "monitoring" / "drift_study.yaml"
OUT_DIR = data.PROJECT_ROOT / "reports" / "drift"


@dataclass(frozen=True)
class StudyConfig:
    """configs/monitoring/drift_study.yaml (see its comments)."""

    seed: int
    sizes: tuple[int, ...]
    draws: int
    null_draws: int
    detect_rate: float
    workers: int
    baseline_methods: dict[str, str]
    shifts: dict[str, dict[str, Any]]
    targets: dict[str, float]

    @classmethod
    def load(cls, path: Path | str = STUDY_CONFIG, quick: bool = False) -> StudyConfig:
        """Read the config; ``quick``: its ``quick`` overrides and two magnitudes per kind."""
        values = yaml.safe_load(Path(path).read_text())
        quick_values = values.pop("quick")
        unknown = sorted(set(values["shifts"]) - set(KINDS))
        if unknown:
            raise ValueError(f"shifts.{unknown[0]}: unknown kind; expected {', '.join(KINDS)}")
        if quick:
            values.update(quick_values)
            for shift in values["shifts"].values():
                shift["magnitudes"] = [shift["magnitudes"][0], shift["magnitudes"][-1]]
        values["sizes"] = tuple(values["sizes"])
        return cls(**values)


@dataclass(frozen=True)
class Population:
    """The labelled rows with the model's probability and prediction for each."""

    frame: pd.DataFrame
    heldout: np.ndarray
    n_reference: int


def build_population() -> Population:
    """Train the project's model on the training split and score every labelled row."""
    import torch
    from hydra import compose, initialize_config_dir

    from titanic_mlops import train

    with initialize_config_dir(config_dir=train.CONFIG_DIR, version_base="1.3"):
        cfg = compose("config")
    records, y = data.load_raw(train.project_path(cfg.data.raw))
    parts = data.split(records, y, cfg.data.test_size, cfg.seed)
    prep = encoding.fit(parts.train)
    x_train = torch.from_numpy(encoding.encode(parts.train, prep))
    y_train = torch.from_numpy(parts.train_y.astype(np.float32))
    model, _ = train.fit_model(x_train, y_train, cfg.hyperparameters, cfg.seed)
    proba = model.predict_proba(torch.from_numpy(encoding.encode(records, prep))).numpy()
    frame = pd.DataFrame.from_records(records, columns=list(schema.FEATURES))
    frame[schema.TARGET] = y
    frame[PROBABILITY] = proba.astype(np.float64)
    frame[PREDICTION] = (proba >= schema.DECISION_THRESHOLD).astype(int)
    # split() hands out the very record objects it was given: identity marks the held-out rows
    test_ids = {id(r) for r in parts.test}
    heldout = np.array([id(r) in test_ids for r in records])
    return Population(frame=frame, heldout=heldout, n_reference=len(parts.train))


@dataclass(frozen=True)
class Cell:
    """``draws`` draws of one kind and magnitude at one current size."""

    kind: str
    magnitude: float
    n: int
    draws: int
    seed: np.random.SeedSequence


_STATE: dict[str, Any] = {}


def _init(population: Population, options: drift.DriftOptions, baseline: drift.DriftOptions):
    _STATE.update(population=population, options=options, baseline=baseline)


def _run_cell(cell: Cell) -> dict[str, Any]:
    pop: Population = _STATE["population"]
    frame, rng = pop.frame, np.random.default_rng(cell.seed)
    weights = shift_weights(frame, cell.kind, cell.magnitude)
    option_sets = {"configured": _STATE["options"]}
    if cell.kind == NULL:
        option_sets["evidently_default"] = _STATE["baseline"]
    out: dict[str, Any] = {
        tests: {"flags": dict.fromkeys(drift.DRIFT_COLUMNS, 0), "dataset": 0, "n_drifted": []}
        for tests in option_sets
    }
    stats = []
    for _ in range(cell.draws):
        reference = frame.iloc[rng.integers(0, len(frame), pop.n_reference)]
        current = frame.iloc[rng.choice(len(frame), cell.n, p=weights)]
        if cell.kind != NULL:
            stats.append(KINDS[cell.kind].statistic(current))
        for tests, options in option_sets.items():
            result = drift.compute_drift(reference, current, options)
            for name in result.drifted_columns:
                out[tests]["flags"][name] += 1
            out[tests]["dataset"] += result.dataset_drift
            out[tests]["n_drifted"].append(len(result.drifted_columns))
    return {"cell": cell, "results": out, "achieved": float(np.mean(stats)) if stats else None}


def _cells(config: StudyConfig) -> list[Cell]:
    specs = [(NULL, float("nan"), n, config.null_draws) for n in config.sizes]
    for kind, shift in config.shifts.items():
        specs += [
            (kind, float(m), n, config.draws) for m in shift["magnitudes"] for n in config.sizes
        ]
    seeds = np.random.SeedSequence(config.seed).spawn(len(specs))
    return [Cell(*spec, seed) for spec, seed in zip(specs, seeds, strict=True)]


def _map(cells: Sequence[Cell], state: tuple, workers: int) -> list[dict[str, Any]]:
    if workers <= 1:
        _init(*state)
        return [_run_cell(c) for c in cells]
    context = multiprocessing.get_context("spawn")  # no fork of a process that ran torch
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init, initargs=state
    ) as pool:
        return list(pool.map(_run_cell, cells))


def _cpu_seconds() -> float:
    t = os.times()  # this process and its reaped children (the worker pool)
    return t.user + t.system + t.children_user + t.children_system


def run_study(
    config: StudyConfig, out_dir: Path | str = OUT_DIR, started_at: float | None = None
) -> pd.DataFrame:
    """Run every cell, write study.csv, study.md, detection.png and accuracy.png; the table.

    ``started_at`` (Unix time, default now): when the command started, so that the run time
    in study.md includes the imports of torch and Evidently."""
    start = started_at or time.time()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    pop = build_population()
    options = drift.DriftOptions.load()
    baseline_tests = {
        name: dataclasses.replace(options.tests[name], method=method)
        for name, method in config.baseline_methods.items()
    }
    baseline = dataclasses.replace(options, tests={**options.tests, **baseline_tests})
    outcomes = _map(_cells(config), (pop, options, baseline), config.workers)
    table = summary.summarise(outcomes, config, pop)
    detect = summary.min_detectable(table[table.tests == "configured"], config, pop)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "study.csv", index=False, float_format="%.6g")
    from titanic_mlops import drift_study_report as report

    report.plot_detection(table, config, pop, out / "detection.png")
    report.plot_accuracy(table, config, pop, out / "accuracy.png")
    elapsed = time.time() - start
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{_cpu_seconds():.0f} s CPU (the process and its workers); 1-minute load average "
        f"{load:.1f} at the start, the machine is shared"
    )
    report.write_markdown(
        out / "study.md",
        table,
        detect,
        summary.verdicts(table, config, pop),
        config,
        pop,
        options,
        outcomes,
        elapsed=elapsed,
        machine=machine,
    )
    return table


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``[--quick] [--out DIR] [--config PATH] [--started-at UNIX_TIME]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few draws, 2 magnitudes per kind")
    parser.add_argument("--out", default=str(OUT_DIR), help="output folder")
    parser.add_argument("--config", default=str(STUDY_CONFIG), help="study config YAML")
    parser.add_argument("--started-at", type=float, help="Unix time the command started")
    args = parser.parse_args(argv)
    config = StudyConfig.load(args.config, quick=args.quick)
    table = run_study(config, args.out, args.started_at)
    print(f"{len(table)} rows written to {args.out}/study.csv, study.md, *.png")


if __name__ == "__main__":  # pragma: no cover - thin CLI
    main()
