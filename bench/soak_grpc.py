"""The soak's gRPC clients (bench/soak.py): unary ModelInfer calls and ModelStreamInfer streams,
good and bad requests mixed, through the service's own stubs on a grpc.aio channel.

What counts as a failure is what would be a 5xx over HTTP: INTERNAL, UNKNOWN, UNAVAILABLE (the
soak's queue deadline sheds nothing), a stream that ends in anything but OK, or a stream
request answered neither with a response nor with an error sentence."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import grpc
import numpy as np

from service.grpc.generated import grpc_service_pb2 as pb
from service.grpc.generated import grpc_service_pb2_grpc as pb_grpc

# Codes a client is told for its own mistake, as HTTP's 4xx.
CLIENT_ERRORS = {"INVALID_ARGUMENT", "NOT_FOUND", "RESOURCE_EXHAUSTED", "UNIMPLEMENTED"}

Record = Callable[[str, str, str], None]  # (kind, status class "2xx"/"4xx"/"5xx", detail)


def status_class(code: grpc.StatusCode) -> str:
    if code == grpc.StatusCode.OK:
        return "2xx"
    return "4xx" if code.name in CLIENT_ERRORS else "5xx"


def infer_request(rng: random.Random, bad: bool) -> pb.ModelInferRequest:
    """An encoder image batch or a decoder latent batch in raw contents; `bad` breaks it."""
    count = rng.randint(1, 4)
    if rng.random() < 0.5:
        model, name, array = "mnist-ae-encoder", "image", np.zeros((count, 1, 28, 28), "<f4")
        array += np.float32(rng.random())
    else:
        model, name = "mnist-vae-2d-decoder", "latent"
        array = np.asarray([[rng.gauss(0, 1), rng.gauss(0, 1)] for _ in range(count)], "<f4")
    flaw = rng.choice(["shape", "nan", "model", "datatype"]) if bad else None
    if flaw == "shape":
        array = np.zeros((count, 3), "<f4")  # neither an image nor a 2-d latent
    elif flaw == "nan":
        array.flat[0] = np.nan
    elif flaw == "model":
        model = "no-such-encoder"
    request = pb.ModelInferRequest(model_name=model, id=str(rng.randrange(2**31)))
    datatype = "INT32" if flaw == "datatype" else "FP32"
    request.inputs.add(name=name, datatype=datatype, shape=array.shape)
    request.raw_input_contents.append(array.tobytes())
    return request


async def unary(stub: pb_grpc.GRPCInferenceServiceStub, rng: random.Random, record: Record) -> None:
    bad = rng.random() < 0.15
    try:
        await stub.ModelInfer(infer_request(rng, bad), timeout=30)
        record("grpc unary" if not bad else "grpc bad", "2xx", "")
    except grpc.aio.AioRpcError as error:
        record("grpc unary" if not bad else "grpc bad", status_class(error.code()), error.details())


async def stream(stub: pb_grpc.GRPCInferenceServiceStub, rng: random.Random, record: Record):
    requests = [infer_request(rng, rng.random() < 0.15) for _ in range(rng.randint(2, 12))]
    answered = 0
    try:
        async for reply in stub.ModelStreamInfer(iter(requests), timeout=30):
            answered += 1
            if reply.error_message:
                record("grpc stream request", "4xx", reply.error_message)
            elif reply.HasField("infer_response"):
                record("grpc stream request", "2xx", "")
            else:
                record("grpc stream request", "5xx", "an answer with neither response nor error")
    except grpc.aio.AioRpcError as error:
        record("grpc stream", status_class(error.code()), error.details())
        return
    if answered != len(requests):
        record("grpc stream", "5xx", f"{answered} answers to {len(requests)} requests")
    else:
        record("grpc stream", "2xx", "")


async def client(address: str, seed: int, until: float, record: Record) -> None:
    rng = random.Random(seed)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        while time.monotonic() < until:
            await (stream if rng.random() < 0.3 else unary)(stub, rng, record)
