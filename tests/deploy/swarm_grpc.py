"""gRPC through HAProxy for tests/deploy/test_swarm.py: run inside the client namespace.

    testhosts exec lsc python -m tests.deploy.swarm_grpc --http 127.0.0.1:8080 \
        --grpc 127.0.0.1:8081 --checks 12

One bounded round of calls, then one JSON object on stdout: grpc.health.v1 Checks on one
channel and the node that answered each (HAProxy's x-served-by), tritonclient.grpc's health,
metadata and `infer` (its largest difference from HTTP /v2's answer to the same batch), and a
ModelStreamInfer round trip. Refuses any target that is not loopback, as swarm_load does.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
from collections import Counter

import grpc
import numpy as np
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from grpc_health.v1 import health_pb2, health_pb2_grpc

LOOPBACK = {"127.0.0.1", "localhost"}
MODEL = "mnist-ae-encoder"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", required=True, help="host:port of HAProxy's HTTP frontend")
    parser.add_argument("--grpc", required=True, help="host:port of HAProxy's gRPC frontend")
    parser.add_argument("--checks", type=int, default=12)
    args = parser.parse_args(argv)
    if {args.http.rsplit(":", 1)[0], args.grpc.rsplit(":", 1)[0]} - LOOPBACK:
        parser.error("the calls go to a load balancer on loopback only")
    if not 0 < args.checks <= 1000:
        parser.error("bounded runs only: --checks up to 1000")

    batch = np.random.default_rng(7).random((2, 1, 28, 28), dtype=np.float32)

    def image(module):
        given = module.InferInput("image", list(batch.shape), "FP32")
        given.set_data_from_numpy(batch)
        return given

    http = triton_http.InferenceServerClient(args.http, network_timeout=30)
    expected = http.infer(MODEL, [image(triton_http)]).as_numpy("latent")
    http.close()

    served: Counter = Counter()
    statuses: Counter = Counter()
    with grpc.insecure_channel(args.grpc) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(args.checks):
            answer, call = health.Check.with_call(health_pb2.HealthCheckRequest(), timeout=10)
            statuses[health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)] += 1
            served[dict(call.initial_metadata()).get("x-served-by", "?")] += 1

    client = triton_grpc.InferenceServerClient(args.grpc)
    ready = client.is_server_live() and client.is_server_ready() and client.is_model_ready(MODEL)
    inputs = [i.name for i in client.get_model_metadata(MODEL).inputs]
    differences = [
        float(np.abs(client.infer(MODEL, [image(triton_grpc)]).as_numpy("latent") - expected).max())
        for _ in range(3)
    ]
    answers: queue.Queue = queue.Queue()
    client.start_stream(callback=lambda result, error: answers.put((result, error)))
    for k in range(3):
        client.async_stream_infer(MODEL, [image(triton_grpc)], request_id=str(k))
    streamed, stream_errors = {}, []
    for _ in range(3):
        result, error = answers.get(timeout=30)
        if error is not None:
            stream_errors.append(str(error))
        else:
            streamed[result.get_response().id] = float(
                np.abs(result.as_numpy("latent") - expected).max()
            )
    client.stop_stream()
    client.close()
    print(
        json.dumps(
            {
                "health": dict(statuses),
                "served_by": dict(served),
                "ready": ready,
                "inputs": inputs,
                "infer_max_difference": max(differences),
                "stream": streamed,
                "stream_errors": stream_errors,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
