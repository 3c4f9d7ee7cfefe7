"""Check that the exported graphs compute what the PyTorch model computes.

The same inputs run through the PyTorch module, the saved TorchScript file and the saved ONNX
file in ONNX Runtime (CPU), at batch size 1 and at the full batch; the figure per format is
the largest absolute difference against PyTorch over every output. A non-finite output
anywhere counts as an infinite difference, so a NaN can never pass.

Pixels agreeing is not enough for the anomaly scores: a probability of 1e-30 and one of 0
are 4e-31 apart but their logarithms 100 nats. So the scores are compared too, in their own
units: encoder and decoder graphs through `service.scores` against PyTorch's own binary
cross-entropy with logits (and KL), in float64.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn
from torch.nn import functional as F

from service.models import scores
from training.graphs import ExportError, Signature, load_torchscript

DEFAULT_TOLERANCE = 1e-4
SCORE_TOLERANCE = 1e-2  # nats (or squared error): the scores' largest difference allowed


class ParityError(ExportError):
    """The exported graphs disagree with the PyTorch model beyond the tolerance."""


@dataclass(frozen=True)
class Parity:
    torchscript: float
    onnx: float
    tolerance: float
    score_torchscript: float = 0.0
    score_onnx: float = 0.0
    score_tolerance: float = SCORE_TOLERANCE

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def graph_parity(
    module: nn.Module,
    torchscript_path: Path,
    onnx_path: Path,
    inputs: Sequence[torch.Tensor],
    input_names: Sequence[str],
) -> tuple[float, float]:
    """Largest |difference| against `module` for the TorchScript and the ONNX graph."""
    scripted = load_torchscript(torchscript_path)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst_ts = worst_onnx = 0.0
    for batch in _batches(inputs):
        with torch.no_grad():
            reference = _as_arrays(module(*batch))
            traced = _as_arrays(_run("TorchScript", len(batch[0]), scripted, *batch))
        feeds = {name: t.numpy() for name, t in zip(input_names, batch, strict=True)}
        onnx_out = _run("ONNX Runtime", len(batch[0]), session.run, None, feeds)
        worst_ts = max(worst_ts, _largest_difference(reference, traced))
        worst_onnx = max(worst_onnx, _largest_difference(reference, onnx_out))
    return worst_ts, worst_onnx


def score_parity(
    model: nn.Module,
    folder: Path,
    signatures: dict[str, Signature],
    images: torch.Tensor,
    onehot: torch.Tensor | None,
    reconstruction: str,
) -> tuple[float, float]:
    """Largest |score difference| against PyTorch for the TorchScript and the ONNX graphs of
    `folder` (signatures by graph): the plain anomaly score of `images` under their labels."""
    reference = _torch_scores(model, images, onehot, reconstruction)
    labels = {} if onehot is None else {"label": onehot.numpy()}
    figures = []
    for suffix in (".pt", ".onnx"):
        encoder, decoder = (
            _graph_runner(folder / f"{part}{suffix}", signatures[part])
            for part in ("encoder", "decoder")
        )
        encoded = encoder({"image": images.numpy(), **labels})
        mean = encoded.get("mean", encoded.get("latent"))
        decoded = decoder({"latent": mean, **labels})
        with np.errstate(invalid="ignore"):  # a NaN output is an infinite difference below
            values = scores.compute(
                "neg_elbo" if model.variational else "reconstruction",
                images.numpy(),
                decoded["image"],
                mean,
                encoded.get("logvar"),
                reconstruction,
                logits=decoded.get("logits"),
            )
        figures.append(_largest_difference([reference], [values]))
    return figures[0], figures[1]


def _torch_scores(
    model: nn.Module, images: torch.Tensor, onehot: torch.Tensor | None, reconstruction: str
) -> np.ndarray:
    with torch.no_grad():
        encoded = model.encoder(images, onehot)
        mean, logvar = encoded if model.variational else (encoded, None)
        logits = model.decoder.logits(mean, onehot).double().flatten(1)
        target = images.double().flatten(1)
        if reconstruction == "mse":
            values = ((torch.sigmoid(logits) - target) ** 2).sum(1)
        else:
            values = F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(1)
        if logvar is not None:
            mean, logvar = mean.double(), logvar.double()
            values = values + 0.5 * (mean**2 + logvar.exp() - 1 - logvar).sum(1)
    return values.numpy()


def _graph_runner(path: Path, signature: Signature):
    """A saved graph as a function from named float32 arrays to named arrays."""
    if path.suffix == ".onnx":
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda feeds: dict(
            zip(signature.outputs, session.run(list(signature.outputs), feeds), strict=True)
        )
    scripted = load_torchscript(path)

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.no_grad():
            outputs = scripted(*(torch.from_numpy(feeds[name]) for name in signature.inputs))
        return dict(zip(signature.outputs, _as_arrays(outputs), strict=True))

    return run


def require_parity(
    figures: dict[str, tuple[float, float]],
    tolerance: float,
    score_figures: tuple[float, float] = (0.0, 0.0),
    score_tolerance: float = SCORE_TOLERANCE,
) -> Parity:
    """Combine per-graph figures ({"encoder": (ts, onnx), ...}) and the scores' (ts, onnx);
    raise when any exceeds its tolerance."""
    worst_ts = max(ts for ts, _ in figures.values())
    worst_onnx = max(ox for _, ox in figures.values())
    checks = [(graph, pair, tolerance, "") for graph, pair in figures.items()]
    checks.append(("anomaly score", score_figures, score_tolerance, " (score units)"))
    failures = [
        f"{graph} {fmt}: {value:.3g}{unit}"
        for graph, pair, limit, unit in checks
        for fmt, value in zip(("TorchScript", "ONNX"), pair, strict=True)
        if not value <= limit
    ]
    if failures:
        raise ParityError(
            f"exported graphs differ from PyTorch by more than the tolerance {tolerance:g} "
            f"(scores: {score_tolerance:g}; largest absolute difference; inf means a "
            f"non-finite output): " + "; ".join(failures)
        )
    return Parity(
        torchscript=worst_ts,
        onnx=worst_onnx,
        tolerance=tolerance,
        score_torchscript=score_figures[0],
        score_onnx=score_figures[1],
        score_tolerance=score_tolerance,
    )


def _run(runtime: str, batch_size: int, call, *args):
    try:
        return call(*args)
    except Exception as error:  # any failure of an exported graph is a refusal, not a crash
        message = f"the {runtime} graph fails on a batch of {batch_size}: {error}"
        raise ParityError(message) from error


def _batches(inputs: Sequence[torch.Tensor]) -> list[tuple[torch.Tensor, ...]]:
    """One single-item batch and the full batch, so a batch size baked in anywhere shows."""
    full = tuple(t.contiguous() for t in inputs)
    return [tuple(t[:1] for t in full), full]


def _as_arrays(outputs) -> list[np.ndarray]:
    if isinstance(outputs, torch.Tensor):
        outputs = (outputs,)
    return [o.detach().cpu().numpy() for o in outputs]


def _largest_difference(expected: list[np.ndarray], actual: list[np.ndarray]) -> float:
    if len(expected) != len(actual):
        return math.inf
    worst = 0.0
    for a, b in zip(expected, actual, strict=True):
        if a.shape != b.shape or not (np.isfinite(a).all() and np.isfinite(b).all()):
            return math.inf
        worst = max(worst, float(np.max(np.abs(a - b), initial=0.0)))
    return worst
