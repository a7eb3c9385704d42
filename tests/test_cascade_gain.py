"""benchmarks/cascade_gain.py and cascade_looks.py: the measures behind docs/cascade.md's "where IS-Net
gains" tables, on pictures and frame sets whose answers are known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from tests.support.bench_modules import benchmark_module

gain = benchmark_module("cascade_gain")
looks = benchmark_module("cascade_looks")


def two_colours(subject=(255, 0, 0), background=(0, 0, 255)) -> tuple[Image.Image, Image.Image]:
    """A 160 x 100 frame: a 60 x 60 square of `subject` on `background`, and its exact matte."""
    rgb = np.zeros((100, 160, 3), np.uint8)
    rgb[:] = background
    rgb[20:80, 40:100] = subject
    alpha = np.zeros((100, 160), np.uint8)
    alpha[20:80, 40:100] = 255
    return Image.fromarray(rgb), Image.fromarray(alpha)


def test_edge_contrast_is_the_distance_between_the_colours_either_side_of_the_edge():
    image, alpha = two_colours()
    assert gain.edge_contrast(image, alpha) == pytest.approx(math.sqrt(2))  # red against blue, RGB in [0, 1]
    same, alpha = two_colours(subject=(0, 0, 255))
    assert gain.edge_contrast(same, alpha) == 0.0
    assert gain.edge_contrast(image, Image.new("L", (160, 100), 0)) == 0.0  # no edge


def test_the_ring_is_ring_pixels_each_side_4_connected():
    mask = np.zeros((9, 9), bool)
    mask[2:7, 2:7] = True
    eroded, grown = gain._shifted_all(mask, True), gain._shifted_all(mask, False)
    assert eroded.sum() == 9 and grown.sum() == 25 + 4 * 5  # 3 x 3 inside; four sides of 5 added, no corners


def test_zoom_box_grows_the_subject_by_a_quarter_inside_the_frame():
    alpha = np.zeros((100, 200), np.uint8)
    alpha[40:60, 100:140] = 200
    assert looks.zoom_box(alpha) == (90, 35, 150, 65)
    alpha[:, :5] = 255  # at the edge: clipped to the frame
    assert looks.zoom_box(alpha) == (0, 0, 175, 100)
    assert looks.zoom_box(np.zeros((10, 10), np.uint8)) is None


def frames(u2: list[float], isnet: list[float]) -> dict[str, np.ndarray]:
    return {"u2netp:iou": np.array(u2), "isnet-general:iou": np.array(isnet), "seq": np.array(["a"] * len(u2))}


def test_captured_and_recovered_count_the_gain_of_the_frames_escalated_first():
    d = frames([0.5, 0.9, 0.6, 0.9], [0.9, 0.8, 0.6, 0.9])  # gains +0.4, -0.1, 0, 0: the mean gap is 0.075
    best, worst = np.array([4.0, 3.0, 2.0, 1.0]), np.array([1.0, 4.0, 2.0, 3.0])
    assert gain.captured(d, best, 0.25) == pytest.approx(1.0)
    assert gain.captured(d, worst, 0.25) == pytest.approx(-0.25)  # -0.1 against the oracle's +0.4
    assert gain.recovered_by(d, best, 0.25) == pytest.approx(0.4 / 4 / 0.075)
    assert gain.recovered_by(d, best, 0.5) == pytest.approx(0.3 / 4 / 0.075)  # the second frame costs 0.1
    assert math.isnan(gain.recovered_by(frames([0.9], [0.8]), np.array([1.0]), 1.0))  # no gap to recover


def test_sums_weigh_each_term_by_its_spread_on_the_choice_frames():
    choice = {
        "u2netp:conf": np.array([0.2, 0.8]),  # sign -1: spread 0.3
        "u2netp:contrast": np.array([0.1, 0.3]),  # sign -1: spread 0.1
        "u2netp:holes": np.array([0.0, 0.02]),  # spread 0.01
        **{f"u2netp:{c}": np.zeros(2) for c in ("flip", "zoom", "side", "ragged", "area")},
    }
    score = gain.scores(choice, choice)[gain.CHOSEN]
    assert score == pytest.approx([-0.2 / 0.3 - 1.0, -0.8 / 0.3 - 3.0 + 2.0])
