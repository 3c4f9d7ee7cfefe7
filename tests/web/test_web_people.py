"""The web page used as people use it (issue 19), in headless Chromium against a real server: a
phone-size screen, the keyboard alone, an accessibility audit (axe-core), model switches,
mistakes (refused uploads, bad numbers, a missing key), drag-and-drop and paste, large files.
"""

from __future__ import annotations

import base64
import io
import json
import statistics
import struct
import time
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from client import Client
from tests.web.conftest import PHONE
from tests.web.test_web_page import (
    ONE,
    PNG_SRC,
    SEVEN,
    ZERO,
    draw,
    fill_everything,
    latent_values,
    select_model,
    settle,
)

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CARDS = ("#encode-card", "#score-card", "#map-card", "#interpolate-card", "#sample-card")


# ---- helpers ----------------------------------------------------------------------------------


def settle_all(page) -> None:
    for card in CARDS:
        settle(page, card)


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def padded_png(pixels: np.ndarray, size: int) -> bytes:
    """A valid PNG of `size` bytes: the image and a private ancillary chunk of filler, which
    decoders skip (a stand-in for a large photo, made in no time)."""
    plain = png_bytes(pixels)
    filler = size - len(plain) - 12
    chunk = struct.pack(">I", filler) + b"ltSp" + bytes(filler)
    chunk += struct.pack(">I", zlib.crc32(b"ltSp" + bytes(filler)))
    end = plain.index(b"IEND") - 4
    return plain[:end] + chunk + plain[end:]


def digit_png(server, seed: int = 3, model: str = "mnist-vae") -> bytes:
    with Client(server.url, model=model) as client:
        return client.sample(1, seed=seed).images.pngs[0]


def limits(server) -> dict:
    return httpx.get(f"{server.url}/models").json()["limits"]


def tab_to(page, selector: str, presses: int = 80) -> None:
    """Tab (only) until the element matching `selector` has the focus."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate(f"document.activeElement?.matches({json.dumps(selector)})"):
            return
    raise AssertionError(f"{selector} is not reachable with Tab")


def tab_order(page, presses: int = 120) -> list[str]:
    """What Tab focuses, in order, from the top of the page round to it again."""
    page.evaluate("document.activeElement?.blur()")
    seen: list[str] = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        here = page.evaluate(
            "(() => { const e = document.activeElement; if (!e || e === document.body) return null;"
            " return e.id || (e.dataset.label !== undefined ? 'class-' + e.dataset.label : "
            "e.getAttribute('aria-label') || e.getAttribute('href') || e.tagName); })()"
        )
        if here is not None and seen and here == seen[0]:
            break
        if here is not None:
            seen.append(here)
    return seen


def messages(page) -> dict[str, str]:
    """The visible messages: the page's notice and each panel's, by where they are."""
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.notice, .card-message')]
            .filter(box => !box.hidden)
            .map(box => [box.closest('section')?.id ?? 'notice', box.textContent.trim()]))"""
    )


def pad_is_blank(page, selector: str) -> bool:
    return page.eval_on_selector(
        selector,
        """canvas => { const d = canvas.getContext('2d').getImageData(0, 0, canvas.width,
            canvas.height).data; for (let i = 0; i < d.length; i += 4) if (d[i] > 0) return false;
            return true; }""",
    )


def requests_to(page, path: str) -> list:
    seen: list = []
    page.on("request", lambda r: seen.append(r) if f"/{path}" in r.url.split("?")[0] else None)
    return seen


def drop_file(page, selector: str, data: bytes, name: str, kind: str = "image/png") -> None:
    """Drops a file on an element as a drag from the desktop does (a DataTransfer with it)."""
    transfer = page.evaluate_handle(
        """([b64, name, kind]) => { const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: kind })); return transfer; }""",
        [base64.b64encode(data).decode(), name, kind],
    )
    for event in ("dragenter", "dragover", "drop"):
        page.dispatch_event(selector, event, {"dataTransfer": transfer})


def paste_file(page, data: bytes, name: str = "pasted.png") -> None:
    """Pastes an image file onto the page (Ctrl+V of a copied image) where the focus is."""
    page.evaluate(
        """([b64, name]) => { const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: 'image/png' }));
            (document.activeElement ?? document).dispatchEvent(new ClipboardEvent('paste',
              { clipboardData: transfer, bubbles: true, cancelable: true })); }""",
        [base64.b64encode(data).decode(), name],
    )


# ---- fast ---------------------------------------------------------------------------------------


