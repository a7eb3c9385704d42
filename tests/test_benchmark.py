"""The Benchmark tab's logic: same numbers as `rmbg evaluate`, money reserved
before anything runs, hostile uploads refused, votes kept in SQLite."""

from __future__ import annotations

import json
import os
import shutil
import stat
import zipfile
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rmbg.errors import BudgetError
from rmbg.eval.votes import Vote, VoteStore, ranking
from rmbg.webapp import AppConfig
from rmbg.webapp.benchmark.arena import Arena, CutoutSet, run_blind
from rmbg.webapp.benchmark.request import run as bench_run
from rmbg.webapp.benchmark.scoring import estimate, run_scored
from rmbg.webapp.benchmark.uploads import MAX_IMAGES, UploadError, read_upload
from rmbg.webapp.catalog import Keys
from rmbg.webapp.context import App
from tests.fakes.fal import TEST_KEY as FAL_KEY
from tests.fakes.fal import FalFake
from tests.support.benchmark import DAVIS, FRAMES, png_bytes
from tests.u2netp_fixture import u2netp_path  # noqa: F401


def davis_copy(folder: Path) -> Path:
    """A few DAVIS frames in the `rmbg evaluate` layout, in a temporary folder."""
    for sub, suffix in (("images", ".jpg"), ("masks", ".png")):
        (folder / sub).mkdir(parents=True)
        for name in FRAMES:
            shutil.copy(DAVIS / sub / f"{name}{suffix}", folder / sub / f"{name}{suffix}")
    return folder


