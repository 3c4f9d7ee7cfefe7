"""Closed-loop HTTP load with wrk (Debian package `wrk`): one thread, N keep-alive connections,
each POSTing the same body; bench/post.lua counts the answers by status."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).with_name("post.lua")
MARKER = "WRK_RESULT "


def available() -> bool:
    return shutil.which("wrk") is not None


def version() -> str:
    # `wrk -v` prints its banner and exits 1.
    run = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return (run.stdout or run.stderr).splitlines()[0].strip()


def load(
    url: str, body: Path, content_type: str, connections: int, seconds: int, timeout: int
) -> dict:
    """Runs wrk once; requests/s, latency percentiles in ms, answers by status, socket errors."""
    command = [
        *("wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout}s"),
        *("-s", str(SCRIPT), url, "--", str(body), content_type),
    ]
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in run.stdout.splitlines() if line.startswith(MARKER)]
    if run.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({run.returncode}): {run.stderr or run.stdout}")
    raw = json.loads(lines[-1][len(MARKER) :])
    statuses = {int(code): count for code, count in raw["statuses"].items()}
    socket_errors = sum(raw["socket_errors"].values())
    failed = sum(n for code, n in statuses.items() if not 200 <= code < 300 and code != 503)
    return {
        "connections": connections,
        "seconds": round(raw["duration_us"] / 1e6, 3),
        "requests": raw["requests"],
        "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "latency_ms": {k: round(v / 1000, 2) for k, v in raw["latency_us"].items()},
        "statuses": {str(code): statuses[code] for code in sorted(statuses)},
        "shed_503": statuses.get(503, 0),
        "errors": failed + socket_errors,
        "socket_errors": raw["socket_errors"],
        "bytes": raw["bytes"],
    }
