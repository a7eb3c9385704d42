"""The command line (rmbg.cli.main + rmbg.cli.batch), run in-process through main([...]).

Fake providers are registered for each test: a deterministic local one
(alpha = grey >= 128) and a hosted one that costs $0.01 per image; both
count their calls. One test runs the real U2-Net-p (the default here).
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import rmbg
from rmbg import registry
from rmbg.cli.main import main
from rmbg.cli.many import remove_many
from rmbg.cli.progress import Progress
from rmbg.eval.run import COMPOSITE_SEG_LABEL
from rmbg.providers.base import ProviderStatus
from rmbg.types import Cost, Matte

REPO = Path(__file__).resolve().parent.parent
BG = (10, 20, 30)


class FakeLocal:
    id = "fake-local"
    label = "Fake local (threshold)"
    kind = "local"

    def __init__(self):
        self.calls = 0
        self._lock = threading.Lock()

    def options(self):
        return {"threshold": 128}

    def status(self):
        return ProviderStatus("ready", "fake weights")

    def estimate(self):
        return Cost.free("local compute; estimate after a run")

    def matte(self, image):
        with self._lock:
            self.calls += 1
        alpha = image.convert("L").point(lambda v: 255 if v >= 128 else 0)
        return Matte(
            alpha, Cost(Decimal("0.0001"), "compute", "fake"), 0.001, {"model": "fake/threshold", "revision": "v1"}
        )


class FakeHosted(FakeLocal):
    id = "fake-hosted"
    label = "Fake hosted"
    kind = "hosted"

    def __init__(self):
        super().__init__()
        self.barrier: threading.Barrier | None = None
        self.active = self.max_active = 0

    def estimate(self):
        return Cost(Decimal("0.01"), "estimated", "price table")

    def matte(self, image):
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.barrier is not None:
                self.barrier.wait(timeout=10)  # only reached in full when run concurrently
            matte = super().matte(image)
            return Matte(matte.alpha, Cost(Decimal("0.01"), "reported", "fake"), 0.001, matte.meta)
        finally:
            with self._lock:
                self.active -= 1


@pytest.fixture
def fakes():
    local, hosted = FakeLocal(), FakeHosted()
    rmbg.register(local.id, lambda **_: local)
    rmbg.register(hosted.id, lambda **_: hosted)
    yield local, hosted
    registry.unregister(local.id)
    registry.unregister(hosted.id)


def make_image(path: Path, seed: int, size=(16, 12)) -> None:
    """Left half white, right half dark grey (alpha 255 / 0); one pixel varies so contents differ."""
    w, h = size
    arr = np.full((h, w, 3), 40, np.uint8)
    arr[:, : w // 2] = 255
    arr[0, w - 1] = (seed * 7) % 100
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """tmp/in/{a.png, sub/b.png, sub/deeper/c.jpg, notes.txt}; cwd = tmp."""
    monkeypatch.chdir(tmp_path)
    make_image(tmp_path / "in" / "a.png", 1)
    make_image(tmp_path / "in" / "sub" / "b.png", 2)
    make_image(tmp_path / "in" / "sub" / "deeper" / "c.jpg", 3)
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    return tmp_path


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def manifest(out: Path) -> list[dict]:
    with open(out / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_folder_recursion_mirrors_layout_with_provenance(fakes, tree, capsys):
    local, _ = fakes
    assert main(["remove", "in", "-o", "out", "--provider", "fake-local"]) == 0
    assert files_under(tree / "out") == [
        ".rmbg-folder-id",
        ".rmbg-options.json",
        "a.png",
        "manifest.csv",
        "sub/b.png",
        "sub/deeper/c.png",
    ]
    assert local.calls == 3
    with Image.open(tree / "out" / "a.png") as img:
        assert img.mode == "RGBA"
        assert img.text["rmbg:provider"] == "fake-local"
        assert img.text["rmbg:model"] == "fake/threshold"
        assert img.text["rmbg:revision"] == "v1"
        assert img.text["rmbg:options"] == '{"threshold":128}'
        assert img.getpixel((0, 5)) == (255, 255, 255, 255) and img.getpixel((12, 5))[3] == 0
    out = capsys.readouterr().out
    assert "Done 3, skipped 0 (output exists), failed 0, not run 0 (budget)" in out


def test_glob_maps_relative_to_its_fixed_prefix(fakes, tree):
    assert main(["remove", "in/**/*.png", "-o", "out", "-p", "fake-local"]) == 0
    assert files_under(tree / "out") == [".rmbg-folder-id", ".rmbg-options.json", "a.png", "manifest.csv", "sub/b.png"]


def test_resume_skips_then_overwrite_redoes_and_manifest_appends(fakes, tree, capsys):
    local, _ = fakes
    assert main(["remove", "in", "-o", "out", "-p", "fake-local"]) == 0
    capsys.readouterr()
    assert main(["remove", "in", "-o", "out", "-p", "fake-local"]) == 0
    assert local.calls == 3
    assert "Done 0, skipped 3 (output exists)" in capsys.readouterr().out
    assert len(manifest(tree / "out")) == 3
    assert main(["remove", "in", "-o", "out", "-p", "fake-local", "--overwrite"]) == 0
    assert local.calls == 6
    assert [r["output"] for r in manifest(tree / "out")] == ["a.png", "sub/b.png", "sub/deeper/c.png"] * 2


def test_manifest_rows_exact(fakes, tree):
    assert main(["remove", "in/a.png", "in/sub", "-o", "out", "-p", "fake-local"]) == 0
    rows = manifest(tree / "out")
    for row in rows:
        assert re.fullmatch(r"\d+\.\d{3}", row.pop("seconds"))
    done = {"provider": "fake-local", "cost_usd": "0.0001", "cost_source": "compute", "status": "done", "error": ""}
    assert rows == [
        {"file": "in/a.png", "output": "a.png", **done},
        {"file": "in/sub/b.png", "output": "b.png", **done},
        {"file": "in/sub/deeper/c.jpg", "output": "deeper/c.png", **done},
    ]


def test_one_corrupt_file_is_reported_and_the_rest_go_on(fakes, tree, capsys):
    local, _ = fakes
    (tree / "in" / "sub" / "bad.png").write_bytes(b"this is not a png")
    assert main(["remove", "in", "-o", "out", "-p", "fake-local"]) == 1
    assert local.calls == 3
    out = capsys.readouterr().out
    assert "Done 3, skipped 0 (output exists), failed 1," in out
    assert "  in/sub/bad.png: bad.png is not an image we can read" in out
    bad = [r for r in manifest(tree / "out") if r["status"] == "failed"]
    assert [(r["file"], r["output"]) for r in bad] == [("in/sub/bad.png", "sub/bad.png")]
    assert bad[0]["error"].startswith("bad.png is not an image we can read")
    assert not (tree / "out" / "sub" / "bad.png").exists()


def test_missing_input_is_a_failure_not_a_crash(fakes, tree, capsys):
    assert main(["remove", "in/a.png", "nowhere/", "-o", "out", "-p", "fake-local"]) == 1
    assert "  nowhere/: no such file or folder, or no image matched" in capsys.readouterr().out
    assert (tree / "out" / "a.png").exists()


@pytest.mark.parametrize(
    "args, name, fmt, mode",
    [
        (["--format", "jpg"], "a.jpg", "JPEG", "RGB"),
        (["--format", "webp"], "a.webp", "WEBP", "RGBA"),
        (["--mask-only"], "a.png", "PNG", "L"),
        (["--mask-only", "--format", "webp"], "a.webp", "WEBP", "RGB"),  # WebP has no grey mode
    ],
)
def test_formats_and_mask_only(fakes, tree, args, name, fmt, mode):
    assert main(["remove", "in/a.png", "-o", "out", "-p", "fake-local", *args]) == 0
    with Image.open(tree / "out" / name) as img:
        assert (img.format, img.mode) == (fmt, mode)
        if "--mask-only" in args:
            white, black = (255, 0) if mode == "L" else ((255,) * 3, (0,) * 3)
            assert img.getpixel((0, 5)) == white and img.getpixel((12, 5)) == black


@pytest.mark.parametrize("bg", ["10,20,30", "#0a141e", "rgb(10, 20, 30)", "image"])
def test_background_colour_applied_exactly(fakes, tree, bg):
    if bg == "image":
        Image.new("RGB", (5, 3), BG).save(tree / "bg.png")
        bg = str(tree / "bg.png")
    assert main(["remove", "in/a.png", "-o", "out", "-p", "fake-local", "--bg", bg]) == 0
    with Image.open(tree / "out" / "a.png") as img:
        assert img.mode == "RGB"
        assert img.getpixel((12, 5)) == BG and img.getpixel((0, 5)) == (255, 255, 255)


def test_css_colour_name(fakes, tree):
    assert main(["remove", "in/a.png", "-o", "out", "-p", "fake-local", "--bg", "navy"]) == 0
    with Image.open(tree / "out" / "a.png") as img:
        assert img.getpixel((12, 5)) == (0, 0, 128)


def test_bad_colour_and_unknown_provider_are_one_line_usage_errors(fakes, tree, capsys):
    assert main(["remove", "in", "-o", "out", "-p", "fake-local", "--bg", "notacolour"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "rmbg: error: --bg 'notacolour': not a colour or an image file. Use r,g,b (for example 255,255,255), "
        "#RRGGBB, a CSS colour name such as white, or the path of an image.\n"
    )
    assert main(["remove", "in", "-o", "out", "-p", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rmbg: error: Unknown provider 'nope'. Valid providers: ") and "fake-local" in err
    assert "Traceback" not in err and not (tree / "out").exists()


def test_paid_batch_without_yes_refuses_and_prints_the_estimate(fakes, tree, capsys):
    _, hosted = fakes
    assert main(["remove", "in", "-o", "out", "-p", "fake-hosted"]) == 2
    err = capsys.readouterr().err
    assert "Estimated cost for fake-hosted: 3 images x $0.0100 = $0.0300 (price table)" in err
    assert "--yes" in err and "--max-cost" in err
    assert hosted.calls == 0 and not (tree / "out").exists()


@pytest.mark.parametrize(
    "failure, runs",
    [
        ("may-be-billed", 2),  # a 502 after sending keeps its estimate: two paid calls fit $0.025
        ("refused", 3),  # a 429 certainly cost nothing: its hold goes back, a third call fits
    ],
)
def test_a_failure_that_may_have_been_billed_keeps_its_share_of_the_budget(fakes, tree, capsys, failure, runs):
    from rmbg.errors import ProviderRateLimitError, ProviderUnavailableError
    from rmbg.money import charging

    _, hosted = fakes
    for i in range(4):
        make_image(tree / "few" / f"img{i}.png", 20 + i)
    real = hosted.matte

    def first_fails(image):
        if hosted.calls == 0:
            hosted.calls += 1
            # the provider declares where its request got to (rmbg.money.charging), as http.send does
            if failure == "refused":
                charging.current().answered(charging.Charge.REFUSED)
                raise ProviderRateLimitError("fake-hosted", "slow down", status=429)
            charging.current().answered(charging.Charge.UNKNOWN)
            raise ProviderUnavailableError("fake-hosted", "bad gateway", status=502)
        return real(image)

    hosted.matte = first_fails
    assert main(["remove", "few", "-o", "out", "-p", "fake-hosted", "--max-cost", "0.025", "-j", "1"]) == 1
    assert hosted.calls == runs
    rows = manifest(tree / "out")
    assert [r["status"] for r in rows].count("not_run") == 4 - runs


def test_max_cost_stops_at_the_budget(fakes, tree, capsys):
    _, hosted = fakes
    for i in range(5):
        make_image(tree / "many" / f"img{i}.png", 10 + i)
    assert main(["remove", "many", "-o", "out", "-p", "fake-hosted", "--max-cost", "0.025"]) == 1
    assert hosted.calls == 2
    out = capsys.readouterr().out
    assert "Done 2, skipped 0 (output exists), failed 0, not run 3 (budget)" in out
    assert "cost $0.0200 (reported)" in out
    rows = manifest(tree / "out")
    assert [(r["status"], r["error"]) for r in rows].count(("not_run", "budget")) == 3
    assert [r["cost_usd"] for r in rows if r["status"] == "done"] == ["0.01", "0.01"]


def test_hosted_runs_jobs_images_at_a_time(fakes, tree):
    _, hosted = fakes
    hosted.barrier = threading.Barrier(3)  # breaks (and fails images) unless 3 calls wait together
    for i in range(6):
        make_image(tree / "many" / f"img{i}.png", 20 + i)
    assert main(["remove", "many", "-o", "out", "-p", "fake-hosted", "--yes", "--jobs", "3"]) == 0
    assert hosted.calls == 6 and hosted.max_active == 3
    assert [r["status"] for r in manifest(tree / "out")] == ["done"] * 6


def test_progress_lines_without_a_tty(fakes, tree, capsys):
    assert main(["remove", "in", "-o", "out", "-p", "fake-local"]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert [re.sub(r"  [\d.]+ img/s", "", line) for line in lines] == [
        "[1/3  $0.0001] done in/a.png",
        "[2/3  $0.0002] done in/sub/b.png",
        "[3/3  $0.0003] done in/sub/deeper/c.jpg",
    ]


def test_progress_bar_on_a_tty():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    bar = Progress(4, stream)
    bar.update("a.png", "done", Decimal("0.01"))
    bar.update("b.png", "failed", error="broken")
    bar.close()
    text = stream.getvalue()
    assert "failed b.png: broken\n" in text  # above the bar, on its own line
    assert re.search(r"\| 2/4 .*img/s, \$0\.0100", text)  # count, rate and money of the last redraw
    assert text.endswith("\n")


@pytest.mark.uses("torch")  # the listing imports torch (a local model's status): alone in a worker it was flagged
def test_providers_lists_every_id_with_state_and_price(fakes, capsys):
    assert main(["providers"]) == 0
    text = capsys.readouterr().out
    table, default = text.split("\n\n")
    lines = table.splitlines()
    assert lines[0].split() == ["provider", "kind", "state", "price", "download", "licence", "note"]
    by_id = {line.split()[0]: line for line in lines[1:]}
    assert list(by_id) == [declared.id for declared in registry.declarations()]
    video = {"fal-bria-video", "runware-bria-video", "cloudflare-bria-video"}
    assert set(by_id) - set(rmbg.list_providers()) == {"fal-bria-replace", *video}  # listed, not removal providers
    assert by_id["fal-bria-replace"].split()[1:4] == ["replace", "needs_key", "$0.0400/generated"]
    assert by_id["cloudflare-bria-video"].split()[1:6] == ["video", "needs_key", "$0.0225/s", "of", "video"]
    assert by_id["fake-local"].split()[1:3] == ["local", "ready"] and "compute estimate" in by_id["fake-local"]
    assert "$0.0100/image (price table)" in by_id["fake-hosted"]
    assert by_id["fal-bria"].split()[1:3] == ["hosted", "needs_key"] and "needs FAL_KEY" in by_id["fal-bria"]
    assert "licence: Apache-2.0" in by_id["u2netp"] and "4.6 MB" in by_id["u2netp"]
    assert "licence: MIT weights" in by_id["birefnet-lite"]
    at = lines[0].index("licence")  # the licence's short name in its column; "licence unknown" when undeclared
    assert by_id["rmbg-1.4"][at:].startswith("non-commercial ") and by_id["birefnet-lite"][at:].startswith("MIT ")
    assert by_id["fake-local"][at:].startswith("licence unknown ")
    assert default.startswith("default: u2netp (Using U2-Net-p (ungated, runs offline) because no better model ")
    assert "BRIA RMBG-1.4 (IS-Net, local): needs HF_TOKEN" in default
    for column in ("kind", "state", "price", "download", "licence", "note"):  # aligned: every cell starts at its header
        at = lines[0].index(column)
        assert all(line[at - 2 : at] == "  " and line[at] != " " for line in lines)


def test_python_dash_m_rmbg_providers():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "rmbg", "providers"], capture_output=True, text=True, cwd=REPO, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    ids = [line.split()[0] for line in proc.stdout.split("\n\n")[0].splitlines()[1:]]
    assert {"rmbg-1.4", "u2netp", "fal-bria", "runware-rembg"} <= set(ids)


def make_dataset(root: Path) -> None:
    """3 images in 2 sequences with exact masks (so the fake's IoU is 100 %)."""
    (root / "masks").mkdir(parents=True)
    for i, name in enumerate(["seqa_00000", "seqa_00001", "seqb_00000"]):
        make_image(root / "images" / f"{name}.png", 30 + i, size=(40, 30))
        grey = np.asarray(Image.open(root / "images" / f"{name}.png").convert("L"))
        Image.fromarray(np.where(grey >= 128, 255, 0).astype(np.uint8)).save(root / "masks" / f"{name}.png")


@pytest.mark.uses("scipy")  # rmbg evaluate scores with scipy
def test_evaluate_prints_table_and_writes_reports(fakes, tmp_path, capsys):
    local, _ = fakes
    make_dataset(tmp_path / "data")
    out = tmp_path / "res"
    rc = main(["evaluate", str(tmp_path / "data"), "-p", "fake-local", "--out", str(out), "--bootstrap", "200"])
    assert rc == 0 and local.calls == 3
    captured = capsys.readouterr()
    row = next(line for line in captured.out.splitlines() if line.startswith("| fake-local | all |"))
    assert row.startswith("| fake-local | all | 3 (2) | 0 | 100.0 [100.0, 100.0] | 100.0 [100.0, 100.0] |")
    assert f"Composite: {COMPOSITE_SEG_LABEL}." in captured.out
    assert {"per_image.csv", "summary.csv", "evaluation.json", "results.md"} <= set(files_under(out))
    assert (out / "results.md").read_text() == captured.out.rstrip("\n") + "\n"


@pytest.mark.uses("scipy")  # rmbg evaluate scores with scipy
def test_evaluate_hosted_needs_yes(fakes, tmp_path, capsys):
    _, hosted = fakes
    make_dataset(tmp_path / "data")
    assert main(["evaluate", str(tmp_path / "data"), "-p", "fake-hosted", "--out", str(tmp_path / "res")]) == 2
    assert "Estimated cost for fake-hosted: 3 images x $0.0100 = $0.0300" in capsys.readouterr().err
    assert hosted.calls == 0 and not (tmp_path / "res").exists()
    assert (
        main(
            [
                "evaluate",
                str(tmp_path / "data"),
                "-p",
                "fake-hosted",
                "--out",
                str(tmp_path / "res"),
                "--max-cost",
                "0.02",
            ]
        )
        == 2
    )
    assert "rmbg: error: Estimated cost $0.03 is over the budget of $0.02." in capsys.readouterr().err
    assert hosted.calls == 0
    args = [
        "evaluate",
        str(tmp_path / "data"),
        "-p",
        "fake-hosted",
        "--out",
        str(tmp_path / "res"),
        "--yes",
        "--bootstrap",
        "50",
    ]
    assert main(args) == 0 and hosted.calls == 3
    assert "| fake-hosted | all | 3 (2) | 0 |" in capsys.readouterr().out


def test_default_provider_is_announced_in_one_line_and_used(u2netp_path, tree, capsys):
    assert main(["remove", "in/a.png", "-o", "out"]) == 0
    err = capsys.readouterr().err
    first = err.splitlines()[0]
    assert first == "Using u2netp, the default here (--provider picks another; --verbose or `rmbg providers` says why)."
    assert "HF_TOKEN" not in err  # the reasons are behind --verbose
    with Image.open(tree / "out" / "a.png") as img:
        assert img.mode == "RGBA" and img.text["rmbg:provider"] == "u2netp"


def test_verbose_says_why_the_default_was_chosen(u2netp_path, tree, capsys):
    assert main(["remove", "in/a.png", "-o", "out", "--verbose"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("Using U2-Net-p (ungated, runs offline) because no better model answers within 3 s here")
    assert "RMBG-1.4 (IS-Net, local): needs HF_TOKEN" in err


def test_a_chosen_provider_is_not_announced(u2netp_path, tree, capsys):
    assert main(["remove", "in/a.png", "-o", "out", "--provider", "u2netp"]) == 0
    assert "Using" not in capsys.readouterr().err


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"rmbg {rmbg.__version__}\n"


class FakeSoft(FakeLocal):
    """alpha = the red channel: soft edges, so cleaning edge colours shows."""

    id = "fake-soft"

    def matte(self, image):
        with self._lock:
            self.calls += 1
        return Matte(image.getchannel("R"), Cost.free("test"), 0.001, {"model": "fake/red"})


def test_refine_edges_cleans_edge_colours_with_one_call_per_image(tmp_path, monkeypatch):
    from rmbg.image.compose import render

    monkeypatch.chdir(tmp_path)
    ramp = np.tile(np.linspace(0, 255, 24).round().astype(np.uint8), (10, 1))
    source = Image.fromarray(np.stack([ramp, 255 - ramp, np.zeros_like(ramp)], -1), "RGB")  # red over green
    source.save(tmp_path / "a.png")
    soft = FakeSoft()
    rmbg.register(soft.id, lambda **_: soft)
    try:
        assert main(["remove", "a.png", "-o", "plain", "-p", soft.id, "--bg", "0,0,255"]) == 0
        assert main(["remove", "a.png", "-o", "clean", "-p", soft.id, "--bg", "0,0,255", "--refine-edges"]) == 0
    finally:
        registry.unregister(soft.id)
    assert soft.calls == 2  # one run per command, none extra for the flag
    alpha = source.getchannel("R")
    with Image.open(tmp_path / "clean" / "a.png") as clean, Image.open(tmp_path / "plain" / "a.png") as plain:
        assert clean.tobytes() == render(source, alpha, background=(0, 0, 255), refine_foreground=True).tobytes()
        assert plain.tobytes() == render(source, alpha, background=(0, 0, 255)).tobytes()
        assert clean.tobytes() != plain.tobytes()


def test_no_edge_colours_keeps_the_photos_colours_at_soft_edges_as_rembg_does(tmp_path, monkeypatch, capsys):
    from rmbg.image.compose import cutout, render

    monkeypatch.chdir(tmp_path)
    ramp = np.tile(np.linspace(0, 255, 24).round().astype(np.uint8), (10, 1))
    source = Image.fromarray(np.stack([ramp, 255 - ramp, np.zeros_like(ramp)], -1), "RGB")
    source.save(tmp_path / "a.png")
    soft = FakeSoft()
    rmbg.register(soft.id, lambda **_: soft)
    try:
        assert main(["remove", "a.png", "-o", "estimated", "-p", soft.id]) == 0
        assert main(["remove", "a.png", "-o", "photo", "-p", soft.id, "--no-edge-colours"]) == 0
        capsys.readouterr()
        assert main(["remove", "a.png", "-o", "estimated", "-p", soft.id, "--no-edge-colours"]) == 2
        assert "(changed: edge_colours None -> False)" in capsys.readouterr().err
        assert main(["remove", "a.png", "-o", "both", "-p", soft.id, "--no-edge-colours", "--refine-edges"]) == 2
    finally:
        registry.unregister(soft.id)
    assert capsys.readouterr().err == (
        "rmbg: error: --clean-edges estimates the edge colours and --no-edge-colours turns that off: choose one.\n"
    )
    assert soft.calls == 2 and not (tmp_path / "both").exists()
    alpha = source.getchannel("R")
    with Image.open(tmp_path / "photo" / "a.png") as photo, Image.open(tmp_path / "estimated" / "a.png") as estimated:
        assert photo.tobytes() == cutout(source, alpha).tobytes()
        assert estimated.tobytes() == render(source, alpha).tobytes() != photo.tobytes()
    assert '"edge_colours": false' in (tmp_path / "photo" / ".rmbg-options.json").read_text()
    assert "edge_colours" not in (tmp_path / "estimated" / ".rmbg-options.json").read_text()


# --- output safety and resume (never through a link we did not make; options decide resume) ---


def test_symlinked_manifest_is_refused_and_its_target_untouched(fakes, tree, capsys):
    (tree / "out").mkdir()
    target = tree / "elsewhere.csv"
    target.write_text("precious\n")
    (tree / "out" / "manifest.csv").symlink_to(target)
    assert main(["remove", "in", "-o", "out", "-p", "fake-local"]) == 1
    err = capsys.readouterr().err
    assert "the manifest" in err and "is a symbolic link; refusing to write through it." in err
    assert "Traceback" not in err
    assert target.read_text() == "precious\n"


def test_a_planted_temp_file_link_is_never_written_through(fakes, tree, monkeypatch, capsys):
    from rmbg.cli import writing

    monkeypatch.setattr(writing.secrets, "token_hex", lambda n: "feedbeef")
    (tree / "out").mkdir()
    target = tree / "victim.txt"
    target.write_text("precious")
    (tree / "out" / f".a.png.{os.getpid()}.feedbeef.part").symlink_to(target)
    assert main(["remove", "in/a.png", "-o", "out", "-p", "fake-local"]) == 1
    assert target.read_text() == "precious"
    assert not (tree / "out" / "a.png").exists()
    row = manifest(tree / "out")[0]
    assert row["status"] == "failed" and "is a symbolic link; refusing to write through it." in row["error"]


def test_output_naming_a_file_is_a_usage_error(fakes, tree, capsys):
    (tree / "taken.png").write_bytes(b"x")
    assert main(["remove", "in", "-o", "taken.png", "-p", "fake-local"]) == 2
    err = capsys.readouterr().err
    assert err == "rmbg: error: -o taken.png: that is a file; -o names the output folder (it is created if missing).\n"
    assert (tree / "taken.png").read_bytes() == b"x"


@pytest.mark.parametrize("name", ["cut.png", "cut.JPG", "cut.webp", "cut.gif"])
def test_output_named_like_a_picture_is_refused_not_made_a_folder(fakes, tree, capsys, name):
    """`rembg i in.jpg out.png`'s habit: -o cut.png made a folder called cut.png holding a.png."""
    assert main(["remove", "in/a.png", "-o", name, "-p", "fake-local"]) == 2
    assert capsys.readouterr().err == (
        f"rmbg: error: -o {name}: -o names the output folder, and {name} would be made a folder: each output goes "
        "into it under its input's name (-o out/ writes out/photo.png). Give a folder.\n"
    )
    assert not (tree / name).exists()
    (tree / "made.png").mkdir()  # a folder so named already (made on purpose, or by an earlier version): used
    assert main(["remove", "in/a.png", "-o", "made.png", "-p", "fake-local"]) == 0
    assert (tree / "made.png" / "a.png").is_file()


def test_resume_with_other_output_options_is_refused_not_skipped(fakes, tree, capsys):
    local, _ = fakes
    assert main(["remove", "in", "-o", "out", "-p", "fake-local"]) == 0
    capsys.readouterr()
    assert main(["remove", "in", "-o", "out", "-p", "fake-local", "--mask-only"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "rmbg: error: 3 output(s) already in out were made with other options "
        "(changed: mask_only False -> True); they would be kept as they are. "
        "Use --overwrite to replace them, or another -o folder."
    )
    assert local.calls == 3
    assert main(["remove", "in", "-o", "out", "-p", "fake-local", "--mask-only", "--overwrite"]) == 0
    with Image.open(tree / "out" / "a.png") as img:
        assert img.mode == "L"
    capsys.readouterr()
    assert main(["remove", "in", "-o", "out", "-p", "fake-local", "--mask-only"]) == 0  # same options: resume
    assert local.calls == 6 and "skipped 3" in capsys.readouterr().out


def test_outputs_without_a_record_are_not_silently_kept(fakes, tree, capsys):
    make_image(tree / "out" / "a.png", 9)
    assert main(["remove", "in/a.png", "-o", "out", "-p", "fake-local"]) == 2
    assert (
        "1 output(s) already in out were made by an unknown run (no .rmbg-options.json record)"
        in capsys.readouterr().err
    )


def test_crop_and_canvas_frame_every_output(fakes, tree, capsys):
    assert main(["remove", "in/a.png", "-o", "crop", "-p", "fake-local", "--crop"]) == 0
    with Image.open(tree / "crop" / "a.png") as img:
        assert (img.mode, img.size) == ("RGBA", (8, 12))  # the white left half
    assert (
        main(
            [
                "remove",
                "in/a.png",
                "-o",
                "canvas",
                "-p",
                "fake-local",
                "--canvas",
                "100x100",
                "--margin",
                "10px",
                "--align",
                "bottom",
                "--bg",
                "10,20,30",
            ]
        )
        == 0
    )
    with Image.open(tree / "canvas" / "a.png") as img:
        # 8x12 scaled into 80x80 -> 53x80, centred across, on the bottom margin
        assert (img.mode, img.size) == ("RGB", (100, 100))
        assert img.getpixel((50, 50)) == (255, 255, 255) and img.getpixel((50, 5)) == BG
        assert img.getpixel((50, 95)) == BG and img.getpixel((20, 50)) == BG
    capsys.readouterr()
    assert main(["remove", "in/a.png", "-o", "canvas", "-p", "fake-local", "--canvas", "1:1"]) == 2
    assert (
        "changed: framing [False, '100x100', '10px', 'bottom'] -> [False, '1:1', None, None]" in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--margin", "10%"],
            "rmbg: error: A margin or alignment needs crop or a canvas. Add --crop or --canvas, or leave out --margin "
            "and --align.\n",
        ),
        (
            ["--canvas", "wide"],
            "rmbg: error: Canvas 'wide' is neither a size such as '2000x2000' nor an aspect such as '1:1'.\n",
        ),
    ],
)
def test_bad_framing_is_a_usage_error_before_any_work(fakes, tree, capsys, args, message):
    local, _ = fakes
    assert main(["remove", "in", "-o", "out", "-p", "fake-local", *args]) == 2
    assert capsys.readouterr().err == message and local.calls == 0 and not (tree / "out").exists()


def test_file_system_uris_are_listed_and_read_through_pyarrow(fakes, tree, capsys):
    pytest.importorskip("pyarrow")
    uri = "file://" + str((tree / "in").resolve())
    assert main(["remove", uri, "-o", "out", "-p", "fake-local"]) == 0
    assert files_under(tree / "out") == [
        ".rmbg-folder-id",
        ".rmbg-options.json",
        "a.png",
        "manifest.csv",
        "sub/b.png",
        "sub/deeper/c.png",
    ]
    rows = manifest(tree / "out")
    assert sorted(r["file"] for r in rows) == [f"{uri}/a.png", f"{uri}/sub/b.png", f"{uri}/sub/deeper/c.jpg"]
    assert main(["remove", uri + "/nothing-here", "-o", "out2", "-p", "fake-local"]) == 1
    assert "no such file or folder, or no image matched" in capsys.readouterr().out


def test_urls_with_the_same_last_name_get_numbered_outputs(tmp_path):
    from rmbg.cli import batch

    items = batch.plan(
        [
            "https://a.example/x/photo.jpg",
            "https://b.example/photo.jpg?w=10",
            "https://c.example/photo.png",
            "https://a.example/x/photo.jpg",
            "https://d.example/",
        ],
        tmp_path,
        "png",
    )
    assert [(i.output_rel, i.error) for i in items] == [
        ("photo.png", ""),
        ("photo-2.png", ""),
        ("photo-3.png", ""),
        ("image.png", ""),
    ]
    assert items[1].display == "https://b.example/photo.jpg"  # no query in what is shown


def test_outputs_that_differ_only_in_case_are_one_file_and_clash(fakes, tree, capsys):
    """`rmbg remove Photo.jpg photo.png -o out`: out/Photo.png and out/photo.png, one file on macOS's and
    Windows' disks (case-insensitive), where the second cut-out replaced the first without a word. The
    second is failed in words, as an exact clash is; URLs named alike get numbers past either case."""
    from rmbg.cli import batch

    make_image(tree / "Photo.jpg", 4)
    make_image(tree / "photo.png", 5)
    assert main(["remove", "Photo.jpg", "photo.png", "-o", "out", "-p", "fake-local"]) == 1
    rows = {row["file"]: (row["status"], row["error"]) for row in manifest(tree / "out")}
    assert rows == {
        "Photo.jpg": ("done", ""),
        "photo.png": ("failed", "its output photo.png is also the output of Photo.jpg; rename one of them"),
    }
    assert files_under(tree / "out") == [".rmbg-folder-id", ".rmbg-options.json", "Photo.png", "manifest.csv"]
    items = batch.plan(["https://a.example/Photo.jpg", "https://b.example/photo.jpg"], tree, "png")
    assert [i.output_rel for i in items] == ["Photo.png", "photo-2.png"]


def test_output_to_a_url_is_refused(fakes, tree, capsys):
    assert main(["remove", "in", "-o", "s3://bucket/out", "-p", "fake-local"]) == 2
    assert "-o s3://bucket/out: outputs go to a folder on this machine" in capsys.readouterr().err
    assert not (tree / "s3:").exists()


def test_a_folder_link_inside_the_output_is_never_written_through(fakes, tree):
    """Defect 7: a directory symlink inside -o was written through."""
    _, hosted = fakes
    elsewhere = tree / "elsewhere"
    elsewhere.mkdir()
    (tree / "out").mkdir()
    (tree / "out" / "sub").symlink_to(elsewhere, target_is_directory=True)
    assert main(["remove", "in", "-o", "out", "-p", "fake-hosted", "--yes"]) == 1
    assert list(elsewhere.iterdir()) == []
    assert hosted.calls == 1  # only a.png: the two under sub/ were refused before their paid call
    rows = {r["file"]: r for r in manifest(tree / "out")}
    assert rows["in/a.png"]["status"] == "done"
    assert "out/sub is a symbolic link; refusing to write through it." in rows["in/sub/b.png"]["error"]


def test_a_second_resume_holding_back_the_same_images_refuses_while_the_first_runs(fakes, tree, capsys):
    """After a kill -9, two resumes at once each wrote a "may have been billed" row for the same images."""
    from rmbg.cli.manifest import MANIFEST_COLUMNS
    from rmbg.cli.resume import resume_lock

    out = tree / "out"
    out.mkdir()
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as fh:  # what the killed run left
        rows = csv.writer(fh)
        rows.writerow(MANIFEST_COLUMNS)
        rows.writerow(["in/a.png", "a.png", "fake-hosted", "1.000", "0", "may have been billed", "failed", "killed"])
    command = ["remove", "in/a.png", "-o", "out", "-p", "fake-hosted", "--yes"]
    with resume_lock(out, True):  # the first resume, still running (its own open of the lock file)
        assert main(command) == 2
        err = capsys.readouterr().err
    assert err == (
        f"rmbg: error: Another rmbg run (process {os.getpid()}) is resuming out after an interrupted run, holding "
        "back the images that may have been billed; run this again once it has finished.\n"
    )
    assert len(manifest(out)) == 1  # the refused resume wrote no row
    assert main(command) == 1  # alone, it holds a.png back: its one row
    assert [(r["output"], r["status"], r["cost_source"]) for r in manifest(out)[1:]] == [
        ("a.png", "failed", "may have been billed")
    ]
    assert fakes[1].calls == 0  # nothing sent again


@pytest.mark.parametrize(
    "args, message",
    [
        (["remove", "in", "--jobs", "0"], "argument --jobs/-j: must be 1 or more: '0'"),
        (["remove", "in", "--engine", "ray", "--batch-size", "-3"], "argument --batch-size: must be 1 or more: '-3'"),
        (["remove", "in", "--engine", "ray", "--workers", "1.5"], "argument --workers: not a whole number: '1.5'"),
        (["video", "in/a.mp4", "--engine", "ray", "--chunk-seconds", "nan"], "must be a number of seconds above 0"),
        (["video", "in/a.mp4", "--engine", "ray", "--chunk-seconds", "inf"], "must be a number of seconds above 0"),
        (["video", "in/a.mp4", "--engine", "ray", "--chunk-frames", "0"], "argument --chunk-frames: must be 1 or more"),
        (["replace", "in", "--prompt", "a beach", "--jobs", "-1"], "argument --jobs/-j: must be 1 or more: '-1'"),
        (["evaluate", "in", "--bootstrap", "-1"], "argument --bootstrap: must be 0 or more: '-1'"),
        (
            ["remove", "in", "--workers", "8"],
            "rmbg: error: --workers is for --engine ray (this run is local): add --engine ray, or leave --workers out.",
        ),
        (
            ["remove", "in", "--batch-size", "4", "--address", "auto", "--gpus-per-worker", "0.5"],
            "rmbg: error: --address, --gpus-per-worker and --batch-size are for --engine ray (this run is local): "
            "add --engine ray, or leave them out.",
        ),
        (["video", "in/a.mp4", "--chunk-seconds", "1"], "rmbg: error: --chunk-seconds is for --engine ray"),
    ],
)
def test_counts_and_ray_only_flags_are_usage_errors_before_anything_starts(fakes, tree, capsys, args, message):
    """A count out of range (NaN and infinity too) is refused as the line is read, where it once failed
    inside Ray, or after a whole evaluation, with a traceback; a Ray-only flag on a local run is refused,
    not ignored (`--workers 8` would have run one process). Nothing runs and no output folder is made."""
    local, hosted = fakes
    out = ["--out" if args[0] == "evaluate" else "-o", "out"]
    assert main([*args[:2], *out, "-p", "fake-local", *args[2:]]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert local.calls == hosted.calls == 0 and not (tree / "out").exists()


def test_a_run_that_ends_on_an_exception_leaves_the_next_run_of_the_process_writing(fakes, tree):
    """From Python (a notebook, a server), a batch can end on an exception and the process go on: a callback's
    error, an interrupt. The next batch's paid results are written; they were once all refused as
    "interrupted; the result was not written ... may bill it", paid for and thrown away, for the life of the
    process (the stop was one flag for the whole process)."""
    _, hosted = fakes

    def stop_at_first(outcome) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        remove_many(["in/a.png", "in/sub"], "first", "fake-hosted", jobs=1, on_outcome=stop_at_first)
    assert hosted.calls == 1
    outcomes = remove_many(["in/sub"], "second", "fake-hosted")
    assert [(o.status, o.error) for o in outcomes] == [("done", ""), ("done", "")]
    assert files_under(tree / "second") == [".rmbg-folder-id", "b.png", "deeper/c.png", "manifest.csv"]
    assert hosted.calls == 3


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1, "abc", Decimal("NaN"), True, [1]])
def test_a_cap_from_python_is_read_as_usd_or_refused_before_anything_runs(fakes, tree, bad):
    """max_cost as a Python caller writes it: 0.5 (a float) or "0.5" caps the run as Decimal("0.5") does; it once
    failed with a TypeError inside the ledger at the first paid call. What is no amount is refused first."""
    local, hosted = fakes
    for n, cap in enumerate((0.02, "0.02", "$0.02")):
        outcomes = remove_many(["in"], f"out{n}", "fake-hosted", max_cost=cap)
        assert sorted(o.status for o in outcomes) == ["done", "done", "not_run"]  # $0.01 an image, $0.02 in all
    calls = hosted.calls
    assert calls == 6
    said = f"max_cost must be an amount of USD, 0 or more, not {str(bad)[:40]!r}."
    with pytest.raises(rmbg.InvalidRequestError) as refused:
        remove_many(["in"], "refused", "fake-hosted", max_cost=bad)
    assert str(refused.value) == said and not (tree / "refused").exists()
    with pytest.raises(rmbg.InvalidRequestError, match=re.escape(said)):
        rmbg.cascade([str(tree / "in" / "a.png")], "fake-local", "fake-hosted", max_cost=bad)
    assert (local.calls, hosted.calls) == (0, calls)


def test_one_path_or_id_alone_is_one_input_not_its_letters(fakes, tree):
    """Where several are taken, a lone str is one: remove_many("in/a.png", ...) once read its letters, and
    "." (the current folder) sent every image under it to the paid provider; cascade, compare alike."""
    local, hosted = fakes
    outcomes = remove_many("in/a.png", "out", "fake-hosted")
    assert [(str(o.item.source), o.status) for o in outcomes] == [("in/a.png", "done")]
    assert hosted.calls == 1 and files_under(tree / "out") == [".rmbg-folder-id", "a.png", "manifest.csv"]
    assert [r.provider for r in rmbg.cascade("in/a.png", "fake-local", "fake-hosted", share=0.0)] == ["fake-local"]
    assert list(rmbg.compare("in/sub/b.png", "fake-local").results) == ["fake-local"]
    assert (local.calls, hosted.calls) == (2, 1)


def test_a_file_name_that_is_not_utf8_fails_alone_in_words(fakes, tree, capsys):
    """A name holding bytes that are not UTF-8 (an old camera's, one unpacked from another system's zip) stopped
    the whole batch with a UnicodeEncodeError at the ledger, before any image ran; it is now a failed row that
    shows the bytes as \\xNN, and the other images are done."""
    odd = os.fsdecode(b"caf\xe9.png")
    make_image(tree / "in" / odd, 4)
    local, _ = fakes
    assert main(["remove", "in", "-o", "out", "-p", "fake-local"]) == 1
    rows = {r["file"]: (r["status"], r["error"]) for r in manifest(tree / "out")}
    assert rows["in/caf\\xe9.png"] == ("failed", "its name is not UTF-8 text: rename the file")
    assert sorted(f for f, (status, _) in rows.items() if status == "done") == [
        "in/a.png",
        "in/sub/b.png",
        "in/sub/deeper/c.jpg",
    ]
    assert local.calls == 3 and "in/caf\\xe9.png: its name is not UTF-8 text" in capsys.readouterr().out


@pytest.mark.parametrize("usd", ["nan", "-0.01", "two cents", "inf"])
def test_settling_by_hand_reads_the_amount_as_max_cost_does(tree, capsys, usd):
    """`rmbg ledger settle ID --usd X` reads X by --max-cost's rule (rmbg.money.payer.usd_cap), as the line is read."""
    assert main(["ledger", "settle", "some-hold", "--usd", usd]) == 2
    assert f"argument --usd: must be an amount of USD, 0 or more: {usd!r}" in capsys.readouterr().err


def test_a_photo_named_with_o_its_own_folder_is_cut_out_beside_it_never_over_it(fakes, tree, capsys):
    """`rmbg remove photo.jpg -o .` said "photo.jpg: no such file or folder" (every file under the output folder
    was left out, as an earlier run's output, the photo too): a file named on its own is taken; one whose output
    would be itself (photo.png -o . in png) is refused, never written over; a folder whose tree holds the
    output folder still leaves the outputs out, and says so when that is all it holds."""
    local, _ = fakes
    assert main(["remove", "in", "-o", ".", "-p", "fake-local"]) == 0  # the output folder above the input's
    assert all((tree / out).is_file() for out in ("a.png", "sub/b.png", "sub/deeper/c.png")) and local.calls == 3
    assert main(["remove", "in/sub/deeper/c.jpg", "-o", "in/sub/deeper", "-p", "fake-local"]) == 0
    assert (tree / "in" / "sub" / "deeper" / "c.png").is_file() and local.calls == 4
    before = (tree / "in" / "a.png").read_bytes()
    assert main(["remove", "in/a.png", "-o", "in", "-p", "fake-local"]) == 1
    assert "in/a.png: its output would replace it: give another -o" in capsys.readouterr().out
    assert (tree / "in" / "a.png").read_bytes() == before and local.calls == 4
    assert main(["remove", "in/sub/deeper", "-o", "in/sub/deeper", "-p", "fake-local"]) == 1
    assert "in/sub/deeper: its images are all in the output folder in/sub/deeper: give -o a folder outside it" in (
        capsys.readouterr().out
    )


def test_the_summary_says_apart_what_failed_calls_may_have_cost():
    """A batch's cost line names the part counted for failed calls that may have been billed (their
    estimate), apart from what providers reported or the price table gave for the calls that worked."""
    from rmbg.cli.items import Item, Outcome
    from rmbg.cli.progress import summary
    from rmbg.types import MAY_HAVE_BEEN_BILLED, Cost

    def item(name: str) -> Item:
        return Item(Path(name), name, name, Path("out") / name)

    done = Outcome(item("a.png"), "done", cost=Cost(Decimal("0.02"), "reported"))
    failed = Outcome(item("b.png"), "failed", cost=Cost(Decimal("0.018"), "estimated", MAY_HAVE_BEEN_BILLED))
    mixed = summary([done, failed, done], 1.0, Path("out")).splitlines()[0]
    assert mixed.endswith(
        "cost $0.0580 (reported; $0.0180 of it for 1 failed call that may have been billed, at the estimate)."
    )
    alone = summary([failed, failed], 1.0, Path("out")).splitlines()[0]
    assert alone.endswith("cost $0.0360 (2 failed calls that may have been billed, at the estimate).")
    assert summary([done], 1.0, Path("out")).splitlines()[0].endswith("cost $0.0200 (reported).")


def test_output_piped_into_a_reader_that_stops_ends_without_a_traceback():
    """`rmbg providers | head -1`: the reader goes before the table is written; that was a BrokenPipeError
    traceback on stderr. Here the pipe's reading end is closed before rmbg starts, so every write fails."""
    reading, writing = os.pipe()
    os.close(reading)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "rmbg", "providers"],
            stdout=writing,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        )
    finally:
        os.close(writing)
    assert (done.returncode, done.stderr) == (141, "")
