"""Export a trained autoencoder to a self-contained model folder the service can load.

    exported_models/<name>/
      manifest.json   service.models.manifest.Manifest: the contract with the service
      encoder.onnx  encoder.pt  decoder.onnx  decoder.pt
      reference.json  service.models.manifest.ReferenceSet: latent map and class means
      README.md  card/*.png   the model card

The manifest also carries the anomaly-score calibration (training.anomaly): the threshold
and quantiles of the scores of the validation split, computed through the exported graphs.

Everything is written into a hidden staging folder beside the target and moved into place
only once the graphs passed the ONNX checker, the random-operator check and the parity check,
so a refused export leaves nothing behind and an existing folder stays intact until then.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from service.models.manifest import MANIFEST_FILE as MANIFEST
from service.models.manifest import (
    DatasetInfo,
    GraphSignature,
    ImageSpec,
    Manifest,
    PriorSampler,
    file_problem,
    hash_files,
)
from training import anomaly, benchmark, card, graphs, reference
from training.data import ImageSplit, Splits, default_outliers, outlier_split
from training.evaluate import evaluate
from training.graphs import ExportError
from training.models import Autoencoder, build_model
from training.parity import (
    DEFAULT_TOLERANCE,
    Parity,
    graph_parity,
    require_parity,
    score_parity,
)
from training.train import TrainConfig, load_checkpoint, load_data

REFERENCE = "reference.json"
PARITY_IMAGES = 32
SAMPLER_LATENTS = 20_000  # training latents the AE mixture is fitted on, at most


def export_model(
    model: Autoencoder,
    splits: Splits,
    out_dir: Path | str,
    *,
    name: str | None = None,
    metrics: Mapping[str, float],
    training: Mapping[str, object] | None = None,
    description: str = "",
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = 0,
    outliers: Mapping[str, ImageSplit] | None = None,
    threshold_quantile: float = anomaly.DEFAULT_QUANTILE,
) -> Manifest:
    """Write `model` to `out_dir` (folder name = model name) and return its manifest.

    `splits` is a `training.data.Splits`: its test split feeds the parity check, the reference
    set and the card pictures, its training split the AE's mixture sampler, its validation
    split the anomaly-score calibration, its `info` the manifest's dataset entry. `metrics`
    are the test metrics to publish; `outliers` (name -> split) are held-out sets of other
    data the anomaly scores are evaluated against (beside the test split under Gaussian noise,
    always). Raises `ExportError` (`GraphError`, `ParityError`) and writes nothing when a
    check fails.
    """
    if not tolerance >= 0:
        raise ValueError(f"the parity tolerance must be a number >= 0, not {tolerance}")
    out_dir = Path(out_dir)
    name = name or out_dir.name
    model = model.cpu().eval()
    images, labels = _first_items(splits.test, reference.REFERENCE_POINTS)
    reconstruction = str((training or {}).get("reconstruction", "bce"))
    with _staging_folder(out_dir) as staging:
        parity = _write_graphs(model, images, labels, staging, tolerance, seed, reconstruction)
        latents = _encode(model, images, labels)
        ref = reference.reference_set(latents, labels.numpy(), _num_classes(splits), seed=seed)
        (staging / REFERENCE).write_text(ref.model_dump_json())
        calibration, score_samples = _calibrate(
            model, splits, staging, reconstruction, outliers, threshold_quantile, seed
        )
        manifest_fields = _manifest_fields(
            model, splits, name, description, metrics, training, parity, seed
        ) | {"calibration": calibration}
        card.write_card(model, splits, staging, manifest_fields, score_samples)
        manifest = Manifest(files=hash_files(staging), **manifest_fields)
        (staging / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n")
        verify_folder(staging)
    return manifest


def _manifest_fields(
    model: Autoencoder,
    splits: Splits,
    name: str,
    description: str,
    metrics: Mapping[str, float],
    training: Mapping[str, object] | None,
    parity: Parity,
    seed: int,
) -> dict[str, object]:
    """Every manifest field but `files`, which can only be hashed once the card is drawn."""
    return dict(
        name=name,
        description=description or model.describe(),
        family=model.family,
        architecture=model.architecture,
        variational=model.variational,
        conditional=model.conditional,
        image=ImageSpec(
            channels=model.image_shape[0],
            height=model.image_shape[1],
            width=model.image_shape[2],
            value_range=(0.0, 1.0),
        ),
        latent_dim=model.latent_dim,
        classes=list(splits.classes) if splits.classes else None,
        encoder=_signature(graphs.encoder_signature(model.variational, model.conditional)),
        decoder=_signature(graphs.decoder_signature(model.conditional)),
        onnx_opset=graphs.ONNX_OPSET,
        sampler=_sampler(model, splits, seed),
        dataset=DatasetInfo(**splits.info),
        metrics={k: float(v) for k, v in metrics.items()},
        training=scalar_settings(training or {}),
        parity=parity.as_dict(),
        reference=REFERENCE,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _calibrate(
    model: Autoencoder,
    splits: Splits,
    folder: Path,
    reconstruction: str,
    outliers: Mapping[str, ImageSplit] | None,
    quantile: float,
    seed: int,
):
    """Anomaly-score calibration through the graphs just written to `folder`."""
    scorer = anomaly.GraphScorer(
        folder,
        variational=model.variational,
        num_classes=model.num_classes if model.conditional else 0,
        reconstruction=reconstruction,
    )
    held_out = {
        key: _first_items(split, anomaly.OUTLIER_IMAGES)[0].numpy()
        for key, split in (outliers or {}).items()
    }
    calibration, samples = anomaly.calibrate(
        scorer,
        splits.val.images.numpy(),
        splits.test.images.numpy(),
        held_out,
        quantile=quantile,
        seed=seed,
    )
    foreign = next(iter(held_out.values()), None)  # patches of the first other dataset
    calibration = benchmark.with_benchmark(
        calibration, scorer, splits.test.images.numpy(), foreign, seed=seed
    )
    return calibration, samples


def export_checkpoint(
    checkpoint: Path | str,
    out_dir: Path | str,
    *,
    name: str | None = None,
    data_root: Path | str | None = None,
    metrics: Mapping[str, float] | None = None,
    description: str = "",
    tolerance: float = DEFAULT_TOLERANCE,
    outliers: Mapping[str, ImageSplit] | None = None,
) -> Manifest:
    """Export a training checkpoint (`best.pt` of a run) to `out_dir`.

    The data comes back from the checkpoint's training config (`data_root` overrides where it
    lives). `metrics` default to the run's `metrics.json` when the checkpoint is the run's
    `best.pt`, else the checkpoint is evaluated on the test split now. The anomaly scores are
    evaluated against `outliers`; None: the other dataset of the shipped models
    (`training.data.OTHER_DATASET`) where it is present, and Gaussian noise always.
    """
    checkpoint = Path(checkpoint)
    model, state = load_checkpoint(checkpoint)
    config = TrainConfig.from_dict(state["config"])
    if data_root is not None:
        config.data_root = str(data_root)
    splits = load_data(config)
    if outliers is None:
        outliers, notes = default_outliers(config.dataset, splits.image_shape)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
    if metrics is None:
        metrics = _checkpoint_metrics(checkpoint, model, splits, config)
    return export_model(
        model,
        splits,
        out_dir,
        name=name,
        metrics=metrics,
        description=description,
        training=training_settings(config, state),
        tolerance=tolerance,
        seed=config.seed,
        outliers=outliers,
    )


def training_settings(
    config: TrainConfig, state: Mapping[str, object], epochs_run: int | None = None
) -> dict[str, object]:
    """What the manifest records about training: the config minus machine-local details, the
    best checkpoint's epoch and validation loss, and how many epochs ran when known."""
    settings = {k: v for k, v in config.to_dict().items() if k not in _LOCAL_SETTINGS}
    settings["best_epoch"] = state["epoch"]
    settings["best_val_loss"] = float(state["val_loss"])
    if epochs_run is not None:
        settings["epochs_run"] = epochs_run
    return settings


