"""Pixel-level anomaly metrics: AUROC, AUPRO (the MVTec AD protocol), F1 and ROC curves.

AUPRO follows Bergmann et al., "The MVTec Anomaly Detection Dataset" (IJCV 2021), section
5.2: every connected component of the ground truth (8-connected, within its own image) is one
region; at each threshold the per-region overlap (PRO) is the mean over all regions of all
images of the share of the region's pixels above the threshold, and the false-positive rate
is the share of all defect-free pixels (of normal and defective images alike) above it. The
curve PRO(FPR) is taken at every distinct map value (ties form one point: the last of the
group, which counts every pixel of that value), starts at (0, 0) and ends at (1, 1); its area
from FPR 0 to `limit` (0.3), by the trapezoidal rule, with the PRO at the limit linearly
interpolated between the points either side, is divided by `limit`, so that a perfect map
scores 1, a map that ranks every defect pixel below every normal one 0, and a constant or
random map limit / 2 (0.15). Never above 1: the PRO never exceeds 1 and the widths add up to
`limit` (both clipped against rounding).
"""

from __future__ import annotations

import numpy as np

AUPRO_LIMIT = 0.3


def pixel_auroc(maps: np.ndarray, masks: np.ndarray) -> float:
    """AUROC of telling defect pixels (mask True) from the others by a higher map value, all
    images' pixels pooled (ties count half)."""
    from service.models.scores import auroc

    values, truth = _flat(maps, masks)
    if truth.all() or not truth.any():
        raise ValueError("pixel AUROC needs both defect and defect-free pixels")
    return auroc(values[~truth], values[truth])


def regions(masks: np.ndarray) -> tuple[np.ndarray, int]:
    """The connected components of each image's mask [N, H, W], 8-connected and never across
    images: labels 1..count (0 = defect-free) and their count."""
    from scipy.ndimage import label

    masks = np.asarray(masks, bool)
    structure = np.zeros((3, 3, 3), dtype=int)
    structure[1] = 1  # the 8 neighbours in the image's own plane, none in the next image's
    labelled, count = label(masks, structure=structure)
    return labelled, int(count)


def pro_curve(maps: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (FPR, PRO) points of `maps` [N, H, W] against `masks` [N, H, W], from (0, 0) to
    (1, 1), FPR non-decreasing (see the module docstring)."""
    maps = np.asarray(maps, np.float64)
    masks = np.asarray(masks, bool)
    if maps.shape != masks.shape or maps.ndim != 3:
        raise ValueError(f"maps {maps.shape} and masks {masks.shape} must both be [N, H, W]")
    labelled, count = regions(masks)
    normal = int((~masks).sum())
    if count == 0 or normal == 0:
        raise ValueError("AUPRO needs both defect regions and defect-free pixels")
    labels = labelled.ravel()
    sizes = np.bincount(labels, minlength=count + 1).astype(np.float64)
    pro_step = np.where(labels > 0, 1.0 / sizes[labels], 0.0) / count
    fp_step = (labels == 0).astype(np.int64)
    values = maps.ravel()
    order = np.argsort(-values, kind="stable")
    ordered = values[order]
    last_of_tie = np.append(ordered[1:] != ordered[:-1], True)
    fpr = np.cumsum(fp_step[order])[last_of_tie] / normal
    pro = np.cumsum(pro_step[order])[last_of_tie]
    found = np.cumsum(labels[order] > 0)[last_of_tie]
    pro[found == found[-1]] = 1.0  # every region whole: exactly 1, whatever the rounding
    fpr = np.concatenate([[0.0], np.minimum(fpr, 1.0)])
    pro = np.concatenate([[0.0], np.minimum(pro, 1.0)])
    fpr[-1] = pro[-1] = 1.0  # below the lowest value every pixel is flagged
    return fpr, pro


def area_to(x: np.ndarray, y: np.ndarray, limit: float) -> float:
    """The area under the piecewise-linear curve through (x, y) (x non-decreasing, from 0)
    between x = 0 and x = `limit`, the curve's value at `limit` interpolated linearly."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if not 0 < limit <= x[-1]:
        raise ValueError(f"the limit {limit} must lie in (0, {x[-1]}]")
    inside = int(np.searchsorted(x, limit, side="right"))  # x[:inside] <= limit
    area = float(np.sum(np.diff(x[:inside]) * (y[1:inside] + y[: inside - 1]) / 2.0))
    if x[inside - 1] < limit:
        x0, y0, x1, y1 = x[inside - 1], y[inside - 1], x[inside], y[inside]
        at_limit = y0 + (y1 - y0) * (limit - x0) / (x1 - x0)
        area += (limit - x0) * (y0 + at_limit) / 2.0
    return area


def aupro(maps: np.ndarray, masks: np.ndarray, limit: float = AUPRO_LIMIT) -> float:
    """The area under the PRO curve up to FPR `limit`, divided by `limit`: in [0, 1]."""
    fpr, pro = pro_curve(maps, masks)
    return float(min(max(area_to(fpr, pro, limit) / limit, 0.0), 1.0))


def f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    """F1 = 2 TP / (2 TP + FP + FN) of boolean predictions against the truth (1 where there is
    nothing to find and nothing was flagged)."""
    predicted, truth = np.asarray(predicted, bool).ravel(), np.asarray(truth, bool).ravel()
    hits = int((predicted & truth).sum())
    wrong = int((predicted ^ truth).sum())
    return 1.0 if hits + wrong == 0 else 2.0 * hits / (2.0 * hits + wrong)


def roc_curve(negatives: np.ndarray, positives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) at every distinct value, from (0, 0) to (1, 1): for drawing."""
    negatives = np.asarray(negatives, np.float64).ravel()
    positives = np.asarray(positives, np.float64).ravel()
    values = np.concatenate([negatives, positives])
    truth = np.concatenate([np.zeros(len(negatives), bool), np.ones(len(positives), bool)])
    order = np.argsort(-values, kind="stable")
    ordered = values[order]
    last = np.append(ordered[1:] != ordered[:-1], True)
    tpr = np.cumsum(truth[order])[last] / max(len(positives), 1)
    fpr = np.cumsum(~truth[order])[last] / max(len(negatives), 1)
    return np.concatenate([[0.0], fpr]), np.concatenate([[0.0], tpr])


def _flat(maps: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    maps, masks = np.asarray(maps, np.float64), np.asarray(masks, bool)
    if maps.shape != masks.shape:
        raise ValueError(f"maps {maps.shape} and masks {masks.shape} differ in shape")
    return maps.ravel(), masks.ravel()
