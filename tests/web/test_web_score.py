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
