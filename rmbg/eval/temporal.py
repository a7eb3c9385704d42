"""Scores of a video sequence: region J, boundary F and the temporal error dtSSD.

Inputs follow rmbg.eval.metrics (uint8 maps read as value/255, bool as {0, 1},
floats already in [0, 1]); predictions and ground truths are sequences of 2-D
maps of one size, one per frame, in order.

- J (region similarity, DAVIS): the mean over frames of the IoU of the
  prediction and the ground truth, both binarised at 0.5
  (rmbg.eval.metrics.iou).
- F (boundary accuracy, DAVIS): the mean over frames of the boundary
  F-measure with the DAVIS tolerance ceil(0.008 x diagonal) px, 8 px at
  854x480 (rmbg.eval.metrics.boundary_f).
- dtSSD (Erofeev et al. 2015, "Perceptually Motivated Benchmark for Video
  Matting"), normalised as RVM (Lin et al. 2021) and MatAnyone report it, in
  RVM's evaluation code (MetricDTSSD): for each pair of consecutive frames
  t-1, t, with alphas a and ground truths g in [0, 1] over N pixels,

      dtSSD_t = 100 * sqrt( sum_p ((a_t - a_{t-1}) - (g_t - g_{t-1}))^2 / N )

  i.e. the root-mean-square over pixels (the division by N is inside the
  root) of the difference between the prediction's change and the truth's
  change, times 100; a sequence's dtSSD is the mean over its T-1 pairs. It
  is 0 when the matte changes exactly as the truth does, whatever its
  per-frame error: it measures flicker, not accuracy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .metrics import as_float, as_pair, boundary_f, iou


def dtssd_pair(pred_t, pred_prev, gt_t, gt_prev) -> float:
    """dtSSD of one frame pair (module doc), scaled by 100 like RVM."""
    a_t, g_t = as_pair(pred_t, gt_t)
    a_p, g_p = as_pair(pred_prev, gt_prev)
    if a_p.shape != a_t.shape:
        raise ValueError(f"frames of one sequence differ in size: {a_p.shape[::-1]} and {a_t.shape[::-1]}")
    change = (a_t - a_p) - (g_t - g_p)
    return float(100.0 * np.sqrt(np.sum(change * change) / change.size))


def dtssd(preds: Iterable, gts: Iterable) -> float:
    """A sequence's dtSSD: the mean of dtssd_pair over consecutive frames (needs 2 frames or more)."""
    values = [v for _, v in _pairs(preds, gts)]
    if not values:
        raise ValueError("dtSSD needs at least two frames")
    return float(np.mean(values))


def _pairs(preds: Iterable, gts: Iterable):
    prev = None
    for index, (p, g) in enumerate(zip(preds, gts, strict=True)):
        cur = (as_float(p), as_float(g))
        if prev is not None:
            yield index, dtssd_pair(cur[0], prev[0], cur[1], prev[1])
        prev = cur


@dataclass(frozen=True)
class SequenceScores:
    """J and F (fractions, means over frames), dtSSD (x100, mean over frame pairs) and the frame count."""

    j: float
    f: float
    dtssd: float
    frames: int

    def row(self) -> dict[str, float | int]:
        return {"J": self.j, "F": self.f, "dtSSD": self.dtssd, "frames": self.frames}


class SequenceScorer:
    """Scores a sequence one frame at a time (nothing but the previous frame is kept)."""

    def __init__(self) -> None:
        self._j: list[float] = []
        self._f: list[float] = []
        self._dt: list[float] = []
        self._prev: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, pred, gt) -> None:
        p, g = as_pair(pred, gt)
        self._j.append(iou(p, g))
        self._f.append(boundary_f(p, g).f)
        if self._prev is not None:
            self._dt.append(dtssd_pair(p, self._prev[0], g, self._prev[1]))
        self._prev = (p, g)

    def scores(self) -> SequenceScores:
        if len(self._j) < 2:
            raise ValueError("a sequence needs at least two frames")
        return SequenceScores(float(np.mean(self._j)), float(np.mean(self._f)), float(np.mean(self._dt)), len(self._j))


def score_sequence(preds: Iterable, gts: Iterable) -> SequenceScores:
    """J, F and dtSSD of one sequence (module doc)."""
    scorer = SequenceScorer()
    for p, g in zip(preds, gts, strict=True):
        scorer.add(p, g)
    return scorer.scores()
