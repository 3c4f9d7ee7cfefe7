"""bench/v2_cpu.py for real, briefly: every case answers 200 and gets a CPU time; no timing is
asserted, only that the instrument measures."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import v2_cpu  # noqa: E402


def test_every_case_is_measured():
    best = asyncio.run(v2_cpu.measure(rounds=1, requests=3))
    assert set(best) == {"/encode .npy", "v2 binary", "v2 json"}
    assert all(seconds > 0 for seconds in best.values())