_LOCAL_SETTINGS = frozenset(
    {
        "data_root",
        "download",
        "device",
        "threads",
        "output_dir",
        "run_name",
        "resume",
        "progress",
        "evaluate",
    }
)


def _checkpoint_metrics(
    checkpoint: Path, model: Autoencoder, splits: Splits, config: TrainConfig
) -> dict[str, float]:
    saved = checkpoint.parent / "metrics.json"
    if checkpoint.name == "best.pt" and saved.exists():
        return json.loads(saved.read_text())
    return evaluate(
        model,
        splits,
        reconstruction=config.reconstruction,
        iw_samples=config.iw_samples,
        seed=config.seed,
    )


def model_from_folder(folder: Path | str) -> tuple[Autoencoder, Manifest]:
    """The PyTorch model an exported folder holds: built from its manifest's settings, with the
    weights of its TorchScript graphs (which carry every parameter)."""
    folder = Path(folder)
    manifest = verify_folder(folder)
    if "model_options" not in manifest.training:
        raise ExportError(
            f"{folder}: the manifest's training settings lack model_options, so the model "
            "cannot be rebuilt from its weights; export it again from its checkpoint"
        )
    config = manifest_config(manifest)
    image = manifest.image
    model = build_model(
        manifest.family,
        manifest.architecture,
        manifest.latent_dim,
        image_shape=(image.channels, image.height, image.width),
        num_classes=manifest.num_classes if manifest.conditional else 0,
        **config.model_options,
    )
    for part in ("encoder", "decoder"):
        weights = graphs.load_torchscript(folder / f"{part}.pt").state_dict()
        getattr(model, part).load_state_dict(
            {k.removeprefix("part."): v for k, v in weights.items()}
        )
    return model.eval(), manifest


