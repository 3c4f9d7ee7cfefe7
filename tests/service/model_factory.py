"""Builds small but real model folders (ONNX + TorchScript + manifest) for the service tests.

The modules are untrained MLPs with fixed seeds: enough to exercise every code path of the
service, independent of the shipped models.
"""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch import nn

from service.models.manifest import (
    DatasetInfo,
    GraphSignature,
    Manifest,
    MixtureSampler,
    PriorSampler,
    ReferenceSet,
    hash_files,
)

IMAGE = (1, 28, 28)
OPSET = 17


class Encoder(nn.Module):
    def __init__(self, latent_dim: int, classes: int, variational: bool) -> None:
        super().__init__()
        pixels = int(np.prod(IMAGE))
        self.variational = variational
        self.body = nn.Sequential(nn.Linear(pixels + classes, 32), nn.Tanh())
        self.mean = nn.Linear(32, latent_dim)
        self.logvar = nn.Linear(32, latent_dim)

    def forward(self, image: torch.Tensor, *label: torch.Tensor):
        hidden = self.body(torch.cat([image.flatten(1), *label], dim=1))
        if self.variational:
            return self.mean(hidden), self.logvar(hidden) * 0.1
        return self.mean(hidden)


class Decoder(nn.Module):
    def __init__(self, latent_dim: int, classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(latent_dim + classes, 32), nn.Tanh(), nn.Linear(32, int(np.prod(IMAGE)))
        )

    def forward(self, latent: torch.Tensor, *label: torch.Tensor):
        return torch.sigmoid(self.body(torch.cat([latent, *label], dim=1))).view(-1, *IMAGE)


def build_model_folder(
    folder: Path,
    name: str,
    *,
    family: str = "vae",
    latent_dim: int = 4,
    classes: list[str] | None = None,
    seed: int = 0,
) -> Manifest:
    torch.manual_seed(seed)
    variational = family in ("vae", "beta_vae", "cvae")
    conditional = classes is not None
    k = len(classes or [])
    encoder = Encoder(latent_dim, k, variational).eval()
    decoder = Decoder(latent_dim, k).eval()
    label = ["label"] if conditional else []
    enc_sig = GraphSignature(
        inputs=["image", *label], outputs=["mean", "logvar"] if variational else ["latent"]
    )
    dec_sig = GraphSignature(inputs=["latent", *label], outputs=["image"])
    onehot = (torch.eye(k)[torch.arange(2) % k],) if conditional else ()
    folder.mkdir(parents=True, exist_ok=True)
    _export(encoder, (torch.rand(2, *IMAGE), *onehot), enc_sig, folder / "encoder")
    _export(decoder, (torch.randn(2, latent_dim), *onehot), dec_sig, folder / "decoder")
    (folder / "reference.json").write_text(_reference(latent_dim, k).model_dump_json())
    manifest = Manifest(
        name=name,
        description=f"test fixture: untrained {family} MLP",
        family=family,
        architecture="mlp",
        variational=variational,
        conditional=conditional,
        image={"channels": 1, "height": 28, "width": 28},
        latent_dim=latent_dim,
        classes=classes,
        encoder=enc_sig,
        decoder=dec_sig,
        files=hash_files(folder),
        onnx_opset=OPSET,
        sampler=PriorSampler() if variational else fixture_mixture(latent_dim),
        dataset=DatasetInfo(name="none", source="random weights", split={}, sizes={}),
        metrics={"test_loss": 0.0},
        training={"epochs": 0, "seed": seed},
        parity={"onnx": 0.0, "torchscript": 0.0, "tolerance": 1e-4},
        reference="reference.json",
        created=datetime.now(UTC).isoformat(),
    )
    (folder / "manifest.json").write_text(manifest.model_dump_json(indent=2))
    return manifest


def _export(module: nn.Module, args: tuple, signature: GraphSignature, stem: Path) -> None:
    batch = {name: {0: "batch"} for name in (*signature.inputs, *signature.outputs)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(
            module,
            args,
            str(stem.with_suffix(".onnx")),
            input_names=signature.inputs,
            output_names=signature.outputs,
            dynamic_axes=batch,
            opset_version=OPSET,
            dynamo=False,
        )
        torch.jit.trace(module, args).save(str(stem.with_suffix(".pt")))


def fixture_mixture(latent_dim: int) -> MixtureSampler:
    rng = np.random.default_rng(1)
    return MixtureSampler(
        weights=[0.25, 0.75],
        means=rng.normal(size=(2, latent_dim)).round(4).tolist(),
        variances=[[0.5] * latent_dim, [0.1] * latent_dim],
    )


def _reference(latent_dim: int, classes: int) -> ReferenceSet:
    rng = np.random.default_rng(2)
    components = np.eye(2, latent_dim)
    return ReferenceSet(
        projection="identity" if latent_dim == 2 else "pca",
        projection_mean=[0.0] * latent_dim,
        projection_components=components.tolist(),
        points=[tuple(p) for p in rng.normal(size=(5, 2)).round(4).tolist()],
        labels=[0, 1, 0, 1, 0],
        class_means=rng.normal(size=(classes, latent_dim)).round(4).tolist() if classes else None,
    )


def corrupt_hash(folder: Path) -> None:
    """Flip one byte of the decoder after the manifest recorded its hash."""
    path = folder / "decoder.onnx"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value))
