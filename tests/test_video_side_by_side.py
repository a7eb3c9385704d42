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
from rmbg.webapp.video.compare import compare
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
