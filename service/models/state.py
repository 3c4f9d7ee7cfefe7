"""What one app instance holds: its settings, metrics, backend and (once loaded) its models."""

from __future__ import annotations

from dataclasses import dataclass

from service.core.metrics import Metrics
from service.core.settings import Settings
from service.models.backends import Backend
from service.models.registry import ModelRegistry, load_registry


@dataclass
class AppState:
    settings: Settings
    metrics: Metrics
    backend: Backend | None = None
    registry: ModelRegistry | None = None  # None until the models are loaded
    load_error: str | None = None

    def read_models(self, previous: ModelRegistry | None = None) -> ModelRegistry:
        """The model directory, loaded with this app's backend, batching policy and metrics;
        with `previous`, its unchanged models are kept (a reload)."""
        settings = self.settings
        return load_registry(
            settings.model_dir,
            self.backend,
            settings.default_model,
            settings.batch_policy(),
            self.metrics.runner_observer,
            previous=previous,
        )

    def queue_depths(self) -> list[tuple[str, str, int]]:
        models = self.registry.models.values() if self.registry else ()
        return [
            (model.name, kind, runner.depth)
            for model in models
            for kind, runner in model.runners.items()
        ]
