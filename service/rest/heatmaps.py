"""Pixel anomaly maps as pictures: a colour ramp for the map, a mask for the pixels above the
threshold, and the four-column grid /score answers as one PNG. numpy only."""

from __future__ import annotations

import numpy as np

from service.models.manifest import ImageSpec
from service.rest.codecs import GAP_GRAY, png_bytes, to_uint8

# A dark-to-bright ramp (black, purple, red, orange, pale yellow), perceptually ordered and
# readable in gray print: 0 is black, the threshold sits at the middle of the ramp.
RAMP = np.array(
    [[0, 0, 4], [81, 18, 124], [183, 55, 121], [252, 137, 97], [252, 253, 191]], np.float64
)


def heatmap_rgb(maps: np.ndarray, threshold: float) -> np.ndarray:
    """[N, H, W] maps -> [N, H, W, 3] uint8 colours; 0 black, `threshold` mid-ramp, twice it
    and above the brightest."""
    position = np.clip(np.asarray(maps, np.float64) / (2 * threshold), 0.0, 1.0)
    scaled = position * (len(RAMP) - 1)
    low = np.minimum(scaled.astype(int), len(RAMP) - 2)
    fraction = (scaled - low)[..., None]
    return np.rint(RAMP[low] * (1 - fraction) + RAMP[low + 1] * fraction).astype(np.uint8)


def mask_rgb(maps: np.ndarray, threshold: float) -> np.ndarray:
    """[N, H, W] -> [N, H, W, 3] uint8: white where a pixel lies above the threshold."""
    above = np.asarray(maps) > threshold
    return np.repeat((above * 255).astype(np.uint8)[..., None], 3, axis=-1)


def heatmap_pngs(maps: np.ndarray, threshold: float) -> list[bytes]:
    return [png_bytes(tile) for tile in heatmap_rgb(maps, threshold)]


def maps_grid_png(
    images: np.ndarray,
    reconstructions: np.ndarray,
    maps: np.ndarray,
    threshold: float,
    spec: ImageSpec,
) -> bytes:
    """One row per image: image | reconstruction | heatmap | thresholded mask, 2-pixel gaps."""
    columns = [
        _rgb(to_uint8(images, spec)),
        _rgb(to_uint8(reconstructions, spec)),
        heatmap_rgb(maps, threshold),
        mask_rgb(maps, threshold),
    ]
    count, height, width, _ = columns[0].shape
    gap = 2
    canvas = np.full(
        (count * height + (count - 1) * gap, 4 * width + 3 * gap, 3), GAP_GRAY, np.uint8
    )
    for row in range(count):
        for column, tiles in enumerate(columns):
            y, x = row * (height + gap), column * (width + gap)
            canvas[y : y + height, x : x + width] = tiles[row]
    return png_bytes(canvas)


def _rgb(pixels: np.ndarray) -> np.ndarray:
    return pixels if pixels.shape[-1] == 3 else np.repeat(pixels, 3, axis=-1)
