"""ZeroGPU's daily quota as the app meets it (rmbg.webapp.zerogpu): what each GPU call asks for,
computed from its own arguments, and a refusal turned into a visitor's words with the CPU
alternative; and the tests' stand-in `spaces` (tests/support/zerogpu), which evaluates a callable
duration with the call's arguments, keeps each visitor's quota and refuses with ZeroGPU's own
titles and messages (spaces.zero.client.schedule)."""

from __future__ import annotations

import importlib.util
import json
import time
from datetime import timedelta
from pathlib import Path

import pytest

from rmbg.webapp import zerogpu
from rmbg.webapp.catalog import Recipe
from rmbg.webapp.zerogpu import GpuRefused, mattes_seconds, refine_seconds, refusal_of
from tests.u2netp_fixture import u2netp_path  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _nothing_held():
    zerogpu.forget_held()
    yield
    zerogpu.forget_held()


def test_one_photo_of_the_default_gpu_models_asks_for_at_most_15_seconds_even_before_their_load():
    for model in ("birefnet", "rmbg-2.0", "birefnet-lite"):
        first = mattes_seconds(Recipe(model, {}), ["photo"])
        zerogpu.mark_held(model)
        then = mattes_seconds(Recipe(model, {}), ["photo"])
        assert then < first <= 15, model
    assert mattes_seconds(Recipe("birefnet", {}), ["photo"]) == 4  # 1 s + 3 s margin: 30 photos in 120 s
    assert 120 // 15 >= 8  # an unsigned visitor's 2 minutes hold the 8 photos at the most asked


def test_a_clip_group_asks_for_its_frames_and_no_ask_passes_the_maximum():
    zerogpu.mark_held("birefnet-lite")
    assert mattes_seconds(Recipe("birefnet-lite", {}), ["frame"] * 16) == 11  # 16 x 0.5 s + 3 s
    assert mattes_seconds(Recipe("birefnet-hr", {}), ["frame"] * 100) == zerogpu.MAX_S
    assert mattes_seconds(Recipe("hf:someone/model", {}), ["photo"]) == 20  # unknown: 2 s + 15 s load + 3 s


def test_refinement_asks_for_each_step_of_its_chain_with_the_loads_the_worker_lacks():
    chain = type("Chain", (), {"id": "sam2-pick+vitmatte"})()
    assert refine_seconds(chain, None, None) == 15  # (1 + 6) + (1 + 4) + 3
    zerogpu.mark_held("sam2-pick")
    zerogpu.mark_held("vitmatte")
    assert refine_seconds(chain, None, None) == 5


class Refusal(Exception):
    """What gradio's gr.Error carries: a title and a message."""

    def __init__(self, title: str, message: str):
        super().__init__(message)
        self.title, self.message = title, message


def test_a_quota_refusal_says_what_is_left_when_it_refills_that_signing_in_gives_more_and_the_cpu_way():
    said = (
        "You have exceeded your ZeroGPU quota (8s requested vs. 5s left). Try again in 23:41:10. "
        "Authenticate with a Hugging Face token for more quota - https://huggingface.co/settings/tokens"
    )
    refused = refusal_of(Refusal("ZeroGPU quota exceeded", said))
    assert isinstance(refused, GpuRefused)
    assert (refused.asked, refused.left, refused.wait, refused.wait_seconds) == (8, 5, "23:41:10", 85270)
    words = str(refused)
    assert "this photo needs 8 s and 5 s are left" in words
    assert "It refills in 23:41:10" in words
    assert "from 2 to 5 minutes a day" in words
    assert f"“{zerogpu.CPU_BUTTON}”" in words and f"provider {refused.cpu_provider} with cpu true" in words


