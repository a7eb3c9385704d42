"""The cascade: a free provider on every image, a better one on the least sure (rmbg.cascade,
`rmbg remove --escalate`, remove_background(escalate=...)).

The free fake returns each photo's own grey as its matte, so a photo decides
its matte's confidence: photo i has a subject with i soft columns, and the
more soft columns, the lower the confidence (rmbg.confidence). The better fake
returns a crisp matte and counts what it was sent. Paid escalations go to a
fake priced $0.01 through the one money rule, and to Runware's fake server.
"""

from __future__ import annotations

import csv
import io
import threading
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import rmbg
from rmbg import registry
from rmbg.cascade import check_choice, most_unsure
from rmbg.cli import interrupts
from rmbg.cli.cascade import escalation_gate
from rmbg.cli.main import main
from rmbg.errors import InvalidRequestError, ProviderUnavailableError
from rmbg.money import charging
from rmbg.types import Cost, Matte
from tests.support.providers import FreeLocal

N = 10


def photo(i: int) -> Image.Image:
    """A 64 x 48 photo whose grey is its own matte: a 32 x 32 subject, i of its columns soft (grey 160)."""
    a = np.zeros((48, 64), np.uint8)
    a[8:40, 16:48] = 255
    a[8:40, 16 : 16 + 2 * i] = 160
    a[0, 0] = i  # every photo's content differs (and says which it is)
    return Image.fromarray(np.stack([a] * 3, axis=-1))


class Own(FreeLocal):
    """Free: the photo's grey is the matte."""

    id, label = "fake-own", "own grey"

    def __init__(self):
        self.seen: list[int] = []
        self._lock = threading.Lock()

    def matte(self, image):
        with self._lock:
            self.seen.append(image.getpixel((0, 0))[0])
        return Matte(image.convert("L"), Cost.free(), 0.0, {"model": "own"})


class Crisp(Own):
    """Better: everything over grey 128 is subject."""

    id, label = "fake-crisp", "crisp"

    def matte(self, image):
        with self._lock:
            self.seen.append(image.getpixel((0, 0))[0])
        return Matte(image.convert("L").point(lambda v: 255 if v >= 128 else 0), Cost.free(), 0.0, {"model": "crisp"})


class Blurry(Own):
    """A "better" provider whose matte is less sure than the free one's: the subject all soft (grey 160)."""

    id, label = "fake-blurry", "blurry"

    def matte(self, image):
        with self._lock:
            self.seen.append(image.getpixel((0, 0))[0])
        return Matte(image.convert("L").point(lambda v: 160 if v >= 128 else 0), Cost.free(), 0.0, {"model": "blur"})


class PaidCrisp(Crisp):
    id, label, kind = "fake-paid", "paid crisp", "hosted"

    def __init__(self, fail: set[int] = frozenset(), stop_after: int | None = None):
        super().__init__()
        self.fail, self.stop_after = fail, stop_after

    def estimate(self):
        return Cost(Decimal("0.01"), "estimated", "price table")

    def matte(self, image):
        which = image.getpixel((0, 0))[0]
        if which in self.fail:
            with self._lock:
                self.seen.append(which)
            charging.current().answered(charging.Charge.REFUSED)  # a 503 the vendor does not bill
            raise ProviderUnavailableError(self.id, "unavailable", status=503)
        if self.stop_after is not None and len(self.seen) + 1 >= self.stop_after:
            interrupts.stop_requested.set()  # as the first Ctrl-C does
        matte = super().matte(image)
        return Matte(matte.alpha, Cost(Decimal("0.01"), "reported", "fake"), 0.0, matte.meta)


@pytest.fixture
def fakes():
    made = {"own": Own(), "crisp": Crisp(), "paid": PaidCrisp(), "blurry": Blurry()}
    for p in made.values():
        rmbg.register(p.id, lambda p=p, **_: p)
    yield made
    for p in made.values():
        registry.unregister(p.id)
    interrupts.stop_requested.clear()  # a test that stops a run leaves no flag for the next


