"""The shipped models' defect-benchmark figures (manifest and card) come back from the data:
`latentserve-train benchmark-anomaly` reproduces what export stored."""

from __future__ import annotations

import pytest

from tests.conftest import EXPORTED_MODELS, SHIPPED
from training import benchmark, defects
from training.export import manifest_config, verify_folder

pytestmark = pytest.mark.realdata


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_model_carries_its_benchmark(name):
    manifest = verify_folder(EXPORTED_MODELS / name)
    table = benchmark.unflat(manifest.calibration.pixel.evaluation)
    assert table["normal"]["images"] == defects.DEFAULT_COUNT // 2
    assert set(table) == {"normal", *defects.KINDS, benchmark.ALL}
    card = (EXPORTED_MODELS / name / "README.md").read_text()
    assert benchmark.markdown_table(table) in card


# one model per dataset, and the conditional one (per-class thresholds); the command test
# below covers mnist-vae-2d
@pytest.mark.parametrize("name", ["mnist-cvae", "fashion-vae"])
def test_the_benchmark_reproduces_the_shipped_figures(name, shared_mnist_root, fashion_mnist_root):
    folder = EXPORTED_MODELS / name
    manifest = verify_folder(folder)
    config = manifest_config(manifest)
    test, foreign, other = defects.benchmark_data(config.dataset, None, manifest.image.shape)
    assert other is not None
    table = benchmark.run_benchmark(
        benchmark.scorer_for(folder, manifest), manifest.calibration, test, foreign
    )
    stored = manifest.calibration.pixel.evaluation
    assert benchmark.flat(table) == pytest.approx(stored, abs=1e-9)


def test_the_command_prints_writes_and_sweeps(
    tmp_path, capsys, shared_mnist_root, fashion_mnist_root
):
    import json

    from training.cli import main

    folder = EXPORTED_MODELS / "mnist-vae-2d"
    out = tmp_path / "figures.json"
    assert main(["benchmark-anomaly", str(folder), "--sigma", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())["mnist-vae-2d"]
    stored = verify_folder(folder).calibration.pixel.evaluation
    assert benchmark.flat(report["table"]) == pytest.approx(stored, abs=1e-9)
    # at the shipped sigma the sweep calibrates the very threshold export did
    assert benchmark.flat(report["sweep"]["1.0"]) == pytest.approx(stored, abs=1e-9)
    assert "| all | 2,000 |" in capsys.readouterr().out
