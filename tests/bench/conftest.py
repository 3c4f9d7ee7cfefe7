"""What the benchmark tests share: the podman images of the tools they run (built at set-up by
scripts/test, never here: tests do not download)."""

from __future__ import annotations

import shutil
import subprocess

from tests.conftest import skip_or_fail
from tests.deploy.containers import podman_environment


def require_image(image: str, build: str) -> None:
    """Skip (fail under CI) unless podman holds `image`, naming the script that builds it."""
    if shutil.which("podman") is None:
        skip_or_fail("podman is not installed: apt-get install podman runc (scripts/test does)")
    exists = subprocess.run(["podman", "image", "exists", image], env=podman_environment())
    if exists.returncode != 0:
        skip_or_fail(f"the image {image} is absent: build it with {build}")