def test_the_page_is_usable_within_a_second_and_its_calls_are_quick(open_page):
    """From navigation to enabled controls (the model list loaded) and to every panel filled;
    the best of three loads, so a busy machine's one slow load does not decide it."""
    loads = []
    for _ in range(3):
        page = open_page()
        timing = page.evaluate("""() => ({
            usable: Number(document.body.dataset.usableMs),
            ready: Number(document.body.dataset.readyMs),
            calls: performance.getEntriesByType('resource')
              .filter(e => /\\/(models|sample|reference)/.test(e.name))
              .map(e => ({ url: e.name, ms: e.duration })),
        })""")
        loads.append(timing)
        page.context.close()
    calls = [call["ms"] for load in loads for call in load["calls"]]
    report = {
        "usable_ms": [load["usable"] for load in loads],
        "ready_ms": [load["ready"] for load in loads],
        "api_call_ms_median": round(statistics.median(calls), 1),
        "api_call_ms_max": round(max(calls), 1),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "web-timings.json").write_text(json.dumps(report, indent=2))
    print("web page timings:", report)
    assert min(report["usable_ms"]) < 1000, report
    assert min(report["ready_ms"]) < 2000, report
    # Nothing from outside: every request the page makes is to its own server.
    page = open_page()
    origins = page.evaluate(
        "[...new Set(performance.getEntriesByType('resource').map(e => new URL(e.name).origin))]"
    )
    assert origins == [page.evaluate("location.origin")], origins


# ---- phones (item 2) ----------------------------------------------------------------------------


def overflowing(page) -> list[str]:
    return page.evaluate(
        """() => [...document.querySelectorAll('body *')].filter(e => {
            const r = e.getBoundingClientRect();
            return r.width > 0 && r.height > 0 && (r.right > innerWidth + 0.5 || r.left < -0.5);
        }).map(e => `${e.tagName}#${e.id}.${e.className}`)"""
    )


def test_a_phone_screen_has_no_sideways_scroll_and_shows_every_result(open_page, server):
    page = open_page(**PHONE)
    for model in ("mnist-vae", "mnist-cvae", "fashion-vae"):
        if model != page.input_value("#model-select"):
            select_model(page, model)
        settle_all(page)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, model
        assert overflowing(page) == [], model
        if model == "mnist-cvae":  # the class bar keeps its ten digits on one row
            tops = page.eval_on_selector_all(
                "#label-picker button",
                "bs => bs.map(b => Math.round(b.getBoundingClientRect().top))",
            )
            assert len(tops) == 10 and len(set(tops)) == 1, tops
    select_model(page, "mnist-vae-2d")
    with page.expect_response(lambda r: "/reconstruct" in r.url):
        draw(page, "#draw-pad", SEVEN)
    settle(page, "#encode-card")
    page.locator("#reconstruction").scroll_into_view_if_needed()
    for element in ("#reconstruction", "#latent-values"):
        box = page.locator(element).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, element
    # A tap on the pad is a dot, and a drawing.
    page.click("#draw-clear")
    page.locator("#draw-pad").scroll_into_view_if_needed()
    pad = page.locator("#draw-pad").bounding_box()
    with page.expect_response(lambda r: "/reconstruct" in r.url):
        page.touchscreen.tap(pad["x"] + pad["width"] / 2, pad["y"] + pad["height"] / 2)
    assert not pad_is_blank(page, "#draw-pad")
    settle(page, "#encode-card")
    # A tap on the map: the decoded image is in view afterwards, without scrolling by hand.
    page.locator("#latent-map").scroll_into_view_if_needed()
    box = page.locator("#latent-map").bounding_box()
    with page.expect_response(lambda r: "/decode" in r.url):
        page.touchscreen.tap(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.4)
    settle(page, "#map-card")
    page.wait_for_timeout(300)  # a smooth scroll, if any, ends
    decoded = page.locator("#map-decoded").bounding_box()
    assert page.get_attribute("#map-decoded", "src").startswith(PNG_SRC)
    assert decoded["y"] >= 0 and decoded["y"] + decoded["height"] <= 844, decoded
    assert decoded["x"] >= 0 and decoded["x"] + decoded["width"] <= 390, decoded
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "web-page-phone.png"), full_page=True)


# ---- the keyboard alone (item 4) ----------------------------------------------------------------


