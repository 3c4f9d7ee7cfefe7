"""A user's own image folders: flat or one subfolder per class, split so that every class
reaches validation, test and export's reference set; trained and exported through the CLI, with
the anomaly figures of the shipped models; every mistake answered in one sentence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from training import cli
from training.data import (
    IMAGE_FOLDER_SHAPE,
    DataError,
    image_folder_files,
    load_splits,
    stratified_split,
)


def write_folder(root: Path, counts: dict[str, int] | int, size=(28, 28), seed=0) -> Path:
    """PNG files: `counts` images per class folder, or that many directly in `root` (flat).
    Each class is a bright band at its own height over noise, so classes are learnable."""
    rng = np.random.default_rng(seed)
    classes = {"": counts} if isinstance(counts, int) else counts
    for index, (name, count) in enumerate(classes.items()):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            pixels = rng.integers(0, 60, size, dtype=np.uint8)
            pixels[2 * index : 2 * index + 6] = 220
            mode = "L" if i % 3 else "RGB"
            Image.fromarray(pixels).convert(mode).save(folder / f"{name or 'img'}-{i}.png")
    return root


def test_a_flat_folder_is_one_unlabelled_class(tmp_path):
    splits = load_splits("image-folder", write_folder(tmp_path / "flat", 30))
    assert splits.classes == [] and splits.num_classes == 0
    assert (len(splits.train), len(splits.val), len(splits.test)) == (24, 3, 3)
    assert splits.image_shape == IMAGE_FOLDER_SHAPE == (3, 32, 32)
    assert "flat folder" in splits.info["source"]


def test_class_folders_split_stratified_every_class_in_every_split(tmp_path):
    # 200 images in 10 classes: the folder whose export failed with "no reference latents for
    # classes [6, 8]" when 10 % of the images were drawn regardless of class.
    counts = {f"class{c}": 20 for c in range(10)}
    counts["rare"] = 3  # the fewest a class may have: one image for each split
    splits = load_splits("image-folder", write_folder(tmp_path / "classes", counts))
    assert splits.classes == sorted(counts)
    everyone = set(range(len(counts)))
    for part in (splits.train, splits.val, splits.test):
        assert set(part.labels.tolist()) == everyone
    # The held-out splits interleave the classes: any head as long as the classes holds all.
    assert set(splits.test.labels[: len(counts)].tolist()) == everyone
    assert (len(splits.val), len(splits.test)) == (21, 21)


def test_the_split_is_seeded_and_disjoint():
    labels = torch.tensor([0] * 50 + [1] * 7 + [2] * 13)
    first = stratified_split(labels, 0.1, seed=3)
    again = stratified_split(labels, 0.1, seed=3)
    other = stratified_split(labels, 0.1, seed=4)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))
    joined = torch.cat(first).tolist()
    assert sorted(joined) == list(range(len(labels)))


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("empty", "holds no images"),
        ("mixed", "both images"),
        ("tiny-class", "needs at least 3"),
        ("not-an-image", "is not an image"),
    ],
)
def test_folders_that_cannot_work_say_why(tmp_path, layout, message):
    root = tmp_path / layout
    root.mkdir()
    if layout == "mixed":
        write_folder(root, 5)
        write_folder(root, {"cats": 5, "dogs": 5})
    elif layout == "tiny-class":
        write_folder(root, {"cats": 10, "dogs": 2})
    elif layout == "not-an-image":
        write_folder(root, 5)
        (root / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=message):
        load_splits("image-folder", root)


def test_a_single_class_folder_is_one_labelled_class(tmp_path):
    files, labels, classes = image_folder_files(write_folder(tmp_path / "one", {"cats": 4}))
    assert (len(files), set(labels), classes) == (4, {0}, ["cats"])


def test_train_help_states_the_layout_and_the_default_shape(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "flat (its images directly inside: one unlabelled class)" in text
    assert "one subfolder per class" in text
    assert "3x32x32" in text and "--image-shape" in text


TINY = ["--epochs", "1", "--latent-dim", "2", "--option", "hidden=[16]", "--iw-samples", "2"]


def train_and_export(capsys, data_root: Path, out: Path, *extra: str) -> dict:
    runs = out.parent / "runs"
    argv = ["train", "--dataset", "image-folder", "--data-root", str(data_root), *TINY]
    assert cli.main([*argv, "--no-plots", "--output-dir", str(runs), *extra]) == 0
    trained = capsys.readouterr()
    assert "\r" not in trained.err, "a progress bar drawn where stderr is not a terminal"
    assert "test metrics:" in trained.out
    (best,) = runs.glob("*/best.pt")
    assert cli.main(["export", str(best), str(out)]) == 0, capsys.readouterr().err
    return json.loads((out / "manifest.json").read_text())


@pytest.mark.slow
def test_a_model_trained_on_class_folders_exports_with_every_class(tmp_path, capsys):
    data = write_folder(tmp_path / "digits", {f"class{c}": 20 for c in range(10)})
    manifest = train_and_export(capsys, data, tmp_path / "models" / "my-digits")
    assert manifest["classes"] == [f"class{c}" for c in range(10)]
    image = manifest["image"]
    assert (image["channels"], image["height"], image["width"]) == (3, 32, 32)
    reference = json.loads((tmp_path / "models" / "my-digits" / "reference.json").read_text())
    assert len(reference["class_means"]) == 10
    figures = manifest["calibration"]["score"]["evaluation"]
    assert figures["auroc_gaussian_noise_0.5"] > 0.5
    assert "test_false_alarm_rate" in figures


@pytest.mark.slow
def test_a_model_trained_on_a_flat_folder_exports(tmp_path, capsys):
    data = write_folder(tmp_path / "flat", 40)
    manifest = train_and_export(
        capsys, data, tmp_path / "models" / "my-flat", "--image-shape", "1", "16", "16"
    )
    assert manifest["classes"] is None
    image = manifest["image"]
    assert (image["channels"], image["height"], image["width"]) == (1, 16, 16)
    assert "auroc_gaussian_noise_0.5" in manifest["calibration"]["score"]["evaluation"]


@pytest.mark.slow
@pytest.mark.realdata
def test_your_own_export_is_evaluated_against_another_dataset(
    tmp_path, capsys, fashion_mnist_root, shared_mnist_root
):
    """Like the shipped digit models: a digit model's export is evaluated against
    Fashion-MNIST by default, and a folder model's against the dataset asked for."""
    runs = tmp_path / "runs"
    argv = ["train", "--dataset", "mnist-test-only", "--data-root", str(shared_mnist_root)]
    argv += [*TINY, "--train-limit", "300", "--no-plots", "--output-dir", str(runs)]
    assert cli.main(argv) == 0
    (best,) = runs.glob("*/best.pt")
    assert cli.main(["export", str(best), str(tmp_path / "my-digits")]) == 0
    manifest = json.loads((tmp_path / "my-digits" / "manifest.json").read_text())
    for score in ("score", "corrected"):
        figures = manifest["calibration"][score]["evaluation"]
        assert {"auroc_fashion-mnist", "auroc_gaussian_noise_0.5"} <= set(figures)

    folder = write_folder(tmp_path / "bands", {f"band{c}": 10 for c in range(3)})
    out = tmp_path / "folder-model"
    runs = tmp_path / "folder-runs"
    argv = ["train", "--dataset", "image-folder", "--data-root", str(folder), *TINY]
    assert cli.main([*argv, "--no-plots", "--output-dir", str(runs)]) == 0
    (best,) = runs.glob("*/best.pt")
    other = f"fashion-mnist={fashion_mnist_root}"
    assert cli.main(["export", str(best), str(out), "--outlier", other]) == 0
    figures = json.loads((out / "manifest.json").read_text())["calibration"]["score"]
    assert "auroc_fashion-mnist" in figures["evaluation"]


@pytest.mark.parametrize(
    ("argv", "status", "sentence"),
    [
        (["train", "--dataset", "image-folder"], 2, "needs --data-root FOLDER"),
        (["train", "--family", "vea"], 2, "unknown family 'vea'"),
        (["train", "--config", "no-such.toml"], 2, "cannot read the config file"),
        (["train", "--epochs", "many"], 2, "invalid int value"),
        (["train", "--dataset", "image-folder", "--data-root", "/no/such"], 1, "does not exist"),
        (["export", "no-such.pt", "out"], 1, "No such file or directory: no-such.pt"),
        (["evaluate", "no-such.pt"], 1, "No such file or directory: no-such.pt"),
        (["nope"], 2, "unknown command 'nope'"),
    ],
)
def test_train_cli_mistakes_are_one_sentence_and_a_status(tmp_path, capsys, argv, status, sentence):
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse's own usage errors
        code = exit_.code
    err = capsys.readouterr().err
    assert code == status
    assert sentence in err
    assert "Traceback" not in err


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(FileNotFoundError):
        cli.main(["export", "no-such.pt", "out", "--debug"])
