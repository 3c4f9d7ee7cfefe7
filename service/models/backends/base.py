"""The one interface both runtimes implement; routes never see which is in use."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from service.models.manifest import GraphSignature


class BackendUnavailable(RuntimeError):
    """The configured runtime or device cannot be used; the service must not start."""


class Graph(ABC):
    """One loaded encoder or decoder."""

    input_names: list[str]
    output_names: list[str]
    device: str  # the execution provider or device actually in use

    @abstractmethod
    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Float32 arrays in by input name, float32 arrays out by output name."""


class Backend(ABC):
    name: str
    file_suffix: str  # ".onnx" or ".pt": which exported files this backend reads

    @abstractmethod
    def load(self, path: Path, signature: GraphSignature) -> Graph:
        """Load one graph; raise ValueError when it does not have the signature's inputs/outputs."""

    def describe(self) -> dict[str, object]:
        return {"backend": self.name}
