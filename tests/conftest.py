"""Shared test helpers: where the real data lives, and skips that fail under CI."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import tomllib
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = ROOT.parent / "shared" / "datasets" / "mnist"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
EXPORTED_MODELS = ROOT / "exported_models"
UNDER_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# The shipped models are those of training/zoo.toml (setup.py puts the same ones in the wheel).
# The tests test them by this list, whatever else a user put in exported_models/.
SHIPPED = tuple(tomllib.loads((ROOT / "training" / "zoo.toml").read_text())["models"])


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


def shipped_only(model_dir: Path, into: Path) -> Path:
    """`into`, made a model directory of links to the shipped models of `model_dir` alone.

    A server started on it serves exactly SHIPPED, whatever other folders `model_dir` holds.
    """
    missing = [name for name in SHIPPED if not (model_dir / name / "manifest.json").is_file()]
    if missing:
        skip_or_fail(f"shipped models missing from {model_dir}: {', '.join(missing)}")
    into.mkdir(parents=True, exist_ok=True)
    for name in SHIPPED:
        (into / name).symlink_to((model_dir / name).resolve(), target_is_directory=True)
    return into


@cache
def _shipped_models_dir() -> Path:
    links = Path(tempfile.mkdtemp(prefix="latentserve-shipped-"))
    atexit.register(shutil.rmtree, links, ignore_errors=True)
    return shipped_only(EXPORTED_MODELS, links / "models")


def shipped_models_dir() -> Path:
    """The shipped models alone, as a model directory (links into exported_models/)."""
    missing = [name for name in SHIPPED if not (EXPORTED_MODELS / name / "manifest.json").exists()]
    if missing:
        skip_or_fail(f"shipped models missing from {EXPORTED_MODELS}: {', '.join(missing)}")
    return _shipped_models_dir()
