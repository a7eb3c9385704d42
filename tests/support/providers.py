"""An in-process provider for tests of the API around providers (cache, framing, limits, engines)."""

from __future__ import annotations

from decimal import Decimal

from rmbg.providers.base import ProviderStatus
from rmbg.types import Cost, Matte


class CountingProvider:
    """Alpha = the red channel; counts calls. Satisfies Provider without inheriting."""

    kind = "hosted"

    def __init__(self, pid="counting", option=1, wrong_size=False):
        self.id = pid
        self.label = "Counting test provider"
        self.option = option
        self.wrong_size = wrong_size
        self.calls = 0

    def options(self):
        return {"option": self.option}

    def status(self):
        return ProviderStatus("ready")

    def estimate(self):
        return Cost(Decimal("0.01"), "estimated")

    def matte(self, image):
        self.calls += 1
        alpha = image.getchannel("R")
        if self.wrong_size:
            alpha = alpha.resize((3, 3))
        return Matte(alpha=alpha, cost=Cost(Decimal("0.01"), "reported"), seconds=0.5, meta={"model": "test"})


class FreeLocal:
    """A ready, free local provider without options: a stand-in model; subclasses give `matte`."""

    id, label, kind = "fake-free", "free local stand-in", "local"

    def options(self):
        return {}

    def status(self):
        return ProviderStatus("ready", "")

    def estimate(self):
        return Cost.free()


class RedIsSubject(FreeLocal):
    """Free and local: alpha = the red channel, as CountingProvider's, without a price or a count."""

    id = "red-is-subject"

    def matte(self, image):
        return Matte(alpha=image.getchannel("R"), cost=Cost.free(), seconds=0.0, meta={"model": "test"})
