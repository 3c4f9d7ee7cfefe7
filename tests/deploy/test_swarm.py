"""deploy/swarm/stack.yml (written from docker-compose.yml) on a real 3-node Docker Swarm.

Three test hosts (../shared/tools/testhosts), each with its own dockerd (Debian's docker.io),
joined as three managers; the serving image built with podman as the other container tests
build it and loaded on every node; the stack deployed as a user deploys it; HAProxy with the
repo's deploy/swarm/haproxy.cfg in front of the nodes; gRPC through HAProxy's gRPC frontend to
every node. Then, under bounded load from the client namespace: a node killed (dockerd,
containerd, containers, SIGKILL) and brought back, a node cut off the network and healed, a
rolling update to another image. Failure counts are printed (`-s`) and asserted; everything is
torn down at the end, whatever happened.

What this shows and what it does not: all hosts share this machine's two cores and one kernel,
so placement, failover and rolling updates are real, throughput scaling is not.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail
from tests.deploy import swarm as swarm_module
from tests.deploy.containers import build, podman
from tests.deploy.swarm import Cluster

# The first test of a session may build the serving image (see test_compose.py); the swarm
# part itself takes about four minutes here.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

STACK = "latentserve"
SERVICE = f"{STACK}_api"
REPLICAS = 3
MAX_FAILED_FRACTION = 0.001
FIGURES: dict = {}


@pytest.fixture(scope="module")
def images(serving_image, tmp_path_factory) -> Iterator[tuple[str, str, object]]:
    """The session's image and an update of it (one label more: another image ID), saved to
    one archive for `docker load`. Made before the test hosts exist: while they do, the root
    namespace reaches no 10.x address (the guard route), its DNS server included."""
    update = build(
        f"{serving_image.image}-update",
        "--file", str(swarm_module.ROOT / "tests" / "deploy" / "swarm-update.Containerfile"),
        "--build-arg", f"IMAGE={serving_image.image}",
        str(swarm_module.ROOT / "tests" / "deploy"),
    )  # fmt: skip
    archive = tmp_path_factory.mktemp("swarm-images") / "images.tar"
    started = time.monotonic()
    podman(
        "save", "--format", "docker-archive", "--multi-image-archive",
        "--output", str(archive), serving_image.image, update.image, timeout=300,
    )  # fmt: skip
    FIGURES["image_save_seconds"] = round(time.monotonic() - started, 1)
    yield serving_image.image, update.image, archive
    podman("rmi", update.image, check=False)


@pytest.fixture(scope="module")
def cluster(images) -> Iterator[Cluster]:
    if os.geteuid() != 0:
        skip_or_fail("the swarm test makes network namespaces and runs dockerd: it needs root")
    missing = swarm_module.missing_tools()
    if missing:
        skip_or_fail(f"{', '.join(missing)} missing: scripts/test installs docker.io and haproxy")
    if swarm_module.hosts_are_up():
        pytest.fail("the test hosts are up already (another run holds them): testhosts down")
    image, _, archive = images
    started = time.monotonic()
    # Short paths: each node's sockets live under it.
    cluster = Cluster(Path(f"/var/tmp/latentserve-swarm-{os.getpid()}"))
    try:
        FIGURES["up"] = {k: round(v, 1) for k, v in cluster.up().items()}
        FIGURES["docker_load_seconds"] = round(cluster.load_images(archive), 1)
        cluster.deploy(STACK, image)
        FIGURES["replicas_running_seconds"] = round(
            cluster.wait_for_replicas(SERVICE, REPLICAS, via=1), 1
        )
        cluster.start_haproxy()
        cluster.wait_for_lb()
        FIGURES["ready_seconds"] = round(time.monotonic() - started, 1)
        yield cluster
    finally:
        down_started = time.monotonic()
        cluster.down()
        FIGURES["down_seconds"] = round(time.monotonic() - down_started, 1)
        FIGURES["swarm_test_seconds"] = round(time.monotonic() - started, 1)
        print(f"\nswarm figures: {json.dumps(FIGURES)}")
        swarm_module.SUMMARY.append(f"swarm figures: {json.dumps(FIGURES)}")


def node_down_in_swarm(cluster: Cluster, via: int, timeout: float = 120) -> float:
    """Seconds until the swarm's managers mark one node down (41-46 s for a lost leader here:
    an election first)."""
    started = time.monotonic()
    while "Down" not in cluster.nodes_ready(via).values():
        assert time.monotonic() - started < timeout, "no node was marked down"
        time.sleep(1)
    return time.monotonic() - started


def assert_few_failures(result: dict, name: str) -> None:
    FIGURES[name] = result
    line = f"{name}: {result['failed']} of {result['requests']} requests failed"
    print(f"\n{line}: {result}")
    swarm_module.SUMMARY.append(line)
    assert result["requests"] >= 2000, "too little load to measure a tenth of a percent"
    assert result["failed"] / result["requests"] < MAX_FAILED_FRACTION, result


def test_the_stack_runs_one_replica_per_node_behind_haproxy(cluster):
    assert cluster.running_replicas(SERVICE, via=1) == REPLICAS
    for k in range(1, REPLICAS + 1):
        here = cluster.docker(
            k, "node", "ps", "self", "--filter", "desired-state=running", "--format", "{{.Name}}"
        ).stdout.split()
        assert len(here) == 1, f"lsh{k} runs {here}"
    with cluster.load(seconds=5, max_requests=20_000) as run:
        pass
    FIGURES["spread"] = run.result
    assert run.result["failed"] == 0, run.result
    assert run.result["with_request_id"] == run.result["requests"], "HAProxy makes one"

    assert set(run.result["served_by"]) == {f"node{k}" for k in range(1, REPLICAS + 1)}


def test_grpc_through_haproxy_answers_as_http_on_every_node(cluster):
    """HAProxy's gRPC frontend (h2c, 8081) to each node's published 8001: one channel's calls
    spread over the nodes; tritonclient's infer and stream answer what HTTP /v2 answers."""
    result = cluster.grpc_round(checks=4 * REPLICAS)
    FIGURES["grpc"] = result
    assert result["health"] == {"SERVING": 4 * REPLICAS}, result
    assert set(result["served_by"]) == {f"node{k}" for k in range(1, REPLICAS + 1)}, result
    assert result["ready"] is True and result["inputs"] == ["image"]
    assert result["infer_max_difference"] <= 1e-6
    assert result["stream_errors"] == [] and sorted(result["stream"]) == ["0", "1", "2"]
    assert max(result["stream"].values()) <= 1e-6


