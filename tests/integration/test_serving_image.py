"""The serving image's dependency set, reproduced as a venv (no Docker engine here).

The venv is built with the `uv sync` arguments read from dockerfiles/api.dockerfile, so
the test follows the image when the Dockerfile changes.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import urllib.request

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

DOCKERFILE = ROOT / "dockerfiles" / "api.dockerfile"
MAX_VENV_MB = 300
HEAVY = ("torch", "evidently", "hydra", "wandb", "pandas", "sklearn")


def image_sync_args() -> list[str]:
    lines = re.findall(r"^RUN (uv sync [^\n]+)$", DOCKERFILE.read_text(), flags=re.MULTILINE)
    final = [line for line in lines if "--no-install-project" not in line]
    assert len(final) == 1, lines
    return shlex.split(final[0])[2:]


def dir_mb(path) -> float:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return total / 2**20


@pytest.fixture(scope="module")
def serving_venv(tmp_path_factory):
    uv = shutil.which("uv")
    assert uv, "uv is required (it is the project's installer)"
    venv = tmp_path_factory.mktemp("image") / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_COMPILE_BYTECODE": "1"}
    subprocess.run(
        [uv, "sync", "--quiet", *image_sync_args()], cwd=ROOT, env=env, check=True, timeout=600
    )
    return venv


def test_image_installs_only_the_serve_group():
    args = image_sync_args()
    assert "--locked" in args and "--no-default-groups" in args
    assert args[args.index("--group") + 1] == "serve"


def test_serving_venv_is_small_and_torch_free(serving_venv):
    python = serving_venv / "bin" / "python"
    for module in HEAVY:
        # -I: ignore PYTHONPATH and user site (coverage and pytest set up the parent's)
        proc = subprocess.run(
            [python, "-I", "-c", f"import {module}"], capture_output=True, text=True
        )
        assert proc.returncode != 0, f"{module} is importable in the serving venv"
        assert "ModuleNotFoundError" in proc.stderr
    where = subprocess.run(
        [python, "-c", "import titanic_mlops; print(titanic_mlops.__file__)"],
        capture_output=True,
        text=True,
        cwd="/",
        check=True,
    ).stdout
    assert where.startswith(str(serving_venv))  # installed into the venv, not editable
    size = dir_mb(serving_venv)
    print(f"serving venv: {size:.0f} MB")
    assert size <= MAX_VENV_MB


def test_service_runs_from_the_serving_venv(serving_venv, tmp_path, bucket, server_factory):
    app = tmp_path / "app"
    (app / "configs").mkdir(parents=True)
    shutil.copy(ROOT / "configs" / "serving.yaml", app / "configs" / "serving.yaml")
    shutil.copy(ROOT / "src" / "titanic_mlops" / "api" / "main.py", app / "main.py")
    env = {
        "STORAGE_URI": str(bucket),
        "SERVING_CONFIG": str(app / "configs" / "serving.yaml"),
        "PYTHONPATH": "",
    }
    server = server_factory(
        env, source=app / "main.py", executable=str(serving_venv / "bin" / "functions-framework")
    )
    body = json.dumps({"pclass": 1, "sex": "female", "age": 30}).encode()
    request = urllib.request.Request(server.url, data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        prediction = json.loads(response.read())
    assert prediction["model_version"] == 1
    assert prediction["predictions"][0]["survived"] == 1
    # the installed package (not the source tree) was served
    health = json.loads(urllib.request.urlopen(f"{server.url}/health", timeout=5).read())
    assert health["status"] == "ok"
