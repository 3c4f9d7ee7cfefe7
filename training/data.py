"""Datasets and their fixed, seeded train/validation/test splits.

Every dataset is loaded whole into memory as float32 images [N, C, H, W] in [0, 1] and int64
labels, then split once:

- `mnist`, `fashion-mnist`, `kmnist`: the standard train and test sets, read by torchvision's
  dataset classes from a local root; the validation set is `val_size` (default 5,000) training
  images drawn at random with the seed, and the rest is the training set.
- `mnist-test-only`: only the official 10,000-image MNIST test set (t10k IDX files): images
  0-7999 train, 8000-8999 validation, 9000-9999 test (fixed by position, not by the seed).
- `image-folder`: a user's folder, flat (one unlabelled class) or with one subfolder per class,
  images of any size and mode letterboxed to the requested image shape (default 3x32x32);
  10% of every class to validation and 10% to test (at least one image each), drawn with the
  seed, so that every class reaches both held-out splits and export's reference set.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

DEFAULT_VAL_SIZE = 5000
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@dataclass
class ImageSplit:
    """One split: float32 images [N, C, H, W] in [0, 1] and int64 labels [N]."""

    images: Tensor
    labels: Tensor

    def __post_init__(self) -> None:
        if len(self.images) != len(self.labels):
            raise ValueError("images and labels differ in length")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index], self.labels[index]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def batches(
        self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield (images, labels) batches; slicing in-memory tensors beats a DataLoader here."""
        order = torch.randperm(len(self), generator=generator) if shuffle else None
        for start in range(0, len(self), batch_size):
            if order is None:
                yield (
                    self.images[start : start + batch_size],
                    self.labels[start : start + batch_size],
                )
            else:
                index = order[start : start + batch_size]
                yield self.images[index], self.labels[index]

    def head(self, count: int) -> ImageSplit:
        """The first `count` images (all of them when count is larger)."""
        return ImageSplit(self.images[:count], self.labels[:count])


@dataclass
class Splits:
    train: ImageSplit
    val: ImageSplit
    test: ImageSplit
    classes: list[str]
    info: dict  # name, source, split {train/validation/test: description}, sizes {...: int}

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.train.image_shape

    @property
    def num_classes(self) -> int:
        return len(self.classes)


# ---------------------------------------------------------------- reading and converting


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzip or plain): the format of the MNIST family's files."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def to_float_images(pixels: Tensor | np.ndarray) -> Tensor:
    """uint8 [N, H, W] or [N, C, H, W] -> float32 [N, C, H, W] in [0, 1]."""
    if isinstance(pixels, Tensor):
        pixels = pixels.numpy()
    images = torch.from_numpy(np.array(pixels, dtype=np.uint8))
    if images.dim() == 3:
        images = images.unsqueeze(1)
    return images.float().div_(255.0)


def fit_to_shape(images: Tensor, shape: tuple[int, int, int] | None) -> Tensor:
    """Convert float images [N, C, H, W] to `shape` (channels, height, width)."""
    if shape is None or tuple(images.shape[1:]) == tuple(shape):
        return images
    channels, height, width = shape
    if images.shape[1] != channels:
        if channels == 1:
            weights = torch.tensor([0.299, 0.587, 0.114])[: images.shape[1]]
            images = (images * weights[None, :, None, None]).sum(1, keepdim=True)
            images = images / weights.sum()
        elif images.shape[1] == 1 and channels == 3:
            images = images.expand(-1, 3, -1, -1)
        else:
            raise ValueError(f"cannot convert {images.shape[1]} channels to {channels}")
    if images.shape[2:] != (height, width):
        images = F.interpolate(images, size=(height, width), mode="bilinear", antialias=True)
    return images.clamp(0.0, 1.0).contiguous()


