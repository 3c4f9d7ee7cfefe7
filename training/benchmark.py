"""How well a model's scores and pixel maps find defects: the pixel-level benchmark, and the
same figures on a user's own images.

    latentserve-train benchmark-anomaly exported_models/mnist-vae    # the seeded defect set
    latentserve-train evaluate-anomaly MODEL --normal DIR --anomalous DIR [--masks DIR]

Every figure comes from the exported ONNX graphs through `training.anomaly.GraphScorer` (the
scores and maps `/score` serves) and the manifest's shipped thresholds:

- image AUROC: defective images against normal ones by the model's score
  (`calibration.score`); image F1 of the verdicts `/score` gives: above its threshold (per
  class, by the image's best class, for conditional models where the manifest has them), or
  ink outside the calibrated range (`calibration.ink`);
- pixel AUROC and AUPRO up to 30 % FPR (`training.pixel_metrics`, the MVTec AD protocol) of
  the pixel maps (`calibration.pixel.sigma`) against the masks, the pixels of the normal
  images and of the defective ones pooled; pixel F1 at the pixel threshold
  (`calibration.pixel.threshold`, or per class).

Each group of defective images (a defect kind; a subfolder of --anomalous) is measured against
all the normal images, and `all` pools every group.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.models import scores
from training import pixel_metrics

ALL = "all"
METRICS = ("image_auroc", "image_f1", "pixel_auroc", "aupro", "pixel_f1")
METRIC_TITLES = {
    "image_auroc": "image AUROC",
    "image_f1": "image F1",
    "pixel_auroc": "pixel AUROC",
    "aupro": "AUPRO (FPR ≤ 0.3)",
    "pixel_f1": "pixel F1",
}
SIGMAS = (0.0, 0.5, 1.0, 2.0)


@dataclass
class Judged:
    """A set of images through a model: scores, maps and the thresholds that apply to each."""

    scores: np.ndarray  # [N] the model's score
    maps: np.ndarray  # [N, H, W]
    image_threshold: np.ndarray  # [N]
    pixel_threshold: np.ndarray  # [N]
    odd_ink: np.ndarray  # [N] ink outside the calibrated range: anomalous whatever the score

    @property
    def flagged(self) -> np.ndarray:
        """The image verdicts /score gives: above the threshold, or ink out of range."""
        return (self.scores > self.image_threshold) | self.odd_ink

    def __len__(self) -> int:
        return len(self.scores)


def scorer_for(folder: Path, manifest):
    """The GraphScorer of an exported model folder."""
    from training.anomaly import GraphScorer

    return GraphScorer(
        Path(folder),
        variational=manifest.variational,
        num_classes=manifest.num_classes if manifest.conditional else 0,
        reconstruction=str(manifest.training.get("reconstruction", "bce")),
    )


def judge(
    scorer, calibration, images: np.ndarray, *, sigma: float | None = None, pixel=None
) -> Judged:
    """`images` through `scorer`, with the shipped thresholds of `calibration` (a manifest's
    Calibration); `sigma` and `pixel` (a PixelCalibration) override the manifest's maps."""
    pixel = pixel or calibration.pixel
    if pixel is None:
        raise ValueError("the model has no pixel calibration; re-export it to calibrate its maps")
    sigma = pixel.sigma if sigma is None else sigma
    assessed = scorer.assess(np.asarray(images, np.float32), sigma)
    score = calibration.score
    best = assessed.best_class
    return Judged(
        scores=np.asarray(assessed.scores[score.name], np.float64),
        maps=np.asarray(assessed.maps, np.float64),
        image_threshold=_by_class(score.threshold, score.per_class_thresholds, best, len(images)),
        pixel_threshold=_by_class(pixel.threshold, pixel.per_class, best, len(images)),
        odd_ink=_odd_ink(getattr(calibration, "ink", None), images),
    )


def _odd_ink(ink, images: np.ndarray) -> np.ndarray:
    if ink is None:
        return np.zeros(len(images), bool)
    values = scores.image_ink(images)
    return (values < ink.low) | (values > ink.high)


def _by_class(overall: float, per_class, best, count: int) -> np.ndarray:
    if per_class is None or best is None:
        return np.full(count, float(overall))
    return np.asarray(per_class, np.float64)[np.asarray(best)]


