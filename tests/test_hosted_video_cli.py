"""`rmbg video --provider fal-bria-video`: a paid run needs --yes or --max-cost, prints its
estimate first, caps the run, and never sends again a clip whose request may have been
billed (unless --retry-uncertain)."""

from __future__ import annotations

import pytest

from rmbg.cli.main import main
from rmbg.cli.video import uncertain_marker
from tests.fakes.fal import TEST_KEY as FAL_KEY
from tests.fakes.fal_video import FalVideoFake
from tests.test_hosted_video import clip  # noqa: F401
from tests.video_clips import decoded


@pytest.fixture
def fal(monkeypatch):
    with FalVideoFake(polls_before_done=0) as fake:
        monkeypatch.setenv("FAL_KEY", FAL_KEY)
        monkeypatch.setenv("RMBG_FAL_QUEUE_URL", fake.url)
        yield fake


def submits(fake) -> int:
    return sum(c.method == "POST" and c.path.endswith("/v3") for c in fake.calls)


def test_a_paid_run_needs_yes_or_a_cap_and_prints_its_estimate(fal, clip, tmp_path, capsys):
    out = tmp_path / "out.webm"
    assert main(["video", str(clip), "-o", str(out), "--provider", "fal-bria-video"]) == 2
    err = capsys.readouterr().err
    assert "Estimated cost for fal-bria-video: 1 clip(s), 1 billed s x $0.042/s = $0.0420" in err
    assert "pass --yes" in err and fal.calls == [] and not out.exists()
    assert main(["video", str(clip), "-o", str(out), "--provider", "fal-bria-video", "--max-cost", "1"]) == 0
    printed = capsys.readouterr().out
    assert "12 frames" in printed and "$0.0420 (estimated)" in printed and submits(fal) == 1
    frames, _ = decoded(out, alpha=True)
    assert len(frames) == 12 and frames[0][..., 3].std() > 20
    assert main(["video", str(clip), "-o", str(out), "--provider", "fal-bria-video", "--yes"]) == 0  # done: skipped
    assert submits(fal) == 1


def test_the_cap_refuses_a_clip_before_it_is_sent(fal, clip, tmp_path, capsys):
    code = main(["video", str(clip), "-o", str(tmp_path / "o.webm"), "-p", "fal-bria-video", "--max-cost", "0.01"])
    assert code == 1 and "budget of $0.01 would be passed" in capsys.readouterr().err and fal.calls == []


def test_a_clip_that_may_have_been_billed_is_not_sent_again(fal, clip, tmp_path, capsys):
    out = tmp_path / "out.webm"
    run = ["video", str(clip), "-o", str(out), "--provider", "fal-bria-video", "--yes"]
    fal.inject("failed", op="submit")
    assert main(run) == 1
    assert "accepted the request" in capsys.readouterr().err and uncertain_marker(out).exists()
    assert main(run) == 1  # held back, not run
    assert "not sent again: its earlier request may have been billed" in capsys.readouterr().err
    assert submits(fal) == 1
    assert main([*run, "--retry-uncertain"]) == 0
    assert "may be billed twice" in capsys.readouterr().err
    assert submits(fal) == 2 and out.exists() and not uncertain_marker(out).exists()


def test_a_hosted_image_provider_is_refused_for_video(fal, clip, tmp_path, capsys):
    assert main(["video", str(clip), "-o", str(tmp_path / "o.webm"), "-p", "fal-bria", "--yes"]) == 2
    assert "one paid call per frame" in capsys.readouterr().err and fal.calls == []
