"""The Benchmark tab's cascade frontier (rmbg.webapp.benchmark.cascades): the cascades a run with
ground truth simulates are rmbg.eval.frontier's for the same mattes, drawn as lines, tabled at a few
shares with their monthly cost, their escalated images named, in the downloads, and never paid for.

The stand-ins and images are tests/test_evaluate_frontier.py's (every IoU and cost computed by hand
there): the free stand-in is least sure of img1, then img3, img4, img2."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest

import rmbg
from rmbg import registry
from rmbg.eval.records import fmt_estimate
from rmbg.eval.run import evaluate
from rmbg.webapp import AppConfig
from rmbg.webapp.benchmark.request import run as bench_run
from rmbg.webapp.benchmark.scoring import estimate
from rmbg.webapp.catalog import Keys
from rmbg.webapp.context import App
from tests.fakes.fal import TEST_KEY as FAL_KEY
from tests.fakes.fal import FalFake
from tests.support.app import submits
from tests.support.benchmark import DAVIS, FRAMES
from tests.test_evaluate_frontier import data, registered  # noqa: F401  (the images and the two stand-ins, registered)
from tests.u2netp_fixture import u2netp_path  # noqa: F401

pytestmark = pytest.mark.uses("scipy", "matplotlib")
PAIR = "stand-free→stand-better"


def run_tab(root: Path, ids: list[str], app: App, keys: Keys = Keys(), volume: int = 100_000):  # noqa: B008
    """The tab's whole request on loose image and mask files, as the page sends them."""
    images = sorted((root / "images").iterdir())
    masks = sorted((root / "masks").iterdir())
    return bench_run(images, masks, ids, keys, app, None, session_id="visitor", volume=volume)


