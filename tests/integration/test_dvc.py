"""The DVC pipeline: its lists match the code, and the real `dvc` reproduces it in a fresh repo.

The dynamic tests copy the pipeline files, the code, the configs and the raw CSV into a new
folder with `git init`, put that copy of the package first on PYTHONPATH (so the stages
write there, not here), and run `invoke repro` and `dvc` as a user would.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from titanic_mlops import config_schema, data, fingerprint

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
RAW = "data/raw/Titanic-Dataset.csv"
PIPELINE = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
COPIED = ["dvc.yaml", "dvc.lock", ".dvc/config", ".dvcignore", ".gitignore", "tasks.py",
          "pyproject.toml", "configs", "src", RAW, "reports/metrics"]  # fmt: skip


def paths(entries: list) -> list[str]:
    """dvc.yaml entries (a path, or {path: options}) as paths."""
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries]


def sources(module: str) -> set[str]:
    return {
        fingerprint.module_path(m).relative_to(ROOT).as_posix()
        for m in fingerprint.training_modules(module)
    }


# --- the lists in dvc.yaml, derived from the code ----------------------------------------


def test_preprocess_writes_exactly_its_outs(data_dirs):
    outs = paths(PIPELINE["preprocess"]["outs"])
    assert outs == [f"data/processed/{name}" for name in data.PROCESSED_FILES]
    assert sorted(p.name for p in data_dirs["processed"].iterdir()) == sorted(data.PROCESSED_FILES)


def test_preprocess_depends_on_the_raw_csv_its_code_and_its_params():
    stage = PIPELINE["preprocess"]
    deps = set(stage["deps"])
    assert deps == {RAW} | sources("titanic_mlops.data")
    (params,) = stage["params"]
    assert params == {"configs/config.yaml": ["data.raw", "data.processed_dir",
                                              "data.test_size", "seed"]}  # fmt: skip
    assert set(data.configured_arguments()) == {"raw_path", "processed_dir", "test_size", "seed"}


def test_train_depends_on_every_module_training_imports():
    """Fails when a module training imports (or a stale one) is missing from the deps."""
    deps = {d for d in PIPELINE["train"]["deps"] if d.startswith("src/")}
    expected = set(fingerprint.training_sources(ROOT))
    assert deps == expected, f"missing {expected - deps}, not imported {deps - expected}"
    for module in ("train", "model", "evaluation", "data", "schema", "bundle"):
        assert f"src/titanic_mlops/{module}.py" in deps


def test_train_depends_on_what_it_reads_of_preprocess():
    deps = PIPELINE["train"]["deps"]
    inputs = [f"data/processed/{name}" for name in data.TRAINING_INPUTS]
    assert [d for d in deps if d.startswith("data/")] == inputs
    assert set(inputs) <= set(paths(PIPELINE["preprocess"]["outs"]))


def stage_config(return_hydra_config: bool = False):
    """The config the train stage's command composes (its Hydra overrides)."""
    from hydra import compose, initialize_config_dir

    overrides = PIPELINE["train"]["cmd"].split("titanic_mlops.train", 1)[1].split()
    assert config_schema.SCHEMA_NAME  # imported: the schema is in Hydra's ConfigStore
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose("config", overrides, return_hydra_config=return_hydra_config)


def test_train_depends_on_every_config_file_hydra_composes():
    cfg = stage_config(return_hydra_config=True)
    files = {"configs/config.yaml"} | {
        f"configs/{group}/{choice}.yaml"
        for group, choice in cfg.hydra.runtime.choices.items()
        if not group.startswith("hydra") and choice is not None
    }
    assert "configs/stage/dvc_train.yaml" in files
    assert files <= set(PIPELINE["train"]["deps"])
    assert cfg.hydra.run.dir == "outputs/dvc"
    assert paths(PIPELINE["train"]["outs"]) == ["outputs/dvc/bundle"]


def test_the_stage_trains_without_wandb_or_the_registry():
    cfg = stage_config()
    assert cfg.wandb.mode == "disabled" and cfg.registry.register is False


def test_the_metrics_file_is_versioned_and_written_by_the_stage():
    (metrics,) = paths(PIPELINE["train"]["metrics"])
    assert PIPELINE["train"]["metrics"][0][metrics] == {"cache": False}
    assert stage_config().metrics_file == metrics
    ignored = subprocess.run(["git", "check-ignore", "-q", metrics], cwd=ROOT, check=False)
    assert ignored.returncode == 1, f"{metrics} is ignored by git"
    assert (ROOT / metrics).is_file(), "run `uv run invoke repro` and commit the metrics file"


