"""The six steps: split, load, model and loss, optimizer, training loop, evaluation.

`train(config)` runs them all and leaves in the run directory: `best.pt` (lowest validation
loss), `last.pt` (to resume from), `history.csv` / `history.json` (one row per epoch),
`config.toml`, and the test-split `metrics.json` and `report.md` of the best checkpoint.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import random
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from training.data import DEFAULT_VAL_SIZE, Splits, default_root, load_splits
from training.losses import autoencoder_loss
from training.models import Autoencoder, build_model, model_kwargs


def _option(default: Any, doc: str) -> Any:
    """A config field with its documentation (shown by `latentserve-train train --help`)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": doc})
    return field(default=default, metadata={"help": doc})


@dataclass
class TrainConfig:
    """Everything one training run needs; loadable from TOML (`TrainConfig.from_toml`)."""

    # data
    dataset: str = _option(
        "mnist-test-only",
        "mnist, fashion-mnist, kmnist, mnist-test-only (the MNIST t10k set split "
        "8000/1000/1000) or image-folder",
    )
    data_root: str | None = _option(None, "where the dataset lives (unset: its usual place)")
    download: bool = _option(False, "let torchvision download mnist/fashion-mnist/kmnist")
    val_size: int = _option(DEFAULT_VAL_SIZE, "validation images carved from a standard train set")
    train_limit: int | None = _option(None, "use only the first N training images (quick runs)")
    image_shape: list[int] | None = _option(
        None, "C H W to convert images to (unset: the dataset's own; 3 32 32 for folders)"
    )
    # model
    family: str = _option("vae", "ae, vae, beta_vae, cvae, dae or sparse_ae")
    architecture: str = _option("mlp", "mlp or conv")
    latent_dim: int = _option(20, "size of the latent code")
    model_options: dict = _option(
        {},
        "family/architecture options: beta, noise_kind, noise_level, sparsity_kind, "
        "sparsity_weight, sparsity_rho, code_activation, hidden, channels",
    )
    reconstruction: str = _option("bce", "reconstruction loss: bce (Bernoulli NLL) or mse")
    # optimization
    epochs: int = _option(20, "the last epoch to train (resuming continues up to it)")
    batch_size: int = _option(128, "images per optimizer step")
    learning_rate: float = _option(1e-3, "Adam learning rate")
    weight_decay: float = _option(0.0, "Adam weight decay")
    patience: int = _option(
        5, "stop after this many epochs without a better validation loss; 0 never"
    )
    min_delta: float = _option(0.0, "the least validation-loss drop that counts as better")
    seed: int = _option(0, "seed of the split, the initial weights, the shuffling and the noise")
    device: str = _option("auto", "cpu, cuda, cuda:N, or auto (cuda when present)")
    threads: int = _option(
        1,
        "torch CPU threads (0: torch's default); on shared cores one thread avoids waits "
        "at every parallel op",
    )
    # output
    output_dir: str = _option("runs", "folder that receives one subfolder per run")
    run_name: str | None = _option(None, "the run's subfolder (unset: dataset-family-arch-zN)")
    resume: str | None = _option(None, "a last.pt (or best.pt) checkpoint to continue from")
    progress: bool = _option(True, "show a progress bar (on a terminal only)")
    evaluate: bool = _option(True, "evaluate the best checkpoint on the test split at the end")
    iw_samples: int = _option(200, "importance samples per image for the IW-NLL estimate")

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        with open(path, "rb") as handle:
            values = tomllib.load(handle)
        return cls.from_dict({**values, **overrides})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(unknown)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def resolved_run_name(self) -> str:
        return (
            self.run_name or f"{self.dataset}-{self.family}-{self.architecture}-z{self.latent_dim}"
        )


@dataclass
class TrainResult:
    run_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    history: list[dict[str, float]]
    test_metrics: dict[str, float]
    stopped_early: bool = False


