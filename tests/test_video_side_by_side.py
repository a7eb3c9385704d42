"""The Video tab's side by side checks both sides before either runs: a side that cannot run is
refused with nothing sent to the other side's vendor, no frame through its model, nothing paid.

Hosted sides are the fake fal and Runware video services (real HTTP servers on 127.0.0.1,
tests/fakes), which record every request; the local side is a counting threshold model."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest

from rmbg.errors import BudgetError, InvalidRequestError
from rmbg.webapp import AppConfig, Keys
from rmbg.webapp.catalog import SessionKeyMissing
from rmbg.webapp.context import App
from rmbg.webapp.look import OutputStore
from rmbg.webapp.video.clips import Upload
from rmbg.webapp.video.compare import BothFailed, compare
from tests.fakes.fal import TEST_KEY as FAL_KEY
from tests.fakes.fal_video import FalVideoFake
from tests.fakes.runware import TEST_KEY as RUNWARE_KEY
from tests.fakes.runware_video import RunwareVideoFake
from tests.video_clips import Threshold, davis, write_clip


@contextlib.contextmanager
def counting_model():
    """One Threshold instance behind the registered id "threshold": its `calls` count the frames it cut."""
    from rmbg import registry
    from rmbg.declarations import ProviderInfo

    model = Threshold()
    registry.register(
        "threshold", lambda **_: model, ProviderInfo("threshold", model.label, "local", lambda **_: model)
    )
    try:
        yield model
    finally:
        registry.unregister("threshold")


@pytest.fixture
def vendors():
    with FalVideoFake() as fal, RunwareVideoFake() as runware:
        yield fal, runware


def app_for(tmp_path, vendors, cap: str = "5") -> App:
    fal, runware = vendors
    providers = {"fal-bria-video": {"base_url": fal.url}, "runware-bria-video": {"base_url": runware.url}}
    config = AppConfig(provider_config=providers, cap_usd=Decimal(cap), allow_server_keys=False)
    return App.create(config, store=OutputStore(tmp_path / "out"), cache=None)


def run(app: App, clip, ids: list[str], keys: Keys) -> None:
    compare(app, Upload(clip, clip.name), ids, keys, session_id="visitor")


@pytest.fixture
def clip(tmp_path):
    return write_clip(tmp_path / "dog.mp4", davis("dog", 6))


def test_b_without_a_key_is_refused_before_a_paid_a_is_sent(tmp_path, vendors, clip):
    fal, runware = vendors
    app = app_for(tmp_path, vendors)
    with pytest.raises(SessionKeyMissing):
        run(app, clip, ["fal-bria-video", "runware-bria-video"], Keys(fal=FAL_KEY))
    assert fal.calls == [] and runware.calls == []  # not even fal's upload
    assert app.ledger.session_spent("visitor") == 0


def test_b_over_the_cap_is_refused_before_a_local_a_runs_a_frame(tmp_path, vendors, clip):
    fal, runware = vendors
    app = app_for(tmp_path, vendors, cap="0.01")  # runware's 1 billed second holds 2 x $0.14
    with counting_model() as model, pytest.raises(BudgetError, match="Spending cap reached"):
        run(app, clip, ["threshold", "runware-bria-video"], Keys(runware=RUNWARE_KEY))
    assert model.calls == 0 and runware.calls == []


def test_two_paid_sides_that_fit_alone_but_not_together_are_refused_before_either(tmp_path, vendors, clip):
    """fal holds 2 x $0.042 and Runware 2 x $0.14 for a clip billed 1 s: $0.364 together, over a $0.30 cap."""
    fal, runware = vendors
    app = app_for(tmp_path, vendors, cap="0.30")
    keys = Keys(fal=FAL_KEY, runware=RUNWARE_KEY)
    with pytest.raises(BudgetError, match="Spending cap reached"):
        run(app, clip, ["fal-bria-video", "runware-bria-video"], keys)
    assert fal.calls == [] and runware.calls == []
    assert app.ledger.session_spent("visitor") == 0


def test_b_over_its_vendors_longest_clip_is_refused_before_a_runs(tmp_path, vendors):
    """Runware takes clips of up to 30 s: a 31 s clip (31 frames at 1 fps) is refused on its header."""
    fal, runware = vendors
    app = app_for(tmp_path, vendors)
    long_clip = write_clip(tmp_path / "long.mp4", davis("dog", 31, (64, 48)), rate=1)
    with counting_model() as model, pytest.raises(InvalidRequestError, match="takes clips of up to 30 s"):
        run(app, long_clip, ["threshold", "runware-bria-video"], Keys(runware=RUNWARE_KEY))
    assert model.calls == 0 and runware.calls == []


def test_when_both_sides_can_run_both_run_and_each_is_paid_once(tmp_path, vendors, clip):
    fal, runware = vendors
    app = app_for(tmp_path, vendors, cap="1")
    with counting_model() as model:
        compare(app, Upload(clip, clip.name), ["threshold", "fal-bria-video"], Keys(fal=FAL_KEY), session_id="v")
    assert model.calls == 6
    assert len([c for c in fal.calls if c.method == "POST" and c.path.endswith("/v3")]) == 1
    assert app.ledger.session_spent("v") == Decimal("0.042")


# --- a side that fails as it runs: the other is shown, the failed one says why -----------------------------------

RUNWARE_LABEL = "Runware · Bria video background removal"
SERVER_ERROR = (
    "runware-bria-video: is unavailable (HTTP 500): Internal server error (internalServerError). Try again later."
)


def fast(app: App) -> App:
    """The app's hosted video services without back-off between attempts (a dropped poll is tried again at once)."""
    from dataclasses import replace

    from rmbg.providers.hosted.fal_video import VIDEO_RETRY

    quick = replace(VIDEO_RETRY, base_delay=0.0, max_delay=0.0, jitter=0.0, poll_interval=0.05, deadline_s=30.0)
    for settings in app.config.provider_config.values():
        settings["retry"] = quick
    return app