def seeded_permutation(count: int, seed: int) -> Tensor:
    return torch.randperm(count, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- torchvision datasets


def _cache_root() -> Path:
    default = Path.home() / ".cache" / "latentserve" / "torchvision"
    return Path(os.environ.get("LATENTSERVE_DATA_CACHE", default))


def torchvision_root(root: Path, class_name: str, download: bool) -> Path:
    """A root that torchvision's `<class_name>` can read without the network.

    Accepts torchvision's own layout (`root/<ClassName>/raw/<files>`) or a folder holding the
    four IDX files (gzip or not) directly, such as /usr/share/datasets/fashion-mnist; for
    the latter the files are unpacked once into a cache laid out the way torchvision expects.
    """
    if (root / class_name / "raw").is_dir() or download:
        return root
    sources = {name: _find_idx(root, name) for name in IDX_FILES}
    missing = [name for name, path in sources.items() if path is None]
    if missing:
        raise FileNotFoundError(
            f"{class_name}: no {root}/{class_name}/raw/ and no IDX files in {root} "
            f"(missing {', '.join(missing)}); pass --download to fetch them"
        )
    key = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
    cache = _cache_root() / key
    raw = cache / class_name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, source in sources.items():
        target = raw / name
        if not target.exists():
            tmp = raw / f".{name}.{os.getpid()}"
            tmp.write_bytes(_read_bytes(source))
            tmp.replace(target)  # atomic, so concurrent runs never see half a file
    return cache


def _find_idx(root: Path, name: str) -> Path | None:
    for candidate in (root / name, root / f"{name}.gz"):
        if candidate.exists():
            return candidate
    return None


def _read_bytes(path: Path) -> bytes:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        return handle.read()


def _torchvision_splits(
    name: str,
    class_name: str,
    root: Path,
    seed: int,
    val_size: int,
    download: bool,
    image_shape: tuple[int, int, int] | None,
    class_names: list[str] | None = None,
) -> Splits:
    import torchvision.datasets as tvd

    dataset_class = getattr(tvd, class_name)
    tv_root = torchvision_root(root, class_name, download)
    train_set = dataset_class(str(tv_root), train=True, download=download)
    test_set = dataset_class(str(tv_root), train=False, download=download)
    train_images = fit_to_shape(to_float_images(train_set.data), image_shape)
    test_images = fit_to_shape(to_float_images(test_set.data), image_shape)
    total = len(train_images)
    if not 0 < val_size < total:
        raise ValueError(f"val_size must lie between 1 and {total - 1}")
    order = seeded_permutation(total, seed)
    val_index, train_index = order[:val_size].sort().values, order[val_size:].sort().values
    splits = Splits(
        train=ImageSplit(train_images[train_index], train_set.targets[train_index].long()),
        val=ImageSplit(train_images[val_index], train_set.targets[val_index].long()),
        test=ImageSplit(test_images, test_set.targets.long()),
        classes=class_names or list(train_set.classes),
        info={},
    )
    splits.info = {
        "name": name,
        "source": f"torchvision.datasets.{class_name} read from {portable(root)}",
        "split": {
            "train": f"the {total:,} standard training images less the validation slice",
            "validation": f"{val_size:,} standard training images drawn at random (seed {seed})",
            "test": f"the standard {len(test_images):,}-image test set",
        },
        "sizes": _sizes(splits),
    }
    return splits


def _sizes(splits: Splits) -> dict[str, int]:
    return {"train": len(splits.train), "validation": len(splits.val), "test": len(splits.test)}


def _load_mnist(root, seed, val_size, download, image_shape):
    digits = [str(d) for d in range(10)]
    return _torchvision_splits(
        "mnist", "MNIST", root, seed, val_size, download, image_shape, digits
    )


def _load_fashion_mnist(root, seed, val_size, download, image_shape):
    return _torchvision_splits(
        "fashion-mnist", "FashionMNIST", root, seed, val_size, download, image_shape
    )


def _load_kmnist(root, seed, val_size, download, image_shape):
    return _torchvision_splits("kmnist", "KMNIST", root, seed, val_size, download, image_shape)


# ---------------------------------------------------------------- the MNIST test set alone

MNIST_TEST_ONLY_BOUNDS = {"train": (0, 8000), "validation": (8000, 9000), "test": (9000, 10000)}


def _load_mnist_test_only(root, seed, val_size, download, image_shape):
    del seed, val_size  # the split is fixed by position (DESIGN.md)
    if download:
        raise ValueError("mnist-test-only reads local t10k files; there is nothing to download")
    images_path = _find_idx(root, "t10k-images-idx3-ubyte")
    labels_path = _find_idx(root, "t10k-labels-idx1-ubyte")
    if images_path is None or labels_path is None:
        raise FileNotFoundError(f"mnist-test-only: no t10k-images/labels IDX files in {root}")
    images = fit_to_shape(to_float_images(read_idx(images_path)), image_shape)
    labels = torch.from_numpy(read_idx(labels_path).astype(np.int64))
    if len(images) != 10000:
        raise ValueError(f"{images_path} holds {len(images)} images, not the 10,000 of t10k")
    parts = {
        key: ImageSplit(images[lo:hi], labels[lo:hi])
        for key, (lo, hi) in MNIST_TEST_ONLY_BOUNDS.items()
    }
    splits = Splits(
        parts["train"], parts["validation"], parts["test"], [str(d) for d in range(10)], {}
    )
    splits.info = {
        "name": "mnist-test-only",
        "source": (
            f"the official MNIST 10,000-image test set (t10k IDX files) from {portable(root)}"
        ),
        "split": {
            key: f"t10k images {lo}-{hi - 1}" for key, (lo, hi) in MNIST_TEST_ONLY_BOUNDS.items()
        },
        "sizes": _sizes(splits),
    }
    return splits


# ---------------------------------------------------------------- a user's image folder

IMAGE_FOLDER_SHAPE = (3, 32, 32)
IMAGE_FOLDER_HELD_OUT = 0.1  # fraction of each class for validation, and again for test
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
IMAGE_FOLDER_LAYOUT = (
    "an image folder is either flat (its images directly inside: one unlabelled class) or one "
    "subfolder per class (subfolders named after their class, images inside, any depth); "
    "images of any size and mode become 3x32x32 RGB unless --image-shape says otherwise"
)


class DataError(ValueError):
    """A dataset that cannot be read as asked: the message says what to change."""


def _images_below(folder: Path, recursive: bool) -> list[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p
        for p in found
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def image_folder_files(root: Path) -> tuple[list[Path], list[int], list[str]]:
    """The images of a user's folder, their class indices and the class names ([] when flat)."""
    if not root.is_dir():
        raise DataError(f"the image folder {root} does not exist")
    loose = _images_below(root, recursive=False)
    subfolders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    classes = [(p.name, _images_below(p, recursive=True)) for p in subfolders]
    classes = [(name, files) for name, files in classes if files]
    if loose and classes:
        raise DataError(
            f"{root} holds both images ({loose[0].name}, ...) and class folders "
            f"({classes[0][0]}, ...); {IMAGE_FOLDER_LAYOUT}"
        )
    if loose:
        return loose, [0] * len(loose), []
    if not classes:
        raise DataError(
            f"{root} holds no images ({', '.join(IMAGE_SUFFIXES)}); {IMAGE_FOLDER_LAYOUT}"
        )
    files = [path for _, paths in classes for path in paths]
    labels = [index for index, (_, paths) in enumerate(classes) for _ in paths]
    return files, labels, [name for name, _ in classes]


def stratified_split(labels: Tensor, fraction: float, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """Train, validation and test indices: `fraction` of every class (at least one image each)
    to validation and as many to test, drawn with the seed. The held-out splits interleave the
    classes (the first image of each class, then the second, ...), so that any head of them as
    long as the number of classes holds every class (export's reference set takes a head)."""
    generator = torch.Generator().manual_seed(seed)
    parts: dict[str, list[list[int]]] = {"train": [], "val": [], "test": []}
    for label in torch.unique(labels).tolist():
        members = torch.nonzero(labels == label).flatten()
        if len(members) < 3:
            raise DataError(
                f"class {label} has {len(members)} image(s); every class needs at least 3 "
                "(one each for training, validation and test)"
            )
        members = members[torch.randperm(len(members), generator=generator)].tolist()
        held_out = max(1, round(fraction * len(members)))
        held_out = min(held_out, (len(members) - 1) // 2)
        parts["val"].append(members[:held_out])
        parts["test"].append(members[held_out : 2 * held_out])
        parts["train"].append(members[2 * held_out :])
    train = torch.tensor(sorted(i for group in parts["train"] for i in group), dtype=torch.int64)
    held = [torch.tensor(_interleave(parts[key]), dtype=torch.int64) for key in ("val", "test")]
    return train, held[0], held[1]


def _interleave(groups: list[list[int]]) -> list[int]:
    longest = max(map(len, groups))
    return [group[rank] for rank in range(longest) for group in groups if rank < len(group)]


def _load_image_folder(root, seed, val_size, download, image_shape):
    del val_size, download
    shape = tuple(image_shape or IMAGE_FOLDER_SHAPE)
    files, labels, classes = image_folder_files(Path(root))
    images = torch.stack([_load_picture(path, shape) for path in files])
    labels = torch.tensor(labels, dtype=torch.int64)
    train_index, val_index, test_index = stratified_split(labels, IMAGE_FOLDER_HELD_OUT, seed)
    splits = Splits(
        ImageSplit(images[train_index], labels[train_index]),
        ImageSplit(images[val_index], labels[val_index]),
        ImageSplit(images[test_index], labels[test_index]),
        classes,
        {},
    )
    layout = "one subfolder per class" if classes else "a flat folder, one unlabelled class"
    each = "of each class " if classes else ""
    splits.info = {
        "name": f"image-folder:{Path(root).name}",
        "source": f"{len(files):,} images under {portable(root)}, {layout}, "
        f"letterboxed to {'x'.join(map(str, shape))}",
        "split": {
            "train": "the images in neither held-out set",
            "validation": f"{IMAGE_FOLDER_HELD_OUT:.0%} of the images {each}(at least one) "
            f"drawn at random (seed {seed})",
            "test": f"as many further images {each}drawn at random (seed {seed})",
        },
        "sizes": _sizes(splits),
    }
    return splits


def _load_picture(path: str, shape: tuple[int, int, int]) -> Tensor:
    from PIL import Image

    from service.rest.codecs import letterbox

    channels, height, width = shape
    if channels not in (1, 3):
        raise DataError(f"image folders convert to 1 (gray) or 3 (RGB) channels, not {channels}")
    try:
        picture = Image.open(path)
        picture.load()
    except (OSError, SyntaxError) as error:
        raise DataError(f"{path} is not an image this loader can read ({error})") from error
    with picture:
        picture = picture.convert("L" if channels == 1 else "RGB")
        picture = letterbox(picture, width, height, Image.Resampling.BILINEAR)
        return to_float_images(
            np.asarray(picture)[None]
            if channels == 1
            else np.asarray(picture).transpose(2, 0, 1)[None]
        )[0]


# ---------------------------------------------------------------- the entry point

REPO_ROOT = Path(__file__).resolve().parents[1]


def portable(root: Path) -> str:
    """A data root as the manifest states it, never as an absolute path of this machine:
    beside the project as a relative path (the shared data lives at ../shared on every
    machine), elsewhere by the folder's name alone."""
    root = Path(os.path.abspath(root))  # symlinks kept: ../shared may be a link elsewhere
    if root.is_relative_to(REPO_ROOT.parent):
        return os.path.relpath(root, REPO_ROOT)
    return f"a local folder named {root.name}"


DEFAULT_ROOTS = {
    "fashion-mnist": Path("/usr/share/datasets/fashion-mnist"),
    "mnist-test-only": REPO_ROOT.parent / "shared" / "datasets" / "mnist",
    "mnist": Path.home() / ".cache" / "latentserve" / "data",
    "kmnist": Path.home() / ".cache" / "latentserve" / "data",
}


def default_root(dataset: str) -> Path:
    """Where `dataset` is looked for when no root is given (an image folder needs one)."""
    if dataset not in DEFAULT_ROOTS:
        raise DataError(f"dataset {dataset!r} has no default location; give its --data-root")
    return DEFAULT_ROOTS[dataset]


DATASETS: dict[str, Callable[..., Splits]] = {
    "mnist": _load_mnist,
    "fashion-mnist": _load_fashion_mnist,
    "kmnist": _load_kmnist,
    "mnist-test-only": _load_mnist_test_only,
    "image-folder": _load_image_folder,
}


def load_splits(
    dataset: str,
    root: str | Path,
    seed: int = 0,
    *,
    val_size: int = DEFAULT_VAL_SIZE,
    image_shape: tuple[int, int, int] | None = None,
    train_limit: int | None = None,
    download: bool = False,
) -> Splits:
    """Load `dataset` from `root` and split it (see the module docstring for each split).

    `image_shape` (C, H, W) converts the images (default: the dataset's own, 3x32x32 for an
    image folder); `train_limit` keeps only the first that many training images, for quick
    runs; `download` lets torchvision fetch MNIST/Fashion-MNIST/KMNIST into `root`.
    """
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    shape = tuple(image_shape) if image_shape else None
    splits = DATASETS[dataset](Path(root), seed, val_size, download, shape)
    if train_limit is not None and train_limit < len(splits.train):
        splits.train = splits.train.head(train_limit)
        splits.info["split"]["train"] += f", only its first {train_limit:,} images"
        splits.info["sizes"]["train"] = train_limit
    return splits


# ---------------------------------------------------------------- other data, for anomaly scores

# The other dataset each model's anomaly scores are evaluated against, as for the shipped
# models (training/zoo.toml): digits against garments and garments against digits.
OTHER_DATASET = {
    "mnist": "fashion-mnist",
    "mnist-test-only": "fashion-mnist",
    "kmnist": "fashion-mnist",
    "fashion-mnist": "mnist-test-only",
}


def outlier_split(
    dataset: str, image_shape: tuple[int, int, int], root: str | Path | None = None
) -> ImageSplit:
    """The test split of another dataset (from its usual place unless `root` is given),
    converted to `image_shape`: held-out images a model's anomaly scores should flag."""
    return load_splits(dataset, root or default_root(dataset), image_shape=image_shape).test


def default_outliers(
    dataset: str, image_shape: tuple[int, int, int]
) -> tuple[dict[str, ImageSplit], list[str]]:
    """The other dataset of `dataset` (OTHER_DATASET) where it is present at its usual place,
    and a note for each that is not."""
    other = OTHER_DATASET.get(dataset)
    if other is None:
        return {}, []
    try:
        return {other: outlier_split(other, image_shape)}, []
    except (FileNotFoundError, DataError) as error:
        return {}, [f"no {other} to evaluate the anomaly scores against ({error})"]
