"""The Open Inference Protocol's view of the served models, for every front end that speaks it
(HTTP under /v2, gRPC): names, versions, readiness, metadata, model configuration, statistics,
the repository index and the checks of a request's tensors. Protocol-neutral: the answers are
plain dicts and arrays, the errors service.core.errors' kinds (each front end maps their
`code`: HTTP statuses, gRPC codes), so both front ends decide each of these the same way, here,
once.

Each served model is two protocol models, `<name>-encoder` and `<name>-decoder`, whose tensors
are the graph's own (manifest names, FP32, batch axis -1), in one version, "1".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from service.core.errors import BadInput, BadRequest, NotSupported, UnknownModel
from service.models.batching import Arrays
from service.models.checks import check_finite, check_images
from service.models.dataplane import DataPlane
from service.models.served import GraphKind, ServedModel

VERSION = "1"
GRAPHS: tuple[GraphKind, ...] = ("encoder", "decoder")
PLATFORMS = {"onnx": "onnxruntime_onnx", "torchscript": "pytorch_torchscript"}
BACKENDS = {"onnx": "onnxruntime", "torchscript": "pytorch"}
EXTENSIONS = ["binary_tensor_data", "model_repository", "statistics", "model_configuration"]
SERVER_NAME = "latentserve"
UNSUPPORTED = {  # request parameters of extensions this server does not have
    "shared_memory_region": "the shared memory extension is not supported; send the data",
    "classification": "the classification extension is not supported; ask for the tensor",
}
NO_REPOSITORY_CONTROL = (
    "this server does not load or unload models on request: it serves every folder of its "
    "model directory; add, replace or remove a folder there and send the process SIGHUP to "
    "reload (docs/service.md). Its READY models are loaded already: tell a tool that loads "
    "before it measures so (Triton's model analyzer: --reload-model-disable)"
)


__all__ = ["BadRequest", "NotSupported"]  # raised here, named by the front ends


def registry_of(state: DataPlane):
    return state.loaded()


def server_ready(state: DataPlane, draining: bool) -> bool:
    """Models loaded and the process not shutting down."""
    return state.registry is not None and bool(state.registry.models) and not draining


def resolve(state: DataPlane, name: str, version: str | None) -> tuple[ServedModel, GraphKind]:
    """The served model and graph a protocol model name stands for; 404 or 503 otherwise.
    An empty version (gRPC's default) means any, as None does."""
    registry = registry_of(state)
    base, _, kind = name.rpartition("-")
    served = registry.models.get(base) if kind in GRAPHS else None
    if served is None:
        refused = next((f for f in registry.failed if f.name == base), None)
        if refused is not None and kind in GRAPHS:
            raise UnknownModel(f"model {base!r} was refused at start-up: {refused.reason}")
        raise UnknownModel(
            f"no model named {name!r}; each of {', '.join(sorted(registry.models))} is served "
            "as <name>-encoder and <name>-decoder"
        )
    if version not in (None, "", VERSION):
        raise UnknownModel(f"model {name!r} has one version, {VERSION}; got {version!r}")
    return served, kind  # type: ignore[return-value]


def server_metadata(version: str) -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": version, "extensions": EXTENSIONS}


def _backend(state: DataPlane) -> str:
    return state.backend.name if state.backend is not None else state.settings.backend


def model_metadata(state: DataPlane, name: str, version: str | None) -> dict[str, Any]:
    served, kind = resolve(state, name, version)
    manifest = served.manifest
    signature = getattr(manifest, kind)

    def tensors(names: list[str]) -> list[dict]:
        return [
            {"name": n, "datatype": "FP32", "shape": [-1, *manifest.item_shape(n)]} for n in names
        ]

    backend = _backend(state)
    return {
        "name": name,
        "versions": [VERSION],
        "platform": PLATFORMS.get(backend, backend),
        "inputs": tensors(signature.inputs),
        "outputs": tensors(signature.outputs),
    }


def model_config(state: DataPlane, name: str, version: str | None) -> dict[str, Any]:
    """Triton's model configuration (model_config.proto as JSON): what perf_analyzer and
    `get_model_config` read. `max_batch_size` is the most batch items one request may carry;
    the dynamic batcher's figures are the graph runner's (LATENTSERVE_BATCH_*, QUEUE_*)."""
    served, kind = resolve(state, name, version)
    manifest = served.manifest
    signature = getattr(manifest, kind)
    settings = state.settings
    policy = served.runners[kind].policy
    backend = _backend(state)
    device = served.device.lower()
    on_gpu = "cuda" in device or "tensorrt" in device

    def tensors(names: list[str]) -> list[dict]:
        return [
            {"name": n, "data_type": "TYPE_FP32", "dims": list(manifest.item_shape(n))}
            for n in names
        ]

    return {
        "name": name,
        "platform": PLATFORMS.get(backend, backend),
        "backend": BACKENDS.get(backend, backend),
        "version_policy": {"latest": {"num_versions": 1}},
        "max_batch_size": settings.max_images,
        "input": tensors(signature.inputs),
        "output": tensors(signature.outputs),
        "dynamic_batching": {
            "preferred_batch_size": [policy.max_batch],
            "max_queue_delay_microseconds": round(policy.max_wait * 1e6),
            "default_queue_policy": {
                "timeout_action": "REJECT",
                "default_timeout_microseconds": round(policy.deadline * 1e6),
                "max_queue_size": policy.max_queue,
            },
        },
        "instance_group": [
            {
                "name": f"{name}_0",
                "kind": "KIND_GPU" if on_gpu else "KIND_CPU",
                "count": 1,
                "gpus": [0] if on_gpu else [],
            }
        ],
        "parameters": {"execution_provider": {"string_value": served.device}},
    }


def _duration(count: float, seconds: float) -> dict[str, int]:
    return {"count": int(count), "ns": int(round(seconds * 1e9))}


def _graph_samples(state: DataPlane) -> dict[tuple[str, str], dict[str, float]]:
    """Per (model, graph), what the runners' observers have counted so far (the Prometheus
    collectors of service/core/metrics.py, read at call time: nothing is added per request)."""
    metrics = state.metrics
    wanted = {
        ("latentserve_inference_seconds", "_count"): "executions",
        ("latentserve_inference_seconds", "_sum"): "compute_s",
        ("latentserve_queue_wait_seconds", "_count"): "queued",
        ("latentserve_queue_wait_seconds", "_sum"): "queue_s",
        ("latentserve_images_processed", "_total"): "images",
    }
    found: dict[tuple[str, str], dict[str, float]] = {}
    for collector in (metrics.inference, metrics.queue_wait, metrics.images, metrics.shed):
        for family in collector.collect():
            for sample in family.samples:
                key = (sample.labels.get("model", ""), sample.labels.get("graph", ""))
                values = found.setdefault(key, {})
                if family.name == "latentserve_shed" and sample.name.endswith("_total"):
                    values["shed"] = values.get("shed", 0.0) + sample.value
                    continue
                field = wanted.get((family.name, sample.name[len(family.name) :]))
                if field is not None:
                    values[field] = sample.value
    return found


def statistics(state: DataPlane, name: str | None, version: str | None) -> dict[str, Any]:
    """Triton's inference statistics for one protocol model, or for every one when `name` is
    empty. From the graph runners' own measures: `inference_count` is batch items run,
    `execution_count` graph calls; `queue` the requests taken from the queue and their wait;
    `compute_infer` those requests and the graph time spent on them (a batch's time counted
    once, where Triton charges it to each request of the batch: every figure here is a
    counter, so what a client subtracts between two reads never goes negative); `success` the
    same requests with queue + compute time; `fail` the requests shed with 503. Decoding and
    encoding the tensors happen in the front ends and are not timed: compute_input and
    compute_output carry the request count (perf_analyzer requires the three compute counts to
    agree) and 0 ns."""
    if name:
        served, kind = resolve(state, name, version)
        targets = [(name, served, kind)]
    else:
        registry = registry_of(state)
        targets = [
            (f"{model}-{kind}", served, kind)
            for model, served in sorted(registry.models.items())
            for kind in GRAPHS
        ]
    samples = _graph_samples(state)
    stats = []
    for protocol_name, served, kind in targets:
        values = samples.get((served.name, kind), {})
        executions = values.get("executions", 0.0)
        compute = values.get("compute_s", 0.0)
        queued = values.get("queued", 0.0)
        queue = values.get("queue_s", 0.0)
        stats.append(
            {
                "name": protocol_name,
                "version": VERSION,
                "last_inference": 0,
                "inference_count": int(values.get("images", 0.0)),
                "execution_count": int(executions),
                "inference_stats": {
                    "success": _duration(queued, queue + compute),
                    "fail": _duration(values.get("shed", 0.0), 0.0),
                    "queue": _duration(queued, queue),
                    "compute_input": _duration(queued, 0.0),
                    "compute_infer": _duration(queued, compute),
                    "compute_output": _duration(queued, 0.0),
                    "cache_hit": _duration(0, 0.0),
                    "cache_miss": _duration(0, 0.0),
                },
                "batch_stats": [],
            }
        )
    return {"model_stats": stats}


def repository_index(state: DataPlane, ready_only: bool = False) -> list[dict[str, str]]:
    """Every protocol model of the model directory and its state: READY, or UNAVAILABLE with
    the reason its folder was refused."""
    registry = registry_of(state)
    index = [
        {"name": f"{model}-{kind}", "version": VERSION, "state": "READY"}
        for model in sorted(registry.models)
        for kind in GRAPHS
    ]
    if not ready_only:
        index += [
            {"name": f"{failed.name}-{kind}", "state": "UNAVAILABLE", "reason": failed.reason}
            for failed in sorted(registry.failed, key=lambda f: f.name)
            for kind in GRAPHS
        ]
    return index


def refuse_repository_control() -> None:
    raise NotSupported(NO_REPOSITORY_CONTROL)


def check_outputs(name: str, available: Sequence[str], asked: Sequence[str]) -> None:
    unknown = [output for output in asked if output not in available]
    if unknown:
        raise BadRequest(f"no output named {unknown[0]!r}; the outputs are {list(available)}")
    if len(set(asked)) != len(asked):
        raise BadRequest(f"an output is asked for twice: {list(asked)}")


def graph_inputs(state: DataPlane, served: ServedModel, kind: GraphKind, name: str, given: Arrays):
    """The request's tensors checked against the graph: names, shapes, batch size, values."""
    expected = getattr(served.manifest, kind).inputs
    if sorted(given) != sorted(expected):
        raise BadRequest(f"model {name!r} takes the inputs {expected}; got {list(given)}")
    manifest = served.manifest
    counts = set()
    for tensor in expected:
        array = given[tensor]
        shape = manifest.item_shape(tensor)
        if array.shape[1:] != shape or array.ndim != len(shape) + 1:
            raise BadRequest(
                f"input {tensor!r} of {name!r} must have the shape {[-1, *shape]}; "
                f"got {list(array.shape)}"
            )
        counts.add(array.shape[0])
    if len(counts) > 1:
        raise BadRequest(f"the inputs of {name!r} must have one batch size; got {sorted(counts)}")
    count = counts.pop()
    if count == 0:
        raise BadInput("no batch items in the request")
    if count > state.settings.max_images:
        raise BadInput(
            f"{count} batch items in one request; the limit is {state.settings.max_images}"
        )
    checked: Arrays = {}
    for tensor, array in given.items():
        if tensor == "image":
            checked[tensor] = check_images(array, manifest.image)
        else:
            check_finite(array, f"{tensor} values")
            checked[tensor] = np.ascontiguousarray(array, dtype=np.float32)
    return checked


async def infer(
    state: DataPlane, name: str, version: str | None, given: Arrays
) -> tuple[ServedModel, GraphKind, Arrays]:
    """Resolve, check and run one inference request through the graph's runner."""
    served, kind = resolve(state, name, version)
    inputs = graph_inputs(state, served, kind, name, given)
    return served, kind, await served.run(kind, inputs)
