"""The web page at `/` in a real headless Chromium against a real service."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from client import Client
from tests.web.conftest import PHONE

pytestmark = pytest.mark.slow

PNG_SRC = "data:image/png;base64,"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def settle(page, card: str) -> None:
    """Waits until the card's requests are answered and rendered."""
    page.wait_for_function(f"!document.querySelector('{card}').classList.contains('busy')")


def draw(page, canvas: str, strokes: list[list[tuple[float, float]]]) -> None:
    """Mouse strokes on a canvas; points are fractions of its width and height."""
    box = page.locator(canvas).bounding_box()
    for stroke in strokes:
        points = [
            (box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in stroke
        ]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=4)
        page.mouse.up()


SEVEN = [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]]
ZERO = [
    [(0.5, 0.15), (0.75, 0.35), (0.75, 0.65), (0.5, 0.85), (0.25, 0.65), (0.25, 0.35), (0.5, 0.15)]
]
ONE = [[(0.5, 0.15), (0.5, 0.85)]]


def sample_srcs(page) -> list[str]:
    return page.eval_on_selector_all("#sample-grid img", "imgs => imgs.map(i => i.src)")


def latent_values(page) -> list[float]:
    return page.eval_on_selector_all(
        "#latent-values li", "items => items.map(i => Number(i.dataset.value))"
    )


def select_model(page, name: str) -> None:
    with page.expect_response(lambda r: "/sample" in r.url):
        page.select_option("#model-select", name)
    settle(page, "#sample-card")
    settle(page, "#map-card")


def test_page_lists_the_served_models_and_describes_the_default(page, server):
    with Client(server.url) as client:
        listing = client.models()
    options = page.eval_on_selector_all("#model-select option", "os => os.map(o => o.value)")
    assert options == listing.names()
    assert page.input_value("#model-select") == listing.default
    default = next(m for m in listing.models if m.name == listing.default)
    assert f"latent {default.latent_dim}" in page.text_content("#model-summary")


@pytest.mark.parametrize("model", ["mnist-vae-2d", "mnist-vae", "mnist-ae"])
def test_drawing_shows_the_reconstruction_and_a_latent_of_the_models_size(page, server, model):
    select_model(page, model)
    with page.expect_response(lambda r: "/reconstruct" in r.url):
        draw(page, "#draw-pad", SEVEN)
    settle(page, "#encode-card")
    assert page.get_attribute("#reconstruction", "src").startswith(PNG_SRC)
    with Client(server.url) as client:
        latent_dim = client.model_info(model).latent_dim
    values = latent_values(page)
    assert len(values) == latent_dim and np.isfinite(values).all()
    assert page.text_content("#latent-dim") == f"{latent_dim} dimensions"
    assert page.text_content("#reconstruction-mse").startswith("MSE 0.")


def test_an_uploaded_image_gets_the_same_latent_as_through_the_api(page, server, tmp_path):
    select_model(page, "mnist-vae-2d")
    digit = tmp_path / "digit.png"
    with Client(server.url, model="mnist-vae-2d") as client:
        digit.write_bytes(client.sample(1, seed=3).images.pngs[0])
        expected = client.reconstruct(digit)
    with page.expect_response(lambda r: "/reconstruct" in r.url):
        page.set_input_files("#draw-upload", str(digit))
    settle(page, "#encode-card")
    np.testing.assert_allclose(latent_values(page), expected.latents[0], atol=1e-5)
    assert page.get_attribute("#reconstruction", "src") == PNG_SRC + _png_b64(
        expected.images.png(0)
    )


def _png_b64(png: bytes) -> str:
    return base64.b64encode(png).decode()


def test_clicking_the_latent_map_decodes_that_point(page, server):
    select_model(page, "mnist-vae-2d")
    legend = page.eval_on_selector_all("#map-legend li", "items => items.map(i => i.textContent)")
    assert legend == [str(d) for d in range(10)]
    page.locator("#latent-map").scroll_into_view_if_needed()  # a mouse clicks what it can see
    box = page.locator("#latent-map").bounding_box()
    decoded = []
    for fx, fy in [(0.3, 0.3), (0.7, 0.6)]:
        with page.expect_response(lambda r: "/decode" in r.url):
            page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        settle(page, "#map-card")
        latent = json.loads(page.get_attribute("#map-point", "data-latent"))
        src = page.get_attribute("#map-decoded", "src")
        with Client(server.url, model="mnist-vae-2d") as client:
            assert src == PNG_SRC + _png_b64(client.decode([latent]).images.png(0))
        decoded.append((latent, src))
    assert decoded[0][0] != decoded[1][0] and decoded[0][1] != decoded[1][1]
    # Left of the map is lower x, top is higher y: the map is not mirrored.
    assert decoded[0][0][0] < decoded[1][0][0] and decoded[0][0][1] > decoded[1][0][1]


