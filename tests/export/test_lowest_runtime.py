"""The shipped calibration holds with the lowest onnxruntime (and numpy) pyproject.toml allows,
as it does with the newest (tests/service/test_score_route.py): the scores' numbers depend on
the runtime, so its lower bound is tested, not assumed."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT, skip_or_fail
from training.zoo import load_zoo

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

SHIPPED = [entry.name for entry in load_zoo()]


def lowest(package: str) -> str:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for requirement in dependencies:
        found = re.fullmatch(rf"{package}>=([\w.]+).*", requirement)
        if found:
            return found.group(1)
    raise AssertionError(f"pyproject.toml declares no lower bound for {package}")


def test_the_shipped_calibration_holds_with_the_lowest_onnxruntime(
    shared_mnist_root: Path, fashion_mnist_root: Path
):
    python = ROOT / ".venv-lowest" / "bin" / "python"
    if not python.exists():
        skip_or_fail(f"{python.parent.parent} is missing: ./scripts/test makes it")
    done = subprocess.run(
        [python, ROOT / "tests/export/runtime_scores.py", shared_mnist_root, fashion_mnist_root]
        + SHIPPED,
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT)},
        timeout=600,
    )
    report = json.loads(done.stdout)
    for package in ("onnxruntime", "numpy"):  # "1.18" is installed as 1.18.0
        assert report[package].split(".")[:2] == lowest(package).split(".")[:2], report
    assert sorted(report["off_by"]) == sorted(SHIPPED)
    for model, off_by in report["off_by"].items():
        assert off_by <= 1e-3, f"{model}: calibration off by {off_by} with {report}"