def test_the_tab_shows_the_cascades_rmbg_evaluate_simulates_and_pays_for_none(registered):
    root, free, better = registered
    app = App.create(AppConfig(allow_server_keys=True), cache=None)  # the server's "key" pays the stand-in
    shown = run_tab(root, ["stand-free", "stand-better"], app)
    assert (free.calls, better.calls) == (4, 4)  # one call per image each: the simulation made none
    assert app.ledger.session_spent("visitor") == Decimal("0.08")  # 4 x the better stand-in's $0.02

    cli = evaluate(root, [free, better], cascades=[("stand-free", "stand-better")])  # rmbg evaluate's numbers
    by_share = {c.share: c for c in cli.cascades}
    assert shown.cascade_headers == [
        "cascade (free → better)",
        "share asked",
        "escalated",
        "C_seg [95 % CI]",
        "S_IoU [95 % CI]",
        "$/image",
        "$/month (100,000 images)",
    ]
    assert shown.cascade_rows == [
        [
            PAIR,
            f"{share:.0%}",
            escalated,
            fmt_estimate("composite_seg", by_share[share].summary.metrics["composite_seg"]),
            fmt_estimate("iou", by_share[share].summary.metrics["iou"]),
            per_image,
            monthly,
        ]
        for share, escalated, per_image, monthly in [
            (0.1, "0 of 4 (0%)", "0.0001", "10.00"),  # floor(0.4) images: the free stand-in alone
            (0.3, "1 of 4 (25%)", "0.0051", "510.00"),  # $0.0001 + $0.02 / 4
            (0.5, "2 of 4 (50%)", "0.0101", "1010.00"),
        ]
    ]
    assert [row[4].split()[0] for row in shown.cascade_rows] == ["75.0", "84.4", "93.8"]  # by hand: IoU means
    assert shown.cascade_notes.endswith(f"- **{PAIR}** escalates 1 of 4: img1")
    marked = [caption.split(" · ") for _, caption in shown.gallery if "escalated" in caption]
    assert [[name, provider, note] for name, provider, _score, note in marked] == [
        ["img1", "stand-free", "escalated at 30%"]
    ]

    line = next(ln for ln in shown.figure.axes[0].get_lines() if ln.get_label() == f"{PAIR} (simulated)")
    escalated = [0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4]  # floor(share x 4) at 0 %, 10 %, ..., 100 %
    assert list(line.get_xdata()) == pytest.approx([0.1 + 5 * k for k in escalated])  # USD per 1,000 images
    assert list(line.get_ydata()) == [c.summary.metrics["composite_seg"].mean for c in cli.cascades]

    files = {Path(f).name: Path(f) for f in shown.files}
    assert sorted(files) == ["cascades.csv", "evaluation.json", "per_image.csv", "summary.csv"]
    with open(files["cascades.csv"], newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [(r["share"], r["escalated"], r["cost_per_image_usd"]) for r in table][3:6] == [
        ("0.3", "img1", "0.0051"),
        ("0.4", "img1", "0.0051"),
        ("0.5", "img1;img3", "0.0101"),
    ]
    doc = json.loads(files["evaluation.json"].read_text())["cascades"]
    assert (doc["default_share"], doc["monthly_volume"]) == (0.3, 100_000)
    thirty = next(r for r in doc["rows"] if r["share"] == 0.3)
    assert [thirty[k] for k in ("escalated", "cost_per_image_usd", "monthly_usd")] == [["img1"], "0.0051", "510.0000"]


def test_without_a_pair_the_tab_says_what_to_tick(registered):
    from tests.test_evaluate import LookupProvider

    root, free, _ = registered
    app = App.create(AppConfig(), cache=None)
    alone = run_tab(root, ["stand-free"], app)
    assert (alone.cascade_rows, alone.cascade_notes) == ([], "")
    twin = LookupProvider("stand-twin", free.truths, price="0.0001")  # local, the same mattes: not better
    rmbg.register(twin.id, lambda **_: twin)
    try:
        same = run_tab(root, ["stand-free", "stand-twin"], app)
    finally:
        registry.unregister(twin.id)
    assert same.cascade_rows == [] and same.cascade_notes.startswith("**Cascades**: none here. Tick a local")
    assert sorted(Path(f).name for f in same.files) == ["evaluation.json", "per_image.csv", "summary.csv"]


@pytest.mark.slow  # U2-Net-p and the scoring of two full DAVIS frames: about 10 s on 2 cores
def test_a_hosted_provider_is_called_once_per_image_with_its_cascade_simulated(tmp_path, u2netp_path):  # noqa: F811
    """u2netp and fal-bria (a fake fal server) on two DAVIS frames: fal gets one job per image, the
    cascade u2netp→fal-bria is drawn and tabled; at the default share no frame of two is escalated."""
    import shutil

    frames = FRAMES[:2]
    for sub, suffix in (("images", ".jpg"), ("masks", ".png")):
        (tmp_path / sub).mkdir()
        for name in frames:
            shutil.copy(DAVIS / sub / f"{name}{suffix}", tmp_path / sub / f"{name}{suffix}")
    with FalFake() as fal:
        app = App.create(AppConfig(provider_config={"fal-bria": {"base_url": fal.url}}), cache=None)
        shown = run_tab(tmp_path, ["u2netp", "fal-bria"], app, Keys.of(FAL_KEY), volume=1000)
        assert submits(fal) == len(frames)
    assert app.ledger.session_spent("visitor") == estimate(["fal-bria"], len(frames), app)
    assert [row[:3] for row in shown.cascade_rows] == [
        ["u2netp→fal-bria", "10%", "0 of 2 (0%)"],
        ["u2netp→fal-bria", "30%", "0 of 2 (0%)"],
        ["u2netp→fal-bria", "50%", "1 of 2 (50%)"],
    ]
    doc = json.loads(next(Path(f) for f in shown.files if f.endswith("evaluation.json")).read_text())
    u2 = {r["name"]: r for r in doc["rows"] if r["provider"] == "u2netp"}
    fal_row = {r["name"]: r for r in doc["rows"] if r["provider"] == "fal-bria"}
    least_sure = min(u2.values(), key=lambda r: (r["confidence"], frames.index(r["name"])))["name"]
    half = next(r for r in doc["cascades"]["rows"] if r["share"] == 0.5)
    paid = sum(Decimal(r["cost_usd"]) for r in u2.values()) + Decimal(fal_row[least_sure]["cost_usd"])
    assert (half["escalated"], Decimal(half["cost_per_image_usd"])) == ([least_sure], paid / 2)
    none = "- **u2netp→fal-bria** escalates 0 of 2 (none: 30% of 2 images is less than one)"
    assert shown.cascade_notes.endswith(none)
    labels = [ln.get_label() for ln in shown.figure.axes[0].get_lines()]
    assert "u2netp→fal-bria (simulated)" in labels