# ---------------------------------------------------------------- checkpoints


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> tuple[Autoencoder, dict]:
    """Rebuild the model a checkpoint holds; returns (model in eval mode, checkpoint dict)."""
    checkpoint = torch.load(path, map_location=map_location, weights_only=False)
    model = build_model(**checkpoint["model_kwargs"])
    model.load_state_dict(checkpoint["model_state"])
    model.eval()
    return model, checkpoint


# ---------------------------------------------------------------- the steps


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def epoch_generators(seed: int, epoch: int, device: torch.device) -> tuple[torch.Generator, ...]:
    """Fresh generators per epoch, so a resumed run draws what an unbroken one would."""
    shuffle = torch.Generator().manual_seed(seed * 100_003 + epoch)
    noise = torch.Generator(device=device).manual_seed(seed * 100_003 + epoch + 50_000)
    return shuffle, noise


def load_data(config: TrainConfig) -> Splits:
    root = config.data_root or default_root(config.dataset)
    return load_splits(
        config.dataset,
        root,
        config.seed,
        val_size=config.val_size,
        image_shape=tuple(config.image_shape) if config.image_shape else None,
        train_limit=config.train_limit,
        download=config.download,
    )


def make_model(config: TrainConfig, splits: Splits) -> Autoencoder:
    return build_model(
        config.family,
        config.architecture,
        config.latent_dim,
        image_shape=splits.image_shape,
        num_classes=splits.num_classes,
        **config.model_options,
    )


def run_epoch(model, split, config, device, generators, optimizer=None, desc="") -> dict:
    """One pass over `split`; trains when given an optimizer. Returns mean loss terms."""
    shuffle, noise = generators
    training = optimizer is not None
    model.train(training)
    totals: dict[str, float] = {}
    batches = split.batches(config.batch_size, shuffle=training, generator=shuffle)
    steps = math.ceil(len(split) / config.batch_size)
    # disable=None: tqdm draws only on a terminal, never into a pipe or a log file.
    bar = tqdm(
        batches,
        total=steps,
        desc=desc,
        leave=False,
        disable=None if config.progress else True,
        file=sys.stderr,
    )
    with torch.set_grad_enabled(training):
        for images, labels in bar:
            images, labels = images.to(device), labels.to(device)
            terms = autoencoder_loss(model, images, labels, config.reconstruction, noise)
            if training:
                optimizer.zero_grad(set_to_none=True)
                terms.total.backward()
                optimizer.step()
            values = terms.as_floats()
            for key, value in values.items():
                totals[key] = totals.get(key, 0.0) + value * len(images)
            bar.set_postfix(loss=f"{values['loss']:.2f}")
    return {key: value / len(split) for key, value in totals.items()}


class EarlyStopping:
    """Counts epochs without a validation loss better than the best by `min_delta`."""

    def __init__(self, patience: int, min_delta: float, best: float = math.inf, waited: int = 0):
        self.patience, self.min_delta = patience, min_delta
        self.best, self.waited = best, waited

    def improved(self, loss: float) -> bool:
        if loss < self.best - self.min_delta:
            self.best, self.waited = loss, 0
            return True
        self.waited += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.waited >= self.patience


