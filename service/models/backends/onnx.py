"""ONNX Runtime sessions on the configured execution providers."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort

from service.models.backends.base import Backend, BackendUnavailable, Graph
from service.models.manifest import GraphSignature

log = logging.getLogger("latentserve.backends.onnx")

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


class OnnxGraph(Graph):
    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session
        self.input_names = [node.name for node in session.get_inputs()]
        self.output_names = [node.name for node in session.get_outputs()]
        self.device = session.get_providers()[0]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self.session.run(self.output_names, inputs)
        return dict(zip(self.output_names, outputs, strict=True))


class OnnxBackend(Backend):
    name = "onnx"
    file_suffix = ".onnx"

    def __init__(
        self,
        providers: list[str],
        *,
        require_cuda: bool = False,
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
    ) -> None:
        available = ort.get_available_providers()
        if require_cuda and CUDA not in providers:
            raise BackendUnavailable(
                f"require_cuda is set but the providers {providers} omit {CUDA}"
            )
        if require_cuda and CUDA not in available:
            raise BackendUnavailable(
                f"require_cuda is set but this ONNX Runtime offers only {available}; "
                "install onnxruntime-gpu with a matching CUDA, or unset LATENTSERVE_REQUIRE_CUDA"
            )
        missing = [p for p in providers if p not in available]
        if missing:
            log.warning("execution providers %s are not available here; skipping them", missing)
        self.providers = [p for p in providers if p in available] or [CPU]
        self.require_cuda = require_cuda
        self.options = ort.SessionOptions()
        self.options.intra_op_num_threads = intra_op_threads
        self.options.inter_op_num_threads = inter_op_threads

    def load(self, path: Path, signature: GraphSignature) -> OnnxGraph:
        session = ort.InferenceSession(str(path), self.options, providers=self.providers)
        graph = OnnxGraph(session)
        if set(graph.input_names) != set(signature.inputs) or set(graph.output_names) != set(
            signature.outputs
        ):
            raise ValueError(
                f"{path.name} has inputs {graph.input_names} and outputs {graph.output_names}; "
                f"the manifest says {signature.inputs} and {signature.outputs}"
            )
        used = session.get_providers()
        if self.require_cuda and CUDA not in used:
            raise BackendUnavailable(f"{path.name}: CUDA was required but the session uses {used}")
        if used[0] != self.providers[0]:
            log.warning("%s runs on %s, not on %s", path, used[0], self.providers[0])
        return graph

    def describe(self) -> dict[str, object]:
        return {"backend": self.name, "providers": self.providers}
