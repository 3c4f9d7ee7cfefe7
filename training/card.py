"""The model card: a README.md and a few small pictures in each exported model folder."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from PIL import Image

from training import anomaly
from training.data import Splits
from training.models import FAMILIES, Autoencoder

CARD_DIR = "card"
# Which of training.plots' pictures the card shows, under which title, in which order.
PICTURES = {
    "samples": "Samples",
    "reconstructions": "Reconstructions (test images above, reconstructions below)",
    "latent_scatter": "Latent map of test images",
    "latent_grid": "Decoded grid over a latent plane",
    "interpolation": "Interpolation between test images",
    "scores": "Anomaly scores of held-out images (dashed: the shipped threshold)",
}
MAX_PICTURE_SIDE = 480
PICTURE_COLOURS = 32  # palette PNGs: a fraction of the bytes, no visible loss for these plots


def write_card(
    model: Autoencoder,
    splits: Splits,
    folder: Path,
    manifest: Mapping[str, object],
    score_samples: anomaly.ScoreSamples | None = None,
) -> None:
    """Draw the pictures into `folder/card/` and write `folder/README.md`.

    `manifest` holds the manifest's fields but `files` (the card is hashed with the rest);
    `score_samples`, the held-out anomaly scores, draw the score histogram.
    """
    pictures = draw_pictures(model, splits, folder / CARD_DIR)
    calibration = manifest.get("calibration")
    if score_samples is not None and calibration is not None:
        drawn = anomaly.draw_histogram(
            score_samples, calibration, folder / CARD_DIR / "scores-full.png"
        )
        pictures["scores"] = _shrunk(drawn, folder / CARD_DIR / "scores.png")
    (folder / "README.md").write_text(card_text(manifest, folder, pictures))


def draw_pictures(model: Autoencoder, splits: Splits, card_dir: Path) -> dict[str, Path]:
    from training.plots import draw_all  # matplotlib loads only when a card is drawn

    card_dir.mkdir(parents=True, exist_ok=True)
    drawn = draw_all(model, splits, card_dir)
    pictures = {}
    for key in PICTURES:
        if key in drawn:
            pictures[key] = _shrunk(Path(drawn[key]), card_dir / f"{key}.png")
    for leftover in set(card_dir.iterdir()) - set(pictures.values()):
        # anything else draw_all wrote is not part of the card
        if leftover.is_dir():
            shutil.rmtree(leftover)
        else:
            leftover.unlink()
    return pictures


def card_text(manifest: Mapping[str, object], folder: Path, pictures: Mapping[str, Path]) -> str:
    sections = [
        _heading(manifest),
        _data_section(manifest["dataset"]),
        _metrics_section(manifest["metrics"]),
        _sampling_section(manifest),
        _anomaly_section(manifest.get("calibration")),
        _pixel_section(manifest.get("calibration")),
        _files_section(manifest, folder),
        _pictures_section(folder, pictures),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def _heading(m: Mapping[str, object]) -> str:
    family = FAMILIES[m["family"]]
    kind = "variational" if m["variational"] else "deterministic"
    image = m["image"]
    inputs = " + one-hot `label`" if m["conditional"] else ""
    return (
        f"# {m['name']}\n\n{m['description']}\n\n"
        f"- family: `{m['family']}` ({family.description}); {kind} encoder\n"
        f"- architecture: `{m['architecture']}`, latent size {m['latent_dim']}\n"
        f"- images: {image.channels}x{image.height}x{image.width}, values in "
        f"{list(image.value_range)}\n"
        f"- encoder: `image`{inputs} -> {', '.join(f'`{o}`' for o in m['encoder'].outputs)}; "
        f"decoder: `latent`{inputs} -> {', '.join(f'`{o}`' for o in m['decoder'].outputs)}\n"
        f"- classes: {', '.join(m['classes']) if m['classes'] else 'none'}\n"
        f"- exported {m['created']}; see `manifest.json` for everything below as data"
    )


def _data_section(dataset) -> str:
    rows = "\n".join(
        f"| {split} | {dataset.sizes.get(_size_key(split), '')} | {text} |"
        for split, text in dataset.split.items()
    )
    return (
        f"## Data\n\n`{dataset.name}`: {dataset.source}.\n\n"
        f"| split | images | what |\n|---|---:|---|\n{rows}"
    )


def _size_key(split: str) -> str:
    return "validation" if split in ("val", "validation") else split


def _metrics_section(metrics: Mapping[str, float]) -> str:
    rows = "\n".join(f"| `{key}` | {_number(value)} |" for key, value in metrics.items())
    lines = ["## Test metrics", "", "Measured on the test split (`training.evaluate`)."]
    baseline = _pca_comparison(metrics)
    if baseline:
        lines += ["", baseline]
    lines += ["", "| metric | value |", "|---|---:|", rows]
    return "\n".join(lines)


def _pca_comparison(metrics: Mapping[str, float]) -> str:
    mse, pca = metrics.get("recon_mse"), metrics.get("pca_mse")
    if mse is None or pca is None:
        return ""
    text = (
        f"Against the baseline: reconstruction MSE per pixel {_number(mse)}, against "
        f"{_number(pca)} for PCA with as many components as the latent size (fitted on the "
        f"training split): a ratio of {mse / pca:.3f} (below 1 beats PCA)."
    )
    if "psnr_gain" in metrics:
        text += (
            f" Denoising Gaussian noise (sigma 0.5): PSNR {_number(metrics['psnr_noisy'])} dB "
            f"noisy, {_number(metrics['psnr_denoised'])} dB denoised, a gain of "
            f"{_number(metrics['psnr_gain'])} dB."
        )
    return text


def _sampling_section(m: Mapping[str, object]) -> str:
    sampler = m["sampler"]
    if sampler.kind == "prior":
        how = "z ~ N(0, I), scaled by the temperature, then decoded"
    else:
        how = (
            f"z from a diagonal Gaussian mixture of {len(sampler.weights)} components fitted on "
            "the training latents (a plain AE's latents do not follow N(0, I))"
        )
    return f"## Sampling\n\n{how}. Export draws nothing: sampling happens in the service."


def _anomaly_section(calibration) -> str:
    """The anomaly scores: definitions, threshold, and their figures on held-out data."""
    if calibration is None:
        return ""
    rows = anomaly.evaluation_rows(calibration)
    lines = [
        "## Anomaly scores",
        "",
        f"`POST /score` answers, per image, the score below (higher = more unusual), its "
        f"percentile among the {calibration.images:,} {calibration.split} images, and whether it "
        "exceeds the threshold (see docs/export.md for the definitions).",
        "",
    ]
    for title, score in rows:
        lines.append(
            f"- {title} `{score.name}` ({score.unit}): {score.description}; threshold "
            f"{_number(score.threshold)} = the {score.threshold_quantile:.0%} quantile "
            f"of the {calibration.split} scores"
        )
    keys = list(rows[0][1].evaluation)
    lines += [
        "",
        "Held out (the test split, and other data never trained on):",
        "",
        "| figure | " + " | ".join(f"`{score.name}`" for _, score in rows) + " |",
        "|---|" + "---:|" * len(rows),
    ]
    for key in keys:
        cells = " | ".join(_number(score.evaluation[key]) for _, score in rows)
        lines.append(
            f"| {EVALUATION_WORDS.get(key.split('_', 1)[0], '')}{_set_name(key)} | {cells} |"
        )
    return "\n".join(lines)


def _pixel_section(calibration) -> str:
    """The pixel maps' threshold and the defect benchmark's table (training.benchmark)."""
    pixel = getattr(calibration, "pixel", None)
    if pixel is None:
        return ""
    smoothing = f"smoothed by a Gaussian of σ = {pixel.sigma:g} px" if pixel.sigma else "unsmoothed"
    lines = [
        "## Pixel anomaly maps",
        "",
        f"Each pixel's share of the reconstruction score ({pixel.unit}), {smoothing}; a pixel "
        f"above {_number(pixel.threshold)} is anomalous: {pixel.statistic}.",
    ]
    if pixel.per_class:
        cells = ", ".join(_number(value) for value in pixel.per_class)
        lines[-1] += f" By the class that explains the image best: {cells}."
    if not pixel.evaluation:
        return "\n".join(lines)
    from training.benchmark import markdown_table, unflat

    table = unflat(pixel.evaluation)
    normal = int(table.get("normal", {}).get("images", 0))
    lines += [
        "",
        f"**Defect benchmark** (docs/export.md): {normal:,} normal test images and as many "
        "copies of further test images per defect kind, each with a seeded synthetic defect and "
        "its mask; image figures by the score above and its threshold, pixel figures by the maps "
        "and the pixel threshold; AUPRO as the MVTec AD protocol defines it, to a false-positive "
        "rate of 0.3. `latentserve-train benchmark-anomaly` reproduces it, `latentserve-train "
        "defects` writes the images.",
        "",
        markdown_table(table),
    ]
    return "\n".join(lines)


EVALUATION_WORDS = {"auroc": "AUROC against ", "detected": "flagged at the threshold: ", "test": ""}


def _set_name(key: str) -> str:
    if key == "test_false_alarm_rate":
        return "false-alarm rate on the test split"
    name = key.split("_", 1)[1]
    return "test images + Gaussian noise σ=0.5" if name == anomaly.NOISE_SET else name


def _files_section(m: Mapping[str, object], folder: Path) -> str:
    parity = m["parity"]
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "README.md")
    rows = "\n".join(
        f"| `{p.relative_to(folder).as_posix()}` | {p.stat().st_size / 1024:,.1f} KiB |"
        for p in files
    )
    return (
        f"## Files and parity\n\nONNX opset {m['onnx_opset']}; TorchScript by tracing. "
        "On real test images and latents (32 images; their 32 latents and 32 draws around "
        "them), at batch size 1 and as one batch, the largest absolute "
        f"difference against PyTorch is {parity['torchscript']:.2e} for TorchScript and "
        f"{parity['onnx']:.2e} for ONNX Runtime (CPU); export refuses anything above "
        f"{parity['tolerance']:g}. The anomaly scores of the 32 images computed from the "
        f"graphs' outputs (the Bernoulli likelihood from the decoder's `logits`) differ from "
        f"PyTorch's, in float64, by at most {parity['score_torchscript']:.2e} (TorchScript) "
        f"and {parity['score_onnx']:.2e} (ONNX Runtime); export refuses anything above "
        f"{parity['score_tolerance']:g}.\n\n| file | size |\n|---|---:|\n{rows}"
    )


def _pictures_section(folder: Path, pictures: Mapping[str, Path]) -> str:
    blocks = [
        f"### {PICTURES[key]}\n\n![{key}]({path.relative_to(folder).as_posix()})"
        for key, path in pictures.items()
    ]
    return "## Pictures\n\n" + "\n\n".join(blocks)


def _shrunk(source: Path, target: Path) -> Path:
    """Copy a picture to `target` as a small palette PNG no wider or taller than the limit."""
    with Image.open(source) as picture:
        picture = picture.convert("RGB")
        picture.thumbnail((MAX_PICTURE_SIDE, MAX_PICTURE_SIDE), Image.Resampling.LANCZOS)
        picture = picture.quantize(PICTURE_COLOURS, method=Image.Quantize.MEDIANCUT)
        picture.save(target, optimize=True)
    if source != target:
        source.unlink()
    return target


def _number(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