def test_a_refusal_without_figures_and_the_other_titles_are_worded_too():
    spent = refusal_of(Refusal("ZeroGPU quota exceeded", "Space app has reached its GPU limit. Try re-running"))
    assert spent is not None and spent.left is None and "used up for now" in str(spent)
    assert "refills within a day" in str(spent)
    busy = refusal_of(Refusal("ZeroGPU client error", "No GPU was available"))
    assert busy is not None and "No shared GPU was free" in str(busy) and "in a minute" in str(busy)
    long = refusal_of(Refusal("ZeroGPU illegal duration", "The requested GPU duration (400s) is larger than"))
    assert long is not None and "longer than one go may last" in str(long)
    assert refusal_of(Refusal("ZeroGPU worker error", "ModelUnavailableError")) is None  # a failure, not a refusal
    assert refusal_of(ValueError("x")) is None


def test_the_quota_line_says_whose_quota_a_photo_spends():
    assert "not signed in" in zerogpu.quota_line(None, 4) and "about 30 photos" in zerogpu.quota_line(None, 4)
    assert "signed in as **ada**" in zerogpu.quota_line("ada", 4)


# --- the stand-in `spaces` -----------------------------------------------------------------------


@pytest.fixture
def spaces(tmp_path, monkeypatch):
    """The stand-in, loaded fresh under a name of its own, on ZeroGPU, logging to asks.jsonl."""
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.setenv("FAKE_ZEROGPU_LOG", str(tmp_path / "asks.jsonl"))
    monkeypatch.setenv("FAKE_ZEROGPU_CHARGE", "asked")
    monkeypatch.delenv("FAKE_ZEROGPU_SPENT", raising=False)
    path = ROOT / "tests" / "support" / "zerogpu" / "spaces" / "__init__.py"
    spec = importlib.util.spec_from_file_location("fake_zerogpu_quota", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def asks(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "asks.jsonl").read_text().splitlines()]


def double(values: list[int]) -> list[int]:
    return [2 * v for v in values]


@pytest.mark.uses("gradio")
def test_the_stand_in_asks_what_the_callable_says_for_the_call_and_refuses_as_zerogpu_once_it_is_spent(
    spaces, tmp_path
):
    import gradio as gr

    gpu = spaces.GPU(duration=lambda values: 25 * len(values))(double)
    assert gpu([1, 2]) == [2, 4]  # 50 s asked
    assert gpu([3, 4]) == [6, 8]  # 100 s charged: 20 s left of 120
    with pytest.raises(gr.Error) as refused:
        gpu([5])  # 25 s asked
    assert refused.value.title == "ZeroGPU quota exceeded"
    assert refused.value.message == "Space app has reached its GPU limit. " + spaces.EXAMPLES_RETRY_MESSAGE
    logged = asks(tmp_path)
    assert [(a["duration"], a["left"]) for a in logged] == [(50, 120), (50, 70), (25, 20)]
    assert logged[-1]["refused"] == "ZeroGPU quota exceeded" and "worker" not in logged[-1]


@pytest.mark.uses("gradio")
def test_a_visitor_with_a_token_is_told_what_is_left_and_when_it_refills(spaces, monkeypatch):
    import gradio as gr

    monkeypatch.setattr(spaces, "_visitor", lambda: ("free", "free:ada", "free:ada", False))
    spaces.QUOTAS.charge("free:ada", 296, time.time() - 3600)  # their day began an hour ago
    with pytest.raises(gr.Error) as refused:
        spaces.GPU(duration=timedelta(seconds=8))(double)([1])
    assert refused.value.message == (
        f"You have exceeded your free ZeroGPU quota (8s requested vs. 4s left). Try again in {timedelta(hours=23)}. "
    )
    turned = refusal_of(refused.value)
    assert turned is not None and (turned.left, turned.wait_seconds) == (4, 23 * 3600)


@pytest.mark.uses("gradio")
def test_an_ask_over_the_longest_call_is_an_illegal_duration_and_off_zerogpu_nothing_is_wrapped(spaces, monkeypatch):
    import gradio as gr

    with pytest.raises(gr.Error) as refused:
        spaces.GPU(duration=spaces.MAX_S + 1)(double)([1])
    assert refused.value.title == "ZeroGPU illegal duration"
    assert (
        refused.value.message == f"The requested GPU duration ({spaces.MAX_S + 1}s) is larger than the maximum allowed"
    )
    monkeypatch.setenv("SPACES_ZERO_GPU", "false")
    assert spaces.GPU(duration=10)(double) is double


