"""Sampling profiles of a server under load with py-spy (`pip install py-spy`; it attaches to
another process, so it needs ptrace rights: root, or CAP_SYS_PTRACE), and their top frames:

    .venv/bin/python bench/pyspy.py PROFILE.txt [--top 25]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import Counter
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


def shares(path: Path) -> tuple[int, Counter, Counter]:
    """Busy samples, and per frame (function and file) the samples that include it and the
    samples it is the leaf of. Threads parked in a wait (an idle pool) are left out."""
    inclusive, own, total = Counter(), Counter(), 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_frame(f) for f in stack.split(";") if not f.startswith(("process ", "thread ("))]
        if not frames or frames[-1].startswith(IDLE):
            continue
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    return total, inclusive, own


IDLE = ("Condition.wait ", "Queue.get ", "_worker ")


def _frame(text: str) -> str:
    """`fn (…/site-packages/pkg/mod.py:12)` -> `fn (pkg/mod.py)`."""
    name, _, where = text.partition(" (")
    where = re.sub(r":\d+$", "", where.rstrip(")"))
    return f"{name} ({re.sub(r'^.*(site-packages|lib/python3[.0-9]*)/', '', where)})"


def main() -> None:
    parser = argparse.ArgumentParser(description="Top frames of a py-spy raw profile by share.")
    parser.add_argument("profile", type=Path, help="collapsed stacks written by --py-spy")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    total, inclusive, own = shares(args.profile)
    print(f"{total} busy samples")
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"\n{title}:")
        for frame, count in counter.most_common(args.top):
            print(f"{100 * count / total:6.1f}%  {frame}")


if __name__ == "__main__":
    main()