# --- which images ----------------------------------------------------------------------


def test_the_share_is_floor_of_share_times_images_the_least_sure_first_ties_in_input_order():
    conf = [0.9, 0.2, 0.5, None, 0.2, 0.7, 0.1]
    assert most_unsure(conf, share=0.5) == [6, 1, 4]  # 6 with a confidence: floor(3.0)
    assert most_unsure(conf, share=0.49) == [6, 1]
    assert most_unsure(conf, share=0.0) == [] and most_unsure(conf, share=1.0) == [6, 1, 4, 2, 5, 0]
    assert most_unsure(conf, below=0.5) == [6, 1, 4]
    assert most_unsure(conf) == [6]  # the default share 0.3: floor(1.8)
    assert len(most_unsure([0.5] * 10, share=0.3)) == 3  # 0.3 x 10 is 3, not 2.9999


@pytest.mark.parametrize("share, below", [(0.3, 0.5), (1.5, None), (None, -0.1), ("0.3", None)])
def test_a_bad_choice_is_refused(share, below):
    with pytest.raises(InvalidRequestError):
        check_choice(share, below)


# --- Python ------------------------------------------------------------------------------


def test_cascade_escalates_exactly_the_share_least_sure_first(fakes):
    results = rmbg.cascade([photo(i) for i in range(N)], "fake-own", "fake-crisp", share=0.3, cache=None)
    assert [r.provider for r in results] == ["fake-own"] * 7 + ["fake-crisp"] * 3
    assert fakes["crisp"].seen == [9, 8, 7]
    assert results[9].meta["escalation"].startswith("escalated from fake-own (confidence 0.")
    assert float(results[9].meta["confidence"]) > float(results[6].meta["confidence"])  # the better matte is crisp
    assert "escalation" not in results[0].meta


def test_an_escalated_image_keeps_the_better_providers_matte_or_with_keep_surer_the_surer(fakes):
    photos = [photo(i) for i in range(N)]
    always = rmbg.cascade(photos, "fake-own", "fake-blurry", share=0.3, cache=None)
    assert [r.provider for r in always[7:]] == ["fake-blurry"] * 3
    surer = rmbg.cascade(photos, "fake-own", "fake-blurry", share=0.3, keep="surer", cache=None)
    assert [r.provider for r in surer] == ["fake-own"] * N and fakes["blurry"].seen == [9, 8, 7] * 2
    assert "fake-own's matte kept, surer" in surer[9].meta["escalation"]
    with pytest.raises(InvalidRequestError):
        rmbg.cascade(photos, "fake-own", "fake-blurry", keep="best")


def test_cli_keeps_the_first_output_where_it_was_surer(fakes, photos, capsys):
    argv = ["remove", "in", "-o", "out", "-p", "fake-own", "--escalate", "fake-blurry", "--escalate-share", "0.2"]
    assert main([*argv, "--escalate-keep", "surer"]) == 0
    assert (
        "2 of 10 escalated to fake-blurry (at most 20%); escalations cost $0; 0 kept fake-blurry's matte, 2 kept "
        in (capsys.readouterr().out)
    )
    rows = [r for r in manifest(photos / "out") if r["output"] == "p9.png"]
    assert [r["provider"] for r in rows] == ["fake-own", "fake-own"]
    assert rows[1]["error"].startswith("escalated to fake-blurry, its matte less sure")
    alpha = np.asarray(Image.open(photos / "out" / "p9.png"))[..., 3]
    assert 160 in alpha  # the first matte's soft columns: not overwritten


def test_cascade_below_a_confidence(fakes):
    photos = [photo(i) for i in range(N)]
    conf = [float(r.meta["confidence"]) for r in rmbg.cascade(photos, "fake-own", "fake-crisp", share=0, cache=None)]
    cut = sorted(conf)[4]  # strictly under it: the four least sure
    results = rmbg.cascade(photos, "fake-own", "fake-crisp", below=cut, cache=None)
    assert [i for i, r in enumerate(results) if r.provider == "fake-crisp"] == [6, 7, 8, 9]


