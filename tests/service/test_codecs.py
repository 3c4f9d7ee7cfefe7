"""The codecs of the domain API: uploads to the model's shape and range, PNGs and .npy out."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from service.core.errors import BadInput
from service.models.manifest import ImageSpec
from service.rest.codecs import (
    grid_png,
    image_from_base64,
    image_from_bytes,
    images_from_npy,
    latents_from_values,
    png_bytes,
    png_size,
    strip_png,
)
from tests.service.helpers import npy, png

GRAY = ImageSpec(channels=1, height=28, width=28)
RGB = ImageSpec(channels=3, height=32, width=32)


def test_images_are_converted_to_the_model():
    rgba = np.zeros((50, 70, 4), dtype=np.uint8)
    rgba[..., :3] = 255
    rgba[:, :35, 3] = 255  # left half opaque white, right half transparent
    gray = image_from_bytes(png(rgba, "RGBA"), GRAY, 10_000)
    assert gray.shape == (1, 28, 28) and gray.dtype == np.float32
    # 70 wide, 50 high: letterboxed to 28x20, 4 black rows above and below
    assert gray[0, 4:24, :10].min() > 0.99 and gray[0, :, -10:].max() < 0.01
    assert gray[0, :4].max() < 0.01 and gray[0, 24:].max() < 0.01
    color = image_from_bytes(png(np.full((8, 8), 128, np.uint8)), RGB, 10_000)
    assert color.shape == (3, 32, 32) and np.allclose(color, 128 / 255, atol=0.01)
    sixteen = Image.fromarray(np.full((28, 28), 65535, np.uint16))
    buffer = io.BytesIO()
    sixteen.save(buffer, format="PNG")
    assert image_from_bytes(buffer.getvalue(), GRAY, 10_000).min() > 0.99


@pytest.mark.parametrize("size", [(70, 50), (30, 90), (5, 400)])
def test_images_of_another_shape_are_letterboxed_not_stretched(size):
    """Scaled to fit, aspect ratio kept, centred on black, as the web page's pad shows them: a
    white image 70x50 covers 28x20 of the 28x28, a 30x90 one 9x28, never all of it."""
    width, height = size
    white = image_from_bytes(png(np.full((height, width), 255, np.uint8)), GRAY, 100_000)[0]
    scale = min(28 / width, 28 / height)
    covered = (max(1, round(width * scale)), max(1, round(height * scale)))
    rows, columns = np.nonzero(white > 0.5)
    assert (columns.max() - columns.min() + 1, rows.max() - rows.min() + 1) == covered
    assert abs((rows.min() + rows.max()) / 2 - 13.5) <= 0.5  # centred
    assert abs((columns.min() + columns.max()) / 2 - 13.5) <= 0.5
    colour = image_from_bytes(png(np.full((height, width, 3), 255, np.uint8)), RGB, 100_000)
    assert colour.shape == (3, 32, 32) and colour[:, 0, 0].max() + colour[:, -1, -1].max() < 0.02
    signed = ImageSpec(channels=1, height=28, width=28, value_range=(-1.0, 1.0))
    padded = image_from_bytes(png(np.full((height, width), 255, np.uint8)), signed, 100_000)
    assert padded.min() == -1.0  # the border is black in the model's range


def test_value_range_is_applied():
    signed = ImageSpec(channels=1, height=2, width=2, value_range=(-1.0, 1.0))
    image = image_from_bytes(png(np.array([[0, 255], [0, 255]], np.uint8)), signed, 100)
    np.testing.assert_allclose(image[0], [[-1, 1], [-1, 1]])
    from_uint8 = images_from_npy(npy(np.array([[0, 255], [0, 255]], np.uint8)), signed, 4)
    np.testing.assert_allclose(from_uint8, image[None])


def test_decompression_bomb_is_refused_before_decoding():
    buffer = io.BytesIO()
    Image.new("L", (3000, 3000)).save(buffer, format="PNG")
    with pytest.raises(BadInput, match="3000x3000"):
        image_from_bytes(buffer.getvalue(), GRAY, 1_000_000)


def test_base64_with_and_without_data_url():
    data = png(np.zeros((28, 28), np.uint8))
    plain = base64.b64encode(data).decode()
    for text in (plain, f"data:image/png;base64,{plain}", f"  data:;base64,{plain}\n"):
        assert image_from_base64(text, GRAY, 10_000).shape == (1, 28, 28)
    with pytest.raises(BadInput, match="base64"):
        image_from_base64("data:image/png;base64,@@@", GRAY, 10_000)


def test_latent_shapes():
    assert latents_from_values([1.0, 2.0], 2, 4).shape == (1, 2)
    with pytest.raises(BadInput, match="2 values"):
        latents_from_values([[1.0, 2.0, 3.0]], 2, 4)
    with pytest.raises(BadInput, match="limit"):
        latents_from_values(np.zeros((5, 2)), 2, 4)


@pytest.mark.parametrize("shape", [(28, 28, 1), (28, 28, 3), (5, 300, 1), (61, 7, 3)])
def test_png_writer_round_trips_through_pillow(shape):
    pixels = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    data = png_bytes(pixels)
    decoded = np.asarray(Image.open(io.BytesIO(data)))
    assert np.array_equal(decoded.reshape(shape), pixels)
    assert png_size(data) == (shape[1], shape[0])


def test_plain_pngs_decode_to_pillows_pixels():
    """The libspng fast path and Pillow agree on every pixel of the formats it takes."""
    gray = np.random.default_rng(2).integers(0, 256, (28, 28), dtype=np.uint8)
    rgb = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    for pixels, spec in ((gray, GRAY), (rgb, RGB)):
        fast = image_from_bytes(png(pixels), spec, 10_000)
        expected = np.asarray(pixels, np.float32) / 255
        np.testing.assert_array_equal(
            fast, expected[None] if pixels.ndim == 2 else expected.transpose(2, 0, 1)
        )
    assert png_size(b"not a png at all, just some bytes") is None


def test_grid_and_strip_sizes():
    images = np.zeros((5, 1, 28, 28), np.float32)
    grid = Image.open(io.BytesIO(grid_png(images, GRAY)))
    strip = Image.open(io.BytesIO(strip_png(images, GRAY)))
    assert grid.size == (3 * 28 + 4, 2 * 28 + 2) and strip.size == (5 * 28 + 8, 28)