def test_every_panel_works_from_the_keyboard_alone(page, server, tmp_path):
    digit = tmp_path / "digit.png"
    digit.write_bytes(digit_png(server, seed=3))
    # Playwright intercepts file choosers once something listens for them; it starts to when
    # the first listener comes, so one comes early (else a quick key press may beat it).
    page.on("filechooser", lambda chooser: None)
    order = tab_order(page)
    for stop in (
        "model-select", "api-key", "draw-pad", "draw-clear", "draw-upload-button", "latent-map",
        "pad-a", "pad-a-clear", "pad-a-upload-button", "interp-method", "interp-steps",
        "interp-run", "pad-b", "pad-b-upload-button", "sample-seed", "sample-random",
        "sample-temperature", "sample-run",
    ):  # fmt: skip
        assert stop in order, (stop, order)

    # Upload by keyboard: the button opens the file chooser.
    page.evaluate("document.activeElement?.blur()")
    tab_to(page, "#draw-upload-button")
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    with page.expect_response(lambda r: "/reconstruct" in r.url):
        chooser.value.set_files(str(digit))
    settle(page, "#encode-card")
    assert page.get_attribute("#reconstruction", "src").startswith(PNG_SRC)

    # Draw by keys: Space puts the pen down, arrows draw, Space lifts it and sends.
    tab_to(page, "#draw-pad")
    page.keyboard.press("Space")
    for key in ["ArrowRight"] * 4 + ["ArrowDown"] * 8:
        page.keyboard.press(key)
    with page.expect_response(lambda r: "/reconstruct" in r.url):
        page.keyboard.press("Space")
    settle(page, "#encode-card")
    settle(page, "#score-card")
    assert not pad_is_blank(page, "#draw-pad")
    with Client(server.url) as client:
        assert len(latent_values(page)) == client.model_info(client.models().default).latent_dim
    assert page.text_content("#score-verdict") in ("Normal", "Anomalous")

    # The map: arrows move a cursor, Enter decodes the point under it.
    tab_to(page, "#latent-map")
    for key in ["ArrowRight"] * 6 + ["ArrowUp"] * 3:
        page.keyboard.press(key)
    assert page.text_content("#map-point").startswith("Cursor at (")
    with page.expect_response(lambda r: "/decode" in r.url):
        page.keyboard.press("Enter")
    settle(page, "#map-card")
    assert page.get_attribute("#map-decoded", "src").startswith(PNG_SRC)
    assert "pick" in page.get_attribute("#latent-map", "data-markers")

    # Interpolate: the start drawn by keys, the end uploaded by keys, steps typed, Enter runs.
    tab_to(page, "#pad-a")
    page.keyboard.press("Space")
    for key in ["ArrowDown"] * 6:
        page.keyboard.press(key)
    page.keyboard.press("Space")
    tab_to(page, "#pad-b-upload-button")
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    chooser.value.set_files(str(digit))
    page.wait_for_function("document.querySelector('#pad-b').dataset.empty === 'false'")
    tab_to(page, "#interp-steps")
    page.keyboard.press("Control+A")
    page.keyboard.type("5")
    with page.expect_response(lambda r: "/interpolate" in r.url):
        page.keyboard.press("Enter")
    settle(page, "#interpolate-card")
    strip = page.eval_on_selector_all("#interp-strip img", "imgs => imgs.map(i => i.src)")
    assert len(strip) == 5
    tab_to(page, "#interp-slider")
    page.keyboard.press("End")
    assert page.text_content("#interp-position") == "5 / 5"
    assert page.get_attribute("#interp-frame", "src") == strip[4]

    # Sample: a seed typed, Enter samples with it.
    tab_to(page, "#sample-seed")
    page.keyboard.press("Control+A")
    page.keyboard.type("42")
    with page.expect_request(lambda r: "/sample" in r.url) as sampled:
        page.keyboard.press("Enter")
    assert "seed=42" in sampled.value.url
    settle(page, "#sample-card")

    # The model by keys, then the class picker: one tab stop, arrows choose.
    page.focus("#model-select")  # (reached by Tab above)
    options = page.eval_on_selector_all("#model-select option", "os => os.map(o => o.value)")
    moves = options.index("mnist-cvae") - options.index(page.input_value("#model-select"))
    with page.expect_response(lambda r: "/sample" in r.url and "mnist-cvae" in r.url):
        for _ in range(abs(moves)):  # each press selects the next model, as a change
            page.keyboard.press("ArrowDown" if moves > 0 else "ArrowUp")
    settle_all(page)
    assert page.input_value("#model-select") == "mnist-cvae"
    stops = [stop for stop in tab_order(page) if stop.startswith("class-")]
    assert stops == ["class-0"], stops
    tab_to(page, "#label-picker button[aria-checked=true]")
    with page.expect_request(lambda r: "/sample" in r.url and "label=1" in r.url):
        page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.dataset.label") == "1"
    assert page.get_attribute("#label-picker [data-label='1']", "aria-checked") == "true"
    with page.expect_request(lambda r: "/sample" in r.url and "label=9" in r.url):
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("ArrowLeft")
    settle_all(page)


