"""rmbg.eval.run: data set discovery, per-image scores, group bootstrap, reports.

Providers here are deterministic fakes that look the ground truth up by the
image's pixels, so every expected score can be computed independently.
"""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rmbg.errors import BudgetError, InvalidImageError, InvalidRequestError
from rmbg.eval import metrics as M
from rmbg.eval.dataset import DatasetError, discover, subset
from rmbg.eval.run import evaluate, load_ground_truth
from rmbg.providers.base import ProviderStatus
from rmbg.types import Cost, Matte

REPO = Path(__file__).resolve().parents[1]
DAVIS = REPO / "data" / "davis2016-sample"
FRAMES = ["blackswan_00000", "blackswan_00025", "dog_00000", "dog_00030", "dog_00059", "libby_00000"]


class LookupProvider:
    """Returns a transform of the ground truth registered for the image's pixels; counts calls."""

    def __init__(
        self, pid: str, truths: dict[str, np.ndarray], transform=lambda g: g, *, kind="local", price="0", fail=()
    ):
        self.id, self.label, self.kind = pid, f"Fake {pid}", kind
        self.truths, self.transform, self.price, self.fail = truths, transform, Decimal(price), set(fail)
        self.calls = 0
        self._lock = threading.Lock()

    def options(self):
        return {"variant": self.id}

    def status(self):
        return ProviderStatus("ready")

    def estimate(self):
        return Cost(self.price, "estimated", "fake price") if self.price else Cost.free()

    def matte(self, image):
        with self._lock:
            self.calls += 1
        key = hashlib.sha256(image.tobytes()).hexdigest()
        if key in self.fail:
            raise InvalidImageError("fake failure for this image")
        alpha = self.transform(self.truths[key])
        return Matte(Image.fromarray(alpha, "L"), Cost(self.price, "estimated") if self.price else Cost.free(), 0.01)


def _truths(dataset) -> dict[str, np.ndarray]:
    out = {}
    for s in dataset.samples:
        with Image.open(s.image) as img:
            out[hashlib.sha256(img.convert("RGB").tobytes()).hexdigest()] = load_ground_truth(s.mask)
    return out


@pytest.fixture(scope="module")
def davis():
    """The DAVIS sample, its FRAMES at their full 854x480 and those frames' ground truths."""
    full = discover(DAVIS)
    small = subset(full, FRAMES)
    return full, small, _truths(small)


@pytest.fixture(scope="module")
def thumbs(tmp_path_factory):
    """FRAMES at a quarter of their size (214x120; masks resized by nearest neighbour, so still binary),
    under their own names and so in their own groups: for the checks where the size is not what is
    checked (scoring an 854x480 frame costs 15 times as much). test_perfect_provider_... keeps full size."""
    root = tmp_path_factory.mktemp("thumbs")
    for folder in ("images", "masks"):
        (root / folder).mkdir()
    for name in FRAMES:
        with Image.open(DAVIS / "images" / f"{name}.jpg") as img:
            img.convert("RGB").resize((214, 120), Image.Resampling.BILINEAR).save(root / "images" / f"{name}.png")
        with Image.open(DAVIS / "masks" / f"{name}.png") as mask:
            mask.convert("L").resize((214, 120), Image.Resampling.NEAREST).save(root / "masks" / f"{name}.png")
    data = discover(root)
    return data, data, _truths(data)


def shift(g: np.ndarray) -> np.ndarray:
    return np.roll(g, (3, 12), axis=(0, 1))


# --- discovery -------------------------------------------------------------------


def test_discover_davis_layout(davis):
    full, small, _ = davis
    assert len(full) == 30 and len(full.groups) == 10 and full.categories == []
    assert full.samples[0].name == "blackswan_00000" and full.samples[0].group == "blackswan"
    assert {s.group for s in small.samples} == {"blackswan", "dog", "libby"}


def _write_set(root: Path, names: dict[str, np.ndarray]) -> None:
    for name, alpha in names.items():
        img = root / "images" / f"{name}.png"
        mask = root / "masks" / f"{name}.png"
        img.parent.mkdir(parents=True, exist_ok=True)
        mask.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(int(hashlib.sha256(name.encode()).hexdigest()[:8], 16))
        Image.fromarray(rng.integers(0, 255, alpha.shape + (3,), dtype=np.uint8), "RGB").save(img)
        Image.fromarray(alpha, "L").save(mask)


