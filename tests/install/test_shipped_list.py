"""The shipped models are one list (training/zoo.toml): what the tests test, what the wheel, the
sdist and the image carry. A user's own folder in the model directory is none of these."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx

from tests.conftest import EXPORTED_MODELS, ROOT, SHIPPED, shipped_only
from tests.service.conftest import start_server, stop_server


def a_model_dir_with_a_users_model(tmp_path: Path) -> Path:
    """A copy of the shipped models (links) plus a user's own export beside them."""
    model_dir = tmp_path / "exported_models"
    model_dir.mkdir()
    for name in SHIPPED:
        (model_dir / name).symlink_to(EXPORTED_MODELS / name, target_is_directory=True)
    shutil.copytree(EXPORTED_MODELS / "mnist-ae", model_dir / "my-model")
    return model_dir


def test_the_shipped_list_is_the_zoo():
    assert SHIPPED == (
        "mnist-vae-2d",
        "mnist-vae",
        "mnist-cvae",
        "mnist-ae",
        "mnist-dae",
        "fashion-vae",
    )


def test_shipped_checks_select_the_shipped_models_whatever_else_is_there(tmp_path: Path):
    model_dir = a_model_dir_with_a_users_model(tmp_path)
    selected = shipped_only(model_dir, tmp_path / "selected")
    assert sorted(p.name for p in selected.iterdir()) == sorted(SHIPPED)
    log = tmp_path / "server.log"
    server = start_server(selected, log)
    try:
        listed = httpx.get(f"{server.url}/models", timeout=10).json()["models"]
    finally:
        stop_server(server)
    assert sorted(m["name"] for m in listed) == sorted(SHIPPED)


def test_the_image_context_admits_the_shipped_models_alone():
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    admitted = {r[1:].strip("/") for r in rules if r.startswith("!")}
    models = {a.split("/", 1)[1] for a in admitted if a.startswith("exported_models/")}
    assert models == set(SHIPPED)
    assert "exported_models" not in admitted, "the whole folder would admit a user's models"


def test_the_sdist_carries_the_shipped_models_alone():
    grafts = re.findall(r"^graft exported_models/(\S+)$", (ROOT / "MANIFEST.in").read_text(), re.M)
    assert set(grafts) == set(SHIPPED)
    assert not re.search(
        r"^(recursive-include|graft) exported_models\s", (ROOT / "MANIFEST.in").read_text(), re.M
    )


def test_user_models_stay_out_of_git():
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "my_models/" in ignored