def test_controls_have_names_in_the_accessibility_tree(page):
    for role, name in (
        ("button", "Clear the drawing"),
        ("button", "Clear the start image"),
        ("button", "Clear the end image"),
        ("button", "Upload an image to encode"),
        ("button", "Upload a start image"),
        ("button", "Upload an end image"),
        ("application", "Drawing pad"),
        ("application", "Start image"),
        ("application", "End image"),
        ("application", "Latent map"),
        ("slider", "Temperature"),
        ("spinbutton", "Seed"),
        ("spinbutton", "Steps"),
    ):
        assert page.get_by_role(role, name=name).count() == 1, (role, name)
    assert page.get_by_role("img", name="Histogram of the validation scores").count() == 1


# ---- an accessibility audit (item 4) ------------------------------------------------------------


def violations(page, axe_source: str) -> list[str]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_source)
    result = page.evaluate("async () => await axe.run(document, { resultTypes: ['violations'] })")
    return [
        f"{v['id']} ({v['impact']}): {v['help']}: "
        + "; ".join(node["target"][0] if node["target"] else "?" for node in v["nodes"][:5])
        for v in result["violations"]
    ]


def test_the_page_passes_an_accessibility_audit(open_page, axe_source):
    """axe-core, injected into the page, in every state people see: loading, filled in, with
    messages, the conditional model's class bar, and on a phone. The issue asks for no serious
    or critical violation; there is none of any impact (minor, moderate) either."""
    found: dict[str, list[str]] = {}
    loading = open_page(ready=False, before=lambda p: p.route("**/models", lambda r: None))
    loading.wait_for_function("document.readyState === 'complete'")
    found["loading"] = violations(loading, axe_source)
    page = open_page()
    found["fresh"] = violations(page, axe_source)
    fill_everything(page)
    found["filled"] = violations(page, axe_source)
    page.fill("#interp-steps", "1")
    page.click("#interp-run")
    page.wait_for_selector("#interp-steps-error:not([hidden])")
    page.fill("#interp-steps", "9")
    page.click("#pad-a-clear")
    page.click("#interp-run")
    page.wait_for_selector("#interpolate-card .card-message:not([hidden])")
    found["messages"] = violations(page, axe_source)
    select_model(page, "mnist-cvae")
    found["conditional"] = violations(page, axe_source)
    phone = open_page(**PHONE)
    found["phone"] = violations(phone, axe_source)
    assert all(not v for v in found.values()), found


# ---- model switches (item 1) --------------------------------------------------------------------


def test_a_model_switch_clears_or_recomputes_every_panel(page, server):
    select_model(page, "mnist-vae")
    fill_everything(page)
    decodes = requests_to(page, "decode")
    with Client(server.url) as client:
        for new, old_dim in (("fashion-vae", 20), ("mnist-ae", 16), ("mnist-vae-2d", 16)):
            box = page.locator("#latent-map").bounding_box()
            with page.expect_response(lambda r: "/decode" in r.url):
                page.mouse.click(box["x"] + 0.3 * box["width"], box["y"] + 0.3 * box["height"])
            settle(page, "#map-card")
            assert len(latent_values(page)) == old_dim
            decodes.clear()
            with page.expect_response(lambda r, new=new: "/interpolate" in r.url and new in r.url):
                select_model(page, new)
            settle_all(page)
            info = client.model_info(new)
            # The picked point belonged to the old model's map: dropped, not sent to the new one.
            assert decodes == [], [r.url for r in decodes]
            assert page.get_attribute("#map-decoded", "src") is None
            assert page.text_content("#map-point") == "Click the map"
            assert "pick" not in page.get_attribute("#latent-map", "data-markers")
            # The drawing is reconstructed, scored and placed on the map by the new model.
            assert len(latent_values(page)) == info.latent_dim
            assert page.get_attribute("#reconstruction", "src").startswith(PNG_SRC)
            assert "drawing" in page.get_attribute("#latent-map", "data-markers")
            if info.raw["calibration"]:
                assert page.text_content("#score-verdict") in ("Normal", "Anomalous")
            # The interpolation is recomputed by the new model, the samples drawn from it.
            assert len(page.locator("#interp-strip img").all()) == 9
            seed = int(page.input_value("#sample-seed"))
            expected = client.sample(8, seed=seed, model=new).images.pngs
            assert page.eval_on_selector_all("#sample-grid img", "i => i.map(x => x.src)") == [
                PNG_SRC + base64.b64encode(png).decode() for png in expected
            ]
            assert messages(page) == {}


