"""The drift study's outputs: detection and accuracy plots, the markdown report."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from titanic_mlops.drift_study import KINDS, NULL, Population, StudyConfig
from titanic_mlops.monitoring import drift


def _curve(table: pd.DataFrame, kind: str, n: int, rate: str, pop: Population) -> pd.DataFrame:
    """A kind's rows at size ``n`` with the unshifted draws as the no-shift point, sorted."""
    spec = KINDS[kind]
    unshifted = spec.unshifted(spec.statistic(pop.frame))
    null = table[(table.kind == NULL) & (table.n == n) & (table.tests == "configured")].copy()
    null["magnitude"] = unshifted
    if rate == "column_flagged":
        column = spec.column
        null["column_flagged"] = null[f"flag_{column}"]
    rows = pd.concat([table[(table.kind == kind) & (table.n == n)], null])
    return rows.sort_values("magnitude")


def plot_detection(table: pd.DataFrame, config: StudyConfig, pop: Population, path: Path) -> None:
    """Share of draws flagging the shifted column / declaring dataset drift, per kind."""
    kinds = list(config.shifts)
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 3.8), sharey=True)
    for ax, kind in zip(np.atleast_1d(axes), kinds, strict=True):
        shift = config.shifts[kind]
        for rate, color, what in (
            ("column_flagged", "C0", "shifted column flagged"),
            ("dataset_drift", "C3", "dataset drift"),
        ):
            for n, (style, marker) in zip(config.sizes, (("-", "o"), ("--", "s")), strict=False):
                curve = _curve(table, kind, n, rate, pop)
                ax.plot(
                    curve.magnitude,
                    curve[rate],
                    style,
                    color=color,
                    marker=marker,
                    ms=3.5,
                    mfc="white" if style != "-" else color,
                    label=f"{what}, n={n}",
                )
        ax.axhline(config.detect_rate, color="grey", lw=0.8, ls=":")
        ax.axhline(config.targets["column_false_alarm"], color="grey", lw=0.8, ls=":")
        ax.set_title(f"{kind} (column {KINDS[kind].column})")
        ax.set_xlabel(shift["label"])
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    first = np.atleast_1d(axes)[0]
    first.set_ylabel("share of draws")
    fig.legend(*first.get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=8)
    fig.suptitle(
        f"Drift detection vs shift ({config.draws} draws per point; reference "
        f"{pop.n_reference} rows, independent draw)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_accuracy(table: pd.DataFrame, config: StudyConfig, pop: Population, path: Path) -> None:
    """The model's accuracy and AUC on the shifted population, per kind."""
    kinds = list(config.shifts)
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 3.6), sharey=True)
    n = max(config.sizes)
    for ax, kind in zip(np.atleast_1d(axes), kinds, strict=True):
        curve = _curve(table, kind, n, "dataset_drift", pop)
        for metric, color in (("accuracy", "C0"), ("auc", "C2")):
            ax.plot(
                curve.magnitude,
                curve[metric],
                "-o",
                color=color,
                ms=3,
                label=f"{metric}, all {len(pop.frame)} rows",
            )
            ax.plot(
                curve.magnitude,
                curve[f"{metric}_heldout"],
                "--",
                color=color,
                label=f"{metric}, {int(pop.heldout.sum())} held-out rows",
            )
        ax.set_title(kind)
        ax.set_xlabel(config.shifts[kind]["label"])
        ax.grid(alpha=0.3)
    first = np.atleast_1d(axes)[0]
    first.set_ylabel("metric on the shifted population")
    fig.legend(*first.get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _pct(x: float) -> str:
    return "–" if pd.isna(x) else f"{x:.1%}"


def _num(x: float) -> str:
    return "–" if pd.isna(x) else f"{x:.3g}"


def _null_section(table: pd.DataFrame, config: StudyConfig, outcomes: Sequence[dict]) -> str:
    null = table[table.kind == NULL].set_index(["tests", "n"])
    sets = ("configured", "evidently_default")
    headers = ["column"] + [f"{s.replace('_', ' ')} n={n}" for s in sets for n in config.sizes]
    rows = [
        [name] + [_pct(null.loc[(s, n), f"flag_{name}"]) for s in sets for n in config.sizes]
        for name in drift.DRIFT_COLUMNS
    ]
    rows.append(
        ["**dataset drift**"]
        + [_pct(null.loc[(s, n), "dataset_drift"]) for s in sets for n in config.sizes]
    )
    counts = {
        o["cell"].n: np.array(o["results"]["configured"]["n_drifted"])
        for o in outcomes
        if o["cell"].kind == NULL
    }
    k_rows = [
        [f"≥ {k} of {len(drift.DRIFT_COLUMNS)}"]
        + [_pct(np.mean(counts[n] >= k)) for n in config.sizes]
        for k in range(1, 6)
    ]
    return (
        f"## False alarms with no shift ({config.null_draws} draws per size)\n\n"
        "Share of unshifted draws flagging each column. *configured*: the tests of "
        "`configs/monitoring/drift.yaml`; *evidently default*: the same draws with "
        + ", ".join(f"`{c}` tested by `{m}`" for c, m in config.baseline_methods.items())
        + " (Evidently 0.7's automatic choice for a reference of at most 1000 rows).\n\n"
        + _table(headers, rows)
        + "\n\nColumns flagged per unshifted draw (configured tests): the dataset-drift rule "
        "`drift_share` is a cut on this count.\n\n"
        + _table(["flagged"] + [f"n={n}" for n in config.sizes], k_rows)
    )


def _shift_section(table: pd.DataFrame, config: StudyConfig) -> str:
    big, small = max(config.sizes), min(config.sizes)
    parts = []
    for kind, shift in config.shifts.items():
        rows = []
        for m in shift["magnitudes"]:
            at = {
                n: table[(table.kind == kind) & (table.n == n) & (table.magnitude == m)].iloc[0]
                for n in config.sizes
            }
            r = at[big]
            rows.append(
                [
                    f"{m:g}",
                    _num(r.target),
                    _num(r.achieved),
                    f"{r.ess:.0f}",
                    _num(r.accuracy),
                    _num(r.auc),
                    _num(r.accuracy_heldout),
                    _num(r.auc_heldout),
                    _pct(r.column_flagged),
                    _pct(at[small].column_flagged),
                    _pct(r.dataset_drift),
                    _pct(at[small].dataset_drift),
                ]
            )
        headers = [
            shift["label"],
            "target",
            f"achieved (n={big} mean)",
            "ESS",
            "acc",
            "AUC",
            "acc held-out",
            "AUC held-out",
            f"{KINDS[kind].column} flagged n={big}",
            f"n={small}",
            f"dataset drift n={big}",
            f"n={small}",
        ]
        parts.append(f"### {kind}: {shift['label']}\n\n" + _table(headers, rows))
    return (
        f"## Shifts ({config.draws} draws per magnitude and size)\n\n"
        "*target*/*achieved*: the shifted statistic (mean age, share of women, mean fare, share "
        "of third class) of the reweighted population and its mean over the drawn samples; "
        "*ESS*: effective number of distinct rows of the reweighted population "
        "(1/Σw²); accuracy and AUC of the model on the reweighted population.\n\n"
        + "\n\n".join(parts)
    )


def write_markdown(
    path: Path,
    table: pd.DataFrame,
    detect: pd.DataFrame,
    verdicts: Sequence[tuple[str, bool]],
    config: StudyConfig,
    pop: Population,
    options: drift.DriftOptions,
    outcomes: Sequence[dict],
    elapsed: float,
    machine: str,
) -> None:
    """study.md: setup, verdicts, false alarms, shifts, minimum detectable shift, plots."""
    tests = _table(
        ["column", "method", "threshold"],
        [[name, f"`{t.method}`", f"{t.threshold:g}"] for name, t in options.tests.items()],
    )
    detect_rows = [
        [
            r.kind,
            config.shifts[r.kind]["label"],
            r.direction,
            r.n,
            _num(r.column_flagged),
            _num(r.dataset_drift),
        ]
        for r in detect.itertuples()
    ]
    sizes = ", ".join(map(str, config.sizes))
    at_least = math.ceil(options.drift_share * len(options.tests) - 1e-9)
    verdict_lines = "\n".join(f"- {'PASS' if ok else 'FAIL'}: {what}" for what, ok in verdicts)
    header = f"""# Drift check robustness study

Generated by `uv run invoke drift-study` on {dt.date.today().isoformat()} in {elapsed:.0f} s
({machine}; {config.workers} worker process(es)), evidently {version("evidently")}.
Config: `configs/monitoring/drift_study.yaml` (seed {config.seed}); drift tests:
`configs/monitoring/drift.yaml`.

**Setup.** The {len(pop.frame)} labelled rows are the population; every sample is an
independent draw from it with replacement. Reference: a fresh unshifted draw of the training
split's size ({pop.n_reference} rows) per draw; current: n ∈ {{{sizes}}} rows, unshifted or
reweighted so that one column moves (labels stay true). The model is the project's own,
trained on the training split with the default hyperparameters; its probability of each row
gives `probability` and `prediction`. Dataset drift: at least {options.drift_share:.0%} of the
{len(options.tests)} columns flagged (≥ {at_least}).

{tests}

## Verdict

{verdict_lines}"""
    footer = f"""## Minimum detectable shift

Smallest magnitude (in the kind's units) from which every stronger one is detected in at
least {config.detect_rate:.0%} of the draws: the shifted column flagged, or dataset drift
declared (– : not within the grid). Third class is shifted both down and up.

{_table(["kind", "magnitude", "direction", "n", "column flagged", "dataset drift"], detect_rows)}

## Plots

![detection rate against magnitude](detection.png)

![accuracy and AUC against magnitude](accuracy.png)

Accuracy and AUC over all {len(pop.frame)} rows include the model's own training rows; the
held-out curves use only the {int(pop.heldout.sum())} held-out rows, reweighted the same way
(never seen in training, but noisier).
Both are computed on the whole reweighted population, so they do not depend on n.
"""
    sections = [header, _null_section(table, config, outcomes), _shift_section(table, config)]
    path.write_text("\n\n".join([*sections, footer]))