def _ramp_alpha() -> np.ndarray:
    a = np.zeros((40, 64), dtype=np.uint8)
    a[:, 16:48] = np.linspace(0, 255, 32).astype(np.uint8)  # 32 columns of semi-transparency: 1200+ px
    a[:, 48:] = 255
    return a


def test_discover_categories_from_subfolders_and_csv(tmp_path):
    block = np.zeros((40, 64), dtype=np.uint8)
    block[10:30, 10:50] = 255
    _write_set(tmp_path, {"people/a_001": block, "people/a_002": block, "pets/cat": block, "loose": block})
    (tmp_path / "images" / "orphan.png").write_bytes((tmp_path / "images" / "loose.png").read_bytes())
    ds = discover(tmp_path)
    by = {s.name: s for s in ds.samples}
    assert by["people/a_001"].category == "people" and by["people/a_001"].group == "people/a"
    assert by["pets/cat"].group == "pets/cat" and by["loose"].category == ""
    assert ds.unmatched_images == ("orphan",) and ds.categories_file is None
    (tmp_path / "cats.csv").write_text("file,category,group\nloose.png,misc,g1\npets/cat,animals,\n")
    ds = discover(tmp_path, categories=tmp_path / "cats.csv")
    by = {s.name: s for s in ds.samples}
    assert (by["loose"].category, by["loose"].group) == ("misc", "g1")
    assert ds.categories_file == tmp_path / "cats.csv" == subset(ds, ["loose"]).categories_file  # the file read
    (tmp_path / "cats.csv").rename(tmp_path / "categories.csv")  # the default, read when present
    assert discover(tmp_path).categories_file == tmp_path / "categories.csv"
    assert (by["pets/cat"].category, by["pets/cat"].group) == ("animals", "pets/cat")
    with pytest.raises(DatasetError, match="masks"):
        discover(tmp_path / "images")


@pytest.mark.parametrize(
    "data",
    [
        "\ufefffile,category,group\r\nloose.png,misc,g1\r\n".encode(),  # Excel's "CSV UTF-8": a byte-order mark
        b"file;category;group\nloose.png;misc;g1\n",  # Excel where the decimal mark is a comma
        b"file\tcategory\tgroup\nloose.png\tmisc\tg1\n",
    ],
)
def test_a_categories_file_saved_by_a_spreadsheet_is_read(tmp_path, data):
    """The byte-order mark hid the `file` column ("needs the columns file,category"); semicolons and tabs
    were one column. A file that is not UTF-8 is refused in words, not with a UnicodeDecodeError."""
    block = np.zeros((40, 64), dtype=np.uint8)
    block[10:30, 10:50] = 255
    _write_set(tmp_path, {"loose": block})
    (tmp_path / "cats.csv").write_bytes(data)
    (sample,) = discover(tmp_path, categories=tmp_path / "cats.csv").samples
    assert (sample.category, sample.group) == ("misc", "g1")
    (tmp_path / "cats.csv").write_bytes(b"\xff\xfef\x00i\x00")  # UTF-16, as "Unicode text" saves it
    with pytest.raises(DatasetError, match="cats.csv is not UTF-8 text: save it as CSV UTF-8"):
        discover(tmp_path, categories=tmp_path / "cats.csv")


# --- evaluation on DAVIS frames ---------------------------------------------------


def test_perfect_provider_scores_100_and_is_called_once_per_image(davis):
    _, small, truths = davis
    fake = LookupProvider("fake-perfect", truths)
    ev = evaluate(small, [fake], bootstrap=200)
    assert fake.calls == len(FRAMES)
    s = ev.overall("fake-perfect")
    assert (s.n_images, s.n_groups, s.n_failed) == (6, 3, 0)
    assert s.metrics["iou"].mean == 1.0 and s.metrics["iou"].low == 1.0
    assert s.metrics["composite_seg"].mean == pytest.approx(100.0)
    assert ev.composite_key == "composite_seg" and ev.gt_kind == "binary"
    assert "composite" not in s.metrics and "s_trans_star" not in s.metrics  # never invented