def test_an_answer_for_the_old_model_arriving_late_is_dropped(open_page, server):
    """A slow /sample of the first model answers after the switch: the new model's samples stay."""

    def slow_old_samples(page):
        def handle(route):
            if "model=mnist-vae&" in route.request.url and "seed=5" in route.request.url:
                page.wait_for_timeout(1500)
            route.continue_()

        page.route("**/sample?*", handle)

    page = open_page(before=slow_old_samples)
    page.fill("#sample-seed", "5")
    page.click("#sample-run")  # slow
    page.wait_for_timeout(100)
    select_model(page, "fashion-vae")
    page.wait_for_timeout(1800)
    settle_all(page)
    with Client(server.url, model="fashion-vae") as client:
        expected = client.sample(8, seed=5).images.pngs
    assert page.eval_on_selector_all("#sample-grid img", "i => i.map(x => x.src)") == [
        PNG_SRC + base64.b64encode(png).decode() for png in expected
    ]


# ---- drag-and-drop and paste (item 11) ----------------------------------------------------------


def test_an_image_dropped_or_pasted_on_a_pad_is_used(page, server):
    select_model(page, "mnist-vae-2d")
    png = digit_png(server, seed=8, model="mnist-vae-2d")
    with Client(server.url, model="mnist-vae-2d") as client:
        expected = client.reconstruct(png).latents[0]
    with page.expect_request(lambda r: "/reconstruct" in r.url) as sent:
        drop_file(page, "#draw-pad", png, "dropped.png")
    assert sent.value.headers["content-type"].startswith("multipart/form-data")
    settle(page, "#encode-card")
    np.testing.assert_allclose(latent_values(page), expected, atol=1e-5)
    page.click("#draw-clear")
    assert latent_values(page) == []
    # Pasted with no pad focused: the drawing pad; with a pad focused: that pad.
    page.evaluate("document.activeElement?.blur()")
    with page.expect_response(lambda r: "/reconstruct" in r.url):
        paste_file(page, png)
    settle(page, "#encode-card")
    np.testing.assert_allclose(latent_values(page), expected, atol=1e-5)
    page.focus("#pad-b")
    paste_file(page, png)
    page.wait_for_function("document.querySelector('#pad-b').dataset.empty === 'false'")
    assert not pad_is_blank(page, "#pad-b") and pad_is_blank(page, "#pad-a")
    drop_file(page, "#pad-a", png, "start.png")
    page.wait_for_function("document.querySelector('#pad-a').dataset.empty === 'false'")
    with page.expect_response(lambda r: "/interpolate" in r.url):
        page.click("#interp-run")
    settle(page, "#interpolate-card")
    assert len(page.locator("#interp-strip img").all()) == 9
    # Text dropped on a pad is not an image: refused with a reason.
    drop_file(page, "#draw-pad", b"hello", "notes.txt", "text/plain")
    page.wait_for_selector("#encode-card .card-message:not([hidden])")
    assert "notes.txt is not an image" in messages(page)["encode-card"]


# ---- refused uploads, large files (items 3 and 9) -----------------------------------------------


def encode_panel(page) -> dict:
    return page.evaluate("""() => ({
        reconstruction: document.querySelector('#reconstruction').getAttribute('src'),
        mse: document.querySelector('#reconstruction-mse').textContent,
        latents: document.querySelectorAll('#latent-values li').length,
        verdict: document.querySelector('#score-verdict').textContent,
        verdictClass: document.querySelector('#score-verdict').className,
        score: document.querySelector('#score-value').textContent,
        padEmpty: document.querySelector('#draw-pad').dataset.empty,
    })""")


def assert_nothing_stale(page) -> None:
    panel = encode_panel(page)
    assert panel["reconstruction"] is None and panel["mse"] == "" and panel["latents"] == 0, panel
    assert panel["verdict"] not in ("Normal", "Anomalous") and panel["score"] == "–", panel
    assert panel["verdictClass"] == "verdict" and panel["padEmpty"] == "true", panel
    assert pad_is_blank(page, "#draw-pad")


def draw_a_seven(page) -> None:
    with page.expect_response(lambda r: "/score" in r.url):
        draw(page, "#draw-pad", SEVEN)
    settle(page, "#encode-card")
    settle(page, "#score-card")
    assert encode_panel(page)["verdict"] in ("Normal", "Anomalous")


