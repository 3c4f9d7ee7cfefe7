"""Check that the exported graphs compute what the PyTorch model computes.

The same inputs run through the PyTorch module, the saved TorchScript file and the saved ONNX
file in ONNX Runtime (CPU), at batch size 1 and at the full batch; the figure per format is
the largest absolute difference against PyTorch over every output. A non-finite output
anywhere counts as an infinite difference, so a NaN can never pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from training.graphs import ExportError, load_torchscript

DEFAULT_TOLERANCE = 1e-4


class ParityError(ExportError):
    """The exported graphs disagree with the PyTorch model beyond the tolerance."""


@dataclass(frozen=True)
class Parity:
    torchscript: float
    onnx: float
    tolerance: float

    def as_dict(self) -> dict[str, float]:
        return {"torchscript": self.torchscript, "onnx": self.onnx, "tolerance": self.tolerance}


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


def require_parity(figures: dict[str, tuple[float, float]], tolerance: float) -> Parity:
    """Combine per-graph figures ({"encoder": (ts, onnx), ...}); raise when any exceeds."""
    worst_ts = max(ts for ts, _ in figures.values())
    worst_onnx = max(ox for _, ox in figures.values())
    failures = [
        f"{graph} {fmt}: {value:.3g}"
        for graph, pair in figures.items()
        for fmt, value in zip(("TorchScript", "ONNX"), pair, strict=True)
        if not value <= tolerance
    ]
    if failures:
        raise ParityError(
            f"exported graphs differ from PyTorch by more than the tolerance {tolerance:g} "
            f"(largest absolute difference; inf means a non-finite output): " + "; ".join(failures)
        )
    return Parity(torchscript=worst_ts, onnx=worst_onnx, tolerance=tolerance)


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
