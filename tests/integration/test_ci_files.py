"""Workflows and images read as a real run would execute them (no GitHub, no Docker engine here).

Shell steps are extracted from the workflow files and run with bash; the image check runs
against the real docker CLI (no daemon: no image) and against small stand-ins for the three
answers a daemon can give.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
DOCKERFILES = sorted((ROOT / "dockerfiles").glob("*.dockerfile"))


def workflow(name: str) -> dict:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as True
    return doc


def step(name: str, job: str, match: str) -> dict:
    (found,) = [s for s in workflow(name)["jobs"][job]["steps"] if match in (s.get("name") or "")]
    return found


def bash(script: str, env: dict[str, str], path: str | None = None) -> subprocess.CompletedProcess:
    environment = {
        "PATH": path or os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        **env,
    }
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=environment,
                          timeout=60)  # fmt: skip


# --- .dockerignore ------------------------------------------------------------------------------


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: patterns from the context root, ``**`` spans folders, a match on a parent
    folder excludes what is inside, ``!`` re-includes, the last match wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, c) for c in candidates):
            excluded = not negate
    return excluded


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize(
    "path",
    [".venv/lib/python3.11/site.py", "wandb/offline-run-1/run.wandb", "artifacts/registry/x",
     ".git/HEAD", "src/titanic_mlops/__pycache__/x.cpython-311.pyc", "data/processed/train.pt",
     "reports/locust/run_stats.csv", "outputs/2024/x", "multirun/x", "rendered/api.yaml",
     ".pytest_cache/v", "site/index.html", ".stack/prometheus-data/wal/0"],
)  # fmt: skip
def test_local_run_outputs_stay_out_of_the_build_context(path):
    assert dockerignored(path, dockerignore_patterns())


def copied_sources(dockerfile: Path) -> set[str]:
    """Context paths the Dockerfile COPYs (not from other stages or images)."""
    out = set()
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            out.update(line.split()[1:-1])
    return out


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_what_the_dockerfiles_copy_stays_in_the_context(dockerfile):
    patterns = dockerignore_patterns()
    sources = copied_sources(dockerfile)
    assert sources
    for source in sources:
        files = [source] if (ROOT / source).is_file() else [
            p.relative_to(ROOT).as_posix() for p in (ROOT / source).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        ]  # fmt: skip
        assert files, source
        assert not [f for f in files if dockerignored(f, patterns)], source


def test_the_matcher_follows_docker_semantics():
    assert dockerignored("wandb/x", ["wandb"]) and not dockerignored("src/wandb", ["wandb"])
    assert dockerignored("a/b/__pycache__/c", ["**/__pycache__"])
    assert not dockerignored("data/raw/x.csv", ["data", "!data/raw"])


# --- uv's cache in image layers ---------------------------------------------------------------


def cache_leaks(text: str) -> list[str]:
    """RUN lines of the final stage that leave uv's download cache in a layer."""
    final = re.split(r"^FROM .*$", text, flags=re.M)[-1]
    no_cache = re.search(r"UV_NO_CACHE=1", final) is not None
    leaks = []
    for run in re.findall(r"^RUN (.+(?:\\\n.+)*)", final, flags=re.M):
        installs = re.search(r"\buv (sync|pip install|add)\b", run)
        cleaned = "--mount=type=cache" in run or "uv cache clean" in run
        if installs and not (cleaned or no_cache):
            leaks.append(run)
    return leaks


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_no_image_keeps_uvs_download_cache(dockerfile):
    assert cache_leaks(dockerfile.read_text()) == []


def test_the_cache_check_catches_the_old_training_image():
    old = "FROM python:3.11-slim\nENV UV_LINK_MODE=copy\nRUN uv sync --locked --group train\n"
    assert cache_leaks(old) == ["uv sync --locked --group train"]
    multi = (
        "FROM python AS build\nRUN uv sync\nFROM python\nCOPY --from=build /opt/venv /opt/venv\n"
    )
    assert cache_leaks(multi) == []  # only the final stage ships


# --- images.yaml --------------------------------------------------------------------------------


def test_every_dockerfile_is_built_and_loaded():
    job = workflow("images.yaml")["jobs"]["build"]
    assert set(job["strategy"]["matrix"]["image"]) >= {p.stem for p in DOCKERFILES} | {"drift"}
    assert "--load" in step("images.yaml", "build", "Build")["run"]


def shim(folder: Path, script: str) -> str:
    docker = folder / "docker"
    docker.write_text("#!/bin/bash\n" + script)
    docker.chmod(docker.stat().st_mode | stat.S_IEXEC)
    return f"{folder}:{os.environ['PATH']}"


NO_TORCH = "echo \"ModuleNotFoundError: No module named 'torch'\" >&2; exit 1"
DAEMON = {
    "missing image": 'if [ "$1 $2" = "image inspect" ]; then echo "Error: No such image" >&2; '
    "exit 1; fi; echo \"Unable to find image 'titanic-api:ci' locally\" >&2; exit 125",
    "torch importable": 'exit 0',
    "torch absent": f'if [ "$1" = run ]; then {NO_TORCH}; fi; exit 0',
    "another failure": 'if [ "$1" = run ]; then echo "exec format error" >&2; exit 1; fi; exit 0',
}  # fmt: skip


