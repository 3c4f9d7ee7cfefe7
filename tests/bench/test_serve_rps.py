"""bench/serve_rps.py for real, briefly: every target for about a second on a small load, then
the JSON it writes. No timing is asserted: only that the instrument measures and reports."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import pyspy, serve_rps, servers, wrk  # noqa: E402
from service.core.settings import Settings  # noqa: E402
from tests.conftest import skip_or_fail  # noqa: E402

pytestmark = pytest.mark.slow

HAS_TORCH = all(map(importlib.util.find_spec, ("torch", "torchvision")))


@pytest.fixture(scope="module", autouse=True)
def wrk_installed() -> None:
    if not wrk.available():
        skip_or_fail("wrk is not installed: apt-get install wrk")


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> dict:
    output = tmp_path_factory.mktemp("bench") / "serve_rps.json"
    argv = ["--duration", "1", "--connections", "4", "--warmup", "0", "--pause", "0"]
    argv += ["--npy-images", "64", "--output", str(output)]
    assert serve_rps.main(argv) == 0
    return json.loads(output.read_text())


def test_every_route_is_measured_without_errors(result):
    targets = ["bare", "peer", "latentserve"] if HAS_TORCH else ["bare", "latentserve"]
    expected = [route.name for t in targets for route in serve_rps.ROUTES[t]]
    assert [run["target"] for run in result["runs"]] == expected
    for run in result["runs"]:
        assert "failed" not in run, run
        assert run["connections"] == 4 and run["requests"] > 0 and run["rps"] > 0
        assert run["errors"] == 0, run
        assert all(code[0] == "2" or code == "503" for code in run["statuses"]), run
        assert sum(run["statuses"].values()) == run["requests"]
        latency = run["latency_ms"]
        assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]


def test_ratios_and_context_are_recorded(result):
    if HAS_TORCH:
        assert set(result["ratios"]) == {label for label, _, _ in serve_rps.RATIOS}
    else:
        assert result["skipped"]["peer"].startswith("the tutorial peer needs torch")
    assert all(value > 0 for ratio in result["ratios"].values() for value in ratio.values())
    assert set(result["ratios"]["/encode mnist-ae : bare"]) == {"4"}
    machine = result["machine"]
    assert machine["cpus"] >= 1 and machine["cpu_model"]
    assert len(machine["load_average_start"]) == len(machine["load_average_end"]) == 3
    assert result["versions"]["onnxruntime"] and result["versions"]["wrk"].startswith("wrk")
    assert result["commit"] and result["servers"]["latentserve"][0]["ready_s"] > 0
    assert [row["rps"] for row in result["summary"]] == [run["rps"] for run in result["runs"]]


def test_issue_targets_are_checked_against_the_figures(result):
    targets = {target["target"]: target for target in result["targets"]}
    errors = targets["latentserve errors other than 503, c=4"]
    assert errors == {**errors, "measured": 0, "met": True}
    vae = targets["/encode mnist-vae : /encode mnist-ae, c=4"]
    ratio = result["ratios"]["/encode mnist-vae : /encode mnist-ae"]["4"]
    assert vae["goal"] == ">= 0.8" and vae["measured"] == ratio and vae["met"] == (ratio >= 0.8)
    for model in ("mnist-ae", "mnist-vae"):
        npy = targets[f"npy /encode {model} : raw ONNX Runtime"]
        assert npy["measured"] == result["npy"]["models"][model]["ratio"]
    peer = targets["/encode mnist-ae : peer /encode, c=4"]
    assert (peer["measured"] is not None) == HAS_TORCH


def test_npy_batches_are_compared_with_onnxruntime(result):
    npy = result["npy"]
    assert npy["images"] == 64 and npy["threads"]["intra_op_threads"] >= 0
    for model, latent_dim in (("mnist-ae", 16), ("mnist-vae", 20)):
        entry = npy["models"][model]
        assert entry["service"]["latents_shape"] == [64, latent_dim]
        assert set(entry["service"]["statuses"]) == {"200"}
        assert entry["onnxruntime"]["images_per_s"] > 0 and entry["ratio"] > 0


def test_wrk_counts_answers_that_are_not_2xx(tmp_path):
    body = tmp_path / "body.png"
    body.write_bytes(b"not a png")
    server = servers.uvicorn_app(
        "bench.bare_app:app", tmp_path / "bare.log", servers.clean_environment()
    )
    try:
        server.wait_ready()
        run = wrk.load(f"{server.url}/missing", body, "image/png", 2, 1, 5)
    finally:
        server.stop()
    assert run["requests"] > 0
    assert run["statuses"] == {"404": run["requests"]} and run["errors"] == run["requests"]
    assert run["shed_503"] == 0


def test_latentserve_settings_take_the_prefix_and_workers():
    args = serve_rps.parse_args(
        ["--workers", "2", "--env", "max_batch=8", "--env", "LATENTSERVE_X=1"]
    )
    assert serve_rps.latentserve_settings(args) == {
        "LATENTSERVE_WORKERS": "2",
        "LATENTSERVE_MAX_BATCH": "8",
        "LATENTSERVE_X": "1",
    }
    with pytest.raises(SystemExit):
        serve_rps.parse_args(["--only", "tutorial"])


def test_the_effective_service_settings_are_its_defaults_unless_given():
    effective = serve_rps.service_settings({"LATENTSERVE_QUEUE_DEADLINE_MS": "200"})
    assert effective["queue_deadline_ms"] == 200.0
    assert effective["intra_op_threads"] == Settings.model_fields["intra_op_threads"].default


def test_rounds_are_summarised_by_their_medians():
    def run(rps: float, p99: float, statuses: dict[str, int]) -> dict:
        return {
            "target": "latentserve /encode mnist-ae",
            "connections": 32,
            "rps": rps,
            "latency_ms": {"p50": p99 / 2, "p99": p99},
            "statuses": statuses,
            "shed_503": statuses.get("503", 0),
            "errors": statuses.get("500", 0),
            "socket_errors": {"timeout": 1},
            "load_average": [rps / 100, 1.0, 1.0],
        }

    runs = [run(100, 30, {"200": 5}), run(300, 10, {"200": 7, "503": 2}), run(200, 20, {"500": 1})]
    (row,) = serve_rps.summarise(runs)
    assert row["rounds"] == 3 and row["rps"] == 200 and row["rps_per_round"] == [100, 300, 200]
    assert row["latency_ms"] == {"p50": 10, "p99": 20}
    assert row["statuses"] == {"200": 12, "500": 1, "503": 2}
    assert (row["shed_503"], row["errors"], row["socket_errors"]) == (2, 1, {"timeout": 3})
    assert row["load_average"] == [2.0, 1.0, 1.0]


def test_profile_shares_leave_idle_threads_out(tmp_path):
    profile = tmp_path / "encode.txt"
    loop = (
        "thread (1): MainThread;run (uvicorn/main.py:632);encode (service/rest/routes/encode.py:70)"
    )
    profile.write_text(
        f"{loop};load (/x/site-packages/pyspng/lib.py:48) 3\n"
        f"{loop} 1\n"
        "thread (2): pool;Thread.run (threading.py:10);Condition.wait (threading.py:327) 9\n"
    )
    total, inclusive, own = pyspy.shares(profile)
    assert total == 4
    assert inclusive["encode (service/rest/routes/encode.py)"] == 4
    assert own == {"load (pyspng/lib.py)": 3, "encode (service/rest/routes/encode.py)": 1}
