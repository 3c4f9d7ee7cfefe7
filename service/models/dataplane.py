"""The data plane: what every front end asks of the models, decided once and free of HTTP.

One `DataPlane` per app holds the settings, the metrics' observers, the backend and (once
loaded) the registry. Front ends (service.rest, service.v2, next gRPC) call it and only
translate: they read their wire format into names and arrays, and render the answers and the
protocol-neutral errors (service.core.errors) it raises in their own form.

- `readiness()` / `ready()`: whether the models are loaded, at least one serves, and the process
  is not draining; the one readiness decision of every probe.
- `model(name)`: the served model of a domain request (the default when it names none).
- `model_info(...)`, `catalogue()`: what the models are, for the domain API's metadata.
- The Open Inference Protocol's view (graph names `<model>-encoder`/`-decoder`, versions,
  metadata, configuration, statistics, the checks of a request's tensors) is service.models.oip,
  over this plane, shared by /v2 and gRPC.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.core.drain import Drain
from service.core.errors import NotReady
from service.core.metrics import Metrics
from service.core.settings import Settings
from service.models.backends import Backend
from service.models.batching import BatchPolicy
from service.models.manifest import MixtureSampler
from service.models.registry import FailedModel, ModelRegistry, load_registry
from service.models.served import ServedModel


@dataclass(frozen=True)
class Readiness:
    ready: bool
    models: list[str]
    failed: list[FailedModel]
    detail: str | None  # why not, when not ready


class DataPlane:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.backend: Backend | None = None
        self.registry: ModelRegistry | None = None  # None until the models are loaded
        self.load_error: str | None = None

    # ---- loading ------------------------------------------------------------------------------

    def read_models(self, previous: ModelRegistry | None = None) -> ModelRegistry:
        """The model directory, loaded with this plane's backend, batching policy and metrics;
        with `previous`, its unchanged models are kept (a reload)."""
        settings = self.settings
        return load_registry(
            settings.model_dir,
            self.backend,
            settings.default_model,
            BatchPolicy.from_settings(settings),
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

    # ---- readiness ----------------------------------------------------------------------------

    def readiness(self) -> Readiness:
        registry = self.registry
        if registry is None:
            return Readiness(False, [], [], self.load_error or "models are loading")
        ready = bool(registry.models) and not Drain.active
        if Drain.active:
            detail = (
                "shutting down: requests already accepted are answered, send new ones elsewhere"
            )
        else:
            detail = None if ready else "no model could be loaded; see `failed`"
        return Readiness(ready, sorted(registry.models), list(registry.failed), detail)

    def ready(self) -> bool:
        registry = self.registry
        return registry is not None and bool(registry.models) and not Drain.active

    def loaded(self) -> ModelRegistry:
        """The registry, once the models are loaded; NotReady before (or when loading failed)."""
        if self.registry is None:
            raise NotReady(
                self.load_error or "models are still loading; retry shortly", retry_after=1
            )
        return self.registry

    # ---- names --------------------------------------------------------------------------------

    def model(self, name: str | None) -> ServedModel:
        """The model a domain request names (the default when it names none)."""
        return self.loaded().get(name)

    # ---- metadata -----------------------------------------------------------------------------

    def catalogue(self) -> dict[str, object]:
        """Every model served (the default first named), and those refused."""
        registry = self.loaded()
        return {
            "default": registry.default,
            "models": [self.model_info(m) for m in registry.models.values()],
            "failed": [{"name": f.name, "reason": f.reason} for f in registry.failed],
        }

    def model_info(self, model: ServedModel) -> dict[str, object]:
        """What a served model is and how it runs (a domain model, both graphs)."""
        m = model.manifest

        def tensors(names: list[str]) -> list[dict[str, object]]:
            return [{"name": name, "shape": ["N", *m.item_shape(name)]} for name in names]

        sampler: dict[str, object] = {"kind": m.sampler.kind}
        if isinstance(m.sampler, MixtureSampler):
            sampler["components"] = len(m.sampler.weights)
        return {
            "name": m.name,
            "description": m.description,
            "family": m.family,
            "architecture": m.architecture,
            "variational": m.variational,
            "conditional": m.conditional,
            "latent_dim": m.latent_dim,
            "image": {
                "channels": m.image.channels,
                "height": m.image.height,
                "width": m.image.width,
                "value_range": list(m.image.value_range),
            },
            "classes": m.classes,
            "backend": self.backend.describe()["backend"],
            "provider": model.device,
            "inputs": {"encoder": tensors(m.encoder.inputs), "decoder": tensors(m.decoder.inputs)},
            "outputs": {
                "encoder": tensors(m.encoder.outputs),
                "decoder": tensors(m.decoder.outputs),
            },
            "sampler": sampler,
            "dataset": m.dataset.model_dump(),
            "metrics": m.metrics,
            "parity": m.parity,
            "has_reference": model.reference_json is not None,
            "calibration": m.calibration.model_dump() if m.calibration else None,
            "created": m.created,
        }