@pytest.mark.parametrize("case", list(DAEMON))
def test_the_no_torch_check_passes_only_on_module_not_found(case, tmp_path):
    script = step("images.yaml", "build", "no torch")["run"]
    proc = bash(script, {"IMAGE": "api"}, path=shim(tmp_path, DAEMON[case]))
    assert (proc.returncode == 0) == (case == "torch absent"), proc.stdout + proc.stderr


def test_the_no_torch_check_fails_with_the_real_docker_cli_and_no_image(tmp_path):
    if not shutil.which("docker"):
        pytest.skip("docker CLI not installed")
    script = step("images.yaml", "build", "no torch")["run"]
    env = {"IMAGE": "api", "DOCKER_HOST": f"unix://{tmp_path}/no-daemon.sock"}
    assert bash(script, env).returncode != 0
    old = 'if docker run --rm --entrypoint python titanic-api:ci -c "import torch"; then exit 1; fi'
    assert bash(old, env).returncode == 0  # what the old check did: pass on nothing


def test_images_are_pushed_on_main_only_with_workload_identity():
    push = step("images.yaml", "build", "Push to Artifact Registry")
    assert push["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert "docker push" in push["run"] and "${SHA:0:12}" in push["run"]
    steps = workflow("images.yaml")["jobs"]["build"]["steps"]
    auth = [s for s in steps if s.get("uses", "").startswith("google-github-actions/auth@")]
    assert auth and auth[0]["if"] == push["if"]


# --- retrain.yaml and model-registry.yaml -------------------------------------------------------


GUARDED = [("retrain.yaml", "retrain"), ("model-registry.yaml", "validate-and-roll")]
URIS = [("", False), ("artifacts", False), ("/tmp/reg", False), ("gs://", False),
        ("gs://bucket/titanic", True)]  # fmt: skip


@pytest.mark.parametrize(("name", "job"), GUARDED)
@pytest.mark.parametrize(("uri", "ok"), URIS)
def test_a_registry_outside_gcs_fails_first(name, job, uri, ok):
    steps = workflow(name)["jobs"][job]["steps"]
    assert steps[0]["name"] == "Require a gs:// registry"
    proc = bash(steps[0]["run"], {"STORAGE_URI": uri})
    assert (proc.returncode == 0) == ok, proc.stdout


def test_secrets_reach_only_the_step_that_needs_them():
    for path in sorted(WORKFLOWS.glob("*.yaml")):
        doc = workflow(path.name)
        assert "secrets." not in yaml.safe_dump(doc.get("env", {})), path.name
        for name, job in doc["jobs"].items():
            assert "secrets." not in yaml.safe_dump(job.get("env", {})), (path.name, name)
    users = [s for s in workflow("retrain.yaml")["jobs"]["retrain"]["steps"]
             if "WANDB_API_KEY" in (s.get("env") or {})]  # fmt: skip
    assert [s["name"] for s in users] == ["Train, register, validate, then move staging"]


def test_retrain_gates_before_any_alias_moves():
    text = (WORKFLOWS / "retrain.yaml").read_text()
    assert "promote_to" not in text  # no alias set by training itself
    train = step("retrain.yaml", "retrain", "Train, register, validate")
    assert train["run"].endswith("python -m titanic_mlops.delivery.train_job --alias staging")


def test_model_registry_validates_before_rolling():
    names = [
        s.get("name") or s.get("uses") or s["run"]
        for s in workflow("model-registry.yaml")["jobs"]["validate-and-roll"]["steps"]
    ]
    assert names.index("Validation gate") < names.index("Roll a new Cloud Run revision")
    gate = step("model-registry.yaml", "validate-and-roll", "Validation gate")
    assert 'invoke validate --ref "$ALIAS"' in gate["run"]


# --- tests, load test, docs ----------------------------------------------------------------------


def test_unit_tests_run_on_every_os_and_the_rest_on_linux():
    jobs = workflow("tests.yaml")["jobs"]
    matrix = jobs["unit"]["strategy"]["matrix"]
    assert set(matrix["os"]) == {"ubuntu-latest", "macos-latest", "windows-latest"}
    assert matrix["python"] == ["3.11", "3.12", "3.13"]
    assert jobs["unit"]["steps"][-1]["run"] == "uv run invoke test --args tests/unit"
    assert jobs["full"]["runs-on"] == "ubuntu-latest"
    assert jobs["full"]["steps"][-1]["run"] == ".ci/run"


def test_the_load_test_uploads_the_csv_it_writes():
    steps = workflow("load-test.yaml")["jobs"]["locust"]["steps"]
    run = next(s["run"] for s in steps if "invoke load-test" in s.get("run", ""))
    csv = run.split("--csv ")[1].split()[0]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert fnmatch.fnmatch(csv, upload["with"]["path"].rstrip("/") + "/*")


def test_docs_are_built_strictly_and_published_from_main():
    jobs = workflow("docs.yaml")["jobs"]
    assert any(s.get("run", "").endswith("mkdocs build --strict") for s in jobs["build"]["steps"])
    assert jobs["publish"]["steps"][-1]["uses"].startswith("actions/deploy-pages@")
    assert jobs["publish"]["permissions"] == {"pages": "write", "id-token": "write"}
