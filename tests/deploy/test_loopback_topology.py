"""The compose topology for real on loopback: N service replicas behind Debian's nginx running
deploy/nginx.conf (upstreams rewritten to loopback ports by deploy.loopback), HTTP and gRPC."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from deploy.loopback import NGINX_CONF, LoopbackTopology, nginx_binary  # noqa: E402
from deploy.loopback import render_nginx_conf as render  # noqa: E402
from tests.conftest import skip_or_fail  # noqa: E402
from tests.service.model_factory import build_model_folder  # noqa: E402

pytestmark = pytest.mark.slow

REPLICAS = 3


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """One small real model: the topology, not the models, is under test here."""
    root = tmp_path_factory.mktemp("models")
    build_model_folder(root / "tiny-vae", "tiny-vae", latent_dim=4)
    return root


@pytest.fixture
def topology(model_dir, tmp_path) -> Iterator[LoopbackTopology]:
    try:
        nginx_binary()
    except FileNotFoundError as missing:
        skip_or_fail(str(missing))
    with LoopbackTopology(REPLICAS, model_dir, workdir=tmp_path) as running:
        yield running


def served_by(response: httpx.Response) -> str:
    return response.headers["X-Served-By"].split(",")[-1].strip()


def encode_through(http: httpx.Client, seed: int) -> httpx.Response:
    image = np.random.default_rng(seed).random((28, 28)).tolist()
    return http.post("/encode", params={"model": "tiny-vae"}, json={"images": [image]})


def test_rewritten_config_keeps_everything_but_the_addresses():
    source = NGINX_CONF.read_text()
    rendered = render(source, 19999, [19001, 19002], Path("/tmp/x"), 19998, [19101, 19102])
    for port in (19001, 19002, 19101, 19102):
        assert f"server 127.0.0.1:{port} max_fails=2 fail_timeout=5s;" in rendered
    assert "set $api_replicas latentserve_loopback;" in rendered
    assert "set $api_grpc_replicas latentserve_loopback_grpc;" in rendered
    assert "listen 127.0.0.1:19999;" in rendered
    assert "listen 127.0.0.1:19998 http2;" in rendered
    directives = [line for line in rendered.splitlines() if not line.strip().startswith("#")]
    assert not [line for line in directives if "api:" in line or "resolver.conf" in line]
    changed = (
        "set $api_replicas",
        "set $api_grpc_replicas",
        "listen",
        "include /etc/nginx/resolver.conf",
    )
    kept = [line for line in source.splitlines() if not any(c in line for c in changed)]
    assert all(line in rendered for line in kept)
    with pytest.raises(ValueError, match="expected one match"):
        render(source.replace("api:8000", "backend:8000"), 1, [2], Path("/tmp"))


def test_requests_spread_over_every_replica(topology):
    with httpx.Client(base_url=topology.url, timeout=30) as http:
        responses = [encode_through(http, seed) for seed in range(4 * REPLICAS)]
        assert [r.status_code for r in responses] == [200] * len(responses)
        counts = Counter(served_by(r) for r in responses)
        assert set(counts) == {r.address for r in topology.replicas}
        # Every replica serves the same models: the answer does not depend on which one.
        again = [encode_through(http, 0) for _ in range(REPLICAS)]
    assert len({served_by(r) for r in again}) == REPLICAS
    assert all(r.json()["latents"] == responses[0].json()["latents"] for r in again)


def test_requests_keep_succeeding_when_a_replica_is_killed(topology):
    victim, *survivors = topology.replicas
    victim.kill()
    with httpx.Client(base_url=topology.url, timeout=30) as http:
        responses = [encode_through(http, seed) for seed in range(6 * REPLICAS)]
        responses += [http.get("/sample", params={"model": "tiny-vae", "seed": 1})]
    assert [r.status_code for r in responses] == [200] * len(responses)
    assert {served_by(r) for r in responses} == {r.address for r in survivors}
    assert all(len(r.json()["latents"][0]) == 4 for r in responses)


def test_the_web_page_and_problem_details_pass_through_nginx(topology):
    with httpx.Client(base_url=topology.url, timeout=30) as http:
        page = http.get("/")
        missing = http.get("/models/no-such-model")
    assert page.status_code == 200 and "latentserve" in page.text
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert "no-such-model" in missing.json()["detail"]


def test_grpc_calls_spread_over_the_replicas_and_skip_a_dead_one(topology):
    """nginx's gRPC server: one client channel (one HTTP/2 connection), each call to a replica
    of its own; a replica that refuses connections is skipped (grpc_next_upstream error)."""
    with grpc.insecure_channel(topology.nginx.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)

        def check() -> str:
            answer, call = health.Check.with_call(health_pb2.HealthCheckRequest(), timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
            return dict(call.initial_metadata())["x-served-by"].split(",")[-1].strip()

        grpc_addresses = {f"127.0.0.1:{r.grpc_port}" for r in topology.replicas}
        assert {check() for _ in range(4 * REPLICAS)} == grpc_addresses
        victim, *survivors = topology.replicas
        victim.kill()
        served = [check() for _ in range(4 * REPLICAS)]
    assert set(served) == {f"127.0.0.1:{r.grpc_port}" for r in survivors}
