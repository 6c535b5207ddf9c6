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

    # quickstart again, same inputs: version 1 is reused, nothing is registered, and the
    # manual promotion of version 2 stands
    out = run(
        "-m", "invoke", "quickstart", "--no-serve", "--storage", storage,
        "--overrides", f"wandb.mode=offline wandb.dir={wandb_dir}",
    ).stdout  # fmt: skip
    assert "model version : 1 (reused version 1 (same data, config, seed and code); " in out
    assert "production stays at version 2" in out
    versions = tmp_path / "bucket/registry/titanic-logreg/versions"
    assert sorted(p.name for p in versions.iterdir()) == ["1", "2"]
    alias = json.loads(
        (tmp_path / "bucket/registry/titanic-logreg/aliases/production.json").read_text()
    )
    assert alias["version"] == 2


def test_quickstart_does_not_promote_a_model_below_the_floors(tmp_path):
    storage = tmp_path / "bucket"
    weak = "hyperparameters.epochs=1 hyperparameters.lr=1e-5 hyperparameters.optimizer=sgd"
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "quickstart", "--no-serve", "--storage", str(storage),
         "--overrides", f"wandb.mode=disabled {weak} hyperparameters.momentum=0"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no production model to serve: gate rejected version 1 (")
    assert "accuracy floor: held-out accuracy 0.3966 < floor 0.7700" in last
    assert "Traceback" not in proc.stderr
    assert "  gate FAIL  accuracy floor" in proc.stdout
    assert (storage / "registry/titanic-logreg/versions/1/manifest.json").is_file()
    assert not (storage / "registry/titanic-logreg/aliases").exists()


def test_promote_refuses_a_tampered_version(tmp_path, trained):
    from titanic_mlops.registry import Registry
    from titanic_mlops.storage import open_storage

    storage = tmp_path / "bucket"
    registry = Registry(open_storage(storage), "titanic-logreg")
    intact, tampered = registry.register(trained.files), registry.register(trained.files)
    onnx = storage / f"registry/titanic-logreg/versions/{tampered}/model.onnx"
    onnx.write_bytes(onnx.read_bytes().replace(b"probability", b"probabilitz"))
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "promote", "--version", str(tampered),
         "--storage", str(storage)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"error: not promoting version 2: {storage}/registry/titanic-logreg/versions/2: "
        f"model.onnx has sha256 {bundle_sha(onnx.read_bytes())[:12]}…, manifest says "
        f"{bundle_sha(trained.files['model.onnx'])[:12]}…; the bundle was modified after "
        "registration: refusing to load it"
    ]
    assert not (storage / "registry/titanic-logreg/aliases").exists()
    out = run("-m", "invoke", "promote", "--version", str(intact), "--storage", str(storage))
    assert "production -> version 1 (was None)" in out.stdout


def bundle_sha(data: bytes) -> str:
    from titanic_mlops.bundle import sha256

    return sha256(data)


def test_optuna_sweep_runs_offline(tmp_path, data_dirs):
    """`invoke sweep`'s command, smaller: it works, and prints no alembic plugin noise."""
    sweep_dir = tmp_path / "sweep"
    proc = run(
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
    output = proc.stdout + proc.stderr
    assert "Best value" in output  # Hydra's own INFO lines still show
    assert "alembic" not in output and "setup plugin" not in output


def test_quickstart_ends_by_serving_the_production_model(tmp_path):
    import signal
    import threading
    import urllib.request

    from titanic_mlops.api.local_server import free_port

    port = free_port()
    banner = f"Serving the production model at http://127.0.0.1:{port}/"
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "quickstart", "--port", str(port), "--storage",
         str(tmp_path / "bucket"), "--overrides", "wandb.mode=disabled"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    shown = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if banner in line:
                shown.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # the banner is the user's signal that the page is up: wait for it, not for the port
        # (a stop sent while quickstart is still polling /health rightly prints no banner)
        assert shown.wait(timeout=120), "".join(lines)
        health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/health").read())
        assert health["status"] == "ok" and health["model_version"] == 1
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        reader.join(timeout=10)
    out = "".join(lines)
    assert f"curl -s -X POST http://127.0.0.1:{port}/" in out


def test_drift_check_says_when_there_is_no_html_report_to_write(bucket, tmp_path):
    page = tmp_path / "report.html"
    proc = run("-m", "invoke", "drift-check", "-n", "500", "--storage", str(bucket),
               "--html", str(page))  # fmt: skip
    assert "no HTML report written: the check's status is insufficient_data" in proc.stdout
    assert not page.exists()
