"""Recompute the shipped models' calibration with whatever onnxruntime and numpy this
interpreter has, and print how far it lands from the shipped numbers (JSON on stdout).

    python runtime_scores.py MNIST_ROOT FASHION_MNIST_ROOT MODEL...

Run by tests/export/test_lowest_runtime.py in a virtual environment holding only the lowest
onnxruntime and numpy that pyproject.toml allows; needs nothing but those two and the source
tree on PYTHONPATH (service.scores is numpy only).
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

from service.models import scores

ROOT = Path(__file__).resolve().parents[2]


def idx_images(path: Path, start: int, stop: int) -> np.ndarray:
    pixels = np.frombuffer(gzip.decompress(path.read_bytes()), np.uint8, offset=16)
    return (pixels.reshape(-1, 1, 28, 28)[start:stop] / 255.0).astype(np.float32)


def model_scores(folder: Path, images: np.ndarray) -> np.ndarray:
    manifest = json.loads((folder / "manifest.json").read_text())
    encoder, decoder = (
        ort.InferenceSession(str(folder / f"{part}.onnx"), providers=["CPUExecutionProvider"])
        for part in ("encoder", "decoder")
    )
    labels, count = None, len(images)
    if manifest["conditional"]:
        images, labels = scores.every_class(images, len(manifest["classes"]))
    extra = (
        {}
        if labels is None
        else {"label": np.eye(len(manifest["classes"]), dtype=np.float32)[labels]}
    )
    encoded = dict(
        zip(
            manifest["encoder"]["outputs"],
            encoder.run(None, {"image": images, **extra}),
            strict=True,
        )
    )
    mean = encoded.get("mean", encoded.get("latent"))
    decoded = dict(
        zip(
            manifest["decoder"]["outputs"],
            decoder.run(None, {"latent": mean, **extra}),
            strict=True,
        )
    )
    values = scores.compute(
        manifest["calibration"]["score"]["name"],
        images,
        decoded["image"],
        mean,
        encoded.get("logvar"),
        logits=decoded.get("logits"),
    )
    return scores.lowest_over_classes(values, count)


def main() -> None:
    mnist, fashion, names = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
    report = {}
    for folder in (ROOT / "exported_models" / name for name in names):
        calibration = json.loads((folder / "manifest.json").read_text())["calibration"]["score"]
        if folder.name == "fashion-vae":  # its validation split is drawn from the training set
            test = model_scores(
                folder, idx_images(fashion / "t10k-images-idx3-ubyte.gz", 0, 10_000)
            )
            rate = float((test > calibration["threshold"]).mean())
            report[folder.name] = abs(rate - calibration["evaluation"]["test_false_alarm_rate"])
            continue
        validation = model_scores(
            folder, idx_images(mnist / "t10k-images-idx3-ubyte.gz", 8000, 9000)
        )
        got = np.quantile(validation, calibration["levels"])
        report[folder.name] = float(np.max(np.abs(got - calibration["quantiles"])))
    print(json.dumps({"onnxruntime": ort.__version__, "numpy": np.__version__, "off_by": report}))


if __name__ == "__main__":
    main()
