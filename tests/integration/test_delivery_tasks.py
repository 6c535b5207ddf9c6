"""The delivery tasks as a user runs them: deploy's pre-flight check, promote --notify, the
training job (train → gate → alias), the W&B secret. GitHub and Secret Manager are loopback
servers speaking their HTTP contracts; the registry is a folder or fake-gcs-server."""

from __future__ import annotations

import base64
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from tests.conftest import ROOT, register_production
from titanic_mlops.delivery import dispatch, gcp, train_job, vertex
from titanic_mlops.registry import Registry
from titanic_mlops.storage import open_storage

pytestmark = pytest.mark.integration
MODEL = "titanic-logreg"


def invoke(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in gcp.PROJECT_ENV}
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**base, "GCLOUD": "/nonexistent/gcloud", **(env or {})},
    )  # fmt: skip


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every request with the class's status/body and records it."""

    status, body, seen = 204, b"", []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        type(self).seen.append((self.command, self.path, self.headers, self.rfile.read(length)))
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_POST = _answer  # noqa: N815 - http.server's naming

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[type[Recorder]]:
    handler = type("Handler", (Recorder,), {"seen": [], "status": 204, "body": b""})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler
    server.shutdown()
    server.server_close()


# --- invoke deploy ---------------------------------------------------------------------------


def test_deploy_refuses_without_a_production_model(tmp_path, trained):
    registry = Registry(open_storage(tmp_path / "bucket"), MODEL)
    registry.set_alias("staging", registry.register(trained.files))  # training only sets staging
    proc = invoke("deploy", "--project", "p", "--storage", str(tmp_path / "bucket"))
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: refusing to deploy: ")
    assert "no 'production' alias" in proc.stderr and proc.stderr.strip().count("\n") == 0


def test_deploy_checks_a_gcs_registry_then_runs_the_build(gcs_uri, trained):
    env = {"STORAGE_EMULATOR_HOST": os.environ["STORAGE_EMULATOR_HOST"]}
    refused = invoke("deploy", "--project", "p", "--storage", gcs_uri, env=env)
    assert refused.returncode == 1 and "no 'production' alias" in refused.stderr
    register_production(gcs_uri, trained.files)
    proc = invoke("deploy", "--project", "p", "--storage", gcs_uri, env=env)
    # past the check, it runs `gcloud builds submit`: here gcloud points nowhere
    assert f"{MODEL}:production -> version 1 in {gcs_uri}" in proc.stdout
    assert proc.returncode == 1 and "/nonexistent/gcloud not found" in proc.stderr


def test_deploy_without_a_project_prints_and_runs_nothing():
    proc = invoke("deploy", "--tag", "t1")
    assert proc.returncode == 0, proc.stderr
    assert "$ gcloud builds submit" in proc.stdout and "_TAG=t1" in proc.stdout
    assert "printed only, nothing run" in proc.stdout
    assert "titanic-api: public" in proc.stdout and "titanic-drift: private" in proc.stdout


def test_train_cloud_dry_run_submits_the_rendered_spec():
    proc = invoke("train-cloud", "--project", "p", "--tag", "t1", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("$ gcloud ai custom-jobs")]
    spec_file = line.split("--config=")[1]
    spec = vertex.to_proto(yaml.safe_load(Path(spec_file).read_text()))
    assert spec.worker_pool_specs[0].container_spec.image_uri.endswith("/p/titanic-mlops/train:t1")
    build = invoke("train-cloud", "--project", "p", "--build", "--dry-run")
    assert "--config=" + str(gcp.CLOUDBUILD_TRAIN) in build.stdout


# --- invoke promote --notify -----------------------------------------------------------------


def test_the_dispatch_is_the_event_model_registry_yaml_waits_for():
    workflow = yaml.safe_load(dispatch.WORKFLOW.read_text())
    on = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as True
    assert on["repository_dispatch"]["types"] == [dispatch.EVENT_TYPE]
    body = dispatch.payload(MODEL, "production", 3, 2)
    assert body["client_payload"]["alias"] == "production"
    # the workflow reads exactly that field to decide what to validate and whether to roll
    assert "github.event.client_payload.alias" in dispatch.WORKFLOW.read_text()


