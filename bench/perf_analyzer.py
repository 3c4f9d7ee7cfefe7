"""Triton's perf_analyzer against latentserve: the benchmark of record for the Open Inference
Protocol, over HTTP and gRPC, binary and JSON tensors, at several concurrencies.

perf_analyzer 2.60 runs in a podman container (bench/perf_analyzer/image.sh builds it from a
Debian trixie base made with debootstrap: the PyPI wheel needs glibc >= 2.38, this machine's
Debian 12 has 2.36) with `--network host`, against one latentserve process on loopback (HTTP on
a free port, gRPC on another: unary ModelInfer, and ModelStreamInfer as `grpc-stream`). Its
inputs are real data the benchmark writes: MNIST test digits for the encoders (`--input-data`
JSON; `random` would fill FP32 tensors with NaN and Inf bit patterns, which the encoders rightly
refuse) and mnist-ae's / mnist-vae's class means for the decoders.

    .venv/bin/python bench/perf_analyzer.py                       # every case, ~2 s each
    .venv/bin/python bench/perf_analyzer.py --models mnist-ae-encoder --concurrency 32

Prints one line per case; writes bench/results/perf_analyzer-<time>.json (perf_analyzer's CSV
columns per case: throughput, latency percentiles, and the server-side split it reads from
/v2/models/<m>/stats; and the server's own counts at the end, `server_stats`).
tests/bench/test_perf_analyzer.py runs it briefly in the suite.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # servers.py imports deploy.ports
import servers  # noqa: E402

ROOT = servers.ROOT
RESULTS = ROOT / "bench" / "results"
MODELS = ROOT / "exported_models"
IMAGE = "localhost/perf-analyzer:2.60"
# podman as the deployment tests run it (ulimits this kernel lets a container set, runc).
PODMAN_ENV = {**os.environ, "CONTAINERS_CONF": str(ROOT / "deploy" / "podman" / "containers.conf")}
MNIST_CANDIDATES = [
    ROOT.parent / "shared" / "datasets" / "mnist" / "t10k-images-idx3-ubyte.gz",
    Path("/work/shared/datasets/mnist/t10k-images-idx3-ubyte.gz"),
]
DEFAULT_MODELS = "mnist-ae-encoder,mnist-ae-decoder,mnist-vae-encoder,mnist-vae-decoder"


def read_idx(path: Path) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def data_file(model: str, folder: Path, count: int) -> Path:
    """perf_analyzer's --input-data JSON: one entry per request, real values."""
    name, _, graph = model.rpartition("-")
    if graph == "encoder":
        path = next((p for p in MNIST_CANDIDATES if p.exists()), None)
        if path is None:
            raise SystemExit(f"no MNIST test digits at {MNIST_CANDIDATES[0]}")
        digits = read_idx(path)[9000 : 9000 + count].astype(np.float32) / 255.0
        entries = [
            {"image": {"content": digit.reshape(-1).tolist(), "shape": [1, 28, 28]}}
            for digit in digits
        ]
    else:
        reference = json.loads((MODELS / name / "reference.json").read_text())
        means = reference["class_means"]
        entries = [
            {"latent": {"content": means[i % len(means)], "shape": [len(means[0])]}}
            for i in range(count)
        ]
    target = folder / f"{model}.json"
    target.write_text(json.dumps({"data": entries}))
    return target


def run_case(
    server: servers.Server, grpc_port: int, model: str, protocol: str, tensors: str,
    concurrency: int, data: Path, workdir: Path, args: argparse.Namespace,
) -> dict:  # fmt: skip
    url = server.url.removeprefix("http://") if protocol == "http" else f"127.0.0.1:{grpc_port}"
    csv_name = f"{model}-{protocol}-{tensors}-c{concurrency}.csv"
    command = [
        "podman", "run", "--rm", "--network", "host", "-v", f"{workdir}:/work:Z", args.image,
        "-m", model, "-u", url, "-i", protocol.removesuffix("-stream"),
        "--concurrency-range", str(concurrency),
        "--input-data", f"/work/{data.name}",
        "--measurement-interval", str(args.interval_ms),
        "--stability-percentage", str(args.stability),
        "--max-trials", str(args.max_trials),
        "-f", f"/work/{csv_name}",
    ]  # fmt: skip
    if protocol == "grpc-stream":  # ModelStreamInfer: one stream per concurrency slot
        command.append("--streaming")
    if tensors == "json":
        command += ["--input-tensor-format", "json", "--output-tensor-format", "json"]
    started = time.monotonic()
    cpu_before, busy_before = cpu_seconds(server.pid), busy_seconds()
    count_before = served_counts(server, [model])[model]["inference_count"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=PODMAN_ENV)
    cpu, busy = cpu_seconds(server.pid) - cpu_before, busy_seconds() - busy_before
    count = served_counts(server, [model])[model]["inference_count"] - count_before
    case = {
        "model": model,
        "protocol": protocol,
        "tensors": tensors,
        "concurrency": concurrency,
        "seconds": round(time.monotonic() - started, 1),
        "exit": result.returncode,
        # the server process's CPU time (all its threads) per inference over the whole case:
        # what each way in costs the server, whatever the client takes of the shared cores
        "server_cpu_us_per_inference": round(cpu / count * 1e6, 1) if count else None,
        # everything else the machine's cores did meanwhile: perf_analyzer, podman, the rest
        "other_cpu_us_per_inference": round((busy - cpu) / count * 1e6, 1) if count else None,
    }
    if result.returncode == 0 and not (workdir / csv_name).exists():
        case["exit"] = -1  # perf_analyzer exits 0 when no window was stable enough
    if case["exit"] != 0:
        case["error"] = (result.stdout + result.stderr)[-2000:]
        return case
    with (workdir / csv_name).open() as handle:
        row = next(csv.DictReader(handle))
    case.update({key: _number(value) for key, value in row.items()})
    return case