def write_history(run_dir: Path, history: list[dict[str, float]]) -> None:
    (run_dir / "history.json").write_text(json.dumps(history, indent=2))
    if not history:
        return
    with open(run_dir / "history.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)


def write_config(run_dir: Path, config: TrainConfig) -> None:
    lines = []
    for key, value in config.to_dict().items():
        if value is None:
            continue  # TOML has no null: an absent key means the default
        lines.append(f"{key} = {_toml_value(value)}")
    (run_dir / "config.toml").write_text("\n".join(lines) + "\n")


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


# ---------------------------------------------------------------- the whole run


def train(config: TrainConfig, splits: Splits | None = None) -> TrainResult:
    """Train, keep the best checkpoint by validation loss, and evaluate it on the test split.

    `splits` replaces the dataset the config names (data prepared in code, tests).
    """
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    seed_everything(config.seed)
    if splits is None:
        splits = load_data(config)  # steps 1-2: split and load
    model = make_model(config, splits).to(device)  # step 3: model (the loss lives in losses.py)
    optimizer = torch.optim.Adam(  # step 4
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    run_dir = Path(config.output_dir) / config.resolved_run_name()
    history: list[dict[str, float]] = []
    stopper = EarlyStopping(config.patience, config.min_delta)
    start_epoch = 1
    if config.resume:
        start_epoch, history, stopper = _restore(config, model, optimizer, device)
        run_dir = Path(config.resume).resolve().parent
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(run_dir, config)
    best_path, last_path = run_dir / "best.pt", run_dir / "last.pt"
    print(
        f"training {model.describe()} on {splits.info['name']} "
        f"({len(splits.train)} train images) on {device}; results in {run_dir}",
        file=sys.stderr,
    )

    for epoch in range(start_epoch, config.epochs + 1):  # step 5: the training loop
        if stopper.should_stop:
            break
        began = time.perf_counter()
        generators = epoch_generators(config.seed, epoch, device)
        train_terms = run_epoch(
            model,
            splits.train,
            config,
            device,
            generators,
            optimizer,
            desc=f"epoch {epoch}/{config.epochs}",
        )
        seconds = time.perf_counter() - began
        val_generators = epoch_generators(config.seed, 0, device)  # the same draws every epoch
        val_terms = run_epoch(model, splits.val, config, device, val_generators)
        row = {
            "epoch": epoch,
            **{f"train_{k}": v for k, v in train_terms.items()},
            **{f"val_{k}": v for k, v in val_terms.items()},
            "train_seconds": seconds,
        }
        history.append(row)
        improved = stopper.improved(val_terms["loss"])
        state = _checkpoint_state(
            model, optimizer, config, splits, epoch, val_terms["loss"], stopper, history
        )
        save_checkpoint(last_path, state)
        if improved:
            save_checkpoint(best_path, state)
        write_history(run_dir, history)
        print(
            f"epoch {epoch}: train loss {train_terms['loss']:.3f}, val loss "
            f"{val_terms['loss']:.3f}{' (best)' if improved else ''}, {seconds:.1f} s",
            file=sys.stderr,
        )

    test_metrics = _evaluate_best(best_path, splits, run_dir, config, device)
    return TrainResult(run_dir, best_path, last_path, history, test_metrics, stopper.should_stop)


def _checkpoint_state(model, optimizer, config, splits, epoch, val_loss, stopper, history):
    return {
        "model_state": model.state_dict(),
        "model_kwargs": model_kwargs(model),
        "config": config.to_dict(),
        "epoch": epoch,
        "val_loss": val_loss,
        "best_val_loss": stopper.best,
        "epochs_without_improvement": stopper.waited,
        "optimizer_state": optimizer.state_dict(),
        "dataset": splits.info,
        "classes": splits.classes,
        "history": list(history),
    }


def _restore(config, model, optimizer, device):
    checkpoint = torch.load(config.resume, map_location=device, weights_only=False)
    if checkpoint["model_kwargs"] != model_kwargs(model):
        raise ValueError(
            f"{config.resume} holds a different model ({checkpoint['model_kwargs']}) "
            f"than the config asks for ({model_kwargs(model)})"
        )
    model.load_state_dict(checkpoint["model_state"])
    optimizer.load_state_dict(checkpoint["optimizer_state"])
    stopper = EarlyStopping(
        config.patience,
        config.min_delta,
        checkpoint["best_val_loss"],
        checkpoint["epochs_without_improvement"],
    )
    return checkpoint["epoch"] + 1, list(checkpoint["history"]), stopper


def _evaluate_best(best_path, splits, run_dir, config, device) -> dict[str, float]:
    if not config.evaluate or not best_path.exists():
        return {}
    from training.evaluate import evaluate  # step 6

    model, _ = load_checkpoint(best_path, map_location=str(device))
    return evaluate(
        model,
        splits,
        out_dir=run_dir,
        reconstruction=config.reconstruction,
        iw_samples=config.iw_samples,
        seed=config.seed,
    )
