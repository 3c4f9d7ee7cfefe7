"""Schemathesis hooks (loaded by `schemathesis run` through SCHEMATHESIS_HOOKS): real images.

A JSON Schema says "a PNG" only as an annotation (`contentMediaType`), and a fuzzer left alone
sends random bytes under that name: every request would stop at the image decoder. These
strategies draw real encoded images and arrays, of any size and mode the service must read,
so that generated requests reach the models.
"""

from __future__ import annotations

import base64
import io
import os
import zlib
from pathlib import Path

import numpy as np
import schemathesis
from hypothesis import strategies as st
from PIL import Image

from service.core.settings import Settings
from service.models.manifest import Manifest
from tests.conftest import EXPORTED_MODELS

MODES = ("L", "RGB", "RGBA", "LA", "P", "I;16", "1")


@st.composite
def pixels(draw: st.DrawFn) -> Image.Image:
    """A picture of 1..40 x 1..40 pixels in one of Pillow's modes, from drawn bytes."""
    width, height = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    channels = draw(st.sampled_from((1, 3, 4)))
    fill = draw(st.binary(min_size=1, max_size=64))
    data = np.resize(np.frombuffer(fill, np.uint8), (height, width, channels))
    picture = Image.fromarray(data.squeeze(-1) if channels == 1 else data)
    return picture.convert(draw(st.sampled_from(MODES)))


def encoded(picture: Image.Image, kind: str) -> bytes:
    buffer = io.BytesIO()
    if kind == "JPEG":
        picture = picture.convert("L" if picture.mode in ("L", "1", "I;16") else "RGB")
    picture.save(buffer, format=kind)
    return buffer.getvalue()


# Image batches [N,C,H,W] / [N,H,W] / [H,W] for /encode and /reconstruct, and latent batches
# [N, latent_dim] (the shipped models' dimensions) for /decode.
NPY_SHAPES = [(28, 28), (1, 28, 28), (2, 1, 28, 28), (3, 3, 28, 28), (1, 5, 5)] + [
    (rows, dim) for rows in (1, 3) for dim in (2, 4, 16, 20, 32)
]


@st.composite
def npy_arrays(draw: st.DrawFn) -> bytes:
    """An .npy array of one of NPY_SHAPES, uint8 or float in [0, 1]."""
    shape = draw(st.sampled_from(NPY_SHAPES))
    dtype = draw(st.sampled_from((np.uint8, np.float32, np.float64)))
    seed = draw(st.integers(0, 2**32 - 1))
    values = np.random.default_rng(seed).random(shape)
    array = (values * 255).astype(np.uint8) if dtype is np.uint8 else values.astype(dtype)
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


schemathesis.openapi.media_type("image/png", pixels().map(lambda p: encoded(p, "PNG")))
schemathesis.openapi.media_type("image/jpeg", pixels().map(lambda p: encoded(p, "JPEG")))
schemathesis.openapi.media_type("application/x-npy", npy_arrays())


# ---- positive cases fitted to the model they name -------------------------------------------
# What a model accepts depends on the model a request names: the latent size, the classes of a
# conditional model, whether it is variational. OpenAPI cannot tie a body to a query parameter,
# so the document states the union over the loaded models; a positive case is fitted here to the
# model it names, so that it reaches the model rather than the 422 for a mismatch. Negative
# cases are left as generated.

MODEL_DIR = Path(os.environ.get("LATENTSERVE_MODEL_DIR", EXPORTED_MODELS))
MANIFESTS = {
    path.parent.name: Manifest.model_validate_json(path.read_text())
    for path in MODEL_DIR.glob("*/manifest.json")
}
DEFAULT_MODEL = Settings().default_model
MODEL_ROUTES = ("/encode", "/reconstruct", "/decode", "/interpolate", "/sample", "/score")
V2_INFER = ("/v2/models/{model}/infer", "/v2/models/{model}/versions/{version}/infer")


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
    if case.meta is None or case.meta.generation.mode.is_negative:
        return case
    if any(component.mode.is_negative for component in case.meta.components.values()):
        return case
    if not isinstance(case.query, dict):
        case.query = {}
    query = case.query
    if case.path in V2_INFER:
        _fit_v2_request(case)
        return case
    manifest = MANIFESTS.get(query.get("model") or DEFAULT_MODEL)
    if manifest is None or case.path not in MODEL_ROUTES:
        return case
    body = case.body if isinstance(case.body, dict) else {}
    count = _inputs(case.path, body)
    if "label" in query:
        query["label"] = _labels(query["label"], manifest, count)
    if "labels" in body:
        body["labels"] = _labels(body["labels"], manifest, count)
    if "label" in body:
        body["label"] = _labels(body["label"], manifest, count)
    given = any(body.get(key) is not None for key in ("label", "labels"))
    takes_labels = case.path not in ("/sample", "/score")  # these do without
    if manifest.conditional and takes_labels and not given and "label" not in query:
        query["label"] = 0 if case.path == "/interpolate" else [0]
    for key in [key for key in ("label", "labels") if key in query and query[key] is None]:
        del query[key]
    for key in [key for key in ("label", "labels") if key in body and body[key] is None]:
        del body[key]
    if not manifest.variational:
        query.pop("sample", None)
        body.pop("sample", None)
    _fit_images_and_latents(body, manifest)
    return case


