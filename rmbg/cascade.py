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
rule (rmbg.paying: reserved before it is sent, inside `max_cost` and the
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
from typing import Any

from .confidence import DEFAULT_SHARE, META_KEY
from .errors import BudgetError, InvalidRequestError, RmbgError
from .providers.base import Provider
from .result import Result
from .types import Cost

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


def kept(free: Result, why: str) -> Result:
    """The free result of an image that was to be escalated, saying why it was not."""
    return replace(free, meta={**free.meta, ESCALATION: f"not escalated: {why}"})


def paying(provider: Provider, max_cost: Decimal | None) -> Provider:
    """`provider` with every hosted call paid through the one rule (rmbg.paying) on a
    cascade's own account capped by `max_cost` and the day's cap; a local one as it is."""
    if provider.kind != "hosted" or getattr(provider, "pays_itself", False):
        return provider
    from .paying import Paid, Policy, operator_accounts

    return Paid(provider, Policy(), operator_accounts("cascade", max_cost))


def cascade(
    images: Sequence[Any],
    free: str | Provider,
    better: str | Provider,
    *,
    share: float | None = None,
    below: float | None = None,
    max_cost: Decimal | float | str | None = None,
    keep: str = "better",
    **options: Any,
) -> list[Result]:
    """Every image through `free`, then the least sure through `better` (module doc).

    images: what remove_background takes (paths, bytes, PIL images, URLs; not an
        open file: an escalated image is read again).
    share / below: escalate at most this share of the images (default 0.3),
        or those whose confidence is under `below`; not both.
    max_cost: USD the escalations may spend (None: no cap of its own; the
        day's cap of the operator's keys still applies).
    keep: "better" (default): an escalated image gets the better provider's
        result; "surer": whichever of its two mattes has the higher confidence.
    options: remove_background's (background, mask_only, crop, refine, ...),
        the same for both providers.
    Returns one Result per image, in order; `result.provider` says which
    provider made it, `meta["escalation"]` what happened to an image chosen
    for escalation. An image the free provider fails raises, as
    remove_background does, before anything is paid.
    """
    from .api import remove_background
    from .registry import get_provider

    share, below = check_choice(share, below)
    keeps_first(None, None, keep)  # checked before anything runs
    free_p = get_provider(free) if isinstance(free, str) else free
    better_p = get_provider(better) if isinstance(better, str) else better
    cap = None if max_cost is None else Decimal(str(max_cost))
    results = [remove_background(image, free_p, **options) for image in images]
    paid = paying(better_p, cap)
    stopped = ""
    for i in most_unsure([confidence_of(r) for r in results], share=share, below=below):
        if stopped:
            results[i] = kept(results[i], stopped)
            continue
        try:
            results[i] = escalated(results[i], remove_background(images[i], paid, **options), keep)
        except BudgetError as exc:
            stopped = f"the budget was reached ({exc})"
            results[i] = kept(results[i], stopped)
        except RmbgError as exc:
            results[i] = kept(results[i], f"{better_p.id} failed ({exc})")
    return results
