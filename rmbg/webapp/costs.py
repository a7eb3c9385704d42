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


# A local model's CPU seconds per image (network time, 1024 px) from the
# benchmarks, for the projection before this session has timed it (a cached
# matte times nothing), rounded from their results files on a 2-core AVX2 CPU:
# rmbg-1.4 (ONNX fp32) and u2netp from `python benchmarks/speed.py --repeats 7`
# (benchmarks/results/speed.json), the BiRefNet models from
# `python benchmarks/speed_birefnet.py --models rmbg-2.0 birefnet-lite --frames 3`
# (benchmarks/results/speed_birefnet.json).
BENCHMARK_CPU_SECONDS = {"rmbg-1.4": 1.6, "u2netp": 0.23, "birefnet-lite": 7.0, "rmbg-2.0": 27.1}


def per_image_costs(session: Session, current: Result | None = None) -> dict[str, tuple[Cost, str]]:
    """provider id -> (cost of one image, where the figure comes from), from
    what is known in this session: hosted prices (or this image's reported
    cost); a local model's median seconds in this session, or its benchmark
    seconds when the session has none (only for the model just shown)."""
    costs: dict[str, tuple[Cost, str]] = {pid: (price_estimate(pid), "") for pid in price_table()}
    for pid, (seconds, device) in session.measured.items():
        runs = len(session.runs.get(pid, ())) or 1
        costs[pid] = (compute_cost(seconds, device), f"median of {runs} run{'s' * (runs > 1)} here")
    if current is not None and current.cost.source in ("reported", "estimated"):
        costs[current.provider] = (current.cost, "")
    elif current is not None and current.provider not in costs and current.provider in BENCHMARK_CPU_SECONDS:
        costs[current.provider] = (compute_cost(BENCHMARK_CPU_SECONDS[current.provider], "cpu"), "benchmark CPU figure")
    return costs


def money(usd: Decimal) -> str:
    """Monthly amounts: '$1,800.00', '$0.44'; under a cent: '$0.0012'."""
    return f"${usd:,.2f}" if usd >= Decimal("0.01") or usd == 0 else f"${format_usd(usd)}"


def projection_text(session: Session, volume: int, current: Result | None = None) -> str:
    """'At 100,000 images/month: **rmbg-1.4 $1.17 (compute estimate)** · fal-bria $1,800.00 · ...'."""
    costs = per_image_costs(session, current)
    rows = sorted(costs.items(), key=lambda item: (item[1][0].usd, item[0]))
    parts = []
    for pid, (cost, basis) in rows:
        text = f"{pid} {money(monthly_cost(cost.usd, volume))}"
        if cost.source == "compute":
            text += f" (compute estimate, {basis})" if basis else " (compute estimate)"
        parts.append(f"**{text}**" if current is not None and pid == current.provider else text)
    refs = " · ".join(f"{name} {money(monthly_cost(usd, volume))}" for name, usd in SEED_REFERENCES.items())
    return f"At {volume:,} images/month: " + " · ".join(parts) + f"  \nThird-party claims: {refs}"


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
    cost = "free (cached matte, no new charge)" if result.cost.source == "free" else result.cost.label()
    return f"**{label}** · {timing} · this image: {cost}"


def cost_markdown(
    result: Result, label: str, session: Session, cap: Decimal, volume: int, total_s: float | None = None
) -> str:
    """The full line under a result: provider, seconds, cost, session total, projection."""
    return (
        f"{result_line(result, label, total_s)} · {session.total_text(cap)}  \n"
        f"{projection_text(session, volume, result)}"
    )
