"""deploy/nginx.conf applies the service's slow-client limits with the service's defaults."""

from __future__ import annotations

import re

from service.core.settings import Settings
from tests.conftest import ROOT

NGINX_CONF = ROOT / "deploy" / "nginx.conf"


def directive(name: str) -> str:
    found = re.findall(rf"^\s*{name}\s+([^;]+);", NGINX_CONF.read_text(), re.MULTILINE)
    assert len(found) == 1, f"deploy/nginx.conf sets {name} {len(found)} times"
    return found[0].strip()


def seconds(value: str) -> float:
    assert value.endswith("s"), value
    return float(value[:-1])


def test_nginx_bounds_slow_clients_as_the_service_does():
    settings = Settings()
    assert seconds(directive("client_header_timeout")) == settings.header_timeout
    assert seconds(directive("client_body_timeout")) == settings.body_timeout
    assert seconds(directive("send_timeout")) == settings.send_timeout
    assert directive("limit_conn") == f"per_server {settings.max_connections}"
    assert directive("limit_conn_status") == "503"