def figures(normal: Judged, anomalous: Judged, masks: np.ndarray | None) -> dict[str, float]:
    """The benchmark's figures of one group of defective images against the normal ones."""
    flagged = np.concatenate([normal.flagged, anomalous.flagged])
    truth = np.concatenate([np.zeros(len(normal), bool), np.ones(len(anomalous), bool)])
    result = {
        "image_auroc": scores.auroc(normal.scores, anomalous.scores),
        "image_f1": pixel_metrics.f1(flagged, truth),
    }
    if masks is not None:
        maps = np.concatenate([normal.maps, anomalous.maps])
        truth = np.concatenate([np.zeros(normal.maps.shape, bool), np.asarray(masks, bool)])
        thresholds = np.concatenate([normal.pixel_threshold, anomalous.pixel_threshold])
        result |= {
            "pixel_auroc": pixel_metrics.pixel_auroc(maps, truth),
            "aupro": pixel_metrics.aupro(maps, truth),
            "pixel_f1": pixel_metrics.f1(maps > thresholds[:, None, None], truth),
        }
    return result


def evaluate_groups(
    normal: Judged, groups: Mapping[str, Judged], masks: Mapping[str, np.ndarray | None]
) -> dict[str, dict[str, float]]:
    """Figures per group and for all groups pooled (`all`), with each one's image count."""
    table = {}
    for name, judged in groups.items():
        table[name] = {"images": float(len(judged)), **figures(normal, judged, masks.get(name))}
    if len(groups) > 1:
        pooled = _pool(list(groups.values()))
        have_masks = all(masks.get(name) is not None for name in groups)
        pooled_masks = np.concatenate([masks[name] for name in groups]) if have_masks else None
        table[ALL] = {"images": float(len(pooled)), **figures(normal, pooled, pooled_masks)}
    return table


def _pool(parts: list[Judged]) -> Judged:
    return Judged(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in Judged.__dataclass_fields__)
    )


# ---------------------------------------------------------------- the defect benchmark


def run_benchmark(
    scorer,
    calibration,
    test_images: np.ndarray,
    foreign: np.ndarray | None,
    *,
    seed: int = 0,
    count: int | None = None,
    sigma: float | None = None,
    pixel=None,
) -> dict[str, dict[str, float]]:
    """The benchmark's figures per defect kind and `all`, with the normal images' count."""
    from training import defects

    made = defects.benchmark_set(
        test_images, seed=seed, count=count or defects.DEFAULT_COUNT, foreign=foreign
    )
    normal = judge(scorer, calibration, made.normal, sigma=sigma, pixel=pixel)
    groups = {
        kind: judge(scorer, calibration, images, sigma=sigma, pixel=pixel)
        for kind, images in made.anomalous.items()
    }
    table = evaluate_groups(normal, groups, made.masks)
    return {"normal": {"images": float(len(normal))}, **table}


