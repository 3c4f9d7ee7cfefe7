"""The docker-compose topology on loopback, without Docker: N service replicas behind nginx.

Each replica is `python -m service` (what `latentserve-serve` runs) on its own HTTP and gRPC
ports; nginx runs the repo's deploy/nginx.conf with the replicas it resolves by name (`api`)
replaced by upstreams of those ports, HTTP and gRPC alike. Used by tests/deploy and bench/, and
by hand:

    python -m deploy.loopback --replicas 3      # prints the entry URLs, Ctrl-C stops all
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from deploy.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
NGINX_TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def wait_until_ready(url: str, process: subprocess.Popen, timeout: float = 120.0) -> None:
    """Polls GET url until it answers 200; fails early if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode} before {url}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout:.0f}s")


@dataclass
class Replica:
    port: int
    process: subprocess.Popen
    grpc_port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        """How nginx names this replica in $upstream_addr."""
        return f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: a crash, not a graceful shutdown."""
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def start_replica(model_dir: Path, log_dir: Path, env: dict[str, str] | None = None) -> Replica:
    """One service process on a free loopback port (not yet waited for)."""
    port = free_port()
    grpc_port = free_port()
    settings = {
        "LATENTSERVE_HOST": "127.0.0.1",
        "LATENTSERVE_PORT": str(port),
        "LATENTSERVE_MODEL_DIR": str(model_dir),
        "LATENTSERVE_LOG_LEVEL": "warning",
        # Replicas on one host cannot share gRPC's default port 8001 (containers each have
        # their own): each one its own free port, behind nginx's gRPC server.
        "LATENTSERVE_GRPC_PORT": str(grpc_port),
    }
    log = open(log_dir / f"replica-{port}.log", "wb")  # noqa: SIM115 - owned by the process
    process = subprocess.Popen(
        [sys.executable, "-m", "service"],
        env={**os.environ, **settings, **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    log.close()
    return Replica(port, process, grpc_port)


LOOPBACK_UPSTREAM = "latentserve_loopback"
LOOPBACK_GRPC_UPSTREAM = "latentserve_loopback_grpc"


def upstream_block(name: str, ports: list[int]) -> str:
    servers = "".join(f"\n        server 127.0.0.1:{p} max_fails=2 fail_timeout=5s;" for p in ports)
    return f"\n    upstream {name} {{{servers}\n        keepalive 16;\n    }}"


def render_nginx_conf(
    source: str,
    listen_port: int,
    upstream_ports: list[int],
    workdir: Path,
    grpc_listen_port: int | None = None,
    grpc_upstream_ports: list[int] | None = None,
) -> str:
    """The repo's nginx config with the replicas and the listen ports moved to loopback.

    `$api_replicas` (`$api_grpc_replicas`) names an upstream of the replicas' loopback HTTP
    (gRPC) ports instead of the compose service (nginx looks a variable's value up among its
    upstreams before resolving it), so no DNS resolver is needed. Without gRPC ports the gRPC
    server listens on a free port of its own and has an upstream of the HTTP ports, which
    nothing calls. Every rewrite must match exactly once, so a change to deploy/nginx.conf
    that this function does not understand fails loudly instead of testing another topology.
    """
    grpc_listen_port = grpc_listen_port or free_port()
    upstreams = upstream_block(LOOPBACK_UPSTREAM, upstream_ports) + upstream_block(
        LOOPBACK_GRPC_UPSTREAM, grpc_upstream_ports or upstream_ports
    )
    temp_paths = "".join(f"\n    {name}_temp_path {workdir / name};" for name in NGINX_TEMP_DIRS)
    rewrites = [
        (r"^(\s*)set \$api_replicas api:\d+;", rf"\1set $api_replicas {LOOPBACK_UPSTREAM};"),
        (
            r"^(\s*)set \$api_grpc_replicas api:\d+;",
            rf"\1set $api_grpc_replicas {LOOPBACK_GRPC_UPSTREAM};",
        ),
        (r"^\s*include /etc/nginx/resolver\.conf;\n", ""),
        (r"^(\s*)listen \d+;", rf"\1listen 127.0.0.1:{listen_port};"),
        (r"^(\s*)listen \d+ http2;", rf"\1listen 127.0.0.1:{grpc_listen_port} http2;"),
        (r"^http \{", lambda m: m.group(0) + temp_paths + upstreams),
    ]
    for pattern, replacement in rewrites:
        source, count = re.subn(pattern, replacement, source, flags=re.M)
        if count != 1:
            raise ValueError(f"deploy/nginx.conf: expected one match of {pattern!r}, got {count}")
    return source


@dataclass
class Nginx:
    port: int
    process: subprocess.Popen
    grpc_port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def grpc_target(self) -> str:
        """`host:port` of the gRPC entry point, as gRPC clients take it."""
        return f"127.0.0.1:{self.grpc_port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: finish requests in flight
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if found is None:
        raise FileNotFoundError("nginx is not installed (Debian: apt-get install nginx-light)")
    return found


def start_nginx(
    upstream_ports: list[int], workdir: Path, grpc_upstream_ports: list[int] | None = None
) -> Nginx:
    port = free_port()
    grpc_port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(
        render_nginx_conf(
            NGINX_CONF.read_text(), port, upstream_ports, workdir, grpc_port, grpc_upstream_ports
        )
    )
    command = [
        nginx_binary(),
        "-p",
        str(workdir),
        "-c",
        str(conf),
        "-e",
        str(workdir / "error.log"),
        "-g",
        f"daemon off; pid {workdir / 'nginx.pid'};",
    ]
    check = subprocess.run([*command, "-t"], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"nginx rejects the rewritten config:\n{check.stderr}")
    log = open(workdir / "nginx.log", "wb")  # noqa: SIM115 - owned by the process
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    nginx = Nginx(port, process, grpc_port)
    wait_until_ready(f"{nginx.url}/nginx-healthz", process, timeout=20)
    return nginx


@dataclass
class LoopbackTopology:
    """N replicas and nginx in front; a context manager that stops everything it started."""

    replica_count: int
    model_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    workdir: Path | None = None
    replicas: list[Replica] = field(default_factory=list)
    nginx: Nginx | None = None

    @property
    def url(self) -> str:
        return self.nginx.url

    def __enter__(self) -> LoopbackTopology:
        self.workdir = Path(self.workdir or tempfile.mkdtemp(prefix="latentserve-loopback-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.replicas = [
                start_replica(self.model_dir, self.workdir, self.env)
                for _ in range(self.replica_count)
            ]
            for replica in self.replicas:
                wait_until_ready(f"{replica.url}/readyz", replica.process)
            self.nginx = start_nginx(
                [r.port for r in self.replicas],
                self.workdir,
                [r.grpc_port for r in self.replicas],
            )
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        for replica in self.replicas:
            replica.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--model-dir", type=Path, default=ROOT / "exported_models")
    args = parser.parse_args()
    with LoopbackTopology(args.replicas, args.model_dir) as topology:
        ports = ", ".join(f"{r.port}/{r.grpc_port}" for r in topology.replicas)
        print(
            f"{topology.url}, gRPC {topology.nginx.grpc_target}  (replicas on HTTP/gRPC "
            f"ports {ports}; logs in {topology.workdir})",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