@pytest.mark.slow  # the whole page built, with U2-Net-p loaded at import: about 40 s on 2 busy cores
@pytest.mark.uses("gradio")
def test_a_page_visitor_whose_gpu_time_is_spent_is_told_and_served_on_the_cpu_in_remove_and_compare(
    u2netp_path,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """The page's own events as gradio calls them, on ZeroGPU (the stand-in), for a visitor with no
    GPU time left: Remove keeps the page and says why; "Run on the CPU instead" takes the same form
    (the photo already uploaded) and cuts it out here, with no ZeroGPU call; Compare says why in the
    provider's row, and its CPU checkbox runs the same providers here."""
    from PIL import Image

    import app
    from rmbg.webapp import AppConfig, Session, guard
    from tests.support.app import EXAMPLE

    monkeypatch.setenv("RMBG_U2NETP_PATH", str(u2netp_path))
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.setenv("FAKE_ZEROGPU_LOG", str(tmp_path / "asks.jsonl"))
    monkeypatch.setenv("FAKE_ZEROGPU_SPENT", "anonymous:ip=120")  # this visitor's day is spent
    path = ROOT / "tests" / "support" / "zerogpu" / "spaces" / "__init__.py"
    spec = importlib.util.spec_from_file_location("fake_zerogpu_page", path)
    spaces = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(spaces)
    monkeypatch.setattr(guard, "local_mattes", spaces.GPU(duration=mattes_seconds)(guard._local_mattes))
    monkeypatch.setattr(guard, "ZEROGPU", True)
    demo = app.build_demo(AppConfig())
    fns = {f.api_name: f.fn for f in demo.fns.values()}
    components = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    assert components["run-cpu"].visible and "not signed in" in components["zerogpu-quota"].value

    refused = fns["page_remove"](Session(), str(EXAMPLE), "u2netp")  # (state, pair, download, line, message)
    message = refused[4]["value"]
    assert message.startswith("**Could not do that:** The free GPU time") and "CPU" in message
    assert [a["refused"] for a in asks(tmp_path)] == ["ZeroGPU quota exceeded"]

    _state, _pair, download, line, cleared = fns["page_remove_cpu"](Session(), str(EXAMPLE), "u2netp")
    assert cleared["visible"] is False and "U2-Net-p" in line
    assert len(asks(tmp_path)) == 1  # no second ZeroGPU call
    with Image.open(download["value"]) as cutout:
        low, high = cutout.getchannel("A").getextrema()
    assert low < 30 and high > 225

    other = str(ROOT / "examples" / "dog.jpg")  # a photo not cut out yet (the matte cache would answer)
    _state, gallery, table, _agreement, *_ = fns["compare"](Session(), other, ["u2netp"])  # Compare
    assert gallery == [] and table[0][0] == "u2netp" and "used up for now" in table[0][3]  # the refusal, its row
    assert zerogpu.CPU_BOX in table[0][3]
    _state, gallery, table, _agreement, *_ = fns["compare"](Session(), other, ["u2netp"], cpu=True)  # ticked
    assert len(gallery) == 1 and table[0][3].startswith("ok")
    assert len(asks(tmp_path)) == 2  # the refused Compare asked; its CPU run did not

    from tests.video_clips import davis, write_clip

    assert components["video-run-cpu"].visible
    clip = str(write_clip(tmp_path / "clip.mp4", davis("dog", 6)))
    *_, said = fns["page_video"](clip, None, "u2netp")  # (preview, download, cost, message)
    assert "The free GPU time" in said["value"] and "CPU" in said["value"]
    assert len(asks(tmp_path)) == 3  # the clip's first group of frames asked, and was refused
    preview, download, cost, cleared = fns["page_video_cpu"](clip, None, "u2netp")  # "Run on the CPU instead"
    assert cleared["visible"] is False and "6 frames" in cost and preview
    assert len(asks(tmp_path)) == 3  # the clip ran here, with no ZeroGPU call