def flat(table: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """{group: {metric: value}} -> {metric_group: value}: the manifest's
    `calibration.pixel.evaluation`."""
    return {
        f"{metric}_{group}": value for group, row in table.items() for metric, value in row.items()
    }


def unflat(evaluation: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """The inverse of `flat` (group names hold no underscore)."""
    table: dict[str, dict[str, float]] = {}
    for key, value in evaluation.items():
        metric, _, group = key.rpartition("_")
        table.setdefault(group, {})[metric] = value
    return table


def with_benchmark(calibration, scorer, test_images, foreign, *, seed: int = 0):
    """`calibration` with the benchmark's figures in `pixel.evaluation` (export calls this
    with the model's test split and the other dataset's first test images)."""
    from training.defects import DefectError

    if calibration.pixel is None:
        return calibration
    try:
        table = run_benchmark(scorer, calibration, test_images, foreign, seed=seed)
    except DefectError as error:
        print(f"note: no defect benchmark for this model: {error}", file=sys.stderr)
        return calibration
    pixel = calibration.pixel.model_copy(update={"evaluation": flat(table)})
    return calibration.model_copy(update={"pixel": pixel})


def sigma_sweep(
    scorer,
    calibration,
    validation: np.ndarray,
    test_images: np.ndarray,
    foreign: np.ndarray | None,
    sigmas=SIGMAS,
    *,
    seed: int = 0,
) -> dict[float, dict[str, dict[str, float]]]:
    """The benchmark at each smoothing `sigma`, its pixel threshold calibrated on `validation`
    at that sigma the way export calibrates the shipped one."""
    from training import anomaly

    result = {}
    quantile = calibration.pixel.quantile
    for sigma in sigmas:
        normal = scorer.assess(np.asarray(validation, np.float32), sigma)
        pixel = anomaly.pixel_calibration(
            normal, quantile, sigma, scorer.reconstruction, scorer.num_classes
        )
        result[sigma] = run_benchmark(
            scorer, calibration, test_images, foreign, seed=seed, sigma=sigma, pixel=pixel
        )
    return result


# ---------------------------------------------------------------- printing


def markdown_table(table: Mapping[str, Mapping[str, float]], title: str = "defect") -> str:
    groups = [g for g in table if g != "normal"]
    metrics = [m for m in METRICS if any(m in table[g] for g in groups)]
    lines = [
        f"| {title} | images | " + " | ".join(METRIC_TITLES[m] for m in metrics) + " |",
        "|---|---:|" + "---:|" * len(metrics),
    ]
    for group in groups:
        row = table[group]
        cells = " | ".join(f"{row[m]:.3f}" if m in row else "" for m in metrics)
        lines.append(f"| {group} | {int(row['images']):,} | {cells} |")
    return "\n".join(lines)


# ---------------------------------------------------------------- benchmark-anomaly


def benchmark_main(argv: list[str] | None = None) -> int:
    from training.cli import UsageError
    from training.defects import DEFAULT_COUNT, benchmark_data
    from training.export import manifest_config, verify_folder
    from training.train import load_data

    parser = argparse.ArgumentParser(
        prog="latentserve-train benchmark-anomaly",
        description="Measure exported models on the seeded pixel-level defect benchmark "
        "(latentserve-train defects): image AUROC, pixel AUROC, AUPRO to 30%% FPR and F1 at "
        "the shipped thresholds, per defect kind, from each model's own test split (the "
        "numbers export stores in calibration.pixel.evaluation). --sigma also measures the "
        "maps at other smoothings, each with a pixel threshold calibrated at that sigma.",
    )
    parser.add_argument("folders", nargs="+", type=Path, help="exported model folders")
    parser.add_argument("--data-root", help="where the models' dataset lives")
    parser.add_argument("--seed", type=int, default=0, help="the defects' seed (default: 0)")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help="test images used")
    parser.add_argument(
        "--sigma", type=float, nargs="+", metavar="S", help=f"also at these (e.g. {SIGMAS})"
    )
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    args = parser.parse_args(argv)
    if args.count < 2:
        raise UsageError("--count must be at least 2")
    report = {}
    for folder in args.folders:
        manifest = verify_folder(folder)
        calibration = manifest.calibration
        if calibration is None or calibration.pixel is None:
            raise ValueError(f"{folder} has no pixel calibration; re-export it first")
        config = manifest_config(manifest)
        if args.data_root:
            config.data_root = args.data_root
        test, foreign, _ = benchmark_data(config.dataset, config.data_root, manifest.image.shape)
        scorer = scorer_for(folder, manifest)
        table = run_benchmark(scorer, calibration, test, foreign, seed=args.seed, count=args.count)
        report[manifest.name] = {"sigma": calibration.pixel.sigma, "table": table}
        print(
            f"## {manifest.name} (sigma {calibration.pixel.sigma:g}, "
            f"{int(table['normal']['images'])} normal images)\n"
        )
        print(markdown_table(table) + "\n")
        if args.sigma:
            validation = load_data(config).val.images.numpy()
            sweep = sigma_sweep(
                scorer, calibration, validation, test, foreign, args.sigma, seed=args.seed
            )
            report[manifest.name]["sweep"] = {str(s): t for s, t in sweep.items()}
            print(markdown_table({f"σ={s:g}": t[ALL] for s, t in sweep.items()}, "smoothing"))
            print()
        sys.stdout.flush()
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"figures: {args.json}")
    return 0


