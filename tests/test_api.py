"""The public API: provider lookup, the matte cache, re-rendering, import hygiene."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import numpy as np
import pytest
from PIL import Image

import rmbg
from rmbg.cache import MatteCache, payer_scope
from rmbg.errors import ProviderResponseError, UnknownProviderError
from rmbg.providers.base import Provider
from rmbg.types import Cost
from tests.support.providers import CountingProvider, FreeLocal


def _image(w=16, h=8) -> Image.Image:
    red = np.tile(np.linspace(0, 255, w, dtype=np.uint8), (h, 1))
    return Image.fromarray(np.stack([red, np.full_like(red, 7), np.full_like(red, 9)], -1), "RGB")


def test_protocol_is_satisfied_structurally():
    assert isinstance(CountingProvider(), Provider)


def test_result_fields():
    prov = CountingProvider()
    res = rmbg.remove_background(_image(), prov)
    assert res.provider == "counting"
    assert res.image.mode == "RGBA" and res.alpha.mode == "L" and res.alpha.size == (16, 8)
    assert np.array_equal(np.asarray(res.alpha), np.asarray(_image().getchannel("R")))
    assert res.cost == Cost(Decimal("0.01"), "reported")
    assert res.seconds.model == 0.5 and res.seconds.total >= 0
    assert res.cached is False and res.meta["model"] == "test"


def test_same_image_same_provider_is_computed_and_billed_once():
    prov = CountingProvider()
    first = rmbg.remove_background(_image(), prov)
    second = rmbg.remove_background(_image(), prov, background="#00ff00", mask_only=False)
    third = rmbg.remove_background(_image().copy(), prov, mask_only=True)
    assert prov.calls == 1
    assert second.cached and third.cached
    assert second.cost.source == "free" and second.cost.usd == 0
    assert second.image.mode == "RGB" and third.image.mode == "L"
    assert np.array_equal(np.asarray(first.alpha), np.asarray(third.image))


def test_other_options_or_provider_run_again():
    rmbg.remove_background(_image(), CountingProvider(option=1))
    other = CountingProvider(option=2)
    rmbg.remove_background(_image(), other)
    renamed = CountingProvider(pid="counting-2")
    rmbg.remove_background(_image(), renamed)
    assert other.calls == 1 and renamed.calls == 1


def test_result_render_never_calls_the_provider():
    prov = CountingProvider()
    res = rmbg.remove_background(_image(), prov)
    on_blue = res.render(background="blue")
    mask = res.render(mask_only=True)
    assert prov.calls == 1
    assert on_blue.image.mode == "RGB" and on_blue.image.getpixel((0, 0)) == (0, 0, 255)
    assert mask.image.mode == "L"
    assert on_blue.encode("jpg")[:2] == b"\xff\xd8"


def test_cache_disabled():
    prov = CountingProvider()
    rmbg.remove_background(_image(), prov, cache=None)
    rmbg.remove_background(_image(), prov, cache=None)
    assert prov.calls == 2


@pytest.mark.parametrize("cache", ["yes", False, 0, {}])
def test_a_cache_that_is_none_of_the_three_is_refused_before_any_call(cache):
    """cache= is "default", None or a MatteCache: anything else was taken for the default cache (cache=False
    cached, cache="yes" too) without a word."""
    prov = CountingProvider()
    with pytest.raises(rmbg.InvalidRequestError, match='cache must be "default", None or a MatteCache'):
        rmbg.remove_background(_image(), prov, cache=cache)
    assert prov.calls == 0


def test_a_clip_smoothing_of_another_kind_is_refused_in_words(tmp_path):
    with pytest.raises(rmbg.InvalidRequestError, match="smooth must be True, False, None or a SmoothParams, not 'yes'"):
        rmbg.remove_video(tmp_path / "never-opened.mp4", FreeLocal(), smooth="yes")


def test_a_clip_is_never_written_over_by_its_own_cut_out(tmp_path, monkeypatch):
    """remove_video(clip, output=<the clip itself>, by any spelling of its path) is refused before anything is
    read, as `rmbg video` refuses it: the cut-out was written over the clip."""
    clip = tmp_path / "c.webm"
    clip.write_bytes(b"a clip's bytes")
    monkeypatch.chdir(tmp_path)
    for output in (clip, "c.webm", ["elsewhere.webm", tmp_path / "." / "c.webm"]):
        with pytest.raises(rmbg.InvalidRequestError, match=r"output names the clip itself \(c.webm\)"):
            rmbg.remove_video(str(clip), FreeLocal(), output=output)
    assert clip.read_bytes() == b"a clip's bytes" and not (tmp_path / "elsewhere.webm").exists()


def test_cache_is_bounded_by_bytes():
    cache = MatteCache(max_bytes=16 * 8 * 2)  # room for two 16x8 mattes
    prov = CountingProvider()
    for shade in (1, 2, 3):
        img = _image()
        img.putpixel((0, 0), (shade, 0, 0))
        rmbg.remove_background(img, prov, cache=cache)
    assert len(cache) == 2 and cache.nbytes == 256
    first = _image()
    first.putpixel((0, 0), (1, 0, 0))
    rmbg.remove_background(first, prov, cache=cache)  # evicted: runs again
    assert prov.calls == 4


def test_input_alpha_is_kept():
    img = _image().convert("RGBA")
    own = np.full((8, 16), 255, np.uint8)
    own[:, 8:] = 0
    img.putalpha(Image.fromarray(own, "L"))
    res = rmbg.remove_background(img, CountingProvider())
    assert np.asarray(res.alpha)[:, 8:].max() == 0
    assert np.array_equal(np.asarray(res.alpha)[:, :8], np.asarray(_image().getchannel("R"))[:, :8])
    ignored = rmbg.remove_background(img, CountingProvider(pid="x"), keep_input_alpha=False)
    assert np.asarray(ignored.alpha)[:, 8:].min() > 0


def test_a_matte_of_the_wrong_size_is_an_error():
    with pytest.raises(ProviderResponseError, match="returned a L matte of 3x3 for a 16x8 image"):
        rmbg.remove_background(_image(), CountingProvider(wrong_size=True))


def test_unknown_provider_lists_the_valid_ids():
    with pytest.raises(UnknownProviderError) as info:
        rmbg.get_provider("nope")
    assert "Unknown provider 'nope'" in str(info.value) and "rmbg-1.4" in str(info.value)


@pytest.mark.parametrize(
    "asked, meant",
    [
        ("birefnet-general", "birefnet"),  # rembg's session names for the same weights (ProviderInfo.known_as)
        ("birefnet-general-lite", "birefnet-lite"),
        ("bria-rmbg", "rmbg-1.4"),
        ("isnet-general-use", "isnet-general"),
        ("u2net", "u2netp"),  # spelt almost alike
        ("RMBG-1.4", "rmbg-1.4"),
        ("birefnet_lite", "birefnet-lite"),
        ("rmbg14", "rmbg-1.4"),
        ("nope", ""),  # nothing close: no guess
        ("birefnet-massive", ""),  # close only to a paid service's id: not offered as a guess
    ],
)
def test_an_unknown_id_says_which_one_was_likely_meant_and_runs_none(asked, meant):
    with pytest.raises(UnknownProviderError) as info:
        rmbg.get_provider(asked)
    said = str(info.value)
    assert info.value.near == meant
    assert said.startswith(
        f"Unknown provider {asked!r}.{f' Did you mean {meant!r}?' if meant else ''} Valid providers: "
    )


def test_a_clip_provider_typo_is_answered_the_same_way():
    from rmbg.video.providers import video_provider

    with pytest.raises(UnknownProviderError) as info:
        video_provider("isnet-general-use")
    assert str(info.value).endswith(" Did you mean 'isnet-general'?") and info.value.near == "isnet-general"


def test_registered_ids_are_kebab_case():
    for pid in rmbg.list_providers():
        assert pid == pid.lower() and " " not in pid and "_" not in pid


def test_clean_edge_colours_reuse_the_matte_and_never_call_the_provider():
    from rmbg.compare import compare
    from rmbg.image.compose import render

    prov = CountingProvider()
    image = _image()  # alpha = red channel: a soft ramp from 0 to 255
    res = rmbg.remove_background(image, prov, background="white", refine_foreground=True)
    assert prov.calls == 1
    want = render(image, res.alpha, background="white", refine_foreground=True)
    assert res.image.tobytes() == want.tobytes()
    assert res.image.tobytes() != render(image, res.alpha, background="white").tobytes()
    again = res.render("white", refine_foreground=True)
    assert again.image.tobytes() == want.tobytes()
    assert res.render(mask_only=True, refine_foreground=True).image.tobytes() == res.alpha.tobytes()
    shown = compare(image, [prov], background="white", refine_foreground=True)
    assert shown.results[prov.id].image.tobytes() == want.tobytes()
    assert prov.calls == 1


def test_no_provider_means_the_default_and_says_why(u2netp_path, hf_cache):
    """A fresh machine offline: no better model can be had -> U2-Net-p, and the reason is recorded."""
    result = rmbg.remove_background(Image.new("RGB", (64, 48), (200, 30, 30)), cache=None)
    assert result.provider == "u2netp" == rmbg.default_provider()[0]
    assert result.meta["default_reason"].startswith(
        "Using U2-Net-p (ungated, runs offline) because no better model answers within 3 s here: BiRefNet lite"
    )
    assert "default_reason" not in rmbg.remove_background(Image.new("RGB", (64, 48)), "u2netp", cache=None).meta


def test_refiners_chain_in_order_and_key_the_cache_by_every_step():
    from rmbg.refine import Chain, chain

    class Step:
        def __init__(self, sid, fn):
            self.id, self.fn = sid, fn

        def options(self):
            return {"k": self.id}

        def refine(self, image, alpha):
            return alpha.point(self.fn)

    halve, invert = Step("halve", lambda v: v // 2), Step("invert", lambda v: 255 - v)
    both = chain(halve, None, invert)
    assert isinstance(both, Chain) and both.id == "halve+invert"
    assert both.options() == {"steps": [{"id": "halve", "k": "halve"}, {"id": "invert", "k": "invert"}]}
    assert chain(None, halve) is halve and chain(None) is None
    prov = CountingProvider()
    res = rmbg.remove_background(_image(), prov, refine=both, cache=MatteCache())
    red = np.asarray(_image().getchannel("R"), dtype=np.int16)
    assert np.array_equal(np.asarray(res.alpha, dtype=np.int16), 255 - red // 2)


class HeldCall(CountingProvider):
    """A paid provider whose calls wait at a gate the test opens (`entered` tells when one is in)."""

    def __init__(self, fail_first: bool = False):
        super().__init__("held")
        self.entered, self.gate, self.fail_first = threading.Event(), threading.Event(), fail_first

    def matte(self, image):
        self.entered.set()
        assert self.gate.wait(60), "the test never opened the gate"
        if self.fail_first and self.calls == 0:
            self.calls += 1
            raise ProviderResponseError(self.id, "answered something unreadable")
        return super().matte(image)


def _waiting(cache: MatteCache, prov: HeldCall, count: int) -> int:
    """The callers waiting for _image()'s matte through `prov`, once `count` do (a state, not a time;
    at most 60 s)."""
    key = MatteCache.key(rmbg.load_image(_image()).digest, prov.id, prov.options(), payer_scope(prov))
    deadline = time.monotonic() + 60
    while cache.waiters(key) < count and time.monotonic() < deadline:
        threading.Event().wait(0.005)
    return cache.waiters(key)


def _asked_while_held(prov: HeldCall, cache: MatteCache, waiters: int) -> list:
    """One caller in the provider's call, `waiters` more asking for the same matte while it is;
    the gate opened once they all wait. Each caller's Result, or its error."""
    done: list = []

    def ask():
        try:
            done.append(rmbg.remove_background(_image(), prov, cache=cache))
        except ProviderResponseError as exc:
            done.append(exc)

    first = threading.Thread(target=ask)
    first.start()
    assert prov.entered.wait(60)
    others = [threading.Thread(target=ask) for _ in range(waiters)]
    for thread in others:
        thread.start()
    assert _waiting(cache, prov, waiters) == waiters
    prov.gate.set()
    for thread in [first, *others]:
        thread.join(60)
    return done


