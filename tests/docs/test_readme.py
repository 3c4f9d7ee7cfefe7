"""The README's examples, run as written against a live server, so that the README cannot drift.

The shell blocks of "Call it" (the curl calls) and "Python client and batch CLI" (the batch
commands), and the Python client snippet, run in a folder holding the input files they name
(real MNIST test digits) and a `.venv` link to this environment, against the shipped models on
a free port. What a test changes in a command, and nothing else: the README's ports (8000, the
service's default, and 8080, the compose topology's) become the test server's, a batch command
without `--url` gets that one, and curl fails on an HTTP error (`--fail-with-body`) instead of
printing it. The training commands are parsed by the training CLI itself; every figure of the
"Measured" table names a command that exists.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.client.conftest import read_idx_images, read_idx_labels
from tests.conftest import ROOT, SHIPPED, shipped_models_dir, skip_or_fail
from tests.service.conftest import Server, start_server, stop_server

README = (ROOT / "README.md").read_text()
PYTHON_BIN = Path(sys.executable).parent


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def blocks(title: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section(title), re.S)


def for_the_test_server(script: str, url: str) -> str:
    """The README's commands aimed at the test server (see the module docstring)."""
    host = url.removeprefix("http://")
    script = re.sub(r"http://(localhost|127\.0\.0\.1):(8000|8080)", url, script)
    script = re.sub(r"(?<![\w/])(localhost|127\.0\.0\.1):8000", host, script)
    script = re.sub(r"\bcurl -s ", "curl -sS --fail-with-body ", script)
    lines = []
    for line in script.splitlines():
        if "latentserve-batch " in line and "--url" not in line:
            line = line.replace("latentserve-batch ", f"latentserve-batch --url {url} ", 1)
        lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("logs") / "readme-server.log"
    server = start_server(shipped_models_dir(), log)
    yield server
    stop_server(server)


