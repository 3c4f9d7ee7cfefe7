"""What one app instance holds: its settings, metrics, backend and (once loaded) its models."""

from __future__ import annotations

from dataclasses import dataclass

from service.backends import Backend
from service.core.metrics import Metrics
from service.core.settings import Settings
from service.registry import ModelRegistry


@dataclass
class AppState:
    settings: Settings
    metrics: Metrics
    backend: Backend | None = None
    registry: ModelRegistry | None = None  # None until the models are loaded
    load_error: str | None = None

    def queue_depths(self) -> list[tuple[str, str, int]]:
        models = self.registry.models.values() if self.registry else ()
        return [
            (model.name, kind, runner.depth)
            for model in models
            for kind, runner in model.runners.items()
        ]