def paid_at(fal: FalVideoFake, runware: RunwareVideoFake) -> tuple[int, int]:
    """The paid requests each fake received: fal's submits, Runware's removeBackground tasks."""
    submits = [c for c in fal.calls if c.method == "POST" and c.path.endswith("/v3")]
    tasks = [c for c in runware.calls if c.path == "/v1" and b"removeBackground" in c.body]
    return len(submits), len(tasks)


def test_a_side_that_fails_after_it_was_sent_leaves_the_paid_side_shown_and_says_what_it_counted(
    tmp_path, vendors, clip
):
    """Runware answers the paid task with a 5xx it does not document as unbilled: it may have been billed, so it is
    counted at its estimate and not sent again. Before, the whole comparison was an error and fal's clip, paid
    for, was thrown away; now fal's side is shown and plays, Runware's says why and what it was counted at, and
    the session's total (read from the ledger after both) holds both."""
    from tests.video_clips import decoded

    fal, runware = vendors
    runware.inject("server-error", op="task", times=9)
    app = fast(app_for(tmp_path, vendors))
    out = compare(
        app,
        Upload(clip, clip.name),
        ["fal-bria-video", "runware-bria-video"],
        Keys(fal=FAL_KEY, runware=RUNWARE_KEY),
        session_id="visitor",
    )
    assert paid_at(fal, runware) == (1, 1)  # each sent once: the one that may have been billed is not sent again
    left, right = out.previews
    assert right is None and len(decoded(left, alpha=True)[0]) == 6  # the paid side plays, frame by frame
    assert out.frames == 6
    assert [out.table[0][n] for n in (1, 4)] == ["6", "$0.0420 (estimated)"]
    assert out.table[1][:3] == [RUNWARE_LABEL, "failed", ""]
    assert out.table[1][4] == "$0.1400 counted (failed call)"
    failed, total = out.agreement.split("  \n")
    assert failed == (
        f"**B ({RUNWARE_LABEL}) failed:** {SERVER_ERROR} It may have reached the provider and been billed, so it was "
        "not sent again. $0.1400 was counted against the spending caps for it."
    )
    assert total == "session: $0.1820 hosted (cap $5.00)"
    assert app.ledger.session_spent("visitor") == Decimal("0.182")


def test_a_local_side_is_shown_when_the_hosted_side_drops_its_connection_after_fal_took_the_clip(
    tmp_path, vendors, clip
):
    """fal took the clip (a request id), then every poll of its status drops: fal may bill it, so it is counted at
    its estimate, cancelled, and not sent again; the local model's side is shown as it ran."""
    fal, runware = vendors
    fal.inject("drop", op="status", times=99)
    app = fast(app_for(tmp_path, vendors))
    with counting_model() as model:
        out = compare(app, Upload(clip, clip.name), ["threshold", "fal-bria-video"], Keys(fal=FAL_KEY), session_id="v")
    assert model.calls == 6 and paid_at(fal, runware) == (1, 0)
    assert out.previews[0] is not None and out.previews[1] is None and out.frames == 6
    assert out.table[0][1] == "6" and out.table[0][4] == "free (local)"
    assert out.table[1][1:] == ["failed", "", out.table[1][3], "$0.0420 counted (failed call)"]
    failed, total = out.agreement.split("  \n")
    assert failed.startswith("**B (fal.ai · Bria video background removal (VRMBG 3.0)) failed:** fal-bria-video: ")
    assert "The provider accepted the request (request " in failed and "and may bill it." in failed
    assert failed.endswith(" $0.0420 was counted against the spending caps for it.")
    assert total == "session: $0.0420 hosted (cap $5.00)" and app.ledger.session_spent("v") == Decimal("0.042")


def test_when_both_sides_fail_the_error_names_both_reasons_and_what_was_counted(tmp_path, vendors, clip):
    """fal refuses every submit with 429 (not billed: nothing counted), Runware answers 5xx (may have been billed:
    counted). One error, both reasons in it, and the sum counted on it."""
    fal, runware = vendors
    fal.inject("rate-limit", op="submit", times=99)
    runware.inject("server-error", op="task", times=9)
    app = fast(app_for(tmp_path, vendors))
    with pytest.raises(BothFailed) as caught:
        compare(
            app,
            Upload(clip, clip.name),
            ["fal-bria-video", "runware-bria-video"],
            Keys(fal=FAL_KEY, runware=RUNWARE_KEY),
            session_id="visitor",
        )
    said = str(caught.value)
    assert said.startswith("Neither side could be made. A (fal.ai · Bria video background removal (VRMBG 3.0)): ")
    assert "fal-bria-video: " in said and "429" in said
    assert said.endswith(
        f" B ({RUNWARE_LABEL}): {SERVER_ERROR} It may have reached the provider and been billed, so it was not sent "
        "again. $0.1400 was counted against the spending caps for it."
    )
    assert caught.value.counted_usd == Decimal("0.14") and app.ledger.session_spent("visitor") == Decimal("0.14")
    assert paid_at(fal, runware)[1] == 1
