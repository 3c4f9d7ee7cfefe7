"""CPU time per request of the Open Inference Protocol beside the domain API, in-process.

    .venv/bin/python bench/v2_cpu.py [--rounds 7] [--requests 500]

Calls the ASGI app directly (no client, no sockets), one request at a time, and reports the
process CPU time per request, best round of `--rounds`: one 28x28 image through mnist-ae's
encoder as `/encode` with an .npy body, as V2 binary tensor data and as V2 JSON. CPU time, and
the best round, because they move far less than wall time on a shared machine; the figure
still includes the whole app (middlewares, routing, validation, the graph) but no HTTP parsing.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import time

import numpy as np

from service.app import create_app
from service.core.settings import Settings

Case = tuple[str, bytes, bytes, list[tuple[bytes, bytes]]]  # path, query, body, headers


def cases() -> dict[str, Case]:
    image = np.random.default_rng(0).random((1, 1, 28, 28), dtype=np.float32)
    buffer = io.BytesIO()
    np.save(buffer, image)
    tensor = {"name": "image", "shape": [1, 1, 28, 28], "datatype": "FP32"}
    binary = {"binary_data_size": image.nbytes}
    header = json.dumps(
        {"inputs": [{**tensor, "parameters": binary}], "parameters": {"binary_data_output": True}}
    ).encode()
    as_json = json.dumps({"inputs": [{**tensor, "data": image.ravel().tolist()}]}).encode()
    infer = "/v2/models/mnist-ae-encoder/infer"
    return {
        "/encode .npy": (
            "/encode",
            b"model=mnist-ae",
            buffer.getvalue(),
            [(b"content-type", b"application/x-npy")],
        ),
        "v2 binary": (
            infer,
            b"",
            header + image.tobytes(),
            [(b"inference-header-content-length", str(len(header)).encode())],
        ),
        "v2 json": (infer, b"", as_json, [(b"content-type", b"application/json")]),
    }


async def call(app, case: Case) -> int:
    path, query, body, headers = case
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = []

    async def receive() -> dict:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    return status[0]


async def measure(rounds: int, requests: int) -> dict[str, float]:
    app = create_app(Settings(grpc_port=0))  # HTTP in process: no listener on any port
    best: dict[str, float] = {}
    async with app.router.lifespan_context(app):
        while app.state.latentserve.registry is None:
            await asyncio.sleep(0.05)
        for _ in range(rounds):
            for name, case in cases().items():
                status = await call(app, case)
                if status != 200:
                    raise SystemExit(f"{name} answered {status}")
                start = time.process_time()
                for _ in range(requests):
                    await call(app, case)
                seconds = (time.process_time() - start) / requests
                best[name] = min(best.get(name, seconds), seconds)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    for name, seconds in asyncio.run(measure(args.rounds, args.requests)).items():
        print(f"{name:14s} {seconds * 1e6:6.0f} us CPU per request")


if __name__ == "__main__":
    main()
