"""`Client` and `AsyncClient`: send the calls of `client.calls` with timeouts and retries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Literal, TypeVar

import httpx
import numpy as np

from client import calls
from client.calls import Call, ImageOutput, Labels, LatentOrImage
from client.errors import ConnectionFailed
from client.images import ImageInput
from client.results import (
    Decoded,
    Encoding,
    Interpolation,
    ModelInfo,
    ModelList,
    Reconstruction,
    ReferenceMap,
    Samples,
    Scores,
)
from client.retry import NO_RETRY, RetryPolicy

T = TypeVar("T")
Images = ImageInput | Sequence[ImageInput]
Method = Literal["linear", "spherical"]

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
DEFAULT_RETRY = RetryPolicy()


def with_key(headers: dict[str, str] | None, api_key: str | None) -> dict[str, str]:
    """The headers plus `Authorization: Bearer <api_key>` when a key is given."""
    if not api_key:
        return dict(headers or {})
    return {**(headers or {}), "Authorization": f"Bearer {api_key}"}


class Client:
    """A blocking client for every latentserve endpoint.

    `model` given here is used by every call that names none (else the server's default).
    `api_key` is sent as `Authorization: Bearer <key>` to servers that require keys.
    Errors raise `LatentServeError` with the server's status, title and detail; no answer at
    all (nothing listening, a timeout) raises its subclass `ConnectionFailed`.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        model: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        headers: dict[str, str] | None = None,
        api_key: str | None = None,
    ) -> None:
        self.model = model
        self.retry = retry
        self._http = httpx.Client(
            base_url=base_url, timeout=timeout, headers=with_key(headers, api_key)
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def encode(
        self,
        images: Images,
        *,
        labels: Labels = None,
        sample: bool = False,
        seed: int | None = None,
        model: str | None = None,
    ) -> Encoding:
        return self._send(
            calls.encode(images, labels=labels, sample=sample, seed=seed, model=model or self.model)
        )

    def decode(
        self,
        latents,
        *,
        labels: Labels = None,
        model: str | None = None,
        output: ImageOutput = "png",
    ) -> Decoded:
        return self._send(
            calls.decode(latents, labels=labels, model=model or self.model, output=output)
        )

    def sample(
        self,
        n: int = 1,
        *,
        seed: int | None = None,
        temperature: float | None = None,
        label: int | None = None,
        model: str | None = None,
        output: ImageOutput = "png",
    ) -> Samples:
        return self._send(
            calls.sample(
                n,
                seed=seed,
                temperature=temperature,
                label=label,
                model=model or self.model,
                output=output,
            )
        )

    def interpolate(
        self,
        start: LatentOrImage,
        end: LatentOrImage,
        *,
        steps: int = 8,
        method: Method = "linear",
        label: int | None = None,
        model: str | None = None,
        output: ImageOutput = "png",
    ) -> Interpolation:
        return self._send(
            calls.interpolate(
                start,
                end,
                steps=steps,
                method=method,
                label=label,
                model=model or self.model,
                output=output,
            )
        )

    def reconstruct(
        self,
        images: Images,
        *,
        labels: Labels = None,
        model: str | None = None,
        output: ImageOutput = "png",
    ) -> Reconstruction:
        return self._send(
            calls.reconstruct(images, labels=labels, model=model or self.model, output=output)
        )

    def score(
        self, images: Images, *, model: str | None = None, maps: bool = False, **thresholds
    ) -> Scores:
        """Anomaly scores of the images, their percentiles and verdicts (POST /score); with
        `maps`, heatmaps and pixel thresholds too. `threshold=`, `corrected_threshold=` and
        `pixel_threshold=` override the calibrated ones."""
        return self._send(calls.score(images, model=model or self.model, maps=maps, **thresholds))

    def score_maps(self, images: Images, *, model: str | None = None) -> np.ndarray:
        """Where each image is anomalous: float32 per-pixel maps [N, H, W] (POST /score)."""
        return self._send(calls.score_maps(images, model=model or self.model))

    def models(self) -> ModelList:
        return self._send(calls.models())

    def model_info(self, name: str) -> ModelInfo:
        return self._send(calls.model_info(name))

    def reference(self, name: str) -> ReferenceMap:
        return self._send(calls.reference(name))

    def healthz(self) -> dict:
        return self._send(calls.healthz())

    def readyz(self) -> dict:
        return self._send(calls.readyz())

    def metrics(self) -> str:
        return self._send(calls.metrics())

    def _send(self, call: Call[T]) -> T:
        policy = self.retry if call.retryable else NO_RETRY
        attempt = 0
        while True:
            try:
                response = self._http.send(call.request(self._http))
            except httpx.TransportError as error:
                delay = policy.delay_after_error(attempt)
                if delay is None:
                    raise ConnectionFailed.from_transport(
                        error, str(self._http.base_url)
                    ) from error
            else:
                delay = policy.delay_after_response(attempt, response)
                if delay is None:
                    return call.result(response)
            time.sleep(delay)
            attempt += 1


class AsyncClient:
    """The asyncio twin of `Client`: the same methods, awaited."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        model: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        headers: dict[str, str] | None = None,
        max_connections: int = 100,
        api_key: str | None = None,
    ) -> None:
        self.model = model
        self.retry = retry
        limits = httpx.Limits(max_connections=max_connections)
        self._http = httpx.AsyncClient(
            base_url=base_url, timeout=timeout, headers=with_key(headers, api_key), limits=limits
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def encode(
        self,
        images: Images,
        *,
        labels: Labels = None,
        sample: bool = False,
        seed: int | None = None,
        model: str | None = None,
    ) -> Encoding:
        return await self._send(
            calls.encode(images, labels=labels, sample=sample, seed=seed, model=model or self.model)
        )

    async def decode(
        self,
        latents,
        *,
        labels: Labels = None,
        model: str | None = None,
        output: ImageOutput = "png",
    ) -> Decoded:
        return await self._send(
            calls.decode(latents, labels=labels, model=model or self.model, output=output)
        )

    async def sample(
        self,
        n: int = 1,
        *,
        seed: int | None = None,
        temperature: float | None = None,
        label: int | None = None,
        model: str | None = None,
        output: ImageOutput = "png",
    ) -> Samples:
        return await self._send(
            calls.sample(
                n,
                seed=seed,
                temperature=temperature,
                label=label,
                model=model or self.model,
                output=output,
            )
        )

    async def interpolate(
        self,
        start: LatentOrImage,
        end: LatentOrImage,
        *,
        steps: int = 8,
        method: Method = "linear",
        label: int | None = None,
        model: str | None = None,
        output: ImageOutput = "png",
    ) -> Interpolation:
        return await self._send(
            calls.interpolate(
                start,
                end,
                steps=steps,
                method=method,
                label=label,
                model=model or self.model,
                output=output,
            )
        )

    async def reconstruct(
        self,
        images: Images,
        *,
        labels: Labels = None,
        model: str | None = None,
        output: ImageOutput = "png",
    ) -> Reconstruction:
        return await self._send(
            calls.reconstruct(images, labels=labels, model=model or self.model, output=output)
        )

    async def score(
        self, images: Images, *, model: str | None = None, maps: bool = False, **thresholds
    ) -> Scores:
        """Anomaly scores of the images (see Client.score)."""
        return await self._send(
            calls.score(images, model=model or self.model, maps=maps, **thresholds)
        )

    async def score_maps(self, images: Images, *, model: str | None = None) -> np.ndarray:
        """Per-pixel anomaly maps [N, H, W] (see Client.score_maps)."""
        return await self._send(calls.score_maps(images, model=model or self.model))

    async def models(self) -> ModelList:
        return await self._send(calls.models())

    async def model_info(self, name: str) -> ModelInfo:
        return await self._send(calls.model_info(name))

    async def reference(self, name: str) -> ReferenceMap:
        return await self._send(calls.reference(name))

    async def healthz(self) -> dict:
        return await self._send(calls.healthz())

    async def readyz(self) -> dict:
        return await self._send(calls.readyz())

    async def metrics(self) -> str:
        return await self._send(calls.metrics())

    async def _send(self, call: Call[T]) -> T:
        policy = self.retry if call.retryable else NO_RETRY
        attempt = 0
        while True:
            try:
                response = await self._http.send(call.request(self._http))
            except httpx.TransportError as error:
                delay = policy.delay_after_error(attempt)
                if delay is None:
                    raise ConnectionFailed.from_transport(
                        error, str(self._http.base_url)
                    ) from error
            else:
                delay = policy.delay_after_response(attempt, response)
                if delay is None:
                    return call.result(response)
            await asyncio.sleep(delay)
            attempt += 1
