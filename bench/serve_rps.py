"""latentserve beside its peers, in one run: requests/s and latency under the same wrk load.

    .venv/bin/python bench/serve_rps.py [--duration 10] [--connections 32,256] [--only ...]

Targets, each started alone as its own uvicorn process (one worker, loopback, a free port),
warmed up, loaded with `wrk -t1` at each connection count, then stopped:

  bare         a FastAPI endpoint that reads the body and returns constant JSON (the ceiling)
  peer         bench/tutorial_peer.py: FastAPI + eager PyTorch, the way tutorials do it;
               /encode, /decode, /reconstruct with mnist-ae's trained weights. Needs the
               `train` extra (torch, torchvision); skipped with a message without it.
  latentserve  `python -m service` on exported_models/ with its defaults (metrics, validation
               and limits on): /encode mnist-ae and mnist-vae, /decode and /reconstruct mnist-ae
  npy          /encode with one big application/x-npy batch per request (sequential), against
               raw ONNX Runtime on the same graph at the service's thread settings

Every /encode and /reconstruct request carries one real 28x28 MNIST digit as a raw image/png
body; /decode one latent (mnist-ae's class mean of 7) as JSON. Needs wrk (apt-get install wrk).
Prints a table and the ratios; writes bench/results/serve_rps-<time>.json.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import importlib.util
import io
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import median

import httpx
import numpy as np
import onnxruntime as ort
from PIL import Image
from pydantic import TypeAdapter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import machine, pyspy, servers, wrk  # noqa: E402
from service.core.settings import Settings  # noqa: E402
from service.rest.examples import SEVEN_PNG  # noqa: E402

RESULTS = ROOT / "bench" / "results"
MODELS = ROOT / "exported_models"
MNIST_IMAGES = ROOT.parent / "shared" / "datasets" / "mnist" / "t10k-images-idx3-ubyte.gz"
TARGETS = ("bare", "peer", "latentserve", "npy")
NPY_MODELS = ("mnist-ae", "mnist-vae")
NPY = "application/x-npy"


@dataclass(frozen=True)
class Route:
    name: str
    path: str
    body: str  # "png" or "latents"


ROUTES = {
    "bare": [Route("bare /encode", "/encode", "png")],
    "peer": [
        Route("peer /encode", "/encode", "png"),
        Route("peer /decode", "/decode", "latents"),
        Route("peer /reconstruct", "/reconstruct", "png"),
    ],
    "latentserve": [
        Route("latentserve /encode mnist-ae", "/encode?model=mnist-ae", "png"),
        Route("latentserve /encode mnist-vae", "/encode?model=mnist-vae", "png"),
        Route("latentserve /decode mnist-ae", "/decode?model=mnist-ae", "latents"),
        Route("latentserve /reconstruct mnist-ae", "/reconstruct?model=mnist-ae", "png"),
    ],
}

# (label, numerator, denominator): req/s of one route over another at the same connections.
RATIOS = [
    ("/encode mnist-ae : bare", "latentserve /encode mnist-ae", "bare /encode"),
    ("/encode mnist-ae : peer /encode", "latentserve /encode mnist-ae", "peer /encode"),
    ("/encode mnist-vae : peer /encode", "latentserve /encode mnist-vae", "peer /encode"),
    (
        "/encode mnist-vae : /encode mnist-ae",
        "latentserve /encode mnist-vae",
        "latentserve /encode mnist-ae",
    ),
    ("/decode : peer /decode", "latentserve /decode mnist-ae", "peer /decode"),
    ("/reconstruct : peer /reconstruct", "latentserve /reconstruct mnist-ae", "peer /reconstruct"),
    ("peer /encode : bare", "peer /encode", "bare /encode"),
]


def write_bodies(folder: Path) -> dict[str, tuple[Path, str]]:
    """The request bodies as files for wrk: a PNG digit and one latent vector as JSON."""
    png = folder / "digit.png"
    png.write_bytes(base64.b64decode(SEVEN_PNG))  # MNIST test image 9000, a 7
    reference = json.loads((MODELS / "mnist-ae" / "reference.json").read_text())
    latents = folder / "latents.json"
    latents.write_text(json.dumps({"latents": [reference["class_means"][7]]}))
    return {"png": (png, "image/png"), "latents": (latents, "application/json")}


def first_answer(url: str, body: tuple[Path, str]) -> str | None:
    """None when one request answers 200, else what went wrong (the run is then skipped)."""
    path, content_type = body
    response = httpx.post(
        url, content=path.read_bytes(), headers={"content-type": content_type}, timeout=60
    )
    return None if response.status_code == 200 else f"{response.status_code}: {response.text}"


def measure_routes(
    server: servers.Server, routes: list[Route], bodies: dict, args: argparse.Namespace
) -> list[dict]:
    runs = []
    for route in routes:
        url, body = server.url + route.path, bodies[route.body]
        failure = first_answer(url, body)
        if failure:
            runs.append({"target": route.name, "failed": failure[:500]})
            continue
        if args.warmup:
            wrk.load(url, *body, args.connections[0], args.warmup, args.timeout)
        for connections in args.connections:
            time.sleep(args.pause)
            profile = start_profile(server, route, connections, args)
            result = wrk.load(url, *body, connections, args.duration, args.timeout)
            if profile:
                profile.wait()
            runs.append({"target": route.name, **result, "load_average": machine.load_average()})
            print(format_run(runs[-1]), flush=True)
    return runs


def start_profile(
    server: servers.Server, route: Route, connections: int, args: argparse.Namespace
) -> subprocess.Popen | None:
    """py-spy on latentserve during its runs at the first connection count, with --py-spy."""
    first = connections == args.connections[0]
    if not (args.py_spy and first and route.name.startswith("latentserve ")):
        return None
    name = route.name.split(" ", 1)[1].strip("/").replace(" ", "-")
    output = args.py_spy / f"{name}-c{connections}.txt"
    return pyspy.record(server.pid, args.duration, output)


def start_target(target: str, log: Path, args: argparse.Namespace) -> servers.Server:
    if target == "latentserve":
        return servers.latentserve(log, latentserve_settings(args))
    app = {"bare": "bench.bare_app:app", "peer": "bench.tutorial_peer:app"}[target]
    threads = {"PEER_TORCH_THREADS": str(args.peer_threads)} if args.peer_threads else {}
    return servers.uvicorn_app(app, log, servers.clean_environment(**threads))


def latentserve_settings(args: argparse.Namespace) -> dict[str, str]:
    settings = {"LATENTSERVE_WORKERS": str(args.workers)}
    for item in args.env:
        key, _, value = item.partition("=")
        key = key if key.startswith("LATENTSERVE_") else f"LATENTSERVE_{key}"
        settings[key.upper()] = value
    return settings


def check_workers(server: servers.Server, workers: int) -> None:
    """With several workers uvicorn forks them as children; none means the setting was ignored."""
    if workers > 1 and len(server.children()) < workers:
        raise RuntimeError(
            f"latentserve runs {len(server.children())} child processes for LATENTSERVE_WORKERS="
            f"{workers}: this service does not read the workers setting"
        )


def run_target(target: str, bodies: dict, workdir: Path, args: argparse.Namespace) -> dict:
    server = start_target(target, workdir / f"{target}.log", args)
    try:
        ready_s = server.wait_ready()
        if target == "latentserve":
            check_workers(server, args.workers)
        runs = measure_routes(server, ROUTES[target], bodies, args)
        rss_mib = server.rss_mib()
    except Exception:
        print(f"--- {target} log ---\n{server.log_tail()}", file=sys.stderr)
        raise
    finally:
        server.stop()
    return {"ready_s": round(ready_s, 2), "rss_mib_after_load": rss_mib, "runs": runs}


# --- big .npy batches against raw ONNX Runtime --------------------------------------------


def digits(count: int) -> tuple[np.ndarray, str]:
    """uint8 [N,1,28,28]: MNIST test digits when the shared files are here."""
    if MNIST_IMAGES.exists():
        with gzip.open(MNIST_IMAGES, "rb") as f:
            f.read(16)
            pixels = np.frombuffer(f.read(min(count, 10000) * 784), np.uint8).reshape(-1, 28, 28)
        source = f"MNIST t10k images 0-{len(pixels) - 1}"
    else:
        pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(SEVEN_PNG))))[None]
        source = "MNIST test image 9000 (a 7), repeated"
    pixels = np.resize(pixels, (count, 28, 28))  # repeats when fewer than count
    return pixels[:, None], source


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def served_images_per_s(url: str, model: str, body: bytes, count: int, seconds: float) -> dict:
    """Sequential POST /encode requests with the whole batch as .npy, answered as .npy."""
    headers = {"content-type": NPY, "accept": NPY}
    endpoint = f"{url}/encode?model={model}"
    statuses: dict[str, int] = {}
    with httpx.Client(timeout=120) as client:
        response = client.post(endpoint, content=body, headers=headers)  # also the warm-up
        if response.status_code != 200:
            return {"failed": f"{response.status_code}: {response.text[:500]}"}
        shape = list(np.load(io.BytesIO(response.content)).shape)
        started, elapsed, ok = time.perf_counter(), 0.0, 0
        while elapsed < seconds:
            status = client.post(endpoint, content=body, headers=headers).status_code
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            ok += status == 200
            elapsed = time.perf_counter() - started
    requests = sum(statuses.values())
    return {
        "requests": requests,
        "statuses": statuses,
        "latents_shape": shape,
        "ms_per_request": round(1000 * elapsed / requests, 2),
        "images_per_s": round(ok * count / elapsed, 1),
    }


def onnxruntime_images_per_s(model: str, batch: np.ndarray, seconds: float, threads: dict) -> dict:
    """The encoder graph in-process, batch after batch, with the service's thread settings."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads["intra_op_threads"]
    options.inter_op_num_threads = threads["inter_op_threads"]
    path = MODELS / model / "encoder.onnx"
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    session.run(None, {"image": batch})
    started, elapsed, calls = time.perf_counter(), 0.0, 0
    while elapsed < seconds:
        session.run(None, {"image": batch})
        calls += 1
        elapsed = time.perf_counter() - started
    return {"calls": calls, "images_per_s": round(calls * len(batch) / elapsed, 1)}


