"""Hydra entry point: train, evaluate (held-out + CV, torch and sklearn), bundle, register.

python -m titanic_mlops.train hyperparameters.lr=0.001
python -m titanic_mlops.train +experiments=exp1
python -m titanic_mlops.train --multirun +hparams_search=optuna
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from titanic_mlops import (
    bundle,
    config_schema,
    data,
    encoding,
    evaluation,
    fingerprint,
    reuse,
    tracking,
)
from titanic_mlops.model import LogisticRegressionModel, model_files
from titanic_mlops.predictions import PROBABILITY  # the probability column of reference.csv
from titanic_mlops.registry import Registry
from titanic_mlops.storage import open_storage
from titanic_mlops.vcs import git_commit

log = logging.getLogger(__name__)

CONFIG_DIR = str(data.PROJECT_ROOT / "configs")
EpochCallback = Callable[[int, float], None]


def project_path(path: str | Path) -> Path:
    """Config paths are relative to the project root, wherever the command runs from."""
    p = Path(path)
    return p if p.is_absolute() else data.PROJECT_ROOT / p


def storage_uri(uri: str) -> str:
    """Relative local folders are relative to the project root; gs:// stays as it is."""
    return uri if uri.startswith("gs://") else str(project_path(uri))


def make_optimizer(params: Any, hp: DictConfig) -> torch.optim.Optimizer:
    """Adam or SGD as the hyperparameters say."""
    name = str(hp.optimizer).lower()
    if name == "adam":
        return torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
    raise ValueError(f"hyperparameters.optimizer must be 'adam' or 'sgd', got {hp.optimizer!r}")


