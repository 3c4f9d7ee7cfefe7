"""A Docker Swarm of three test hosts on this machine, for tests/deploy/test_swarm.py.

The hosts come from ../shared/tools/testhosts: network namespaces lsh1..lsh3 at 10.77.0.1..3 on
one bridge, a client namespace lsc at 10.77.0.100. From the root namespace those addresses
are unreachable by design (the script's guard route for 10.0.0.0/8), so everything that
talks to them over the network runs inside a namespace: each node's Docker CLI inside that
node, the load balancer (HAProxy, deploy/swarm/haproxy.cfg) and the load generator
(tests/deploy/swarm_load.py) inside lsc. Nothing here sends traffic anywhere else.

Each node runs its own dockerd (Debian's docker.io; tests/deploy/swarm-node.sh) with its own
data and exec roots, socket, bridge and cgroup parent, all under one working directory (a
tmpfs) that `down()` unmounts, after leaving the swarm and ending every process it started.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTHOSTS = ROOT.parent / "shared" / "tools" / "testhosts"
NODE_SCRIPT = Path(__file__).with_name("swarm-node.sh")
HAPROXY_CFG = ROOT / "deploy" / "swarm" / "haproxy.cfg"
STACK_FILE = ROOT / "deploy" / "swarm" / "stack.yml"
# The Docker CLI of the docker.io package, the daemon's own version (a newer CLI on PATH would
# negotiate down; this one needs nothing but the package).
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
NODES = 3
CLIENT = "lsc"
LB_PORT = 8080
LB_GRPC_PORT = 8081
CGROUP_ROOT = Path("/sys/fs/cgroup")
REQUIRED_TOOLS = ("dockerd", "containerd", "haproxy", "ip")
SUMMARY: list[str] = []  # lines for the end of the test run (tests/deploy/conftest.py)
TMPFS_SIZE = "4g"  # the nodes' data: about 1.3 GB for three nodes with both images


def address(k: int) -> str:
    return f"10.77.0.{k}"


def missing_tools() -> list[str]:
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if not TESTHOSTS.exists():
        missing.append(str(TESTHOSTS))
    return missing


def testhosts(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(TESTHOSTS), *args], capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"testhosts {' '.join(args)} exited {result.returncode}: {result.stderr}"
        )
    return result


def hosts_are_up() -> bool:
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return any(line.split()[:1] == ["lssw"] for line in names.splitlines())


@dataclass
class Cluster:
    workdir: Path
    nodes: int = NODES
    dockerds: dict[int, subprocess.Popen] = field(default_factory=dict)
    haproxy: subprocess.Popen | None = None
    mounted: bool = False

    # --- nodes -------------------------------------------------------------------------------

    def node_dir(self, k: int) -> Path:
        return self.workdir / f"lsh{k}"

    def docker(
        self, k: int, *args: str, timeout: float = 120, check: bool = True, env: dict | None = None
    ) -> subprocess.CompletedProcess:
        """The Docker CLI of node k, run inside that node's namespace."""
        socket = f"unix://{self.node_dir(k)}/docker.sock"
        result = subprocess.run(
            [str(TESTHOSTS), "exec", f"lsh{k}", DOCKER, "-H", socket, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            cwd=ROOT,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"lsh{k}: docker {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
            )
        return result

    def start_node(self, k: int, timeout: float = 60) -> None:
        directory = self.node_dir(k)
        directory.mkdir(parents=True, exist_ok=True)
        log = open(directory / "dockerd.log", "ab")  # noqa: SIM115 - owned by the process
        self.dockerds[k] = subprocess.Popen(
            [str(TESTHOSTS), "exec", f"lsh{k}", str(NODE_SCRIPT), str(k), str(directory)],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while self.docker(k, "version", check=False, timeout=20).returncode != 0:
            if self.dockerds[k].poll() is not None or time.monotonic() > deadline:
                tail = (directory / "dockerd.log").read_text()[-2000:]
                raise RuntimeError(f"dockerd of lsh{k} did not start:\n{tail}")
            time.sleep(0.3)

    def node_processes(self, k: int) -> list[int]:
        """The processes of node k's containers: they have network namespaces of their own,
        so `testhosts kill` (which ends what runs in lshK's) does not see them."""
        pids = []
        parent = CGROUP_ROOT / "pids" / f"lsw-lsh{k}"
        for procs in parent.glob("**/cgroup.procs"):
            pids += [int(p) for p in procs.read_text().split()]
        return pids

    def kill_node(self, k: int) -> None:
        """Node k dies at once: its dockerd, containerd, shims and containers, SIGKILL."""
        testhosts("kill", str(k))
        for pid in self.node_processes(k):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if k in self.dockerds:
            self.dockerds.pop(k).wait(timeout=30)

    def cut(self, k: int) -> None:
        testhosts("cut", str(k))

    def heal(self, k: int) -> None:
        testhosts("heal", str(k))

    # --- the swarm ---------------------------------------------------------------------------

    def up(self) -> dict[str, float]:
        """Hosts, one dockerd each, a swarm of managers; seconds each step took."""
        times = {}
        started = time.monotonic()
        # The nodes' data on a tmpfs: three copies of the image unpacked load fast, and go in
        # one unmount (rm -rf of their many small files took minutes on a busy disk).
        self.workdir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=700", "lsw", str(self.workdir)],
            check=True,
            timeout=30,
        )
        self.mounted = True
        testhosts("up", str(self.nodes))
        for k in range(1, self.nodes + 1):
            self.start_node(k)
        times["dockerds"] = time.monotonic() - started
        started = time.monotonic()
        self.docker(
            1, "swarm", "init", "--advertise-addr", address(1),
            "--listen-addr", f"{address(1)}:2377", "--default-addr-pool", "10.79.0.0/16",
        )  # fmt: skip
        token = self.docker(1, "swarm", "join-token", "--quiet", "manager").stdout.strip()
        for k in range(2, self.nodes + 1):
            self.docker(
                k, "swarm", "join", "--token", token, "--advertise-addr", address(k),
                "--listen-addr", f"{address(k)}:2377", f"{address(1)}:2377",
            )  # fmt: skip
        times["swarm"] = time.monotonic() - started
        return times

    def manager(self, avoid: int | None = None) -> int:
        """A node to send swarm commands to (any manager that is not the one down)."""
        return next(k for k in range(1, self.nodes + 1) if k != avoid and k in self.dockerds)

    def nodes_ready(self, via: int) -> dict[str, str]:
        # check=False: while the managers elect a leader, they answer nothing for a moment.
        listed = self.docker(via, "node", "ls", "--format", "{{json .}}", check=False)
        rows = listed.stdout.split("\n") if listed.returncode == 0 else []
        return {json.loads(r)["ID"]: json.loads(r)["Status"] for r in rows if r.strip()}

    def load_images(self, archive: Path) -> float:
        """`docker load` of the archive on every node at once; seconds."""
        started = time.monotonic()
        socket = "unix://{}/docker.sock"
        loads = [
            subprocess.Popen(
                [
                    str(TESTHOSTS),
                    "exec",
                    f"lsh{k}",
                    DOCKER,
                    "-H",
                    socket.format(self.node_dir(k)),
                    "load",
                    "--quiet",
                    "--input",
                    str(archive),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for k in range(1, self.nodes + 1)
        ]
        for k, load in enumerate(loads, start=1):
            out, err = load.communicate(timeout=300)
            if load.returncode != 0:
                raise RuntimeError(f"lsh{k}: docker load exited {load.returncode}: {err}")
        return time.monotonic() - started

    def deploy(self, stack: str, image: str, via: int = 1) -> None:
        """`docker stack deploy` of the repo's stack file, the image named as users name it."""
        self.docker(
            via, "stack", "deploy", "--resolve-image", "never", "--prune",
            "--compose-file", str(STACK_FILE), stack,
            env={"LATENTSERVE_IMAGE": image}, timeout=180,
        )  # fmt: skip

    def tasks(self, service: str, via: int) -> list[dict]:
        listed = self.docker(
            via, "service", "ps", "--no-trunc", "--format", "{{json .}}", service, check=False
        )  # check=False: see nodes_ready
        rows = listed.stdout.split("\n") if listed.returncode == 0 else []
        return [json.loads(r) for r in rows if r.strip()]

    def running_replicas(self, service: str, via: int) -> int:
        """Tasks desired and actually running (health checks passed: swarm reports a task with
        a health check as running once it is healthy)."""
        return sum(
            1
            for t in self.tasks(service, via)
            if t["DesiredState"] == "Running" and t["CurrentState"].startswith("Running")
        )

    def wait_for_replicas(self, service: str, count: int, via: int, timeout: float = 180) -> float:
        started = time.monotonic()
        while self.running_replicas(service, via) != count:
            if time.monotonic() - started > timeout:
                tasks = json.dumps(self.tasks(service, via), indent=1)
                raise AssertionError(f"{service}: not {count} running in {timeout} s:\n{tasks}")
            time.sleep(1)
        return time.monotonic() - started

    # --- the load balancer and the load, inside the client namespace --------------------------

    def start_haproxy(self) -> None:
        env = {
            **os.environ,
            "LATENTSERVE_HTTP_BIND": f"127.0.0.1:{LB_PORT}",
            "LATENTSERVE_GRPC_BIND": f"127.0.0.1:{LB_GRPC_PORT}",
            **{f"LATENTSERVE_NODE{k}": address(k) for k in range(1, self.nodes + 1)},
        }
        log = open(self.workdir / "haproxy.log", "ab")  # noqa: SIM115 - owned by the process
        self.haproxy = subprocess.Popen(
            [str(TESTHOSTS), "exec", CLIENT, "haproxy", "-db", "-f", str(HAPROXY_CFG)],
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )

    @contextmanager
    def load(self, *, seconds: float, max_requests: int, workers: int = 6) -> Iterator[LoadRun]:
        """Bounded load from lsc through HAProxy: it ends by itself after `seconds` or
        `max_requests`, whichever comes first, or sooner with `run.stop()`; leaving the block
        waits for it to end (an error in the block stops it at once)."""
        stop_file = self.workdir / f"stop-{time.monotonic_ns()}"
        run = LoadRun(stop_file)
        process = subprocess.Popen(
            [str(TESTHOSTS), "exec", CLIENT, sys.executable, "-m", "tests.deploy.swarm_load",
             "--url", f"http://127.0.0.1:{LB_PORT}", "--workers", str(workers),
             "--seconds", str(seconds), "--max-requests", str(max_requests),
             "--stop-file", str(stop_file)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        try:
            yield run
        except BaseException:
            stop_file.touch()
            raise
        finally:
            out, err = process.communicate(timeout=seconds + 120)
            if process.returncode != 0:
                raise RuntimeError(f"load generator exited {process.returncode}: {err[-2000:]}")
            run.result = json.loads(out)

    def grpc_round(self, checks: int = 12) -> dict:
        """One bounded round of gRPC calls from lsc through HAProxy (tests/deploy/swarm_grpc.py)."""
        result = subprocess.run(
            [str(TESTHOSTS), "exec", CLIENT, sys.executable, "-m", "tests.deploy.swarm_grpc",
             "--http", f"127.0.0.1:{LB_PORT}", "--grpc", f"127.0.0.1:{LB_GRPC_PORT}",
             "--checks", str(checks)],
            capture_output=True, text=True, timeout=120, cwd=ROOT,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"gRPC round exited {result.returncode}: {result.stderr[-2000:]}")
        return json.loads(result.stdout)

    def wait_for_lb(self, timeout: float = 60) -> None:
        """Until every node answers through HAProxy (its checks need two passes per node)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.load(seconds=3, max_requests=60, workers=2) as run:
                pass
            served = set(run.result["served_by"])
            if len(served) == self.nodes and run.result["failed"] == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"HAProxy does not reach every node: {run.result}")
            time.sleep(1)

    # --- teardown ----------------------------------------------------------------------------

    def down(self) -> None:
        """Leave the swarm, end every process started here, remove hosts, cgroups, data."""
        for k in list(self.dockerds):
            self.docker(k, "swarm", "leave", "--force", check=False, timeout=30)
        if self.haproxy is not None:
            self.haproxy.kill()
            self.haproxy.wait(timeout=30)
            self.haproxy = None
        for k in range(1, self.nodes + 1):
            if hosts_are_up():
                self.kill_node(k)
            else:
                for pid in self.node_processes(k):
                    os.kill(pid, signal.SIGKILL)
        for process in self.dockerds.values():
            process.wait(timeout=30)
        self.dockerds.clear()
        testhosts("down", check=False)
        for k in range(1, self.nodes + 1):
            for controller in CGROUP_ROOT.iterdir():
                parent = controller / f"lsw-lsh{k}"
                for directory in sorted(parent.glob("**/"), key=lambda p: -len(p.parts)):
                    with suppress(OSError):
                        directory.rmdir()
        if self.mounted:
            unmounted = subprocess.run(["umount", str(self.workdir)], capture_output=True)
            if unmounted.returncode != 0:  # still held by a process that is going away
                subprocess.run(["umount", "--lazy", str(self.workdir)], check=False)
            self.mounted = False
        subprocess.run(["rm", "-rf", "--one-file-system", str(self.workdir)], check=False)


@dataclass
class LoadRun:
    stop_file: Path
    result: dict = field(default_factory=dict)

    def stop(self) -> None:
        self.stop_file.touch()
