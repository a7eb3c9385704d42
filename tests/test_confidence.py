"""rmbg.confidence: what each signal measures on mattes whose answer is known by construction,
the combination's order on them, and the number every Result carries."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import rmbg
from rmbg import registry
from rmbg.confidence import MEASURED_MODEL, MEASURED_UNDER, SIDE, WEIGHTS, _labels, combine, confidence, signals
from rmbg.types import Cost, Matte
from tests.support.providers import FreeLocal


def square(size=(160, 100), box=(40, 20, 100, 80), value=255) -> np.ndarray:
    a = np.zeros(size[::-1], np.uint8)
    x0, y0, x1, y1 = box
    a[y0:y1, x0:x1] = value
    return a


def test_labels_are_4_connected_components():
    mask = np.array(
        [
            [1, 1, 0, 0, 1],
            [0, 1, 0, 1, 1],
            [1, 0, 0, 0, 0],
            [1, 1, 1, 0, 1],
        ],
        bool,
    )
    lab = _labels(mask)
    assert (lab == -1).sum() == (~mask).sum()
    groups = {tuple(np.argwhere(lab == v).ravel()) for v in np.unique(lab[mask])}
    assert len(groups) == 4  # the diagonal touch at (1,1)-(2,0) does not join
    assert sorted(len(g) // 2 for g in groups) == [1, 3, 3, 4]


def test_a_long_snake_is_one_component():
    mask = np.zeros((41, 41), bool)
    mask[::2, :] = True  # 21 rows joined at alternating ends: one path of 881 pixels
    for k, row in enumerate(range(1, 41, 2)):
        mask[row, -1 if k % 2 == 0 else 0] = True
    assert np.unique(_labels(mask)[mask]).size == 1


def test_a_crisp_square_has_no_doubt_but_its_outline():
    s = signals(square())
    assert {k: v for k, v in s.items() if k != "ragged"} == dict.fromkeys(set(WEIGHTS) - {"ragged"}, 0.0)
    # a 60 x 60 square: outline 240 against a disk's 2 sqrt(pi 3600)
    assert s["ragged"] == pytest.approx(240 / (2 * math.sqrt(math.pi * 3600)) - 1)


def test_each_signal_measures_what_it_says():
    soft = square()
    soft[20:80, 40:70] = 128  # half the subject undecided
    s = signals(soft)
    assert s["undecided"] == pytest.approx(0.5) and s["disagreement"] == pytest.approx(0.5)

    two = square() | square(box=(120, 40, 130, 50))  # a 10 x 10 piece beside the 60 x 60 one
    assert signals(two)["fragments"] == pytest.approx(100 / 3700)

    ring = square()
    ring[40:60, 60:80] = 0  # a 20 x 20 hole
    assert signals(ring)["holes"] == pytest.approx(400 / 3200)

    edge = square(box=(0, 20, 60, 80))  # touches the left edge along 60 of 2 x (160 + 100) rim pixels
    assert signals(edge)["border"] == pytest.approx(60 / 520)

    assert signals(np.zeros((100, 160), np.uint8))["degenerate"] == 1.0
    assert signals(np.full((100, 160), 255, np.uint8))["degenerate"] == 1.0


def test_a_crisp_matte_is_surer_than_a_soft_or_broken_one_and_an_empty_one_is_zero():
    crisp = square()
    soft = square()
    soft[20:80, 40:70] = 128
    broken = square()
    for x in range(45, 100, 10):
        broken[20:80, x : x + 3] = 0  # cut into strips
    scores = [confidence(a) for a in (crisp, soft, broken, np.zeros((100, 160), np.uint8))]
    assert scores[0] > max(scores[1:3]) and min(scores[1:3]) > scores[3] == 0.0
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_the_number_does_not_depend_on_the_photos_size():
    small = square()
    big = np.kron(small, np.ones((25, 25), np.uint8))  # 4000 x 2500, the same picture
    assert big.shape[1] // SIDE == 25
    assert confidence(Image.fromarray(big)) == pytest.approx(confidence(small), abs=1e-9)


def test_combine_clips_to_the_unit_interval():
    zero = dict.fromkeys(WEIGHTS, 0.0)
    assert combine(zero, bias=1.5) == 1.0
    assert combine({**zero, "degenerate": 1.0}, bias=0.5) == 0.0


class Thresholding(FreeLocal):
    id, label = "fake-threshold", "threshold"

    def matte(self, image):
        return Matte(image.convert("L").point(lambda v: 255 if v >= 128 else 0), Cost.free(), 0.0)


def test_every_result_carries_its_mattes_confidence():
    rmbg.register("fake-threshold", lambda **_: Thresholding())
    try:
        photo = Image.fromarray(np.stack([square()] * 3, axis=-1))
        result = rmbg.remove_background(photo, "fake-threshold", cache=None)
    finally:
        registry.unregister("fake-threshold")
    assert result.meta["confidence"] == f"{confidence(square()):.3f}"
    assert result.provenance()["rmbg:confidence"] == result.meta["confidence"]


def test_the_measured_shares_under_each_threshold_are_the_results_files():
    """MEASURED_UNDER is U2-Net-p's report column of benchmarks/confidence.py's table: a re-run that
    moves a share fails here until the constant says the new one."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "confidence.json"
    tables = json.loads(path.read_text(encoding="utf-8"))["tables"]
    found = next(t for t in tables if t["title"] == "Share of frames under a confidence threshold")
    column = found["columns"].index("under it, report sequences")
    measured = {float(row[1]): float(row[column].split()[0]) for row in found["rows"] if row[0] == MEASURED_MODEL}
    assert MEASURED_MODEL == "u2netp" and dict(MEASURED_UNDER) == measured


def test_the_default_threshold_escalates_about_the_batch_share_on_the_sequences_it_was_chosen_on():
    """DEFAULT_BELOW (one image: escalate under it) is the highest measured threshold under which at
    most DEFAULT_SHARE (a batch's default) of U2-Net-p's frames fall on the choice sequences; the report
    sequences' share is what docs/cascade.md says it does out of sample."""
    from rmbg.confidence import DEFAULT_BELOW, DEFAULT_SHARE

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "confidence.json"
    tables = json.loads(path.read_text(encoding="utf-8"))["tables"]
    found = next(t for t in tables if t["title"] == "Share of frames under a confidence threshold")
    column = found["columns"].index("under it, choice sequences")
    shares = {float(row[1]): float(row[column].split()[0]) for row in found["rows"] if row[0] == MEASURED_MODEL}
    assert DEFAULT_BELOW == max(t for t, share in shares.items() if share <= DEFAULT_SHARE) == 0.5
