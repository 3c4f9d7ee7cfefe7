"""Rebuild the shipped model zoo from data: train, evaluate and export every model of zoo.toml.

    python -m training zoo                    # every model into exported_models/
    python -m training zoo --only mnist-cvae  # one model
    python -m training zoo --epochs 2         # a quick, throwaway zoo (fewer epochs)

Seeded throughout, so a rebuild reproduces the shipped folders' metrics (up to floating-point
differences between machines). Conditional models get one more metric: how often a digit
classifier, trained here on the same training split, recognises the label asked of a sample.
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch

from service.models.manifest import Manifest
from training import classifier as digit_classifier
from training.data import ImageSplit, Splits, default_root, load_splits
from training.export import export_model, reexport_folder, training_settings
from training.train import TrainConfig, load_checkpoint, load_data, train

ZOO_FILE = Path(__file__).with_name("zoo.toml")


@dataclass(frozen=True)
class ZooModel:
    name: str
    description: str
    config: TrainConfig
    outliers: tuple[str, ...] = ()  # datasets whose test images the anomaly scores must flag


def load_zoo(
    path: Path = ZOO_FILE, *, runs_dir: Path = Path("runs/zoo"), epochs: int | None = None
) -> list[ZooModel]:
    """The models of a zoo file, each a TrainConfig: [defaults] overridden by its own table."""
    with open(path, "rb") as handle:
        spec = tomllib.load(handle)
    defaults = spec.get("defaults", {})
    models = []
    for name, table in spec["models"].items():
        values = {**defaults, **table, "output_dir": str(runs_dir), "run_name": name}
        if epochs is not None:
            values["epochs"] = epochs
        description = values.pop("description", "")
        outliers = tuple(values.pop("outliers", ()))
        models.append(ZooModel(name, description, TrainConfig.from_dict(values), outliers))
    return models


def build_zoo(models: list[ZooModel], out_root: Path) -> list[Manifest]:
    """Train, evaluate and export each model into `out_root/<name>/`."""
    classifiers: dict[str, tuple[torch.nn.Module, float]] = {}
    manifests = []
    for entry in models:
        began = time.perf_counter()
        manifests.append(build_one(entry, out_root, classifiers))
        print(f"zoo: {entry.name} done in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    return manifests


def build_one(
    entry: ZooModel, out_root: Path, classifiers: dict[str, tuple[torch.nn.Module, float]]
) -> Manifest:
    result = train(entry.config)
    model, state = load_checkpoint(result.best_checkpoint)
    splits = load_data(entry.config)
    metrics = dict(result.test_metrics)
    if model.conditional:
        judge, judge_accuracy = _classifier(classifiers, entry.config, splits)
        per_label = digit_classifier.sample_label_accuracy(model, judge, seed=entry.config.seed)
        metrics["classifier_test_accuracy"] = judge_accuracy
        metrics["sample_label_accuracy"] = sum(per_label.values()) / len(per_label)
        metrics |= {f"sample_label_accuracy_{c}": acc for c, acc in per_label.items()}
    return export_model(
        model,
        splits,
        out_root / entry.name,
        name=entry.name,
        metrics=metrics,
        training=training_settings(entry.config, state, len(result.history)),
        description=entry.description,
        seed=entry.config.seed,
        outliers={name: _test_split(name) for name in entry.outliers},
    )


@cache
def _test_split(dataset: str) -> ImageSplit:
    """The test split of another dataset, from its usual place: outliers for the scores."""
    return load_splits(dataset, default_root(dataset)).test


def _classifier(cache: dict, config: TrainConfig, splits: Splits) -> tuple[torch.nn.Module, float]:
    """One judge per dataset: trained on its training split, scored on its test split."""
    if config.dataset not in cache:
        judge = digit_classifier.train_classifier(
            splits.train, splits.num_classes, seed=config.seed
        )
        cache[config.dataset] = (judge, digit_classifier.accuracy(judge, splits.test))
    return cache[config.dataset]


def summary_line(manifest: Manifest) -> str:
    keys = (
        "neg_elbo",
        "iw_nll",
        "recon_mse",
        "mse_ratio_to_pca",
        "psnr_gain",
        "sample_label_accuracy",
    )
    shown = ", ".join(f"{k} {manifest.metrics[k]:.4g}" for k in keys if k in manifest.metrics)
    size = sum(entry.bytes for entry in manifest.files.values()) / 2**20
    return (
        f"{manifest.name}: {shown}; parity torchscript {manifest.parity['torchscript']:.1e} "
        f"onnx {manifest.parity['onnx']:.1e}, scores {manifest.parity['score_onnx']:.1e}; "
        f"threshold {manifest.calibration.score.threshold:.4g}; {size:.1f} MiB"
    )


def reexport_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="latentserve-train reexport",
        description="Export model folders again, in place, from their own weights (for folders "
        "an earlier version exported): graphs in today's format, parity checks, reference set, "
        "anomaly-score calibration and card; name, metrics and training settings are kept. The "
        "zoo's models are evaluated against the outliers zoo.toml names.",
    )
    parser.add_argument("folders", nargs="+", type=Path, help="exported model folders")
    parser.add_argument("--data-root", type=Path, help="where the models' dataset lives")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    zoo = {entry.name: entry for entry in load_zoo()}
    for folder in args.folders:
        entry = zoo.get(folder.name)
        outliers = {name: _test_split(name) for name in (entry.outliers if entry else ())}
        manifest = reexport_folder(folder, data_root=args.data_root, outliers=outliers)
        print(summary_line(manifest))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="latentserve-train zoo",
        description="Rebuild the shipped models: train, evaluate and export every model of "
        "the zoo file (seeded) into the output folder, replacing folders of the same name.",
    )
    parser.add_argument("--zoo", type=Path, default=ZOO_FILE, help="the zoo file (TOML)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("exported_models"),
        help="where the model folders go (default: exported_models)",
    )
    parser.add_argument(
        "--runs",
        type=Path,
        default=Path("runs/zoo"),
        help="where the training runs go (default: runs/zoo)",
    )
    parser.add_argument(
        "--only", action="append", metavar="NAME", help="build only this model (repeatable)"
    )
    parser.add_argument("--epochs", type=int, help="override every model's epochs (quick runs)")
    args = parser.parse_args(argv)
    models = load_zoo(args.zoo, runs_dir=args.runs, epochs=args.epochs)
    unknown = set(args.only or ()) - {m.name for m in models}
    if unknown:
        parser.error(f"no model named {', '.join(sorted(unknown))} in {args.zoo}")
    chosen = [m for m in models if not args.only or m.name in args.only]
    began = time.perf_counter()
    manifests = build_zoo(chosen, args.out)
    for manifest in manifests:
        print(summary_line(manifest))
    print(f"zoo: {len(manifests)} models in {time.perf_counter() - began:.0f} s -> {args.out}")
    return 0
