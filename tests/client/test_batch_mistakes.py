"""`latentserve-batch` answers a mistake in one sentence: no server, no input, bad options;
its docstring's examples are valid command lines; its progress bar stays out of pipes."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import client.batch
from client.batch import build_parser, main
from tests.service.conftest import free_port


def one_png(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("L", (28, 28)).save(folder / "digit.png")
    return folder


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "client.batch", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        env={"PYTHONPATH": str(Path(client.batch.__file__).parents[1]), "PATH": "/usr/bin:/bin"},
    )


def test_no_server_reachable_is_one_sentence(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    folder = one_png(tmp_path / "digits")
    result = run_cli("--url", url, "encode", str(folder), "-o", "z.npz", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert result.stderr.startswith(f"latentserve-batch: cannot reach {url}")
    assert "is the server running?" in result.stderr


def test_debug_shows_the_traceback(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    folder = one_png(tmp_path / "digits")
    result = run_cli("encode", str(folder), "-o", "z.npz", "--url", url, "--debug", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "ConnectionFailed" in result.stderr


@pytest.mark.parametrize(
    ("argv", "status", "sentence"),
    [
        (["encode", "no-such-folder", "-o", "z.npz"], 1, "no images found in no-such-folder"),
        (["decode", "no-such.npz", "-o", "out"], 1, "No such file or directory: no-such.npz"),
        (["--concurrency", "0", "sample", "-o", "out"], 2, "needs at least 1, got 0"),
        (["sample", "-n", "many", "-o", "out"], 2, "wants a whole number"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_mistakes_are_one_sentence_and_a_status(
    tmp_path, monkeypatch, capsys, argv, status, sentence
):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(["--url", f"http://127.0.0.1:{free_port()}", *argv])
    except SystemExit as exit_:  # argparse's own usage errors
        code = exit_.code
    err = capsys.readouterr().err
    assert code == status
    assert sentence in err
    assert "Traceback" not in err


def docstring_examples() -> list[list[str]]:
    lines = [line.strip() for line in client.batch.__doc__.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("latentserve-batch ")]


def test_the_docstring_examples_are_valid_command_lines():
    examples = docstring_examples()
    assert len(examples) == 4
    for argv in examples:
        args = build_parser().parse_args(argv)
        assert args.command == argv[0]
    concurrency = next(a for a in examples if "--concurrency" in a)
    assert build_parser().parse_args(concurrency).concurrency == 8


def test_shared_options_go_before_or_after_the_command():
    before = build_parser().parse_args(["--batch-size", "5", "sample", "-o", "x"])
    after = build_parser().parse_args(["sample", "-o", "x", "--batch-size", "5"])
    neither = build_parser().parse_args(["sample", "-o", "x"])
    assert before.batch_size == after.batch_size == 5
    assert neither.batch_size == 64 and neither.url == "http://127.0.0.1:8000"


def test_help_is_not_cut_off(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    first = " ".join(client.batch.__doc__.split("\n\n")[0].split())
    assert first in text and first.endswith("into a CSV.")


@pytest.mark.slow
def test_no_progress_bar_when_output_is_not_a_terminal(server, tmp_path):
    result = run_cli("--url", server.url, "sample", "-n", "3", "-o", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr and not re.search(r"\d+img/s|it/s|\|\S*\|", result.stderr)
    assert result.stderr.strip() == "wrote 3 images to out"
