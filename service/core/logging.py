"""Logging set-up of the processes the service runs (the CLI, each server, each worker)."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ACCESS_LOG = "latentserve.access"


def configure_logging(level: str, log_format: str = "text") -> None:
    """Log records at `level` (a setting: "info", "debug", ...) and above to stderr; with the
    "json" format, the access log's lines are JSON objects, whole (service.asgi.access)."""
    logging.basicConfig(level=level.upper(), format=FORMAT)
    access = logging.getLogger(ACCESS_LOG)
    if log_format == "json" and not any(getattr(h, "whole_lines", False) for h in access.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.whole_lines = True  # type: ignore[attr-defined]
        access.addHandler(handler)
        access.propagate = False