def test_the_lock_was_written_from_this_pipeline():
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]
    for name, stage in PIPELINE.items():
        assert lock[name]["cmd"] == stage["cmd"].strip()
        assert sorted(d["path"] for d in lock[name]["deps"]) == sorted(stage["deps"])
        assert sorted(o["path"] for o in lock[name]["outs"]) == sorted(
            paths(stage["outs"]) + paths(stage.get("metrics", []))
        )


def test_the_lock_matches_the_committed_deps():
    """What `dvc status` compares on a clean clone: each file dep's md5 in dvc.lock is the
    file's md5 now (an edited training module without `invoke repro` fails here)."""
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]
    files = [(name, dep) for name, stage in lock.items() for dep in stage["deps"]
             if (ROOT / dep["path"]).is_file()]  # fmt: skip
    assert len(files) > 20
    stale = [
        f"{name}: {dep['path']}"
        for name, dep in files
        if hashlib.md5((ROOT / dep["path"]).read_bytes()).hexdigest() != dep["md5"]
    ]
    assert not stale, "run `uv run invoke repro` and commit dvc.lock; stale: " + ", ".join(stale)


def test_the_default_remote_is_a_local_folder_beside_gcs():
    out = subprocess.run(
        [sys.executable, "-m", "dvc", "remote", "list"], cwd=ROOT, capture_output=True,
        text=True, check=True,
    ).stdout  # fmt: skip
    remotes = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
    assert remotes["local"] == [str(ROOT / "artifacts" / "dvc"), "(default)"]
    assert remotes["gcs"] == ["gs://titanic-mlops-data/dvc"]


# --- the real pipeline in a fresh repository -------------------------------------------


def run(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": str(repo / "src"),
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "WANDB_MODE": "disabled",
    }
    proc = subprocess.run(
        [sys.executable, *args], cwd=repo, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def status(repo: Path) -> dict:
    return json.loads(run(repo, "-m", "dvc", "status", "--json").stdout)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh repository with the pipeline reproduced once by `invoke repro`."""
    repo = tmp_path_factory.mktemp("clone")
    for name in COPIED:
        src, dst = ROOT / name, repo / name
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    out = run(repo, "-m", "invoke", "repro").stdout
    assert "Running stage 'preprocess'" in out and "Running stage 'train'" in out
    assert out.rstrip().endswith("Data and pipelines are up to date.")  # the status after
    return repo


def test_repro_builds_every_output_in_the_copy(repo):
    for name in data.PROCESSED_FILES:
        assert (repo / "data/processed" / name).is_file()
    assert (repo / "outputs/dvc/bundle/model.onnx").is_file()
    metrics = json.loads(run(repo, "-m", "dvc", "metrics", "show", "--json").stdout)
    shown = next(iter(metrics.values()))["data"]["reports/metrics/train.json"]["data"]
    assert shown["test"]["model"]["accuracy"] > 0.75


def test_an_unchanged_raw_file_keeps_it_up_to_date(repo):
    raw = repo / RAW
    raw.write_bytes(raw.read_bytes())  # rewritten: new mtime, same bytes
    assert status(repo) == {}
    assert "Stage 'preprocess' didn't change" in run(repo, "-m", "dvc", "repro").stdout


def test_a_changed_raw_file_makes_it_stale(repo):
    raw = repo / RAW
    original = raw.read_bytes()
    assert b",7.25,,S\n" in original  # Braund's fare
    try:
        raw.write_bytes(original.replace(b",7.25,,S\n", b",7.5,,S\n", 1))
        assert status(repo) == {"preprocess": [{"changed deps": {RAW: "modified"}}]}
    finally:
        raw.write_bytes(original)
    assert status(repo) == {}


def test_an_edited_training_module_makes_only_train_stale(repo):
    module = repo / "src/titanic_mlops/evaluation.py"
    original = module.read_bytes()
    try:
        module.write_bytes(original + b"# edited\n")
        assert status(repo) == {
            "train": [{"changed deps": {"src/titanic_mlops/evaluation.py": "modified"}}]
        }
    finally:
        module.write_bytes(original)
    assert status(repo) == {}


def test_the_default_remote_restores_the_outputs_offline(repo):
    run(repo, "-m", "dvc", "push")
    assert any((repo / "artifacts/dvc").rglob("*"))
    shutil.rmtree(repo / ".dvc/cache")
    shutil.rmtree(repo / "data/processed")
    shutil.rmtree(repo / "outputs/dvc/bundle")
    assert "deleted" in json.dumps(status(repo))
    run(repo, "-m", "dvc", "pull")
    assert status(repo) == {}
    assert (repo / "outputs/dvc/bundle/model.onnx").is_file()