def zipped(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return target


def app_with(fal: FalFake | None = None, **overrides) -> App:
    providers = {"fal-bria": {"base_url": fal.url}} if fal else {}
    return App.create(AppConfig(provider_config=providers, **overrides), cache=None)


# --- one code path with `rmbg evaluate` --------------------------------------------


def test_tab_numbers_equal_rmbg_evaluate_on_the_same_files(tmp_path, u2netp_path):  # noqa: F811
    from rmbg.cli.main import main

    data = davis_copy(tmp_path / "data")
    assert (
        main(["evaluate", str(data), "--provider", "u2netp", "--out", str(tmp_path / "cli"), "--bootstrap", "300"]) == 0
    )
    cli = json.loads((tmp_path / "cli" / "evaluation.json").read_text())

    upload = read_upload([zipped(data, tmp_path / "upload.zip")], None, tmp_path / "up")
    assert upload.truth and upload.names == tuple(FRAMES)
    scored = run_scored(upload, ["u2netp"], Keys(), app_with(), session_id="s", volume=1000, bootstrap=300)
    from rmbg.eval.report import to_json

    tab = to_json(scored.evaluation)
    assert tab["composite_key"] == cli["composite_key"] == "composite_seg"

    # Every score, interval and count is the same; seconds (and local compute cost) are measured anew.
    def scores(doc):
        return [(s["provider"], s["category"], s["n_images"], s["n_groups"], s["metrics"]) for s in doc["summaries"]]

    assert scores(tab) == scores(cli)
    assert [(r["name"], r["group"], r["metrics"]) for r in tab["rows"]] == [
        (r["name"], r["group"], r["metrics"]) for r in cli["rows"]
    ]
    assert len(scored.cutouts) == len(FRAMES) and not scored.stopped


def test_a_stopped_run_keeps_and_scores_what_it_has(tmp_path, u2netp_path):  # noqa: F811
    import threading

    upload = read_upload([zipped(davis_copy(tmp_path / "data"), tmp_path / "u.zip")], None, tmp_path / "up")
    flag = threading.Event()
    seen = []

    def report(step):
        seen.append(step)
        if len(seen) == 2:
            flag.set()

    scored = run_scored(
        upload, ["u2netp"], Keys(), app_with(), session_id="s", volume=10, report=report, stop=flag, bootstrap=50
    )
    assert [(s.image, s.images_done, s.n_images, s.in_image, s.n_providers) for s in seen] == [
        (FRAMES[0], 1, 4, 1, 1),
        (FRAMES[1], 2, 4, 1, 1),
    ]
    assert scored.stopped and [r.name for r in scored.evaluation.rows] == FRAMES[:2]
    assert scored.evaluation.overall("u2netp").n_images == 2


# --- money ----------------------------------------------------------------------------


def test_the_estimate_is_reserved_before_anything_is_sent(tmp_path):
    with FalFake() as fal:
        app = app_with(fal, cap_usd=Decimal("0.05"))
        images = tmp_path / "in"
        images.mkdir()
        for i in range(4):
            (images / f"p{i}.png").write_bytes(png_bytes())
        upload = read_upload(sorted(images.iterdir()), None, tmp_path / "up")
        assert estimate(["fal-bria", "u2netp"], 4, app) > Decimal("0.05")
        with pytest.raises(BudgetError, match="cap"):
            run_blind(upload, ["fal-bria", "u2netp"], Keys.of(FAL_KEY), app, session_id="s")
        assert not fal.calls  # not one request reached the provider
        assert app.ledger.session_spent("s") == 0


def test_a_blind_run_settles_what_the_calls_cost(tmp_path, u2netp_path):  # noqa: F811
    with FalFake() as fal:
        app = app_with(fal)
        images = tmp_path / "in"
        images.mkdir()
        for i in range(2):
            (images / f"p{i}.png").write_bytes(png_bytes(colour=(10 * i, 90, 90)))
        upload = read_upload(sorted(images.iterdir()), None, tmp_path / "up")
        cutouts, rows = run_blind(upload, ["fal-bria", "u2netp"], Keys.of(FAL_KEY), app, session_id="s")
        assert [r[:2] for r in rows] == [["p0", "fal-bria"], ["p0", "u2netp"], ["p1", "fal-bria"], ["p1", "u2netp"]]
        assert all(r[2].startswith("ok") for r in rows)
        assert app.ledger.session_spent("s") == estimate(["fal-bria"], 2, app)  # fal reports no cost: the price table
        assert len(cutouts.pairs()) == 2


def test_a_blind_row_from_the_cache_says_no_call_was_made(tmp_path, u2netp_path):  # noqa: F811
    """A second run on the same photo reuses the mattes: its rows must not show the first call's
    seconds and cost as if a call had been made (and paid) again."""
    from rmbg.cache import MatteCache

    with FalFake() as fal:
        providers = {"fal-bria": {"base_url": fal.url}}
        app = App.create(AppConfig(provider_config=providers), cache=MatteCache(64 * 2**20))
        (tmp_path / "p.png").write_bytes(png_bytes())
        upload = read_upload([tmp_path / "p.png"], None, tmp_path / "up")
        _, first = run_blind(upload, ["fal-bria", "u2netp"], Keys.of(FAL_KEY), app, session_id="s")
        calls = len(fal.calls)
        _, again = run_blind(upload, ["fal-bria", "u2netp"], Keys.of(FAL_KEY), app, session_id="s")
    assert first[0][2].startswith("ok · ") and "$0.0180" in first[0][2]
    assert [row[2] for row in again] == ["ok · cached matte · free (no new call)"] * 2
    assert len(fal.calls) == calls


@pytest.mark.parametrize("fault, counted", [("drop", Decimal("0.018")), ("unauthorized", Decimal(0))])
def test_a_failed_call_costs_what_its_request_may_have_cost(tmp_path, u2netp_path, fault, counted):  # noqa: F811
    with FalFake() as fal:
        app = app_with(fal)
        (tmp_path / "p.png").write_bytes(png_bytes())
        upload = read_upload([tmp_path / "p.png"], None, tmp_path / "up")
        fal.inject(fault, op="submit", times=5)
        cutouts, rows = run_blind(upload, ["fal-bria", "u2netp"], Keys.of(FAL_KEY), app, session_id="s")
        assert rows[0][:2] == ["p", "fal-bria"] and not rows[0][2].startswith("ok") and rows[1][2].startswith("ok")
        assert app.ledger.session_spent("s") == counted  # a dropped request may be billed; a refused key is not
        assert cutouts.pairs() == []  # one cut-out per image: nothing to vote on


# --- hostile uploads ------------------------------------------------------------------


def make_zip(path: Path, members: dict[str, bytes], *, symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


def assert_nothing_outside(tmp_path: Path, inside: Path) -> None:
    for path in tmp_path.rglob("*"):
        assert path == inside or inside in path.parents or path.suffix == ".zip" or path.name == "evil", path
    assert not (tmp_path / "evil.png").exists() and not (tmp_path.parent / "evil.png").exists()


@pytest.mark.parametrize(
    "name, message",
    [
        ("../evil.png", "points outside the archive"),
        ("images/../../evil.png", "points outside the archive"),
        ("/tmp/evil.png", "absolute path"),
        ("C:/evil.png", "absolute path"),
    ],
)
def test_zip_names_that_leave_the_folder_are_refused(tmp_path, name, message):
    archive = make_zip(tmp_path / "a.zip", {"ok.png": png_bytes(), name: png_bytes()})
    with pytest.raises(UploadError, match=message):
        read_upload([archive], None, tmp_path / "up")
    assert_nothing_outside(tmp_path, tmp_path / "up")


def test_symlinks_in_a_zip_are_refused(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"ok.png": png_bytes()}, symlink="link.png")
    with pytest.raises(UploadError, match="symbolic link"):
        read_upload([archive], None, tmp_path / "up")


def test_a_symlinked_file_is_refused(tmp_path):
    real = tmp_path / "real.png"
    real.write_bytes(png_bytes())
    (tmp_path / "link.png").symlink_to(real)
    with pytest.raises(UploadError, match="not a regular file"):
        read_upload([tmp_path / "link.png"], None, tmp_path / "up")


def test_a_zip_bomb_is_refused_before_it_inflates(tmp_path):
    archive = make_zip(tmp_path / "bomb.zip", {"big.png": bytes(20 * 2**20)})
    assert archive.stat().st_size < 100_000
    with pytest.raises(UploadError, match="zip bomb"):
        read_upload([archive], None, tmp_path / "up")
    assert not any((tmp_path / "up").rglob("*.png"))


def test_a_member_bigger_than_its_header_says_is_cut_off(tmp_path, monkeypatch):
    from rmbg.webapp.benchmark import uploads

    archive = make_zip(tmp_path / "a.zip", {"big.png": os.urandom(64 * 1024)})
    # an image's limit of 10,000 bytes; the header says 64 KiB; the copy stops at the limit whatever it says
    monkeypatch.setenv("RMBG_IMAGE_MAX_MB", str(10_000 / 2**20))
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("big.png")
        with pytest.raises(UploadError, match=r"^big.png is over 0.00954 MB.$"):
            uploads._copy_limited(zf.open(info), tmp_path / "out.png", "big.png", uploads._Budget())
    assert (tmp_path / "out.png").stat().st_size <= 10_000 + uploads.CHUNK


def test_too_many_images_are_refused(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {f"p{i}.png": png_bytes() for i in range(MAX_IMAGES + 1)})
    with pytest.raises(UploadError, match=f"at most {MAX_IMAGES}"):
        read_upload([archive], None, tmp_path / "up")


def test_mismatched_ground_truth_names_are_listed(tmp_path):
    archive = make_zip(
        tmp_path / "a.zip",
        {
            "images/cat.png": png_bytes(),
            "images/dog.png": png_bytes(),
            "masks/cat.png": png_bytes(),
            "masks/doge.png": png_bytes(),
        },
    )
    with pytest.raises(UploadError) as caught:
        read_upload([archive], None, tmp_path / "up")
    assert str(caught.value) == (
        "Ground truth must have the same names as the images: no ground truth for dog; "
        "ground truth without an image: doge."
    )


def test_duplicate_names_and_other_files_get_clear_messages(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"a/cat.png": png_bytes(), "b/cat.jpg": png_bytes()})
    with pytest.raises(UploadError, match="Two images are named 'cat'"):
        read_upload([archive], None, tmp_path / "up")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UploadError, match="neither an image nor a .zip"):
        read_upload([tmp_path / "notes.txt"], None, tmp_path / "up2")
    (tmp_path / "fake.zip").write_text("not a zip")
    with pytest.raises(UploadError, match="not a readable .zip"):
        read_upload([tmp_path / "fake.zip"], None, tmp_path / "up3")


