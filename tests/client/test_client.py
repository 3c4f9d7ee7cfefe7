"""The typed client against a real service on loopback with the shipped models."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import pytest
from PIL import Image

from client import AsyncClient, Client, ConnectionFailed, LatentServeError, RetryPolicy

pytestmark = pytest.mark.slow

VAE = "mnist-vae-2d"
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def api(server) -> Client:
    with Client(server.url, model=VAE) as client:
        yield client


def png_of(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_every_image_input_type_gives_the_same_latents(api, digits, tmp_path):
    image = digits[0][0]
    path = tmp_path / "digit.png"
    path.write_bytes(png_of(image))
    inputs = {
        "path": path,
        "str path": str(path),
        "bytes": png_of(image),
        "PIL": Image.fromarray(image),
        "uint8 array": image,
        "float array [1,H,W]": [image[None].astype(np.float32) / 255.0],
    }
    latents = {name: api.encode(value).latents for name, value in inputs.items()}
    for name, latent in latents.items():
        assert latent.shape == (1, 2), name
        np.testing.assert_allclose(latent, latents["path"], atol=1e-5, err_msg=name)


def test_a_batch_array_encodes_each_image_like_a_single_upload(api, digits):
    images = digits[0][:5]
    batch = api.encode(images)  # [N,H,W] uint8, sent as one .npy body
    singles = np.concatenate([api.encode(png_of(image)).latents for image in images])
    np.testing.assert_allclose(batch.latents, singles, atol=1e-5)
    assert batch.mean is not None and batch.logvar.shape == batch.mean.shape
    np.testing.assert_array_equal(batch.latents, batch.mean)


def test_sampled_encoding_is_seeded(api, digits):
    images = digits[0][:3]
    first = api.encode(images, sample=True, seed=11)
    again = api.encode(images, sample=True, seed=11)
    other = api.encode(images, sample=True, seed=12)
    np.testing.assert_array_equal(first.latents, again.latents)
    assert not np.allclose(first.latents, other.latents)
    assert not np.allclose(first.latents, first.mean)


def test_reconstruction_is_close_to_real_digits_and_equals_decode_of_encode(api, digits):
    images = digits[0][:8]
    result = api.reconstruct(images)
    pixels = images[:, None].astype(np.float32) / 255.0
    recon = result.images.numpy()
    assert recon.shape == pixels.shape
    own_mse = ((recon - pixels) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(result.mse, own_mse, atol=2e-3)  # PNGs are quantized to 1/255
    mismatched = ((np.roll(recon, 1, axis=0) - pixels) ** 2).mean()
    assert result.mse.mean() < mismatched, "each reconstruction resembles its own digit"
    decoded = api.decode(api.encode(images).latents).images.numpy()
    np.testing.assert_allclose(decoded, recon, atol=1 / 255 + 1e-6)


def test_array_output_is_exact_and_pil_output_has_the_model_shape(api):
    latents = np.array([[0.0, 0.0], [1.5, -1.0]], dtype=np.float32)
    exact = api.decode(latents, output="array").images.numpy()
    as_png = api.decode(latents).images
    assert exact.dtype == np.float32 and exact.shape == (2, 1, 28, 28)
    np.testing.assert_allclose(as_png.numpy(), exact, atol=0.5 / 255 + 1e-6)
    pictures = as_png.pil()
    assert [p.size for p in pictures] == [(28, 28), (28, 28)]
    assert pictures[0].tobytes() != pictures[1].tobytes()


def test_sampling_with_a_seed_repeats_and_other_seeds_differ(api):
    first = api.sample(6, seed=42)
    again = api.sample(6, seed=42)
    other = api.sample(6, seed=43)
    assert first.seed == 42 and len(first.images) == 6
    assert first.images.pngs == again.images.pngs
    np.testing.assert_array_equal(first.latents, again.latents)
    assert first.images.pngs != other.images.pngs


def test_interpolating_latents_starts_and_ends_at_their_decodings(api):
    start, end = np.array([-2.0, 0.5]), np.array([2.0, -0.5])
    path = api.interpolate(start, end, steps=7, output="array")
    assert len(path.images) == 7 and path.method == "linear"
    np.testing.assert_allclose(path.latents[[0, -1]], [start, end], atol=1e-6)
    ends = api.decode(np.stack([start, end]), output="array").images.numpy()
    np.testing.assert_allclose(path.images.numpy()[[0, -1]], ends, atol=1e-5)


def test_interpolating_images_walks_between_their_latents(api, digits):
    a, b = digits[0][0], digits[0][1]
    path = api.interpolate(Image.fromarray(a), b, steps=5, method="spherical")
    assert path.method == "spherical" and len(path.images) == 5
    ends = api.encode(np.stack([a, b])).latents
    np.testing.assert_allclose(path.latents[[0, -1]], ends, atol=1e-4)


def test_conditional_model_takes_labels_everywhere(api, digits):
    images, labels = digits
    info = api.model_info("mnist-cvae")
    assert info.conditional and len(info.classes) == 10
    encoded = api.encode(images[:4], labels=labels[:4].tolist(), model="mnist-cvae")
    assert encoded.latents.shape == (4, info.latent_dim)
    threes = api.sample(4, seed=1, label=3, model="mnist-cvae")
    sevens = api.sample(4, seed=1, label=7, model="mnist-cvae")
    np.testing.assert_array_equal(threes.latents, sevens.latents)  # same z, another class
    assert threes.images.pngs != sevens.images.pngs
    with pytest.raises(LatentServeError) as missing_label:
        api.encode(images[:1], model="mnist-cvae")
    assert missing_label.value.status == 422


def test_model_listing_and_reference_map(api):
    listing = api.models()
    assert {VAE, "mnist-cvae", "mnist-ae"} <= set(listing.names())
    assert listing.default in listing.names()
    info = api.model_info(VAE)
    assert (info.latent_dim, info.image_shape, info.variational) == (2, (1, 28, 28), True)
    assert info.provider == "CPUExecutionProvider"
    reference = api.reference(VAE)
    assert reference.points.shape[1] == 2 and len(reference.labels) == len(reference.points)
    # The 2-D model's map is its latent space: mapping the points back changes nothing.
    np.testing.assert_allclose(reference.to_latent(reference.points), reference.points, atol=1e-5)


def test_health_and_metrics(api):
    assert api.healthz()["status"] == "ok"
    assert api.readyz()["ready"] is True
    assert "latentserve_requests_total" in api.metrics()


def test_errors_carry_the_servers_problem_details(api):
    with pytest.raises(LatentServeError) as unknown:
        api.model_info("no-such-model")
    assert unknown.value.status == 404
    assert unknown.value.title and "no-such-model" in unknown.value.detail
    with pytest.raises(LatentServeError) as wrong_length:
        api.decode([[0.1, 0.2, 0.3]])
    assert wrong_length.value.status == 422 and "2" in wrong_length.value.detail
    with pytest.raises(LatentServeError) as not_an_image:
        api.encode(b"this is not an image")
    assert 400 <= not_an_image.value.status < 500


def test_async_client_gives_the_same_answers_concurrently(server, api, digits):
    images = digits[0][:12]

    async def encode_all():
        async with AsyncClient(server.url, model=VAE) as client:
            results = await asyncio.gather(*(client.encode(png_of(im)) for im in images))
            samples = await client.sample(3, seed=5)
            return results, samples

    results, samples = asyncio.run(encode_all())
    expected = api.encode(images).latents
    np.testing.assert_allclose(np.concatenate([r.latents for r in results]), expected, atol=1e-5)
    assert samples.images.pngs == api.sample(3, seed=5).images.pngs


# --- retries: a loopback peer that is busy before it answers ----------------------------------


class BusyThenReady(BaseHTTPRequestHandler):
    """Answers the first `busy` requests with 429/503 problem details, then a model list."""

    busy_statuses: list[int] = []
    seen = 0

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        cls = type(self)
        cls.seen += 1
        if cls.busy_statuses:
            status = cls.busy_statuses.pop(0)
            body = {
                "type": "about:blank",
                "title": "Busy",
                "status": status,
                "detail": "queue full, retry shortly",
            }
            self._answer(status, body, "application/problem+json", {"Retry-After": "0"})
        else:
            self._answer(200, {"default": None, "models": [], "failed": []}, "application/json")

    def _answer(self, status: int, body: dict, media_type: str, headers=None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def busy_peer():
    BusyThenReady.seen = 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BusyThenReady)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", BusyThenReady
    httpd.shutdown()
    httpd.server_close()


def test_retries_429_and_503_until_the_server_answers(busy_peer):
    url, peer = busy_peer
    peer.busy_statuses = [429, 503]
    with Client(url, retry=FAST_RETRY) as client:
        assert client.models().models == []
    assert peer.seen == 3


def test_gives_up_after_the_last_attempt_with_the_problem_detail(busy_peer):
    url, peer = busy_peer
    peer.busy_statuses = [503, 503, 503, 503]
    with Client(url, retry=FAST_RETRY) as client, pytest.raises(LatentServeError) as error:
        client.models()
    assert (error.value.status, error.value.detail) == (503, "queue full, retry shortly")
    assert peer.seen == FAST_RETRY.attempts


def test_async_client_retries_too(busy_peer):
    url, peer = busy_peer
    peer.busy_statuses = [503]

    async def listing():
        async with AsyncClient(url, retry=FAST_RETRY) as client:
            return await client.models()

    assert asyncio.run(listing()).models == []
    assert peer.seen == 2


def test_connection_errors_are_retried_then_raised_as_the_clients_own_error():
    with (
        Client("http://127.0.0.1:9", retry=FAST_RETRY) as client,
        pytest.raises(ConnectionFailed) as failed,
    ):
        client.models()
    assert isinstance(failed.value, LatentServeError) and failed.value.status == 0
    assert isinstance(failed.value.__cause__, httpx.ConnectError)
    assert str(failed.value) == "cannot reach http://127.0.0.1:9: connection refused"

    async def listing():
        async with AsyncClient("http://127.0.0.1:9", retry=FAST_RETRY) as client:
            return await client.models()

    with pytest.raises(ConnectionFailed, match="cannot reach http://127.0.0.1:9"):
        asyncio.run(listing())


def test_score_judges_digits_and_noise_in_both_clients(server, digits):
    images, _ = digits
    noise = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    with Client(server.url, model="mnist-vae") as client:
        result = client.score([png_of(im) for im in images[:8]] + [png_of(n) for n in noise])
        info = client.model_info("mnist-vae").raw["calibration"]

    async def score_async():
        async with AsyncClient(server.url, model="mnist-vae") as client:
            return await client.score(images[:8].astype(np.float32) / 255.0)

    again = asyncio.run(score_async())
    assert (result.model, result.score, result.unit) == ("mnist-vae", "neg_elbo", "nats")
    assert result.threshold == info["score"]["threshold"]
    assert result.scores.shape == result.percentiles.shape == result.anomalous.shape == (12,)
    assert not result.anomalous[:8].all() and result.anomalous[8:].all()
    assert (result.percentiles[8:] == 100.0).all()
    np.testing.assert_allclose(again.scores, result.scores[:8], rtol=1e-5)
    assert result.corrected.score == "neg_elbo_minus_entropy"
    assert result.corrected.anomalous[8:].all()


def test_score_maps_come_back_as_numpy_arrays_in_both_clients(server, digits):
    images = digits[0][:4].astype(np.float32)[:, None] / 255.0
    with Client(server.url, model="mnist-vae") as client:
        judged = client.score(images, maps=True, pixel_threshold=0.5, threshold=1.0)
        maps = client.score_maps(images)

    async def maps_async():
        async with AsyncClient(server.url, model="mnist-vae") as client:
            return await client.score_maps(images)

    assert maps.dtype == np.float32 and maps.shape == (4, 28, 28)
    np.testing.assert_allclose(asyncio.run(maps_async()), maps, rtol=1e-6)
    assert judged.threshold == 1.0 and judged.anomalous.all()
    assert (judged.maps.pixel_thresholds == 0.5).all() and judged.maps.unit == "nats"
    assert judged.maps.anomalous_pixels.tolist() == (maps > 0.5).sum(axis=(1, 2)).tolist()
    assert all(png.startswith(b"\x89PNG") for png in judged.maps.heatmaps)
    np.testing.assert_allclose(judged.maps.peaks, maps.max(axis=(1, 2)), rtol=1e-5)
