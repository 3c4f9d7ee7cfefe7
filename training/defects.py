"""Synthetic, seeded defects with pixel masks: the ground truth of the pixel-level benchmark.

    latentserve-train defects OUT --dataset mnist-test-only      # held-out digits
    latentserve-train defects OUT --dataset fashion-mnist        # held-out garments

A benchmark set takes the first `count` images of a dataset's test split (never trained on):
the first half stays normal, and every image of the second half is copied once per defect
kind with that defect pasted in:

- `stroke`: a scratch, a straight or bent line 1-2.5 px wide, anti-aliased;
- `blob`: a stain, two or three overlapping soft discs;
- `missing`: a missing part, ink erased to the background around a point of the object;
- `foreign`: a square patch of an image of another dataset pasted in (its content decides
  what changes: a garment's texture on a digit, a digit's stroke and black ground on a
  garment).

Strokes and blobs take the colour that contrasts with what lies under them (bright on dark,
dark on bright), so they are visible on any image. Every result is quantised to 8 bits, as
a PNG stores it, and its mask is exactly the set of pixels that changed: a pixel the defect
moved by less than VISIBLE (0.1 of the range) is put back, a defect that changes fewer than
MIN_PIXELS pixels is drawn again elsewhere. Each defect's randomness comes from
(seed, kind, image index) alone, so an image gets the same defect whatever `count` is.

`write_set` stores a set as image folders (normal/, anomalous/<kind>/, masks/<kind>/) that
`latentserve-train evaluate-anomaly` reads back to the same numbers: the images are 8-bit
already, so nothing is lost in the PNGs.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

KINDS = ("stroke", "blob", "missing", "foreign")
VISIBLE = 26  # in 8-bit steps (~0.1): a pixel moved by less is put back, not in the mask
MIN_PIXELS = 6  # a defect changes at least this many pixels
TRIES = 50
DEFAULT_COUNT = 1000  # test images: half normal, half the bases of the defective copies
FOREIGN_IMAGES = 2000  # the first images of the other dataset's test split patches come from


class DefectError(ValueError):
    """A benchmark set that cannot be made from the images given."""


@dataclass
class DefectSet:
    """Images with and without defects, their masks and where they came from."""

    normal: np.ndarray  # float32 [N, C, H, W], 8-bit values
    anomalous: dict[str, np.ndarray] = field(default_factory=dict)  # kind -> [M, C, H, W]
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # kind -> bool [M, H, W]
    normal_index: np.ndarray = field(default_factory=lambda: np.zeros(0, int))  # test split
    defect_index: np.ndarray = field(default_factory=lambda: np.zeros(0, int))  # bases

    @property
    def kinds(self) -> list[str]:
        return list(self.anomalous)


def benchmark_set(
    images: np.ndarray,
    *,
    seed: int = 0,
    count: int = DEFAULT_COUNT,
    foreign: np.ndarray | None = None,
    kinds: tuple[str, ...] = KINDS,
) -> DefectSet:
    """The benchmark set of the first `count` of `images` (a test split, [N, C, H, W] in
    [0, 1]): the first half normal, the second half once per kind with a defect. Without
    `foreign` images the `foreign` kind is left out."""
    images = np.asarray(images)[:count]
    if len(images) < 2:
        raise DefectError("a benchmark set needs at least 2 images")
    half = len(images) // 2
    bases = np.arange(half, len(images))
    result = DefectSet(
        normal=to_float(to_bytes(images[:half])),
        normal_index=np.arange(half),
        defect_index=bases,
    )
    for kind in kinds:
        if kind == "foreign" and foreign is None:
            continue
        pairs = [defective(images[i], kind, seed, int(i), foreign) for i in bases]
        result.anomalous[kind] = np.stack([image for image, _ in pairs])
        result.masks[kind] = np.stack([mask for _, mask in pairs])
    return result


def defective(
    image: np.ndarray, kind: str, seed: int, index: int, foreign: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One image [C, H, W] with a defect of `kind` and its mask [H, W]: seeded by
    (seed, kind, index) alone."""
    if kind not in DRAWERS:
        raise ValueError(f"unknown defect kind {kind!r}; choose from {', '.join(KINDS)}")
    rng = np.random.default_rng([seed, KINDS.index(kind), index])
    clean = to_bytes(image[None])[0].astype(np.int16)
    unit = clean / 255.0
    for _ in range(TRIES):
        drawn = DRAWERS[kind](unit, rng, foreign)
        result = np.clip(np.rint(drawn * 255.0), 0, 255).astype(np.int16)
        moved = np.abs(result - clean).max(axis=0) >= VISIBLE
        if moved.sum() >= MIN_PIXELS:
            result = np.where(moved[None], result, clean).astype(np.uint8)
            return to_float(result[None])[0], moved
    raise DefectError(f"no visible {kind} defect found for image {index} in {TRIES} tries")


# ---------------------------------------------------------------- the kinds


def _grid(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0 : shape[-2], 0 : shape[-1]].astype(np.float64)