def test_unreadable_ground_truth_is_refused_at_upload(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"images/cat.png": png_bytes(), "masks/cat.png": b"not an image"})
    with pytest.raises(UploadError) as caught:
        read_upload([archive], None, tmp_path / "up")
    assert str(caught.value) == "The ground truth for 'cat' is not an image we can read."


def test_progress_steps_count_images_and_providers_within_an_image():
    from rmbg.webapp.benchmark.scoring import Step

    steps = [Step.of(done, 6, 3, f"img{(done - 1) // 3}", "p", True) for done in range(1, 7)]
    assert [(s.image, s.images_done, s.in_image) for s in steps] == [
        ("img0", 0, 1),
        ("img0", 0, 2),
        ("img0", 1, 3),
        ("img1", 1, 1),
        ("img1", 1, 2),
        ("img1", 2, 3),
    ]
    assert steps[0].n_images == 2 and steps[0].text() == "img0: p done"


def test_stop_flags_belong_to_one_session():
    from rmbg.webapp.benchmark.scoring import Stops

    stops = Stops()
    assert stops.stop("a") is False  # nothing running: nothing to stop
    flag = stops.start("a")
    assert stops.stop("b") is False and not flag.is_set()
    assert stops.stop("a") is True and flag.is_set()
    stops.finish("a", flag)
    assert stops.stop("a") is False


