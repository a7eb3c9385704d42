"""The cost line under a result and the monthly projection beside it, and a run's
charge recorded in its Session (rmbg.webapp.spending) and in the projection's PriceBook (record).

Money is USD. The projection is the same for every session of a server
(rmbg.webapp.context.PriceBook): hosted providers at the price their vendor last
reported here, else their price table figure (an assumed one says so), or
the price of the image just shown where it was priced otherwise (a preview
at its 0.25 credit, a configured price; a free watermarked sandbox result
keeps the paid price: a sandbox key is no way to run a month); local
models at the median of their model seconds here x the machine's hourly rate
(rmbg.money.pricing.compute_cost). Third-party reference points are labelled, and
left out where the service they name is listed with its own figure.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from ..cascade import ESCALATION
from ..errors import RmbgError
from ..money.pricing import REFERENCE_PROVIDER, SEED_REFERENCES, compute_cost, monthly_cost, price_estimate, price_table
from ..registry import info, list_providers
from ..result import Result
from ..types import Cost, format_usd
from ..wording import number_text
from .context import PriceBook, Stamp, built_from
from .spending import Session

MAX_VOLUME = 1_000_000_000


def volume_of(value) -> int:
    """The projection volume from a number box: a whole number, clamped to 0..MAX_VOLUME;
    empty -> 0; anything that is not a number -> a readable error."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0
    number = number_text("Images per month", value, RmbgError) if isinstance(value, str) else value
    try:
        volume = int(float(number))
    except (TypeError, ValueError, OverflowError):
        raise RmbgError(f"Images per month must be a whole number (0 or more), got {str(value)[:40]!r}.") from None
    return min(max(volume, 0), MAX_VOLUME)


# A local model's CPU seconds per image at 1024x1024 from the benchmarks' results files, for the
# projection before this server has timed it (a cached matte times nothing), rounded (2 cores, AVX2
# and more; tests/test_benchmark_figures.py holds them to the files): rmbg-1.4 (its CPU path, ONNX
# fp32) and u2netp, their network time in benchmarks/results/speed.json (`python benchmarks/speed.py`);
# birefnet-lite, end to end at its default on that CPU, benchmarks/results/speed_birefnet.json
# (`python benchmarks/speed_birefnet.py`). RMBG-2.0 has no figure in a results file: its row waits
# for its first run here.
BENCHMARK_CPU_SECONDS = {"rmbg-1.4": 1.1, "u2netp": 0.17, "birefnet-lite": 2.8}


_offered: tuple[Stamp, dict[str, tuple[Cost, str]]] | None = None


def offered_prices() -> dict[str, tuple[Cost, str]]:
    """provider id -> (its price table cost of one image, "assumed price" where that price is an estimate) for
    each hosted provider this server offers (not those the licence switch refuses). The same for every click:
    made once and kept while the provider table and the RMBG_* settings stay as they were (context.built_from)."""
    global _offered
    stamp, kept = built_from(), _offered
    if kept is None or kept[0] != stamp:
        offered = list_providers()
        kept = _offered = (
            stamp,
            {
                pid: (price_estimate(pid), "assumed price" if info(pid).price_note.startswith("estimated") else "")
                for pid in price_table()
                if pid in offered
            },
        )
    return dict(kept[1])


