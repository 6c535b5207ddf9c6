"""The command-line entry points, run as a user runs them (subprocesses)."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def run(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def data_overrides(data_dirs) -> list[str]:
    return [
        f"data.processed_dir={data_dirs['processed']}",
    ]


def test_hydra_entry_point_trains_and_registers(tmp_path, data_dirs):
    storage = tmp_path / "bucket"
    run(
        "-m",
        "titanic_mlops.train",
        *data_overrides(data_dirs),
        f"registry.storage_uri={storage}",
        "wandb.mode=disabled",
        "hyperparameters.epochs=20",
        "registry.promote_to=staging",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    manifest = json.loads(
        (storage / "registry/titanic-logreg/versions/1/manifest.json").read_text()
    )
    assert manifest["config"]["hyperparameters"]["epochs"] == 20
    assert len(manifest["data_sha256"]) == 64
    alias = json.loads((storage / "registry/titanic-logreg/aliases/staging.json").read_text())
    assert alias["version"] == 1
    assert (tmp_path / "run" / ".hydra" / "overrides.yaml").exists()
    local = tmp_path / "run" / "bundle"
    assert (local / "model.onnx").read_bytes() == (
        storage / "registry/titanic-logreg/versions/1/model.onnx"
    ).read_bytes()


def test_invoke_quickstart_promote_versions_evaluate(tmp_path, data_dirs):
    storage = str(tmp_path / "bucket")
    wandb_dir = tmp_path / "wandb"
    out = run(
        "-m",
        "invoke",
        "quickstart",
        "--no-serve",
        "--storage",
        storage,
        "--overrides",
        f"wandb.mode=offline wandb.dir={wandb_dir}",
    ).stdout
    assert "model version : 1 (alias production, was None)" in out
    assert "torch model" in out and "sklearn baseline" in out
    # W&B ran offline with its files under the folder we gave it
    assert list(wandb_dir.glob("wandb/offline-run-*/run-*.wandb"))

    overrides = f"registry.storage_uri={storage} wandb.mode=disabled hyperparameters.epochs=10"
    run("-m", "invoke", "train", "--overrides", overrides)
    out = run("-m", "invoke", "promote", "--version", "2", "--storage", storage).stdout
    assert "production -> version 2 (was 1)" in out
    listing = run("-m", "invoke", "versions", "--storage", storage).stdout
    assert "production" in listing.splitlines()[3]  # version 2's row
    scores = run("-m", "invoke", "evaluate", "--storage", storage, "--ref", "1").stdout
    assert "version: 1" in scores and "accuracy: 0.8" in scores


def test_optuna_sweep_runs_offline(tmp_path, data_dirs):
    sweep_dir = tmp_path / "sweep"
    run(
        "-m",
        "titanic_mlops.train",
        "--multirun",
        "+hparams_search=optuna",
        "hydra.sweeper.n_trials=3",
        f"hydra.sweep.dir={sweep_dir}",
        "evaluation.cv_folds=2",
        *data_overrides(data_dirs),
    )
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["name"] == "optuna"
    assert set(results["best_params"]) == {
        "hyperparameters.lr",
        "hyperparameters.optimizer",
        "hyperparameters.epochs",
        "hyperparameters.weight_decay",
    }
    assert 0.5 < results["best_value"] <= 1.0


def test_quickstart_ends_by_serving_the_production_model(tmp_path):
    import signal
    import urllib.request

    from titanic_mlops.api.local_server import free_port, wait_http

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "quickstart", "--port", str(port), "--storage",
         str(tmp_path / "bucket"), "--overrides", "wandb.mode=disabled"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=120)
        health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/health").read())
        assert health["status"] == "ok" and health["model_version"] == 1
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert f"Serving the production model at http://127.0.0.1:{port}/" in out
    assert f"curl -s -X POST http://127.0.0.1:{port}/" in out
