"""The precision gate (rmbg.eval.gate) on tiny mattes."""

from __future__ import annotations

import numpy as np
import pytest

from rmbg.eval.gate import Deviation, deviation, gate, judge


def _matte(image: np.ndarray) -> np.ndarray:
    """A tiny soft "model": a steep sigmoid of the grey level, as uint8 alpha."""
    logits = (image.astype(np.float32).mean(-1) - 128.0) / 6.0
    return (255.0 / (1.0 + np.exp(-logits))).astype(np.uint8)


def _frames() -> list[np.ndarray]:
    ramp = np.linspace(60, 200, 32, dtype=np.float32)
    return [np.repeat(np.add.outer(ramp, ramp * k)[..., None] / (1 + k), 3, axis=-1) for k in (0.0, 0.5, 1.0)]


def test_deviation_counts_iou_drop_mean_and_max_exactly():
    ref = np.array([[0, 0, 200, 200]], np.uint8)
    got = np.array([[0, 130, 200, 100]], np.uint8)  # one pixel gained, one lost: IoU 1/3
    d = deviation([got], [ref])
    assert d == Deviation(pytest.approx(2 / 3), pytest.approx((130 + 100) / 4), 130)


def test_gate_accepts_fp32_with_itself_and_rejects_a_perturbed_matte():
    frames = _frames()
    fp32 = [_matte(f) for f in frames]
    noise = np.random.default_rng(0).uniform(-1, 1, frames[0].shape).astype(np.float32)
    noisy = [_matte(f + noise) for f in frames]
    floor = deviation(noisy, fp32)
    assert floor.mean_abs > 0 and floor.worst_iou_drop > 0  # the noise floor is real on a soft matte

    assert judge(fp32, noisy, fp32).passed  # fp32 against itself: zero deviation
    assert gate(deviation(fp32, fp32), floor).passed

    shifted = [np.clip(m.astype(np.int16) + 40, 0, 255).astype(np.uint8) for m in fp32]
    verdict = judge(shifted, noisy, fp32)
    assert not verdict.passed
    assert "mean |delta alpha|" in verdict.reason and "worst IoU drop" in verdict.reason


def test_gate_needs_both_measures_within_the_floor():
    floor = Deviation(0.05, 0.5, 10)
    assert gate(Deviation(0.05, 0.5, 99), floor).passed  # equal is no larger: passes; the max is not gated
    assert not gate(Deviation(0.06, 0.1, 1), floor).passed
    assert not gate(Deviation(0.0, 0.6, 1), floor).passed


def test_deviation_refuses_mismatched_frames():
    with pytest.raises(ValueError, match="shape"):
        deviation([np.zeros((2, 2), np.uint8)], [np.zeros((2, 3), np.uint8)])
    with pytest.raises(ValueError):
        deviation([np.zeros((2, 2), np.uint8)], [])
