"""Dynamic batching and load shedding: the runner itself, and on real servers.

Batched results must equal unbatched ones; a request's bad input must not fail the others in
its batch; CVAE labels stay with their images; full queues and late requests get 503 with
Retry-After. Nothing here depends on the machine's speed: batches are forced by holding the
runner's first batch back or by a long batching window, and shedding by limits no request can
meet.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
import pytest

from service.asgi.problems import service_error_response
from service.core.errors import Overloaded
from service.models.batching import BatchPolicy, GraphRunner
from tests.service.conftest import Server, shipped_models_dir, start_server, stop_server
from tests.service.helpers import assert_problem, npy, png, random_digit, read_npy


@pytest.fixture(scope="module")
def encoder_session() -> ort.InferenceSession:
    path = shipped_models_dir() / "mnist-ae" / "encoder.onnx"
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run_session(session: ort.InferenceSession):
    def run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"latent": session.run(["latent"], inputs)[0]}

    return run


def counting(session: ort.InferenceSession):
    """The session's run, and the batch size of every call it gets."""
    calls: list[int] = []
    session_run = run_session(session)

    def counted(inputs):
        calls.append(len(inputs["image"]))
        return session_run(inputs)

    return counted, calls


def images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((count, 1, 28, 28), dtype=np.float32)


async def run_together(runner: GraphRunner, batches: list[dict[str, np.ndarray]]) -> list:
    """All requests enqueued before the runner takes any: they meet in its queue."""
    return await asyncio.gather(*(runner.run(b) for b in batches), return_exceptions=True)


# ---- the runner, on a real ONNX Runtime session ----------------------------------------------


def test_concurrent_requests_share_one_graph_call_and_get_their_own_rows(encoder_session):
    counted, calls = counting(encoder_session)

    runner = GraphRunner("mnist-ae/encoder", counted, BatchPolicy(max_batch=64))
    requests = [{"image": images(n, seed)} for seed, n in enumerate([1, 3, 1, 5, 2])]
    results = asyncio.run(run_together(runner, requests))
    assert calls == [12]  # one call for all five requests
    for request, result in zip(requests, results, strict=True):
        alone = run_session(encoder_session)(request)["latent"]
        assert result["latent"].shape == alone.shape
        np.testing.assert_allclose(result["latent"], alone, atol=1e-6)


def test_batches_never_exceed_max_batch_and_a_larger_request_runs_alone(encoder_session):
    counted, calls = counting(encoder_session)

    runner = GraphRunner("mnist-ae/encoder", counted, BatchPolicy(max_batch=4))
    requests = [{"image": images(n, seed)} for seed, n in enumerate([2, 2, 3, 9, 1])]
    results = asyncio.run(run_together(runner, requests))
    assert calls == [4, 3, 9, 1]
    assert [len(r["latent"]) for r in results] == [2, 2, 3, 9, 1]


def test_a_request_that_breaks_the_graph_fails_alone(encoder_session):
    runner = GraphRunner("mnist-ae/encoder", run_session(encoder_session), BatchPolicy())
    good = [{"image": images(2, seed)} for seed in range(3)]
    wrong_size = {"image": np.zeros((1, 1, 27, 27), np.float32)}
    results = asyncio.run(run_together(runner, [good[0], wrong_size, good[1], good[2]]))
    assert isinstance(results[1], Exception)
    for request, result in zip(good, [results[0], results[2], results[3]], strict=True):
        np.testing.assert_allclose(
            result["latent"], run_session(encoder_session)(request)["latent"], atol=1e-6
        )


def test_a_full_queue_refuses_with_overloaded(encoder_session):
    runner = GraphRunner("mnist-ae/encoder", run_session(encoder_session), BatchPolicy(max_queue=3))
    results = asyncio.run(run_together(runner, [{"image": images(1, s)} for s in range(5)]))
    assert [isinstance(r, dict) for r in results] == [True, True, True, False, False]
    refused = results[3]
    answered = service_error_response(refused)  # what the HTTP front ends answer for it
    assert isinstance(refused, Overloaded) and answered.status_code == 503
    assert "3 requests waiting" in refused.detail
    assert int(answered.headers["Retry-After"]) >= 1


def test_requests_past_the_deadline_are_shed_not_run(encoder_session):
    counted, calls = counting(encoder_session)

    # No request can be taken within a microsecond of being queued.
    runner = GraphRunner("mnist-ae/encoder", counted, BatchPolicy(deadline=1e-6))
    results = asyncio.run(run_together(runner, [{"image": images(1, s)} for s in range(3)]))
    assert calls == []
    assert all(isinstance(r, Overloaded) and "deadline" in r.detail for r in results)


def test_work_queued_beyond_the_deadline_is_refused_before_it_waits(encoder_session):
    runner = GraphRunner("mnist-ae/encoder", run_session(encoder_session), BatchPolicy())

    async def scenario() -> list:
        await runner.run({"image": images(4, 0)})  # the graph's time per image is now known
        # Any queued work now takes longer than the deadline.
        runner.policy = dataclasses.replace(runner.policy, deadline=1e-12)
        return await run_together(runner, [{"image": images(1, s)} for s in range(3)])

    results = asyncio.run(scenario())
    assert all(isinstance(r, Overloaded) for r in results)
    assert "deadline" in results[0].detail and "waited" in results[0].detail  # shed when taken
    for refused in results[1:]:  # refused at once: work was already waiting ahead of them
        assert "images waiting" in refused.detail


