"""The precision gate: may a faster precision or engine replace exact fp32?

A fixed threshold (say IoU >= 0.99) means different things for different
models: on a soft, mid-range matte a change of one grey level in the input
already moves pixels across the 0.5 line, so nothing, exact fp32 included,
could pass it. The gate here is relative instead. In one run, on the same
frames at the model's trained size, we measure

- the candidate's deviation from exact fp32's matte, and
- exact fp32's own deviation when its input moves by at most +-1 grey level
  (invisible noise: the noise floor),

and accept the candidate when its deviation is no larger than the noise
floor on both measures: the worst IoU@0.5 drop over the frames and the mean
|delta alpha| in grey levels. numpy only; used by benchmarks/speed_cpu.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Deviation:
    """How far a set of mattes is from the reference mattes of the same frames.

    worst_iou_drop: 1 - the lowest IoU@0.5 (alpha >= 128) over the frames.
    mean_abs: mean |delta alpha| in grey levels (0-255), over all pixels of all frames.
    max_abs: the largest |delta alpha| seen.
    """

    worst_iou_drop: float
    mean_abs: float
    max_abs: int

    def row(self) -> list[float]:
        return [round(self.worst_iou_drop, 4), round(self.mean_abs, 3), self.max_abs]


def iou_at_half(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of the two mattes' foregrounds (alpha >= 128); 1.0 when both are empty."""
    fa, fb = a >= 128, b >= 128
    union = int((fa | fb).sum())
    return float((fa & fb).sum()) / union if union else 1.0


def deviation(mattes: Iterable[object], references: Iterable[object]) -> Deviation:
    """The Deviation of `mattes` from `references` (uint8 arrays or "L" images, frame by frame)."""
    ious, total, count, worst = [], 0.0, 0, 0
    for matte, reference in zip(mattes, references, strict=True):
        a, b = np.asarray(matte), np.asarray(reference)
        if a.shape != b.shape:
            raise ValueError(f"matte shape {a.shape} differs from its reference's {b.shape}")
        diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
        total += float(diff.sum())
        count += diff.size
        worst = max(worst, int(diff.max()) if diff.size else 0)
        ious.append(iou_at_half(a, b))
    if not ious:
        raise ValueError("no frames to compare")
    return Deviation(1.0 - min(ious), total / count, worst)


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str


def gate(candidate: Deviation, noise_floor: Deviation) -> Verdict:
    """Accept `candidate` when it moves the matte no more than +-1 grey level of
    input noise moves exact fp32's (both deviations from the same fp32 mattes)."""
    failures = []
    if candidate.worst_iou_drop > noise_floor.worst_iou_drop:
        failures.append(f"worst IoU drop {candidate.worst_iou_drop:.4f} > noise floor {noise_floor.worst_iou_drop:.4f}")
    if candidate.mean_abs > noise_floor.mean_abs:
        failures.append(f"mean |delta alpha| {candidate.mean_abs:.3f} > noise floor {noise_floor.mean_abs:.3f}")
    if failures:
        return Verdict(False, "; ".join(failures))
    return Verdict(
        True,
        f"within the noise floor (IoU drop {candidate.worst_iou_drop:.4f} <= "
        f"{noise_floor.worst_iou_drop:.4f}, mean {candidate.mean_abs:.3f} <= {noise_floor.mean_abs:.3f})",
    )


def judge(candidate: Sequence[object], noisy_fp32: Sequence[object], fp32: Sequence[object]) -> Verdict:
    """gate() from the mattes themselves: a candidate's, exact fp32's on a
    noise-moved input, and exact fp32's, frame by frame."""
    return gate(deviation(candidate, fp32), deviation(noisy_fp32, fp32))
