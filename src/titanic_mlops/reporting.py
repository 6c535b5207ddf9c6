"""Plain-text tables for the command line (quickstart summary, registry listing)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from titanic_mlops.registry import VersionInfo


def _rows_to_text(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def metrics_rows(metrics: dict[str, Any]) -> list[list[str]]:
    """Held-out and CV metrics of the model and the sklearn baseline, one row each."""
    rows = [["", "test acc", "test AUC", "test logloss", "CV acc", "CV AUC", "CV logloss"]]
    for who, label in (("model", "torch model"), ("baseline", "sklearn baseline")):
        test, cv = metrics["test"][who], metrics["cv"][who]
        rows.append(
            [
                label,
                f"{test['accuracy']:.4f}",
                f"{test['roc_auc']:.4f}",
                f"{test['log_loss']:.4f}",
                f"{cv['accuracy_mean']:.4f} ± {cv['accuracy_std']:.4f}",
                f"{cv['roc_auc_mean']:.4f} ± {cv['roc_auc_std']:.4f}",
                f"{cv['log_loss_mean']:.4f} ± {cv['log_loss_std']:.4f}",
            ]
        )
    return rows


def summary_table(
    version: int | None, metrics: dict[str, Any], bundle_uri: str | None, previous: int | None
) -> str:
    """The quickstart summary: version, alias move, metrics, bundle location."""
    folds = metrics["cv"]["folds"]
    head = [
        f"model version : {version} (alias production, was {previous})",
        f"bundle        : {bundle_uri}",
        f"data          : {metrics['n_train']} train / {metrics['n_test']} held-out rows; "
        f"CV = {folds}-fold stratified on the train split",
    ]
    return "\n".join(head) + "\n\n" + _rows_to_text(metrics_rows(metrics))


def versions_table(versions: Sequence[VersionInfo]) -> str:
    """One row per registered version."""
    if not versions:
        return "no registered versions"
    rows = [["version", "created", "aliases", "test acc", "CV acc", "CV AUC", "uri"]]
    for v in versions:
        rows.append(
            [
                str(v.version),
                v.created_at,
                ",".join(v.aliases) or "-",
                f"{v.metrics['test']['model']['accuracy']:.4f}",
                f"{v.metrics['cv']['model']['accuracy_mean']:.4f}",
                f"{v.metrics['cv']['model']['roc_auc_mean']:.4f}",
                v.uri,
            ]
        )
    return _rows_to_text(rows)