def per_image_costs(book: PriceBook, current: Result | None = None) -> dict[str, tuple[Cost, str]]:
    """provider id -> (cost of one image, where the figure comes from), the same for every session
    of this server: a hosted provider at the price its vendor last reported here, else its price
    table figure; a local model at the median of its model times here (`book`), else its benchmark
    seconds (only for the model just shown)."""
    costs = offered_prices()
    for pid, usd in book.reported().items():
        costs[pid] = (Cost(usd, "reported"), "reported here")
    for pid, (seconds, device, runs) in book.timings().items():
        costs[pid] = (compute_cost(seconds, device), f"median of {runs} run{'s' * (runs > 1)} on this server")
    if current is not None and current.cost.source == "estimated" and current.provider not in book.reported():
        table = costs.get(current.provider, (None, ""))[0]
        if table is not None and current.cost.usd != table.usd:  # a preview, or the operator's own price
            costs[current.provider] = (current.cost, "as this image was priced")
    if current is not None and current.provider not in costs:
        if current.cost.source in ("reported", "estimated"):
            costs[current.provider] = (current.cost, "")
        elif current.provider in BENCHMARK_CPU_SECONDS:
            seconds = BENCHMARK_CPU_SECONDS[current.provider]
            costs[current.provider] = (compute_cost(seconds, "cpu"), "benchmark CPU figure")
    return costs


def money(usd: Decimal) -> str:
    """Monthly amounts: '$1,800.00', '$0.44'; under a cent: '$0.0012'."""
    return f"${usd:,.2f}" if usd >= Decimal("0.01") or usd == 0 else f"${format_usd(usd)}"


def projection_text(book: PriceBook, volume: int, current: Result | None = None) -> str:
    """'At 100,000 images/month: **rmbg-1.4 $1.17 (compute estimate)** · fal-bria $1,800.00 · ...'."""
    costs = per_image_costs(book, current)
    rows = sorted(costs.items(), key=lambda item: (item[1][0].usd, item[0]))
    parts = []
    for pid, (cost, basis) in rows:
        text = f"{pid} {money(monthly_cost(cost.usd, volume))}"
        if cost.source == "compute":
            text += f" (compute estimate, {basis})" if basis else " (compute estimate)"
        elif basis:
            text += f" ({basis})"
        parts.append(f"**{text}**" if current is not None and pid == current.provider else text)
    refs = " · ".join(
        f"{name} {money(monthly_cost(usd, volume))}"
        for name, usd in SEED_REFERENCES.items()
        if REFERENCE_PROVIDER.get(name) not in costs
    )
    return f"At {volume:,} images/month: " + " · ".join(parts) + (f"  \nThird-party claims: {refs}" if refs else "")


def result_line(result: Result, label: str, total_s: float | None = None) -> str:
    """'**label** · model 0.84 s · total 1.20 s · this image: $0.000012 (compute estimate)':
    the model's own seconds, then (when given) the total from the click
    reaching the server to the result ready to show (decoding, the model,
    rendering, the preview and the file)."""
    timing = "cached matte" if result.cached else f"model {result.seconds.model:.2f} s"
    if total_s is not None:
        timing += f" · total {total_s:.2f} s"
    elif result.cached:
        timing += f" ({result.seconds.total:.2f} s)"
    cached = result.cost.source == "free" and not result.cost.watermarked
    cost = "free (cached matte, no new charge)" if cached else result.cost.label()
    return f"**{label}** · {timing} · this image: {cost}"


def cost_markdown(
    result: Result,
    label: str,
    session: Session,
    cap: Decimal,
    volume: int,
    total_s: float | None = None,
    book: PriceBook | None = None,
) -> str:
    """The full line under a result: provider, seconds, cost, session total, whether it was escalated
    to a better provider and why (rmbg.webapp.remove.escalate), projection."""
    note = result.meta.get(ESCALATION)
    escalation = f"  \n{note[:1].upper()}{note[1:]}." if note else ""
    return (
        f"{result_line(result, label, total_s)} · {session.total_text(cap)}{escalation}  \n"
        f"{projection_text(book or PriceBook(), volume, result)}"
    )


def record(
    session: Session, result: Result, kind: str, hosted_spent: Decimal | None, book: PriceBook | None = None
) -> Session:
    """The session after one provider run: its charge (the ledger's total for hosted calls, the one
    that counts); the server's price book learns the run's price or seconds, for every session."""
    if book is not None:
        book.observe(result, kind)
    return replace(session.charged(result.cost, kind), hosted_usd=hosted_spent)
