"""Whether this process is draining (shutting down gracefully).

Set once, by service.runtime.server when the shutdown signal arrives; read by the data plane's
readiness (every front end's readiness probe then says no) and by the HTTP protocol (every new
response then carries `Connection: close`).
"""

from __future__ import annotations


class Drain:
    active = False
