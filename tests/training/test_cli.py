import dataclasses

import numpy as np
import pytest
from PIL import Image

from training.cli import main, train_parser
from training.train import TrainConfig


def test_help_explains_every_option(capsys):
    text = train_parser().format_help()
    for spec in dataclasses.fields(TrainConfig):
        flag = "--option" if spec.name == "model_options" else "--" + spec.name.replace("_", "-")
        assert flag in text
    assert main(["--help"]) == 0
    assert "train" in capsys.readouterr().out
    assert main(["nonsense"]) == 2


def test_one_command_trains_evaluates_and_draws(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / "pics" / name).mkdir(parents=True)
        for i in range(12):
            pixels = rng.integers(0, 256, (10, 10), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "pics" / name / f"{i}.png")
    config = tmp_path / "run.toml"
    config.write_text('family = "ae"\nepochs = 5\nlatent_dim = 3\n')
    code = main(
        [
            "train",
            "--config",
            str(config),
            "--epochs",
            "1",
            "--dataset",
            "image-folder",
            "--data-root",
            str(tmp_path / "pics"),
            "--image-shape",
            "1",
            "8",
            "8",
            "--option",
            "hidden=[16]",
            "--output-dir",
            str(tmp_path / "runs"),
            "--run-name",
            "cli",
            "--no-progress",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    run = tmp_path / "runs" / "cli"
    assert str(run) in out
    saved = TrainConfig.from_toml(run / "config.toml")
    assert (saved.epochs, saved.family, saved.model_options) == (1, "ae", {"hidden": [16]})
    for name in ("best.pt", "metrics.json", "report.md", "latent_scatter.png", "samples.png"):
        assert (run / name).stat().st_size > 0
    assert (
        main(["evaluate", str(run / "best.pt"), "--out", str(tmp_path / "again"), "--no-plots"])
        == 0
    )
    assert (tmp_path / "again" / "metrics.json").exists()


def test_bad_option_syntax_is_an_error():
    with pytest.raises(SystemExit):
        train_parser().parse_args(["--option", "no-equals-sign"])
