"""AUPRO, pixel AUROC and F1 on cases whose answers are known by hand."""

import numpy as np
import pytest

from training.pixel_metrics import (
    area_to,
    aupro,
    f1,
    pixel_auroc,
    pro_curve,
    regions,
    roc_curve,
)


def masks_and_maps(seed: int = 0, count: int = 20, side: int = 16):
    rng = np.random.default_rng(seed)
    masks = np.zeros((count, side, side), bool)
    for image in range(count // 2, count):  # half the images defect-free
        for _ in range(rng.integers(1, 3)):
            y, x = rng.integers(0, side - 4, 2)
            h, w = rng.integers(1, 5, 2)
            masks[image, y : y + h, x : x + w] = True
    return masks, rng


def test_a_perfect_map_scores_one_and_an_inverted_map_zero():
    masks, _ = masks_and_maps()
    perfect = masks.astype(float)
    assert aupro(perfect, masks) == 1.0
    assert pixel_auroc(perfect, masks) == 1.0
    assert aupro(1.0 - perfect, masks) == 0.0
    assert pixel_auroc(1.0 - perfect, masks) == 0.0
    # graded, not just two values: defect pixels anywhere above every normal pixel
    rng = np.random.default_rng(1)
    graded = np.where(masks, 2.0 + rng.random(masks.shape), rng.random(masks.shape))
    assert aupro(graded, masks) == 1.0
    assert aupro(-graded, masks) == 0.0


def test_a_constant_map_scores_half_the_limit():
    masks, _ = masks_and_maps()
    assert aupro(np.zeros(masks.shape), masks) == pytest.approx(0.15, abs=1e-12)
    assert aupro(np.zeros(masks.shape), masks, limit=1.0) == pytest.approx(0.5, abs=1e-12)
    assert pixel_auroc(np.zeros(masks.shape), masks) == 0.5


def test_a_random_map_scores_about_half_the_limit():
    masks, rng = masks_and_maps(count=200, side=28)
    values = [aupro(rng.random(masks.shape), masks) for _ in range(5)]
    assert np.mean(values) == pytest.approx(0.15, abs=0.01)


def test_a_hand_computed_curve():
    # one image of 5 pixels, one region of 2: values 0.9 (defect) 0.8 0.3 0.2 (normal) 0.1
    # (defect): PRO 0.5 from FPR 0 to 1, then 1
    masks = np.array([[[True, True, False, False, False]]])
    maps = np.array([[[0.9, 0.1, 0.8, 0.2, 0.3]]])
    fpr, pro = pro_curve(maps, masks)
    np.testing.assert_allclose(fpr, [0, 0, 1 / 3, 2 / 3, 1, 1])
    np.testing.assert_allclose(pro, [0, 0.5, 0.5, 0.5, 0.5, 1])
    assert aupro(maps, masks) == pytest.approx(0.5, abs=1e-12)


def test_regions_count_equally_whatever_their_size():
    # a 1-pixel region found first, a 3-pixel region found last: PRO 0.5 (pixel recall 1/4)
    masks = np.zeros((2, 4, 4), bool)
    masks[0, 0, 0] = True
    masks[1, 1, 1:4] = True
    maps = np.full(masks.shape, 0.5)
    maps[0, 0, 0] = 1.0
    maps[1, 1, 1:4] = 0.0
    assert aupro(maps, masks) == pytest.approx(0.5, abs=1e-12)


def test_the_pro_at_the_limit_is_interpolated_and_the_area_normalised():
    # 4 normal pixels 4 3 2 1 (FPR steps of 0.25), one defect pixel tied with the normal 3:
    # the curve goes (0.25, 0) -> (0.5, 1), so PRO(0.3) = 0.2 and the area 0.05 * 0.1
    masks = np.array([[[False, False, False, False, True]]])
    maps = np.array([[[4.0, 3.0, 2.0, 1.0, 3.0]]])
    fpr, pro = pro_curve(maps, masks)
    np.testing.assert_allclose(fpr, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(pro, [0, 0, 1, 1, 1])
    assert aupro(maps, masks) == pytest.approx(0.005 / 0.3, abs=1e-12)
    # above the normal 3: PRO 1 from FPR 0.25, area 0.05
    maps[0, 0, 4] = 3.5
    assert aupro(maps, masks) == pytest.approx(0.05 / 0.3, abs=1e-12)
    # a point exactly at the limit, vertical there: nothing of it lies inside
    assert area_to([0, 0.1, 0.3, 0.3, 1], [0, 0, 0, 1, 1], 0.3) == 0.0
    assert area_to([0, 0.1, 0.3, 0.3, 1], [0, 0, 0, 1, 1], 1.0) == pytest.approx(0.7)
    with pytest.raises(ValueError):
        area_to([0, 0.5], [0, 1], 0.7)


def test_never_above_one_nor_below_zero():
    for seed in range(20):
        masks, rng = masks_and_maps(seed, count=6, side=8)
        for maps in (
            rng.random(masks.shape),
            np.round(rng.random(masks.shape), 1),  # many ties
            masks + 1e-9 * rng.random(masks.shape),
            np.where(masks, 1.0, rng.random(masks.shape) ** 8),
        ):
            for limit in (0.05, 0.3, 1.0):
                value = aupro(maps, masks, limit)
                assert 0.0 <= value <= 1.0


def test_regions_are_eight_connected_within_an_image():
    masks = np.zeros((2, 5, 5), bool)
    masks[0, 0, 0] = masks[0, 1, 1] = True  # diagonal neighbours: one region
    masks[0, 3, 3] = True  # apart: a second
    masks[1, 0, 0] = True  # the same pixel in the next image: a third
    _, count = regions(masks)
    assert count == 3


def test_curves_need_both_kinds_of_pixels():
    with pytest.raises(ValueError):
        aupro(np.zeros((1, 3, 3)), np.zeros((1, 3, 3), bool))
    with pytest.raises(ValueError):
        aupro(np.zeros((1, 3, 3)), np.ones((1, 3, 3), bool))
    with pytest.raises(ValueError):
        pixel_auroc(np.zeros((1, 3, 3)), np.zeros((1, 3, 3), bool))
    with pytest.raises(ValueError):
        aupro(np.zeros((1, 3, 3)), np.zeros((1, 3, 4), bool))


def test_f1_and_roc():
    truth = np.array([1, 1, 0, 0, 1], bool)
    assert f1(truth, truth) == 1.0
    assert f1(~truth, truth) == 0.0
    assert f1(np.array([1, 0, 1, 0, 0], bool), truth) == pytest.approx(2 / (2 + 1 + 2))
    assert f1(np.zeros(3, bool), np.zeros(3, bool)) == 1.0
    fpr, tpr = roc_curve([0.1, 0.2], [0.3, 0.2])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 1, 1])
    assert area_to(fpr, tpr, 1.0) == pytest.approx(0.875)  # = AUROC with ties counted half
