"""The model fingerprint: equal for the same data, config, seed and code; different otherwise."""

import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from titanic_mlops import data, fingerprint


@pytest.fixture(scope="module")
def inputs(data_dirs) -> dict:
    return {
        "raw": data.RAW_CSV,
        **{name: data_dirs["processed"] / name for name in data.TRAINING_INPUTS},
    }


@pytest.fixture(scope="module")
def config(compose_cfg):
    def _config(*overrides: str) -> dict:
        return OmegaConf.to_container(compose_cfg(*overrides), resolve=True)

    return _config


def test_the_same_inputs_give_the_same_fingerprint(config, inputs):
    a, b = fingerprint.compute(config(), inputs), fingerprint.compute(config(), inputs)
    assert a == b and len(a.sha256) == 64
    assert set(a.inputs) == {"data", "config", "code"}


@pytest.mark.parametrize(
    "override",
    ["seed=3", "hyperparameters.lr=0.01", "hyperparameters.epochs=99", "evaluation.cv_folds=4",
     "evaluation.baseline_c=0.5", "data.test_size=0.25", "+experiments=exp1"],
)  # fmt: skip
def test_anything_that_changes_the_model_changes_it(override, config, inputs):
    assert fingerprint.compute(config(override), inputs) != fingerprint.compute(config(), inputs)


@pytest.mark.parametrize(
    "override",
    ["registry.storage_uri=gs://elsewhere/x", "registry.promote_to=staging", "wandb.mode=offline",
     "wandb.project=other", "objective=test.model.roc_auc", "metrics_file=m.json",
     "data.processed_dir=/some/copy/of/the/same/files"],
)  # fmt: skip
def test_where_and_how_it_is_recorded_does_not(override, config, inputs):
    assert fingerprint.compute(config(override), inputs) == fingerprint.compute(config(), inputs)


def test_other_data_bytes_change_it(config, inputs, tmp_path):
    edited = tmp_path / data.TRAIN_RAW
    edited.write_bytes(inputs[data.TRAIN_RAW].read_bytes() + b"\n")
    other = fingerprint.compute(config(), {**inputs, data.TRAIN_RAW: edited})
    assert other != fingerprint.compute(config(), inputs)


def test_other_code_changes_it(config, inputs, monkeypatch):
    before = fingerprint.compute(config(), inputs)
    real = fingerprint._sha256_file
    evaluation = fingerprint.module_path("titanic_mlops.evaluation")
    monkeypatch.setattr(
        fingerprint,
        "_sha256_file",
        lambda path: "edited" if path == evaluation else real(path),
    )
    assert fingerprint.compute(config(), inputs) != before
    monkeypatch.setattr(fingerprint, "LIBRARIES", (*fingerprint.LIBRARIES, "hydra-core"))
    monkeypatch.setattr(fingerprint, "_sha256_file", real)
    assert fingerprint.compute(config(), inputs) != before


def test_training_modules_are_what_importing_train_loads():
    """The static list (fingerprint, dvc.yaml) equals what Python really imports."""
    code = (
        "import sys, titanic_mlops.train; "
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] == 'titanic_mlops')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == fingerprint.training_modules()
    assert {"titanic_mlops.train", "titanic_mlops.model", "titanic_mlops.evaluation",
            "titanic_mlops.data", "titanic_mlops.schema", "titanic_mlops.bundle"} <= set(
        fingerprint.training_modules()
    )  # fmt: skip


def test_model_config_drops_only_the_listed_keys():
    config = {"seed": 1, "registry": {"x": 1}, "data": {"raw": "a", "test_size": 0.2}, "new": 2}
    assert fingerprint.model_config(config) == {"seed": 1, "data": {"test_size": 0.2}, "new": 2}
