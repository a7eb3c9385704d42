"""rmbg.eval.frontier: cascades simulated from an evaluation's own mattes (`rmbg evaluate --cascade`).

Four images, each its own group, one ground-truth block. The free stand-in's
mattes are crafted so its confidence orders the images img1 < img3 < img4 <
img2 (img1 and img3 are also the ones it gets half wrong); the better
stand-in cuts every block a little short. So every expected IoU, escalation
and cost below is computed by hand.
"""

from __future__ import annotations

import csv
import hashlib
import json
from decimal import Decimal

import numpy as np
import pytest
from PIL import Image

import rmbg
from rmbg import registry
from rmbg.cli.main import main
from rmbg.confidence import meta_text
from rmbg.errors import InvalidRequestError
from rmbg.eval.dataset import discover
from rmbg.eval.run import evaluate
from tests.test_evaluate import LookupProvider

pytestmark = pytest.mark.uses("scipy", "matplotlib")  # the evaluation scores with scipy; the reports plot

GT = np.zeros((40, 64), np.uint8)
GT[10:30, 10:50] = 255  # 800 px


def block(right: int) -> np.ndarray:
    a = np.zeros_like(GT)
    a[10:30, 10:right] = 255
    return a


def soft(a: np.ndarray, left: int, right: int, value: int) -> np.ndarray:
    out = a.copy()
    out[10:30, left:right] = value  # strictly between 0.1 and 0.9: undecided pixels lower the confidence
    return out


FREE = {  # the free stand-in's matte of each image, and its IoU against GT
    "img1": soft(block(30), 30, 50, 100),  # half the block (IoU 0.5), very unsure
    "img2": block(50),  # exact (IoU 1), sure
    "img3": soft(block(30), 30, 40, 100),  # half the block (IoU 0.5), unsure
    "img4": soft(block(50), 40, 50, 200),  # exact once cut at 0.5 (IoU 1), a little unsure
}
FREE_IOU = {"img1": 0.5, "img2": 1.0, "img3": 0.5, "img4": 1.0}
BETTER_IOU = 700 / 800  # block(45) on every image
FREE_PRICE, BETTER_PRICE = Decimal("0.0001"), Decimal("0.02")
SHARES = (0.0, 0.25, 0.5, 1.0)