def test_a_file_the_server_would_refuse_is_refused_before_sending(page, server, tmp_path):
    limit = limits(server)
    big = tmp_path / "photo.png"
    big.write_bytes(padded_png(np.zeros((28, 28), np.uint8), limit["max_body_bytes"] + 1000))
    huge = tmp_path / "scan.png"
    huge.write_bytes(png_bytes(np.zeros((5000, 5000), np.uint8)))
    reconstructs, scores = requests_to(page, "reconstruct"), requests_to(page, "score")
    for file, words in (
        (big, ["photo.png is 16.8 MB", "up to 16.8 MB"]),
        (huge, ["scan.png is 5000 × 5000 pixels", "16.8 million pixels", "4096 × 4096"]),
    ):
        draw_a_seven(page)
        reconstructs.clear()
        scores.clear()
        page.set_input_files("#draw-upload", str(file))
        page.wait_for_selector("#encode-card .card-message:not([hidden])")
        settle(page, "#encode-card")
        text = messages(page)["encode-card"]
        assert all(word in text for word in words), text
        assert reconstructs == [] and scores == [], "sent although the server would refuse it"
        assert_nothing_stale(page)


def test_a_refused_upload_leaves_no_stale_result(open_page, server, tmp_path):
    """The server's own refusals (413 for 16 MB, 422 for 5000 x 5000 pixels), reached by making
    the page believe the limits are higher: the old results go, the reason is shown."""

    def believe_higher_limits(page):
        def handle(route):
            response = route.fetch()
            body = response.json()
            body["limits"] = {**body["limits"], "max_body_bytes": 10**9, "max_image_pixels": 10**9}
            route.fulfill(response=response, json=body)

        page.route("**/models", handle)

    page = open_page(before=believe_higher_limits, expect_statuses=(413, 422))
    limit = limits(server)
    big = tmp_path / "photo.png"
    big.write_bytes(padded_png(np.zeros((28, 28), np.uint8), limit["max_body_bytes"] + 1000))
    huge = tmp_path / "scan.png"
    huge.write_bytes(png_bytes(np.zeros((5000, 5000), np.uint8)))
    for file, status, words in (
        (big, 413, ["photo.png (16.8 MB) is too large for this server"]),
        (huge, 422, ["scan.png was not accepted", "5000x5000"]),
    ):
        draw_a_seven(page)
        with page.expect_response(lambda r: "/reconstruct" in r.url) as answer:
            page.set_input_files("#draw-upload", str(file))
        assert answer.value.status == status
        settle(page, "#encode-card")
        settle(page, "#score-card")
        text = messages(page)["encode-card"]
        assert all(word in text for word in words), text
        assert_nothing_stale(page)


def test_a_large_file_goes_up_as_binary_with_a_busy_indicator(page, server, tmp_path):
    """A 16.0 MB PNG, under the 16 MiB limit: sent as multipart (no base64 growth) and accepted."""
    digit = np.asarray(Image.open(io.BytesIO(digit_png(server, seed=3))))
    photo = tmp_path / "photo.png"
    photo.write_bytes(padded_png(digit, 16_018_613))
    started = time.perf_counter()
    with page.expect_request(lambda r: "/reconstruct" in r.url) as sent:
        page.set_input_files("#draw-upload", str(photo))
        page.wait_for_selector("#encode-card.busy")
    request = sent.value
    assert request.headers["content-type"].startswith("multipart/form-data")
    # Accepted under a limit that its base64 (21.4 MB) would exceed: it went up as bytes.
    assert request.response().status == 200
    assert limits(server)["max_body_bytes"] < 16_018_613 * 4 / 3
    settle(page, "#encode-card")
    settle(page, "#score-card")
    print(f"a 16.0 MB upload reconstructed and scored in {time.perf_counter() - started:.2f} s")
    assert messages(page) == {}
    assert page.get_attribute("#reconstruction", "src").startswith(PNG_SRC)
    with Client(server.url) as client:
        expected = client.reconstruct(png_bytes(digit)).latents[0]
    np.testing.assert_allclose(latent_values(page), expected, atol=1e-5)


# ---- non-square uploads (item 8) ----------------------------------------------------------------


