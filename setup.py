"""The one packaging step pyproject.toml cannot declare: the shipped models in the wheel.

`pip install .` (not editable) puts a copy of the models that training/zoo.toml names, from
exported_models/, into the wheel as package data of `service` (`service/shipped_models/`), so
that `latentserve-serve` serves them from any folder. Only those models travel: a user's own
folder in exported_models/ stays out. A tree without exported_models/ (the Dockerfile's build
stages, which bake the models in separately) builds a wheel without them.

Why in the wheel: the six models are 27.5 MB on disk and make the wheel 25.6 MB, a fraction of
what the serving install pulls anyway (ONNX Runtime and numpy alone install 150 MB),
and with them `pip install .` is a working service on any machine, offline included. The other
ways cost more: a download at first start needs a network and a place to fetch from, and a
separate models package is a second thing to version and install for the same six folders.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
MODELS = ROOT / "exported_models"
ZOO_FILE = ROOT / "training" / "zoo.toml"
TARGET = Path("service") / "shipped_models"


def shipped_models() -> list[str]:
    """The shipped models: the [models.<name>] tables of training/zoo.toml, in its order."""
    return list(tomllib.loads(ZOO_FILE.read_text())["models"])


class BuildWithModels(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode or not MODELS.is_dir():
            return  # editable: the service reads exported_models/ in the tree itself
        for name in shipped_models():
            source = MODELS / name
            if not (source / "manifest.json").is_file():
                raise SystemExit(f"shipped model {name} (training/zoo.toml) is not in {MODELS}")
            target = Path(self.build_lib) / TARGET / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns(".*", "__pycache__"))


setup(cmdclass={"build_py": BuildWithModels})
