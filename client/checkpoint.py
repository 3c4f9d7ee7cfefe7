"""Partial results of a batch job, one file per finished chunk, so a rerun resumes.

`out.npz` is built in `out.npz.partial/`: `job.json` records the settings that shape the
results, and each finished chunk lands atomically as `chunk-000123.npz` with its file names.
A rerun with the same settings skips every chunk whose file names still match.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np


class JobMismatch(Exception):
    """The partial results on disk were made with other settings."""


class ChunkStore:
    def __init__(self, out_path: Path, job: dict) -> None:
        self.folder = out_path.with_name(out_path.name + ".partial")
        self.job = job

    def open(self, restart: bool = False) -> None:
        """Creates the folder, or checks that the one there belongs to this job."""
        if restart and self.folder.exists():
            shutil.rmtree(self.folder)
        job_file = self.folder / "job.json"
        if job_file.exists():
            found = json.loads(job_file.read_text())
            if found != self.job:
                raise JobMismatch(
                    f"{self.folder} holds partial results made with {found}, not {self.job}; "
                    "rerun with --restart to discard them"
                )
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_atomically(job_file, json.dumps(self.job, sort_keys=True).encode())

    def _chunk_path(self, index: int) -> Path:
        return self.folder / f"chunk-{index:06d}.npz"

    def has(self, index: int, names: list[str]) -> bool:
        path = self._chunk_path(index)
        if not path.exists():
            return False
        with np.load(path) as chunk:
            return chunk["names"].tolist() == names

    def save(self, index: int, names: list[str], arrays: dict[str, np.ndarray]) -> None:
        path = self._chunk_path(index)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, names=np.asarray(names), **arrays)
        os.replace(tmp, path)

    def load(self, index: int) -> dict[str, np.ndarray]:
        with np.load(self._chunk_path(index)) as chunk:
            return {key: chunk[key] for key in chunk.files}

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _write_atomically(path: Path, content: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)