def test_a_non_square_upload_is_read_as_the_pad_shows_it(page, server, tmp_path):
    """A 56x28 image: the pad letterboxes it, and so does the server (not a squashed digit)."""
    select_model(page, "mnist-vae-2d")
    digit = np.asarray(Image.open(io.BytesIO(digit_png(server, seed=3, model="mnist-vae-2d"))))
    wide = np.zeros((28, 56), np.uint8)
    wide[:, 14:42] = digit
    boxed = np.asarray(Image.fromarray(wide).resize((28, 14), Image.Resampling.LANCZOS))
    letterboxed = np.zeros((28, 28), np.uint8)
    letterboxed[7:21] = boxed
    stretched = np.asarray(Image.fromarray(wide).resize((28, 28), Image.Resampling.LANCZOS))
    file = tmp_path / "wide.png"
    file.write_bytes(png_bytes(wide))
    with page.expect_response(lambda r: "/reconstruct" in r.url):
        page.set_input_files("#draw-upload", str(file))
    settle(page, "#encode-card")
    with Client(server.url, model="mnist-vae-2d") as client:
        as_boxed = client.reconstruct(png_bytes(letterboxed)).latents[0]
        as_stretched = client.reconstruct(png_bytes(stretched)).latents[0]
    np.testing.assert_allclose(latent_values(page), as_boxed, atol=1e-4)
    assert not np.allclose(latent_values(page), as_stretched, atol=1e-2)
    # The pad shows it the same way: black above and below, the image across the middle half.
    shown = page.eval_on_selector(
        "#draw-pad",
        """canvas => { const c = document.createElement('canvas'); c.width = c.height = 28;
            const x = c.getContext('2d'); x.drawImage(canvas, 0, 0, 28, 28);
            const d = x.getImageData(0, 0, 28, 28).data;
            return Array.from({ length: 28 * 28 }, (_, i) => d[i * 4]); }""",
    )
    shown = np.asarray(shown, np.float64).reshape(28, 28)
    assert shown[:6].max() == 0 and shown[22:].max() == 0
    assert np.abs(shown - letterboxed).mean() < 12  # the same picture, within resampling


# ---- before the models load (item 5) ------------------------------------------------------------


def test_controls_are_disabled_until_the_models_load(open_page):
    held = []
    page = open_page(
        ready=False, before=lambda p: p.route("**/models", lambda route: held.append(route))
    )
    page.wait_for_function("document.querySelector('#model-summary').textContent.length > 0")
    page.wait_for_timeout(200)
    controls = page.evaluate("""() => [...document.querySelectorAll(
        'main button, main input, main select, #model-select')]
        .filter(c => !c.disabled).map(c => c.id || c.outerHTML)""")
    assert controls == [], controls
    for canvas in ("#draw-pad", "#pad-a", "#pad-b", "#latent-map"):
        assert page.get_attribute(canvas, "aria-disabled") == "true"
    calls = requests_to(page, "reconstruct") + requests_to(page, "sample")
    page.click("#sample-run", force=True)
    draw(page, "#draw-pad", SEVEN)
    page.focus("#draw-pad")
    page.keyboard.press("Space")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Space")
    drop_file(page, "#draw-pad", b"\x89PNG", "x.png")
    page.wait_for_timeout(200)
    assert calls == [] and pad_is_blank(page, "#draw-pad")
    assert messages(page) == {}
    assert "Loading the models" in page.text_content("#model-summary")
    held[0].continue_()
    page.wait_for_selector("body[data-ready=true]")
    assert page.is_enabled("#sample-run") and page.is_enabled("#draw-upload-button")
    assert page.get_attribute("#draw-pad", "aria-disabled") == "false"


# ---- messages (item 7) --------------------------------------------------------------------------


def test_messages_sit_in_their_panel_can_be_dismissed_and_go_with_the_next_success(page):
    def fail_once():
        page.click("#interp-run")
        page.wait_for_selector("#interpolate-card .card-message:not([hidden])")
        assert "Draw or upload a start and an end image first" in messages(page)["interpolate-card"]

    fail_once()
    # In the flow of its panel, it covers no control.
    box = page.locator("#interpolate-card .card-message").bounding_box()
    for control in page.locator(
        "main button:visible, main input:visible, main select:visible"
    ).all():
        other = control.bounding_box()
        if other is None or control.evaluate("e => !!e.closest('.card-message')"):
            continue
        assert (
            other["x"] >= box["x"] + box["width"]
            or other["x"] + other["width"] <= box["x"]
            or other["y"] >= box["y"] + box["height"]
            or other["y"] + other["height"] <= box["y"]
        ), control.evaluate("e => e.id || e.outerHTML")
    page.keyboard.press("Escape")
    assert messages(page) == {}
    fail_once()
    page.click("#interpolate-card .dismiss")
    assert messages(page) == {}
    fail_once()
    draw(page, "#pad-a", ZERO)
    draw(page, "#pad-b", ONE)
    with page.expect_response(lambda r: "/interpolate" in r.url):
        page.click("#interp-run")
    settle(page, "#interpolate-card")
    assert messages(page) == {}  # the success took the message away
    page.wait_for_timeout(100)
    assert page.locator("#interp-strip img").count() == 9


# ---- number inputs (item 10) --------------------------------------------------------------------


