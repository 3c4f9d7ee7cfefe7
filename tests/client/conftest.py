"""Fixtures of the client tests: a real service on loopback with the shipped models, and real
MNIST digits as PNG files."""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # deploy.loopback, tests.conftest

from deploy.loopback import Replica, start_replica, wait_until_ready  # noqa: E402
from tests.conftest import SHIPPED, shipped_models_dir  # noqa: E402

__all__ = ["SHIPPED", "shipped_models_dir"]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    replica = start_replica(shipped_models_dir(), tmp_path_factory.mktemp("client-server"))
    try:
        wait_until_ready(f"{replica.url}/readyz", replica.process)
        yield replica
    finally:
        replica.stop()


def read_idx_images(path: Path, count: int) -> np.ndarray:
    """The first `count` images of an IDX3 file, uint8 [count, 28, 28]."""
    with gzip.open(path, "rb") as f:
        header = np.frombuffer(f.read(16), dtype=">u4")
        rows, cols = int(header[2]), int(header[3])
        pixels = np.frombuffer(f.read(count * rows * cols), dtype=np.uint8)
    return pixels.reshape(count, rows, cols)


def read_idx_labels(path: Path, count: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        f.read(8)
        return np.frombuffer(f.read(count), dtype=np.uint8).astype(np.int64)


@pytest.fixture(scope="session")
def digits(shared_mnist_root: Path) -> tuple[np.ndarray, np.ndarray]:
    """40 test-split digits (images 9000-9039 of t10k, unseen in training) and their labels."""
    images = read_idx_images(shared_mnist_root / "t10k-images-idx3-ubyte.gz", 9040)[9000:]
    labels = read_idx_labels(shared_mnist_root / "t10k-labels-idx1-ubyte.gz", 9040)[9000:]
    return images, labels


@pytest.fixture(scope="session")
def digit_folder(digits, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits as PNGs in two sub-folders, the way a user's image folder looks."""
    folder = tmp_path_factory.mktemp("digits")
    images, labels = digits
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        sub = folder / ("even" if label % 2 == 0 else "odd")
        sub.mkdir(exist_ok=True)
        Image.fromarray(image).save(sub / f"digit-{index:03d}-{label}.png")
    return folder