def test_loose_truth_files_pair_with_images_by_name(tmp_path):
    for name in ("cat.jpg", "dog.jpg"):
        (tmp_path / name).write_bytes(png_bytes())
    gt = make_zip(tmp_path / "gt.zip", {"cat.png": png_bytes(), "sub/dog.png": png_bytes()})
    upload = read_upload([tmp_path / "cat.jpg", tmp_path / "dog.jpg"], [gt], tmp_path / "up")
    assert upload.truth and upload.names == ("cat", "dog")
    assert sorted(p.name for p in (tmp_path / "up" / "masks").iterdir()) == ["cat.png", "dog.png"]


def test_bench_run_removes_its_temporary_folder_and_reports_bad_uploads(tmp_path, u2netp_path):  # noqa: F811
    import tempfile

    before = set(Path(tempfile.gettempdir()).glob("rmbg-upload-*"))
    archive = make_zip(tmp_path / "a.zip", {"../x.png": png_bytes()})
    arena = Arena(VoteStore(tmp_path / "v.sqlite3"))
    with pytest.raises(UploadError, match="outside"):
        bench_run([str(archive)], None, ["u2netp"], Keys(), app_with(), arena, session_id="s", volume=1)
    assert set(Path(tempfile.gettempdir()).glob("rmbg-upload-*")) == before


# --- votes ------------------------------------------------------------------------------


def test_votes_survive_a_restart_in_a_real_sqlite_file(tmp_path):
    import sqlite3

    from rmbg.money.ledger import close_all

    path = tmp_path / "storage.sqlite3"
    store = VoteStore(path)
    assert store.add(Vote("v1", "img", "a", "b", "a"))
    assert store.add(Vote("v2", "img", "b", "a", "b"))
    assert store.add(Vote("v2", "img", "a", "c", "a"))
    before = store.all()
    close_all()
    again = VoteStore(path)  # a new process opening the same file
    assert again.all() == before and len(before) == 3
    assert ranking(again.all()) == ranking(before)
    with sqlite3.connect(path) as db:  # a plain table the operator can read
        rows = db.execute("SELECT voter, winner FROM rmbg_votes ORDER BY voted_at").fetchall()
    assert rows == [("v1", "a"), ("v2", "b"), ("v2", "a")]


def test_one_visitor_weighs_no_more_than_any_other(tmp_path):
    votes = [Vote("eager", f"i{k}", "x", "y", "x") for k in range(30)]
    votes += [Vote("one", "i0", "x", "y", "y"), Vote("two", "i1", "y", "x", "y")]
    order = [s.provider for s in ranking(votes, bootstrap=200)]
    assert order == ["y", "x"]  # two visitors against one, however often the one voted
    top = ranking(votes, bootstrap=200)[0]
    assert top.low <= top.score <= top.high and top.votes == 32 and top.wins == 2


def test_the_ranking_follows_clear_preferences_with_intervals(tmp_path):
    pairs = (("good", "fair"), ("fair", "poor"), ("good", "poor"))
    votes = [Vote(f"v{k}", "i", a, b, a) for k in range(20) for a, b in pairs]
    table = ranking(votes, bootstrap=200)
    assert [s.provider for s in table] == ["good", "fair", "poor"]
    assert table[0].low > table[2].high


