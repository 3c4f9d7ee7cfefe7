"""Images per second of `latentserve-batch encode`: one service instance vs N replicas behind
nginx (deploy/nginx.conf), both on loopback. Prints the ratio, writes bench/results/*.json.

    .venv/bin/python bench/batch_throughput.py --images 2000 --replicas 2

The images are real MNIST test digits (../shared/datasets/mnist) written as PNG files.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from client.batch import main as batch_main  # noqa: E402
from deploy.loopback import LoopbackTopology, start_replica, wait_until_ready  # noqa: E402

MNIST_IMAGES = ROOT.parent / "shared" / "datasets" / "mnist" / "t10k-images-idx3-ubyte.gz"
RESULTS = ROOT / "bench" / "results"


def write_digits(folder: Path, count: int) -> None:
    with gzip.open(MNIST_IMAGES, "rb") as f:
        f.read(16)
        pixels = np.frombuffer(f.read(count * 784), dtype=np.uint8).reshape(count, 28, 28)
    for index, image in enumerate(pixels):
        Image.fromarray(image).save(folder / f"{index:05d}.png")


def encode_rate(url: str, images: Path, out: Path, args: argparse.Namespace) -> dict:
    """Runs the batch CLI once to warm up, then times `--repeats` runs; the best run counts."""
    common = [
        "--url",
        url,
        "--model",
        args.model,
        "--batch-size",
        str(args.batch_size),
        "--concurrency",
        str(args.concurrency),
        "encode",
        str(images),
        "-o",
        str(out),
    ]
    seconds = []
    for run in range(args.repeats + 1):
        out.unlink(missing_ok=True)
        started = time.perf_counter()
        if batch_main([*common, "--restart"]) != 0:
            raise RuntimeError(f"latentserve-batch failed against {url}")
        if run > 0:  # the first run warms the server up
            seconds.append(time.perf_counter() - started)
    count = len(list(images.glob("*.png")))
    best = min(seconds)
    return {"seconds": seconds, "images_per_second": round(count / best, 1)}


def measure(args: argparse.Namespace, workdir: Path) -> dict:
    images = workdir / "images"
    images.mkdir()
    write_digits(images, args.images)
    model_dir = ROOT / "exported_models"
    single = start_replica(model_dir, workdir)
    try:
        wait_until_ready(f"{single.url}/readyz", single.process)
        one = encode_rate(single.url, images, workdir / "one.npz", args)
    finally:
        single.stop()
    with LoopbackTopology(args.replicas, model_dir, workdir=workdir / "topology") as topology:
        many = encode_rate(topology.url, images, workdir / "many.npz", args)
    return {"single_instance": one, "nginx_topology": {**many, "replicas": args.replicas}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--model", default="mnist-vae")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="latentserve-bench-") as workdir:
        runs = measure(args, Path(workdir))
    one = runs["single_instance"]["images_per_second"]
    many = runs["nginx_topology"]["images_per_second"]
    result = {
        "benchmark": "batch_throughput",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": vars(args),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        **runs,
        "ratio_topology_over_single": round(many / one, 2),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "batch_throughput.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"single instance : {one:8.1f} images/s")
    print(f"{args.replicas} replicas+nginx: {many:8.1f} images/s")
    print(f"ratio           : {result['ratio_topology_over_single']:.2f}x  ({os.cpu_count()} CPUs)")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