def reexport_folder(
    folder: Path | str,
    *,
    data_root: Path | str | None = None,
    outliers: Mapping[str, ImageSplit] | None = None,
    splits: Splits | None = None,
) -> Manifest:
    """Export a model folder again, in place, from its own weights: the graphs in today's
    format, the parity checks, reference set, card and calibration, with the manifest's
    name, description, metrics and training settings kept. For folders exported by an
    earlier version (e.g. before decoders answered their logits). The data is the one the
    manifest's training settings name (from `data_root` when given), unless `splits` are
    given."""
    folder = Path(folder)
    model, manifest = model_from_folder(folder)
    config = manifest_config(manifest)
    if data_root is not None:
        config.data_root = str(data_root)
    calibration = manifest.calibration
    return export_model(
        model,
        splits or load_data(config),
        folder,
        name=manifest.name,
        metrics=manifest.metrics,
        training=manifest.training,
        description=manifest.description,
        tolerance=manifest.parity.get("tolerance", DEFAULT_TOLERANCE),
        seed=config.seed,
        outliers=outliers,
        threshold_quantile=(
            calibration.score.threshold_quantile if calibration else anomaly.DEFAULT_QUANTILE
        ),
    )


def manifest_config(manifest: Manifest) -> TrainConfig:
    """The training config a manifest's training settings describe (machine details unset)."""
    return TrainConfig.from_dict(
        {k: _setting(k, v) for k, v in manifest.training.items() if k in _CONFIG_FIELDS}
    )


_CONFIG_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainConfig))


def _setting(key: str, value: object) -> object:
    """A manifest training setting back as a TrainConfig value (nested ones were JSON)."""
    if key in ("model_options", "image_shape") and isinstance(value, str):
        return json.loads(value)
    return value


def verify_folder(folder: Path | str) -> Manifest:
    """Read a model folder's manifest and check that it lists exactly the folder's files,
    each with the right size and sha256 (as the service's registry checks them). Raises
    `ExportError` otherwise."""
    folder = Path(folder)
    manifest = Manifest.model_validate_json((folder / MANIFEST).read_text())
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {
        MANIFEST
    }
    listed = set(manifest.files)
    wrong = sorted(f for f in listed & present if file_problem(folder, f, manifest.files[f]))
    if listed != present or wrong:
        raise ExportError(
            f"{folder}: manifest does not match the files (missing: {sorted(listed - present)}, "
            f"unlisted: {sorted(present - listed)}, wrong hash or size: {wrong})"
        )
    return manifest


def scalar_settings(
    settings: Mapping[str, object] | object,
) -> dict[str, str | int | float | bool | None]:
    """Training settings as the manifest's flat scalars; nested values become JSON text."""
    if dataclasses.is_dataclass(settings):
        settings = dataclasses.asdict(settings)
    flat: dict[str, str | int | float | bool | None] = {}
    for key, value in settings.items():
        if value is None or isinstance(value, str | int | float | bool):
            flat[key] = value
        elif isinstance(value, Path):
            flat[key] = str(value)
        else:
            flat[key] = json.dumps(value, default=str, sort_keys=True)
    return flat


def _write_graphs(
    model: Autoencoder,
    images: torch.Tensor,
    labels: torch.Tensor,
    folder: Path,
    tolerance: float,
    seed: int,
    reconstruction: str,
) -> Parity:
    """Write both graphs in both formats and require parity on real inputs, of the graphs'
    outputs and of the anomaly scores computed from them."""
    onehot = _one_hot(model, labels[:PARITY_IMAGES])
    image_batch = images[:PARITY_IMAGES]
    latents = _parity_latents(model, image_batch, onehot, seed)
    onehot_z = None if onehot is None else torch.cat([onehot, onehot])
    parts = {
        "encoder": (
            model.encoder,
            graphs.encoder_signature(model.variational, model.conditional),
            _inputs(image_batch, onehot),
        ),
        "decoder": (
            model.decoder,
            graphs.decoder_signature(model.conditional),
            _inputs(latents, onehot_z),
        ),
    }
    figures = {}
    for part_name, (part, signature, inputs) in parts.items():
        module = graphs.graph_module(part, model.conditional)
        example = tuple(t[:2] for t in inputs)
        onnx_path, ts_path = folder / f"{part_name}.onnx", folder / f"{part_name}.pt"
        graphs.write_onnx(module, example, signature, onnx_path)
        graphs.write_torchscript(module, example, ts_path)
        figures[part_name] = graph_parity(module, ts_path, onnx_path, inputs, signature.inputs)
    signatures = {name: signature for name, (_, signature, _) in parts.items()}
    score_figures = score_parity(model, folder, signatures, image_batch, onehot, reconstruction)
    return require_parity(figures, tolerance, score_figures)