def save(pixels: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, shared_mnist_root: Path) -> Path:
    """A folder with the inputs the README's examples name, made of real test digits, and
    `.venv` linked to this environment (the README calls `.venv/bin/...`)."""
    for tool in ("curl", "jq"):
        if shutil.which(tool) is None:
            skip_or_fail(f"the README's examples use {tool}, which is not installed")
    folder = tmp_path_factory.mktemp("readme")
    images = read_idx_images(shared_mnist_root / "t10k-images-idx3-ubyte.gz", 9100)[9000:]
    labels = read_idx_labels(shared_mnist_root / "t10k-labels-idx1-ubyte.gz", 9100)[9000:]
    first = {d: images[int(np.flatnonzero(labels == d)[0])] for d in range(10)}
    save(first[5], folder / "digit.png")
    save(first[3], folder / "three.png")
    save(first[3], folder / "3.png")
    save(first[7], folder / "7.png")
    save(first[1], folder / "a.png")
    save(first[4], folder / "b.png")
    rng = np.random.default_rng(0)
    noisy = np.clip(first[2] + rng.normal(0, 0.5 * 255, first[2].shape), 0, 255)
    save(noisy, folder / "noisy.png")
    save(rng.integers(0, 256, (28, 28)), folder / "odd.png")
    for index in range(12):
        save(images[20 + index], folder / "digits" / f"{index:02d}.png")
        save(images[40 + index], folder / "incoming" / f"{index:02d}.png")
    save(rng.integers(0, 256, (28, 28)), folder / "incoming" / "scribble.png")
    (folder / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    return folder


def run_bash(script: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's code behind .venv/bin
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (
        f"{script}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result


def is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def commands(block: str) -> list[str]:
    """The block's commands, continuation lines joined."""
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


@pytest.mark.slow
@pytest.mark.realdata
def test_the_curl_examples_run_as_written(server, workdir):
    calls, analogy = blocks("Call it", "bash")
    answers = {}
    for command in commands(calls):
        route = re.search(r"8000/(\w+)", command).group(1)
        answer = run_bash(for_the_test_server(command, server.url), workdir).stdout
        answers.setdefault(route, answer)  # a route's first call answers on stdout
    assert set(answers) == {"encode", "sample", "decode", "interpolate", "reconstruct", "score"}
    encoded = json.loads(answers["encode"])
    assert np.asarray(encoded["mean"]).shape == (1, 20), encoded
    assert len(json.loads(answers["decode"])["images"]) == 1
    assert len(json.loads(answers["reconstruct"])["images"]) == 1
    score = json.loads(answers["score"])
    assert score["model"] == "mnist-vae" and score["anomalous"] == [True], score
    for name in ("samples.png", "threes.png", "strip.png", "where.png"):
        assert is_png(workdir / name), name
    run_bash(for_the_test_server(analogy, server.url), workdir)
    assert is_png(workdir / "eight.png")


@pytest.mark.slow
@pytest.mark.realdata
def test_the_python_client_snippet_runs_as_written(server, workdir):
    (snippet,) = blocks("Python client and batch CLI", "python")
    code = for_the_test_server(snippet, server.url)
    code += "assert z.shape == (2, 20), z.shape\n"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
@pytest.mark.realdata
def test_the_batch_commands_run_as_written(server, workdir):
    (commands,) = blocks("Python client and batch CLI", "bash")
    assert "--url http://localhost:8080" in commands, "the README names the compose port"
    run_bash(for_the_test_server(commands, server.url), workdir)
    with np.load(workdir / "latents.npz") as latents:
        assert latents["latents"].shape == (12, 20)
    assert len(list((workdir / "decoded").glob("*.png"))) == 12
    assert len(list((workdir / "threes").glob("*.png"))) == 64
    rows = (workdir / "scores.csv").read_text().splitlines()
    assert len(rows) == 1 + 13 and rows[0].startswith("path,score,percentile,anomalous")
    scribble = next(row for row in rows if "scribble" in row)
    assert scribble.split(",")[3] == "true"


def test_the_set_up_installs_and_serves_as_the_wheel_test_does():
    (setup,) = blocks("Set up", "bash")[:1]
    assert setup.strip() == (
        "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/latentserve-serve"
    )  # what tests/install/test_wheel.py does, from a temporary folder


def test_the_training_commands_parse_with_the_training_cli():
    from training.cli import config_from_args, train_parser

    (block,) = blocks("Train and export your own", "bash")
    commands = [shlex.split(line.split("#")[0]) for line in block.splitlines() if line.strip()]
    trains = [c for c in commands if c[:2] == [".venv/bin/latentserve-train", "train"]]
    assert len(trains) == 3
    for command in trains:
        config = config_from_args(train_parser().parse_args(command[2:]))
        assert config.epochs > 0
    (export,) = [c for c in commands if c[:2] == [".venv/bin/latentserve-train", "export"]]
    out = Path(export[3])
    assert out.parent.name == "my_models", "your own models go to a folder of their own"
    assert "my_models/" in (ROOT / ".gitignore").read_text().splitlines()
    (serve,) = [c for c in commands if c[-1] == ".venv/bin/latentserve-serve"]
    settings = dict(word.split("=", 1) for word in serve[:-1])
    assert settings == {"LATENTSERVE_MODEL_DIR": "my_models", "LATENTSERVE_DEFAULT_MODEL": out.name}
    from service.core.settings import Settings

    assert {"model_dir", "default_model"} <= set(Settings.model_fields)
    assert all(name not in {"my-model"} for name in SHIPPED)


def test_every_measured_figure_names_its_command():
    from training.cli import COMMANDS

    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in section("Measured").splitlines()
        if line.startswith("|") and not line.startswith("|---")
    ][1:]
    assert len(rows) >= 15
    previous = None
    for what, _, command in rows:
        if command == "same" or command.startswith("`..."):
            assert previous is not None, what
            continue
        named = re.findall(r"`([^`]+)`", command)
        assert named, f"{what}: no command"
        words = shlex.split(named[0].replace("<", "").replace(">", ""))
        if words[0] == "python" and words[1] == "-m":
            assert words[2] == "training" and words[3] in COMMANDS, named[0]
        elif words[0] == "python":
            assert (ROOT / words[1]).is_file(), named[0]
        elif words[0] == "pytest":
            assert (ROOT / words[1]).exists(), named[0]
        else:
            assert words[0] == "latentserve-train" and words[1] in COMMANDS, named[0]
            if "--config" in words:
                assert (ROOT / words[words.index("--config") + 1]).is_file(), named[0]
        previous = command


@pytest.mark.slow
@pytest.mark.realdata
def test_your_own_model_trains_exports_and_serves_as_written(
    tmp_path, shared_mnist_root, fashion_mnist_root
):
    """The README's own-model lines, run from a folder laid out like the project's: the first
    `train` line with a quick run's settings added (one epoch on 200 images), the `export` line
    with the run it made, and the serving line on a free port."""
    import httpx

    from tests.service.conftest import free_port, wait_ready

    (block,) = blocks("Train and export your own", "bash")
    lines = commands(block)
    train = next(line for line in lines if "mnist-vae-conv.toml" in line).split("#")[0]
    export = next(line for line in lines if "latentserve-train export" in line).split("#")[0]
    serve = next(line for line in lines if line.rstrip().endswith("latentserve-serve"))
    (tmp_path / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    (tmp_path / "training").symlink_to(ROOT / "training", target_is_directory=True)
    quick = f" --data-root {shared_mnist_root} --epochs 1 --train-limit 200 --iw-samples 2"
    run_bash(train + quick + " --no-plots --no-progress", tmp_path)
    (run,) = (tmp_path / "runs").iterdir()
    result = run_bash(export.replace("runs/<run>", f"runs/{run.name}"), tmp_path)
    assert "exported my-model" in result.stdout
    manifest = json.loads((tmp_path / "my_models" / "my-model" / "manifest.json").read_text())
    assert "auroc_fashion-mnist" in manifest["calibration"]["score"]["evaluation"]

    port = free_port()
    # The README's server as written but for its ports: 8001, gRPC's default, may be taken
    # by another server on this machine.
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LATENTSERVE_PORT": str(port),
        "LATENTSERVE_GRPC_PORT": str(free_port(exclude=port)),
    }
    env = {k: v for k, v in env.items() if k not in ("LATENTSERVE_MODEL_DIR",)}
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(["bash", "-c", serve], cwd=tmp_path, env=env, stdout=log, stderr=log)
    server = Server(f"http://127.0.0.1:{port}", process, tmp_path / "serve.log")
    try:
        wait_ready(server)
        listing = httpx.get(f"{server.url}/models", timeout=10).json()
        assert [m["name"] for m in listing["models"]] == ["my-model"]
        assert listing["default"] == "my-model"
    finally:
        stop_server(server)
        log.close()