@pytest.fixture
def data(tmp_path):
    """DATA/images + masks; returns (root, free stand-in, better stand-in)."""
    free, better = {}, {}
    for i, name in enumerate(FREE):
        rgb = np.random.default_rng(i).integers(0, 255, GT.shape + (3,), dtype=np.uint8)
        for folder, array in (("images", rgb), ("masks", GT)):
            (tmp_path / "data" / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(tmp_path / "data" / folder / f"{name}.png")
        key = hashlib.sha256(rgb.tobytes()).hexdigest()
        free[key], better[key] = FREE[name], block(45)
    return (
        tmp_path / "data",
        LookupProvider("stand-free", free, price=str(FREE_PRICE)),
        LookupProvider("stand-better", better, kind="hosted", price=str(BETTER_PRICE)),
    )


def test_the_crafted_confidences_order_the_images():
    sure = {name: float(meta_text(a)) for name, a in FREE.items()}
    assert sorted(sure, key=sure.get) == ["img1", "img3", "img4", "img2"]


def test_each_share_escalates_the_least_sure_and_scores_by_hand(data):
    root, free, better = data
    ev = evaluate(root, [free, better], cascades=[("stand-free", "stand-better")], shares=SHARES, bootstrap=50)
    assert free.calls == 4 and better.calls == 4  # no call beyond the evaluation's own
    rows = {(r.provider, r.name): r for r in ev.rows}
    assert {n: rows[("stand-free", n)].confidence for n in FREE} == {n: float(meta_text(a)) for n, a in FREE.items()}
    assert [c.share for c in ev.cascades] == list(SHARES)
    assert [c.escalated for c in ev.cascades] == [(), ("img1",), ("img1", "img3"), ("img1", "img3", "img4", "img2")]
    expected_iou = [
        (0.5 + 1 + 0.5 + 1) / 4,  # the free stand-in alone: 0.75
        (BETTER_IOU + 1 + 0.5 + 1) / 4,
        (BETTER_IOU + 1 + BETTER_IOU + 1) / 4,  # 0.9375: better than either alone
        BETTER_IOU,
    ]
    assert [c.summary.metrics["iou"].mean for c in ev.cascades] == pytest.approx(expected_iou, abs=1e-12)
    assert [c.summary.cost_per_image for c in ev.cascades] == [
        FREE_PRICE,
        FREE_PRICE + BETTER_PRICE / 4,
        FREE_PRICE + BETTER_PRICE / 2,
        FREE_PRICE + BETTER_PRICE,
    ]
    # the ends are the providers themselves: the same rows, summarised the same way
    assert ev.cascades[0].summary.metrics["composite_seg"] == ev.overall("stand-free").metrics["composite_seg"]
    assert (
        ev.cascades[-1].summary.metrics["composite_seg"].mean
        == ev.overall("stand-better").metrics["composite_seg"].mean
    )
    assert [c.summary.provider for c in ev.cascades][2] == "stand-free→stand-better 50%"


def test_reports_label_the_cascades_as_simulated(data, tmp_path):
    root, free, better = data
    out = tmp_path / "res"
    ev = evaluate(root, [free, better], cascades=[("stand-free", "stand-better")], shares=SHARES, bootstrap=50)
    paths = ev.write(out)
    md = (out / "results.md").read_text()
    assert "**Cascades**, simulated from this evaluation's own mattes (no extra calls)" in md
    assert "| stand-free→stand-better | 50% | 2 of 4 | 0 | " in md and md.rstrip().endswith("| 0.0201 |")
    with open(paths["cascades"], newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [(r["share"], r["n_escalated"], r["escalated"], r["cost_per_image_usd"]) for r in table] == [
        ("0.0", "0", "", "0.0001"),
        ("0.25", "1", "img1", "0.0051"),
        ("0.5", "2", "img1;img3", "0.0101"),
        ("1.0", "4", "img1;img3;img4;img2", "0.0201"),
    ]
    assert {r["simulated"] for r in table} == {"yes"} and table[2]["quality_key"] == "composite_seg"
    assert float(table[2]["iou"]) == pytest.approx(0.9375)
    data = json.loads((out / "evaluation.json").read_text())["cascades"]
    assert data["simulated"].startswith("simulated from this evaluation's own mattes")
    half = data["rows"][2]
    assert (half["free"], half["better"], half["share"], half["escalated"]) == (
        "stand-free",
        "stand-better",
        0.5,
        ["img1", "img3"],
    )
    assert half["cost_per_image_usd"] == "0.0101" and half["metrics"]["iou"]["mean"] == pytest.approx(0.9375)
    with open(paths["per_image"], newline="") as fh:
        per_image = {(r["provider"], r["name"]): r["confidence"] for r in csv.DictReader(fh)}
    assert float(per_image[("stand-free", "img4")]) == float(meta_text(FREE["img4"]))  # what the ranking read
    assert json.loads((out / "evaluation.json").read_text())["rows"][0]["confidence"] == float(meta_text(FREE["img1"]))
    with Image.open(paths["plot"]) as png:
        assert png.format == "PNG"


def test_the_plot_draws_each_cascade_as_a_labelled_line(data):
    from rmbg.eval.report import quality_cost_figure

    root, free, better = data
    ev = evaluate(root, [free, better], cascades="auto", shares=SHARES, bootstrap=50)
    assert {(c.free, c.better) for c in ev.cascades} == {("stand-free", "stand-better")}  # local -> hosted
    ax = quality_cost_figure(ev).axes[0]
    line = next(ln for ln in ax.get_lines() if ln.get_label() == "stand-free→stand-better (simulated)")
    assert list(line.get_xdata()) == pytest.approx([0.1, 5.1, 10.1, 20.1])  # USD per 1,000 images
    assert list(line.get_ydata()) == [c.summary.metrics["composite_seg"].mean for c in ev.cascades]
    texts = {t.get_text() for t in ax.texts}
    assert {"0%", "50%", "100%", "stand-free", "stand-better"} <= texts
    assert ax.get_xscale() == "log"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "stand-free→stand-better (simulated)" in legend


def test_pairs_are_checked_before_any_call(data):
    root, free, better = data
    with pytest.raises(InvalidRequestError, match="nobody not evaluated"):
        evaluate(root, [free, better], cascades=[("stand-free", "nobody")])
    with pytest.raises(InvalidRequestError, match="the same provider twice"):
        evaluate(root, [free, better], cascades=[("stand-free", "stand-free")])
    assert free.calls == 0 and better.calls == 0
    assert evaluate(discover(root), [free, better], bootstrap=20).cascades == ()


def test_a_failed_escalation_keeps_the_free_matte(data):
    root, free, better = data
    img1 = next(k for k, a in free.truths.items() if np.array_equal(a, FREE["img1"]))
    better.fail = {img1}  # the better provider fails on the least sure image
    ev = evaluate(root, [free, better], cascades=[("stand-free", "stand-better")], shares=(0.5,), bootstrap=20)
    (half,) = ev.cascades
    assert half.escalated == ("img1", "img3") and half.summary.n_failed == 0
    assert half.summary.metrics["iou"].mean == pytest.approx((0.5 + 1 + BETTER_IOU + 1) / 4)


@pytest.fixture
def registered(data):
    root, free, better = data
    for p in (free, better):
        rmbg.register(p.id, lambda p=p, **_: p)
    yield root, free, better
    for p in (free, better):
        registry.unregister(p.id)


def test_the_command_line_reports_the_cascade(registered, tmp_path, capsys):
    root, free, better = registered
    out = tmp_path / "res"
    args = ["evaluate", str(root), "--cascade", "stand-free:stand-better", "--yes", "--bootstrap", "50"]
    assert main([*args, "--out", str(out)]) == 0  # without --provider: the pair's providers run
    assert free.calls == 4 and better.calls == 4
    text = capsys.readouterr().out
    shares = [line.split(" | ")[1] for line in text.splitlines() if line.startswith("| stand-free→stand-better |")]
    assert shares == [f"{10 * i}%" for i in range(11)]  # the default shares: 0 %, 10 %, ..., 100 %
    assert "| stand-free→stand-better | 50% | 2 of 4 | 0 |" in text
    assert (out / "cascades.csv").exists()
    both = ["-p", "stand-free", "-p", "stand-better"]
    assert main([*args[:2], *both, "--cascade", "stand-free:rmbg-1.4", "--out", str(out)]) == 2
    assert "Cascade stand-free:rmbg-1.4: rmbg-1.4 not evaluated" in capsys.readouterr().err
    assert main([*args[:2], "--cascade", "stand-free", "--out", str(out)]) == 2
    assert "A cascade is FREE:BETTER" in capsys.readouterr().err
    assert main([*args[:2], "-p", "stand-free", "--cascade", "auto", "--out", str(out)]) == 2
    assert "--cascade needs two providers or more" in capsys.readouterr().err
    assert free.calls == 4 and better.calls == 4
