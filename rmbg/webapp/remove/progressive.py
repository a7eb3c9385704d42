"""A progressive result: the fast free model's cut-out at once, a better free
model's when it is ready.

Out of the box a CPU gets the best model that answers a 1 MP photo within
calibration.BUDGET_S here (rmbg.defaults). When a better free model can run
here too but is slower than that, a visitor who kept the default sees the
default's result at once and then the better one, which replaces it; the
line under the result says which model is shown and what is on its way.

When it applies (`plan`), all of it decided here, none of it in the page:
- the visitor's provider is the out-of-the-box default, on a CPU; a provider
  the visitor picked is what they get, and hosted (paid) providers never;
- a model ranked above it (rmbg.defaults.CPU_ORDER) is ready here, may be
  downloaded on this deployment (rmbg.webapp.downloads), and its measured
  time on this CPU (the calibration's cached figure: nothing is measured
  here) is at most MAX_S;
- RMBG_PROGRESSIVE is not 0 (an operator sharing a small CPU among many
  visitors may prefer one model run per click).

The page runs the better model only while the visitor stays: a new photo, a
new provider or leaving the page cancels it (the page's event), and a result
that arrives after that is never shown. A new Remove click in the same browser
session cancels the earlier click's better run (a separate page event, so the
button takes that click); a forward pass cannot be interrupted, so a result
of a click that is no longer its session's latest is dropped (`Turns`).
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from dataclasses import dataclass

from ... import defaults
from ...defaults import CPU_ORDER, FALLBACK_DEFAULT, SAME_TIMING
from ...registry import get_provider, info, list_providers
from ...settings import current
from ..config import AppConfig
from ..downloads import DownloadRefused, check_declared

SESSIONS_KEPT = 4096  # browser sessions whose latest Remove is remembered (the oldest are forgotten)
MAX_S = 20.0  # a better model slower than this on this CPU is not worth the wait
ENV = "RMBG_PROGRESSIVE"


@dataclass(frozen=True)
class Plan:
    """The better model to run after the default's result is shown."""

    provider_id: str
    label: str
    seconds: float  # its measured time for a 1 MP photo on this CPU

    def on_its_way(self, shown_label: str) -> str:
        return (
            f"Showing **{shown_label}** now; **{self.label}**, a better model, is on its way "
            f"(about {self.seconds:.0f} s on this CPU) and will replace it."
        )


def enabled() -> bool:
    return current().flag(ENV) is not False


def plan(provider_id: str, default_id: str, config: AppConfig) -> Plan | None:
    """The better model for this run, or None (see the module doc)."""
    order = (*CPU_ORDER, FALLBACK_DEFAULT)
    if not enabled() or provider_id != default_id or provider_id not in order or defaults.on_gpu():
        return None
    from ...providers.local import calibration

    for better in order[: order.index(provider_id)]:
        if better not in list_providers():
            continue
        provider = get_provider(better, **config.config_for(better))
        if not provider.status().ready:
            continue
        try:
            check_declared(provider, config.public, config.visitor_downloads, default_id)
        except DownloadRefused:
            continue
        timed = SAME_TIMING.get(better, better)
        seconds = calibration.cached(timed, calibration.config_of(timed))
        if seconds is not None and seconds <= MAX_S:
            return Plan(better, info(better).label, seconds)
    return None


class Turns:
    """The latest Remove click of each browser session. A click takes a turn;
    its better model's result is shown only while that turn is still its
    session's latest. gradio's cancels stop a better run that is waiting; one
    already in its forward pass cannot be interrupted, so its result is
    dropped here. Runtime bookkeeping shared by the page's workers, not a
    session value (the gr.State of a running click is not the next click's)."""

    def __init__(self, kept: int = SESSIONS_KEPT) -> None:
        self._latest: OrderedDict[str, int] = OrderedDict()
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._kept = kept

    def take(self, session: str | None) -> int:
        """A new turn for `session` (None: a caller without a browser session, never stale)."""
        with self._lock:
            turn = next(self._numbers)
            if session is not None:
                self._latest[session] = turn
                self._latest.move_to_end(session)
                while len(self._latest) > self._kept:
                    self._latest.popitem(last=False)
            return turn

    def latest(self, session: str | None) -> int | None:
        """The latest turn of `session` (0 for None: a caller without a browser session)."""
        with self._lock:
            return 0 if session is None else self._latest.get(session)

    def current(self, session: str | None, turn: int) -> bool:
        """Whether `turn` is still the latest of its session (a forgotten session counts as current)."""
        with self._lock:
            return session is None or self._latest.get(session, turn) == turn
