"""Fixtures: generated splits and small models exported once per session."""

from __future__ import annotations

import pytest

from tests.export.tiny_models import generated_splits, trained_model
from training.data import ImageSplit, Splits
from training.evaluate import evaluate
from training.export import export_model


@pytest.fixture(scope="session")
def splits() -> Splits:
    return generated_splits()


def outlier_sets(splits: Splits) -> dict[str, ImageSplit]:
    """Held-out images unlike the training patterns: the test split inverted."""
    return {"inverted": ImageSplit(1.0 - splits.test.images, splits.test.labels)}


@pytest.fixture(scope="session")
def exported(tmp_path_factory, splits):
    """Export a conditional VAE and a plain AE once; tests read the folders."""
    root = tmp_path_factory.mktemp("exported")
    folders = {}
    for family in ("cvae", "ae"):
        model = trained_model(family, splits)
        metrics = evaluate(model, splits, iw_samples=10)
        export_model(
            model,
            splits,
            root / f"tiny-{family}",
            metrics=metrics,
            training={"steps": 20, "model_options": {"hidden": [32]}},
            outliers=outlier_sets(splits),
        )
        folders[family] = (root / f"tiny-{family}", model)
    return folders


@pytest.fixture(params=["cvae", "ae"])
def folder_and_model(request, exported):
    return exported[request.param]
