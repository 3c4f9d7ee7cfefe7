"""A served model: the manifest and a batching runner for each of its two graphs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from service.core.errors import BadInput
from service.models.backends import Graph
from service.models.batching import Arrays, BatchPolicy, GraphRunner, RunnerObserver
from service.models.manifest import Manifest

GraphKind = Literal["encoder", "decoder"]
ObserverFactory = Callable[[str, GraphKind], RunnerObserver]  # (model, graph) -> observer


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
        policy: BatchPolicy | None = None,
        observers: ObserverFactory | None = None,
    ) -> None:
        self.manifest = manifest
        self.graphs: dict[GraphKind, Graph] = {"encoder": encoder, "decoder": decoder}
        self.reference_json = reference_json
        self._running = 0  # calls inside a runner
        self._closed = False
        self.runners: dict[GraphKind, GraphRunner] = {
            kind: GraphRunner(
                f"{manifest.name}/{kind}",
                graph.run,
                policy or BatchPolicy(),
                observers(manifest.name, kind) if observers else None,
            )
            for kind, graph in self.graphs.items()
        }

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def device(self) -> str:
        return self.graphs["encoder"].device

    async def run(self, kind: GraphKind, inputs: Arrays) -> Arrays:
        """One graph on its own tensors (manifest names, float32, labels one-hot), batched."""
        if self._closed:  # swapped out by a reload: a request that still holds it finishes here
            return await asyncio.to_thread(self.graphs[kind].run, inputs)
        self._running += 1
        try:
            return await self.runners[kind].run(inputs)
        finally:
            self._running -= 1

    async def encode(self, images: np.ndarray, labels: np.ndarray | None = None) -> Encoding:
        inputs = self._with_labels({"image": _float32(images)}, labels)
        outputs = await self.run("encoder", inputs)
        if self.manifest.variational:
            return Encoding(outputs["mean"], outputs["logvar"])
        return Encoding(outputs["latent"], None)

    async def decode(self, latents: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        return (await self.decode_outputs(latents, labels))["image"]

    async def decode_outputs(self, latents: np.ndarray, labels: np.ndarray | None = None) -> Arrays:
        """Every output of the decoder: `image`, and `logits` where the graph has them."""
        inputs = self._with_labels({"latent": _float32(latents)}, labels)
        return await self.run("decoder", inputs)

    async def close(self) -> None:
        """Stops the runners once the requests in their queues and batches are answered."""
        self._closed = True
        while self._running:
            await asyncio.sleep(0.01)
        await asyncio.gather(*(runner.close() for runner in self.runners.values()))

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

    def _with_labels(self, inputs: Arrays, labels: np.ndarray | None) -> Arrays:
        """Conditional graphs take the labels one-hot, beside the images they belong to."""
        if self.manifest.conditional:
            count = len(next(iter(inputs.values())))
            if labels is None or labels.shape != (count,):
                raise ValueError("a conditional model needs one checked label per input")
            inputs["label"] = np.eye(self.manifest.num_classes, dtype=np.float32)[labels]
        return inputs


def _float32(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)