def plan(args: argparse.Namespace) -> list[tuple[str, str, str, int]]:
    """Every (model, protocol, tensors, concurrency) case asked for, in order."""
    return [
        (model, protocol, tensors, concurrency)
        for model in args.models.split(",")
        for protocol in args.protocols.split(",")
        for tensors in args.tensors.split(",")
        if not (protocol.startswith("grpc") and tensors == "json")  # gRPC tensors are protobuf
        for concurrency in map(int, args.concurrency.split(","))
    ]


def summary(case: dict) -> str:
    head = f"{case['model']:18} {case['protocol']:11} {case['tensors']:6} c{case['concurrency']:<3}"
    if case["exit"]:
        return f"{head} FAILED: {case['error'][-300:]}"
    return (
        f"{head} {case['Inferences/Second']:6.0f} infer/s  p50 {case['p50 latency'] / 1000:6.2f} "
        f"ms  p99 {case['p99 latency'] / 1000:6.2f} ms  CPU per inference: server "
        f"{case['server_cpu_us_per_inference']:4.0f} us, the rest "
        f"{case['other_cpu_us_per_inference']:4.0f} us"
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU time the whole machine has spent busy so far, all cores (/proc/stat)."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle, iowait


def served_counts(server: servers.Server, models: list[str]) -> dict[str, dict]:
    """What the server itself counted per model over the whole run (its /v2 statistics)."""
    stats = httpx.get(f"{server.url}/v2/models/stats", timeout=10).json()["model_stats"]
    return {
        entry["name"]: {
            "inference_count": entry["inference_count"],
            "execution_count": entry["execution_count"],
            "success_count": entry["inference_stats"]["success"]["count"],
            "fail_count": entry["inference_stats"]["fail"]["count"],
        }
        for entry in stats
        if entry["name"] in models
    }


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated V2 models")
    parser.add_argument("--protocols", default="http,grpc,grpc-stream", help="grpc-stream: "
                        "gRPC's ModelStreamInfer (perf_analyzer --streaming)")  # fmt: skip
    parser.add_argument("--tensors", default="binary,json", help="binary,json (JSON: HTTP only)")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--interval-ms", type=int, default=2000, help="per measurement window")
    # perf_analyzer's default 10 % rarely holds on a small shared machine: 500 takes the
    # third window whatever it shows (the JSON keeps the settings).
    parser.add_argument("--stability", type=int, default=500, help="perf_analyzer's, percent")
    parser.add_argument("--max-trials", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1, help="times through every case, "
                        "interleaved, since this machine's speed drifts by the minute")  # fmt: skip
    parser.add_argument("--requests", type=int, default=256, help="distinct inputs in the data")
    parser.add_argument("--image", default=IMAGE)
    parser.add_argument("--out", type=Path, help="results file (default: bench/results/...)")
    args = parser.parse_args(argv)
    if subprocess.run(["podman", "image", "exists", args.image]).returncode != 0:
        subprocess.run([str(ROOT / "bench" / "perf_analyzer" / "image.sh"), args.image], check=True)
    workdir = Path(
        subprocess.check_output(
            ["mktemp", "-d", "/var/tmp/perf-analyzer.XXXXXX"], text=True
        ).strip()
    )
    models = args.models.split(",")
    data = {model: data_file(model, workdir, args.requests) for model in models}
    grpc_port = servers.free_port()
    server = servers.latentserve(workdir / "server.log", {"LATENTSERVE_GRPC_PORT": str(grpc_port)})
    cases = []
    try:
        server.wait_ready()
        for round_ in range(1, args.rounds + 1):
            for model, protocol, tensors, concurrency in plan(args):
                case = run_case(
                    server, grpc_port, model, protocol, tensors, concurrency, data[model],
                    workdir, args,
                ) | {"round": round_}  # fmt: skip
                cases.append(case)
                print(summary(case))
        server_stats = served_counts(server, models)
    finally:
        server.stop()
    RESULTS.mkdir(exist_ok=True)
    out = args.out or RESULTS / f"perf_analyzer-{time.strftime('%Y%m%d-%H%M%S')}.json"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    out.write_text(json.dumps({"tool": "perf_analyzer 2.60.0", "commit": commit,
                               "settings": vars(args) | {"out": str(out), "image": args.image},
                               "cases": cases, "server_stats": server_stats},
                              indent=1, default=str))  # fmt: skip
    print(f"wrote {out}")
    failed = any(case["exit"] for case in cases)
    if failed:
        print(f"inputs, CSVs and the server's log kept in {workdir}")
    else:
        shutil.rmtree(workdir)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