def test_a_paid_escalation_stops_at_the_cap_and_keeps_the_free_results(fakes):
    photos = [photo(i) for i in range(N)]
    results = rmbg.cascade(photos, "fake-own", "fake-paid", share=0.5, max_cost="0.025", cache=None)
    # $0.01 a call, each held at its bound until the first has settled: two fit $0.025
    assert fakes["paid"].seen == [9, 8]
    assert [r.provider for r in results[5:]] == ["fake-own"] * 3 + ["fake-paid"] * 2
    assert all(r.meta["escalation"].startswith("not escalated: the budget was reached") for r in results[5:8])
    assert sum(r.cost.usd for r in results) == Decimal("0.02")


def test_a_failing_escalation_keeps_the_free_result_and_the_rest_go_on(fakes):
    failing = PaidCrisp(fail={9})
    rmbg.register("fake-paid", lambda **_: failing)
    results = rmbg.cascade([photo(i) for i in range(N)], "fake-own", "fake-paid", share=0.3, cache=None)
    assert failing.seen == [9, 8, 7]
    assert results[9].provider == "fake-own" and "fake-paid failed" in results[9].meta["escalation"]
    assert [r.provider for r in results[7:9]] == ["fake-paid"] * 2


def test_remove_background_escalates_one_image_under_its_threshold(fakes):
    sure = rmbg.remove_background(photo(0), "fake-own", escalate="fake-crisp", escalate_below=0.5, cache=None)
    unsure = rmbg.remove_background(photo(9), "fake-own", escalate="fake-crisp", escalate_below=0.9, cache=None)
    assert sure.provider == "fake-own" and float(sure.meta["confidence"]) >= 0.5
    assert unsure.provider == "fake-crisp" and fakes["crisp"].seen == [9]
    assert unsure.meta["escalation"].startswith("escalated from fake-own")


# --- the command line --------------------------------------------------------------------------


