"""Shared test helpers: where the real data lives, and skips that fail under CI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = ROOT.parent / "shared" / "datasets" / "mnist"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
EXPORTED_MODELS = ROOT / "exported_models"
UNDER_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str) -> None:
    """Skip where a real resource is absent; under CI that absence is a failure."""
    if UNDER_CI:
        pytest.fail(f"{reason} (CI=true: this test may not be skipped)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_mnist_root() -> Path:
    if not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").exists():
        skip_or_fail(f"the shared MNIST test set is not at {SHARED_MNIST}")
    return SHARED_MNIST


@pytest.fixture(scope="session")
def fashion_mnist_root() -> Path:
    if not (FASHION_MNIST / "train-images-idx3-ubyte.gz").exists():
        skip_or_fail(
            f"Fashion-MNIST is not at {FASHION_MNIST}: apt-get install dataset-fashion-mnist"
        )
    return FASHION_MNIST