def _parity_latents(
    model: Autoencoder, images: torch.Tensor, onehot: torch.Tensor | None, seed: int
) -> torch.Tensor:
    """Latents of real test images, plus as many seeded draws around them (as sampling does)."""
    encoded = model.encode_mean(images, onehot)
    generator = torch.Generator().manual_seed(seed)
    spread = encoded.std(dim=0, keepdim=True) if len(encoded) > 1 else torch.ones_like(encoded)
    noise = torch.randn(encoded.shape, generator=generator) * spread
    return torch.cat([encoded, encoded.mean(dim=0, keepdim=True) + noise])


def _sampler(model: Autoencoder, splits: Splits, seed: int):
    if model.variational:
        return PriorSampler()
    images, labels = _first_items(splits.train, SAMPLER_LATENTS)
    return reference.mixture_sampler(_encode(model, images, labels), seed=seed)


def _encode(
    model: Autoencoder, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000
) -> np.ndarray:
    chunks = [
        model.encode_mean(images[i : i + batch_size], _one_hot(model, labels[i : i + batch_size]))
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(chunks).numpy()


def _first_items(split: ImageSplit, limit: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `limit` images and labels of a split."""
    if len(split) == 0:
        raise ExportError("the split is empty; export needs real images")
    head = split.head(limit)
    return head.images.float().cpu(), head.labels.long().cpu()


def _one_hot(model: Autoencoder, labels: torch.Tensor) -> torch.Tensor | None:
    return model.one_hot(labels) if model.conditional else None


def _inputs(first: torch.Tensor, onehot: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
    return (first,) if onehot is None else (first, onehot)


def _num_classes(splits: Splits) -> int:
    return len(splits.classes) if splits.classes else 0


def _signature(signature: graphs.Signature) -> GraphSignature:
    return GraphSignature(inputs=list(signature.inputs), outputs=list(signature.outputs))


@contextmanager
def _staging_folder(out_dir: Path) -> Iterator[Path]:
    """Yield a hidden sibling folder; on success it replaces `out_dir`, on failure it goes."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent)
    )
    try:
        yield staging
        staging.chmod(0o755)
        _replace(out_dir, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _replace(target: Path, staging: Path) -> None:
    if not target.exists():
        os.rename(staging, target)
        return
    retired = target.with_name(f".{target.name}.{os.getpid()}.retired")
    os.rename(target, retired)
    try:
        os.rename(staging, target)
    except OSError:
        os.rename(retired, target)
        raise
    shutil.rmtree(retired)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="latentserve-train export",
        description="Export a checkpoint's encoder and decoder (ONNX and TorchScript) with its "
        "manifest, reference set and model card into OUT, after checking that PyTorch, "
        "TorchScript and ONNX Runtime agree on real test data. Nothing is written on failure.",
    )
    parser.add_argument("checkpoint", type=Path, help="a training checkpoint (runs/<run>/best.pt)")
    parser.add_argument("out", type=Path, help="the model folder to write (named after the model)")
    parser.add_argument("--data-root", type=Path, help="where the checkpoint's dataset lives")
    parser.add_argument("--description", default="", help="one line for the manifest and card")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help=f"largest absolute difference allowed (default {DEFAULT_TOLERANCE:g})",
    )
    parser.add_argument(
        "--outlier",
        action="append",
        metavar="DATASET[=ROOT]",
        help="another dataset whose test images the anomaly scores are evaluated against "
        "(repeatable; default: the shipped models' other dataset where present, fashion-mnist "
        "for digits and mnist-test-only for fashion-mnist); Gaussian noise always",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    outliers = None
    if args.outlier:
        _, state = load_checkpoint(args.checkpoint)
        shape = tuple(state["model_kwargs"]["image_shape"])
        outliers = {}
        for given in args.outlier:
            dataset, _, root = given.partition("=")
            outliers[dataset] = outlier_split(dataset, shape, root or None)
    try:
        manifest = export_checkpoint(
            args.checkpoint,
            args.out,
            data_root=args.data_root,
            description=args.description,
            tolerance=args.tolerance,
            outliers=outliers,
        )
    except ExportError as error:
        print(f"export refused: {error}", file=sys.stderr)
        return 1
    print(f"exported {manifest.name} to {args.out} (parity: {manifest.parity})")
    return 0
