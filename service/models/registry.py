"""Loads every model folder of the model directory, verifies it, and keeps the ones that pass.

A broken folder (unreadable manifest, missing file, wrong hash, graphs that do not match the
manifest) is logged and listed in `failed`; the other models serve regardless.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from service.core.errors import NotReady, UnknownModel
from service.models.backends import Backend
from service.models.batching import BatchPolicy
from service.models.manifest import MANIFEST_FILE as MANIFEST
from service.models.manifest import GraphSignature, Manifest, ReferenceSet, file_problem
from service.models.served import ObserverFactory, ServedModel

log = logging.getLogger("latentserve.registry")


class BrokenModel(Exception):
    """A model folder that must not be served; the message says why."""


@dataclass(frozen=True)
class FailedModel:
    name: str
    reason: str


@dataclass(frozen=True)
class Source:
    """The folder a served model was loaded from, and that folder's fingerprint then."""

    folder: str
    fingerprint: str


@dataclass
class ModelRegistry:
    models: dict[str, ServedModel] = field(default_factory=dict)
    failed: list[FailedModel] = field(default_factory=list)
    default: str | None = None
    sources: dict[str, Source] = field(default_factory=dict)  # by model name

    def add(self, model: ServedModel, source: Source) -> None:
        self.models[model.name] = model
        self.sources[model.name] = source

    def loaded_from(self, folder: str) -> ServedModel | None:
        name = next((n for n, source in self.sources.items() if source.folder == folder), None)
        return None if name is None else self.models[name]

    def get(self, name: str | None) -> ServedModel:
        key = name or self.default
        if key in self.models:
            return self.models[key]
        if name is None:
            raise NotReady("no model is loaded; see /readyz")
        self.check_not_refused(name)
        known = ", ".join(sorted(self.models)) or "none"
        raise UnknownModel(f"no model named {name!r}; loaded models: {known}")

    def check_not_refused(self, name: str) -> None:
        """UnknownModel saying why, when the folder of that name was refused."""
        refused = next((f for f in self.failed if f.name == name), None)
        if refused is not None:
            raise UnknownModel(
                f"model {name!r} was refused at start-up or at the last reload: {refused.reason}"
            )


def load_registry(
    model_dir: Path,
    backend: Backend,
    default_model: str,
    policy: BatchPolicy | None = None,
    observers: ObserverFactory | None = None,
    previous: ModelRegistry | None = None,
) -> ModelRegistry:
    """The models of `model_dir`. With a `previous` registry (a reload), a folder whose files
    have not changed keeps its loaded model, and a folder whose new version is broken keeps its
    previous model, listed in `failed` with the reason."""
    registry = ModelRegistry()
    if not model_dir.is_dir():
        registry.failed.append(
            FailedModel(model_dir.name, f"model directory {model_dir} is missing")
        )
        log.error("model directory %s is missing", model_dir)
        return registry
    folders = sorted(p for p in model_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        reason = f"model directory {model_dir} holds no model folder"
        registry.failed.append(FailedModel(model_dir.name, reason))
        log.error("%s; export a model there or point LATENTSERVE_MODEL_DIR elsewhere", reason)
    for folder in folders:
        fingerprint = folder_fingerprint(folder)
        kept = previous.loaded_from(folder.name) if previous else None
        unchanged = kept is not None and previous.sources[kept.name].fingerprint == fingerprint
        try:
            model = kept if unchanged else load_model(folder, backend, policy, observers)
            if model.name in registry.models:
                raise BrokenModel(f"another folder already serves a model named {model.name!r}")
        except BrokenModel as exc:
            if kept is None or kept.name in registry.models:
                log.error("refusing model folder %s: %s", folder, exc)
                registry.failed.append(FailedModel(folder.name, str(exc)))
                continue
            reason = f"its new version is refused, the previous one serves on: {exc}"
            log.error("model folder %s: %s", folder, reason)
            registry.failed.append(FailedModel(folder.name, reason))
            registry.add(kept, previous.sources[kept.name])
            continue
        registry.add(model, Source(folder.name, fingerprint))
        if not unchanged:
            log.info("loaded %s from %s on %s", model.name, folder, model.device)
    registry.default = choose_default(registry, default_model)
    return registry


def folder_fingerprint(folder: Path) -> str:
    """Changes when any file of the folder is added, removed, resized or rewritten."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def choose_default(registry: ModelRegistry, wanted: str) -> str | None:
    if wanted in registry.models:
        return wanted
    fallback = next(iter(sorted(registry.models)), None)
    if fallback is not None:
        log.warning("default model %r is not loaded; using %r", wanted, fallback)
    return fallback


def load_model(
    folder: Path,
    backend: Backend,
    policy: BatchPolicy | None = None,
    observers: ObserverFactory | None = None,
) -> ServedModel:
    manifest = read_manifest(folder)
    verify_files(folder, manifest)
    check_signatures(manifest)
    try:
        encoder = backend.load(folder / f"encoder{backend.file_suffix}", manifest.encoder)
        decoder = backend.load(folder / f"decoder{backend.file_suffix}", manifest.decoder)
    except Exception as exc:  # a runtime refusing a graph names its own reason
        raise BrokenModel(f"the {backend.name} backend cannot load it: {exc}") from exc
    return ServedModel(
        manifest,
        encoder,
        decoder,
        reference_json=read_reference(folder, manifest),
        policy=policy,
        observers=observers,
    )


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST
    if not path.is_file():
        raise BrokenModel(f"no {MANIFEST}")
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'manifest'}: {e['msg']}" for e in exc.errors()[:3]
        )
        raise BrokenModel(f"invalid {MANIFEST}: {problems}") from exc


def verify_files(folder: Path, manifest: Manifest) -> None:
    for name, entry in manifest.files.items():
        problem = file_problem(folder, name, entry)
        if problem is not None:
            raise BrokenModel(problem)


def check_signatures(manifest: Manifest) -> None:
    """The graphs must follow the exported-file contract of docs/architecture.md. A decoder
    answers `image` and `logits`; one exported before decoders had logits, `image` alone (it
    serves, its Bernoulli scores computed from probabilities)."""
    label = ["label"] if manifest.conditional else []
    encoder = GraphSignature(
        inputs=["image", *label],
        outputs=["mean", "logvar"] if manifest.variational else ["latent"],
    )
    decoders = [
        GraphSignature(inputs=["latent", *label], outputs=outputs)
        for outputs in (["image", "logits"], ["image"])
    ]
    for kind, allowed in (("encoder", [encoder]), ("decoder", decoders)):
        actual: GraphSignature = getattr(manifest, kind)
        if actual not in allowed:
            raise BrokenModel(
                f"the {kind} signature {actual.inputs} -> {actual.outputs} breaks the contract "
                f"{allowed[0].inputs} -> {allowed[0].outputs}"
            )


def read_reference(folder: Path, manifest: Manifest) -> bytes | None:
    if manifest.reference is None:
        return None
    raw = (folder / manifest.reference).read_bytes()
    try:
        ReferenceSet.model_validate_json(raw)
    except ValidationError as exc:
        raise BrokenModel(
            f"invalid reference set {manifest.reference}: {exc.errors()[0]['msg']}"
        ) from exc
    return raw