# ---------------------------------------------------------------- evaluate-anomaly


@dataclass
class Folder:
    """Images read from a folder: [N, C, H, W], their paths below it and their group."""

    images: np.ndarray
    paths: list[Path]
    groups: list[str]


def read_folder(root: Path, shape: tuple[int, int, int], flat_group: str) -> Folder:
    """A folder of images read like training's image folders (flat, or one subfolder per
    group), letterboxed to `shape`; a flat folder's images form the group `flat_group`."""
    from training.data import _load_picture, image_folder_files

    files, labels, classes = image_folder_files(Path(root))
    images = np.stack([_load_picture(str(path), shape).numpy() for path in files])
    groups = [classes[label] if classes else flat_group for label in labels]
    return Folder(images, [path.relative_to(root) for path in files], groups)


def read_masks(root: Path, paths: list[Path], shape: tuple[int, int, int]) -> np.ndarray:
    """The mask [N, H, W] of each image: root/<the image's path> under any image suffix,
    nonzero = defect, letterboxed to `shape` as the image was."""
    from PIL import Image

    from service.rest.codecs import letterbox
    from training.data import IMAGE_SUFFIXES, DataError

    _, height, width = shape
    masks = []
    for path in paths:
        found = [
            root / path.with_suffix(suffix)
            for suffix in (path.suffix, *IMAGE_SUFFIXES)
            if (root / path.with_suffix(suffix)).is_file()
        ]
        if not found:
            raise DataError(f"no mask for {path} in {root} (expected {root / path})")
        try:
            with Image.open(found[0]) as picture:
                pixels = np.asarray(picture.convert("L"))
        except OSError as error:
            raise DataError(f"{found[0]} is not an image this loader can read ({error})") from error
        binary = Image.fromarray(((pixels > 0) * 255).astype(np.uint8))
        masks.append(np.asarray(letterbox(binary, width, height, Image.Resampling.NEAREST)) > 0)
    return np.stack(masks)


