"""defects, evaluate-anomaly and the benchmark at export, on tiny generated models (fast)."""

import json

import numpy as np
import pytest
from PIL import Image

from service.models.manifest import Manifest
from tests.export.tiny_models import generated_splits, trained_model
from training import benchmark, defects
from training.cli import main
from training.evaluate import evaluate
from training.export import export_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny conditional VAE and AE exported with an outlier set: the benchmark ran."""
    splits = generated_splits()
    foreign = 1.0 - splits.test.images  # the "other dataset" the patches come from
    root = tmp_path_factory.mktemp("models")
    folders = {}
    for family in ("cvae", "ae"):
        model = trained_model(family, splits)
        export_model(
            model,
            splits,
            root / f"tiny-{family}",
            metrics=evaluate(model, splits, iw_samples=5),
            training={"model_options": {"hidden": [32]}},
            outliers={"inverted": type(splits.test)(foreign, splits.test.labels)},
        )
        folders[family] = root / f"tiny-{family}"
    return splits, foreign.numpy(), folders


def manifest_of(folder) -> Manifest:
    return Manifest.model_validate_json((folder / "manifest.json").read_text())


@pytest.mark.parametrize("family", ["cvae", "ae"])
def test_export_stores_the_benchmark_and_the_card_shows_it(tiny, family):
    _, _, folders = tiny
    manifest = manifest_of(folders[family])
    table = benchmark.unflat(manifest.calibration.pixel.evaluation)
    assert table["normal"]["images"] == 30
    assert set(table) == {"normal", *defects.KINDS, benchmark.ALL}
    for kind in (*defects.KINDS, benchmark.ALL):
        for metric in benchmark.METRICS:
            assert 0.0 <= table[kind][metric] <= 1.0
    card = (folders[family] / "README.md").read_text()
    assert "## Pixel anomaly maps" in card
    assert "| missing | 30 |" in card


@pytest.mark.parametrize("family", ["cvae", "ae"])
def test_evaluate_anomaly_on_the_written_set_reproduces_the_manifest(tiny, tmp_path, family):
    splits, foreign, folders = tiny
    made = defects.benchmark_set(splits.test.images.numpy(), seed=0, foreign=foreign)
    defects.write_set(made, tmp_path / "set")
    out = tmp_path / "out"
    code = main(
        [
            "evaluate-anomaly",
            str(folders[family]),
            "--normal",
            str(tmp_path / "set" / "normal"),
            "--anomalous",
            str(tmp_path / "set" / "anomalous"),
            "--masks",
            str(tmp_path / "set" / "masks"),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    stored = benchmark.unflat(manifest_of(folders[family]).calibration.pixel.evaluation)
    for group, row in results["groups"].items():
        for metric, value in row.items():
            assert value == pytest.approx(stored[group][metric], abs=1e-12), (group, metric)
    for picture in ("roc.png", "histogram.png"):
        with Image.open(out / picture) as image:
            assert image.size[0] > 100


def test_evaluate_anomaly_without_masks_gives_image_figures(tiny, tmp_path, capsys):
    splits, _, folders = tiny
    made = defects.benchmark_set(splits.test.images.numpy(), seed=0, kinds=("blob",))
    defects.write_set(made, tmp_path / "set")
    flat = tmp_path / "flat"  # a flat folder of anomalous images: one group
    flat.mkdir()
    for path in (tmp_path / "set" / "anomalous" / "blob").iterdir():
        path.rename(flat / path.name)
    code = main(
        [
            "evaluate-anomaly",
            str(folders["ae"]),
            "--normal",
            str(tmp_path / "set" / "normal"),
            "--anomalous",
            str(flat),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    groups = json.loads((tmp_path / "out" / "results.json").read_text())["groups"]
    assert set(groups) == {"anomalous"}
    assert set(groups["anomalous"]) == {"images", "image_auroc", "image_f1"}
    assert "image AUROC" in capsys.readouterr().out


def test_mistakes_are_one_sentence(tiny, tmp_path, capsys):
    splits, _, folders = tiny
    made = defects.benchmark_set(splits.test.images.numpy(), seed=0, kinds=("stroke",))
    defects.write_set(made, tmp_path / "set")
    base = ["evaluate-anomaly", str(folders["ae"]), "--normal", str(tmp_path / "set" / "normal")]
    cases = [
        (base + ["--anomalous", str(tmp_path / "nowhere")], 2, "is not a folder"),
        (
            ["evaluate-anomaly", str(tmp_path), "--normal", str(tmp_path), "--anomalous", "."],
            2,
            "not an exported model folder",
        ),
        (
            base + ["--anomalous", str(tmp_path / "set" / "anomalous"), "--masks", str(tmp_path)],
            1,
            "no mask for",
        ),
    ]
    for argv, status, words in cases:
        assert main(argv + ["--out", str(tmp_path / "out")]) == status
        err = capsys.readouterr().err
        assert words in err
        assert "Traceback" not in err
    with pytest.raises(SystemExit) as exited:  # argparse's own usage error, as for train
        main(base)
    assert exited.value.code == 2
    assert "--anomalous" in capsys.readouterr().err
    masks = ["--anomalous", str(tmp_path / "set" / "anomalous"), "--masks", str(tmp_path)]
    with pytest.raises(ValueError, match="no mask for"):  # --debug lets it through
        main(base + masks + ["--debug"])


def test_the_defects_command_writes_a_set(tmp_path, capsys):
    rng = np.random.default_rng(0)
    pictures = tmp_path / "pictures"
    for name in ("a", "b"):
        (pictures / name).mkdir(parents=True)
        for i in range(20):
            pixels = np.zeros((16, 16), np.uint8)
            y, x = rng.integers(2, 10, 2)
            pixels[y : y + 5, x : x + 3] = 255
            Image.fromarray(pixels).save(pictures / name / f"{i}.png")
    out = tmp_path / "set"
    argv = ["defects", str(out), "--dataset", "image-folder", "--data-root", str(pictures)]
    assert main(argv + ["--image-shape", "1", "16", "16"]) == 0
    about = json.loads((out / "defects.json").read_text())
    assert about["dataset"] == "image-folder" and about["seed"] == 0
    assert sorted(p.name for p in (out / "anomalous").iterdir()) == ["blob", "missing", "stroke"]
    assert len(list((out / "normal").iterdir())) == 2  # 4 test images: 2 normal, 2 bases
    assert "foreign" in capsys.readouterr().out  # the note: no other dataset here
    assert main(argv) == 2  # the folder is not empty now
    assert "not empty" in capsys.readouterr().err
