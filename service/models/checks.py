"""Checks of arrays against a model, for every front end alike: images of its size and range,
finite values, batch sizes within the settings. Each raises BadInput with a readable reason."""

from __future__ import annotations

import math

import numpy as np

from service.core.errors import BadInput
from service.core.settings import Settings
from service.models.manifest import ImageSpec

RANGE_TOLERANCE = 1e-3


def check_images(batch: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """A float batch [N,C,H,W] of the model's size and range; one channel may stand for three."""
    batch = batch.astype(np.float32, copy=False)
    channels, height, width = batch.shape[1:]
    if (height, width) != (spec.height, spec.width):
        raise BadInput(
            f"arrays must be {spec.height}x{spec.width} for this model; got {height}x{width} "
            "(send an encoded image to have it resized)"
        )
    if channels != spec.channels:
        if channels == 1:
            batch = np.repeat(batch, spec.channels, axis=1)
        elif channels == 3 and spec.channels == 1:
            batch = batch.mean(axis=1, keepdims=True)
        else:
            raise BadInput(f"arrays must have {spec.channels} channel(s); got {channels}")
    low, high = spec.value_range
    smallest, largest = float(batch.min()), float(batch.max())  # NaN and inf show in these
    if not (math.isfinite(smallest) and math.isfinite(largest)):
        raise BadInput("image values must be finite numbers; got NaN or infinity")
    if smallest < low - RANGE_TOLERANCE or largest > high + RANGE_TOLERANCE:
        raise BadInput(
            f"image values must lie in [{low}, {high}]; got {smallest:g}..{largest:g} "
            "(uint8 .npy arrays are read as 0..255)"
        )
    if smallest < low or largest > high:
        return np.clip(batch, low, high)
    return batch


def check_finite(array: np.ndarray, what: str) -> None:
    if not np.isfinite(array).all():
        raise BadInput(f"{what} must be finite numbers; got NaN or infinity")


def check_count(count: int, settings: Settings, what: str = "images") -> None:
    if count == 0:
        raise BadInput(f"no {what} in the request")
    if count > settings.max_images:
        raise BadInput(f"{count} {what} in one request; the limit is {settings.max_images}")
