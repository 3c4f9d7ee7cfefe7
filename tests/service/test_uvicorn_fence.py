"""The uvicorn internals service.runtime extends are all there, each checked by name: an upgrade
of uvicorn that drops or renames one fails here, saying which, not at a shutdown in production."""

from __future__ import annotations

import asyncio
import inspect

import pytest
import uvicorn
from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from service.core.settings import Settings
from service.runtime.protocol import UVICORN_INTERNALS, Protocol

PIN = "pyproject.toml pins uvicorn<0.55 for this; read the new uvicorn and adapt"


@pytest.mark.parametrize("name", UVICORN_INTERNALS["protocol methods"])
def test_the_protocol_methods_it_overrides_exist_in_uvicorn(name):
    assert callable(getattr(HttpToolsProtocol, name, None)), (
        f"uvicorn's HttpToolsProtocol has no method {name!r}, which "
        f"service.runtime.protocol.Protocol overrides and calls; {PIN}"
    )


def test_the_protocol_is_built_with_the_keywords_the_drain_passes():
    parameters = inspect.signature(HttpToolsProtocol.__init__).parameters
    for name in UVICORN_INTERNALS["protocol constructor"]:
        assert name in parameters, (
            f"uvicorn's HttpToolsProtocol() takes no {name!r}, which "
            f"service.runtime.server.DrainingServer._protocol passes; {PIN}"
        )


def test_a_protocol_instance_has_the_attributes_it_reads():
    loop = asyncio.new_event_loop()
    try:
        config = Config(app=lambda scope, receive, send: None, http=Protocol)
        config.load()
        protocol = Protocol.with_limits(Settings())(
            config=config, server_state=ServerState(), app_state={}, _loop=loop
        )
    finally:
        loop.close()
    for name in UVICORN_INTERNALS["protocol attributes"]:
        assert hasattr(protocol, name), (
            f"uvicorn's HttpToolsProtocol instances have no {name!r}, which "
            f"service.runtime.protocol.Protocol reads; {PIN}"
        )


@pytest.mark.parametrize("name", UVICORN_INTERNALS["cycle attributes"])
def test_the_request_cycle_has_the_fields_it_reads_and_writes(name):
    source = inspect.getsource(RequestResponseCycle.__init__)
    assert f"self.{name} " in source or f"self.{name}:" in source, (
        f"uvicorn's RequestResponseCycle sets no {name!r}, which "
        f"service.runtime.protocol.Protocol reads or writes; {PIN}"
    )


@pytest.mark.parametrize("name", UVICORN_INTERNALS["server methods"])
def test_the_server_methods_the_drain_uses_exist(name):
    assert callable(getattr(uvicorn.Server, name, None)), (
        f"uvicorn.Server has no method {name!r}, which service.runtime.server.DrainingServer "
        f"overrides or calls; {PIN}"
    )


def test_the_server_has_the_attributes_the_drain_reads():
    source = inspect.getsource(uvicorn.Server)  # some are set only once it runs
    for name in UVICORN_INTERNALS["server attributes"]:
        assert f"self.{name} =" in source or f"self.{name}:" in source, (
            f"uvicorn.Server sets no {name!r}, which service.runtime.server.DrainingServer "
            f"reads; {PIN}"
        )
    assert "sockets" in inspect.signature(uvicorn.Server.shutdown).parameters, PIN
    assert isinstance(STARTUP_FAILURE, int), f"uvicorn.config.STARTUP_FAILURE is gone; {PIN}"


def test_the_limits_are_class_attributes_of_the_protocol_uvicorn_is_given():
    settings = Settings(header_timeout=3, body_timeout=4, min_body_rate=5, send_timeout=6)
    limited = Protocol.with_limits(settings.model_copy(update={"max_connections": 7}))
    assert issubclass(limited, Protocol) and limited is not Protocol
    assert (limited.header_timeout, limited.body_timeout, limited.min_body_rate) == (3, 4, 5)
    assert (limited.send_timeout, limited.max_connections) == (6, 7)
    assert Protocol.header_timeout == Settings().header_timeout  # the class itself untouched