def test_promote_notify_sends_the_exact_dispatch(tmp_path, trained, http_server):
    storage = tmp_path / "bucket"
    registry = Registry(open_storage(storage), MODEL)
    first, second = registry.register(trained.files), registry.register(trained.files)
    registry.set_alias("production", first)
    env = {"GITHUB_API_URL": http_server.url, "GITHUB_TOKEN": "t0ken"}
    proc = invoke("promote", "--version", str(second), "--storage", str(storage), "--notify",
                  "--repo", "octo/titanic-mlops", env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    ((method, path, headers, body),) = http_server.seen
    assert (method, path) == ("POST", "/repos/octo/titanic-mlops/dispatches")
    assert headers["Authorization"] == "Bearer t0ken"
    assert headers["Accept"] == "application/vnd.github+json"
    assert headers["X-GitHub-Api-Version"] == dispatch.API_VERSION
    assert json.loads(body) == {
        "event_type": "model-registry-changed",
        "client_payload": {"model": MODEL, "alias": "production", "version": 2, "previous": 1},
    }


def test_promote_notify_without_a_token_moves_nothing(tmp_path, trained):
    storage = tmp_path / "bucket"
    registry = Registry(open_storage(storage), MODEL)
    version = registry.register(trained.files)
    env = {"GITHUB_TOKEN": "", "GITHUB_API_URL": "http://127.0.0.1:9"}
    proc = invoke("promote", "--version", str(version), "--storage", str(storage), "--notify",
                  "--repo", "octo/titanic-mlops", env=env)  # fmt: skip
    assert proc.returncode == 1 and proc.stderr.strip().count("\n") == 0
    assert "GITHUB_TOKEN is not set" in proc.stderr
    assert registry.aliases() == {}


def test_a_refused_dispatch_is_one_line(tmp_path, trained, http_server):
    http_server.status, http_server.body = 404, b'{"message": "Not Found"}'
    storage = tmp_path / "bucket"
    version = Registry(open_storage(storage), MODEL).register(trained.files)
    env = {"GITHUB_API_URL": http_server.url, "GITHUB_TOKEN": "t"}
    proc = invoke("promote", "--version", str(version), "--storage", str(storage), "--notify",
                  "--repo", "octo/titanic-mlops", env=env)  # fmt: skip
    assert proc.returncode == 1 and proc.stderr.strip().count("\n") == 0
    assert "GitHub answered 404" in proc.stderr and "model-registry workflow by hand" in proc.stderr


# --- the training job (Vertex AI, retrain workflow) -------------------------------------------


def run_train_job(tmp_path, data_dirs, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "titanic_mlops.delivery.train_job", "--alias", "staging", *extra,
         f"data.processed_dir={data_dirs['processed']}",
         f"registry.storage_uri={tmp_path / 'bucket'}", "wandb.mode=disabled",
         "evaluation.cv_folds=2"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "WANDB_API_KEY_SECRET": ""},
    )  # fmt: skip


def test_train_job_registers_gates_and_only_then_moves_the_alias(tmp_path, data_dirs):
    ok = run_train_job(tmp_path, data_dirs)
    assert ok.returncode == 0, ok.stderr[-2000:]
    registry = Registry(open_storage(tmp_path / "bucket"), MODEL)
    assert registry.aliases() == {"staging": 1} and "ACCEPTED" in ok.stdout

    rejected = run_train_job(
        tmp_path, data_dirs, "--gate", "min_roc_auc=0.99", "hyperparameters.epochs=5"
    )
    assert rejected.returncode == 1
    assert "roc_auc floor: held-out roc_auc" in rejected.stderr
    assert registry.versions() == [1, 2] and registry.aliases() == {"staging": 1}


def test_wandb_key_comes_from_the_secret(http_server):
    http_server.status = 200
    http_server.body = json.dumps(
        {"name": "x", "payload": {"data": base64.b64encode(b"k3y\n").decode()}}
    ).encode()
    name = "projects/p/secrets/wandb-api-key/versions/latest"
    env: dict[str, str] = {train_job.SECRET_ENV: name}
    assert train_job.wandb_key_from_secret(env, session=requests.Session(),
                                           endpoint=http_server.url)  # fmt: skip
    assert env["WANDB_API_KEY"] == "k3y"
    assert http_server.seen[0][:2] == ("GET", f"/{name}:access")


def test_an_unreadable_secret_means_wandb_offline(http_server, caplog):
    http_server.status = 404
    env: dict[str, str] = {train_job.SECRET_ENV: "projects/p/secrets/none/versions/latest"}
    assert not train_job.wandb_key_from_secret(env, session=requests.Session(),
                                               endpoint=http_server.url)  # fmt: skip
    assert "WANDB_API_KEY" not in env and "W&B offline" in caplog.text
