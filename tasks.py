"""Project tasks: `uv run invoke --list`.

The two commands a new user needs: `uv run invoke quickstart` and `uv run invoke test`.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path

from invoke import Context, task

ROOT = Path(__file__).resolve().parent
PY = sys.executable
DEFAULT_STORAGE = os.environ.get("STORAGE_URI", str(ROOT / "artifacts"))
MODEL_NAME = os.environ.get("MODEL_NAME", "titanic-logreg")
BIN = Path(sys.executable).parent
EXAMPLE = '{"pclass": 1, "sex": "female", "age": 29, "fare": 80, "embarked": "C"}'

os.environ.setdefault("UV_COMPILE_BYTECODE", "1")


def _overrides(text: str) -> str:
    return " ".join(shlex.quote(o) for o in shlex.split(text))


@task
def preprocess_data(c: Context) -> None:
    """Validate the raw CSV, split it and write data/processed + data/reference."""
    c.run(f"{PY} -m titanic_mlops.data", pty=False)


@task(help={"overrides": 'Hydra overrides, e.g. "hyperparameters.lr=0.001 seed=3"'})
def train(c: Context, overrides: str = "") -> None:
    """Train, evaluate, and register a bundle (Hydra entry point)."""
    c.run(f"{PY} -m titanic_mlops.train {_overrides(overrides)}", pty=False)


@task(help={"overrides": "extra Hydra overrides for every trial"})
def sweep(c: Context, overrides: str = "") -> None:
    """Offline Optuna sweep over lr, optimizer, epochs and weight decay; prints the best trial."""
    out = ROOT / "multirun" / time.strftime("%Y-%m-%d_%H-%M-%S")
    c.run(
        f"{PY} -m titanic_mlops.train --multirun +hparams_search=optuna "
        f"hydra.sweep.dir={out} {_overrides(overrides)}",
        pty=False,
    )
    print((out / "optimization_results.yaml").read_text())


@task(help={"ref": "version number, alias or 'latest'", "storage": "registry storage URI"})
def evaluate(c: Context, ref: str = "production", storage: str = DEFAULT_STORAGE) -> None:
    """Score a registered bundle with onnxruntime on the held-out split (as serving would)."""
    from titanic_mlops import data
    from titanic_mlops.evaluation import evaluate_version

    scores = evaluate_version(storage, MODEL_NAME, ref, data.PROCESSED_DIR / "test_raw.csv")
    for key, value in scores.items():
        print(f"{key:>10}: {value:.4f}" if isinstance(value, float) else f"{key:>10}: {value}")


@task(help={"version": "version to promote", "alias": "alias to move (production, staging)"})
def promote(
    c: Context, version: int = 0, alias: str = "production", storage: str = DEFAULT_STORAGE
) -> None:
    """Point an alias at a registered version (compare-and-swap)."""
    from titanic_mlops.registry import Registry
    from titanic_mlops.storage import open_storage

    if version < 1:
        raise SystemExit("--version N is required (a registered version number)")
    previous = Registry(open_storage(storage), MODEL_NAME).set_alias(alias, version)
    print(f"{MODEL_NAME}:{alias} -> version {version} (was {previous})")


@task
def versions(c: Context, storage: str = DEFAULT_STORAGE) -> None:
    """List registered versions with their metrics and aliases."""
    from titanic_mlops.registry import Registry
    from titanic_mlops.reporting import versions_table
    from titanic_mlops.storage import open_storage

    print(versions_table(Registry(open_storage(storage), MODEL_NAME).list_versions()))


def _serve_env(storage: str) -> dict[str, str]:
    return {"STORAGE_URI": storage, "PYTHONUNBUFFERED": "1"}


def _serve_cmd(port: int) -> str:
    from titanic_mlops.api.local_server import command

    return shlex.join(command(port))


def _serve(c: Context, storage: str, port: int, banner: bool = False) -> None:
    url = f"http://127.0.0.1:{port}"
    if banner:
        print(
            f"\nServing the production model at {url}/  (web page; Ctrl-C stops)\n"
            f"  curl -s -X POST {url}/ -H 'Content-Type: application/json' \\\n"
            f"       -d '{EXAMPLE}'\n"
            f"  curl -s {url}/health    curl -s {url}/metrics    curl -s {url}/openapi.json\n"
        )
    c.run(_serve_cmd(port), env=_serve_env(storage), pty=False)


@task(help={"storage": "registry storage URI", "port": "port on 127.0.0.1"})
def serve(c: Context, storage: str = DEFAULT_STORAGE, port: int = 8080) -> None:
    """Serve the production model with functions-framework on 127.0.0.1 (Ctrl-C stops)."""
    _serve(c, storage, port, banner=True)


@task(
    help={
        "url": "service URL",
        "json": "request body (default: one example passenger)",
    }
)
def predict(c: Context, url: str = "http://127.0.0.1:8080/", json: str = EXAMPLE) -> None:
    """POST a prediction request and print the answer."""
    import json as jsonlib
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url, data=json.encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            print(response.status, jsonlib.dumps(jsonlib.loads(response.read()), indent=2))
    except urllib.error.HTTPError as err:
        print(err.code, err.read().decode())
        raise SystemExit(1) from None


@task(
    help={
        "host": "service URL (default: start one on embedded defaults for the run)",
        "users": "concurrent simulated users",
        "spawn_rate": "users started per second",
        "run_time": "duration, e.g. 30s or 2m",
        "csv": "CSV output prefix",
    }
)
def load_test(
    c: Context,
    host: str = "",
    users: int = 20,
    spawn_rate: int = 10,
    run_time: str = "30s",
    csv: str = "reports/locust/run",
    storage: str = DEFAULT_STORAGE,
) -> None:
    """Headless locust run (single, batch and health requests) with CSV output."""

    from titanic_mlops.api.local_server import LocalServer

    Path(csv).parent.mkdir(parents=True, exist_ok=True)
    server = None
    if not host:
        server = LocalServer(_serve_env(storage)).wait()
        host = server.url
    try:
        c.run(
            f"{BIN}/locust -f {ROOT}/tests/performancetests/locustfile.py --headless "
            f"-u {users} -r {spawn_rate} -t {run_time} --host {host} --csv {csv} "
            "--only-summary",
            pty=False,
        )
    finally:
        if server is not None:
            server.stop()
    print(f"CSV written to {csv}_stats.csv, {csv}_failures.csv, {csv}_stats_history.csv")


@task
def profile(c: Context) -> None:
    """cProfile + torch.profiler over a training run; prints epoch time."""
    c.run(f"{PY} profiling/profile_training.py", pty=False)


@task(help={"quick": "few draws, 2 magnitudes per shift (a smoke run)", "out": "output folder"})
def drift_study(c: Context, quick: bool = False, out: str = "reports/drift") -> None:
    """Drift-check robustness study: false alarms, detection and accuracy under shifts."""
    flags = f"--out {shlex.quote(out)} --started-at {time.time()}" + " --quick" * quick
    c.run(f"{PY} -m titanic_mlops.drift_study {flags}", pty=False)


@task(help={"args": "extra pytest arguments", "cov": "report coverage (default on)"})
def test(c: Context, args: str = "", cov: bool = True) -> None:
    """Run the whole test suite with coverage."""
    cov_args = "--cov=titanic_mlops --cov-report=term-missing:skip-covered" if cov else ""
    c.run(f"{PY} -m pytest --durations=8 {cov_args} {args}", pty=False)


@task
def lint(c: Context) -> None:
    """ruff check + ruff format --check."""
    c.run(f"{PY} -m ruff check .", pty=False)
    c.run(f"{PY} -m ruff format --check .", pty=False)


@task(
    help={
        "storage": "registry storage URI (folder or gs://bucket/prefix)",
        "overrides": "extra Hydra overrides for training",
        "serve": "serve the production model afterwards (--no-serve returns instead)",
        "port": "port for the service",
    }
)
def quickstart(
    c: Context,
    storage: str = DEFAULT_STORAGE,
    overrides: str = "",
    serve: bool = True,
    port: int = 8080,
) -> None:
    """The main job on embedded defaults: preprocess, train, register, promote, serve."""
    import logging

    from hydra import compose, initialize_config_dir

    from titanic_mlops import data
    from titanic_mlops import train as train_mod
    from titanic_mlops.registry import Registry
    from titanic_mlops.reporting import summary_table
    from titanic_mlops.storage import open_storage

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    start = time.perf_counter()
    data.preprocess()
    with initialize_config_dir(config_dir=train_mod.CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "config", overrides=[f"registry.storage_uri={storage}", *shlex.split(overrides)]
        )
    result = train_mod.run(cfg)
    registry = Registry(open_storage(train_mod.storage_uri(storage)), cfg.registry.model_name)
    previous = registry.set_alias("production", result.version)
    elapsed = time.perf_counter() - start
    print()
    print(summary_table(result.version, result.metrics, result.bundle_uri, previous))
    print(f"preprocess + train + evaluate + register: {elapsed:.1f} s")
    if serve:
        _serve(c, storage, port, banner=True)
