"""Python client for latentserve: `Client` (blocking), `AsyncClient`, and the batch CLI."""

from client.api import AsyncClient, Client
from client.errors import ConnectionFailed, LatentServeError
from client.results import (
    Decoded,
    Encoding,
    ImageBatch,
    Interpolation,
    ModelInfo,
    ModelList,
    Reconstruction,
    ReferenceMap,
    Samples,
    ScoreResult,
    Scores,
)
from client.retry import RetryPolicy

__all__ = [
    "AsyncClient",
    "Client",
    "ConnectionFailed",
    "Decoded",
    "Encoding",
    "ImageBatch",
    "Interpolation",
    "LatentServeError",
    "ModelInfo",
    "ModelList",
    "Reconstruction",
    "ReferenceMap",
    "RetryPolicy",
    "Samples",
    "ScoreResult",
    "Scores",
]