def test_scores_match_metrics_and_group_bootstrap(thumbs):
    _, small, truths = thumbs
    ev = evaluate(small, [LookupProvider("fake-shift", truths, shift)], bootstrap=500, seed=7)
    by_name = {r.name: r for r in ev.rows}
    per_group: dict[str, list[float]] = {}
    for s in small.samples:
        gt = load_ground_truth(s.mask)
        expected, _ = M.score_image(shift(gt), gt)
        row = by_name[s.name]
        assert row.values["iou"] == pytest.approx(expected.iou, abs=1e-12)
        assert row.values["boundary_f"] == pytest.approx(expected.boundary_f, abs=1e-12)
        assert row.values["mae"] == pytest.approx(expected.mae, abs=1e-12)
        per_group.setdefault(s.group, []).append(expected.iou)
    group_means = np.array([np.mean(per_group[g]) for g in sorted(per_group)])
    est = ev.overall("fake-shift").metrics["iou"]
    assert est.mean == pytest.approx(group_means.mean())  # mean of group means, not of frames
    # An independent bootstrap (fancy indexing) with the same draws:
    draws = np.random.default_rng(7).integers(0, 3, size=(500, 3))
    low, high = np.percentile(group_means[draws].mean(axis=1), [2.5, 97.5])
    assert (est.low, est.high) == (pytest.approx(low), pytest.approx(high))
    comp = ev.overall("fake-shift").metrics["composite_seg"]
    assert comp.mean == pytest.approx(
        M.composite_seg(100 * est.mean, 100 * ev.overall("fake-shift").metrics["boundary_f"].mean)
    )
    assert comp.low <= comp.mean <= comp.high


def test_one_failure_is_recorded_and_the_rest_go_on(thumbs):
    _, small, truths = thumbs
    bad = next(iter(truths))
    fake = LookupProvider("fake-flaky", truths, fail={bad})
    ev = evaluate(small, [fake, LookupProvider("fake-perfect", truths)], bootstrap=100)
    failed = [r for r in ev.rows if r.status == "failed"]
    assert len(failed) == 1 and "fake failure" in failed[0].error
    assert ev.overall("fake-flaky").n_failed == 1 and ev.overall("fake-flaky").n_images == 5
    assert ev.overall("fake-perfect").n_images == 6