def test_a_node_killed_under_load_fails_under_a_tenth_of_a_percent(cluster):
    victim = 1  # the leader at start: the other two managers elect another
    with cluster.load(seconds=240, max_requests=500_000) as run:
        time.sleep(5)
        cluster.kill_node(victim)
        FIGURES["kill_node_down_seconds"] = round(node_down_in_swarm(cluster, via=2), 1)
        # One replica per node: the lost one has nowhere to go until its node is back.
        cluster.wait_for_replicas(SERVICE, REPLICAS - 1, via=2, timeout=60)
        started = time.monotonic()
        cluster.start_node(victim)
        FIGURES["kill_restored_seconds"] = round(
            cluster.wait_for_replicas(SERVICE, REPLICAS, via=2), 1
        )
        FIGURES["kill_node_back_seconds"] = round(time.monotonic() - started, 1)
        time.sleep(5)  # HAProxy's checks take the node back
        run.stop()
    assert_few_failures(run.result, "kill")


def test_a_node_cut_off_under_load_fails_under_a_tenth_of_a_percent(cluster):
    victim = 2
    with cluster.load(seconds=240, max_requests=500_000) as run:
        time.sleep(5)
        cluster.cut(victim)
        FIGURES["cut_node_down_seconds"] = round(node_down_in_swarm(cluster, via=1), 1)
        cluster.heal(victim)
        FIGURES["cut_restored_seconds"] = round(
            cluster.wait_for_replicas(SERVICE, REPLICAS, via=1), 1
        )
        time.sleep(5)
        run.stop()
    assert_few_failures(run.result, "cut")
    assert "Down" not in cluster.nodes_ready(via=1).values()


def test_a_rolling_update_under_load_fails_no_request(cluster, images):
    _, update, _ = images
    with cluster.load(seconds=400, max_requests=1_000_000) as run:
        time.sleep(3)
        started = time.monotonic()
        cluster.deploy(STACK, update)  # as users roll out: the stack file, a new image
        while True:
            state = cluster.docker(
                1, "service", "inspect", "--format", "{{json .UpdateStatus}}", SERVICE
            ).stdout
            if '"completed"' in state:
                break
            assert time.monotonic() - started < 300, state
            assert "rollback" not in state and "paused" not in state, state
            time.sleep(1)
        FIGURES["update_seconds"] = round(time.monotonic() - started, 1)
        cluster.wait_for_replicas(SERVICE, REPLICAS, via=1)
        time.sleep(3)
        run.stop()
    running = [t["Image"] for t in cluster.tasks(SERVICE, via=1) if t["DesiredState"] == "Running"]
    assert running == [update] * REPLICAS
    FIGURES["update"] = run.result
    line = f"rolling update: {run.result['failed']} of {run.result['requests']} requests failed"
    print(f"\n{line}")
    swarm_module.SUMMARY.append(line)
    assert run.result["requests"] >= 2000
    assert run.result["failed"] == 0, run.result


def test_teardown_leaves_no_host_swarm_process_or_data(cluster):
    workdir = cluster.workdir
    cluster.down()
    assert not swarm_module.hosts_are_up()
    for k in range(1, REPLICAS + 1):
        assert cluster.node_processes(k) == []
    assert not workdir.exists()
