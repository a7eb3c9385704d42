"""The providers of a video run built and checked before any runs (the Video tab, its side by side,
POST /api/video): a side that cannot run is refused at once, with nothing sent, billed or computed
for the others. Before, side by side ran provider A on the whole clip (and paid for it) before B
was even built, so a B without a key, or over the cap, was refused after A's work was done.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ...errors import BudgetError, ModelUnavailableError
from ...money.ledger import Refused
from ...money.payer import Payer
from ...money.paying import Payment, everywhere, refusal_words
from ...video.answers import default_answers
from ...video.decode import ClipInfo
from ...video.hosted import answer_key, job_for, payment_for
from ...video.providers import VideoProvider
from ..catalog import Keys, build_provider, build_video_provider, close
from ..context import App
from ..zerogpu import on_cpu_config


@dataclass
class Side:
    """One provider built for one clip and checked against it (`ready`): the provider, and for a
    hosted service who pays (its Payer) and what the clip would cost (its Payment: estimate, unit and
    accounts)."""

    entry: VideoProvider
    provider: Any
    payment: Payment | None = None
    payer: Payer | None = None
    closed: bool = False
    on_cpu: bool = False  # a local model on this server's CPU, outside spaces.GPU (ZeroGPU's CPU offer)

    def close(self) -> None:
        """Release the provider (once)."""
        if not self.closed:
            self.closed = True
            close(self.provider)


def ready(
    app: App, info: ClipInfo, entries: Sequence[VideoProvider], keys: Keys, *, session_id: str, on_cpu: bool = False
) -> list[Side]:
    """Every provider of a run built and checked before any of them runs, so that a side that
    cannot run is refused at once, with nothing sent, billed or computed for the others:

    - built under the visitor's key rules (a missing key, the licence switch, a refused download);
    - a local model that cannot run here (its status) is refused in its own words;
    - a hosted service's own limits (its longest clip, its largest upload), on the clip's header;
    - what the hosted ones would hold together (each clip's hold: the bound of its estimate),
      against every cap each counts against (the session, the day's total on the server's key);
      a service whose answer for this clip is kept (rmbg.video.answers) holds nothing: it is free.

    rmbg's own limits are the probe's (`info`). Each paid side still reserves its own hold when it
    runs (rmbg.money.paying); this is the check that a run of all of them fits now."""
    sides: list[Side] = []
    try:
        for entry in entries:
            hosted = entry.usd_per_second is not None
            if hosted:
                sides.append(Side(entry, build_video_provider(entry.id, keys, app.config)))
            else:  # on_cpu: the model set to the CPU (on ZeroGPU the app's own process is told a GPU is there)
                config = on_cpu_config(app.config, entry.id) if on_cpu else app.config
                sides.append(Side(entry, build_provider(entry.id, keys, config), on_cpu=on_cpu))
        for side in sides:
            if side.entry.usd_per_second is None:
                status = side.provider.status()
                if status.state in ("unavailable", "needs_token"):
                    raise ModelUnavailableError(f"{side.entry.label} cannot run here: {status.message}")
                continue
            job = job_for(info, "webm")
            side.provider.check(job)  # the vendor's own limits
            side.payer = app.ledger.payer(session_id, server_key=not keys.for_provider(side.entry.id))
            if not default_answers().holds(answer_key(info, side.provider, job.output)):  # a kept answer is free
                side.payment = payment_for(side.provider, job, side.payer)
        fits_together([s.payment for s in sides if s.payment is not None], app)
    except BaseException:
        for side in sides:
            side.close()
        raise
    return sides


def fits_together(payments: Sequence[Payment], app: App) -> None:
    """BudgetError, in the refused account's words, when these clips' holds together pass a cap."""
    held: dict[str, Decimal] = {}
    for payment in payments:
        for account in payment.accounts:
            held[account.key] = held.get(account.key, Decimal(0)) + everywhere([payment])
            spent = app.ledger.policy.spent(account.key)
            if account.cap is not None and spent + held[account.key] > account.cap:
                raise BudgetError(refusal_words(Refused(account, spent), payment))
