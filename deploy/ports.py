"""Free loopback ports for the processes that the tools start: the loopback topology's replicas
and nginx, the benchmarks' servers, the tests' servers. The one copy of `free_port`."""

from __future__ import annotations

import random
import socket

# Below the kernel's ephemeral range (32768-60999 on Linux), so that a port probed free here is
# not handed to some client's outgoing connection before the server binds it.
PORT_RANGE = (18000, 19999)


def free_port(port_range: tuple[int, int] = PORT_RANGE, exclude: int | None = None) -> int:
    """A port in `port_range` that nothing listens on right now, other than `exclude` (tried at
    random, so that processes that look at the same time rarely pick the same one)."""
    for _ in range(200):
        port = random.randint(*port_range)
        if port == exclude:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {port_range}")