def test_names_are_shown_only_after_the_vote_and_a_ticket_is_used_once(tmp_path):
    store = VoteStore(tmp_path / "v.sqlite3")
    arena = Arena(store, seed=3)
    red = Image.new("RGBA", (8, 8), (255, 0, 0, 255))
    half = Image.new("RGBA", (8, 8), (0, 0, 255, 0))
    sides = set()
    for k in range(12):  # twelve visitors, one pair each
        arena.keep(f"s{k}", CutoutSet({"img": {"a": red, "b": half}}))
        left, right, token = arena.pair(f"s{k}", "black")
        assert left.size == right.size == (8, 8)
        sides.add(left.getpixel((0, 0)))
        reveal, table = arena.vote(f"s{k}", token, "left")
        assert "Left was" in reveal
        with pytest.raises(Exception, match="already voted"):
            arena.vote(f"s{k}", token, "left")
    assert sides == {(255, 0, 0), (0, 0, 0)}  # each provider was on the left at some point; transparent shows black
    assert len(store.all()) == 12 and all(not v.voter.startswith("s") for v in store.all())
    arena.keep("t", CutoutSet({"img": {"a": red, "b": half}}))
    with pytest.raises(Exception, match="already voted"):
        arena.vote("other", arena.pair("t", "white")[2], "left")  # another session cannot use my ticket


def test_one_visitor_votes_once_on_an_image_and_pair_however_often_it_is_asked_for(tmp_path):
    """Issue #45: asking for new pairs let one visitor vote on the same image and pair again and again."""
    store = VoteStore(tmp_path / "v.sqlite3")
    arena = Arena(store, seed=1)
    cut = Image.new("RGBA", (4, 4), (9, 9, 9, 255))
    arena.keep("s", CutoutSet({"img": {"a": cut, "b": cut}, "other": {"a": cut, "b": cut}}))
    first, second = arena.pair("s", "white")[2], arena.pair("s", "white")[2]  # two tickets before any vote
    tickets = [first, second] + [arena.pair("s", "white")[2] for _ in range(4)]
    answers = []
    for ticket in tickets:
        try:
            answers.append(arena.vote("s", ticket, "left")[0])
        except Exception as exc:
            answers.append(str(exc))
    assert sum(a.startswith("Left was") for a in answers) == 2  # one per image
    assert sum("already voted on this image's pair" in a for a in answers) == 4
    assert len(store.all()) == 2 and {v.image for v in store.all()} == {"img", "other"}
    with pytest.raises(Exception, match="You have voted on every pair"):
        arena.pair("s", "white")  # nothing left to draw for this visitor
    arena.keep("t", CutoutSet({"img": {"a": cut, "b": cut}}))
    assert arena.vote("t", arena.pair("t", "white")[2], "right")[0].startswith("Left was")  # another visitor counts


def test_one_vote_shows_no_interval_but_ten_do():
    """One vote resampled is the same vote: its interval would be a point. Under ten votes it says so."""
    from rmbg.eval.votes import ranking_rows

    rows = ranking_rows(ranking([Vote("v", "img", "x", "y", "y")], bootstrap=50))
    assert [r[3] for r in rows] == ["too few votes (1 of 10)"] * 2
    pairs = [Vote(f"v{k}", "img", "x", "y", "y" if k % 3 else "x") for k in range(10)]
    intervals = [r[3] for r in ranking_rows(ranking(pairs, bootstrap=200))]
    lows_highs = [tuple(int(v) for v in text.strip("[]").split(", ")) for text in intervals]
    assert all(high - low >= 20 for low, high in lows_highs), intervals  # ten split votes: a wide interval


def test_a_new_page_reads_the_ranking_other_processes_wrote(tmp_path):
    """The ranking a page opens with is read from the storage when it opens, not when the app started."""
    path = tmp_path / "v.sqlite3"
    arena = Arena(VoteStore(path))
    assert arena.ranking_or_none() is None
    elsewhere = VoteStore(str(path))  # another replica's store on the same storage
    for k in range(5):
        elsewhere.add(Vote(f"v{k}", "img", "x", "y", "y"))
    rows = arena.ranking_or_none()
    assert rows is not None and [r[1] for r in rows] == ["y", "x"] and rows[0][4] == 5


def test_voting_without_cutouts_says_what_to_do(tmp_path):
    arena = Arena(VoteStore(tmp_path / "v.sqlite3"))
    with pytest.raises(Exception, match="Nothing to vote on yet"):
        arena.pair("s", "white")
    arena.keep("s", CutoutSet({"img": {"a": Image.new("RGBA", (4, 4)), "b": Image.new("RGBA", (4, 4))}}))
    with pytest.raises(Exception, match="Background is one of"):
        arena.pair("s", "plaid")
    assert np.asarray(arena.pair("s", "checkerboard")[0]).shape == (4, 4, 3)
