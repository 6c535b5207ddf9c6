import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from titanic_mlops import tracking, train, vcs


def test_loss_decreases(trained):
    history = trained.history
    assert len(history) == 100
    assert history[-1] < 0.8 * history[0]
    assert np.mean(history[-10:]) < np.mean(history[:10])


def test_model_matches_the_sklearn_baseline(trained):
    cv = trained.metrics["cv"]
    assert cv["model"]["accuracy_mean"] >= 0.78
    assert cv["model"]["roc_auc_mean"] >= 0.84
    for metric in ("accuracy_mean", "roc_auc_mean"):
        assert abs(cv["model"][metric] - cv["baseline"][metric]) <= 0.01
    assert cv["folds"] == 5 and cv["model"]["accuracy_std"] > 0


def test_same_seed_gives_identical_metrics(trained, compose_cfg):
    again = train.run(compose_cfg("registry.register=false"))
    assert again.metrics == trained.metrics
    assert again.history == trained.history


def test_another_seed_gives_other_weights(data_dirs):
    from titanic_mlops import data

    x, y = data.titanic_dataset("train", data_dirs["processed"]).tensors
    hp = OmegaConf.create(
        {
            "optimizer": "adam",
            "lr": 0.05,
            "momentum": 0.9,
            "weight_decay": 0.0,
            "epochs": 3,
            "batch_size": 64,
        }
    )
    a, _ = train.fit_model(x, y, hp, seed=1)
    b, _ = train.fit_model(x, y, hp, seed=2)
    c, _ = train.fit_model(x, y, hp, seed=1)
    assert not torch.equal(a.linear.weight, b.linear.weight)
    assert torch.equal(a.linear.weight, c.linear.weight)


def test_overrides_apply(compose_cfg, data_dirs):
    cfg = compose_cfg("hyperparameters.lr=0.001", "hyperparameters.optimizer=sgd")
    assert cfg.hyperparameters.lr == 0.001
    optimizer = train.make_optimizer(torch.nn.Linear(2, 1).parameters(), cfg.hyperparameters)
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.param_groups[0]["lr"] == 0.001
    assert optimizer.param_groups[0]["momentum"] == cfg.hyperparameters.momentum


def test_experiment_config_switches_hyperparameters(compose_cfg):
    cfg = compose_cfg("+experiments=exp1")
    assert cfg.hyperparameters.optimizer == "sgd" and cfg.seed == 7


def test_epoch_override_changes_training(compose_cfg):
    result = train.run(compose_cfg("registry.register=false", "hyperparameters.epochs=5"))
    assert len(result.history) == 5


def test_unknown_optimizer_is_rejected():
    hp = OmegaConf.create({"optimizer": "lbfgs", "lr": 0.1, "weight_decay": 0})
    with pytest.raises(ValueError, match="adam' or 'sgd"):
        train.make_optimizer(torch.nn.Linear(2, 1).parameters(), hp)


def test_wandb_mode_resolution(monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert tracking.wandb_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert tracking.wandb_mode("auto") == "online"
    assert tracking.wandb_mode("disabled") == "disabled"
    with pytest.raises(ValueError, match="wandb.mode"):
        tracking.wandb_mode("sometimes")


def test_objective_reads_a_dotted_metric(trained):
    assert (
        train.objective(trained, "cv.model.accuracy_mean")
        == trained.metrics["cv"]["model"]["accuracy_mean"]
    )


def test_git_commit_is_a_sha_or_unknown():
    commit = vcs.git_commit()
    assert commit == "unknown" or len(commit.split("-")[0]) == 40
