"""`pip install .` then `latentserve-serve` from any folder serves the shipped models.

The wheel is built from a copy of this tree (what git would clone, plus uncommitted work) in
which a user has exported a model of their own into exported_models/; it is installed into a
fresh virtual environment (by pip, its dependencies taken from this environment: see below), and
the installed entry point is started from an unrelated, empty folder with no LATENTSERVE_*
setting but a free port. A few seconds.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXPORTED_MODELS, ROOT, SHIPPED, skip_or_fail
from tests.service.conftest import free_port

pytestmark = pytest.mark.slow


def tree_files() -> list[str]:
    """The files of this checkout that git tracks or would track (nothing it ignores)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        skip_or_fail(f"{ROOT} is not a git checkout: cannot tell its files from build output")
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listing.split("\0") if name and (ROOT / name).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in tree_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    # A user's own export in exported_models/: it must not travel in the wheel.
    shutil.copytree(EXPORTED_MODELS / "mnist-ae", source / "exported_models" / "my-model")
    out = tmp_path_factory.mktemp("dist")
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation, "-w", out, source],
        check=True,
        timeout=300,
    )
    (built,) = out.glob("latentserve-*.whl")
    return built


def test_the_wheel_carries_the_shipped_models_and_no_other(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    carried = {n.split("/")[2] for n in names if n.startswith("service/shipped_models/")}
    assert carried == set(SHIPPED)
    for model in SHIPPED:
        expected = {
            p.relative_to(EXPORTED_MODELS).as_posix()
            for p in (EXPORTED_MODELS / model).rglob("*")
            if p.is_file()
        }
        assert {f"service/shipped_models/{p}" for p in expected} <= set(names), model
    assert "training/zoo.toml" in names


def test_installed_wheel_serves_the_shipped_models_from_any_folder(wheel: Path, tmp_path: Path):
    venv = tmp_path / "venv"
    started = time.monotonic()
    # No pip inside (ensurepip alone takes seconds): this environment's pip installs into it.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    # The wheel goes in by pip, its dependencies do not: they are the ones of this environment,
    # made visible to the new one by a .pth line (appended to sys.path, after the venv's own
    # site-packages, so the wheel's packages come first). Resolving them would need PyPI (not
    # every one is in this machine's local indexes), and a test needs no network.
    pip = [sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install"]
    pip += ["--no-deps", "--no-index", wheel]
    installed = subprocess.run(pip, capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, (installed.stdout + installed.stderr)[-4000:]
    (target,) = (venv / "lib").glob("python3*/site-packages")
    dependencies = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (target / "the-tests-dependencies.pth").write_text("\n".join(sorted(dependencies)) + "\n")
    where = subprocess.run(
        [venv / "bin" / "python", "-c", "import service, client; print(service.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(target), f"service imported from {where}, not the wheel"
    install_seconds = time.monotonic() - started
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATENTSERVE_")}
    # the settings: free ports, not 8000 and gRPC's 8001, which another server may hold
    env["LATENTSERVE_PORT"] = str(port)
    env["LATENTSERVE_GRPC_PORT"] = str(free_port(exclude=port))
    log = tmp_path / "serve.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [venv / "bin" / "latentserve-serve"],
            cwd=elsewhere,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"{url}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        assert ready is not None and ready.status_code == 200, log.read_text()[-3000:]
        listed = httpx.get(f"{url}/models", timeout=10).json()["models"]
        assert sorted(m["name"] for m in listed) == sorted(SHIPPED)
        encoded = httpx.get(f"{url}/sample", params={"model": "mnist-vae", "n": 2}, timeout=10)
        assert encoded.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
    print(f"venv + pip install of the wheel: {install_seconds:.1f} s")
