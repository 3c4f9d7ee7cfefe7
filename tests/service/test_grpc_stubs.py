"""The checked-in gRPC stubs (service/grpc/generated/) are what scripts/grpc-stubs makes of the
.proto files in service/grpc/proto/: regenerate them with that script after editing a .proto."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.service.conftest import ROOT

GENERATED = ROOT / "service" / "grpc" / "generated"


def test_the_checked_in_stubs_match_the_protos(tmp_path: Path):
    out = tmp_path / "generated"
    subprocess.run(
        [str(ROOT / "scripts" / "grpc-stubs"), str(out)],
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys.executable},
        timeout=120,
    )
    made = {path.name: path.read_text() for path in out.iterdir() if path.name != "__init__.py"}
    kept = {path.name: path.read_text() for path in GENERATED.iterdir() if path.is_file()}
    kept.pop("__init__.py")
    assert sorted(made) == sorted(kept)
    for name, text in made.items():
        assert kept[name] == text, f"{name} is stale: run scripts/grpc-stubs"
