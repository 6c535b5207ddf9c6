"""The model validation gate: a registered version is accepted only if every check passes.

    uv run invoke validate --ref staging [--storage URI]          (check only)
    uv run invoke promote --version N --gate [--notify]         (check, then move the alias)

Checks, each reported on one line:

1. integrity — every sha256 in the manifest verifies (nothing else runs on a tampered bundle);
2. onnx-vs-torch — ``model.onnx`` (what serving runs) and ``model.pt`` (loaded with
   ``weights_only=True``) agree on the held-out rows;
3. served-vs-onnx — what serving computes (the bundle's sealed linear form, or onnxruntime)
   agrees with onnxruntime on the held-out rows, one row at a time and as one batch;
4. floors — held-out accuracy and ROC AUC at or above the configured floors;
5. vs-production — no worse than the production model on the same rows by more than the margin;
6. latency — p95 of one-row predictions, as serving runs them, within budget.

The thresholds live in ``configs/validation.yaml`` (see :func:`load_policy`).
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from titanic_mlops import bundle, data, encoding, evaluation
from titanic_mlops.errors import one_line
from titanic_mlops.predictor import FAST_PATH_TOLERANCE, Predictor
from titanic_mlops.registry import Registry, RegistryError, alias_key
from titanic_mlops.storage import NotFound

POLICY_NAME = "validation"  # configs/validation.yaml
GATED_METRICS = ("accuracy", "roc_auc")
BASELINE_ALIAS = "production"


@dataclass(frozen=True)
class Policy:
    """The gate's thresholds (configs/validation.yaml)."""

    held_out: str
    min_accuracy: float
    min_roc_auc: float
    max_regression: float
    onnx_torch_tolerance: float
    latency_budget_ms: float
    latency_requests: int

    @property
    def held_out_path(self) -> Path:
        path = Path(self.held_out)
        return path if path.is_absolute() else data.PROJECT_ROOT / path

    def floor(self, metric: str) -> float:
        return float(getattr(self, f"min_{metric}"))