SERVICE_SETTINGS = (
    "workers",
    "intra_op_threads",
    "inter_op_threads",
    "max_images",
    "batch_max_size",
    "batch_max_wait_ms",
    "queue_max_requests",
    "queue_deadline_ms",
)


def service_settings(env: dict[str, str]) -> dict[str, str | int | float | None]:
    """The settings that shape these figures, as latentserve reads them (its defaults unless
    overridden); None where this service has no such setting."""
    values = {}
    for name in SERVICE_SETTINGS:
        field = Settings.model_fields.get(name)
        given = env.get(f"LATENTSERVE_{name.upper()}")
        if field is None:
            values[name] = given
        elif given is None:
            values[name] = field.default
        else:
            values[name] = TypeAdapter(field.annotation).validate_python(given)
    return values


def run_npy(workdir: Path, args: argparse.Namespace) -> dict:
    pixels, source = digits(args.npy_images)
    batch = pixels / np.float32(255)  # the encoders' input, float32 in [0, 1]
    settings = latentserve_settings(args)
    server = servers.latentserve(workdir / "npy.log", settings)
    try:
        server.wait_ready()
        body = npy_bytes(batch if args.npy_dtype == "float32" else pixels)
        served = {
            m: served_images_per_s(server.url, m, body, len(batch), args.duration)
            for m in NPY_MODELS
        }
    finally:
        server.stop()
    effective = service_settings(settings)
    threads = {k: effective[k] for k in ("intra_op_threads", "inter_op_threads")}
    result = {"images": len(batch), "dtype": args.npy_dtype, "source": source}
    result |= {"threads": threads, "models": {}}
    for model in NPY_MODELS:
        raw = onnxruntime_images_per_s(model, batch, args.duration, threads)
        entry = {"service": served[model], "onnxruntime": raw}
        if "images_per_s" in served[model]:
            entry["ratio"] = round(served[model]["images_per_s"] / raw["images_per_s"], 3)
        result["models"][model] = entry
    return result


