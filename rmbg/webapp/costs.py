"""The cost line under a result and the monthly projection beside it.

Money is USD. Hosted providers are projected from their price table, or from
this image's reported cost for the provider that just ran; local providers
from the seconds measured in this session x the machine's hourly rate
(rmbg.pricing.compute_cost). Third-party reference points are labelled.
"""

from __future__ import annotations

from decimal import Decimal

from ..errors import RmbgError
from ..pricing import SEED_REFERENCES, compute_cost, monthly_cost, price_estimate, price_table
from ..result import Result
from ..types import Cost, format_usd
from .session import Session

MAX_VOLUME = 1_000_000_000


def volume_of(value) -> int:
    """The projection volume from a number box: a whole number, clamped to 0..MAX_VOLUME;
    empty -> 0; anything that is not a number -> a readable error."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0
    try:
        volume = int(float(value))
    except (TypeError, ValueError, OverflowError):
        raise RmbgError(f"Images per month must be a whole number (0 or more), got {str(value)[:40]!r}.") from None
    return min(max(volume, 0), MAX_VOLUME)


def per_image_costs(session: Session, current: Result | None = None) -> dict[str, Cost]:
    """provider id -> cost of one image, from what is known in this session."""
    costs: dict[str, Cost] = {pid: price_estimate(pid) for pid in price_table()}
    for pid, (seconds, device) in session.measured.items():
        costs[pid] = compute_cost(seconds, device)
    if current is not None and current.cost.source in ("reported", "estimated"):
        costs[current.provider] = current.cost
    return costs


def money(usd: Decimal) -> str:
    """Monthly amounts: '$1,800.00', '$0.44'; under a cent: '$0.0012'."""
    return f"${usd:,.2f}" if usd >= Decimal("0.01") or usd == 0 else f"${format_usd(usd)}"


def projection_text(session: Session, volume: int, current: Result | None = None) -> str:
    """'At 100,000 images/month: **rmbg-1.4 $1.17 (compute estimate)** · fal-bria $1,800.00 · ...'."""
    costs = per_image_costs(session, current)
    rows = sorted(costs.items(), key=lambda item: (item[1].usd, item[0]))
    parts = []
    for pid, cost in rows:
        text = f"{pid} {money(monthly_cost(cost.usd, volume))}"
        if cost.source == "compute":
            text += " (compute estimate)"
        parts.append(f"**{text}**" if current is not None and pid == current.provider else text)
    refs = " · ".join(f"{name} {money(monthly_cost(usd, volume))}" for name, usd in SEED_REFERENCES.items())
    return f"At {volume:,} images/month: " + " · ".join(parts) + f"  \nThird-party claims: {refs}"


def result_line(result: Result, label: str) -> str:
    """'**label** · 0.84 s · this image: $0.000012 (compute estimate)'."""
    if result.cached:
        timing = f"cached matte ({result.seconds.total:.2f} s)"
    else:
        timing = f"{result.seconds.model:.2f} s"
    cost = "free (cached matte, no new charge)" if result.cost.source == "free" else result.cost.label()
    return f"**{label}** · {timing} · this image: {cost}"


def cost_markdown(result: Result, label: str, session: Session, cap: Decimal, volume: int) -> str:
    """The full line under a result: provider, seconds, cost, session total, projection."""
    return (
        f"{result_line(result, label)} · {session.total_text(cap)}  \n"
        f"{projection_text(session, volume, result)}"
    )