def load_policy(overrides: Sequence[str] = ()) -> Policy:
    """Compose ``configs/validation.yaml`` with Hydra (``overrides`` like ``min_accuracy=0.8``)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    config_dir = str(data.PROJECT_ROOT / "configs")
    with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
        cfg = OmegaConf.to_container(compose(POLICY_NAME, overrides=list(overrides)))
    assert isinstance(cfg, dict)
    names = {f.name for f in fields(Policy)}
    if set(cfg) != names:
        raise ValueError(f"configs/{POLICY_NAME}.yaml must set exactly {sorted(names)}")
    return Policy(**cfg)


@dataclass(frozen=True)
class Check:
    """One line of the verdict."""

    name: str
    passed: bool
    detail: str

    def __str__(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name:<15} {self.detail}"


@dataclass
class Report:
    """Every check run on one version; accepted only if all passed."""

    model: str
    ref: str
    version: int | None = None
    checks: list[Check] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def reasons(self) -> list[str]:
        """One line per failed check."""
        return [f"{c.name}: {c.detail}" for c in self.checks if not c.passed]

    def add(self, name: str, passed: bool, detail: str) -> bool:
        self.checks.append(Check(name, bool(passed), detail))
        return bool(passed)

    def show(self) -> bool:
        """Every check on stdout; if rejected, a header and one line per reason on stderr."""
        for check in self.checks:
            print(check)
        if self.accepted:
            print(f"ACCEPTED {self.model} {self.ref} (version {self.version})")
            return True
        print(f"REJECTED {self.model} {self.ref} (version {self.version}):", file=sys.stderr)
        for reason in self.reasons:
            print(f"  {reason}", file=sys.stderr)
        return False


def torch_probabilities(files: dict[str, bytes], x: np.ndarray) -> np.ndarray:
    """`model.pt` loaded with `weights_only=True` into a fresh model; probabilities of `x`."""
    import torch

    from titanic_mlops.model import LogisticRegressionModel

    state = torch.load(io.BytesIO(files[bundle.MODEL_STATE]), weights_only=True)
    model = LogisticRegressionModel(int(state["linear.weight"].shape[1]))
    model.load_state_dict(state)
    model.eval()
    return model.predict_proba(torch.from_numpy(x)).numpy().astype(np.float64)


def batch1_latency_ms(predictor: Predictor, records: Sequence[dict[str, Any]], n: int) -> float:
    """p95 (ms) of ``n`` one-row predictions cycling through ``records``, after a warm-up."""
    for record in records[:20]:
        predictor.probabilities([record])
    timings = np.empty(n)
    for i in range(n):
        record = records[i % len(records)]
        start = time.perf_counter()
        predictor.probabilities([record])
        timings[i] = time.perf_counter() - start
    return float(np.percentile(timings, 95) * 1000)


def baseline_version(registry: Registry, candidate: int) -> int | None:
    """The production version to compare with: the alias target, or, when the candidate *is*
    production already (the gate runs after a promotion), the version it replaced."""
    try:
        record = json.loads(registry.storage.read(alias_key(registry.model, BASELINE_ALIAS)))
    except NotFound:  # no production model yet
        return None
    current, previous = int(record["version"]), record.get("previous")
    if current != candidate:
        return current
    return int(previous) if previous is not None else None


def validate(registry: Registry, ref: str | int, policy: Policy) -> Report:
    """Run every check on ``ref`` (version, alias or ``latest``) of ``registry``."""
    report = Report(model=registry.model, ref=str(ref))
    try:
        report.version = registry.resolve(ref)
    except RegistryError as exc:
        report.add("resolve", False, str(exc))
        return report
    try:
        loaded = registry.load(report.version)
    except (RegistryError, bundle.BundleIntegrityError) as exc:
        report.add("integrity", False, str(exc))
        return report
    report.add("integrity", True, f"every sha256 verifies ({len(loaded.files)} files)")

    if not policy.held_out_path.is_file():
        report.add(
            "held-out rows",
            False,
            f"{policy.held_out_path} not found: run `uv run invoke preprocess-data` first",
        )
        return report
    records, y = data.read_records_csv(policy.held_out_path)
    try:
        reference = Predictor(loaded, backend="onnxruntime")
    except Exception as exc:  # onnxruntime's own exception types (InvalidProtobuf, Fail, …)
        report.add("onnx-vs-torch", False, f"onnxruntime cannot load model.onnx: {one_line(exc)}")
        return report
    p_onnx = reference.predict_proba(records).astype(np.float64)

    x = encoding.encode(records, loaded.preprocessing)
    gap = float(np.max(np.abs(p_onnx - torch_probabilities(loaded.files, x))))
    report.add(
        "onnx-vs-torch",
        gap <= policy.onnx_torch_tolerance,
        f"max |p_onnx - p_torch| = {gap:.2e} over {len(y)} held-out rows "
        f"(tolerance {policy.onnx_torch_tolerance:.0e})",
    )

    served = Predictor(loaded)
    one_by_one = np.array([served.probabilities([r])[0] for r in records])
    served_gap = float(
        max(
            np.max(np.abs(one_by_one - p_onnx)),
            np.max(np.abs(served.predict_proba(records) - p_onnx)),
        )
    )
    report.add(
        "served-vs-onnx",
        served_gap <= FAST_PATH_TOLERANCE,
        f"max |p_served - p_onnx| = {served_gap:.2e} over {len(y)} held-out rows, "
        f"one by one and batched (tolerance {FAST_PATH_TOLERANCE:.0e})",
    )

    scores = evaluation.classification_metrics(y, p_onnx)
    for metric in GATED_METRICS:
        floor = policy.floor(metric)
        report.add(
            f"{metric} floor",
            scores[metric] >= floor,
            f"held-out {metric} {scores[metric]:.4f} "
            f"{'>=' if scores[metric] >= floor else '<'} floor {floor:.4f}",
        )
    _compare_with_production(report, registry, records, y, scores, policy)

    latency = batch1_latency_ms(served, records, policy.latency_requests)
    report.add(
        "latency",
        latency <= policy.latency_budget_ms,
        f"batch-1 p95 {latency:.3f} ms "
        f"{'<=' if latency <= policy.latency_budget_ms else '>'} budget "
        f"{policy.latency_budget_ms:.3f} ms",
    )
    return report


def _compare_with_production(
    report: Report,
    registry: Registry,
    records: list[dict[str, Any]],
    y: np.ndarray,
    scores: dict[str, float],
    policy: Policy,
) -> None:
    assert report.version is not None
    base = baseline_version(registry, report.version)
    if base is None:
        report.add("vs-production", True, "no other production version to compare with")
        return
    try:
        production = registry.load(base)
    except (RegistryError, bundle.BundleIntegrityError) as exc:
        report.add("vs-production", False, f"cannot load production version {base}: {exc}")
        return
    p_base = Predictor(production, backend="onnxruntime").predict_proba(records)
    base_scores = evaluation.classification_metrics(y, p_base)
    for metric in GATED_METRICS:
        drop = base_scores[metric] - scores[metric]
        report.add(
            f"{metric} vs prod",
            drop <= policy.max_regression,
            f"{scores[metric]:.4f} vs production v{base} {base_scores[metric]:.4f} "
            f"(drop {drop:+.4f}, allowed {policy.max_regression:.4f})",
        )
