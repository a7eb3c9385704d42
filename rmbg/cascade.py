"""A free model on every image, a better provider only where the free one is unsure.

    results = rmbg.cascade(paths, "u2netp", "fal-bria", share=0.3, max_cost=5)
    [r.provider for r in results]          # who made each result
    results[0].meta["confidence"]          # how sure its matte looks (rmbg.confidence)

The free provider runs on every image; each result carries its matte's
confidence (rmbg.confidence). Then the better provider runs on the images
the free one is least sure of: at most `share` of them (the lowest
confidences, ties in input order), or every one under `below`, and its
result replaces the free one. With keep="surer", an escalated image keeps
whichever of its two mattes has the higher confidence instead; measured
(docs/cascade.md), that helped on the sequences where the stand-in better
model failed more often than the free one, and not on every held-out set,
so it is a choice, not the default. A paid escalation goes through the one money
rule (rmbg.money.paying: reserved before it is sent, inside `max_cost` and the
day's cap of the operator's keys); when the cap is reached, or the better
provider fails, the image keeps its free result and its meta says why
(`meta["escalation"]`).

The command line's batch does the same with files (`rmbg remove ...
--escalate BETTER`, rmbg.cli.cascade); `remove_background(...,
escalate=BETTER)` decides one image alone, by `escalate_below`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

from .confidence import DEFAULT_SHARE, META_KEY
from .errors import InvalidRequestError
from .providers.base import Provider
from .result import Result
from .types import Cost, format_usd

KEEP = ("better", "surer")  # which matte an escalated image keeps: always the better's, or the surer of the two
ESCALATION = "escalation"  # meta key: "escalated from <free> (confidence c)", "not escalated: <why>"


def check_choice(share: float | None, below: float | None) -> tuple[float | None, float | None]:
    """(share, below) checked: one of them (DEFAULT_SHARE when neither), each in [0, 1]."""
    if share is not None and below is not None:
        raise InvalidRequestError("Escalate by share or below a confidence, not both.")
    if share is None and below is None:
        share = DEFAULT_SHARE
    for name, value in (("share", share), ("below", below)):
        if value is not None and not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
            raise InvalidRequestError(f"The escalation {name} must be a number from 0 to 1, got {value!r}.")
    return share, below


def most_unsure(
    confidences: Sequence[float | None], *, share: float | None = None, below: float | None = None
) -> list[int]:
    """Indices to escalate, least sure first: of the images with a confidence
    (None: no result, never escalated), the floor(share x their number) lowest
    (ties in input order), or every one under `below`."""
    share, below = check_choice(share, below)
    known = sorted((c, i) for i, c in enumerate(confidences) if c is not None)
    if below is not None:
        return [i for c, i in known if c < below]
    assert share is not None
    return [i for _, i in known[: math.floor(share * len(known) + 1e-9)]]


def confidence_of(result: Result) -> float | None:
    """The confidence a result carries (rmbg.confidence), None where it has none."""
    text = result.meta.get(META_KEY)
    return None if text is None else float(text)


def keeps_first(free: float | None, better: float | None, keep: str) -> bool:
    """Whether an escalated image keeps the first provider's matte: with keep="surer", when its
    confidence is higher than the better provider's (a tie keeps the better one's)."""
    if keep not in KEEP:
        raise InvalidRequestError(f"keep must be one of {', '.join(KEEP)}, got {keep!r}.")
    return keep == "surer" and free is not None and better is not None and free > better


def escalated(free: Result, better: Result, keep: str = "better") -> Result:
    """The result an escalated image keeps (keeps_first), saying what happened; a kept first
    result's cost includes the escalation's call (it was paid for)."""
    first, second = free.meta.get(META_KEY, "?"), better.meta.get(META_KEY, "?")
    if keeps_first(confidence_of(free), confidence_of(better), keep):
        note = f"escalated to {better.provider} (confidence {second}); {free.provider}'s matte kept, surer ({first})"
        cost = Cost(
            free.cost.usd + better.cost.usd, better.cost.source, f"{better.provider}'s call; its matte not kept"
        )
        return replace(free, cost=cost, meta={**free.meta, ESCALATION: note})
    note = f"escalated from {free.provider} (confidence {first})"
    return replace(better, meta={**better.meta, ESCALATION: note})


def kept(free: Result, why: str, counted: Decimal | None = None) -> Result:
    """The free result of an image that was to be escalated, saying why it was not. `counted`: what the
    escalation's failed call was counted at (its error's counted_usd: it may have been billed, or was
    accepted), added to the result's cost, as a kept first result's cost includes a made call's."""
    meta = {**free.meta, ESCALATION: f"not escalated: {why}"}
    if not counted:
        return replace(free, meta=meta)
    note = f"the escalation's failed call may have been billed: ${format_usd(counted)} counted"
    return replace(free, cost=Cost(free.cost.usd + counted, "estimated", note), meta=meta)


def paying(provider: Provider, max_cost: Decimal | None) -> Provider:
    """`provider` with every hosted call paid through the one rule (rmbg.money.paying) on a
    cascade's own account capped by `max_cost` and the day's cap; a local one as it is."""
    if provider.kind != "hosted" or getattr(provider, "pays_itself", False):
        return provider
    from .money.payer import Paid, Payer

    return Paid(provider, Payer.operator("cascade", max_cost))
