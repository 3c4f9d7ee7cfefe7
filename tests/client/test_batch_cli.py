"""`latentserve-batch` against a real service: encode folders, resume, decode, sample."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from client import Client
from client.batch import main

pytestmark = pytest.mark.slow

VAE = "mnist-vae-2d"


def batch(server, *args: str) -> int:
    return main(["--url", server.url, "--model", VAE, *args])


def encode_requests(server) -> float:
    """How many /encode requests the server has answered, from its Prometheus counters."""
    with Client(server.url) as client:
        text = client.metrics()
    pattern = r'latentserve_requests_total\{[^}]*route="/encode"[^}]*\} ([0-9.e+]+)'
    return sum(float(v) for v in re.findall(pattern, text))


def test_encode_a_folder_into_latents_and_file_names(server, digit_folder, tmp_path):
    out = tmp_path / "latents.npz"
    assert (
        batch(
            server,
            "--batch-size",
            "8",
            "--concurrency",
            "3",
            "encode",
            str(digit_folder),
            "-o",
            str(out),
        )
        == 0
    )
    files = sorted(digit_folder.rglob("*.png"))
    with np.load(out) as result:
        assert result["names"].tolist() == [str(f) for f in files]
        assert result["latents"].shape == (len(files), 2)
        assert str(result["model"]) == VAE
        latents = result["latents"]
    with Client(server.url, model=VAE) as client:
        np.testing.assert_allclose(latents, client.encode(files).latents, atol=1e-5)
    assert not out.with_name("latents.npz.partial").exists(), "partial results are cleaned up"


def test_encode_takes_glob_patterns(server, digit_folder, tmp_path):
    out = tmp_path / "odd.npz"
    assert batch(server, "encode", str(digit_folder / "odd" / "*.png"), "-o", str(out)) == 0
    with np.load(out) as result:
        names = result["names"].tolist()
    assert names and all("/odd/" in name for name in names)


def test_an_interrupted_encode_resumes_without_redoing_finished_chunks(
    server, digit_folder, tmp_path, capsys
):
    folder = tmp_path / "images"
    folder.mkdir()
    for index, path in enumerate(sorted(digit_folder.rglob("*.png"))):
        shutil.copy(path, folder / f"{index:03d}.png")
    broken, good_copy = folder / "026.png", (folder / "026.png").read_bytes()
    broken.write_bytes(b"not a png")  # chunk 3 of 5 fails: the run stops there
    out = tmp_path / "latents.npz"
    args = ("--batch-size", "8", "--concurrency", "1", "encode", str(folder), "-o", str(out))

    assert batch(server, *args) == 1
    assert "the server refused" in capsys.readouterr().err
    partial = out.with_name("latents.npz.partial")
    assert sorted(p.name for p in partial.glob("chunk-*.npz")) == [
        "chunk-000000.npz",
        "chunk-000001.npz",
        "chunk-000002.npz",
    ]
    assert not out.exists()

    broken.write_bytes(good_copy)
    before = encode_requests(server)
    assert batch(server, *args) == 0
    assert encode_requests(server) - before == 2, "only chunks 3 and 4 are sent again"
    with np.load(out) as result, Client(server.url, model=VAE) as client:
        files = sorted(folder.glob("*.png"))
        assert result["names"].tolist() == [str(f) for f in files]
        np.testing.assert_allclose(result["latents"], client.encode(files).latents, atol=1e-5)


def test_partial_results_of_other_settings_are_not_mixed_in(server, digit_folder, tmp_path, capsys):
    out = tmp_path / "latents.npz"
    partial = out.with_name("latents.npz.partial")
    partial.mkdir()
    (partial / "job.json").write_text('{"batch_size": 3}')
    assert batch(server, "encode", str(digit_folder), "-o", str(out)) == 2
    assert "--restart" in capsys.readouterr().err
    assert batch(server, "encode", str(digit_folder), "-o", str(out), "--restart") == 0
    assert out.exists()


def test_decode_an_encode_result_into_named_pngs(server, digit_folder, tmp_path):
    latents = tmp_path / "latents.npz"
    assert batch(server, "encode", str(digit_folder / "even"), "-o", str(latents)) == 0
    out = tmp_path / "decoded"
    assert batch(server, "--batch-size", "5", "decode", str(latents), "-o", str(out)) == 0
    with np.load(latents) as result:
        names, z = result["names"].tolist(), result["latents"]
    written = sorted(out.glob("*.png"))
    assert [p.name for p in written] == [f"{i:06d}_{Path(n).stem}.png" for i, n in enumerate(names)]
    with Client(server.url, model=VAE) as client:
        expected = client.decode(z).images.numpy()
    decoded = np.stack([np.asarray(Image.open(p), np.float32)[None] / 255 for p in written])
    np.testing.assert_array_equal(decoded, expected)


def test_decode_a_plain_npy_array(server, tmp_path):
    latents = tmp_path / "grid.npy"
    np.save(latents, np.stack(np.meshgrid(np.linspace(-2, 2, 3), [0.0]), -1).reshape(-1, 2))
    out = tmp_path / "decoded"
    assert batch(server, "decode", str(latents), "-o", str(out)) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"decoded_{i:06d}.png" for i in range(3)]


def test_sample_is_reproducible_and_matches_the_api(server, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    for out in (first, second):
        assert (
            batch(server, "--batch-size", "8", "sample", "-n", "20", "--seed", "5", "-o", str(out))
            == 0
        )
    names = sorted(p.name for p in first.iterdir())
    assert names == [f"sample_{i:06d}.png" for i in range(20)]
    assert all((first / n).read_bytes() == (second / n).read_bytes() for n in names)
    with Client(server.url, model=VAE) as client:
        api_pngs = client.sample(8, seed=5).images.pngs
    assert [(first / n).read_bytes() for n in names[:8]] == api_pngs


def test_the_console_script_is_installed(server, tmp_path):
    script = Path(sys.executable).with_name("latentserve-batch")
    assert script.exists(), "pip install -e . declares latentserve-batch"
    result = subprocess.run(
        [str(script), "--url", server.url, "sample", "-n", "2", "--seed", "1", "-o", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert len(list(tmp_path.glob("*.png"))) == 2


def score_requests(server) -> float:
    with Client(server.url) as client:
        text = client.metrics()
    pattern = r'latentserve_requests_total\{[^}]*route="/score"[^}]*\} ([0-9.e+]+)'
    return sum(float(v) for v in re.findall(pattern, text))


def test_score_a_folder_into_a_csv_and_resume_after_a_failure(
    server, digit_folder, tmp_path, capsys
):
    folder = tmp_path / "incoming"
    shutil.copytree(digit_folder, folder)
    odd = folder / "odd" / "scribble.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (28, 28), dtype=np.uint8)).save(odd)
    broken = folder / "zz-broken.png"
    broken.write_bytes(b"not a png")  # sorts last: the last chunk fails, the others are kept
    out = tmp_path / "scores.csv"
    args = ("--batch-size", "16", "--concurrency", "1", "score", str(folder), "-o", str(out))
    assert main(["--url", server.url, "--model", "mnist-vae", *args]) == 1
    assert not out.exists() and "the server refused" in capsys.readouterr().err
    assert len(list(out.with_name("scores.csv.partial").glob("chunk-*.npz"))) == 2

    broken.unlink()
    before = score_requests(server)
    assert main(["--url", server.url, "--model", "mnist-vae", *args]) == 0
    assert score_requests(server) - before == 1, "only the failed chunk is sent again"
    rows = list(csv.DictReader(out.open()))
    files = sorted(p for p in folder.rglob("*.png"))
    assert [row["path"] for row in rows] == [str(f) for f in files]
    assert set(rows[0]) == {
        "path",
        "score",
        "percentile",
        "anomalous",
        "corrected_score",
        "corrected_percentile",
        "corrected_anomalous",
    }
    with Client(server.url, model="mnist-vae") as client:
        expected = client.score(files)
    np.testing.assert_allclose([float(r["score"]) for r in rows], expected.scores, rtol=1e-5)
    flagged = {Path(r["path"]).name for r in rows if r["anomalous"] == "true"}
    assert "scribble.png" in flagged and len(flagged) <= 3
    assert f"{len(flagged)} anomalous" in capsys.readouterr().err


def test_score_writes_a_heatmap_per_image_beside_the_csv(server, digit_folder, tmp_path):
    out, maps = tmp_path / "scores.csv", tmp_path / "heatmaps"
    assert batch(server, "score", str(digit_folder), "-o", str(out), "--maps", str(maps)) == 0
    rows = list(csv.DictReader(out.open()))
    assert rows and all((maps / row["heatmap"]).is_file() for row in rows)
    assert sorted(p.name for p in maps.iterdir()) == sorted(row["heatmap"] for row in rows)
    for row in rows[:3]:
        heat = np.asarray(Image.open(maps / row["heatmap"]))
        assert heat.shape == (28, 28, 3)
        assert int(row["anomalous_pixels"]) >= 0 and float(row["pixel_threshold"]) > 0
        assert Path(row["heatmap"]).stem.endswith(Path(row["path"]).stem)
