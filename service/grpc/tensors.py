"""The tensors of a ModelInferRequest as named float32 arrays (`raw_input_contents` or the typed
`contents`), with the protocol's refusals in the sentences HTTP uses."""

from __future__ import annotations

import numpy as np

from service.models import oip

from .generated import grpc_service_pb2 as pb

DATATYPES = {"FP32": np.dtype("<f4"), "FP16": np.dtype("<f2"), "FP64": np.dtype("<f8")}


def refuse_unsupported(parameters, what: str) -> None:
    for key, reason in oip.UNSUPPORTED.items():
        if key in parameters:
            raise oip.BadRequest(f"{what}: {reason}")


def inputs(request: pb.ModelInferRequest) -> dict[str, np.ndarray]:
    """The request's tensors as float32 arrays in their stated shapes."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise oip.BadRequest(
            f"raw_input_contents holds {len(raw)} tensors for {len(request.inputs)} inputs; "
            "give one per input, in order, or none"
        )
    if not request.inputs:
        raise oip.BadRequest("`inputs` must be a non-empty list of tensors")
    arrays: dict[str, np.ndarray] = {}
    for index, tensor in enumerate(request.inputs):
        name = tensor.name
        if name in arrays:
            raise oip.BadRequest(f"input {name!r} is given twice")
        refuse_unsupported(tensor.parameters, f"input {name!r}")
        dtype = DATATYPES.get(tensor.datatype)
        if dtype is None:
            raise oip.BadRequest(
                f"input {name!r} is {tensor.datatype}; this server reads FP32 (FP16 and FP64 "
                "are converted)"
            )
        shape = list(tensor.shape)
        if any(dim < 0 for dim in shape):
            raise oip.BadRequest(f"input {name!r}: shape must be a list of non-negative integers")
        count = int(np.prod(shape, dtype=np.int64))
        if raw:
            data = raw[index]
            if len(data) != count * dtype.itemsize:
                raise oip.BadRequest(
                    f"input {name!r}: raw_input_contents holds {len(data)} bytes; shape {shape} "
                    f"of {tensor.datatype} takes {count * dtype.itemsize}"
                )
            array = np.frombuffer(data, dtype)
        else:
            contents = tensor.contents
            values = contents.fp64_contents if tensor.datatype == "FP64" else contents.fp32_contents
            if tensor.datatype == "FP16":
                raise oip.BadRequest(f"input {name!r}: FP16 data travels in raw_input_contents")
            array = np.asarray(values, dtype=np.float64 if tensor.datatype == "FP64" else "<f4")
            if array.size != count:
                raise oip.BadRequest(
                    f"input {name!r}: its shape holds {count} values; contents has {array.size}"
                )
        arrays[name] = array.astype(np.float32).reshape(shape)
    return arrays
