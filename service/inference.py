"""A served model: the manifest and its two graphs, called with plain float32 arrays."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from service.backends import Graph
from service.core.errors import BadInput
from service.manifest import Manifest

InferenceObserver = Callable[[str, str, float, int], None]  # model, graph, seconds, images


@dataclass(frozen=True)
class Encoding:
    mean: np.ndarray  # [N, D]; the latent itself for deterministic models
    logvar: np.ndarray | None  # [N, D] for variational models


class ServedModel:
    def __init__(
        self,
        manifest: Manifest,
        encoder: Graph,
        decoder: Graph,
        *,
        reference_json: bytes | None = None,
        observe: InferenceObserver | None = None,
    ) -> None:
        self.manifest = manifest
        self.encoder = encoder
        self.decoder = decoder
        self.reference_json = reference_json
        self._observe = observe

    @property
    def name(self) -> str:
        return self.manifest.name

    def encode(self, images: np.ndarray, labels: np.ndarray | None = None) -> Encoding:
        inputs = {"image": np.ascontiguousarray(images, dtype=np.float32)}
        outputs = self._run("encoder", self.encoder, inputs, labels)
        if self.manifest.variational:
            return Encoding(outputs["mean"], outputs["logvar"])
        return Encoding(outputs["latent"], None)

    def decode(self, latents: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        inputs = {"latent": np.ascontiguousarray(latents, dtype=np.float32)}
        return self._run("decoder", self.decoder, inputs, labels)["image"]

    def check_labels(self, labels: list[int] | None, count: int) -> np.ndarray | None:
        """Labels as an int array of length `count` (one label broadcasts), or a 422."""
        if not self.manifest.conditional:
            if labels:
                raise BadInput(f"model {self.name} is not conditional; send no labels")
            return None
        classes = self.manifest.num_classes
        if not labels:
            raise BadInput(
                f"model {self.name} is conditional: give a label in 0..{classes - 1} per image "
                f"(classes: {', '.join(self.manifest.classes or [])})"
            )
        if len(labels) not in (1, count):
            raise BadInput(f"got {len(labels)} labels for {count} inputs; give 1 or {count}")
        bad = [label for label in labels if not 0 <= label < classes]
        if bad:
            raise BadInput(
                f"labels {bad} are out of range; model {self.name} has {classes} classes"
            )
        return np.broadcast_to(np.asarray(labels, dtype=np.int64), (count,)).copy()

    def _run(
        self, kind: str, graph: Graph, inputs: dict[str, np.ndarray], labels: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        count = next(iter(inputs.values())).shape[0]
        if self.manifest.conditional:
            inputs["label"] = self._one_hot(labels, count)
        start = time.perf_counter()
        outputs = graph.run(inputs)
        if self._observe is not None:
            self._observe(self.name, kind, time.perf_counter() - start, count)
        return outputs

    def _one_hot(self, labels: np.ndarray | None, count: int) -> np.ndarray:
        if labels is None or labels.shape != (count,):
            raise ValueError("a conditional model needs one checked label per input")
        return np.eye(self.manifest.num_classes, dtype=np.float32)[labels]
