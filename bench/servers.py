"""One server under test at a time: a uvicorn process on loopback and a free port, started,
waited for until ready, and stopped by its own PID."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from deploy.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
UVICORN = ["--host", "127.0.0.1", "--workers", "1", "--log-level", "warning", "--no-access-log"]


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any LATENTSERVE_ setting it happens to carry."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATENTSERVE_")}
    # No gRPC listener unless asked for: a benchmark's server must not take port 8001.
    return env | {"LATENTSERVE_GRPC_PORT": "0"} | extra


class Server:
    """A server process; `command` gets the port appended by the caller's builder."""

    def __init__(self, command: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        with log.open("wb") as handle:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, path: str = "/readyz", timeout: float = 120) -> float:
        """Seconds from now until `path` answers 200."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.url} exited early:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.url} not ready in {timeout:.0f} s:\n{self.log_tail()}")

    def children(self) -> list[int]:
        """Processes whose parent is this server (uvicorn's workers, when it has several)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.pid:
                pids.append(int(stat.parent.name))
        return pids

    def rss_mib(self) -> float:
        """Resident memory of the server and its child processes (workers), summed."""
        total_kib = 0
        for pid in [self.pid, *self.children()]:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            total_kib += next(
                int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")
            )
        return round(total_kib / 1024, 1)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def uvicorn_app(app: str, log: Path, env: dict[str, str]) -> Server:
    """`uvicorn MODULE:APP` with the settings every peer gets: one worker, no access log."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--port", str(port), *UVICORN]
    return Server(command, env, port, log)


def latentserve(log: Path, settings: dict[str, str]) -> Server:
    """`python -m service` (uvicorn inside) with LATENTSERVE_ settings; logs at warning level."""
    port = free_port()
    env = clean_environment(
        LATENTSERVE_MODEL_DIR=str(ROOT / "exported_models"),
        LATENTSERVE_HOST="127.0.0.1",
        LATENTSERVE_PORT=str(port),
        LATENTSERVE_LOG_LEVEL="warning",
    )
    return Server([sys.executable, "-m", "service"], env | settings, port, log)