def test_the_same_matte_asked_for_while_its_call_runs_is_paid_once():
    """Three requests for one photo through one paid provider at once (a double click, a client that
    retried, two visitors): each made its own paid call (3 x $0.01 for one matte). The later ones
    wait for the first call and get its matte from the cache, free."""
    prov = HeldCall()
    results = _asked_while_held(prov, MatteCache(), waiters=2)
    assert prov.calls == 1
    assert sorted(r.cached for r in results) == [False, True, True]
    assert sum(r.cost.usd for r in results) == Decimal("0.01")
    assert all(np.array_equal(np.asarray(r.alpha), np.asarray(results[0].alpha)) for r in results)


def test_when_the_first_call_fails_a_waiter_makes_its_own():
    """The waiters do not inherit the first call's failure, nor are they lost: the next one calls
    the provider itself (as it would have without waiting) and the last one gets its matte."""
    prov = HeldCall(fail_first=True)
    results = _asked_while_held(prov, MatteCache(), waiters=2)
    assert prov.calls == 2
    failed = [r for r in results if isinstance(r, ProviderResponseError)]
    made = [r for r in results if not isinstance(r, ProviderResponseError)]
    assert len(failed) == 1 and sorted(r.cached for r in made) == [False, True]


def test_a_request_waiting_for_anothers_call_of_its_matte_gives_its_slot_back():
    """In the web app a request works in one of its door's slots; waiting for another request's call
    of the same matte it steps out of it, as a paid call's wait does (rmbg.webapp.slots), so free
    work by other visitors is not held behind it, and takes a slot again to go on."""
    from rmbg.webapp.slots import Slots, waiting_outside

    prov, cache, slots = HeldCall(), MatteCache(), Slots(work=1, waiting=2)
    cache.flights.wait_aside = waiting_outside
    done: list = []
    first = threading.Thread(target=lambda: done.append(rmbg.remove_background(_image(), prov, cache=cache)))
    first.start()
    assert prov.entered.wait(60)

    def in_a_slot():
        with slots.taken():
            done.append(rmbg.remove_background(_image(), prov, cache=cache))

    waiter = threading.Thread(target=in_a_slot)
    waiter.start()
    assert _waiting(cache, prov, 1) == 1  # in its slot, waiting
    meanwhile: list = []

    def free_work():
        with slots.taken():  # the one slot: free while the waiter waits, else held until the gate opens
            meanwhile.append(prov.gate.is_set())

    other = threading.Thread(target=free_work)
    other.start()
    other.join(30)
    prov.gate.set()
    for thread in (first, waiter, other):
        thread.join(60)
    assert meanwhile == [False]  # the free work ran before the call it waited behind was let go
    assert prov.calls == 1 and sorted(r.cached for r in done) == [False, True]
