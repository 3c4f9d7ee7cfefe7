import dataclasses

import numpy as np
import pytest

from service.models.latents import slerp
from training.plots import draw_all, lerp
from training.train import load_checkpoint, train

PICTURES = {"latent_scatter", "latent_grid", "interpolation", "reconstructions", "samples"}


def test_interpolations_start_and_end_at_the_endpoints():
    start, end = np.array([1.0, 0.0, 0.0]), np.array([0.0, 2.0, 0.0])
    t = np.linspace(0, 1, 5)
    for path in (lerp(start, end, t), slerp(start, end, t)):
        assert np.allclose(path[0], start) and np.allclose(path[-1], end)
    unit = slerp(start, np.array([0.0, 1.0, 0.0]), t)
    assert np.allclose(np.linalg.norm(unit, axis=1), 1.0)  # stays on the sphere


@pytest.mark.parametrize(("family", "latent_dim"), [("vae", 2), ("cvae", 3), ("ae", 4), ("dae", 3)])
def test_draw_all_writes_every_picture(family, latent_dim, tiny_config, tiny_splits, tmp_path):
    config = dataclasses.replace(
        tiny_config, family=family, latent_dim=latent_dim, epochs=1, evaluate=False
    )
    model, _ = load_checkpoint(train(config, tiny_splits).best_checkpoint)
    pictures = draw_all(model, tiny_splits, tmp_path / "pictures")
    assert set(pictures) == PICTURES
    for path in pictures.values():
        assert path.suffix == ".png" and path.stat().st_size > 1000
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
