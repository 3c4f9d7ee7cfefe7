"""Sampling profiles of a server under load with py-spy (`pip install py-spy`; it attaches to
another process, so it needs ptrace rights: root, or CAP_SYS_PTRACE)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def binary() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record(pid: int, seconds: int, output: Path) -> subprocess.Popen:
    """Samples the busy threads of `pid` and its child processes (workers) 100 times a
    second, without pausing them, into collapsed stacks with one thread per root frame
    (flamegraph.pl and speedscope read them)."""
    command = [binary(), "record", "--pid", str(pid), "--duration", str(seconds)]
    command += ["--rate", "100", "--nonblocking", "--format", "raw", "--threads", "--subprocesses"]
    return subprocess.Popen(
        [*command, "-o", str(output)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