def evaluate_main(argv: list[str] | None = None) -> int:
    from training.cli import UsageError
    from training.export import verify_folder

    parser = argparse.ArgumentParser(
        prog="latentserve-train evaluate-anomaly",
        description="Measure an exported model's anomaly scores and pixel maps on your own "
        "images: image AUROC and F1 at the shipped threshold, and where masks are given pixel "
        "AUROC, AUPRO to 30%% FPR and pixel F1 at the shipped pixel threshold. Prints a table "
        "and writes results.json, roc.png and histogram.png.",
        epilog="Folders are read like training's image folders: flat, or one subfolder per "
        "group (each --anomalous subfolder, e.g. a defect kind, is measured on its own and "
        "pooled as 'all'); images are letterboxed to the model's shape. A mask has its image's "
        "path below --masks (any image suffix); nonzero pixels are the defect. "
        "latentserve-train defects writes such folders. --debug shows a failure's traceback.",
    )
    parser.add_argument("model", type=Path, help="an exported model folder")
    parser.add_argument("--normal", type=Path, required=True, help="images without anomalies")
    parser.add_argument("--anomalous", type=Path, required=True, help="images with anomalies")
    parser.add_argument("--masks", type=Path, help="a mask per anomalous image (same paths)")
    parser.add_argument(
        "--out", type=Path, help="where the results go (default: anomaly-evaluation/<model>)"
    )
    args = parser.parse_args(argv)
    for option, folder in (("--normal", args.normal), ("--anomalous", args.anomalous)):
        if not folder.is_dir():
            raise UsageError(f"{option} {folder} is not a folder")
    if args.masks is not None and not args.masks.is_dir():
        raise UsageError(f"--masks {args.masks} is not a folder")
    if not (args.model / "manifest.json").is_file():
        raise UsageError(f"{args.model} is not an exported model folder (no manifest.json)")
    manifest = verify_folder(args.model)
    calibration = manifest.calibration
    if calibration is None or calibration.pixel is None:
        raise ValueError(f"{args.model} has no pixel calibration; re-export it first")
    shape = manifest.image.shape
    normal = read_folder(args.normal, shape, "normal")
    anomalous = read_folder(args.anomalous, shape, "anomalous")
    masks = None if args.masks is None else read_masks(args.masks, anomalous.paths, shape)
    scorer = scorer_for(args.model, manifest)
    judged_normal = judge(scorer, calibration, normal.images)
    judged = judge(scorer, calibration, anomalous.images)
    names = list(dict.fromkeys(anomalous.groups))
    members = {name: np.array([g == name for g in anomalous.groups]) for name in names}
    groups = {name: _select(judged, chosen) for name, chosen in members.items()}
    group_masks = {
        name: None if masks is None else masks[chosen] for name, chosen in members.items()
    }
    table = evaluate_groups(judged_normal, groups, group_masks)
    out = args.out or Path("anomaly-evaluation") / manifest.name
    out.mkdir(parents=True, exist_ok=True)
    results = {
        "model": manifest.name,
        "normal": {"folder": str(args.normal), "images": len(normal.images)},
        "anomalous": {"folder": str(args.anomalous), "images": len(anomalous.images)},
        "masks": None if args.masks is None else str(args.masks),
        "score": calibration.score.name,
        "image_threshold": calibration.score.threshold,
        "pixel_threshold": calibration.pixel.threshold,
        "sigma": calibration.pixel.sigma,
        "groups": table,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    draw_roc(judged_normal, groups, group_masks, out / "roc.png")
    draw_histogram(judged_normal, groups, calibration, out / "histogram.png")
    print(
        f"{manifest.name}: {len(normal.images)} normal, {len(anomalous.images)} anomalous images; "
        f"score {calibration.score.name} (threshold {calibration.score.threshold:.4g}), "
        f"pixel threshold {calibration.pixel.threshold:.4g} (sigma {calibration.pixel.sigma:g})\n"
    )
    print(markdown_table(table, "group"))
    print(f"\nresults: {out / 'results.json'}, {out / 'roc.png'}, {out / 'histogram.png'}")
    return 0


def _select(judged: Judged, chosen: np.ndarray) -> Judged:
    return Judged(*(getattr(judged, f)[chosen] for f in Judged.__dataclass_fields__))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def draw_roc(normal: Judged, groups, masks, path: Path) -> Path:
    """Image ROC per group; beside it the pixel ROC where masks are given."""
    plt = _pyplot()
    have_masks = all(masks.get(name) is not None for name in groups)
    figure, axes = plt.subplots(1, 2 if have_masks else 1, figsize=(9 if have_masks else 4.8, 4.2))
    axes = np.atleast_1d(axes)
    for name, judged in groups.items():
        fpr, tpr = pixel_metrics.roc_curve(normal.scores, judged.scores)
        axes[0].plot(fpr, tpr, label=f"{name} ({scores.auroc(normal.scores, judged.scores):.3f})")
        if have_masks:
            maps = np.concatenate([normal.maps, judged.maps])
            truth = np.concatenate([np.zeros(normal.maps.shape, bool), masks[name]])
            fpr, tpr = _thinned(*pixel_metrics.roc_curve(maps[~truth], maps[truth]))
            auc = pixel_metrics.pixel_auroc(maps, truth)
            axes[1].plot(fpr, tpr, label=f"{name} ({auc:.3f})")
    titles = ["images (by the score)", "pixels (by the map)"]
    for axis, title in zip(axes, titles, strict=False):
        axis.plot([0, 1], [0, 1], color="gray", linestyle=":", linewidth=1)
        axis.set(xlabel="false-positive rate", ylabel="true-positive rate", title=title)
        axis.legend(fontsize=7, title="AUROC", title_fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


def _thinned(x: np.ndarray, y: np.ndarray, points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """At most `points` of a curve, first and last kept: enough to draw."""
    keep = np.unique(np.linspace(0, len(x) - 1, min(points, len(x))).round().astype(int))
    return x[keep], y[keep]


def draw_histogram(normal: Judged, groups, calibration, path: Path) -> Path:
    """The image scores of the normal images and of each group, the threshold dashed."""
    from training import anomaly

    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.4, 3.6))
    sets = {"normal": normal.scores, **{name: j.scores for name, j in groups.items()}}
    anomaly.histogram_panel(axis, sets, calibration.score)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path
