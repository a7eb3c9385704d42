"""Quality metrics for alpha mattes and masks (definitions: docs/evaluation.md).

Pure numpy/scipy. Every function takes a prediction P̂ and a ground truth G
as 2-D arrays of the same shape (or mode "L" PIL images): uint8 arrays and
L images are read as value/255, bool arrays as {0, 1}, float arrays must
already be in [0, 1]. Scores are fractions in [0, 1] (not percentages)
unless the name says "score" (0-100).

Conventions (spec §1-§3):
- binarisation B(X, t) = [X >= t], t = 0.5 unless stated;
- IoU of two empty masks is 1;
- boundary F uses the DAVIS contour map and a disk tolerance
  d = ceil(0.008 * diagonal) px; both contours empty gives 1;
- the F-measure curve uses beta^2 = 0.3 at thresholds k/255, k = 0..255;
- transparency error only exists for alpha ground truth with enough
  semi-transparent pixels: otherwise the functions return None, never 0 or 100.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ModelUnavailableError

BETA2 = 0.3  # F-measure weight of precision (beta squared), Achanta et al. 2009
EDGE_RATIO = 0.008  # DAVIS boundary tolerance, fraction of the image diagonal
STRICT_EDGE_PX = 2  # strict boundary-F diagnostic tolerance, pixels
BIOU_RATIO = 0.02  # Boundary IoU band width, fraction of the diagonal
TRANS_LOW, TRANS_HIGH = 5 / 255, 250 / 255  # semi-transparent band of an alpha GT
TRANS_MIN_PIXELS = 500
TRANS_MIN_FRACTION = 0.001


def as_float(x) -> np.ndarray:
    """A prediction or ground truth as float64 in [0, 1] (see module doc)."""
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"expected a single-channel 2-D map, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr.astype(np.float64)
    if arr.dtype == np.uint8:
        out = arr.astype(np.float64)
        out /= 255.0  # in place: no second full-size copy
        return out
    if arr.dtype.kind in "iu":
        raise ValueError(f"integer maps must be uint8 (0-255), got {arr.dtype}")
    out = arr.astype(np.float64)
    if out.size and (np.nanmin(out) < 0.0 or np.nanmax(out) > 1.0):
        raise ValueError("float maps must lie in [0, 1]")
    return out


def as_pair(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    """A prediction and its ground truth as float64 maps in [0, 1] (as_float), refused unless of one size."""
    p, g = as_float(pred), as_float(gt)
    if p.shape != g.shape:
        raise ValueError(f"prediction {p.shape[::-1]} and ground truth {g.shape[::-1]} differ in size")
    return p, g


def diagonal(shape: tuple[int, ...]) -> float:
    return math.hypot(shape[0], shape[1])


def edge_tolerance(shape: tuple[int, ...], ratio: float = EDGE_RATIO) -> int:
    """DAVIS tolerance in pixels: ceil(ratio * diagonal); 8 px at 854x480."""
    return int(math.ceil(ratio * diagonal(shape)))


# --- segmentation ---------------------------------------------------------


def iou(pred, gt, *, threshold: float = 0.5, void=None) -> float:
    """|P ∩ G| / |P ∪ G| after binarising both at `threshold`; 1 if the union is empty.

    void: optional bool mask of pixels excluded from both sets.
    """
    p, g = as_pair(pred, gt)
    pb, gb = p >= threshold, g >= threshold
    if void is not None:
        keep = ~np.asarray(void, dtype=bool)
        pb, gb = pb & keep, gb & keep
    union = np.count_nonzero(pb | gb)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(pb & gb) / union)


def contour_map(mask: np.ndarray) -> np.ndarray:
    """DAVIS 1-px contour of a bool mask.

    A pixel is marked when it differs from its east, south or south-east
    neighbour. Neighbours outside the image are not compared: on the last
    row only east counts, on the last column only south, and the
    bottom-right pixel is never marked (so the image border is not a contour).
    """
    m = np.asarray(mask, dtype=bool)
    out = np.zeros_like(m)
    out[:-1, :-1] = (m[:-1, :-1] != m[:-1, 1:]) | (m[:-1, :-1] != m[1:, :-1]) | (m[:-1, :-1] != m[1:, 1:])
    out[-1, :-1] = m[-1, :-1] != m[-1, 1:]
    out[:-1, -1] = m[:-1, -1] != m[1:, -1]
    return out


def require_scipy() -> None:
    """Raise ModelUnavailableError, saying how to install it, when scipy (boundary scores) is missing:
    an evaluation checks this before it runs any provider."""
    try:
        import scipy.ndimage  # noqa: F401
    except ImportError as exc:
        raise ModelUnavailableError(
            "Scoring needs scipy, which is not installed here: pip install scipy "
            '(or pip install "rmbg[eval]"). Nothing was run.'
        ) from exc


def dilate_disk(mask: np.ndarray, radius: int) -> np.ndarray:
    """Dilation of a bool mask by the disk {x² + y² <= radius²} (exact, via a distance transform)."""
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return np.zeros_like(m)
    if radius <= 0:
        return m.copy()
    from scipy import ndimage  # imported here: rmbg.compare uses this module without it

    dist = ndimage.distance_transform_edt(~m)
    return dist <= radius


@dataclass(frozen=True)
class BoundaryScore:
    """Boundary precision, recall and F (fractions) at a tolerance in pixels."""

    precision: float
    recall: float
    f: float
    tolerance_px: int


def boundary_f(pred, gt, *, tolerance: float | None = None, threshold: float = 0.5) -> BoundaryScore:
    """DAVIS boundary F-measure.

    tolerance: None -> ceil(0.008 * diagonal); a value >= 1 is pixels; a
    value < 1 is a fraction of the diagonal (ceil), as in the DAVIS code.
    Empty contours: both -> (1, 1); prediction only empty -> (1, 0);
    ground truth only empty -> (0, 1).
    """
    p, g = as_pair(pred, gt)
    if tolerance is None:
        px = edge_tolerance(p.shape)
    elif tolerance >= 1:
        px = int(round(tolerance))
    else:
        px = edge_tolerance(p.shape, tolerance)
    bp, bg = contour_map(p >= threshold), contour_map(g >= threshold)
    n_p, n_g = np.count_nonzero(bp), np.count_nonzero(bg)
    if n_p == 0 and n_g == 0:
        prec, rec = 1.0, 1.0
    elif n_p == 0:
        prec, rec = 1.0, 0.0
    elif n_g == 0:
        prec, rec = 0.0, 1.0
    else:
        prec = np.count_nonzero(bp & dilate_disk(bg, px)) / n_p
        rec = np.count_nonzero(bg & dilate_disk(bp, px)) / n_g
    f = 0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec)
    return BoundaryScore(float(prec), float(rec), float(f), px)


def inner_band(mask: np.ndarray, width: int) -> np.ndarray:
    """Pixels of `mask` within `width` px (chessboard) of its contour, the image border counting as contour."""
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return m.copy()
    from scipy import ndimage

    eroded = ndimage.binary_erosion(m, structure=np.ones((3, 3), bool), iterations=width, border_value=0)
    return m & ~eroded


def boundary_iou(pred, gt, *, ratio: float = BIOU_RATIO, threshold: float = 0.5) -> float:
    """Boundary IoU (Cheng et al. 2021) with band d = max(1, round(ratio * diagonal)); 1 if both bands are empty."""
    p, g = as_pair(pred, gt)
    width = max(1, int(round(ratio * diagonal(p.shape))))
    bp, bg = inner_band(p >= threshold, width), inner_band(g >= threshold, width)
    union = np.count_nonzero(bp | bg)
    if union == 0:
        return 1.0
    return np.count_nonzero(bp & bg) / union


def mae(pred, gt) -> float:
    """Mean absolute error (1/N) Σ |P̂ − G|, both in [0, 1]."""
    p, g = as_pair(pred, gt)
    diff = p - g
    return float(np.mean(np.abs(diff, out=diff)))  # in place: one full-size temporary, not two


def fmeasure_curve(pred, gt, *, beta2: float = BETA2) -> np.ndarray:
    """F_beta at thresholds t = k/255, k = 0..255 (index k), against G binarised at 0.5.

    B(P̂, t) = [P̂ >= t], computed as floor(255·P̂) >= k. Zero denominators
    give 0 (no predicted pixel: precision 0; empty G: recall 0).
    """
    p, g = as_pair(pred, gt)
    gb = g >= 0.5
    # One histogram of level + 256·[inside G]: bins 0-255 are outside G, 256-511 inside.
    scaled = p * 255
    np.floor(scaled, out=scaled)
    np.add(scaled, 256, out=scaled, where=gb)
    hist = np.bincount(scaled.astype(np.intp).ravel(), minlength=512)
    bg_hist, fg_hist = hist[:256], hist[256:512]
    tp = np.cumsum(fg_hist[::-1])[::-1].astype(np.float64)  # pixels >= k inside G
    predicted = tp + np.cumsum(bg_hist[::-1])[::-1]
    prec = tp / np.maximum(predicted, 1)
    rec = tp / max(int(np.count_nonzero(gb)), 1)
    num = (1 + beta2) * prec * rec
    den = beta2 * prec + rec
    return np.where(num == 0, 0.0, num / np.where(den == 0, 1, den))


def max_f(curves) -> float:
    """max over thresholds of the mean curve (not a mean of per-image maxima)."""
    return float(np.max(np.mean(np.asarray(curves, dtype=np.float64), axis=0)))


# --- transparency (alpha ground truth only) -----------------------------------


@dataclass(frozen=True)
class TransparencyScore:
    """Errors on the semi-transparent region U = {5/255 < α < 250/255}.

    e_t: mean |P̂ − α| on U; e_t_bin: the same for the binary oracle B(α, 0.5);
    raw: 100·(1 − e_t); normalised: S_trans* = 100·clip(1 − e_t/e_t_bin, 0, 1).
    """

    e_t: float
    e_t_bin: float
    raw: float
    normalised: float
    pixels: int


def transparency_region(alpha) -> np.ndarray:
    a = as_float(alpha)
    return (a > TRANS_LOW) & (a < TRANS_HIGH)


def has_alpha_region(alpha) -> bool:
    """True when the GT has enough semi-transparent pixels: |U| >= max(500, 0.1 % of N)."""
    region = transparency_region(alpha)
    return bool(np.count_nonzero(region) >= max(TRANS_MIN_PIXELS, TRANS_MIN_FRACTION * region.size))


def transparency(pred, alpha) -> TransparencyScore | None:
    """Transparency errors, or None when the GT has too few semi-transparent pixels (never imputed)."""
    p, a = as_pair(pred, alpha)
    region = (a > TRANS_LOW) & (a < TRANS_HIGH)
    n = int(np.count_nonzero(region))
    if n < max(TRANS_MIN_PIXELS, TRANS_MIN_FRACTION * a.size):
        return None
    e_t = float(np.mean(np.abs(p[region] - a[region])))
    e_bin = float(np.mean(np.minimum(a[region], 1 - a[region])))
    normalised = 100.0 * float(np.clip(1 - e_t / e_bin, 0, 1)) if e_bin > 0 else 0.0
    return TransparencyScore(e_t, e_bin, 100.0 * (1 - e_t), normalised, n)


# --- composite -----------------------------------------------------------


def composite(s_iou: float, s_edge: float, s_trans: float) -> float:
    """C = 0.5·S_IoU + 0.3·S_edge + 0.2·S_trans (all 0-100)."""
    return 0.5 * s_iou + 0.3 * s_edge + 0.2 * s_trans


def composite_seg(s_iou: float, s_edge: float) -> float:
    """Segmentation-only composite (transparency not measured): (0.5·S_IoU + 0.3·S_edge) / 0.8."""
    return (0.5 * s_iou + 0.3 * s_edge) / 0.8


# --- everything for one image ----------------------------------------------


@dataclass(frozen=True)
class ImageScores:
    """All per-image metrics (fractions, except the 0-100 transparency scores).

    boundary_f: at ceil(0.008·diag) px; boundary_f_strict: at 2 px;
    transparency: None for binary ground truth (never imputed).
    """

    iou: float
    boundary_f: float
    boundary_f_strict: float
    boundary_iou: float
    mae: float
    max_f: float
    transparency: TransparencyScore | None
    edge_tolerance_px: int


def score_image(pred, gt, *, alpha_gt: bool = False) -> tuple[ImageScores, np.ndarray]:
    """Every metric for one (prediction, ground truth) pair, and its F-measure curve.

    alpha_gt: the GT is a real alpha matte, so transparency is scored (when
    its semi-transparent region is large enough).
    """
    p, g = as_pair(pred, gt)
    edge = boundary_f(p, g)
    curve = fmeasure_curve(p, g)
    scores = ImageScores(
        iou=float(iou(p, g)),
        boundary_f=edge.f,
        boundary_f_strict=boundary_f(p, g, tolerance=STRICT_EDGE_PX).f,
        boundary_iou=float(boundary_iou(p, g)),
        mae=mae(p, g),
        max_f=float(curve.max()),
        transparency=transparency(p, g) if alpha_gt else None,
        edge_tolerance_px=edge.tolerance_px,
    )
    return scores, curve
