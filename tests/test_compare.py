"""rmbg.compare: hosted providers in parallel, local ones one at a time,
errors recorded per provider, pairwise agreement, the shared cache."""

from __future__ import annotations

import threading
from contextlib import nullcontext
from decimal import Decimal

import numpy as np
import pytest
from PIL import Image

from rmbg.compare import PairAgreement, compare
from rmbg.errors import InvalidImageError, ProviderRateLimitError
from rmbg.providers.base import ProviderStatus
from rmbg.providers.local.pool import POOL
from rmbg.types import Cost, Matte


class Probe:
    """A provider that records how many of its kind run at once; a local one takes the model pool's
    device lock around its work, as every local provider does (rmbg.providers.local.pool)."""

    active = 0
    peak = 0
    lock = threading.Lock()

    def __init__(self, pid, kind, *, threshold=128, barrier=None, fail=None):
        self.id, self.kind, self.label = pid, kind, pid
        self.threshold, self.barrier, self.fail = threshold, barrier, fail
        self.calls = 0

    def options(self):
        return {"threshold": self.threshold}

    def status(self):
        return ProviderStatus("ready")

    def estimate(self):
        return Cost(Decimal("0.01"), "estimated")

    def matte(self, image):
        with POOL.forward() if self.kind == "local" else nullcontext():
            return self._matte(image)

    def _matte(self, image):
        self.calls += 1
        with Probe.lock:
            Probe.active += 1
            Probe.peak = max(Probe.peak, Probe.active)
        try:
            if self.barrier is not None:
                self.barrier.wait(timeout=10)  # only passes if both hosted calls run at once
            if self.fail is not None:
                raise self.fail
            grey = np.asarray(image.convert("L"))
            alpha = Image.fromarray(np.where(grey >= self.threshold, 255, 0).astype(np.uint8), "L")
            return Matte(alpha=alpha, cost=Cost(Decimal("0.01"), "reported"), seconds=0.1)
        finally:
            with Probe.lock:
                Probe.active -= 1


@pytest.fixture(autouse=True)
def _reset():
    Probe.active = Probe.peak = 0


def image() -> Image.Image:
    grey = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (8, 1))  # 16 columns, 0..240
    return Image.fromarray(grey, "L").convert("RGB")


def test_hosted_calls_run_in_parallel():
    barrier = threading.Barrier(2)
    out = compare(image(), [Probe("h1", "hosted", barrier=barrier), Probe("h2", "hosted", barrier=barrier)])
    assert list(out.results) == ["h1", "h2"] and not out.errors
    assert Probe.peak == 2


def test_local_models_run_one_at_a_time():
    providers = [Probe(f"l{i}", "local", threshold=100 + i) for i in range(4)]
    out = compare(image(), providers)
    assert len(out.results) == 4 and Probe.peak == 1


def test_a_failing_provider_is_recorded_and_the_others_go_on():
    failing = Probe("bad", "hosted", fail=ProviderRateLimitError("bad", "rate limited", status=429))
    out = compare(image(), [Probe("good", "hosted"), failing])
    assert list(out.results) == ["good"]
    assert isinstance(out.errors["bad"], ProviderRateLimitError)
    assert out.agreement == ()


def test_pairwise_agreement_exact():
    # thresholds 128 and 192: foreground columns >= 128 (8 of 16) vs >= 192 (4 of 16)
    out = compare(image(), [Probe("a", "hosted", threshold=128), Probe("b", "hosted", threshold=192)])
    assert out.agreement == (PairAgreement("a", "b", 0.5, 0.25),)


def test_background_is_rendered_and_the_cache_is_shared():
    first = Probe("a", "hosted")
    compare(image(), [first])
    out = compare(image(), [first], background="#ff0000")
    assert first.calls == 1 and out.results["a"].cached
    assert out.results["a"].image.mode == "RGB" and out.results["a"].image.getpixel((0, 0)) == (255, 0, 0)


def test_a_bad_image_fails_before_any_call():
    probe = Probe("a", "hosted")
    with pytest.raises(InvalidImageError):
        compare(b"not an image", [probe])
    assert probe.calls == 0


def test_each_provider_with_and_without_a_refiner_calls_it_once():
    from rmbg.cache import MatteCache

    class Invert:
        id = "invert"

        def options(self):
            return {}

        def refine(self, image, alpha):
            return alpha.point(lambda v: 255 - v)

    a, b = Probe("a", "hosted"), Probe("b", "local", threshold=64)
    out = compare(image(), [a, b], cache=MatteCache(), refine=Invert())
    assert list(out.results) == ["a", "a+invert", "b", "b+invert"] and not out.errors
    assert a.calls == b.calls == 1
    plain, refined = np.asarray(out.results["a"].alpha), np.asarray(out.results["a+invert"].alpha)
    assert np.array_equal(refined, 255 - plain)
    assert out.results["a+invert"].cost.source == "free"  # the matte was paid once, for "a"
    assert [(p.a, p.b) for p in out.agreement][:3] == [("a", "a+invert"), ("a", "b"), ("a", "b+invert")]


def test_a_provider_named_twice_runs_and_is_paid_once():
    """rmbg.compare(image, ["fal-bria", "fal-bria"]) sent (and paid for) two calls in parallel, both missing the
    cache, for one result under one key; a provider is now run once per id, in the order first given."""
    paid, other = Probe("paid", "hosted"), Probe("other", "hosted", threshold=192)
    out = compare(image(), [paid, other, paid, Probe("paid", "hosted")], cache=None)
    assert list(out.results) == ["paid", "other"] and not out.errors
    assert (paid.calls, other.calls) == (1, 1)
