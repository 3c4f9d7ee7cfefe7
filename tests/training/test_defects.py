"""The defect generator: seeded, 8-bit, and its masks are exactly the pixels that changed."""

import numpy as np
import pytest

from training import defects
from training.defects import KINDS, MIN_PIXELS, VISIBLE, benchmark_set, defective


def digit_like(count: int = 12, side: int = 28, seed: int = 5) -> np.ndarray:
    """Bright strokes on black, 8-bit: enough of a digit for every defect kind."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, 1, side, side), np.float32)
    for image in images:
        y, x = rng.integers(2, side - 11, 2)
        image[0, y : y + 10, x : x + 3] = 1.0
        image[0, y : y + 3, x : x + 8] = rng.integers(150, 256) / 255.0
    return defects.to_float(defects.to_bytes(images))


def foreign_images(count: int = 5, side: int = 28) -> np.ndarray:
    return defects.to_float(np.random.default_rng(9).integers(0, 256, (count, 1, side, side)))


def test_the_same_seed_makes_the_same_set_and_another_seed_another():
    images, foreign = digit_like(), foreign_images()
    first = benchmark_set(images, seed=3, foreign=foreign)
    again = benchmark_set(images, seed=3, foreign=foreign)
    other = benchmark_set(images, seed=4, foreign=foreign)
    assert first.kinds == list(KINDS)
    np.testing.assert_array_equal(first.normal, again.normal)
    for kind in KINDS:
        np.testing.assert_array_equal(first.anomalous[kind], again.anomalous[kind])
        np.testing.assert_array_equal(first.masks[kind], again.masks[kind])
        assert not np.array_equal(first.masks[kind], other.masks[kind])


def test_masks_are_exactly_the_changed_pixels():
    images, foreign = digit_like(), foreign_images()
    made = benchmark_set(images, seed=0, foreign=foreign)
    np.testing.assert_array_equal(made.normal, images[: len(images) // 2])
    bases = images[made.defect_index]
    for kind in KINDS:
        changed = np.abs(made.anomalous[kind] - bases).max(axis=1)
        np.testing.assert_array_equal(made.masks[kind], changed > 0)
        assert changed[made.masks[kind]].min() >= VISIBLE / 255 - 1e-6
        assert (made.masks[kind].sum(axis=(1, 2)) >= MIN_PIXELS).all()
        steps = made.anomalous[kind] * 255
        np.testing.assert_array_equal(steps, np.round(steps))  # 8-bit, as a PNG holds it


def test_an_images_defect_depends_on_seed_kind_and_index_alone():
    images = digit_like()
    for kind in ("stroke", "missing"):
        image, mask = defective(images[7], kind, 0, 7)
        made = benchmark_set(images, seed=0, count=10)  # image 7 is a base here too
        row = list(made.defect_index).index(7)
        np.testing.assert_array_equal(made.anomalous[kind][row], image)
        np.testing.assert_array_equal(made.masks[kind][row], mask)


def test_missing_parts_erase_ink_and_strokes_add_contrast():
    images = digit_like()
    made = benchmark_set(images, seed=1)
    bases = images[made.defect_index]
    missing = made.masks["missing"]
    assert (made.anomalous["missing"] < bases)[:, 0][missing].all()  # ink removed
    for kind in ("stroke", "blob"):  # on black ground, bright
        assert (made.anomalous[kind] > bases)[:, 0][made.masks[kind]].mean() > 0.9


def test_foreign_patches_need_foreign_images_and_rgb_works():
    rgb = np.repeat(digit_like(6, 16), 3, axis=1)
    made = benchmark_set(rgb, seed=0)
    assert made.kinds == ["stroke", "blob", "missing"]
    assert made.anomalous["stroke"].shape == (3, 3, 16, 16)
    assert made.masks["stroke"].shape == (3, 16, 16)
    made = benchmark_set(rgb, seed=0, foreign=foreign_images(3, 16))
    assert "foreign" in made.kinds
    with pytest.raises(defects.DefectError):
        benchmark_set(rgb[:1])
    with pytest.raises(ValueError):
        defective(rgb[0], "nonsense", 0, 0)


def test_written_folders_read_back_to_the_same_arrays(tmp_path):
    from training.benchmark import read_folder, read_masks

    images, foreign = digit_like(), foreign_images()
    made = benchmark_set(images, seed=0, foreign=foreign)
    defects.write_set(made, tmp_path / "set", {"dataset": "generated"})
    normal = read_folder(tmp_path / "set" / "normal", (1, 28, 28), "normal")
    np.testing.assert_array_equal(normal.images, made.normal)
    anomalous = read_folder(tmp_path / "set" / "anomalous", (1, 28, 28), "anomalous")
    masks = read_masks(tmp_path / "set" / "masks", anomalous.paths, (1, 28, 28))
    for kind in made.kinds:  # class folders are read in sorted order
        chosen = np.array([group == kind for group in anomalous.groups])
        np.testing.assert_array_equal(anomalous.images[chosen], made.anomalous[kind])
        np.testing.assert_array_equal(masks[chosen], made.masks[kind])
    assert (tmp_path / "set" / "defects.json").is_file()
