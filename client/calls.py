"""One function per endpoint: the HTTP request to send and how to read its answer.

No I/O happens here, so the sync and the async client share every line of it.
"""

from __future__ import annotations

import base64
import dataclasses
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import httpx
import numpy as np

from client.errors import LatentServeError
from client.images import NPY_MEDIA_TYPE, ImageInput, as_image_list, is_array_batch, npy_body
from client.images import upload as image_upload
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

T = TypeVar("T")
Params = list[tuple[str, str | int | float]]
ImageOutput = Literal["png", "array"]
Labels = int | Sequence[int] | None
LatentOrImage = ImageInput | Sequence[float]


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: Params = field(default_factory=list)
    json: Any = None
    content: bytes | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    retryable: bool = True  # a readiness probe wants the first answer, not a retried one

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        return http.build_request(
            self.method,
            self.path,
            params=self.params,
            json=self.json,
            content=self.content,
            files=self.files,
            headers=self.headers,
        )

    def result(self, response: httpx.Response) -> T:
        if response.is_error:
            raise LatentServeError.from_response(response)
        return self.read(response)


def _json(parse: Callable[[dict], T]) -> Callable[[httpx.Response], T]:
    return lambda response: parse(response.json())


def _npy(response: httpx.Response) -> np.ndarray:
    return np.load(io.BytesIO(response.content), allow_pickle=False)


def _common(model: str | None, output: ImageOutput | None = None) -> Params:
    params: Params = []
    if model:
        params.append(("model", model))
    if output == "array":
        params.append(("output", "array"))
    return params


def _label_params(labels: Labels) -> Params:
    if labels is None:
        return []
    values = [labels] if isinstance(labels, int) else list(labels)
    return [("label", int(value)) for value in values]


def _image_request(path: str, images, labels: Labels, params: Params, read) -> Call:
    """Same-shaped arrays go as one .npy body, anything else as multipart files."""
    items = as_image_list(images)
    if not items:
        raise ValueError("no images given")
    params = params + _label_params(labels)
    if is_array_batch(items):
        return Call(
            "POST",
            path,
            read,
            params,
            content=npy_body(items),
            headers={"Content-Type": NPY_MEDIA_TYPE},
        )
    files = [("files", image_upload(image, i)) for i, image in enumerate(items)]
    return Call("POST", path, read, params, files=files)


def encode(
    images,
    *,
    labels: Labels = None,
    sample: bool = False,
    seed: int | None = None,
    model: str | None = None,
) -> Call[Encoding]:
    params = _common(model)
    if sample:
        params.append(("sample", "true"))
    if seed is not None:
        params.append(("seed", seed))
    return _image_request("/encode", images, labels, params, _json(Encoding.from_json))


def reconstruct(
    images, *, labels: Labels = None, model: str | None = None, output: ImageOutput = "png"
) -> Call[Reconstruction]:
    params = _common(model, output)
    return _image_request("/reconstruct", images, labels, params, _json(Reconstruction.from_json))


def score(
    images,
    *,
    model: str | None = None,
    maps: bool = False,
    threshold: float | None = None,
    corrected_threshold: float | None = None,
    pixel_threshold: float | None = None,
) -> Call[Scores]:
    params = _common(model) + _score_params(threshold, corrected_threshold, pixel_threshold)
    if maps:
        params.append(("maps", "true"))
    return _image_request("/score", images, None, params, _json(Scores.from_json))


def score_maps(images, *, model: str | None = None) -> Call[np.ndarray]:
    """The per-pixel anomaly maps, float32 [N, H, W] (POST /score?maps=true as .npy)."""
    call = _image_request("/score", images, None, _common(model) + [("maps", "true")], _npy)
    return dataclasses.replace(call, headers={**call.headers, "Accept": NPY_MEDIA_TYPE})


def _score_params(*thresholds: float | None) -> Params:
    names = ("threshold", "corrected_threshold", "pixel_threshold")
    return [
        (name, value) for name, value in zip(names, thresholds, strict=True) if value is not None
    ]


def decode(
    latents, *, labels: Labels = None, model: str | None = None, output: ImageOutput = "png"
) -> Call[Decoded]:
    matrix = np.atleast_2d(np.asarray(latents, dtype=np.float32))
    body: dict[str, Any] = {"latents": matrix.tolist()}
    if labels is not None:
        body["labels"] = [labels] * len(matrix) if isinstance(labels, int) else list(labels)
    return Call("POST", "/decode", _json(Decoded.from_json), _common(model, output), json=body)


def sample(
    n: int = 1,
    *,
    seed: int | None = None,
    temperature: float | None = None,
    label: int | None = None,
    model: str | None = None,
    output: ImageOutput = "png",
) -> Call[Samples]:
    params = _common(model, output) + [("n", n)]
    if seed is not None:
        params.append(("seed", seed))
    if temperature is not None:
        params.append(("temperature", temperature))
    if label is not None:
        params.append(("label", label))
    return Call("GET", "/sample", _json(Samples.from_json), params)


def interpolate(
    start: LatentOrImage,
    end: LatentOrImage,
    *,
    steps: int = 8,
    method: Literal["linear", "spherical"] = "linear",
    label: int | None = None,
    model: str | None = None,
    output: ImageOutput = "png",
) -> Call[Interpolation]:
    """Each end is a latent vector (a flat sequence of numbers) or an image."""
    body: dict[str, Any] = {
        "start": _endpoint(start),
        "end": _endpoint(end),
        "steps": steps,
        "method": method,
    }
    if label is not None:
        body["label"] = label
    return Call(
        "POST", "/interpolate", _json(Interpolation.from_json), _common(model, output), json=body
    )


def _endpoint(value: LatentOrImage) -> dict[str, Any]:
    if _is_latent(value):
        return {"latent": np.asarray(value, dtype=np.float32).tolist()}
    _, content, _ = image_upload(value, 0)
    return {"image": _base64(content)}


def _is_latent(value: LatentOrImage) -> bool:
    if isinstance(value, np.ndarray):
        return value.ndim == 1
    return (
        isinstance(value, Sequence)
        and not isinstance(value, (str, bytes))
        and all(isinstance(v, (int, float)) for v in value)
    )


def _base64(content: bytes) -> str:
    return base64.b64encode(content).decode("ascii")


def models() -> Call[ModelList]:
    return Call("GET", "/models", _json(ModelList.from_json))


def model_info(name: str) -> Call[ModelInfo]:
    return Call("GET", f"/models/{name}", _json(ModelInfo.from_json))


def reference(name: str) -> Call[ReferenceMap]:
    return Call("GET", f"/models/{name}/reference", _json(ReferenceMap.from_json))


def healthz() -> Call[dict]:
    return Call("GET", "/healthz", _json(dict), retryable=False)


def readyz() -> Call[dict]:
    return Call("GET", "/readyz", _json(dict), retryable=False)


def metrics() -> Call[str]:
    return Call("GET", "/metrics", lambda response: response.text)
