"""Triton's perf_analyzer, the tool itself, against a real latentserve: bench/perf_analyzer.py
run briefly over HTTP (binary and JSON tensors) and gRPC (ModelInfer, and ModelStreamInfer with
--streaming), on an encoder and a decoder, in its
podman container (built at set-up by scripts/test: this test never downloads).

Asserted: every case runs to a stable measurement, perf_analyzer reads the server-side split
from /v2/models/<m>/stats, and the graph runners did at least the inferences perf_analyzer
counted in its measurement windows. No speed is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.bench.conftest import require_image
from tests.conftest import ROOT, SHARED_MNIST, shipped_models_dir, skip_or_fail

IMAGE = "localhost/perf-analyzer:2.60"
MODELS = ["mnist-ae-encoder", "mnist-vae-decoder"]
WINDOW_MS = 500
MODES = {("http", "binary"), ("http", "json"), ("grpc", "binary"), ("grpc-stream", "binary")}


def test_perf_analyzer_measures_latentserve_over_http_and_grpc(tmp_path: Path):
    require_image(IMAGE, "bench/perf_analyzer/image.sh")
    shipped_models_dir()
    if not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").exists():
        skip_or_fail(f"the shared MNIST test set (the encoders' data) is not at {SHARED_MNIST}")
    out = tmp_path / "perf_analyzer.json"
    command = [
        sys.executable, str(ROOT / "bench" / "perf_analyzer.py"),
        "--models", ",".join(MODELS), "--concurrency", "4", "--requests", "32",
        "--interval-ms", str(WINDOW_MS), "--max-trials", "10", "--out", str(out),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    report = json.loads(out.read_text())
    cases = report["cases"]
    assert {(case["model"], case["protocol"], case["tensors"]) for case in cases} == {
        (model, protocol, tensors) for model in MODELS for protocol, tensors in MODES
    }
    for case in cases:
        assert case["exit"] == 0 and case["Concurrency"] == 4, case
        assert case["Inferences/Second"] > 0, case
        # the server-side split comes from /v2/models/<m>/stats, read before and after a window
        assert case["Server Compute Infer"] > 0, case
        assert 0 < case["p50 latency"] <= case["p99 latency"], case

    for model in MODELS:
        counted = report["server_stats"][model]
        measured = sum(
            case["Inferences/Second"] * WINDOW_MS / 1000 for case in cases if case["model"] == model
        )
        # perf_analyzer measured at least one window per case; the runners ran all of them
        assert counted["inference_count"] >= measured, (model, counted, measured)
        assert counted["success_count"] >= measured and counted["fail_count"] == 0, counted
        assert 0 < counted["execution_count"] <= counted["inference_count"], counted
