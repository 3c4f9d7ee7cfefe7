"""Bounded load for tests/deploy/test_swarm.py: run inside the client namespace, never outside.

    testhosts exec lsc python -m tests.deploy.swarm_load --url http://127.0.0.1:8080 \
        --workers 6 --seconds 40 --max-requests 100000 [--stop-file PATH]

Each worker POSTs one small /encode after another on a keep-alive connection. The run ends by
itself after --seconds or --max-requests, whichever comes first (or sooner, once the stop
file exists), and prints one JSON object: requests, failed, statuses, the node that served
each (HAProxy's X-Served-By), how many answers carried an X-Request-ID, the requests per
second and the slowest request. It refuses any URL whose host is not loopback: the load
balancer it talks to runs in the same namespace.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--max-requests", type=int, required=True)
    parser.add_argument("--stop-file", type=Path)
    parser.add_argument("--timeout", type=float, default=90.0)
    args = parser.parse_args(argv)
    if urlsplit(args.url).hostname not in LOOPBACK:
        parser.error("the load goes to a load balancer on loopback only")
    if not (0 < args.seconds <= 600 and 0 < args.max_requests <= 1_000_000):
        parser.error("bounded runs only: --seconds up to 600, --max-requests up to 1,000,000")

    deadline = time.monotonic() + args.seconds
    lock = threading.Lock()
    statuses: Counter = Counter()
    served: Counter = Counter()
    with_id = [0]  # answers that carry an X-Request-ID (HAProxy makes one, the replica echoes it)
    slowest = [0.0]
    sent = [0]
    image = np.random.default_rng(0).random((28, 28)).round(3).tolist()
    body = json.dumps({"images": [image]}).encode()

    def go_on() -> bool:
        with lock:
            if sent[0] >= args.max_requests:
                return False
            sent[0] += 1
        if time.monotonic() >= deadline:
            return False
        return args.stop_file is None or not args.stop_file.exists()

    def worker() -> None:
        headers = {"Content-Type": "application/json"}
        with httpx.Client(base_url=args.url, timeout=args.timeout) as http:
            while go_on():
                started = time.monotonic()
                try:
                    response = http.post("/encode", content=body, headers=headers)
                    key, node = response.status_code, response.headers.get("X-Served-By")
                    has_id = "X-Request-ID" in response.headers
                except httpx.HTTPError as error:
                    key, node, has_id = type(error).__name__, None, False
                took = time.monotonic() - started
                with lock:
                    statuses[key] += 1
                    if key == 200 and node:
                        served[node] += 1
                    with_id[0] += has_id
                    slowest[0] = max(slowest[0], took)

    started = time.monotonic()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=args.seconds + args.timeout + 30)
    elapsed = time.monotonic() - started
    total = sum(statuses.values())
    print(
        json.dumps(
            {
                "requests": total,
                "failed": total - statuses[200],
                "statuses": {str(k): v for k, v in statuses.items()},
                "served_by": dict(served),
                "with_request_id": with_id[0],
                "seconds": round(elapsed, 2),
                "per_second": round(total / elapsed, 1) if elapsed else 0,
                "slowest_seconds": round(slowest[0], 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
