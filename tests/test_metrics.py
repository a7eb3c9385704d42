"""Metric tests: hand-computed cases, and PySODMetrics as an independent reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from rmbg.eval import metrics as M

DAVIS = Path(__file__).resolve().parents[1] / "data" / "davis2016-sample"


def square(shape=(20, 20), top=5, left=5, size=10) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[top : top + size, left : left + size] = True
    return m


EMPTY = np.zeros((20, 20), dtype=bool)
FULL = np.ones((20, 20), dtype=bool)


# --- IoU ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "pred, gt, expected",
    [
        (square(), square(), 1.0),
        (square(left=8), square(), 70 / 130),  # 10x7 overlap, 100 + 100 - 70 union
        (EMPTY, EMPTY, 1.0),  # empty union counts as 1
        (EMPTY, square(), 0.0),
        (square(), EMPTY, 0.0),
        (FULL, FULL, 1.0),
        (FULL, square(), 100 / 400),
    ],
)
def test_iou_hand_cases(pred, gt, expected):
    assert M.iou(pred, gt) == pytest.approx(expected, abs=1e-12)


def test_iou_threshold_is_inclusive_and_void_is_excluded():
    gt = square()
    pred = np.where(square(), 0.5, 0.49)  # exactly 0.5 inside the square
    assert M.iou(pred, gt) == 1.0
    assert M.iou(np.where(square(), 0.499, 0.0), gt) == 0.0
    void = np.zeros_like(gt)
    void[:, 8:] = True  # keep only columns 0-7: overlap of square(left=8) vanishes
    assert M.iou(square(left=8), gt, void=void) == 0.0
    assert M.iou(square(), gt, void=void) == 1.0


def test_uint8_and_float_inputs_agree_and_bad_ranges_fail():
    gt = square().astype(np.uint8) * 255
    assert M.iou(gt, square()) == 1.0
    assert M.mae(gt, square()) == 0.0
    with pytest.raises(ValueError):
        M.mae(np.full((20, 20), 1.5), square())
    with pytest.raises(ValueError):
        M.iou(square((20, 21)), square())


# --- boundary F ------------------------------------------------------------------


def test_contour_map_follows_davis_convention():
    b = M.contour_map(square())
    # top ring row 4 cols 4..14 (11), left col 4 rows 5..14 (10),
    # right col 14 rows 5..14 (10), bottom row 14 cols 5..13 (9)
    assert b.sum() == 40
    assert b[4, 4] and b[4, 14] and b[14, 14] and not b[15, 14] and not b[4, 15]
    assert not M.contour_map(FULL).any()  # the image border is not a contour
    assert not M.contour_map(EMPTY).any()


@pytest.mark.parametrize("tolerance, expected", [(1, 0.5), (2, 0.6), (3, 1.0)])
def test_boundary_f_shifted_square_by_hand(tolerance, expected):
    # Pred = GT square moved 3 px right; contours worked out pixel by pixel:
    # at 1 px 20 of 40 contour pixels match each way, at 2 px 24 of 40, at 3 px all.
    score = M.boundary_f(square(left=8), square(), tolerance=tolerance)
    assert score.precision == pytest.approx(expected)
    assert score.recall == pytest.approx(expected)
    assert score.f == pytest.approx(expected)
    assert score.tolerance_px == tolerance


@pytest.mark.parametrize(
    "pred, gt, precision, recall, f",
    [
        (EMPTY, EMPTY, 1.0, 1.0, 1.0),
        (FULL, FULL, 1.0, 1.0, 1.0),  # no contour in either
        (EMPTY, square(), 1.0, 0.0, 0.0),
        (FULL, square(), 1.0, 0.0, 0.0),  # an all-foreground prediction has no contour
        (square(), EMPTY, 0.0, 1.0, 0.0),
        (square(), FULL, 0.0, 1.0, 0.0),
    ],
)
def test_boundary_f_empty_and_full_conventions(pred, gt, precision, recall, f):
    score = M.boundary_f(pred, gt)
    assert (score.precision, score.recall, score.f) == (precision, recall, f)


def test_edge_tolerance_is_relative_to_the_diagonal():
    assert M.edge_tolerance((480, 854)) == 8
    assert M.edge_tolerance((1080, 1920)) == 18
    assert M.boundary_f(square(), square()).tolerance_px == 1  # ceil(0.008 * 28.3)


def test_boundary_iou_by_hand():
    # 20x20: band width max(1, round(0.02 * 28.3)) = 1 px, i.e. each square's
    # 36-px outer ring; the rings share rows 5 and 14 over columns 8..14.
    assert M.boundary_iou(square(left=8), square()) == pytest.approx(14 / 58)
    assert M.boundary_iou(EMPTY, EMPTY) == 1.0
    assert M.boundary_iou(FULL, FULL) == 1.0
    assert M.boundary_iou(EMPTY, square()) == 0.0


# --- F-measure and MAE against PySODMetrics -------------------------------------


def _davis_masks(step: int = 1) -> list[np.ndarray]:
    files = sorted((DAVIS / "masks").glob("*.png"))[::step]
    return [np.asarray(Image.open(f).convert("L")) >= 128 for f in files]


def _predictions(gt: np.ndarray) -> list[np.ndarray]:
    """Deterministic imperfect predictions in [0, 1]: blurred, shifted, quantised, faint."""
    blurred = np.clip(ndimage.gaussian_filter(gt.astype(np.float64), sigma=4), 0, 1)
    shifted = np.roll(blurred, (6, -9), axis=(0, 1))
    quantised = np.round(shifted * 255).astype(np.uint8) / 255.0
    faint = 0.4 * blurred  # never reaches 0.5: no min-max stretching must rescue it
    return [blurred, shifted, quantised, faint]


def test_mae_and_fmeasure_match_pysodmetrics_without_normalisation():
    import warnings

    import py_sod_metrics as pysod  # a dev dependency: its absence is a failure, not a skip

    masks = _davis_masks(step=6)  # 5 masks a fifth of the clip apart, each with 4 predictions: 20 images
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Fmeasure announces its future removal
        ref_f = pysod.Fmeasure(beta=0.3)
    ref_mae = pysod.MAE()
    ours_mae, ours_curves = [], []
    for gt in masks:
        for pred in _predictions(gt):
            ref_f.step(pred=pred, gt=gt, normalize=False)
            ref_mae.step(pred=pred, gt=gt, normalize=False)
            ours_mae.append(M.mae(pred, gt))
            ours_curves.append(M.fmeasure_curve(pred, gt))
            # per image too, not only on average
            assert ours_mae[-1] == pytest.approx(ref_mae.maes[-1], abs=1e-9)
            assert np.allclose(ours_curves[-1], ref_f.changeable_fms[-1][::-1], atol=1e-9)
    results = ref_f.get_results()
    # PySODMetrics orders its curve from threshold 255 down to 0: reverse it.
    assert np.allclose(np.mean(ours_curves, axis=0), results["fm"]["curve"][::-1], atol=1e-6)
    assert M.max_f(ours_curves) == pytest.approx(float(results["fm"]["curve"].max()), abs=1e-6)
    assert float(np.mean(ours_mae)) == pytest.approx(float(ref_mae.get_results()["mae"]), abs=1e-6)


def test_fmeasure_curve_hand_case():
    gt = square()
    pred = np.where(square(), 0.8, 0.0)
    pred[0, 0] = 0.3  # one false positive at thresholds <= 0.3
    curve = M.fmeasure_curve(pred, gt)
    prec = 100 / 101
    assert curve[0] == pytest.approx(_f(100 / 400, 1.0))  # threshold 0: every pixel is foreground
    assert curve[50] == pytest.approx(_f(prec, 1.0))
    assert curve[77] == pytest.approx(1.0)  # 77/255 > 0.3: the false positive is gone
    assert curve[204] == pytest.approx(1.0)
    assert curve[205] == 0.0  # 205/255 > 0.8: nothing predicted


def _f(precision: float, recall: float) -> float:
    return 1.3 * precision * recall / (0.3 * precision + recall)


# --- transparency and composite ---------------------------------------------------


def _ramp(width: int = 100, height: int = 60) -> np.ndarray:
    return np.tile(np.linspace(0.0, 1.0, width), (height, 1))


def test_transparency_only_on_alpha_ground_truth():
    gt = square((60, 100), 10, 10, 40)
    assert M.transparency(gt.astype(np.float64), gt) is None  # binary GT: no score, never 0 or 100
    scores, _ = M.score_image(gt, gt, alpha_gt=True)
    assert scores.transparency is None


def test_transparency_scores_of_perfect_and_hard_predictions():
    alpha = _ramp()
    perfect = M.transparency(alpha, alpha)
    assert perfect is not None and perfect.e_t == 0.0 and perfect.raw == 100.0 and perfect.normalised == 100.0
    region = (alpha > 5 / 255) & (alpha < 250 / 255)
    hard = M.transparency((alpha >= 0.5).astype(np.float64), alpha)
    assert hard.pixels == region.sum()
    assert hard.e_t == pytest.approx(np.mean(np.minimum(alpha, 1 - alpha)[region]))
    assert hard.e_t == pytest.approx(hard.e_t_bin)
    assert hard.normalised == 0.0  # no better than a perfect hard cut-out
    assert hard.raw == pytest.approx(100 * (1 - hard.e_t))
    worse = M.transparency(1 - alpha, alpha)
    assert worse.normalised == 0.0  # clipped, never negative


def test_transparency_skips_small_regions():
    alpha = np.zeros((100, 100))
    alpha[0, :] = 0.5  # 100 semi-transparent pixels < 500
    assert M.transparency(alpha, alpha) is None
    assert not M.has_alpha_region(alpha)
    assert M.has_alpha_region(_ramp())


def test_composites():
    assert M.composite(80, 60, 50) == pytest.approx(40 + 18 + 10)
    assert M.composite_seg(80, 60) == pytest.approx((40 + 18) / 0.8)
    assert M.composite_seg(100, 100) == pytest.approx(100)


def test_score_image_on_a_real_frame():
    gt = _davis_masks(step=30)[0]
    pred = _predictions(gt)[1]
    scores, curve = M.score_image(pred, gt)
    assert scores.edge_tolerance_px == 8
    assert scores.iou == pytest.approx(M.iou(pred, gt))
    assert scores.boundary_f_strict <= scores.boundary_f
    assert scores.max_f == pytest.approx(curve.max())
    assert scores.transparency is None
