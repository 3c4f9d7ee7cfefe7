"""Finds absolute paths of a build machine in shipped files, zip archives (TorchScript) opened."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

MACHINE_PATH = re.compile(
    rb"(?<![\w.])/(?:work|root|home|usr|opt|tmp|var|mnt|srv|Users)/|site-packages|dist-packages"
    rb"|[A-Za-z]:\\\\(?:Users|Program)"
)


def machine_paths(path: Path) -> list[str]:
    """'file: match' for every absolute machine path in the file (and in its zip members)."""
    found = [
        f"{path.name}: {m.group().decode(errors='replace')}"
        for m in MACHINE_PATH.finditer(path.read_bytes())
    ]
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                found += [
                    f"{path.name}!{member}: {m.group().decode(errors='replace')}"
                    for m in MACHINE_PATH.finditer(archive.read(member))
                ]
    return found


def machine_paths_below(folder: Path) -> list[str]:
    return [
        hit for path in sorted(folder.rglob("*")) if path.is_file() for hit in machine_paths(path)
    ]
