"""Soak: mixed traffic over every endpoint, bad inputs among it, for a set time; the server's
resident memory sampled each second and the answers counted by status class.

    python bench/soak.py --seconds 60                 # what .ci/run runs
    python bench/soak.py --minutes 10 --clients 8     # the run recorded in docs/service.md
    python bench/soak.py --url http://127.0.0.1:8000 --pid 1234   # a server already running

It starts the service on the shipped models (unless --url), sends for the duration from
--clients concurrent keep-alive clients and --grpc-clients more over gRPC (unary calls and
streams, bench/soak_grpc.py), and writes bench/results/soak-<time>.json. It exits 1
on any 5xx or transport error, or when the resident memory at the end exceeds the one at the
end of the warm-up by more than --max-growth (5 %).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import machine, servers, soak_grpc  # noqa: E402
from service.rest.examples import SEVEN_PNG  # noqa: E402

RESULTS = ROOT / "bench" / "results"
# The soak looks for crashes, 5xx and leaks, not for load shedding (tests/service has its own
# tests of that): a queue deadline long enough that a CPU starved by other work sheds nothing.
SOAK_SETTINGS = {"LATENTSERVE_QUEUE_DEADLINE_MS": "30000"}
NPY = "application/x-npy"
PNG = base64.b64decode(SEVEN_PNG)
MODELS_2D = "mnist-vae-2d"


@dataclass(frozen=True)
class Call:
    kind: str  # what the counts are kept under
    method: str
    path: str
    kwargs: dict


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def good_calls(rng: random.Random, has_score: bool) -> list[Call]:
    png_body = {"content": PNG, "headers": {"content-type": "image/png"}}
    latents = [[rng.gauss(0, 1), rng.gauss(0, 1)] for _ in range(rng.randint(1, 8))]
    calls = [
        Call("encode", "POST", "/encode?model=mnist-vae", png_body),
        Call("encode", "POST", "/encode?model=mnist-ae", {"files": {"file": ("d.png", PNG)}}),
        Call(
            "encode",
            "POST",
            "/encode?model=mnist-ae",
            {
                "content": npy(np.zeros((16, 28, 28), np.uint8)),
                "headers": {"content-type": NPY, "accept": NPY},
            },
        ),
        Call("decode", "POST", f"/decode?model={MODELS_2D}", {"json": {"latents": latents}}),
        Call(
            "decode",
            "POST",
            "/decode?model=mnist-cvae",
            {"json": {"latents": [[0.0] * 4], "labels": [rng.randrange(10)]}},
        ),
        Call(
            "sample",
            "GET",
            f"/sample?model=mnist-vae&n={rng.randint(1, 16)}&seed={rng.randrange(2**31)}",
            {"headers": {"accept": "image/png"}},
        ),
        Call("sample", "GET", "/sample?model=mnist-ae&n=4&output=array", {}),
        Call(
            "interpolate",
            "POST",
            f"/interpolate?model={MODELS_2D}",
            {
                "json": {
                    "start": {"latent": latents[0]},
                    "end": {"latent": [-v for v in latents[0]]},
                    "steps": rng.randint(2, 12),
                    "method": rng.choice(["linear", "spherical"]),
                }
            },
        ),
        Call("reconstruct", "POST", "/reconstruct?model=mnist-dae", png_body),
        Call("models", "GET", "/models", {}),
        Call("v2", "POST", "/v2/models/mnist-vae-2d-decoder/infer", {"json": v2_request(latents)}),
        Call("v2", "POST", "/v2/models/mnist-ae-encoder/infer", v2_binary_image()),
    ]
    if has_score:
        calls.append(Call("score", "POST", "/score?model=mnist-vae", png_body))
    return calls


def v2_request(latents: list[list[float]]) -> dict:
    tensor = {"name": "latent", "shape": [len(latents), 2], "datatype": "FP32", "data": latents}
    return {"inputs": [tensor]}


def v2_binary_image() -> dict:
    """One image as V2 binary tensor data, the outputs asked for as binary data too."""
    image = np.zeros((1, 1, 28, 28), "<f4")
    tensor = {"name": "image", "shape": [1, 1, 28, 28], "datatype": "FP32"}
    header = json.dumps(
        {
            "inputs": [{**tensor, "parameters": {"binary_data_size": image.nbytes}}],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    return {
        "content": header + image.tobytes(),
        "headers": {"inference-header-content-length": str(len(header))},
    }


def bad_calls() -> list[Call]:
    return [
        Call(
            "bad",
            "POST",
            "/encode?model=mnist-vae",
            {"content": PNG[:40], "headers": {"content-type": "image/png"}},
        ),
        Call("bad", "GET", "/sample?model=no-such-model", {}),
        Call("bad", "GET", "/sample?n=100000", {}),
        Call("bad", "POST", f"/decode?model={MODELS_2D}", {"json": {"latents": [[0.0] * 5]}}),
        Call(
            "bad",
            "POST",
            "/decode",
            {
                "content": b'{"latents": [[NaN, 0]]}',
                "headers": {"content-type": "application/json"},
            },
        ),
        Call(
            "bad",
            "POST",
            "/encode",
            {"content": b"hello", "headers": {"content-type": "text/plain"}},
        ),
        Call("bad", "POST", "/interpolate", {"json": {"start": {}, "end": {}}}),
        Call("bad", "POST", "/reconstruct", {"json": {"images": ["not base64!"]}}),
        Call("bad", "POST", "/v2/models/mnist-vae-2d-decoder/infer", {"json": v2_request([[0.0]])}),
        Call(
            "bad",
            "POST",
            "/v2/models/mnist-ae-encoder/infer",
            {**v2_binary_image(), "headers": {"inference-header-content-length": "99999"}},
        ),
    ]


class Tally:
    def __init__(self) -> None:
        self.classes: Counter[str] = Counter()
        self.by_kind: Counter[str] = Counter()
        self.server_errors: list[str] = []

    def record(self, call: Call, status: int | None, detail: str = "") -> None:
        label = "transport_error" if status is None else f"{status // 100}xx"
        self._count(call.kind, label, lambda: f"{call.method} {call.path}: {status} {detail[:200]}")

    def record_class(self, kind: str, label: str, detail: str) -> None:
        """A gRPC answer, by the HTTP status class it would be (bench/soak_grpc.py)."""
        self._count(kind, label, lambda: f"{kind}: {detail[:200]}")

    def _count(self, kind: str, label: str, error: Callable[[], str]) -> None:
        self.classes[label] += 1
        self.by_kind[f"{kind} {label}"] += 1
        if label in ("5xx", "transport_error") and len(self.server_errors) < 20:
            self.server_errors.append(error())


async def client(url: str, seed: int, until: float, tally: Tally, has_score: bool) -> None:
    rng = random.Random(seed)
    bad = bad_calls()
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        while time.monotonic() < until:
            call = (
                rng.choice(bad) if rng.random() < 0.15 else rng.choice(good_calls(rng, has_score))
            )
            try:
                response = await http.request(call.method, call.path, **call.kwargs)
            except httpx.HTTPError as error:
                tally.record(call, None, repr(error))
                continue
            tally.record(call, response.status_code, response.text)


async def sample_rss(rss: Callable[[], float], until: float, series: list) -> None:
    start = time.monotonic()
    while time.monotonic() < until:
        series.append((round(time.monotonic() - start, 1), rss()))
        await asyncio.sleep(1.0)
    series.append((round(time.monotonic() - start, 1), rss()))


async def soak(url: str, rss: Callable[[], float], args: argparse.Namespace) -> dict:
    has_score = "/score" in httpx.get(f"{url}/openapi.json", timeout=10).json()["paths"]
    tally, series = Tally(), []
    started = time.monotonic()
    until = started + args.seconds
    grpc_clients = range(args.grpc_clients) if args.grpc else range(0)
    await asyncio.gather(
        sample_rss(rss, until, series),
        *(client(url, seed, until, tally, has_score) for seed in range(args.clients)),
        *(soak_grpc.client(args.grpc, seed, until, tally.record_class) for seed in grpc_clients),
    )
    elapsed = time.monotonic() - started
    warm = [mib for t, mib in series if t <= args.warmup]
    after = warm[-1] if warm else series[0][1]
    end = series[-1][1]
    growth = (end - after) / after * 100
    failures = tally.classes["5xx"] + tally.classes["transport_error"]
    return {
        "requests": sum(tally.classes.values()),
        "requests_per_second": round(sum(tally.classes.values()) / elapsed, 1),
        "status_classes": dict(sorted(tally.classes.items())),
        "by_endpoint": dict(sorted(tally.by_kind.items())),
        "score_included": has_score,
        "server_errors": tally.server_errors,
        "rss_mib": {
            "start": series[0][1],
            "after_warmup": after,
            "end": end,
            "max": max(mib for _, mib in series),
            "growth_after_warmup_percent": round(growth, 2),
        },
        "rss_series": series,
        "passed": failures == 0 and growth <= args.max_growth,
    }


def proc_rss(pid: int) -> Callable[[], float]:
    def read() -> float:
        status = Path(f"/proc/{pid}/status").read_text()
        kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))
        return round(int(kib) / 1024, 1)

    return read


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float, help="how long to send")
    length.add_argument("--seconds", type=float, help="how long to send (default 60)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (8)")
    parser.add_argument(
        "--warmup", type=float, help="seconds before the memory baseline (default: a third, ≤ 60)"
    )
    parser.add_argument("--max-growth", type=float, default=5.0, help="RSS growth limit, %%")
    parser.add_argument("--grpc-clients", type=int, default=2, help="more clients, over gRPC (2)")
    parser.add_argument("--url", help="an already running server (else one is started)")
    parser.add_argument("--grpc", help="with --url: its gRPC address (host:port), if any")
    parser.add_argument("--pid", type=int, help="with --url: the server's process, for its RSS")
    parser.add_argument("--output", type=Path, help="the JSON file (bench/results/soak-*.json)")
    args = parser.parse_args(argv)
    args.seconds = args.minutes * 60 if args.minutes else (args.seconds or 60.0)
    args.warmup = args.warmup if args.warmup is not None else min(60.0, args.seconds / 3)
    if args.url and not args.pid:
        parser.error("--url needs --pid, to sample the server's memory")

    described = machine.describe()  # the load average as the run starts
    server = None
    if args.url:
        url, pid = args.url, args.pid
    else:
        log = Path(tempfile.mkdtemp(prefix="soak-")) / "server.log"
        grpc_port = servers.free_port()
        server = servers.latentserve(log, SOAK_SETTINGS | {"LATENTSERVE_GRPC_PORT": str(grpc_port)})
        server.wait_ready()
        url, pid, args.grpc = server.url, server.pid, f"127.0.0.1:{grpc_port}"
    try:
        result = asyncio.run(soak(url, proc_rss(pid), args))
    finally:
        if server is not None:
            server.stop()
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": machine.commit(ROOT),
        "machine": described,
        "load_average_end": machine.load_average(),
        "settings": {
            "seconds": args.seconds,
            "clients": args.clients,
            "grpc_clients": args.grpc_clients if args.grpc else 0,
            "warmup": args.warmup,
        },
        **result,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    output = args.output or RESULTS / f"soak-{stamp}.json"
    output.write_text(json.dumps(report, indent=2) + "\n")
    rss = result["rss_mib"]
    print(
        f"soak {args.seconds:.0f} s, {args.clients} HTTP and {report['settings']['grpc_clients']} "
        f"gRPC clients: {result['requests']} requests "
        f"({result['requests_per_second']}/s), {result['status_classes']}; RSS "
        f"{rss['start']} -> {rss['after_warmup']} (after warm-up) -> {rss['end']} MiB "
        f"({rss['growth_after_warmup_percent']:+.2f} %); wrote {output}"
    )
    for line in result["server_errors"]:
        print(f"  {line}")
    if not result["passed"]:
        print("soak FAILED: a 5xx or transport error, or memory growth over the limit")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