def _contrast(unit: np.ndarray, alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A gray level [C] that stands out from the image under `alpha`: bright on dark, dark on
    bright."""
    weights = alpha / max(alpha.sum(), 1e-9)
    under = float((unit.mean(axis=0) * weights).sum())
    level = rng.uniform(0.8, 1.0) if under < 0.5 else rng.uniform(0.0, 0.2)
    return np.full(unit.shape[0], level)


def _paint(unit: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    return (1.0 - alpha[None]) * unit + alpha[None] * colour[:, None, None]


def _segment_distance(ys, xs, start, end) -> np.ndarray:
    direction = end - start
    length = max(float(direction @ direction), 1e-9)
    t = np.clip(((ys - start[0]) * direction[0] + (xs - start[1]) * direction[1]) / length, 0, 1)
    return np.hypot(ys - (start[0] + t * direction[0]), xs - (start[1] + t * direction[1]))


def _stroke(unit, rng, foreign):
    height, width = unit.shape[-2:]
    ys, xs = _grid(unit.shape)
    side = min(height, width)
    start = rng.uniform([0, 0], [height - 1, width - 1])
    angle = rng.uniform(0, 2 * np.pi)
    length = rng.uniform(0.25, 0.6) * side
    end = start + length * np.array([np.sin(angle), np.cos(angle)])
    points = [start, end]
    if rng.random() < 0.5:  # bent: through a displaced midpoint
        normal = np.array([np.cos(angle), -np.sin(angle)])
        points = [start, (start + end) / 2 + rng.uniform(-0.25, 0.25) * length * normal, end]
    distance = np.min(
        [_segment_distance(ys, xs, a, b) for a, b in zip(points, points[1:], strict=False)],
        axis=0,
    )
    half_width = rng.uniform(0.5, 1.25)
    alpha = np.clip(half_width + 0.5 - distance, 0.0, 1.0)
    return _paint(unit, alpha, _contrast(unit, alpha, rng))


def _blob(unit, rng, foreign):
    height, width = unit.shape[-2:]
    ys, xs = _grid(unit.shape)
    centre = rng.uniform([2, 2], [height - 3, width - 3])
    alpha = np.zeros((height, width))
    for _ in range(rng.integers(2, 4)):
        radius = rng.uniform(1.2, 3.0)
        offset = rng.normal(0.0, 1.2, 2)
        distance = np.hypot(ys - centre[0] - offset[0], xs - centre[1] - offset[1])
        alpha = np.maximum(alpha, np.clip(radius + 0.5 - distance, 0.0, 1.0))
    return _paint(unit, alpha, _contrast(unit, alpha, rng))


def _missing(unit, rng, foreign):
    height, width = unit.shape[-2:]
    ys, xs = _grid(unit.shape)
    background = _background(unit)
    ink = np.abs(unit - background[:, None, None]).max(axis=0) > 0.5
    candidates = np.argwhere(ink) if ink.any() else np.argwhere(np.ones_like(ink))
    centre = candidates[rng.integers(len(candidates))] + rng.uniform(-0.5, 0.5, 2)
    radii = rng.uniform(2.0, 4.5, 2)
    angle = rng.uniform(0, np.pi)
    dy, dx = ys - centre[0], xs - centre[1]
    along = (dy * np.cos(angle) + dx * np.sin(angle)) / radii[0]
    across = (-dy * np.sin(angle) + dx * np.cos(angle)) / radii[1]
    alpha = np.clip((1.0 - np.hypot(along, across)) * radii.mean() + 0.5, 0.0, 1.0)
    return _paint(unit, alpha, background)


def _background(unit: np.ndarray) -> np.ndarray:
    """The gray level [C] of the image's border: the ground the object lies on."""
    border = np.concatenate([unit[:, 0, :], unit[:, -1, :], unit[:, :, 0], unit[:, :, -1]], axis=1)
    return np.median(border, axis=1)


def _foreign(unit, rng, foreign):
    channels, height, width = unit.shape
    size = int(rng.integers(max(3, min(height, width) // 4), max(4, min(height, width) * 3 // 7)))
    donor = np.asarray(foreign[rng.integers(len(foreign))], np.float64)
    donor = _channels(donor, channels)
    # the patch of the donor with the most going on, of a few drawn at random
    corners = rng.integers(0, [donor.shape[1] - size + 1, donor.shape[2] - size + 1], (4, 2))
    patches = [donor[:, y : y + size, x : x + size] for y, x in corners]
    patch = max(patches, key=lambda p: float(p.std()))
    y, x = rng.integers(0, [height - size + 1, width - size + 1])
    result = unit.copy()
    result[:, y : y + size, x : x + size] = patch
    return result


def _channels(image: np.ndarray, channels: int) -> np.ndarray:
    if image.shape[0] == channels:
        return image
    if channels == 1:
        return image.mean(axis=0, keepdims=True)
    return np.repeat(image[:1], channels, axis=0)


DRAWERS: dict[str, Callable] = {
    "stroke": _stroke,
    "blob": _blob,
    "missing": _missing,
    "foreign": _foreign,
}


# ---------------------------------------------------------------- 8-bit images


def to_bytes(images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] -> uint8, as a PNG stores them."""
    return np.clip(np.rint(np.asarray(images, np.float64) * 255.0), 0, 255).astype(np.uint8)


def to_float(pixels: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1], exactly as training.data.to_float_images (and so the image
    folder loader) converts them."""
    return np.asarray(pixels, np.float32) / np.float32(255.0)


# ---------------------------------------------------------------- folders


def write_set(defects: DefectSet, folder: Path, about: dict | None = None) -> Path:
    """Write `defects` as image folders under `folder`: normal/, anomalous/<kind>/ and
    masks/<kind>/ (0 or 255, the same file names), and defects.json saying what is where."""
    from PIL import Image

    folder = Path(folder)
    for sub in ("normal", "anomalous", "masks"):
        (folder / sub).mkdir(parents=True, exist_ok=True)

    def save(image: np.ndarray, path: Path) -> None:
        pixels = to_bytes(image)
        picture = pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)
        Image.fromarray(picture).save(path)

    for image, index in zip(defects.normal, defects.normal_index, strict=True):
        save(image, folder / "normal" / f"{index:05d}.png")
    for kind in defects.kinds:
        (folder / "anomalous" / kind).mkdir(exist_ok=True)
        (folder / "masks" / kind).mkdir(exist_ok=True)
        for image, mask, index in zip(
            defects.anomalous[kind], defects.masks[kind], defects.defect_index, strict=True
        ):
            save(image, folder / "anomalous" / kind / f"{index:05d}.png")
            Image.fromarray(mask.astype(np.uint8) * 255).save(
                folder / "masks" / kind / f"{index:05d}.png"
            )
    summary = {
        **(about or {}),
        "normal": {"images": len(defects.normal), "test_split_index": _span(defects.normal_index)},
        "anomalous": {
            kind: {
                "images": len(defects.anomalous[kind]),
                "test_split_index": _span(defects.defect_index),
                "mean_mask_pixels": float(defects.masks[kind].sum(axis=(1, 2)).mean()),
            }
            for kind in defects.kinds
        },
        "visible_change": VISIBLE / 255.0,
        "min_pixels": MIN_PIXELS,
    }
    (folder / "defects.json").write_text(json.dumps(summary, indent=2) + "\n")
    return folder


def _span(index: np.ndarray) -> str:
    return f"{int(index[0])}-{int(index[-1])}" if len(index) else ""


# ---------------------------------------------------------------- the command


def benchmark_data(
    dataset: str, root: str | Path | None, image_shape: tuple[int, int, int] | None = None
) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """The test split of `dataset` and the first FOREIGN_IMAGES test images of its other
    dataset (training.data.OTHER_DATASET; None where it is absent), as arrays."""
    from training.data import OTHER_DATASET, DataError, default_root, load_splits, outlier_split

    test = load_splits(dataset, root or default_root(dataset), image_shape=image_shape).test
    other = OTHER_DATASET.get(dataset)
    foreign = None
    if other is not None:
        try:
            foreign = outlier_split(other, test.image_shape).images[:FOREIGN_IMAGES].numpy()
        except (FileNotFoundError, DataError):
            foreign = None
    return test.images.numpy(), foreign, other if foreign is not None else None


def main(argv: list[str] | None = None) -> int:
    from training.cli import UsageError

    parser = argparse.ArgumentParser(
        prog="latentserve-train defects",
        description="Write the pixel-level benchmark set: the first COUNT test images of a "
        "dataset, half kept normal, half copied once per defect kind (stroke, blob, missing "
        "part, foreign patch from the other dataset) with seeded synthetic defects, as image "
        "folders OUT/normal, OUT/anomalous/<kind> and OUT/masks/<kind> (same file names; 255 "
        "= defect) that evaluate-anomaly reads.",
    )
    parser.add_argument("out", type=Path, help="the folder to write (created)")
    parser.add_argument("--dataset", default="mnist-test-only", help="default: mnist-test-only")
    parser.add_argument("--data-root", help="where the dataset lives (default: its usual place)")
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help="test images used")
    parser.add_argument(
        "--image-shape", type=int, nargs=3, metavar=("C", "H", "W"), help="convert to this shape"
    )
    args = parser.parse_args(argv)
    if args.count < 2:
        raise UsageError("--count must be at least 2")
    if args.out.exists() and any(args.out.iterdir()):
        raise UsageError(f"{args.out} exists and is not empty; choose a new folder")
    images, foreign, other = benchmark_data(args.dataset, args.data_root, args.image_shape)
    defects = benchmark_set(images, seed=args.seed, count=args.count, foreign=foreign)
    about = {
        "dataset": args.dataset,
        "split": "test",
        "seed": args.seed,
        "foreign_patches_from": other and f"the first {FOREIGN_IMAGES} test images of {other}",
    }
    write_set(defects, args.out, about)
    print(f"{len(defects.normal)} normal images: {args.out / 'normal'}")
    for kind in defects.kinds:
        print(
            f"{len(defects.anomalous[kind])} with a {kind} defect: {args.out / 'anomalous' / kind}"
        )
    print(f"masks: {args.out / 'masks'}; what is where: {args.out / 'defects.json'}")
    if other is None:
        print("note: no other dataset found for foreign patches; that kind is left out")
    return 0
