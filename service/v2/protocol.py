"""The inference messages of the Open Inference Protocol (KServe V2 REST): read a request into
named float32 arrays, write the outputs back; plus the JSON schemas the OpenAPI document shows.

Tensor data travels as JSON (`data`, flat or nested, row-major) or, with the binary tensor data
extension, as raw little-endian bytes after the JSON header: each such input states its
`binary_data_size`, the `Inference-Header-Content-Length` header gives the header's length, and
the inputs' bytes follow in the order the inputs are listed. Outputs are answered the same way,
as JSON unless `binary_data` (per output) or `binary_data_output` (per request) asks for bytes.

The graphs take float32: FP32 is read as it is, FP16 widens exactly and FP64 narrows (a value
float32 cannot hold becomes infinite and is refused later as not finite). Integer, BOOL and
BYTES tensors are refused: what an integer pixel or a string would mean is not the protocol's
to say, and the domain routes already read images.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import orjson
from pydantic import BaseModel, Field
from starlette.responses import Response

from service.models.oip import UNSUPPORTED, BadRequest, check_outputs

HEADER_LENGTH = "Inference-Header-Content-Length"
DATATYPES = {"FP32": np.dtype("<f4"), "FP16": np.dtype("<f2"), "FP64": np.dtype("<f8")}

Parameters = dict[str, Any]
_NAN = re.compile(rb"\bNaN\b|\bInfinity\b")  # what JSON encoders write when told to allow them


__all__ = ["BadRequest", "InferRequest", "read_request", "write_response"]


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    inputs: dict[str, np.ndarray]  # float32, in the shapes the request gave
    outputs: list[tuple[str, bool | None]] | None  # (name, binary_data) asked for; None: all
    binary_output: bool  # `binary_data_output`: the default for every output

    def output_plan(self, available: Sequence[str]) -> list[tuple[str, bool]]:
        """The outputs to answer, in order, each with whether it goes as binary data."""
        if self.outputs is None:
            return [(name, self.binary_output) for name in available]
        check_outputs("", available, [name for name, _ in self.outputs])
        return [(name, self.binary_output if b is None else b) for name, b in self.outputs]


def read_request(body: bytes, header_length: str | None) -> InferRequest:
    header, tail = _split(memoryview(body), header_length)
    try:
        message = orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            f"the inference request is not valid JSON: {exc}{_hint(header, header_length)}"
        ) from exc
    if not isinstance(message, dict):
        raise BadRequest("the inference request must be a JSON object")
    request_id = message.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest("`id` must be a string")
    parameters = _parameters(message, "the request")
    items = message.get("inputs")
    if not isinstance(items, list) or not items:
        raise BadRequest("`inputs` must be a non-empty list of tensors")
    inputs: dict[str, np.ndarray] = {}
    offset = 0
    for item in items:
        name, array, offset = _read_input(item, tail, offset)
        if name in inputs:
            raise BadRequest(f"input {name!r} is given twice")
        inputs[name] = array
    if offset != len(tail):
        raise BadRequest(
            f"{len(tail)} bytes follow the JSON header but the inputs' binary_data_size add up "
            f"to {offset}"
        )
    return InferRequest(
        request_id,
        inputs,
        _requested_outputs(message.get("outputs")),
        _flag(parameters, "binary_data_output", "the request") or False,
    )


def _hint(header: memoryview, header_length: str | None) -> str:
    if _NAN.search(header):
        return "; NaN and Infinity are not JSON, and values must be finite"
    if header_length is None and b"binary_data_size" in header.tobytes():
        return f"; binary tensor data after the JSON needs the {HEADER_LENGTH} header"
    return ""


def _split(body: memoryview, header_length: str | None) -> tuple[memoryview, memoryview]:
    """The JSON header and the binary data after it."""
    if header_length is None:
        return body, body[len(body) :]
    try:
        length = int(header_length)
    except ValueError:
        length = -1
    if not 0 < length <= len(body):
        raise BadRequest(
            f"{HEADER_LENGTH} must be a byte count from 1 to the body's {len(body)}; "
            f"got {header_length!r}"
        )
    return body[:length], body[length:]


def _read_input(item: object, tail: memoryview, offset: int) -> tuple[str, np.ndarray, int]:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise BadRequest("each input must be an object with a name, a shape and a datatype")
    name = item["name"]
    shape = item.get("shape")
    if not isinstance(shape, list) or not all(_natural(d) for d in shape):
        raise BadRequest(f"input {name!r}: shape must be a list of non-negative integers")
    datatype = item.get("datatype")
    dtype = DATATYPES.get(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        raise BadRequest(
            f"input {name!r} is {datatype}; this server reads FP32 (FP16 and FP64 are converted)"
        )
    count = math.prod(shape)
    size = _parameters(item, f"input {name!r}").get("binary_data_size")
    if size is None:
        array = _from_json(item.get("data"), name, count)
    else:
        if "data" in item:
            raise BadRequest(f"input {name!r} has both data and binary_data_size; give one")
        if size != count * dtype.itemsize:
            raise BadRequest(
                f"input {name!r}: binary_data_size is {size} bytes; shape {shape} of {datatype} "
                f"takes {count * dtype.itemsize}"
            )
        if offset + size > len(tail):
            raise BadRequest(f"the body ends inside input {name!r}'s binary data")
        array = np.frombuffer(tail, dtype, count, offset)
        offset += size
    return name, array.astype(np.float32).reshape(shape), offset


def _from_json(data: object, name: str, count: int) -> np.ndarray:
    if data is None:
        raise BadRequest(f"input {name!r} has no data (and no binary_data_size)")
    try:
        array = np.asarray(data, dtype=np.float32)
    except (ValueError, TypeError, OverflowError) as exc:
        raise BadRequest(f"input {name!r}: data must be a (nested) list of numbers") from exc
    if array.size != count:
        raise BadRequest(f"input {name!r}: its shape holds {count} values; data has {array.size}")
    return array


def _natural(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _parameters(owner: dict, what: str) -> Parameters:
    parameters = owner.get("parameters")
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise BadRequest(f"the parameters of {what} must be an object")
    for key, value in parameters.items():
        if not isinstance(value, str | int | float):  # bool is an int
            raise BadRequest(f"{what}: parameter {key!r} must be a string, a number or a boolean")
    for key, reason in UNSUPPORTED.items():
        if key in parameters:
            raise BadRequest(f"{what}: {reason}")
    size = parameters.get("binary_data_size")
    if size is not None and not _natural(size):
        raise BadRequest(f"{what}: binary_data_size must be a non-negative integer")
    return parameters


def _flag(parameters: Parameters, key: str, what: str) -> bool | None:
    value = parameters.get(key)
    if value is not None and not isinstance(value, bool):
        raise BadRequest(f"{what}: {key} must be true or false")
    return value


def _requested_outputs(items: object) -> list[tuple[str, bool | None]] | None:
    if items is None:
        return None
    if not isinstance(items, list):
        raise BadRequest("`outputs` must be a list of objects with a name")
    requested = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BadRequest("`outputs` must be a list of objects with a name")
        what = f"output {item['name']!r}"
        requested.append((item["name"], _flag(_parameters(item, what), "binary_data", what)))
    return requested


def write_response(
    model: str,
    version: str,
    request_id: str | None,
    arrays: dict[str, np.ndarray],
    plan: list[tuple[str, bool]],
) -> Response:
    """The outputs of `plan` as JSON data or binary data after the JSON header."""
    outputs = []
    blobs = []
    for name, binary in plan:
        array = np.ascontiguousarray(arrays[name], dtype=np.float32)
        output: dict[str, Any] = {"name": name, "datatype": "FP32", "shape": list(array.shape)}
        if binary:
            blobs.append(array.tobytes())
            output["parameters"] = {"binary_data_size": array.nbytes}
        else:
            output["data"] = array.reshape(-1)
        outputs.append(output)
    message: dict[str, Any] = {"model_name": model, "model_version": version}
    if request_id is not None:
        message["id"] = request_id
    message["outputs"] = outputs
    header = orjson.dumps(message, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return Response(header, media_type="application/json")
    return Response(
        b"".join([header, *blobs]),
        media_type="application/octet-stream",
        headers={HEADER_LENGTH: str(len(header))},
    )


# ---- schemas of the OpenAPI document (the handlers read and write the bytes themselves) --------

ParameterValue = str | int | float | bool


class V2Error(BaseModel):
    error: str = Field(description="What went wrong, for a person to act on.")


class V2ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class V2TensorMetadata(BaseModel):
    name: str
    datatype: str = Field(examples=["FP32"])
    shape: list[int] = Field(description="-1 for the batch axis.")


class V2ModelMetadata(BaseModel):
    name: str = Field(examples=["mnist-vae-encoder"])
    versions: list[str]
    platform: str = Field(examples=["onnxruntime_onnx"])
    inputs: list[V2TensorMetadata]
    outputs: list[V2TensorMetadata]


class V2RequestInput(BaseModel):
    name: str
    shape: list[int]
    datatype: Literal["FP32", "FP16", "FP64"] = Field(
        description="FP32 (FP16 and FP64 are converted to it)."
    )
    parameters: dict[str, ParameterValue] | None = Field(
        None, description="`binary_data_size`: the input's bytes follow the JSON header."
    )
    data: list[Any] | None = Field(None, description="Row-major values, flat or nested.")


class V2RequestOutput(BaseModel):
    name: str
    parameters: dict[str, ParameterValue] | None = Field(
        None, description="`binary_data`: answer this output as bytes after the JSON header."
    )


class V2InferenceRequest(BaseModel):
    id: str | None = Field(None, description="Echoed in the response.")
    parameters: dict[str, ParameterValue] | None = Field(
        None, description="`binary_data_output`: answer every output as binary data."
    )
    inputs: list[V2RequestInput]
    outputs: list[V2RequestOutput] | None = Field(None, description="Default: every output.")


class V2ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, ParameterValue] | None = None
    data: list[float] | None = None


class V2InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[V2ResponseOutput]


class V2ServerLive(BaseModel):
    live: bool


class V2ServerReady(BaseModel):
    ready: bool


class V2ModelReady(BaseModel):
    name: str
    ready: bool


class V2ConfigTensor(BaseModel):
    name: str
    data_type: str = Field(examples=["TYPE_FP32"])
    dims: list[int] = Field(description="The shape of one batch item (no batch axis).")


class V2ModelConfig(BaseModel):
    """Triton's model configuration, as JSON (the fields this server states)."""

    name: str
    platform: str
    backend: str
    max_batch_size: int = Field(description="The most batch items one request may carry.")
    input: list[V2ConfigTensor]
    output: list[V2ConfigTensor]
    version_policy: dict[str, Any]
    dynamic_batching: dict[str, Any]
    instance_group: list[dict[str, Any]]
    parameters: dict[str, Any]


class V2Duration(BaseModel):
    count: int
    ns: int


class V2InferStatistics(BaseModel):
    success: V2Duration
    fail: V2Duration
    queue: V2Duration
    compute_input: V2Duration
    compute_infer: V2Duration
    compute_output: V2Duration
    cache_hit: V2Duration
    cache_miss: V2Duration


class V2ModelStatistics(BaseModel):
    name: str
    version: str
    last_inference: int
    inference_count: int
    execution_count: int
    inference_stats: V2InferStatistics
    batch_stats: list[dict[str, Any]]


class V2Statistics(BaseModel):
    model_stats: list[V2ModelStatistics]


class V2RepositoryIndexRequest(BaseModel):
    repository_name: str | None = None
    ready: bool | None = Field(None, description="true: list only the ready models.")


class V2RepositoryModel(BaseModel):
    name: str
    version: str | None = None
    state: str = Field(examples=["READY", "UNAVAILABLE"])
    reason: str | None = None
