"""The anomaly-score panel and the empty image slots of the web page, in headless Chromium."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from client import Client
from tests.web.test_web_page import SEVEN, draw, select_model, settle

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SLOTS = ("#reconstruction", "#map-decoded", "#interp-frame")


def test_empty_image_slots_show_a_placeholder_not_a_broken_image(page):
    for slot in SLOTS:
        assert page.get_attribute(slot, "src") is None
        # The placeholder replaces the element's content, so neither the broken-image icon
        # nor the alt text is drawn; the box keeps its size.
        content = page.eval_on_selector(slot, "img => getComputedStyle(img).content")
        assert content.startswith('url("data:image/svg+xml'), (slot, content)
        assert "nothing yet" in content
        box = page.locator(slot).bounding_box()
        assert box["width"] > 100 and box["height"] > 100
    with page.expect_response(lambda r: "/reconstruct" in r.url):
        draw(page, "#draw-pad", SEVEN)
    settle(page, "#encode-card")
    assert page.eval_on_selector("#reconstruction", "img => getComputedStyle(img).content") in (
        "normal",
        "none",
    )


def score_panel(page) -> dict:
    return page.evaluate("""() => ({
        verdict: document.querySelector('#score-verdict').textContent,
        verdictClass: document.querySelector('#score-verdict').className,
        value: document.querySelector('#score-value').textContent,
        percentile: document.querySelector('#score-percentile').textContent,
        threshold: document.querySelector('#score-threshold').textContent,
        corrected: document.querySelector('#score-corrected').textContent,
        correctedHidden: document.querySelector('#score-corrected').hidden,
    })""")


def test_a_drawing_gets_its_score_percentile_and_verdict(page, server):
    select_model(page, "mnist-vae")
    before = page.locator("#score-histogram").screenshot()
    assert score_panel(page)["verdict"] == "Draw or upload an image"
    with page.expect_response(lambda r: "/score" in r.url) as answer:
        draw(page, "#draw-pad", SEVEN)
    settle(page, "#score-card")
    served = answer.value.json()
    panel = score_panel(page)
    assert panel["verdict"] == ("Anomalous" if served["anomalous"][0] else "Normal")
    assert panel["verdictClass"].endswith("anomalous" if served["anomalous"][0] else "normal")
    assert panel["value"] == f"{served['scores'][0]:.1f} nats"
    assert panel["percentile"] == f"{served['percentiles'][0]:.1f} %"
    with Client(server.url) as client:
        threshold = client.model_info("mnist-vae").raw["calibration"]["score"]["threshold"]
    assert panel["threshold"] == f"{threshold:.1f}"
    assert not panel["correctedHidden"] and "neg_elbo_minus_entropy" in panel["corrected"]
    assert page.locator("#score-histogram").screenshot() != before  # the score is marked


def test_an_uploaded_image_is_scored_as_the_api_scores_it(page, server, tmp_path):
    select_model(page, "fashion-vae")
    digit = tmp_path / "digit.png"
    with Client(server.url, model="mnist-vae") as client:
        digit.write_bytes(client.sample(1, seed=5).images.pngs[0])
        expected = client.score(digit, model="fashion-vae")
    with page.expect_response(lambda r: "/score" in r.url):
        page.set_input_files("#draw-upload", str(digit))
    settle(page, "#score-card")
    panel = score_panel(page)
    assert panel["value"] == f"{expected.scores[0]:.1f} nats"
    assert f"{expected.corrected.scores[0]:.1f}" in panel["corrected"]
    assert np.isfinite(expected.percentiles).all()
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#score-card").screenshot(path=str(ARTIFACTS / "web-score-panel.png"))


def overlay_pixels(page) -> np.ndarray:
    """The 'where' canvas as RGBA [112, 112, 4]."""
    data = page.evaluate("""() => {
        const canvas = document.querySelector('#score-overlay');
        return Array.from(canvas.getContext('2d').getImageData(0, 0, 112, 112).data);
    }""")
    return np.asarray(data, np.uint8).reshape(112, 112, 4)


def test_the_heatmap_shows_over_the_drawing_and_the_thresholds_move(page):
    select_model(page, "mnist-vae")
    assert overlay_pixels(page)[..., 3].max() == 0, "nothing is drawn before a score"
    with page.expect_response(lambda r: "/score" in r.url) as answer:
        draw(page, "#draw-pad", SEVEN)
    settle(page, "#score-card")
    served = answer.value.json()
    assert "maps=true" in answer.value.url and served["maps"]["heatmaps"]
    shown = overlay_pixels(page)
    assert shown[..., 3].min() == 255 and shown[..., :3].max() > 100  # the drawing, and heat
    count = served["maps"]["anomalous_pixels"][0]
    caption = page.text_content("#score-where-text")
    assert (f"{count} pixel" in caption) if count else ("no pixel above" in caption)
    assert page.get_attribute("#score-overlay", "aria-label") == caption

    page.focus("#pixel-threshold")  # by keyboard: Home moves the slider to its lowest, 0
    with page.expect_response(lambda r: "pixel_threshold=0" in r.url) as moved:
        page.keyboard.press("Home")
    settle(page, "#score-card")
    assert moved.value.json()["maps"]["anomalous_pixels"] == [28 * 28]
    assert page.text_content("#score-where-text").startswith("Where: 784 pixels above 0.00")
    assert "0.00 nats per pixel" in page.text_content("#pixel-threshold-value")

    with page.expect_response(lambda r: "&threshold=0" in r.url or "?threshold=0" in r.url):
        page.focus("#image-threshold")
        page.keyboard.press("Home")
    settle(page, "#score-card")
    assert score_panel(page)["verdict"] == "Anomalous"
    assert score_panel(page)["threshold"] == "0.0"

    with page.expect_response(lambda r: "/score" in r.url and "threshold" not in r.url):
        page.click("#thresholds-reset")
    settle(page, "#score-card")
    assert score_panel(page)["verdict"] == ("Anomalous" if served["anomalous"][0] else "Normal")