def _inputs(path: str, body: dict) -> int:
    if path == "/decode":
        return len(body.get("latents") or [0])
    if path == "/interpolate":
        return 1
    return len(body.get("images") or [0])


def _labels(labels: int | list[int] | None, manifest: Manifest, count: int):
    """Labels in the model's classes, one or one per input; none for other models."""
    if not manifest.conditional:
        return None
    single = not isinstance(labels, list)
    values = [labels] if single else list(labels)
    values = [value % manifest.num_classes for value in values if isinstance(value, int)] or [0]
    if single:
        return values[0]
    return values if len(values) == count else values[:1]


def _fit_images_and_latents(body: dict, manifest: Manifest) -> None:
    if isinstance(body.get("latents"), list):
        body["latents"] = [_resized(vector, manifest.latent_dim) for vector in body["latents"]]
    if isinstance(body.get("images"), list):
        body["images"] = [_image(item) for item in body["images"]]
    for end in (body.get("start"), body.get("end")):
        if isinstance(end, dict) and isinstance(end.get("latent"), list):
            end["latent"] = _resized(end["latent"], manifest.latent_dim)
        if isinstance(end, dict) and isinstance(end.get("image"), str):
            end["image"] = _image(end["image"])


def _resized(vector: list, size: int) -> list:
    return (list(vector) * size)[:size] if vector else [0.0] * size


def _image(item):
    """A base64 PNG drawn from the generated string (so still varied); other items as they are."""
    if not isinstance(item, str):
        return item
    rng = np.random.default_rng(zlib.crc32(item.encode()))
    height, width = (28, 28) if rng.random() < 0.7 else rng.integers(1, 40, size=2)
    picture = Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8))
    return base64.b64encode(encoded(picture, "PNG")).decode("ascii")


def _fit_v2_request(case: schemathesis.Case) -> None:
    """A V2 infer body with the named graph's own tensors (names, shapes, FP32 values in its
    range), a few rows as generated; requested outputs kept where they name real outputs."""
    name = str((case.path_parameters or {}).get("model", ""))
    model, _, kind = name.rpartition("-")
    manifest = MANIFESTS.get(model)
    if manifest is None or kind not in ("encoder", "decoder") or not isinstance(case.body, dict):
        return
    body = case.body
    generated = body.get("inputs") if isinstance(body.get("inputs"), list) else []
    rows = min(max(len(generated), 1), 3)
    rng = np.random.default_rng(zlib.crc32(repr(generated).encode()))
    signature = manifest.encoder if kind == "encoder" else manifest.decoder
    first = (*manifest.image.shape,) if kind == "encoder" else (manifest.latent_dim,)
    tensors = {signature.inputs[0]: rng.random((rows, *first))}
    if manifest.conditional:
        tensors["label"] = np.eye(manifest.num_classes)[rng.integers(0, manifest.num_classes, rows)]
    body["inputs"] = [
        {
            "name": key,
            "shape": list(array.shape),
            "datatype": "FP32",
            "data": array.ravel().tolist(),
        }
        for key, array in tensors.items()
    ]
    if isinstance(body.get("outputs"), list):
        body["outputs"] = [
            output
            for output in body["outputs"]
            if isinstance(output, dict) and output.get("name") in signature.outputs
        ] or [{"name": signature.outputs[0]}]
    if not isinstance(body.get("parameters"), dict):
        body.pop("parameters", None)
    else:
        body["parameters"] = {
            key: value
            for key, value in body["parameters"].items()
            if key == "binary_data_output" and isinstance(value, bool)
        }
