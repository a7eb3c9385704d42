"""A paid batch whose output cannot be written after its call was billed (a file where the output's folder
must be; the same path as a full or read-only disk: rmbg.cli.writing.NotWritten), as real `rmbg remove`
processes against the fake Runware's real socket, which bills a cost above the price table's (under the
bound). What was bought is counted at what it cost, and the next run writes it without buying it again."""

from __future__ import annotations

import csv
import os
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import av
import pytest
from PIL import Image

from tests.fakes.fal import TEST_KEY as FAL_KEY
from tests.fakes.fal import FalFake
from tests.fakes.runware import REMBG, TEST_KEY, RunwareFake
from tests.fakes.runware_video import RunwareVideoFake
from tests.video_clips import davis, write_clip

REPO = Path(__file__).resolve().parent.parent
BILLED = Decimal("0.0019")  # what the fake reports per image (the price table's estimate is $0.0013)


def rmbg(
    folder: Path,
    fake: RunwareFake,
    ledger: str = "ledger.sqlite3",
    paid: tuple[str, ...] = ("--max-cost", "1"),
    engine: tuple[str, ...] = (),
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "RUNWARE_API_KEY": TEST_KEY,
        "RMBG_RUNWARE_URL": fake.url,
        "RMBG_LEDGER": str(folder / ledger),
    }
    command = ["remove", "in", "-o", "out", "-p", "runware-rembg", *paid, "-j", "1", *engine]
    return subprocess.run(
        [sys.executable, "-m", "rmbg", *command], cwd=folder, env=env, capture_output=True, text=True, timeout=120
    )


def counted(ledger: Path) -> Decimal:
    """What the ledger counts: every hold not released, at its close (nano-dollars)."""
    with sqlite3.connect(ledger) as db:
        rows = db.execute("SELECT final FROM rmbg_holds WHERE state <> 'released'").fetchall()
    return sum((Decimal(int(r[0])) / 10**9 for r in rows), Decimal(0))


