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
    version: int | None, metrics: dict[str, Any], bundle_uri: str | None, alias_note: str
) -> str:
    """The quickstart summary: version, what happened to the alias, metrics, bundle location."""
    folds = metrics["cv"]["folds"]
    head = [
        f"model version : {version} ({alias_note})",
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


def drift_table(summary: dict[str, Any]) -> str:
    """A drift check's answer: one row per column, then the verdict and the window."""
    if summary.get("status") != "ok":
        return (
            f"{summary.get('status')}: {summary.get('n_current')} records logged, "
            f"at least {summary.get('min_records')} needed"
        )
    rows = [["column", "method", "score", "threshold", "drifted"]]
    for name, column in summary["columns"].items():
        rows.append([name, column["method"], f"{column['score']:.4g}",
                     f"{column['threshold']:g}", "yes" if column["drifted"] else ""])  # fmt: skip
    verdict = "DRIFT" if summary["dataset_drift"] else "no drift"
    window = summary.get("window") or {}
    lines = [
        _rows_to_text(rows),
        "",
        f"dataset: {verdict} (drift share {summary['drift_share']:.2f}; "
        f"{len(summary['drifted_columns'])} of {len(summary['columns'])} columns)",
        f"rows: {summary['n_current']} logged (window {window.get('from')} .. {window.get('to')}, "
        f"model versions {summary.get('model_versions')}) vs {summary['n_reference']} reference "
        f"rows of version {summary.get('model_version')}",
    ]
    if summary.get("report_uri"):
        lines.append(f"report: {summary['report_uri']}")
    return "\n".join(lines)
