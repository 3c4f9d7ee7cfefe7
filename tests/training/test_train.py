import dataclasses

import pytest
import torch

from training.models import FAMILIES
from training.train import TrainConfig, load_checkpoint, train

CHECKPOINT_KEYS = {
    "model_state",
    "model_kwargs",
    "config",
    "epoch",
    "val_loss",
    "optimizer_state",
    "dataset",
}


def _config(base: TrainConfig, **changes) -> TrainConfig:
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_learns(family, tiny_config, tiny_splits):
    options = {"hidden": [32]}
    if family == "sparse_ae":
        options["sparsity_weight"] = 1e-3
    config = _config(
        tiny_config,
        family=family,
        epochs=4,
        latent_dim=4,
        model_options=options,
        evaluate=False,
        run_name=family,
    )
    history = train(config, tiny_splits).history
    assert history[-1]["train_loss"] < 0.9 * history[0]["train_loss"]
    assert history[-1]["val_loss"] < history[0]["val_loss"]


def test_conv_architecture_learns(tiny_config, tiny_splits):
    config = _config(
        tiny_config,
        family="cvae",
        architecture="conv",
        epochs=3,
        evaluate=False,
        model_options={"channels": [8, 8], "hidden": 32},
    )
    history = train(config, tiny_splits).history
    assert history[-1]["val_loss"] < history[0]["val_loss"]


def _weights(path):
    return torch.load(path, weights_only=False)["model_state"]


def test_same_seed_same_run_other_seed_other_run(tiny_config, tiny_splits, tmp_path):
    first = train(_config(tiny_config, run_name="a", evaluate=False), tiny_splits)
    second = train(_config(tiny_config, run_name="b", evaluate=False), tiny_splits)
    other = train(_config(tiny_config, run_name="c", seed=1, evaluate=False), tiny_splits)
    strip = [{k: v for k, v in row.items() if k != "train_seconds"} for row in first.history]
    assert strip == [
        {k: v for k, v in row.items() if k != "train_seconds"} for row in second.history
    ]
    a, b, c = (_weights(r.last_checkpoint) for r in (first, second, other))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_resume_continues_where_it_stopped(tiny_config, tiny_splits):
    straight = train(
        _config(tiny_config, epochs=3, run_name="straight", evaluate=False), tiny_splits
    )
    interrupted = train(
        _config(tiny_config, epochs=1, run_name="broken", evaluate=False), tiny_splits
    )
    resumed = train(
        _config(tiny_config, epochs=3, evaluate=False, resume=str(interrupted.last_checkpoint)),
        tiny_splits,
    )
    assert resumed.run_dir == interrupted.run_dir
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3]
    assert resumed.history[-1]["val_loss"] == pytest.approx(straight.history[-1]["val_loss"])
    a, b = _weights(straight.last_checkpoint), _weights(resumed.last_checkpoint)
    assert all(torch.allclose(a[k], b[k]) for k in a)


def test_resume_refuses_a_different_model(tiny_config, tiny_splits):
    first = train(_config(tiny_config, epochs=1, evaluate=False), tiny_splits)
    with pytest.raises(ValueError, match="different model"):
        train(_config(tiny_config, latent_dim=3, resume=str(first.last_checkpoint)), tiny_splits)


def test_early_stopping_and_best_checkpoint(tiny_config, tiny_splits):
    # lr 0: the validation loss never improves after the first epoch
    config = _config(tiny_config, epochs=10, patience=2, learning_rate=0.0, evaluate=False)
    result = train(config, tiny_splits)
    assert [row["epoch"] for row in result.history] == [1, 2, 3]
    assert result.stopped_early
    best = torch.load(result.best_checkpoint, weights_only=False)
    assert best["epoch"] == 1


def test_checkpoint_holds_what_export_needs(tiny_config, tiny_splits):
    result = train(_config(tiny_config, family="cvae"), tiny_splits)
    model, checkpoint = load_checkpoint(result.best_checkpoint)
    assert set(checkpoint) >= CHECKPOINT_KEYS
    assert checkpoint["dataset"] == tiny_splits.info
    assert checkpoint["model_kwargs"]["num_classes"] == 3
    assert not model.training and model.conditional
    assert TrainConfig.from_dict(checkpoint["config"]).family == "cvae"
    for name in ("history.csv", "history.json", "config.toml", "metrics.json", "report.md"):
        assert (result.run_dir / name).stat().st_size > 0
    assert result.test_metrics["neg_elbo"] > 0


def test_config_round_trips_through_toml(tiny_config, tmp_path):
    result_dir = tmp_path / "cfg"
    result_dir.mkdir()
    from training.train import write_config

    write_config(result_dir, tiny_config)
    assert TrainConfig.from_toml(result_dir / "config.toml") == tiny_config
    (tmp_path / "bad.toml").write_text('famly = "vae"\n')
    with pytest.raises(ValueError, match="famly"):
        TrainConfig.from_toml(tmp_path / "bad.toml")


def test_every_config_field_is_documented():
    for spec in dataclasses.fields(TrainConfig):
        assert spec.metadata.get("help"), spec.name