def test_interpolation_between_two_drawings_with_a_slider(page):
    draw(page, "#pad-a", ZERO)
    draw(page, "#pad-b", ONE)
    page.fill("#interp-steps", "6")
    with page.expect_response(lambda r: "/interpolate" in r.url):
        page.click("#interp-run")
    settle(page, "#interpolate-card")
    strip = page.eval_on_selector_all("#interp-strip img", "imgs => imgs.map(i => i.src)")
    assert len(strip) == 6 and all(src.startswith(PNG_SRC) for src in strip)
    assert strip[0] != strip[-1]
    assert page.get_attribute("#interp-frame", "src") == strip[0]
    page.locator("#interp-slider").fill("5")
    assert page.get_attribute("#interp-frame", "src") == strip[5]
    assert page.text_content("#interp-position") == "6 / 6"


def resample(page, seed: int) -> list[str]:
    page.fill("#sample-seed", str(seed))
    with page.expect_response(lambda r: "/sample" in r.url):
        page.click("#sample-run")
    settle(page, "#sample-card")
    return sample_srcs(page)


def test_sampling_with_a_seed_gives_the_same_images_again(page):
    first = resample(page, 7)
    other = resample(page, 8)
    again = resample(page, 7)
    assert len(first) == 8 and all(src.startswith(PNG_SRC) for src in first)
    assert first == again
    assert first != other


def test_the_conditional_model_lets_the_user_choose_the_digit(page, server):
    assert page.is_hidden("#label-bar")
    select_model(page, "mnist-cvae")
    assert page.is_visible("#label-bar")
    buttons = page.locator("#label-picker button")
    assert buttons.count() == 10
    with page.expect_response(lambda r: "/sample" in r.url):
        buttons.nth(3).click()
    settle(page, "#sample-card")
    assert buttons.nth(3).get_attribute("aria-checked") == "true"
    seed = int(page.input_value("#sample-seed"))
    with Client(server.url, model="mnist-cvae") as client:
        expected = client.sample(8, seed=seed, label=3).images.pngs
    assert sample_srcs(page) == [PNG_SRC + _png_b64(png) for png in expected]


def fill_everything(page) -> None:
    """Every panel with a result: a drawn 7, an interpolation from 0 to 1 (at its 5th frame), a
    picked point decoded, samples."""
    with page.expect_response(lambda r: "/reconstruct" in r.url):
        draw(page, "#draw-pad", SEVEN)
    draw(page, "#pad-a", ZERO)
    draw(page, "#pad-b", ONE)
    with page.expect_response(lambda r: "/interpolate" in r.url):
        page.click("#interp-run")
    page.locator("#latent-map").scroll_into_view_if_needed()
    box = page.locator("#latent-map").bounding_box()
    with page.expect_response(lambda r: "/decode" in r.url):
        page.mouse.click(box["x"] + 0.62 * box["width"], box["y"] + 0.4 * box["height"])
    for card in ("#encode-card", "#score-card", "#map-card", "#interpolate-card", "#sample-card"):
        settle(page, card)
    page.locator("#interp-slider").fill("4")
    for image in ("#reconstruction", "#map-decoded", "#interp-frame"):
        assert page.get_attribute(image, "src").startswith(PNG_SRC)


def test_the_whole_page_in_use(page):
    """Every panel filled in, kept as test-artifacts/web-page.png (docs/web-screenshot.png)."""
    select_model(page, "mnist-vae-2d")
    fill_everything(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-page.png"), full_page=True)
    assert (ARTIFACTS / "web-page.png").stat().st_size > 10_000


def test_the_whole_page_in_use_on_a_phone(open_page):
    """The same on a 390 px phone screen, kept as test-artifacts/web-page-phone.png
    (docs/web-screenshot-phone.png)."""
    page = open_page(**{**PHONE, "device_scale_factor": 2})
    select_model(page, "mnist-vae-2d")
    fill_everything(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.evaluate("window.scrollTo(0, 0)")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-page-phone.png"), full_page=True)
    assert (ARTIFACTS / "web-page-phone.png").stat().st_size > 10_000
