"""The images' dependency sets, reproduced as venvs (no Docker engine here).

Each venv is built with the `uv sync` arguments read from its Dockerfile, so the test follows
the image when the Dockerfile changes; the service is then started from that venv with the
image's own files and answers for real.
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
from titanic_mlops import traffic

pytestmark = pytest.mark.integration

IMAGES = {
    # image: (Dockerfile, groups, must not import, must import, size bound in MB)
    "api": ("api.dockerfile", ["serve"],
            ("torch", "evidently", "hydra", "wandb", "pandas", "sklearn"), ("onnxruntime",), 300),
    "drift": ("drift.dockerfile", ["serve-base", "drift"],
              ("torch", "hydra", "wandb", "onnx", "onnxruntime"), ("evidently", "pandas"), 1000),
}  # fmt: skip


def image_sync_args(dockerfile: str) -> list[str]:
    text = (ROOT / "dockerfiles" / dockerfile).read_text()
    lines = re.findall(r"^RUN (uv sync [^\n]+)$", text, flags=re.MULTILINE)
    final = [line for line in lines if "--no-install-project" not in line]
    assert len(final) == 1, lines
    return shlex.split(final[0])[2:]


def copied_files(dockerfile: str) -> dict[str, str]:
    """``COPY <source> <dest>`` lines of the final stage that bring repository files."""
    final_stage = (ROOT / "dockerfiles" / dockerfile).read_text().rsplit("\nFROM ", 1)[1]
    return dict(re.findall(r"^COPY (?!--from)(\S+) (\S+)$", final_stage, flags=re.MULTILINE))


def dir_mb(path) -> float:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return total / 2**20


@pytest.fixture(scope="module", params=sorted(IMAGES))
def image_venv(request, tmp_path_factory):
    name = request.param
    uv = shutil.which("uv")
    assert uv, "uv is required (it is the project's installer)"
    venv = tmp_path_factory.mktemp(f"image-{name}") / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_COMPILE_BYTECODE": "1"}
    args = image_sync_args(IMAGES[name][0])
    subprocess.run([uv, "sync", "--quiet", *args], cwd=ROOT, env=env, check=True, timeout=900)
    return name, venv


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_image_installs_only_its_groups(name):
    args = image_sync_args(IMAGES[name][0])
    assert "--locked" in args and "--no-default-groups" in args
    groups = [args[i + 1] for i, a in enumerate(args) if a == "--group"]
    assert groups == IMAGES[name][1]


def test_venv_has_what_the_image_needs_and_nothing_heavy(image_venv):
    name, venv = image_venv
    _, _, absent, present, max_mb = IMAGES[name]
    python = venv / "bin" / "python"
    for module in absent:
        # -I: ignore PYTHONPATH and user site (coverage and pytest set up the parent's)
        proc = subprocess.run(
            [python, "-I", "-c", f"import {module}"], capture_output=True, text=True
        )
        assert proc.returncode != 0, f"{module} is importable in the {name} venv"
        assert "ModuleNotFoundError" in proc.stderr
    for module in present:
        subprocess.run([python, "-I", "-c", f"import {module}"], check=True, timeout=120)
    where = subprocess.run(
        [python, "-c", "import titanic_mlops; print(titanic_mlops.__file__)"],
        capture_output=True, text=True, cwd="/", check=True,
    ).stdout  # fmt: skip
    assert where.startswith(str(venv))  # installed into the venv, not editable
    size = dir_mb(venv)
    print(f"{name} venv: {size:.0f} MB")
    assert size <= max_mb


def start_from_image_venv(name, venv, tmp_path, bucket, server_factory):
    """The service as the image starts it: its venv, its copied files, its target."""
    dockerfile = IMAGES[name][0]
    app = tmp_path / "app"
    for source, dest in copied_files(dockerfile).items():
        target = app / dest.removeprefix("./").removeprefix("/app/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / source, target)
    cmd = re.search(r"^CMD (\[.*\])$", (ROOT / "dockerfiles" / dockerfile).read_text(), re.M)
    argv = json.loads(cmd.group(1))
    target = argv[argv.index("--target") + 1]
    assert "--asgi" in argv
    env = {
        "STORAGE_URI": str(bucket),
        "SERVING_CONFIG": str(app / "configs" / "serving.yaml"),
        "DRIFT_CONFIG": str(app / "configs" / "monitoring" / "drift.yaml"),
        "PYTHONPATH": "",
    }
    return server_factory(
        env,
        target=target,
        source=app / "main.py",
        executable=str(venv / "bin" / "functions-framework"),
    )


def get_json(url: str, body: dict | None = None, timeout: float = 60) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def test_the_service_runs_from_its_image_venv(image_venv, tmp_path, bucket, server_factory):
    name, venv = image_venv
    if name == "drift":  # something to check: 200 logged predictions
        api = start_from_image_venv("api", venv, tmp_path / "api", bucket, server_factory)
        for record in traffic.draw(200, seed=1):
            get_json(f"{api.url}/", record)
        assert api.stop() == 0  # flushes the log
    server = start_from_image_venv(name, venv, tmp_path, bucket, server_factory)
    health = get_json(f"{server.url}/health")
    assert health["status"] == "ok" and health["model_version"] == 1
    if name == "api":
        prediction = get_json(server.url, {"pclass": 1, "sex": "female", "age": 30})
        assert prediction["predictions"][0]["survived"] == 1
    else:
        check = get_json(f"{server.url}/?n_latest=200")
        assert check["status"] == "ok" and check["n_current"] == 200
        assert check["report_uri"].endswith(".html")
