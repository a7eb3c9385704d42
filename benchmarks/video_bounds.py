"""benchmarks/video.py's reference rows: what bounds any temporal filter of a model's mattes
(its module doc says what each row means)."""

from __future__ import annotations

import numpy as np


def flicker_bound(raw: list[np.ndarray], gts: list[np.ndarray]) -> float:
    """dtSSD with the matte's change zeroed wherever the truth does not change (benchmarks/video.py's module doc)."""
    values = []
    for t in range(1, len(raw)):
        da = (raw[t].astype(np.float64) - raw[t - 1]) / 255
        dg = (gts[t].astype(np.float64) - gts[t - 1]) / 255
        kept = np.where(dg != 0, da - dg, 0.0)
        values.append(100 * np.sqrt(np.sum(kept * kept) / kept.size))
    return float(np.mean(values))


def at_model_resolution(gts: list[np.ndarray], side: int) -> list[np.ndarray]:
    """The truth down to the model's size (area) and back up (bilinear), as the provider scales its matte."""
    from PIL import Image

    out = []
    for g in gts:
        small = Image.fromarray(g).resize((side, side), Image.Resampling.BOX)
        out.append(np.asarray(small.resize(g.shape[::-1], Image.Resampling.BILINEAR)))
    return out


def _near_contour(gts: list[np.ndarray], px: int = 15) -> list[np.ndarray]:
    from scipy import ndimage

    return [(ndimage.distance_transform_edt(g > 127) + ndimage.distance_transform_edt(g <= 127)) <= px for g in gts]


def _soft_share(mattes: list[np.ndarray], bands: list[np.ndarray]) -> float:
    soft = sum(np.count_nonzero(((m > 12) & (m < 243))[b]) for m, b in zip(mattes, bands))
    return soft / sum(np.count_nonzero(b) for b in bands)


def _blurred(gts: list[np.ndarray], sigma: float) -> list[np.ndarray]:
    import cv2

    return [np.asarray(cv2.GaussianBlur(g, (0, 0), sigma)) for g in gts]


def as_soft_as(raw: list[np.ndarray], gts: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
    """(sigma, the truth blurred by it) with the model's share of soft pixels near the true contour
    (benchmarks/video.py's module doc)."""
    bands = _near_contour(gts)
    target, lo, hi = _soft_share(raw, bands), 0.3, 8.0
    for _ in range(14):  # bisection: the share grows with sigma
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _soft_share(_blurred(gts, mid), bands) < target else (lo, mid)
    sigma = round((lo + hi) / 2, 2)
    return sigma, _blurred(gts, sigma)