# --- report ------------------------------------------------------------------------------


HEADER = (
    f"{'target':<36}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'503':>7}{'load':>7}"
    "  errors"
)


def format_run(run: dict) -> str:
    if "failed" in run:
        return f"{run['target']:<36} FAILED {run['failed'][:200]}"
    errors = str(run["errors"])
    if run["errors"]:
        bad = [f"{c}:{n}" for c, n in run["statuses"].items() if c[0] != "2" and c != "503"]
        bad += [f"{k}:{n}" for k, n in run["socket_errors"].items() if n]
        errors += f" ({', '.join(bad)})"
    latency = run["latency_ms"]
    return (
        f"{run['target']:<36}{run['connections']:>6}{run['rps']:>10.1f}{latency['p50']:>9.1f}"
        f"{latency['p99']:>9.1f}{run['shed_503']:>7}{run['load_average'][0]:>7.1f}  {errors}"
    )


def summarise(runs: list[dict]) -> list[dict]:
    """One row per route and connection count: the median over the rounds of req/s and of each
    latency percentile, the answers and errors summed."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault((run["target"], run.get("connections")), []).append(run)
    rows = []
    for (target, connections), group in groups.items():
        failed = [run["failed"] for run in group if "failed" in run]
        if failed:
            rows.append({"target": target, "failed": failed[0]})
            continue
        statuses, sockets = Counter(), Counter()
        for run in group:
            statuses.update(run["statuses"])
            sockets.update(run["socket_errors"])
        latency = {k: median(run["latency_ms"][k] for run in group) for k in group[0]["latency_ms"]}
        rows.append(
            {
                "target": target,
                "connections": connections,
                "rounds": len(group),
                "rps": median(run["rps"] for run in group),
                "rps_per_round": [run["rps"] for run in group],
                "latency_ms": latency,
                "statuses": dict(sorted(statuses.items())),
                "shed_503": sum(run["shed_503"] for run in group),
                "errors": sum(run["errors"] for run in group),
                "socket_errors": dict(sockets),
                "load_average": [median(run["load_average"][i] for run in group) for i in range(3)],
            }
        )
    return rows


def ratios(runs: list[dict], connections: list[int]) -> dict[str, dict[str, float]]:
    rps = {(r["target"], r["connections"]): r["rps"] for r in runs if "rps" in r}
    table = {}
    for label, top, bottom in RATIOS:
        values = {
            str(c): round(rps[top, c] / rps[bottom, c], 3)
            for c in connections
            if (top, c) in rps and (bottom, c) in rps and rps[bottom, c] > 0
        }
        if values:
            table[label] = values
    return table


def check_targets(result: dict) -> list[dict]:
    """Issue 8's goals for latentserve, with this run's figures (None where not measured)."""
    connections = result["settings"]["connections"]
    low, high = min(connections), max(connections)
    rps_ratio = {label: values.get(str(low)) for label, values in result["ratios"].items()}
    runs = {(r["target"], r["connections"]): r for r in result["summary"] if "rps" in r}
    ae = runs.get(("latentserve /encode mnist-ae", low))
    loaded = [r for r in result["summary"] if r["target"].startswith("latentserve")]
    loaded = [r for r in loaded if r.get("connections", high) == high]
    deadline = result["settings"]["latentserve_effective"]["queue_deadline_ms"]
    goals = [
        (
            f"/encode mnist-ae : peer /encode, c={low}",
            ">=",
            2.0,
            rps_ratio.get("/encode mnist-ae : peer /encode"),
        ),
        (f"/encode mnist-ae : bare, c={low}", ">=", 0.4, rps_ratio.get("/encode mnist-ae : bare")),
        (
            f"/encode mnist-ae p99 : p50, c={low}",
            "<=",
            3.0,
            ae and ae["latency_ms"]["p99"] / ae["latency_ms"]["p50"],
        ),
        (
            f"/encode mnist-vae : /encode mnist-ae, c={low}",
            ">=",
            0.8,
            rps_ratio.get("/encode mnist-vae : /encode mnist-ae"),
        ),
        (f"/decode : peer /decode, c={low}", ">=", 1.5, rps_ratio.get("/decode : peer /decode")),
        (
            f"/reconstruct : peer /reconstruct, c={low}",
            ">=",
            1.5,
            rps_ratio.get("/reconstruct : peer /reconstruct"),
        ),
        (
            f"latentserve errors other than 503, c={high}",
            "<=",
            0,
            sum(r.get("errors", 1) for r in loaded) if loaded else None,
        ),
        (
            f"latentserve worst p99 : queue deadline, c={high}",
            "<=",
            1.0,
            max(r["latency_ms"]["p99"] for r in loaded if "rps" in r) / deadline
            if deadline and any("rps" in r for r in loaded)
            else None,
        ),
    ]
    for model, entry in result.get("npy", {}).get("models", {}).items():
        goals.append((f"npy /encode {model} : raw ONNX Runtime", ">=", 0.5, entry.get("ratio")))
    return [
        {
            "target": label,
            "goal": f"{op} {goal:g}",
            "measured": None if value is None else round(value, 3),
            "met": None if value is None else (value >= goal if op == ">=" else value <= goal),
        }
        for label, op, goal, value in goals
    ]


def print_report(result: dict) -> None:
    connections = result["settings"]["connections"]
    load = result["machine"]["load_average_start"]
    print(
        f"\ncommit {result['commit']}  {result['machine']['cpus']} CPUs "
        f"{result['machine']['cpu_model']}  load average at start {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f}  wrk -t1 -d{result['settings']['duration']}s"
    )
    if result["settings"]["rounds"] > 1:
        print(f"median of {result['settings']['rounds']} rounds; req/s of each round at the end")
    print(HEADER)
    for row in result["summary"]:
        each = row.get("rps_per_round", [])
        rounds = "  [" + "/".join(f"{rps:.0f}" for rps in each) + "]" if len(each) > 1 else ""
        print(format_run(row) + rounds)
    if result["ratios"]:
        print(f"\n{'ratio of req/s':<40}" + "".join(f"{'c=' + str(c):>9}" for c in connections))
        for label, values in result["ratios"].items():
            cells = "".join(f"{values.get(str(c), float('nan')):>9.2f}" for c in connections)
            print(f"{label:<40}{cells}")
    if "npy" in result:
        npy = result["npy"]
        print(
            f"\n/encode, {npy['images']} images per application/x-npy request ({npy['dtype']}), "
            "one request after another"
        )
        for model, entry in npy["models"].items():
            served = entry["service"].get("images_per_s", entry["service"].get("failed"))
            raw = entry["onnxruntime"]["images_per_s"]
            print(
                f"  {model:<10} service {served} img/s, raw ONNX Runtime {raw} img/s, "
                f"ratio {entry.get('ratio', 'n/a')}"
            )
    print(f"\n{'issue 8 target':<48}{'measured':>10}  {'goal':<7} met")
    for target in result["targets"]:
        measured = "n/a" if target["measured"] is None else f"{target['measured']:.2f}"
        met = {True: "yes", False: "NO", None: "-"}[target["met"]]
        print(f"{target['target']:<48}{measured:>10}  {target['goal']:<7} {met}")
    for target, reason in result["skipped"].items():
        print(f"skipped {target}: {reason}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (10)")
    parser.add_argument(
        "--connections",
        type=lambda text: [int(c) for c in text.split(",")],
        default=[32, 256],
        help="wrk connection counts, comma-separated (32,256)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the targets in turn this many times and report medians (on a busy machine)",
    )
    parser.add_argument("--warmup", type=int, default=2, help="seconds of wrk before measuring")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds of quiet between runs")
    parser.add_argument("--timeout", type=int, default=10, help="wrk's request timeout, seconds")
    parser.add_argument(
        "--only",
        type=lambda text: text.split(","),
        default=list(TARGETS),
        help=f"targets to run, comma-separated: {','.join(TARGETS)} (all)",
    )
    parser.add_argument("--workers", type=int, default=1, help="latentserve's uvicorn workers")
    parser.add_argument(
        "--peer-threads",
        type=int,
        help="torch threads of the tutorial peer (default: torch's own, one per core)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a latentserve setting (LATENTSERVE_ prefix optional); repeatable",
    )
    parser.add_argument("--npy-images", type=int, default=1024, help="images per .npy request")
    parser.add_argument(
        "--npy-dtype",
        choices=["float32", "uint8"],
        default="float32",
        help="the .npy body: the encoder's own float32 input (default), or 4x smaller uint8 pixels",
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="DIR",
        help="record py-spy profiles of latentserve at the first connection count into DIR",
    )
    parser.add_argument("--output", type=Path, help="the JSON file (bench/results/serve_rps-*)")
    args = parser.parse_args(argv)
    unknown = set(args.only) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; choose from {', '.join(TARGETS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not wrk.available():
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    result = {
        "benchmark": "serve_rps",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": machine.commit(ROOT),
        "machine": machine.describe(),
        "versions": machine.versions() | {"wrk": wrk.version()},
        "settings": vars(args) | {"output": str(args.output), "latentserve": None},
        "servers": {},
        "runs": [],
        "skipped": {},
    }
    result["settings"]["latentserve"] = latentserve_settings(args)
    result["settings"]["latentserve_effective"] = service_settings(latentserve_settings(args))
    if args.py_spy:
        if not pyspy.binary():
            print("--py-spy needs py-spy: pip install py-spy", file=sys.stderr)
            return 2
        args.py_spy.mkdir(parents=True, exist_ok=True)
    if "peer" in args.only and not all(map(importlib.util.find_spec, ("torch", "torchvision"))):
        args.only.remove("peer")
        result["skipped"]["peer"] = (
            "the tutorial peer needs torch and torchvision: pip install -e '.[train]'"
        )
        print(f"skipping peer: {result['skipped']['peer']}")
    print(HEADER)
    with tempfile.TemporaryDirectory(prefix="latentserve-serve-rps-") as folder:
        workdir = Path(folder)
        bodies = write_bodies(workdir)
        for round_number in range(1, args.rounds + 1):
            for target in (t for t in TARGETS if t in args.only and t != "npy"):
                measured = run_target(target, bodies, workdir, args)
                result["runs"] += [run | {"round": round_number} for run in measured.pop("runs")]
                measured["round"] = round_number
                result["servers"].setdefault(target, []).append(measured)
        if "npy" in args.only:
            result["npy"] = run_npy(workdir, args)
    result["summary"] = summarise(result["runs"])
    result["ratios"] = ratios(result["summary"], args.connections)
    result["targets"] = check_targets(result)
    result["machine"]["load_average_end"] = machine.load_average()
    print_report(result)
    path = args.output or RESULTS / f"serve_rps-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
