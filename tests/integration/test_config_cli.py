"""A bad config stops the real CLI at once: one line, non-zero exit, no W&B run, no registry write.

W&B runs in offline mode here (not disabled), so a run that got as far as ``wandb.init``
would leave its folder behind; the control run shows that it does.
"""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env
    )


def places(tmp_path, data_dirs) -> list[str]:
    return [
        "wandb.mode=offline",
        f"wandb.dir={tmp_path / 'wandb'}",
        f"registry.storage_uri={tmp_path / 'bucket'}",
        f"data.processed_dir={data_dirs['processed']}",
    ]


def assert_stopped_at_once(proc: subprocess.CompletedProcess, message: str, tmp_path) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [f"invalid config: {message}"], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "wandb").exists(), "a W&B run was created"
    assert not (tmp_path / "bucket").exists(), "the registry was written"


CASES = [
    ("hyperparameters.lr=abc", "hyperparameters.lr = 'abc' (must be a number > 0)"),
    ("hyperparameters.epochs=-5", "hyperparameters.epochs = -5 (must be an integer >= 1)"),
    ("wandb.mode=sometimes", "wandb.mode = 'sometimes' (must be one of auto, online, offline, "
     "disabled)"),
]  # fmt: skip


@pytest.mark.parametrize(("override", "message"), CASES, ids=[c[0] for c in CASES])
def test_train_cli_stops_before_wandb_and_registry(override, message, tmp_path, data_dirs):
    proc = cli(
        "-m",
        "titanic_mlops.train",
        *places(tmp_path, data_dirs),
        override,
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert_stopped_at_once(proc, message, tmp_path)
    assert proc.stdout == ""


@pytest.mark.parametrize(("override", "message"), CASES[:2], ids=[c[0] for c in CASES[:2]])
def test_invoke_train_stops_before_wandb_and_registry(override, message, tmp_path, data_dirs):
    overrides = " ".join([*places(tmp_path, data_dirs), override, f"hydra.run.dir={tmp_path}/r"])
    proc = cli("-m", "invoke", "train", "--overrides", overrides)
    assert_stopped_at_once(proc, message, tmp_path)


def test_control_a_good_config_does_create_the_wandb_run_and_the_version(tmp_path, data_dirs):
    """Without it, the absence of both folders above would prove nothing."""
    overrides = " ".join(
        [*places(tmp_path, data_dirs), "hyperparameters.epochs=2", "evaluation.cv_folds=2",
         f"hydra.run.dir={tmp_path}/r"]
    )  # fmt: skip
    proc = cli("-m", "invoke", "train", "--overrides", overrides)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert list((tmp_path / "wandb").glob("wandb/offline-run-*/run-*.wandb"))
    assert (tmp_path / "bucket/registry/titanic-logreg/versions/1/manifest.json").is_file()


def test_quickstart_stops_before_any_work(tmp_path, data_dirs):
    overrides = " ".join([*places(tmp_path, data_dirs)[:2], "hyperparameters.epochs=-5"])
    proc = cli("-m", "invoke", "quickstart", "--no-serve", "--storage", str(tmp_path / "bucket"),
               "--overrides", overrides)  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "invalid config: hyperparameters.epochs = -5 (must be an integer >= 1)"
    ]
    assert proc.stdout == ""
    assert not (tmp_path / "wandb").exists() and not (tmp_path / "bucket").exists()