def test_steps_and_seed_are_checked_in_the_page_and_enter_runs_them(page, server):
    max_steps = limits(server)["max_steps"]
    assert page.get_attribute("#interp-steps", "max") == str(max_steps)
    draw(page, "#pad-a", ZERO)
    draw(page, "#pad-b", ONE)
    page.fill("#interp-steps", str(max_steps))
    with page.expect_response(lambda r: "/interpolate" in r.url):
        page.press("#interp-steps", "Enter")
    settle(page, "#interpolate-card")
    assert page.locator("#interp-strip img").count() == max_steps
    interpolations = requests_to(page, "interpolate")
    for bad in ("", "0", "1", "2.5", str(max_steps + 1), "-3"):
        page.fill("#interp-steps", bad)
        page.press("#interp-steps", "Enter")
        error = page.text_content("#interp-steps-error")
        assert error == f"Steps must be a whole number from 2 to {max_steps}", (bad, error)
        assert page.get_attribute("#interp-steps", "aria-invalid") == "true"
        assert page.locator("#interp-strip img").count() == 0  # the old frames went
        assert page.get_attribute("#interp-frame", "src") is None
    assert interpolations == [], "sent steps the server refuses"
    assert messages(page) == {}
    page.fill("#interp-steps", "3")
    with page.expect_response(lambda r: "/interpolate" in r.url):
        page.press("#interp-steps", "Enter")
    assert page.is_hidden("#interp-steps-error")
    samples = requests_to(page, "sample")
    for bad in ("", "1.5", "-1"):
        page.fill("#sample-seed", bad)
        page.press("#sample-seed", "Enter")
        assert "The seed must be a whole number from 0" in page.text_content("#sample-seed-error")
        assert page.locator("#sample-grid img").count() == 0
    assert samples == [], "an empty seed went as 0"
    page.fill("#sample-seed", "9223372036854775807")  # the largest seed, sent exactly
    with page.expect_request(lambda r: "/sample" in r.url) as sampled:
        page.press("#sample-seed", "Enter")
    assert "seed=9223372036854775807" in sampled.value.url
    settle(page, "#sample-card")
    assert page.locator("#sample-grid img").count() == 8 and messages(page) == {}


# ---- the smaller items (11) ---------------------------------------------------------------------


def test_legend_placeholder_histogram_and_numbers(open_page, server):
    page = open_page(device_scale_factor=2)
    select_model(page, "fashion-vae")
    swatches = page.eval_on_selector_all(
        "#map-legend .swatch", "s => s.map(e => [e.getBoundingClientRect().width, e.textContent])"
    )
    assert len(swatches) == 10 and all(abs(width - 10) < 0.5 for width, _ in swatches), swatches
    # The API key placeholder fits its field.
    fits = page.eval_on_selector(
        "#api-key",
        """input => { const style = getComputedStyle(input); const context =
            document.createElement('canvas').getContext('2d'); context.font = style.font;
            const room = input.clientWidth - parseFloat(style.paddingLeft)
              - parseFloat(style.paddingRight);
            return [context.measureText(input.placeholder).width, room]; }""",
    )
    assert fits[0] <= fits[1], fits
    # The histogram is drawn at the screen's density, as the map is.
    for canvas in ("#score-histogram", "#latent-map"):
        width, css = page.eval_on_selector(
            canvas, "c => [c.width, c.getBoundingClientRect().width]"
        )
        assert width == round(css * 2) or width == 2 * int(css), (canvas, width, css)
    # The threshold reads the same on the histogram as beside it; both percentiles carry "%".
    select_model(page, "mnist-vae")
    with page.expect_response(lambda r: "/score" in r.url):
        draw(page, "#draw-pad", SEVEN)
    settle(page, "#score-card")
    threshold = page.text_content("#score-threshold")
    assert f"threshold {threshold}" in page.get_attribute("#score-histogram", "aria-label")
    assert page.text_content("#score-percentile").endswith(" %")
    assert " %: " in page.text_content("#score-corrected")


def test_a_tap_draws_a_dot_and_a_stroke_may_start_outside_the_pad(page):
    box = page.locator("#draw-pad").bounding_box()
    with page.expect_response(lambda r: "/reconstruct" in r.url):
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    assert not pad_is_blank(page, "#draw-pad")
    settle(page, "#encode-card")
    page.click("#draw-clear")
    assert pad_is_blank(page, "#draw-pad")
    page.mouse.move(box["x"] - 30, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] / 2, steps=8)
    with page.expect_response(lambda r: "/reconstruct" in r.url):
        page.mouse.up()
    assert not pad_is_blank(page, "#draw-pad")
    settle(page, "#encode-card")
    assert page.get_attribute("#reconstruction", "src").startswith(PNG_SRC)
