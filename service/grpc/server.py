"""The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`), in the HTTP server's
process and event loop, through the same data plane (service/models/oip.py) and graph runners:
an HTTP request and a gRPC request for the same graph can share one batch.

ModelStreamInfer answers each request of a stream when it is done (matched by `id`, as Triton's
streams of non-decoupled models); the requests of one stream run concurrently, so they batch
with each other and with every other caller, and a failed request answers `error_message`
while the stream goes on.

This module only translates: protobuf messages to named float32 arrays and back
(`raw_input_contents`/`raw_output_contents`, or the typed `contents`), and the data plane's
errors to gRPC status codes with the same sentences as over HTTP. API keys come as
`authorization: Bearer <key>` (or `x-api-key`) metadata; the health service
(`grpc.health.v1.Health`), ServerLive and ServerReady stay open, as the HTTP probes do. The
largest message received is LATENTSERVE_MAX_BODY_BYTES. On SIGTERM, readiness and health turn
false at once; when the HTTP side has drained, the listener stops taking RPCs and those in
flight are answered within what is left of the shutdown grace; open streams stop reading,
answer what they hold and end with UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import numpy as np
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.core.drain import Drain
from service.core.errors import NotFound, ServiceError
from service.models import oip
from service.models.dataplane import DataPlane

from . import tensors
from .generated import grpc_service_pb2 as pb
from .generated import grpc_service_pb2_grpc as pb_grpc
from .streams import Stream

log = logging.getLogger("latentserve.grpc")

SERVICE = "inference.GRPCInferenceService"
OPEN_METHODS = {"ServerLive", "ServerReady"}
# The gRPC status of each kind of service error (service.core.errors), as HTTP has its own.
CODES = {
    "invalid_argument": grpc.StatusCode.INVALID_ARGUMENT,
    "malformed": grpc.StatusCode.INVALID_ARGUMENT,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "failed_precondition": grpc.StatusCode.FAILED_PRECONDITION,
    "too_large": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "unsupported_media_type": grpc.StatusCode.INVALID_ARGUMENT,
    "not_acceptable": grpc.StatusCode.INVALID_ARGUMENT,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
    "not_supported": grpc.StatusCode.UNIMPLEMENTED,
}
CLOSING = (
    "the server is shutting down: every request this stream received has been answered; "
    "connect again and send the rest"
)
STREAM_ROUTE = f"grpc:/{SERVICE}/ModelStreamInfer"
NO_KEY = (
    "this call needs an API key: send the metadata `authorization: Bearer <key>` or "
    "`x-api-key: <key>`"
)


def status_code(error: ServiceError) -> grpc.StatusCode:
    return CODES.get(error.code, grpc.StatusCode.INTERNAL)


def _key(metadata: tuple) -> bytes | None:
    for name, value in metadata or ():
        raw = value.encode() if isinstance(value, str) else value
        if name == "x-api-key":
            return raw.strip()
        if name == "authorization":
            scheme, _, token = raw.strip().partition(b" ")
            if scheme.lower() == b"bearer":
                return token.strip()
    return None


class InferenceService(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, state: DataPlane, version: str, keys: list[str]) -> None:
        self.state = state
        self.version = version
        self.digests = [hashlib.sha256(key.encode()).digest() for key in keys]
        self.in_flight = 0  # calls inside a handler now
        self.cut = 0  # calls cancelled inside a handler while draining (the grace ran out)
        self.streams: set[Stream] = set()  # the open ModelStreamInfer calls
        self.closing = False  # draining: streams take no more requests
        metrics = state.metrics
        self._requests = metrics.requests
        self._latency = metrics.latency
        for name in (
            "ServerLive",
            "ServerReady",
            "ModelReady",
            "ServerMetadata",
            "ModelMetadata",
            "ModelInfer",
            "ModelConfig",
            "ModelStatistics",
            "RepositoryIndex",
            "RepositoryModelLoad",
            "RepositoryModelUnload",
        ):
            setattr(self, name, self._guarded(name, getattr(self, f"_{name}")))

    def _key_refusal(self, context: grpc.aio.ServicerContext) -> str | None:
        """Why the call's key is refused, where keys are set; None when it may go on."""
        if not self.digests:
            return None
        key = _key(context.invocation_metadata())
        if key is None:
            return NO_KEY
        digest = hashlib.sha256(key).digest()
        matched = False
        for known in self.digests:  # no early exit: every key costs the same
            matched |= hmac.compare_digest(known, digest)
        return None if matched else "the API key is not valid"

    def _observe(self, route: str, model: str, code: grpc.StatusCode, start: float) -> None:
        self._requests.labels(route, model, code.name).inc()
        self._latency.labels(route, model).observe(time.perf_counter() - start)

    def _guarded(self, method: str, handler: Callable[..., Awaitable[Any]]):
        route = f"grpc:/{SERVICE}/{method}"

        async def call(request, context: grpc.aio.ServicerContext):
            start = time.perf_counter()
            code = grpc.StatusCode.OK
            model = getattr(request, "model_name", "") or getattr(request, "name", "")
            self.in_flight += 1
            try:
                if method not in OPEN_METHODS and (refusal := self._key_refusal(context)):
                    code = grpc.StatusCode.UNAUTHENTICATED
                    await context.abort(code, refusal)
                return await handler(request)
            except ServiceError as error:
                code = status_code(error)
                await context.abort(code, error.detail)
            except asyncio.CancelledError:  # the client went away, or the grace ran out
                self.cut += 1 if Drain.active else 0
                code = grpc.StatusCode.CANCELLED
                raise
            except grpc.aio.AbortError:
                raise
            except Exception:
                log.exception("unhandled error in %s", route)
                code = grpc.StatusCode.INTERNAL
                await context.abort(code, "internal error; it has been logged")
            finally:
                self.in_flight -= 1
                self._observe(route, model, code, start)

        return call

    # ---- health and metadata ----------------------------------------------------------------

    async def _ServerLive(self, request) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def _ServerReady(self, request) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=oip.server_ready(self.state, Drain.active))

    async def _ModelReady(self, request) -> pb.ModelReadyResponse:
        try:
            oip.resolve(self.state, request.name, request.version)
        except NotFound:
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=True)

    async def _ServerMetadata(self, request) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(**oip.server_metadata(self.version))

    async def _ModelMetadata(self, request) -> pb.ModelMetadataResponse:
        body = oip.model_metadata(self.state, request.name, request.version)
        return json_format.ParseDict(body, pb.ModelMetadataResponse())

    async def _ModelConfig(self, request) -> pb.ModelConfigResponse:
        body = oip.model_config(self.state, request.name, request.version)
        return json_format.ParseDict({"config": body}, pb.ModelConfigResponse())

    async def _ModelStatistics(self, request) -> pb.ModelStatisticsResponse:
        body = oip.statistics(self.state, request.name, request.version)
        return json_format.ParseDict(body, pb.ModelStatisticsResponse())

    async def _RepositoryIndex(self, request) -> pb.RepositoryIndexResponse:
        models = oip.repository_index(self.state, request.ready)
        return json_format.ParseDict({"models": models}, pb.RepositoryIndexResponse())

    async def _RepositoryModelLoad(self, request) -> pb.RepositoryModelLoadResponse:
        oip.refuse_repository_control()

    async def _RepositoryModelUnload(self, request) -> pb.RepositoryModelUnloadResponse:
        oip.refuse_repository_control()

    # ---- inference ----------------------------------------------------------------------------

    async def ModelStreamInfer(self, requests, context: grpc.aio.ServicerContext):
        """Answers each request of the stream when it is done; ends when the client stops
        sending and every request read is answered."""
        if refusal := self._key_refusal(context):
            self._requests.labels(STREAM_ROUTE, "", "UNAUTHENTICATED").inc()
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, refusal)
        stream = Stream(requests, self._answer_streamed, self.state.settings.queue_max_requests)
        self.streams.add(stream)
        if self.closing:
            stream.stop_reading()
        self.in_flight += 1
        try:
            while (reply := await stream.next_answer()) is not None:
                await context.write(reply)
        except asyncio.CancelledError:
            self.cut += 1 if Drain.active else 0
            raise
        finally:
            self.in_flight -= 1
            self.streams.discard(stream)
            stream.cancel()
        if stream.stopped:
            await context.abort(grpc.StatusCode.UNAVAILABLE, CLOSING)

    async def _answer_streamed(self, request: pb.ModelInferRequest) -> pb.ModelStreamInferResponse:
        """One request of a stream: its response, or its error's sentence (the stream goes on)."""
        start = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            reply = pb.ModelStreamInferResponse(infer_response=await self._ModelInfer(request))
        except ServiceError as error:
            code = status_code(error)
            reply = pb.ModelStreamInferResponse(error_message=error.detail)
        except Exception:
            log.exception("unhandled error in %s", STREAM_ROUTE)
            code = grpc.StatusCode.INTERNAL
            reply = pb.ModelStreamInferResponse(error_message="internal error; it has been logged")
        self._observe(STREAM_ROUTE, request.model_name, code, start)
        return reply

    async def _ModelInfer(self, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
        name = request.model_name
        served, kind = oip.resolve(self.state, name, request.model_version)
        tensors.refuse_unsupported(request.parameters, "the request")
        given = tensors.inputs(request)
        signature = getattr(served.manifest, kind)
        asked = [output.name for output in request.outputs]
        for output in request.outputs:
            tensors.refuse_unsupported(output.parameters, f"output {output.name!r}")
        oip.check_outputs(name, signature.outputs, asked)
        inputs = oip.graph_inputs(self.state, served, kind, name, given)
        outputs = await served.run(kind, inputs)
        response = pb.ModelInferResponse(model_name=name, model_version=oip.VERSION, id=request.id)
        for output in asked or signature.outputs:
            array = np.ascontiguousarray(outputs[output], dtype="<f4")
            response.outputs.add(name=output, datatype="FP32", shape=array.shape)
            response.raw_output_contents.append(array.tobytes())
        return response


class Health(health_pb2_grpc.HealthServicer):
    """grpc.health.v1: SERVING while the server is ready (models loaded, not draining), for ""
    (the whole server) and for the inference service; NOT_SERVING otherwise."""

    def __init__(self, state: DataPlane) -> None:
        self.state = state

    def _status(self, service: str):
        if service not in ("", SERVICE):
            return None
        ready = oip.server_ready(self.state, Drain.active)
        return (
            health_pb2.HealthCheckResponse.SERVING
            if ready
            else (health_pb2.HealthCheckResponse.NOT_SERVING)
        )

    async def Check(self, request, context):
        status = self._status(request.service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(self, request, context):
        last = None
        while True:
            status = self._status(request.service)
            if status is None:
                status = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
            if status != last:
                yield health_pb2.HealthCheckResponse(status=status)
                last = status
            await asyncio.sleep(0.25)


class GrpcServer:
    """The gRPC listener of one server process; started and stopped by the app's lifespan."""

    def __init__(self, state: DataPlane, version: str, keys: list[str]) -> None:
        settings = state.settings
        self.state = state
        options = [
            ("grpc.max_receive_message_length", settings.max_body_bytes),
            ("grpc.max_send_message_length", -1),
            # Workers share the port (as they share the HTTP socket); one process binds alone,
            # so that a port in use is an error instead of a silent second listener.
            ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
            ("grpc.keepalive_permit_without_calls", 1),
        ]
        self.server = grpc.aio.server(options=options)
        self.service = InferenceService(state, version, keys)
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(self.service, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(Health(state), self.server)
        address = f"{settings.host}:{settings.grpc_port}"
        if ":" in settings.host:
            address = f"[{settings.host}]:{settings.grpc_port}"
        self.port = self.server.add_insecure_port(address)
        self.address = address

    async def start(self) -> None:
        await self.server.start()
        self._drain = asyncio.create_task(self._drain_on_signal(), name="grpc drain")
        log.info("gRPC (Open Inference Protocol) on %s", self.address)

    async def _drain_on_signal(self) -> None:
        """As the HTTP side (service/runtime/server.py): from SIGTERM, `drain_delay` seconds of
        NOT_SERVING while still answering, then no new RPCs, and those in flight answered
        within the rest of `shutdown_grace`."""
        while not Drain.active:
            await asyncio.sleep(0.05)
        settings = self.state.settings
        await asyncio.sleep(settings.drain_delay)
        self.service.closing = True
        for stream in self.service.streams:  # no more requests; the rest are answered
            stream.stop_reading()
        log.info(
            "gRPC: no new calls (clients see UNAVAILABLE or CANCELLED for a call sent "
            "from now on, before any handler ran); %d in flight",
            self.service.in_flight,
        )
        await self.server.stop(max(0.0, settings.shutdown_grace - settings.drain_delay))
        log.info("gRPC listener closed; %d call(s) cut by the grace period", self.service.cut)

    async def stop(self) -> None:
        """At the end of the app's life: the drain above (or at once, without a SIGTERM)."""
        if not Drain.active:
            self._drain.cancel()
            await self.server.stop(0)
            return
        await asyncio.shield(self._drain)