@pytest.fixture
def photos(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    for i in range(N):
        photo(i).save(tmp_path / "in" / f"p{i}.png")
    return tmp_path


def manifest(out: Path) -> list[dict]:
    with open(out / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def made_by(out: Path) -> dict[str, str]:
    """Each output's provider by its current (last) manifest row."""
    return {r["output"]: r["provider"] for r in manifest(out) if r["status"] == "done"}


def test_cli_escalates_the_share_and_the_manifest_says_who_made_each(fakes, photos, capsys):
    code = main(["remove", "in", "-o", "out", "-p", "fake-own", "--escalate", "fake-crisp", "--escalate-share", "0.3"])
    assert code == 0
    out = capsys.readouterr().out
    assert (
        "3 of 10 escalated to fake-crisp (at most 30%); escalations cost $0; 3 kept fake-crisp's matte, 0 kept " in out
    )
    assert made_by(photos / "out") == {f"p{i}.png": "fake-own" for i in range(7)} | {
        f"p{i}.png": "fake-crisp" for i in (7, 8, 9)
    }
    assert len(manifest(photos / "out")) == 13  # ten first rows, three escalations
    crisp = np.asarray(Image.open(photos / "out" / "p9.png"))[..., 3]
    assert set(np.unique(crisp)) == {0, 255}  # the better matte was written over the free one


def test_cli_escalate_below_and_flag_checks(fakes, photos, capsys):
    assert (
        main(["remove", "in", "-o", "o1", "-p", "fake-own", "--escalate", "fake-crisp", "--escalate-below", "1"]) == 0
    )
    assert "10 of 10 escalated to fake-crisp (confidence under 1)" in capsys.readouterr().out
    assert main(["remove", "in", "-o", "o2", "-p", "fake-own", "--escalate-share", "0.3"]) == 2
    assert "go with --escalate BETTER" in capsys.readouterr().err
    assert main(["remove", "in", "-o", "o3", "-p", "fake-own", "--escalate", "fake-crisp",
                 "--escalate-share", "0.3", "--escalate-below", "0.5"]) == 2  # fmt: skip
    assert main(["remove", "in", "-o", "o4", "-p", "fake-own", "--escalate", "fake-crisp",
                 "--escalate-share", "1.5"]) == 2  # fmt: skip


def test_cli_paid_escalation_needs_yes_and_prints_the_estimate_from_the_share(fakes, photos, capsys):
    assert (
        main(["remove", "in", "-o", "out", "-p", "fake-own", "--escalate", "fake-paid", "--escalate-share", "0.3"]) == 2
    )
    err = capsys.readouterr().err
    assert "Estimated cost for fake-paid (escalated at most): 3 images x $0.0100 = $0.0300" in err
    assert "--yes" in err and fakes["own"].seen == [] and not (photos / "out").exists()


def test_cli_escalate_below_with_u2netp_first_adds_the_measured_expected_cost_and_still_refuses():
    """--escalate-below estimates as if every image went (that is what needs --yes or --max-cost); with
    u2netp first it adds the expected cost from rmbg.confidence.MEASURED_UNDER (74 % under 0.6)."""

    class U2netpNamed(Own):
        id = "u2netp"  # only its id matters here: nothing runs before the gate

    estimate = "Estimated cost for fake-paid (escalated at most): 10 images x $0.0100 = $0.1000 (price table)\n"
    refused = "This run is paid: pass --yes to accept the estimate, or --max-cost USD to cap the spending.\n"
    err = io.StringIO()
    assert escalation_gate(10, U2netpNamed(), PaidCrisp(), None, False, None, err, 0.6) is False
    assert err.getvalue() == (
        f"{estimate}Expected cost for fake-paid: about 74 % of images escalate at 0.6 (measured on DAVIS 2016 "
        "video frames with u2netp first, docs/cascade.md): $0.0740 ($0.0100 x 0.74 x 10 images; the estimate "
        f"above is the most)\n{refused}"
    )
    err = io.StringIO()
    assert escalation_gate(10, U2netpNamed(), PaidCrisp(), None, False, Decimal("0.05"), err, 0.6) is True
    assert err.getvalue().startswith(estimate) and "Expected cost" in err.getvalue()
    for free, below in ((Own(), 0.6), (U2netpNamed(), 0.95)):  # another first model; above 0.9: not measured
        err = io.StringIO()
        assert escalation_gate(10, free, PaidCrisp(), None, False, None, err, below) is False
        assert err.getvalue() == estimate + refused


def test_cli_cap_reached_mid_run_keeps_the_free_results_and_names_them(fakes, photos, capsys):
    argv = ["remove", "in", "-o", "out", "-p", "fake-own", "--escalate", "fake-paid", "--escalate-share", "0.5"]
    assert main([*argv, "--max-cost", "0.025"]) == 0
    out = capsys.readouterr().out
    assert fakes["paid"].seen == [9, 8]
    assert "2 of 10 escalated to fake-paid (at most 50%); escalations cost $0.0200" in out
    assert "Not escalated: budget (3), fake-own's result kept: in/p7.png, in/p6.png, in/p5.png" in out
    assert [made_by(photos / "out")[f"p{i}.png"] for i in range(5, 10)] == ["fake-own"] * 3 + ["fake-paid"] * 2
    assert [r["status"] for r in manifest(photos / "out")].count("not_run") == 0  # the free rows stay current


def test_cli_failed_escalation_keeps_the_free_output_and_fails_the_run(fakes, photos, capsys):
    failing = PaidCrisp(fail={8})
    rmbg.register("fake-paid", lambda **_: failing)
    argv = ["remove", "in", "-o", "out", "-p", "fake-own", "--escalate", "fake-paid", "--escalate-share", "0.3", "-y"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "2 of 10 escalated" in out and "Escalation failed, fake-own's result kept (1):" in out
    rows = [r for r in manifest(photos / "out") if r["output"] == "p8.png"]
    assert [(r["provider"], r["status"]) for r in rows] == [("fake-own", "done"), ("fake-paid", "failed")]
    assert rows[1]["error"].startswith("escalation failed, the output is the first provider's")
    assert (photos / "out" / "p8.png").is_file()


def test_cli_a_stopped_run_escalates_no_more_and_says_which_were_left(fakes, photos, capsys):
    stopping = PaidCrisp(stop_after=1)
    rmbg.register("fake-paid", lambda **_: stopping)
    argv = ["remove", "in", "-o", "out", "-p", "fake-own", "--escalate", "fake-paid", "--escalate-share", "0.3", "-y"]
    assert main([*argv, "-j", "1"]) == 130  # one call at a time: none is in flight beside the one that stops
    out = capsys.readouterr().out
    assert stopping.seen == [9] and "1 of 10 escalated" in out
    assert "Not escalated: interrupted (2), fake-own's result kept: in/p8.png, in/p7.png" in out


def test_cli_u2netp_first_then_a_better_provider(u2netp_path, fakes, tmp_path, monkeypatch, capsys):
    repo = Path(__file__).resolve().parents[1] / "data" / "davis2016-sample" / "images"
    monkeypatch.chdir(tmp_path)
    names = ["dog_00000.jpg", "libby_00000.jpg", "cows_00000.jpg", "goat_00000.jpg"]
    argv = ["remove", *[str(repo / n) for n in names], "-o", "out", "-p", "u2netp", "--escalate", "fake-crisp"]
    assert main([*argv, "--escalate-share", "0.5", "--mask-only"]) == 0
    rows = manifest(tmp_path / "out")
    free = {r["output"]: float(r["seconds"]) for r in rows if r["provider"] == "u2netp"}
    assert len(free) == 4 and len(fakes["crisp"].seen) == 2
    assert "2 of 4 escalated to fake-crisp" in capsys.readouterr().out


def test_cli_escalation_to_runware_through_its_fake_server(fakes, photos, monkeypatch, capsys):
    from tests.fakes.runware import TEST_KEY, RunwareFake

    with RunwareFake() as fake:
        monkeypatch.setenv("RMBG_RUNWARE_URL", fake.url)
        monkeypatch.setenv("RUNWARE_API_KEY", TEST_KEY)
        fake.inject("server-error", times=1)  # the first escalation: a Runware 5xx may have been billed
        argv = ["remove", "in", "-o", "out", "-p", "fake-own", "--escalate", "runware-rembg"]
        code = main([*argv, "--escalate-share", "0.3", "--max-cost", "1", "-j", "1"])
        posts = [c for c in fake.calls if c.method == "POST"]
    out = capsys.readouterr().out
    assert code == 1 and len(posts) == 3  # the failed call is not sent again
    assert "2 of 10 escalated to runware-rembg (at most 30%); escalations cost $0.0039; 2 kept runware-rembg's" in out
    rows = {r["output"]: r for r in manifest(photos / "out")}  # the last row of each output
    assert rows["p9.png"]["provider"] == "runware-rembg" and rows["p9.png"]["status"] == "failed"
    assert rows["p9.png"]["cost_source"] == "may have been billed"
    assert [rows[f"p{i}.png"]["cost_usd"] for i in (7, 8)] == ["0.0013", "0.0013"]


def test_cli_cascade_is_refused_on_ray_and_resumes_only_with_the_same_escalation(fakes, photos, capsys):
    argv = ["remove", "in", "-o", "out", "-p", "fake-own", "--escalate", "fake-crisp"]
    assert main([*argv, "--engine", "ray"]) == 2
    assert "--escalate runs on this machine" in capsys.readouterr().err
    assert main([*argv, "--escalate-share", "0.3"]) == 0
    capsys.readouterr()
    assert main([*argv, "--escalate-share", "0.3"]) == 0  # the same command: everything skipped, nothing escalated
    assert "0 of 0 escalated" in capsys.readouterr().out and fakes["crisp"].seen == [9, 8, 7]
    assert main([*argv, "--escalate-share", "0.5"]) == 2  # other outputs would be kept as made: refused
    assert "were made with other options" in capsys.readouterr().err
