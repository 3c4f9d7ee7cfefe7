"""Requests/second of POST /encode with one PNG per request, beside a bare FastAPI endpoint
taking the same upload (same uvicorn settings) and raw ONNX Runtime encoder calls in-process;
plus cold start to ready and resident memory with every model loaded.

    .venv/bin/python bench/encode_rps.py [--duration 10] [--connections 16] [--model mnist-vae]

Uses wrk when it is installed (apt-get install wrk), else an asyncio httpx load generator.
Prints the ratios and writes bench/results/encode_rps-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

from service.examples import SEVEN_PNG  # noqa: E402
from tests.service.conftest import free_port  # noqa: E402

PNG = __import__("base64").b64decode(SEVEN_PNG)
UVICORN = ["--host", "127.0.0.1", "--log-level", "warning", "--no-access-log", "--workers", "1"]


def start(app: list[str], port: int, env: dict[str, str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "uvicorn", *app, "--port", str(port), *UVICORN]
    return subprocess.Popen(command, cwd=ROOT, env=env)


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 120) -> float:
    start_time = time.perf_counter()
    while time.perf_counter() - start_time < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.perf_counter() - start_time
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} not ready in {timeout}s")


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def wrk_rps(url: str, duration: int, connections: int) -> dict:
    with tempfile.NamedTemporaryFile("wb", suffix=".png", delete=False) as png_file:
        png_file.write(PNG)
    script = Path(png_file.name).with_suffix(".lua")
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "image/png"\n'
        f'wrk.body = io.open("{png_file.name}", "rb"):read("*a")\n'
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("ERRORS %d %d\\n", summary.errors.status, summary.requests))\n'
        "end\n"
    )
    output = subprocess.run(
        ["wrk", "-t", "1", "-c", str(connections), "-d", f"{duration}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    errors, requests = map(int, re.search(r"ERRORS (\d+) (\d+)", output).groups())
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latency = re.search(r"Latency\s+(\S+)", output).group(1)
    return {"rps": rps, "requests": requests, "non_2xx": errors, "mean_latency": latency}


async def httpx_rps(url: str, duration: int, connections: int) -> dict:
    limits = httpx.Limits(max_connections=connections)
    headers = {"content-type": "image/png"}
    done = errors = 0
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        deadline = time.perf_counter() + duration

        async def worker() -> None:
            nonlocal done, errors
            while time.perf_counter() < deadline:
                response = await client.post(url, content=PNG, headers=headers)
                done += 1
                errors += response.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return {"rps": done / elapsed, "requests": done, "non_2xx": errors}


def load(url: str, duration: int, connections: int) -> dict:
    httpx.post(url, content=PNG, headers={"content-type": "image/png"}).raise_for_status()
    if shutil.which("wrk"):
        return {"generator": "wrk", **wrk_rps(url, duration, connections)}
    return {"generator": "httpx", **asyncio.run(httpx_rps(url, duration, connections))}


def onnx_calls_per_second(model_dir: Path, duration: float, threads: int) -> float:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(
        str(model_dir / "encoder.onnx"), options, ["CPUExecutionProvider"]
    )
    image = np.random.default_rng(0).random((1, 1, 28, 28), dtype=np.float32)
    calls, deadline = 0, time.perf_counter() + duration
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        session.run(None, {"image": image})
        calls += 1
    return calls / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per load run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--model", default="mnist-vae", help="model /encode uses")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "exported_models")
    parser.add_argument(
        "--intra-op-threads", type=int, default=1, help="the service default; 0: one per core"
    )
    args = parser.parse_args()
    env = {
        "PATH": "/usr/bin:/bin",
        "LATENTSERVE_MODEL_DIR": str(args.model_dir),
        "LATENTSERVE_INTRA_OP_THREADS": str(args.intra_op_threads),
    }
    service_port, bare_port = free_port(), free_port()
    service = start(["--factory", "service.main:create_app"], service_port, env)
    bare = start(["bench.bare_app:app"], bare_port, env)
    try:
        cold_start = wait_ready(f"http://127.0.0.1:{service_port}/readyz", service)
        wait_ready(f"http://127.0.0.1:{bare_port}/docs", bare)
        models = httpx.get(f"http://127.0.0.1:{service_port}/models").json()
        memory = {"service_rss_mib": rss_mib(service.pid), "bare_rss_mib": rss_mib(bare.pid)}
        url = f"http://127.0.0.1:{service_port}/encode?model={args.model}"
        served = load(url, args.duration, args.connections)
        baseline = load(f"http://127.0.0.1:{bare_port}/encode", args.duration, args.connections)
        memory["service_rss_after_load_mib"] = rss_mib(service.pid)
    finally:
        for process in (service, bare):
            process.terminate()
            process.wait(timeout=15)
    raw = onnx_calls_per_second(args.model_dir / args.model, args.duration, args.intra_op_threads)
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "settings": vars(args) | {"model_dir": str(args.model_dir), "uvicorn": UVICORN},
        "models_loaded": [m["name"] for m in models["models"]],
        "cold_start_to_ready_s": round(cold_start, 3),
        **{k: round(v, 1) for k, v in memory.items()},
        "encode_rps": served,
        "bare_fastapi_rps": baseline,
        "onnxruntime_encoder_calls_per_s": round(raw, 1),
        "ratio_encode_to_bare": round(served["rps"] / baseline["rps"], 3),
        "ratio_encode_to_onnxruntime": round(served["rps"] / raw, 4),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"encode_rps-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(
        f"\n/encode {served['rps']:.0f} req/s vs bare FastAPI {baseline['rps']:.0f} req/s "
        f"(ratio {result['ratio_encode_to_bare']}); ONNX Runtime alone {raw:.0f} calls/s; "
        f"cold start {cold_start:.2f}s; RSS {memory['service_rss_mib']:.0f} MiB with "
        f"{len(result['models_loaded'])} models\nwrote {path}"
    )


if __name__ == "__main__":
    main()