def fit_model(
    x: torch.Tensor,
    y: torch.Tensor,
    hp: DictConfig,
    seed: int,
    on_epoch: EpochCallback | None = None,
) -> tuple[LogisticRegressionModel, list[float]]:
    """Train a fresh model with minibatch BCEWithLogitsLoss; return it and per-epoch mean loss.

    Seeded: the same data, hyperparameters and seed give the same weights.
    """
    torch.manual_seed(seed)
    model = LogisticRegressionModel(x.shape[1])
    optimizer = make_optimizer(model.parameters(), hp)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    # Shuffle by permuting the in-memory tensors and slicing batches: a DataLoader indexes
    # and collates sample by sample, which profiling showed to be ~75 % of an epoch here.
    generator = torch.Generator().manual_seed(seed)
    n, batch_size = len(y), int(hp.batch_size)
    history: list[float] = []
    model.train()
    for epoch in range(int(hp.epochs)):
        order = torch.randperm(n, generator=generator)
        xs, ys = x[order], y[order]
        total = torch.zeros(())
        for start in range(0, n, batch_size):
            xb, yb = xs[start : start + batch_size], ys[start : start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(yb)
        history.append(total.item() / n)
        if on_epoch is not None:
            on_epoch(epoch, history[-1])
    model.eval()
    return model, history


def fit_baseline(x: np.ndarray, y: np.ndarray, cfg: DictConfig) -> LogisticRegression:
    """scikit-learn LogisticRegression on exactly the same encoded features."""
    clf = LogisticRegression(C=cfg.evaluation.baseline_c, max_iter=cfg.evaluation.baseline_max_iter)
    return clf.fit(x, y)


def cross_validate(
    records: list[dict[str, Any]], y: np.ndarray, cfg: DictConfig
) -> dict[str, dict[str, float]]:
    """Stratified k-fold CV on the training split; preprocessing is refitted inside each fold."""
    folds = StratifiedKFold(n_splits=cfg.evaluation.cv_folds, shuffle=True, random_state=cfg.seed)
    per_fold: dict[str, list[dict[str, float]]] = {"model": [], "baseline": []}
    for k, (tr, va) in enumerate(folds.split(np.zeros(len(y)), y)):
        prep = encoding.fit([records[i] for i in tr])
        x_tr = encoding.encode([records[i] for i in tr], prep)
        x_va = encoding.encode([records[i] for i in va], prep)
        model, _ = fit_model(
            torch.from_numpy(x_tr),
            torch.from_numpy(y[tr].astype(np.float32)),
            cfg.hyperparameters,
            cfg.seed + k,
        )
        p_model = model.predict_proba(torch.from_numpy(x_va)).numpy()
        p_base = fit_baseline(x_tr, y[tr], cfg).predict_proba(x_va)[:, 1]
        per_fold["model"].append(evaluation.classification_metrics(y[va], p_model))
        per_fold["baseline"].append(evaluation.classification_metrics(y[va], p_base))
    return {name: evaluation.summarise_folds(scores) for name, scores in per_fold.items()}


@dataclass
class TrainResult:
    """What one training run produced."""

    metrics: dict[str, Any]
    files: dict[str, bytes]
    history: list[float]
    version: int | None = None
    bundle_uri: str | None = None
    reused: bool = False  # the registry already held this exact model: nothing was registered


def run(cfg: DictConfig) -> TrainResult:
    """Train, evaluate, bundle and (optionally) register; the body of the Hydra entry point.

    The config is checked first (:class:`~titanic_mlops.config_schema.ConfigError`): nothing
    runs, W&B included, on a bad value.
    """
    config_schema.check(cfg)
    processed = project_path(cfg.data.processed_dir)
    if not (processed / data.TRAIN_TENSORS).exists():
        log.info("no processed data at %s: preprocessing first", processed)
        data.preprocess(project_path(cfg.data.raw), processed, cfg.data.test_size, cfg.seed)
    train_set = data.titanic_dataset("train", processed)
    test_set = data.titanic_dataset("test", processed)
    prep = data.load_preprocessing(processed)
    x_train, y_train = train_set.tensors
    x_test, y_test = test_set.tensors

    run_ = tracking.start_run(cfg, project_path(cfg.wandb.dir))

    def on_epoch(epoch: int, loss: float) -> None:
        if run_ is not None:
            run_.log({"epoch": epoch, "train/loss": loss})
        if epoch % 25 == 0 or epoch == cfg.hyperparameters.epochs - 1:
            log.info("epoch %3d  loss %.4f", epoch, loss)

    model, history = fit_model(x_train, y_train, cfg.hyperparameters, cfg.seed, on_epoch)
    baseline = fit_baseline(x_train.numpy(), y_train.numpy(), cfg)
    y_test_np = y_test.numpy().astype(np.int64)
    metrics: dict[str, Any] = {
        "test": {
            "model": evaluation.classification_metrics(
                y_test_np, model.predict_proba(x_test).numpy()
            ),
            "baseline": evaluation.classification_metrics(
                y_test_np, baseline.predict_proba(x_test.numpy())[:, 1]
            ),
        },
        "n_train": len(train_set),
        "n_test": len(test_set),
    }
    train_records, train_y = data.read_records_csv(processed / data.TRAIN_RAW)
    metrics["cv"] = {
        "folds": cfg.evaluation.cv_folds,
        **cross_validate(train_records, train_y, cfg),
    }
    log.info("metrics: %s", metrics)

    files = {
        **model_files(model),
        bundle.PREPROCESSING: prep.to_json().encode(),
        bundle.METRICS: bundle.dumps(metrics),
        # the drift reference of this version: the rows it was trained on, as clients would
        # send them, their labels and this model's probabilities
        bundle.REFERENCE: data.records_csv(
            train_records, train_y, {PROBABILITY: model.predict_proba(x_train).numpy()}
        ),
    }
    result = TrainResult(metrics=metrics, files=files, history=history)
    if cfg.registry.register:
        _register(cfg, result, processed)
    if run_ is not None:
        tracking.log_result(
            run_, cfg, result.metrics, result.files, result.version, result.bundle_uri
        )
    return result


def _register(cfg: DictConfig, result: TrainResult, processed: Path) -> None:
    """Register the bundle, or reuse the version that holds exactly this model already."""
    storage = open_storage(storage_uri(cfg.registry.storage_uri))
    registry = Registry(storage, cfg.registry.model_name)
    config = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(config, dict)
    raw = project_path(cfg.data.raw)
    inputs = {"raw": raw, **{name: processed / name for name in data.TRAINING_INPUTS}}
    fp = fingerprint.compute(config, inputs)
    result.version, result.reused = reuse.register_once(
        registry,
        result.files,
        fp,
        git_commit=git_commit(),
        data_sha256=data.sha256_file(raw),
        config=config,
    )
    result.bundle_uri = registry.uri(result.version)
    if cfg.registry.promote_to:
        registry.set_alias(cfg.registry.promote_to, result.version)


def objective(result: TrainResult, path: str) -> float:
    """Look up a dotted metric path (e.g. ``cv.model.accuracy_mean``) for sweepers."""
    value: Any = result.metrics
    for part in path.split("."):
        value = value[part]
    return float(value)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> float:
    """Hydra entry point; writes the bundle into the run's output folder, returns the objective."""
    from hydra.core.hydra_config import HydraConfig

    try:
        config_schema.check(cfg)
    except config_schema.ConfigError as exc:
        _stop(exc)  # SystemExit passes through Hydra's job runner: no second report
    result = run(cfg)
    out = Path(HydraConfig.get().runtime.output_dir) / "bundle"
    out.mkdir(parents=True, exist_ok=True)
    for name, payload in result.files.items():
        (out / name).write_bytes(payload)
    if cfg.metrics_file:
        metrics_file = project_path(cfg.metrics_file)
        metrics_file.parent.mkdir(parents=True, exist_ok=True)
        metrics_file.write_bytes(result.files[bundle.METRICS])
    if result.reused:
        log.info("reused version %s at %s: nothing registered", result.version, result.bundle_uri)
    elif result.version is not None:
        log.info("registered version %s at %s", result.version, result.bundle_uri)
    return objective(result, cfg.objective)


def _stop(exc: Exception) -> None:
    """End the process with the config error as one line on stderr (exit 2)."""
    print(f"invalid config: {config_schema.describe(exc)}", file=sys.stderr)
    raise SystemExit(2) from None


def cli() -> None:
    """``python -m titanic_mlops.train``: Hydra's entry point; a bad config is one line, exit 2.

    Hydra re-raises a composition error (wrong type, unknown key) instead of printing its own
    multi-line report (``HYDRA_FULL_ERROR``), so it reads like a range error from
    :func:`main`. A user's own ``HYDRA_FULL_ERROR=1`` shows the full traceback instead.
    """
    debug = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        main()
    except config_schema.CONFIG_ERRORS as exc:
        if debug:
            raise
        _stop(exc)
    finally:
        if not debug:
            os.environ.pop("HYDRA_FULL_ERROR", None)


if __name__ == "__main__":
    cli()
