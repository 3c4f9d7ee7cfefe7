"""Inference backends behind one interface; torch is imported only for TorchScript."""

from __future__ import annotations

from service.core.settings import Settings
from service.models.backends.base import Backend, BackendUnavailable, Graph

__all__ = ["Backend", "BackendUnavailable", "Graph", "create_backend"]


def create_backend(settings: Settings) -> Backend:
    """The configured backend; raises BackendUnavailable when its device cannot be had."""
    if settings.backend == "torchscript":
        from service.models.backends.torchscript import TorchScriptBackend

        return TorchScriptBackend(
            settings.torch_device,
            require_cuda=settings.require_cuda,
            threads=settings.intra_op_threads,
        )
    from service.models.backends.onnx import OnnxBackend

    return OnnxBackend(
        settings.providers,
        require_cuda=settings.require_cuda,
        intra_op_threads=settings.intra_op_threads,
        inter_op_threads=settings.inter_op_threads,
    )