def rows(out: Path) -> list[dict]:
    with open(out / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def blocked(root: Path, inputs: list[tuple[str, object]], size: tuple[int, int]) -> None:
    """Input images under root/in (relative name, colour) and a file at out/sub, where the output folder of the
    inputs under sub/ must be made: their paid calls are answered, then their outputs cannot be written."""
    for rel, colour in inputs:
        (root / "in" / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, colour).save(root / "in" / rel)
    (root / "out").mkdir()
    (root / "out" / "sub").write_text("a file where the output's folder must be")


def test_a_paid_matte_whose_output_cannot_be_written_is_counted_at_its_cost_and_written_by_the_next_run(tmp_path):
    """Before: the image whose output failed after its paid call was counted at the estimate "that may have
    been billed" ($0.0051 in the ledger and the summary for 3 calls the fake billed $0.0057), and the next run,
    its blocker gone, held it back as "may have been billed" (exit 1, no output: the bought matte was lost
    unless bought again with --retry-uncertain). Now: counted at its reported cost ($0.0057 everywhere), kept
    in the storage with the output it was bought for, and the next run writes it for free: still 3 requests
    at the fake, exit 0."""
    blocked(tmp_path, [(rel, (40 * i, 200, 90)) for i, rel in enumerate(["a.png", "sub/b.png", "c.png"])], (16, 12))
    with RunwareFake(costs={REMBG: float(BILLED)}) as fake:
        first = rmbg(tmp_path, fake)
        assert first.returncode == 1, first.stderr
        assert len(fake.calls) == 3  # one request per image, each billed at BILLED
        assert f"cost ${3 * BILLED} (reported)." in first.stdout
        assert "its paid matte is kept: run the same command again" in first.stdout
        failed = [r for r in rows(tmp_path / "out") if r["status"] == "failed"]
        assert [(r["output"], Decimal(r["cost_usd"]), r["cost_source"]) for r in failed] == [
            ("sub/b.png", BILLED, "may have been billed")  # as any paid call that made no output: see below
        ]
        assert counted(tmp_path / "ledger.sqlite3") == 3 * BILLED

        (tmp_path / "out" / "sub").unlink()
        elsewhere = rmbg(tmp_path, fake, ledger="another.sqlite3")  # a storage that keeps no matte for it
        assert elsewhere.returncode == 1 and len(fake.calls) == 3  # held back (manifest.csv): not sent again
        assert "may have been billed and left no output; not sent again" in elsewhere.stdout
        second = rmbg(tmp_path, fake)
        assert second.returncode == 0, second.stdout + second.stderr
        assert len(fake.calls) == 3  # not bought again
        assert "Done 1, skipped 2 (output exists), failed 0, not run 0 (budget)" in second.stdout
        assert second.stdout.splitlines()[0].endswith("; cost $0.")  # nothing new paid
        assert Image.open(tmp_path / "out" / "sub" / "b.png").mode == "RGBA"
        assert counted(tmp_path / "ledger.sqlite3") == 3 * BILLED
        with sqlite3.connect(tmp_path / "ledger.sqlite3") as db:  # written: no longer kept
            assert db.execute("SELECT COUNT(*) FROM rmbg_kept_mattes").fetchone() == (0,)


def test_a_cut_out_re_run_of_kept_mattes_needs_no_yes_and_estimates_only_the_new_images(tmp_path):
    """`rmbg remove` again after a paid matte was kept (above). Before: the kept image was estimated at the price
    table's figure and the run refused without --yes or --max-cost, for a matte it writes with no request. Now:
    with a new image, the estimate names that one alone; with the kept one alone, no --yes is needed."""
    blocked(tmp_path, [(rel, (40 * i, 200, 90)) for i, rel in enumerate(["a.png", "sub/b.png"])], (16, 12))
    with RunwareFake(costs={REMBG: float(BILLED)}) as fake:
        assert rmbg(tmp_path, fake).returncode == 1 and len(fake.calls) == 2
        (tmp_path / "out" / "sub").unlink()
        Image.new("RGB", (16, 12), "blue").save(tmp_path / "in" / "c.png")
        asked = rmbg(tmp_path, fake, paid=())
        assert asked.returncode == 2 and len(fake.calls) == 2, asked.stderr
        said = asked.stderr.splitlines()
        assert "1 of 2 inputs already paid for and kept: written without a new request." in said
        assert "Estimated cost for runware-rembg: 1 images x $0.0013 = $0.0013 (price table)" in said
        (tmp_path / "in" / "c.png").unlink()
        kept = rmbg(tmp_path, fake, paid=())
        assert kept.returncode == 0 and len(fake.calls) == 2, kept.stdout + kept.stderr
        assert "1 of 1 inputs already paid for and kept: written without a new request." in kept.stderr
        assert "Estimated cost" not in kept.stderr
    assert Image.open(tmp_path / "out" / "sub" / "b.png").mode == "RGBA"
    assert counted(tmp_path / "ledger.sqlite3") == 2 * BILLED


@pytest.mark.uses("ray")  # the command starts a local Ray of its own
def test_on_ray_kept_mattes_are_written_by_the_command_and_not_bought_again(tmp_path):
    """`rmbg remove --engine ray` after paid mattes were kept. Before: a kept image was estimated, held and
    sent to a Ray worker, which keeps no matte: bought again. Now: the command writes it from the storage with
    no request and estimates, holds and sends to Ray only the images it must buy; with only kept ones to
    write, no Ray starts. 4 images in all, 4 requests."""
    blocked(tmp_path, [(rel, (40 * i, 200, 90)) for i, rel in enumerate(["a.png", "sub/b.png", "sub/c.png"])], (16, 12))
    on_ray = ("--engine", "ray", "--workers", "1")
    with RunwareFake(costs={REMBG: float(BILLED)}) as fake:
        assert rmbg(tmp_path, fake).returncode == 1 and len(fake.calls) == 3  # b and c bought, kept
        (tmp_path / "out" / "sub").unlink()
        (tmp_path / "in" / "sub" / "c.png").rename(tmp_path / "c.png")  # b alone to write: kept
        alone = rmbg(tmp_path, fake, paid=(), engine=on_ray)
        assert alone.returncode == 0 and len(fake.calls) == 3, alone.stdout + alone.stderr
        assert "1 of 1 inputs already paid for and kept: written without a new request." in alone.stderr
        assert "Started a local Ray" not in alone.stderr
        (tmp_path / "c.png").rename(tmp_path / "in" / "sub" / "c.png")
        Image.new("RGB", (16, 12), "blue").save(tmp_path / "in" / "d.png")  # c kept, d to buy, on Ray
        mixed = rmbg(tmp_path, fake, engine=on_ray)
        assert mixed.returncode == 0 and len(fake.calls) == 4, mixed.stdout + mixed.stderr
        said = mixed.stderr.splitlines()
        assert "1 of 2 inputs already paid for and kept: written without a new request." in said
        assert "Estimated cost for runware-rembg: 1 images x $0.0013 = $0.0013 (price table)" in said
        assert "Started a local Ray" in mixed.stderr
    for rel in ["a.png", "sub/b.png", "sub/c.png", "d.png"]:
        assert Image.open(tmp_path / "out" / rel).mode == "RGBA"
    assert counted(tmp_path / "ledger.sqlite3") == 4 * BILLED
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as db:  # written: none kept
        assert db.execute("SELECT COUNT(*) FROM rmbg_kept_mattes").fetchone() == (0,)


@pytest.mark.uses("ray")  # the command starts a local Ray of its own
def test_on_ray_a_paid_matte_whose_output_cannot_be_written_is_kept_by_the_driver(tmp_path):
    """`rmbg remove --engine ray` whose worker's paid call is answered, then its output cannot be written.
    Before: the worker had no matte cache, so the matte was lost: its row said "may have been billed" and the
    next run held it back (or bought it again with --retry-uncertain). Now: the worker hands the matte back
    with the outcome, the driver keeps it in its storage and says so, and the next run writes it with no
    request: 3 images, 3 requests in all."""
    blocked(tmp_path, [(rel, (40 * i, 200, 90)) for i, rel in enumerate(["a.png", "sub/b.png", "c.png"])], (16, 12))
    on_ray = ("--engine", "ray", "--workers", "1")
    with RunwareFake(costs={REMBG: float(BILLED)}) as fake:
        first = rmbg(tmp_path, fake, engine=on_ray)
        assert first.returncode == 1, first.stdout + first.stderr
        assert len(fake.calls) == 3 and "Started a local Ray" in first.stderr
        assert f"cost ${3 * BILLED} (reported)." in first.stdout
        assert "its paid matte is kept: run the same command again" in first.stdout
        failed = [r for r in rows(tmp_path / "out") if r["status"] == "failed"]
        assert [(r["output"], Decimal(r["cost_usd"]), r["cost_source"]) for r in failed] == [
            ("sub/b.png", BILLED, "may have been billed")
        ]
        assert "its paid matte is kept" in failed[0]["error"]
        assert counted(tmp_path / "ledger.sqlite3") == 3 * BILLED
        with sqlite3.connect(tmp_path / "ledger.sqlite3") as db:  # kept by the driver, in its storage
            assert db.execute("SELECT output FROM rmbg_kept_mattes").fetchall() == [("sub/b.png",)]

        (tmp_path / "out" / "sub").unlink()
        second = rmbg(tmp_path, fake, engine=on_ray)
        assert second.returncode == 0, second.stdout + second.stderr
        assert len(fake.calls) == 3  # not bought again
        assert "1 of 1 inputs already paid for and kept: written without a new request." in second.stderr
        assert "Started a local Ray" not in second.stderr  # only a kept one to write: no cluster
    assert Image.open(tmp_path / "out" / "sub" / "b.png").mode == "RGBA"
    assert counted(tmp_path / "ledger.sqlite3") == 3 * BILLED
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as db:  # written: no longer kept
        assert db.execute("SELECT COUNT(*) FROM rmbg_kept_mattes").fetchone() == (0,)


def replace(
    folder: Path, fake: FalFake, ledger: str = "ledger.sqlite3", paid: tuple[str, ...] = ("--yes",)
) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "FAL_KEY": FAL_KEY, "RMBG_FAL_QUEUE_URL": fake.url}
    command = ["replace", "in", "-o", "out", "--prompt", "a beach", "-n", "2", *paid, "-j", "1"]
    return subprocess.run(
        [sys.executable, "-m", "rmbg", *command],
        cwd=folder,
        env={**env, "RMBG_LEDGER": str(folder / ledger)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_paid_backgrounds_whose_outputs_cannot_be_written_are_kept_and_written_by_the_next_run(tmp_path):
    """`rmbg replace` as `rmbg remove` above. Before: the image whose outputs failed after fal generated them
    was counted as a call "that may have been billed, at the estimate", and the next run, its blocker gone,
    held it back ("may have been billed and left no output; not sent again", exit 1): the two images bought
    were lost unless bought again with --retry-uncertain. Now: counted as bought, kept in the storage with
    the outputs they were bought for, and written by the next run for free: still 2 requests, exit 0."""
    blocked(tmp_path, [("a.png", "red"), ("sub/b.png", "green")], (40, 30))
    with FalFake(polls_before_done=0) as fake:
        submits = lambda: sum(c.method == "POST" for c in fake.calls)  # noqa: E731
        first = replace(tmp_path, fake)
        assert first.returncode == 1 and submits() == 2, first.stdout + first.stderr
        assert "; cost $0.1600 (estimated)." in first.stdout  # fal reports no cost: 2 x 2 images at the price
        assert "may have been billed" not in first.stdout  # they were: counted as bought
        assert (
            "  in/sub/b.png: its output sub/b.replace-1.png; sub/b.replace-2.png could not be written: a file stands "
            "where a folder must be made; move it aside or give another -o; its paid images are kept: run the "
            "same command again (once the output can be written) to write them without paying again."
        ) in first.stdout.splitlines()
        assert counted(tmp_path / "ledger.sqlite3") == Decimal("0.16")

        (tmp_path / "out" / "sub").unlink()
        elsewhere = replace(tmp_path, fake, ledger="another.sqlite3")  # a storage that keeps nothing for it
        assert elsewhere.returncode == 1 and submits() == 2  # held back: not sent again
        assert "may have been billed and left no output; not sent again" in elsewhere.stdout
        second = replace(tmp_path, fake)
        assert second.returncode == 0 and submits() == 2, second.stdout + second.stderr  # not bought again
        assert second.stdout.startswith("Done 1, skipped 1 (output exists), failed 0, not run 0 (budget)")
        assert second.stdout.splitlines()[0].endswith("; cost $0.")
    for n in (1, 2):
        with Image.open(tmp_path / "out" / "sub" / f"b.replace-{n}.png") as made:
            assert made.size == (40, 30) and made.info["rmbg:provider"] == "fal-bria-replace"
    assert counted(tmp_path / "ledger.sqlite3") == Decimal("0.16")
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as db:  # written: no longer kept
        assert db.execute("SELECT COUNT(*) FROM rmbg_kept_mattes").fetchone() == (0,)


class FolderInTheWay(RunwareVideoFake):
    """Runware's video service, billing $0.19 a clip (the price table says $0.14 a second: one second here), and,
    as it hands over its answer, a folder appears where the clip's output is to be renamed to (as a full
    disk would fail it): the call is billed, then the output cannot be written."""

    def __init__(self, output: Path):
        super().__init__(polls=0)
        self.output = output

    def _result(self, entry, clip):
        return {**super()._result(entry, clip), "cost": 0.19}

    def handle(self, call):
        if call.method == "GET" and call.path.startswith("/video/"):
            self.output.mkdir(exist_ok=True)
        return super().handle(call)


def video(
    folder: Path, fake: RunwareVideoFake, paid: tuple[str, ...] = ("--yes",), clips: tuple[str, ...] = ("dog.mp4",)
) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "RUNWARE_API_KEY": TEST_KEY, "RMBG_RUNWARE_URL": fake.url}
    out = "out/dog.webm" if clips == ("dog.mp4",) else "out"
    command = ["video", *clips, "-o", out, "-p", "runware-bria-video", *paid]
    return subprocess.run(
        [sys.executable, "-m", "rmbg", *command],
        cwd=folder,
        env={**env, "RMBG_LEDGER": str(folder / "ledger.sqlite3")},
        capture_output=True,
        text=True,
        timeout=120,
    )


def bought_and_kept(folder: Path, fake: FolderInTheWay) -> subprocess.CompletedProcess:
    """`rmbg video dog.mp4 -o out/dog.webm` while `fake` blocks its output: billed once, the run fails and keeps the
    answer. Then the block is gone (the folder removed, the fake's next folder elsewhere); the failed run is
    returned."""
    first = video(folder, fake)
    assert first.returncode == 1 and len(fake.billed) == 1, first.stderr
    (folder / "out" / "dog.webm").rmdir()
    fake.output = folder / "elsewhere"
    return first


def test_a_paid_clip_whose_output_cannot_be_written_is_counted_at_its_cost_and_written_by_the_next_run(tmp_path):
    """`rmbg video` with a paid service. Before: the clip whose output failed after the service answered was
    counted at the estimate ($0.14, though the service reported $0.19), marked "may have been billed", and the
    next run held it back: the answer bought was lost unless bought again with --retry-uncertain. Now: counted
    at the cost reported, the answer kept in the storage, and the next run writes it without a new request."""
    write_clip(tmp_path / "dog.mp4", davis("dog", 12))  # 0.5 s: 1 billed second
    (tmp_path / "out").mkdir()
    with FolderInTheWay(tmp_path / "out" / "dog.webm") as fake:
        first = bought_and_kept(tmp_path, fake)
        said = [line for line in first.stderr.splitlines() if line.startswith("rmbg: ")]
        assert said == [
            "rmbg: dog.mp4: Could not write out/dog.webm: Is a directory; its paid answer is kept: run the same "
            "command again (once the output can be written) to write it without paying again."
        ]
        assert counted(tmp_path / "ledger.sqlite3") == Decimal("0.19")

        second = video(tmp_path, fake)
        assert second.returncode == 0 and len(fake.billed) == 1, second.stderr  # not bought again
        assert "out/dog.webm  12 frames, 0.5 s of video in " in second.stdout
    assert counted(tmp_path / "ledger.sqlite3") == Decimal("0.19")
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as db:  # written: no longer kept
        assert db.execute("SELECT COUNT(*) FROM rmbg_kept_mattes").fetchone() == (0,)


def test_a_kept_answer_for_a_clip_with_sound_at_the_size_people_bring_is_written_whole(tmp_path):
    """The same at the size people bring: 60 frames (2.5 s, 3 billed seconds) with an AAC track. The answer kept
    by the run whose output failed is written by the next one with every frame and the sound, no new request."""
    write_clip(tmp_path / "dog.mp4", davis("dog", 60), tone_hz=440)
    (tmp_path / "out").mkdir()
    with FolderInTheWay(tmp_path / "out" / "dog.webm") as fake:
        assert "its paid answer is kept" in bought_and_kept(tmp_path, fake).stderr
        second = video(tmp_path, fake, paid=())  # nothing to buy: no --yes asked
        assert second.returncode == 0 and len(fake.billed) == 1, second.stdout + second.stderr
        assert "1 of 1 clip(s) already paid for and kept: written without a new request." in second.stderr
        assert "out/dog.webm  60 frames, 2.5 s of video in " in second.stdout
    with av.open(str(tmp_path / "out" / "dog.webm")) as made:
        assert sorted(s.type for s in made.streams) == ["audio", "video"]
        assert sum(1 for _ in made.decode(video=0)) == 60
    assert counted(tmp_path / "ledger.sqlite3") == Decimal("0.19")


def test_a_re_run_asks_to_accept_only_what_it_will_buy_and_no_cap_refuses_what_was_kept(tmp_path):
    """`rmbg replace` again after its paid images were kept (above). Before: the estimate and the --yes rule
    counted the kept input at full price ("2 images x $0.0800", refused without --yes), and each kept input took
    a hold against --max-cost, so `--max-cost 0` left it "not run (budget)" though it costs nothing. Now: the
    kept input is said and not estimated, the estimate names only the new one, and a run of kept inputs alone
    needs neither --yes nor room under a cap."""
    blocked(tmp_path, [("a.png", "red"), ("sub/b.png", "green")], (40, 30))
    with FalFake(polls_before_done=0) as fake:
        submits = lambda: sum(c.method == "POST" for c in fake.calls)  # noqa: E731
        first = replace(tmp_path, fake)
        assert first.returncode == 1 and submits() == 2, first.stdout + first.stderr
        (tmp_path / "out" / "sub").unlink()
        Image.new("RGB", (40, 30), "blue").save(tmp_path / "in" / "c.png")  # a new input: to be bought

        asked = replace(tmp_path, fake, paid=())
        assert asked.returncode == 2 and submits() == 2, asked.stdout + asked.stderr
        said = asked.stderr.splitlines()
        assert "1 of 2 inputs already paid for and kept: written without a new request." in said
        estimate = "Estimated cost for fal-bria-replace: 1 images x $0.0800 = $0.0800 (2 x $0.0400 per image, price "
        assert estimate + "table)" in said  # the new input alone
        assert said[-1].startswith("This run is paid: pass --yes")

        (tmp_path / "in" / "c.png").unlink()
        kept = replace(tmp_path, fake, paid=("--max-cost", "0"))  # nothing to buy: no cap refuses it
        assert kept.returncode == 0 and submits() == 2, kept.stdout + kept.stderr
        assert "1 of 1 inputs already paid for and kept: written without a new request." in kept.stderr
        assert "Estimated cost" not in kept.stderr
        assert kept.stdout.startswith("Done 1, skipped 1 (output exists), failed 0, not run 0 (budget)")
    assert (tmp_path / "out" / "sub" / "b.replace-2.png").exists()
    assert counted(tmp_path / "ledger.sqlite3") == Decimal("0.16")


def test_a_clip_re_run_asks_to_accept_only_the_clips_it_will_buy(tmp_path):
    """`rmbg video` again after a paid clip's answer was kept (above). Before: the kept clip was estimated at full
    price and the run refused without --yes or --max-cost, for a clip it writes with no request. Now: with another
    clip, the estimate names that one alone; with the kept clip alone, no --yes is needed and nothing is sent."""
    write_clip(tmp_path / "dog.mp4", davis("dog", 12))  # 0.5 s: 1 billed second
    write_clip(tmp_path / "cat.mp4", davis("dog", 8))
    (tmp_path / "out").mkdir()
    with FolderInTheWay(tmp_path / "out" / "dog.webm") as fake:
        bought_and_kept(tmp_path, fake)

        both = video(tmp_path, fake, paid=(), clips=("dog.mp4", "cat.mp4"))
        assert both.returncode == 2 and len(fake.billed) == 1, both.stderr
        said = both.stderr.splitlines()
        assert "1 of 2 clip(s) already paid for and kept: written without a new request." in said
        assert (
            "Estimated cost for runware-bria-video: 1 clip(s), 1 billed s x $0.14/s = $0.1400 (each clip's "
            "seconds rounded up)"
        ) in said

        kept = video(tmp_path, fake, paid=())
        assert kept.returncode == 0 and len(fake.billed) == 1, kept.stderr
        assert "1 of 1 clip(s) already paid for and kept: written without a new request." in kept.stderr
        assert "Estimated cost" not in kept.stderr and "out/dog.webm  12 frames" in kept.stdout
    assert counted(tmp_path / "ledger.sqlite3") == Decimal("0.19")


def test_an_image_counted_free_whose_kept_matte_is_gone_is_not_bought(tmp_path):
    """An image the estimate left out as kept (rmbg.cli.kept.bought_before) holds nothing against the caps; should
    its matte be gone from the storage by the time it runs, it is not bought unasked and unheld: it fails,
    nothing sent, and the next run estimates it again."""
    from rmbg.cache import MatteCache
    from rmbg.cli import batch
    from tests.support.providers import CountingProvider

    Image.new("RGB", (16, 12), "red").save(tmp_path / "a.png")
    items = batch.plan([str(tmp_path / "a.png")], tmp_path / "out")
    provider = CountingProvider()
    settings = batch.Settings(free=frozenset({id(items[0])}))
    outcomes = batch.run(items, provider, settings, lambda _: None, cache=MatteCache(2**20))
    assert [(o.status, o.may_be_billed) for o in outcomes] == [("failed", False)] and provider.calls == 0
    assert outcomes[0].error == (
        "what an earlier run bought and kept for it could no longer be read from the storage; nothing was sent. "
        "Run the same command again to buy it."
    )


class ForgetsKeptAnswers(RunwareVideoFake):
    """Runware's video service, and beside it another process on the same ledger that writes the kept answers
    and forgets them (as a concurrent run of the same command would) just as this run's first request arrives:
    after this run's estimate counted them as kept, before it reads them."""

    def __init__(self, ledger: Path):
        super().__init__(polls=0)
        self.ledger = ledger

    def handle(self, call):
        if call.method == "POST":
            with sqlite3.connect(self.ledger) as db:
                db.execute("DELETE FROM rmbg_kept_mattes")
        return super().handle(call)


def test_a_clip_counted_as_kept_whose_answer_is_gone_by_its_turn_is_not_bought(tmp_path):
    """A clip the estimate counted as kept holds nothing against the caps: should its answer be gone from the
    storage by its turn, it fails in the sentence the image and replace batches use, nothing sent for it, and the
    next run estimates it again."""
    write_clip(tmp_path / "cat.mp4", davis("dog", 8))
    write_clip(tmp_path / "dog.mp4", davis("dog", 12))
    (tmp_path / "out").mkdir()
    with FolderInTheWay(tmp_path / "out" / "dog.webm") as fake:
        bought_and_kept(tmp_path, fake)
    with ForgetsKeptAnswers(tmp_path / "ledger.sqlite3") as fake:
        both = video(tmp_path, fake, clips=("cat.mp4", "dog.mp4"))  # cat first: its request, then dog's turn
        assert both.returncode == 1 and len(fake.billed) == 1, both.stderr  # cat's alone
        assert "1 of 2 clip(s) already paid for and kept: written without a new request." in both.stderr
        assert (
            "rmbg: dog.mp4: what an earlier run bought and kept for it could no longer be read from the storage; "
            "nothing was sent. Run the same command again to buy it."
        ) in both.stderr.splitlines()
        assert (tmp_path / "out" / "cat.webm").is_file() and not (tmp_path / "out" / "dog.webm").exists()
    assert counted(tmp_path / "ledger.sqlite3") == Decimal("0.19") + Decimal("0.14")