def test_reports_are_written(thumbs, tmp_path):
    _, small, truths = thumbs
    ev = evaluate(
        small,
        [LookupProvider("fake-perfect", truths), LookupProvider("fake-shift", truths, shift)],
        out=tmp_path,
        bootstrap=100,
    )
    md = (tmp_path / "results.md").read_text()
    assert md == ev.to_markdown()
    assert "segmentation-only composite (transparency not measured)" in md and "S_trans" not in md
    assert md.splitlines()[0].startswith("| provider | category |") and "fake-shift" in md
    with open(tmp_path / "per_image.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 and {r["status"] for r in rows} == {"ok"}
    with open(tmp_path / "summary.csv", newline="") as fh:
        summary = list(csv.DictReader(fh))
    assert [r["provider"] for r in summary] == ["fake-perfect", "fake-shift"]
    assert "composite_seg_low" in summary[0] and "s_trans_star" not in summary[0]
    data = json.loads((tmp_path / "evaluation.json").read_text())
    assert data["composite_key"] == "composite_seg" and len(data["rows"]) == 12
    with Image.open(tmp_path / "quality_vs_cost.png") as png:
        assert png.format == "PNG" and png.size[0] > 100


def test_the_plot_reads_costs_in_dollars_per_thousand_on_a_log_scale(thumbs):
    from rmbg.eval.report import quality_cost_figure, usd_tick

    _, small, truths = thumbs
    cheap = LookupProvider("fake-local", truths, price="0.0000065")  # compute-estimate sized
    paid = LookupProvider("fake-paid", truths, shift, kind="hosted", price="0.018")
    ev = evaluate(subset(small, FRAMES[:2]), [cheap, paid], bootstrap=50)
    fig = quality_cost_figure(ev)
    ax = fig.axes[0]
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert ax.get_xscale() == "log" and ax.xaxis.get_offset_text().get_text() == ""
    assert labels and all(label.startswith("$") for label in labels) and "$0.01" in labels and "$10" in labels
    assert ax.get_xlabel() == "USD per 1,000 images (local = compute estimate)"
    assert [usd_tick(v) for v in (18.0, 1.8, 0.0065, 0.012, 0.0)] == ["$18", "$1.8", "$0.0065", "$0.012", "$0"]


def test_plot_is_skipped_only_when_matplotlib_is_missing(thumbs, tmp_path, monkeypatch):
    _, small, truths = thumbs
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    paths = evaluate(subset(small, FRAMES[:2]), [LookupProvider("fake-perfect", truths)], bootstrap=50).write(tmp_path)
    assert "plot" not in paths and "matplotlib" in paths["plot_skipped"].read_text()
    assert paths["markdown"].exists() and paths["json"].exists()


def test_budget_refuses_before_any_paid_call(davis):
    _, small, truths = davis
    paid = LookupProvider("fake-paid", truths, kind="hosted", price="0.02")
    with pytest.raises(BudgetError, match="0.12"):
        evaluate(small, [paid], max_cost=Decimal("0.10"))
    assert paid.calls == 0


# --- alpha ground truth and categories ---------------------------------------------


def test_alpha_ground_truth_gets_the_full_composite_by_category(tmp_path):
    alpha = _ramp_alpha()
    _write_set(tmp_path, {"glass/a_01": alpha, "glass/a_02": alpha, "hair/b_01": alpha})
    ds = discover(tmp_path)
    truths = _truths(ds)
    hard = LookupProvider("fake-hard", truths, lambda a: np.where(a >= 128, 255, 0).astype(np.uint8))
    ev = evaluate(ds, [hard, LookupProvider("fake-exact", truths)], bootstrap=100)
    assert ev.gt_kind == "alpha" and ev.composite_key == "composite"
    exact, hard_all = ev.overall("fake-exact"), ev.overall("fake-hard")
    assert exact.metrics["s_trans_star"].mean == pytest.approx(100.0)
    assert hard_all.metrics["s_trans_star"].mean == pytest.approx(0.0)  # no better than a hard cut-out
    assert hard_all.metrics["composite"].mean == pytest.approx(
        M.composite(100 * hard_all.metrics["iou"].mean, 100 * hard_all.metrics["boundary_f"].mean, 0.0)
    )
    cats = [(s.provider, s.category) for s in ev.summaries]
    assert cats == [
        ("fake-hard", "all"),
        ("fake-hard", "glass"),
        ("fake-hard", "hair"),
        ("fake-exact", "all"),
        ("fake-exact", "glass"),
        ("fake-exact", "hair"),
    ]
    assert "S_trans*" in ev.to_markdown() and "segmentation-only" not in ev.to_markdown()
    forced = evaluate(ds, [hard], gt="binary", bootstrap=50)
    assert forced.composite_key == "composite_seg" and "s_trans" not in forced.overall("fake-hard").metrics


def test_importing_evaluate_loads_no_heavy_modules():
    code = "import sys, rmbg.eval.run; print([m for m in ('torch', 'matplotlib', 'gradio') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("bootstrap", [-1, 20_001, 2.5, True, "200", None])
def test_a_bootstrap_that_cannot_be_made_is_refused_before_any_call(davis, bootstrap):
    """Scores come after every call: a count of resamples that would fail there (or ask for gigabytes)
    is refused first, so no paid call is made for results that would be lost."""
    _, small, truths = davis
    paid = LookupProvider("fake-paid", truths, kind="hosted", price="0.02")
    with pytest.raises(InvalidRequestError, match="bootstrap must be a whole number of resamples from 0"):
        evaluate(small, [paid], bootstrap=bootstrap)
    assert paid.calls == 0


def test_no_resamples_keeps_the_means_and_one_resample_still_plots(thumbs, tmp_path):
    """bootstrap=0: the means without intervals (not blanks); bootstrap=1: an interval that need not hold
    its mean, drawn without a negative error bar (matplotlib refuses one)."""
    _, small, truths = thumbs
    two = subset(small, FRAMES[:3])
    with_ci = evaluate(two, [LookupProvider("fake-shift", truths, shift)], bootstrap=200).overall("fake-shift")
    bare = evaluate(two, [LookupProvider("fake-shift", truths, shift)], bootstrap=0)
    s = bare.overall("fake-shift")
    assert s.metrics["iou"].mean == with_ci.metrics["iou"].mean
    assert np.isnan(s.metrics["iou"].low) and np.isnan(s.metrics["iou"].high)
    row = next(line for line in bare.to_markdown().splitlines() if line.startswith("| fake-shift | all"))
    assert f"| {100 * s.metrics['iou'].mean:.1f} |" in row and "[" not in row and "nan" not in row
    one = evaluate(two, [LookupProvider("fake-shift", truths, shift)], bootstrap=1)
    est = one.overall("fake-shift").metrics["composite_seg"]
    assert est.low == est.high > est.mean  # one resample: a point, here above the mean
    paths = one.write(tmp_path / "one")
    assert paths["plot"].stat().st_size > 0
    assert bare.write(tmp_path / "bare")["plot"].stat().st_size > 0


def test_a_cap_is_read_as_usd_or_refused_before_any_call(davis):
    """max_cost=0.10 (a float) is the cap Decimal("0.10") is; NaN and amounts below 0 are refused before any
    call, where NaN once failed with decimal.InvalidOperation and -1 read as a budget of $-1."""
    _, small, truths = davis
    paid = LookupProvider("fake-paid", truths, kind="hosted", price="0.02")
    with pytest.raises(BudgetError, match="0.12 is over the budget of .0.1"):
        evaluate(small, [paid], max_cost=0.10)
    for bad in (float("nan"), -1, "ten dollars"):
        with pytest.raises(InvalidRequestError, match="max_cost must be an amount of USD, 0 or more"):
            evaluate(small, [paid], max_cost=bad)
    assert paid.calls == 0


def test_one_provider_alone_is_one_provider(thumbs):
    """evaluate(data, provider) with one provider (an object, or an id) not in a list: scored as [provider]
    (an id was read letter by letter: "Unknown provider 'u'"; an object was not iterable)."""
    _, small, truths = thumbs
    fake = LookupProvider("fake-perfect", truths)
    ev = evaluate(subset(small, FRAMES[:2]), fake, bootstrap=10)
    assert [s.provider for s in ev.summaries] == ["fake-perfect"] and fake.calls == 2


def test_a_file_name_that_is_not_utf8_is_scored_and_reported_as_text(tmp_path):
    """An image and its mask named with bytes that are not UTF-8 were scored, then the run failed writing
    per_image.csv (UnicodeEncodeError) after every call, paid ones included, and nothing was written.
    The name is matched and reported with those bytes as \\xNN."""
    import os
    import shutil

    odd = os.fsdecode(b"dog_\xe900")
    for folder, suffix in (("images", ".jpg"), ("masks", ".png")):
        (tmp_path / folder).mkdir()
        shutil.copy(DAVIS / folder / f"dog_00000{suffix}", tmp_path / folder / f"{odd}{suffix}")
        shutil.copy(DAVIS / folder / f"dog_00030{suffix}", tmp_path / folder / f"dog_00030{suffix}")
    data = discover(tmp_path)
    ev = evaluate(data, [LookupProvider("fake-perfect", _truths(data))], bootstrap=10)
    assert sorted(r.name for r in ev.rows) == ["dog_00030", "dog_\\xe900"] and all(r.status == "ok" for r in ev.rows)
    paths = ev.write(tmp_path / "out")
    assert "dog_\\xe900" in paths["per_image"].read_text(encoding="utf-8")


def test_jpeg_masks_read_as_alpha_say_so_and_how_to_score_them_as_binary(tmp_path):
    """Binary masks saved as JPEG: the compression noise around their edges is semi-transparent to gt="auto",
    which scored them as alpha mattes (a transparency term in the composite: 73 against 92 on these three
    DAVIS frames for U2-Net-p) without a word. The report now says why and how to score them as binary."""
    import shutil

    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    for name in FRAMES[:3]:
        shutil.copy(DAVIS / "images" / f"{name}.jpg", tmp_path / "images" / f"{name}.jpg")
        Image.open(DAVIS / "masks" / f"{name}.png").convert("L").save(tmp_path / "masks" / f"{name}.jpg", quality=90)
    data = discover(tmp_path)
    auto = evaluate(data, [LookupProvider("fake-perfect", _truths(data))], bootstrap=10)
    fact = "3 of the 3 masks are JPEG, whose compression noise reads as transparency"
    said = f"Ground truth: alpha ({fact}: if they are binary masks, run again with --gt binary"
    assert auto.gt_kind == "alpha" and said in auto.to_markdown()
    binary = evaluate(data, [LookupProvider("fake-perfect", _truths(data))], gt="binary", bootstrap=10)
    assert binary.gt_kind == "binary" and "JPEG" not in binary.to_markdown()
    from types import SimpleNamespace

    from rmbg.webapp.benchmark.report import status_line

    tab = status_line(SimpleNamespace(evaluation=auto, stopped=False), None)  # the Benchmark tab has no gt choice
    assert f"Ground truth read as alpha mattes: {fact}; if they are binary masks, upload them as PNG." in tab


def test_a_black_and_white_mask_saved_as_opaque_rgba_is_read_by_its_grey_levels(tmp_path):
    """A mask exported as RGBA with an alpha opaque everywhere was read by that alpha: all subject, every score
    against a white frame. An alpha that says nothing is passed over for the grey levels; a real one is kept."""
    mask = np.zeros((20, 30), dtype=np.uint8)
    mask[5:15, 10:20] = 255
    Image.fromarray(mask, "L").convert("RGBA").save(tmp_path / "opaque.png")  # alpha 255 everywhere
    assert np.array_equal(load_ground_truth(tmp_path / "opaque.png"), mask)
    cutout = Image.new("RGBA", (30, 20), (200, 10, 10, 0))
    cutout.putalpha(Image.fromarray(mask, "L"))
    cutout.save(tmp_path / "cutout.png")  # a cut-out as ground truth: its alpha is the mask
    assert np.array_equal(load_ground_truth(tmp_path / "cutout.png"), mask)


# --- a mask that is not its image's shape -------------------------------------------


def _left_half(size: tuple[int, int]) -> np.ndarray:
    """A mask of `size` (width, height) white on its left half."""
    mask = np.zeros((size[1], size[0]), dtype=np.uint8)
    mask[:, : size[0] // 2] = 255
    return mask


def _shaped_set(root: Path, masks: dict[str, tuple[int, int]], image=(200, 150)) -> dict[str, np.ndarray]:
    """One random image of `image` size per name, each with a left-half mask of its own size; the truths
    a LookupProvider answers with, keyed by the pixels as load_image gives them: each image's left half."""
    for folder in ("images", "masks"):
        (root / folder).mkdir(exist_ok=True)
    for name, size in masks.items():
        rng = np.random.default_rng(int(hashlib.sha256(name.encode()).hexdigest()[:8], 16))
        Image.fromarray(rng.integers(0, 255, (image[1], image[0], 3), dtype=np.uint8)).save(
            root / "images" / f"{name}.png"
        )
        Image.fromarray(_left_half(size), "L").save(root / "masks" / f"{name}.png")
    return _upright_truths(discover(root))


def _upright_truths(dataset) -> dict[str, np.ndarray]:
    from rmbg.image.io import load_image

    out = {}
    for s in dataset.samples:
        rgb = load_image(s.image).rgb
        out[hashlib.sha256(rgb.tobytes()).hexdigest()] = _left_half(rgb.size)
    return out


def test_the_size_rule_takes_a_scaled_mask_and_refuses_another_aspect_ratio():
    from rmbg.eval.dataset import same_shape

    for mask in ((1000, 750), (500, 375), (501, 375), (500, 376), (2000, 1500), (4, 3)):
        assert same_shape(mask, (1000, 750)) is None, mask
    assert same_shape((750, 1000), (1000, 750)) == (
        "is 750x1000 but the image is 1000x750 as shown: a mask is its image's size or that size scaled "
        "(the same aspect ratio); is it another image's mask?"
    )
    assert same_shape((750, 1000), (1000, 750), stored=(750, 1000)) == (
        "is 750x1000 but the image is 1000x750 as shown: the image is rotated by its EXIF orientation "
        "and the mask is not; turn the mask as the image is shown"
    )
    assert same_shape((500, 500), (1000, 750), of="frame") == (
        "is 500x500 but the frame is 1000x750: a mask is its frame's size or that size scaled "
        "(the same aspect ratio); is it another frame's mask?"
    )


def test_a_mask_of_another_shape_fails_its_image_in_words_and_the_rest_are_scored(tmp_path):
    """A transposed mask, or one of another aspect ratio, was scored after squashing the matte into it:
    scores that mean nothing. Each fails its image, naming both sizes; a half-size mask is still scored
    (the matte resized to it, as for any mask of the image's shape)."""
    truths = _shaped_set(tmp_path, {"a": (200, 150), "half": (100, 75), "square": (150, 150), "turned": (150, 200)})
    fake = LookupProvider("fake-perfect", truths)
    ev = evaluate(tmp_path, [fake], bootstrap=10)
    rows = {r.name: r for r in ev.rows}
    assert [(n, rows[n].status) for n in sorted(rows)] == [
        ("a", "ok"),
        ("half", "ok"),
        ("square", "failed"),
        ("turned", "failed"),
    ]
    assert rows["a"].values["iou"] == 1.0 and rows["half"].values["iou"] == 1.0  # the matte resized to 100x75
    why = "a mask is its image's size or that size scaled (the same aspect ratio); is it another image's mask?"
    assert rows["square"].error == f"its mask square.png is 150x150 but the image is 200x150 as shown: {why}"
    assert rows["turned"].error == f"its mask turned.png is 150x200 but the image is 200x150 as shown: {why}"
    assert fake.calls == 2 and ev.overall("fake-perfect").n_failed == 2


def test_a_mask_left_unturned_by_the_image_s_exif_orientation_is_refused_and_says_so(tmp_path):
    """A portrait phone photo saved 150x200 with EXIF orientation 6 is shown (and cut out) 200x150: its mask
    saved at the stored 150x200 is refused with the reason; a mask of the shown size is scored."""
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to show
    stored = np.random.default_rng(6).integers(0, 255, (200, 150, 3), dtype=np.uint8)  # 150 wide, 200 high
    for name, mask in (("phone", (150, 200)), ("upright", (200, 150))):
        Image.fromarray(stored).save(tmp_path / "images" / f"{name}.jpg", exif=exif)
        Image.fromarray(_left_half(mask), "L").save(tmp_path / "masks" / f"{name}.png")
    data = discover(tmp_path)
    fake = LookupProvider("fake-perfect", _upright_truths(data))
    rows = {r.name: r for r in evaluate(data, [fake], bootstrap=10).rows}
    assert rows["upright"].status == "ok" and rows["upright"].values["iou"] == 1.0
    assert rows["phone"].status == "failed" and rows["phone"].error == (
        "its mask phone.png is 150x200 but the image is 200x150 as shown: the image is rotated by its EXIF "
        "orientation and the mask is not; turn the mask as the image is shown"
    )
    assert fake.calls == 1


def test_a_paid_provider_is_not_called_for_an_image_whose_mask_is_not_its_shape(tmp_path):
    """The image's size is read from its header before the provider is called: a hosted provider is sent
    nothing for the refused image, and the row costs nothing."""
    truths = _shaped_set(tmp_path, {"a": (200, 150), "square": (150, 150)})
    paid = LookupProvider("fake-paid", truths, kind="hosted", price="0.02")
    rows = {r.name: r for r in evaluate(tmp_path, [paid], bootstrap=10).rows}
    assert paid.calls == 1
    assert (rows["a"].status, rows["a"].cost_usd) == ("ok", Decimal("0.02"))
    assert (rows["square"].status, rows["square"].cost_usd, rows["square"].cost_source) == ("failed", 0, "")
    assert rows["square"].error.startswith("its mask square.png is 150x150 but the image is 200x150 as shown: ")