# ---- on real servers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def batching_server(tmp_path_factory) -> Iterator[Server]:
    """A long batching window: concurrent requests reliably meet in one batch."""
    log = tmp_path_factory.mktemp("logs") / "batching.log"
    server = start_server(
        shipped_models_dir(), log, batch_max_wait_ms="250", queue_deadline_ms="30000"
    )
    yield server
    stop_server(server)


def digits(count: int) -> list[np.ndarray]:
    return [random_digit(seed) for seed in range(count)]


def batch_sizes(server: Server, model: str, graph: str) -> tuple[float, float]:
    """(graph calls, images) from the batch-size histogram of /metrics."""
    with server.client() as client:
        text = client.get("/metrics").text
    labels = f'graph="{graph}",model="{model}"'
    count = re.search(rf"latentserve_batch_size_count{{{labels}}} (\S+)", text)
    total = re.search(rf"latentserve_batch_size_sum{{{labels}}} (\S+)", text)
    return float(count.group(1)), float(total.group(1))


def concurrently(server: Server, calls: list) -> list:
    with server.client() as client, ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda call: call(client), calls))


def encode_npy(model: str, image: np.ndarray, label: int | None = None):
    query = f"/encode?model={model}" + ("" if label is None else f"&label={label}")

    def call(client):
        return client.post(
            query,
            content=png(image),
            headers={"Content-Type": "image/png", "Accept": "application/x-npy"},
        )

    return call


@pytest.mark.slow
def test_batched_encodings_equal_unbatched_ones(batching_server, shipped):
    pictures = digits(16)
    before = batch_sizes(batching_server, "mnist-vae", "encoder")
    answers = concurrently(batching_server, [encode_npy("mnist-vae", p) for p in pictures])
    calls, total = np.subtract(batch_sizes(batching_server, "mnist-vae", "encoder"), before)
    assert total == 16 and calls < 16, "the concurrent requests were not batched"
    for picture, answer in zip(pictures, answers, strict=True):
        alone = read_npy(encode_npy("mnist-vae", picture)(shipped))  # the default server
        np.testing.assert_allclose(read_npy(answer), alone, atol=1e-6)


@pytest.mark.slow
def test_cvae_labels_stay_with_their_images_in_a_batch(batching_server, shipped):
    picture = random_digit(3)
    calls = [encode_npy("mnist-cvae", picture, label) for label in range(10)]
    answers = [read_npy(a) for a in concurrently(batching_server, calls)]
    for label, answer in enumerate(answers):
        alone = read_npy(encode_npy("mnist-cvae", picture, label)(shipped))
        np.testing.assert_allclose(answer, alone, atol=1e-6)
    assert len({a.tobytes() for a in answers}) == 10  # the label changed every encoding


@pytest.mark.slow
def test_bad_requests_in_a_batch_fail_alone(batching_server):
    good = [encode_npy("mnist-ae", p) for p in digits(6)]

    def nan_batch(client):
        bad = np.full((2, 1, 28, 28), np.nan, np.float32)
        return client.post(
            "/encode?model=mnist-ae",
            content=npy(bad),
            headers={"Content-Type": "application/x-npy"},
        )

    answers = concurrently(batching_server, [*good[:3], nan_batch, *good[3:]])
    assert [a.status_code for a in answers] == [200, 200, 200, 422, 200, 200, 200]
    assert_problem(answers[3], 422, "finite")


@pytest.mark.slow
def test_reconstruct_decode_and_sample_are_batched_too(batching_server, shipped):
    latents = np.random.default_rng(0).standard_normal((8, 20)).astype(np.float32)

    def decode(row):
        def call(client):
            return client.post(
                "/decode?model=mnist-vae",
                json={"latents": [row.tolist()]},
                headers={"Accept": "application/x-npy"},
            )

        return call

    before = batch_sizes(batching_server, "mnist-vae", "decoder")
    answers = concurrently(batching_server, [decode(row) for row in latents])
    calls, total = np.subtract(batch_sizes(batching_server, "mnist-vae", "decoder"), before)
    assert total == 8 and calls < 8
    for row, answer in zip(latents, answers, strict=True):
        np.testing.assert_allclose(read_npy(answer), read_npy(decode(row)(shipped)), atol=1e-6)


@pytest.fixture(scope="module")
def shedding_server(tmp_path_factory) -> Iterator[Server]:
    """A queue deadline no request can meet: every graph call is shed."""
    log = tmp_path_factory.mktemp("logs") / "shedding.log"
    server = start_server(shipped_models_dir(), log, queue_deadline_ms="0.000001")
    yield server
    stop_server(server)


@pytest.mark.slow
def test_shed_requests_get_503_problem_with_retry_after(shedding_server):
    with shedding_server.client() as client:
        answer = client.post(
            "/encode?model=mnist-ae",
            content=png(random_digit()),
            headers={"Content-Type": "image/png"},
        )
        assert_problem(answer, 503, "deadline", "retry")
        assert int(answer.headers["Retry-After"]) >= 1
        assert client.get("/sample?model=mnist-vae&n=2").status_code == 503
        assert client.get("/healthz").status_code == 200  # the process is fine
        assert client.get("/models").status_code == 200  # and routes without a graph serve
        metrics = client.get("/metrics").text
    shed = re.search(
        r'latentserve_shed_total{graph="encoder",model="mnist-ae",reason="deadline"} (\S+)', metrics
    )
    assert shed and float(shed.group(1)) >= 1


def test_metrics_report_queue_depth_per_graph(api):
    text = api.get("/metrics").text
    assert 'latentserve_queue_depth{graph="encoder",model="tiny-vae"} 0.0' in text
    assert "latentserve_queue_wait_seconds_bucket" in text
