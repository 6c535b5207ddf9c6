"""The training config's schema: every shipped config passes, every bad value is one line."""

import dataclasses

import pytest
from omegaconf import OmegaConf

from titanic_mlops import config_schema, tracking, train
from titanic_mlops.config_schema import ConfigError, TrainConfig


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["+experiments=exp1"],
        ["+hparams_search=optuna"],
        ["+stage=dvc_train"],
        ["registry.promote_to=staging"],
    ],
    ids=["default", "exp1", "optuna", "dvc_train", "promote"],
)
def test_the_shipped_configs_pass(overrides):
    cfg = config_schema.compose(overrides)
    assert cfg.hyperparameters.epochs >= 1


def test_the_schema_comes_first_in_the_defaults_list():
    defaults = OmegaConf.load(train.CONFIG_DIR + "/config.yaml").defaults
    assert defaults[0] == config_schema.SCHEMA_NAME


def test_every_leaf_of_the_schema_has_a_rule():
    def leaves(schema, prefix=""):
        for f in dataclasses.fields(schema):
            if f.default_factory is not dataclasses.MISSING:  # a nested section
                yield from leaves(f.default_factory, f"{prefix}{f.name}.")
            else:
                yield f"{prefix}{f.name}", f.metadata.get("rule")

    found = dict(leaves(TrainConfig))
    assert "hyperparameters.lr" in found and "wandb.mode" in found
    assert all(rule is not None for rule in found.values()), found


BAD = [
    ("hyperparameters.lr=abc", "hyperparameters.lr = 'abc' (must be a number > 0)"),
    ("hyperparameters.lr=0", "hyperparameters.lr = 0.0 (must be a number > 0)"),
    ("hyperparameters.epochs=-5", "hyperparameters.epochs = -5 (must be an integer >= 1)"),
    ("hyperparameters.epochs=2.5", "hyperparameters.epochs = 2.5 (must be an integer >= 1)"),
    ("hyperparameters.optimizer=lbfgs", "hyperparameters.optimizer = 'lbfgs' (must be one of adam"),
    ("hyperparameters.batch_size=0", "hyperparameters.batch_size = 0 (must be an integer >= 1)"),
    ("hyperparameters.weight_decay=-1", "hyperparameters.weight_decay = -1.0 (must be a number >="),
    ("hyperparameters.momentum=1", "hyperparameters.momentum = 1.0 (must be a number in [0, 1))"),
    ("data.test_size=0", "data.test_size = 0.0 (must be a number in (0, 1))"),
    ("data.test_size=1.5", "data.test_size = 1.5 (must be a number in (0, 1))"),
    ("evaluation.cv_folds=1", "evaluation.cv_folds = 1 (must be an integer >= 2)"),
    ("wandb.mode=sometimes", "wandb.mode = 'sometimes' (must be one of auto, online, offline"),
    ("seed=-1", "seed = -1 (must be an integer in [0, 2**32))"),
    ("registry.promote_to=Prod", "registry.promote_to = 'Prod' (must be a name matching"),
    ("objective=cv.model.acc", "objective = 'cv.model.acc' (must be a metric like"),
    ("registry.register=maybe", "registry.register = 'maybe' (must be true or false)"),
    ("hyperparameters.lrr=1", "hyperparameters.lrr: Key 'lrr' not in 'HyperParameters'"),
    ("hyperparameters=nope", "Could not find 'hyperparameters/nope'"),
]


@pytest.mark.parametrize(("override", "message"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_value_is_one_line_naming_the_key_and_the_rule(override, message):
    with pytest.raises(ConfigError) as caught:
        config_schema.compose([override])
    text = str(caught.value)
    assert message in text
    assert "\n" not in text


def test_every_broken_rule_is_reported_on_the_same_line():
    with pytest.raises(ConfigError) as caught:
        config_schema.compose(["hyperparameters.lr=0", "hyperparameters.epochs=0"])
    assert str(caught.value) == (
        "hyperparameters.lr = 0.0 (must be a number > 0); "
        "hyperparameters.epochs = 0 (must be an integer >= 1)"
    )


def test_an_environment_value_is_checked_once_resolved(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "loud")
    with pytest.raises(ConfigError, match=r"wandb.mode = 'loud' \(must be one of"):
        config_schema.compose([])


def test_run_checks_a_config_composed_elsewhere_before_any_work(compose_cfg, tmp_path):
    """train.run is also called by quickstart and the Vertex job: it checks first."""
    cfg = compose_cfg(f"registry.storage_uri={tmp_path / 'bucket'}")
    cfg.hyperparameters.epochs = -5
    with pytest.raises(ConfigError, match="hyperparameters.epochs = -5"):
        train.run(cfg)
    assert not (tmp_path / "bucket").exists()


def test_wandb_modes_have_one_source():
    for mode in config_schema.WANDB_MODES:
        if mode != "auto":
            assert tracking.wandb_mode(mode) == mode
    with pytest.raises(ValueError, match="one of auto, online, offline, disabled"):
        tracking.wandb_mode("sometimes")
