"""A minimal OTLP/HTTP trace receiver on loopback, for measuring what tracing costs the service.

    .venv/bin/python bench/otlp_sink.py --port 4318 &
    .venv/bin/python bench/serve_rps.py --only latentserve --env OTLP_ENDPOINT=http://127.0.0.1:4318/v1/traces

It answers every POST with 200 and an empty ExportTraceServiceResponse, as a collector that
accepts everything would, and prints how many export requests and bytes it received when it
stops (SIGTERM or Ctrl-C). It decodes nothing: the cost measured is the service's own (making,
batching, encoding and sending the spans), not a collector's.
"""

from __future__ import annotations

import argparse
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RECEIVED = {"requests": 0, "bytes": 0}


class Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length", 0))
        RECEIVED["bytes"] += len(self.rfile.read(length))
        RECEIVED["requests"] += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=4318)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Sink)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        print(f"otlp sink: {RECEIVED['requests']} export requests, {RECEIVED['bytes']} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
