"""Triton's model analyzer 1.58.0 in remote mode (`model-analyzer profile
--triton-launch-mode=remote`), for real, in its container (bench/model_analyzer/image.sh),
against a real latentserve over HTTP and over gRPC: one model, one batch size, one concurrency,
short perf_analyzer windows. No timing is asserted: only that the tool finishes and reports a
measurement, and which calls it made (the server's request counters).

Model analyzer reads the model's configuration from `<model_repository>/<model>/config.pbtxt`,
or, where there is none, over the API, after asking the server to load the model: latentserve
refuses (its models are the model directory's folders, docs/service.md), and model analyzer goes
on. With `--reload-model-disable` that is the only load it asks for; without it, it asks again,
with the configuration as an override, before measuring, and stops when refused.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.core.settings import Settings
from service.models.oip import NO_REPOSITORY_CONTROL
from tests.bench.conftest import require_image
from tests.deploy.containers import podman_environment
from tests.service.conftest import Server, shipped_models_dir, start_server, stop_server

pytestmark = pytest.mark.slow

IMAGE = "localhost/model-analyzer:1.58.0"
BUILD = "bench/model_analyzer/image.sh"
MODEL = "mnist-ae-encoder"
MAX_IMAGES = Settings.model_fields["max_images"].default  # the configuration's max_batch_size
# The calls that matter, as the server counts them: (route, status) per protocol.
CALLS = {
    "http": {
        "load": ("/v2/repository/models/{model}/load", "403"),
        "unload": ("/v2/repository/models/{model}/unload", "403"),
        "config": ("/v2/models/{model}/config", "200"),
        "statistics": ("/v2/models/{model}/stats", "200"),
        "infer": ("/v2/models/{model}/infer", "200"),
    },
    "grpc": {
        "load": ("grpc:/inference.GRPCInferenceService/RepositoryModelLoad", "UNIMPLEMENTED"),
        "unload": ("grpc:/inference.GRPCInferenceService/RepositoryModelUnload", "UNIMPLEMENTED"),
        "config": ("grpc:/inference.GRPCInferenceService/ModelConfig", "OK"),
        "statistics": ("grpc:/inference.GRPCInferenceService/ModelStatistics", "OK"),
        "infer": ("grpc:/inference.GRPCInferenceService/ModelInfer", "OK"),
    },
}
REFUSED = {"http": "[403]", "grpc": "[StatusCode.UNIMPLEMENTED]"}
ENUM_FIELDS = {"data_type", "kind", "timeout_action"}
SAMPLE = re.compile(
    r'latentserve_requests_total\{model="[^"]*",route="([^"]*)",status="([^"]*)"\} (\S+)'
)


@pytest.fixture(scope="module", autouse=True)
def image() -> None:
    require_image(IMAGE, BUILD)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    server = start_server(shipped_models_dir(), tmp_path_factory.mktemp("ma-server") / "log")
    yield server
    stop_server(server)


def requests_counted(server: Server) -> Counter:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    counts: Counter = Counter()
    for route, status, value in SAMPLE.findall(text):
        counts[route, status] += float(value)
    return counts


def profile(server: Server, folder: Path, protocol: str, **settings) -> tuple[str, Counter]:
    """Runs `model-analyzer profile` with a config file in `folder` (mounted as /work); returns
    its output and the calls the server counted meanwhile."""
    config = {
        "triton_launch_mode": "remote",
        "client_protocol": protocol,
        "triton_http_endpoint": server.url.removeprefix("http://"),
        "triton_grpc_endpoint": server.grpc,
        "triton_metrics_url": f"{server.url}/metrics",
        "profile_models": [MODEL],
        "run_config_search_disable": True,
        "concurrency": [1],
        "batch_sizes": [1],
        # random FP32 inputs are bit patterns (NaN, Inf) the encoders refuse: zeros are images
        "perf_analyzer_flags": {
            "input-data": "zero",
            "measurement-request-count": 50,
            "stability-percentage": 500,
            "max-trials": 3,
        },
        "export_path": "/work/out",
        "output_model_repository_path": "/work/out/variants",
        "checkpoint_directory": "/work/checkpoints",
        "skip_detailed_reports": True,
        **settings,
    }
    (folder / "profile.yaml").write_text(json.dumps(config, indent=1))  # JSON is YAML
    before = requests_counted(server)
    command = ["podman", "run", "--rm", "--pull=never", "--network", "host",
               "-v", f"{folder}:/work:Z", IMAGE, "profile", "-f", "/work/profile.yaml"]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=podman_environment(), check=False
    )
    calls = requests_counted(server) - before
    output = result.stdout + result.stderr
    return (output if result.returncode == 0 else f"exit {result.returncode}\n{output}"), calls


def pbtxt(message: dict, indent: str = "") -> str:
    """Triton's model configuration as JSON (what /config answers) -> a config.pbtxt's text."""
    lines = []
    for key, value in message.items():
        if key == "parameters":  # a map<string, ModelParameter>
            value = [{"key": name, "value": item} for name, item in value.items()]
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                lines.append(f"{indent}{key} {{\n{pbtxt(item, indent + '  ')}{indent}}}\n")
            elif isinstance(item, str) and key not in ENUM_FIELDS:
                lines.append(f"{indent}{key}: {json.dumps(item)}\n")
            else:
                lines.append(f"{indent}{key}: {item}\n")
    return "".join(lines)


def calls_of(calls: Counter, protocol: str) -> dict[str, float]:
    return {name: calls[key] for name, key in CALLS[protocol].items()}


@pytest.mark.parametrize(
    ("protocol", "config_file"),
    [("http", False), ("grpc", True)],
    ids=["http-config-from-the-server", "grpc-config-pbtxt"],
)
def test_remote_profile_with_reload_model_disable_measures_the_model(
    server, tmp_path, protocol, config_file
):
    settings: dict = {"reload_model_disable": True}
    if config_file:  # the server's configuration, written as a user would keep it
        config = httpx.get(f"{server.url}/v2/models/{MODEL}/config", timeout=10).json()
        (tmp_path / "repository" / MODEL).mkdir(parents=True)
        (tmp_path / "repository" / MODEL / "config.pbtxt").write_text(pbtxt(config))
        settings["model_repository"] = "/work/repository"
    output, calls = profile(server, tmp_path, protocol, **settings)
    assert not output.startswith("exit"), output[-4000:]
    assert f"Profile complete. Profiled 1 configurations for models: ['{MODEL}']" in output
    made = calls_of(calls, protocol)
    refused = f"Model {MODEL} load failed: {REFUSED[protocol]} {NO_REPOSITORY_CONTROL}"
    if config_file:  # no load at all
        assert "load failed" not in output and made["load"] == 0, made
    else:  # the one load it asks for, to read the configuration, is refused, and printed
        assert refused in output and made["load"] == 1, made
    with (tmp_path / "out" / "results" / "metrics-model-inference.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1, rows
    row = rows[0]
    assert (row["Model"], row["Batch"], row["Concurrency"]) == (MODEL, "1", "1")
    # read from the server's configuration: one CPU instance, max_batch_size = MAX_IMAGES
    assert (row["Instance Group"], row["Max Batch Size"]) == ("1:CPU", str(MAX_IMAGES))
    assert float(row["Throughput (infer/sec)"]) > 0
    assert float(row["p99 Latency (ms)"]) > 0
    assert made["unload"] == 0, made
    assert made["config"] >= 1 and made["statistics"] >= 2 and made["infer"] >= 50, made


def test_remote_profile_without_it_stops_at_the_refused_load_that_names_the_flag(server, tmp_path):
    output, calls = profile(server, tmp_path, "http")
    assert output.startswith("exit 1"), output[-4000:]
    # the load before measuring carries the configuration as an override: refused, not measured
    refused = f"Model {MODEL}_config_default load failed: [403] {NO_REPOSITORY_CONTROL}"
    assert refused in output
    assert "--reload-model-disable" in NO_REPOSITORY_CONTROL
    assert "The first 2 attempts to acquire measurements have failed" in output
    made = calls_of(calls, "http")
    assert made["load"] == 3 and made["infer"] == 0 and made["unload"] == 0, made
    assert not (tmp_path / "out" / "results" / "metrics-model-inference.csv").exists()
