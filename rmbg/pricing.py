"""Prices, the cost of one call, and monthly projections.

Hosted prices are per image in USD, from the vendors' pages (see
../shared/specs/providers.md section 4), declared with each provider in
rmbg.registry. Runware reports the real cost of
each call; these numbers are only used when nothing is reported.

Local runs are not free: they use a machine. Their cost is an estimate,
measured seconds x an hourly rate, labelled "compute". Rates are
configurable with RMBG_GPU_USD_PER_HOUR and RMBG_CPU_USD_PER_HOUR.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from .types import Cost



def price_table() -> dict[str, Decimal]:
    """USD per image of every declared hosted provider (rmbg.registry), used
    when the provider reports nothing."""
    from .registry import declarations

    return {d.id: d.price_usd for d in declarations() if d.price_usd is not None}

# Hourly machine rates for the local compute estimate (USD per hour).
# GPU: roughly a single mid-range cloud GPU (A10G-class) on demand.
# CPU: roughly a 2-vCPU cloud machine / an upgraded CPU Space.
DEFAULT_GPU_USD_PER_HOUR = Decimal("1.00")
DEFAULT_CPU_USD_PER_HOUR = Decimal("0.05")

REFERENCE_MONTHLY_VOLUME = 100_000  # the seed benchmark's comparison point


def _rate(env: str, default: Decimal) -> Decimal:
    value = os.environ.get(env)
    if not value:
        return default
    try:
        return Decimal(value)
    except ArithmeticError:
        raise ValueError(f"{env} must be a number of USD per hour, got {value!r}") from None


def hourly_rate(device: str) -> Decimal:
    """USD per hour for a device type ("cuda", "mps" or "cpu")."""
    if device.startswith("cuda"):
        return _rate("RMBG_GPU_USD_PER_HOUR", DEFAULT_GPU_USD_PER_HOUR)
    return _rate("RMBG_CPU_USD_PER_HOUR", DEFAULT_CPU_USD_PER_HOUR)


def compute_cost(seconds: float, device: str) -> Cost:
    """Estimated machine cost of a local run that took `seconds` on `device`."""
    usd = (Decimal(str(seconds)) * hourly_rate(device) / Decimal(3600)).quantize(Decimal("0.0000001"), ROUND_HALF_UP)
    kind = "GPU" if device.startswith("cuda") else device.upper()
    return Cost(usd, "compute", f"{seconds:.2f} s of {kind} at ${hourly_rate(device)}/h")


def price_estimate(provider_id: str) -> Cost:
    """Price-table cost of one image for a hosted provider."""
    return Cost(price_table()[provider_id], "estimated", "price table")


def monthly_cost(per_image: Decimal, images_per_month: int = REFERENCE_MONTHLY_VOLUME) -> Decimal:
    return (per_image * images_per_month).quantize(Decimal("0.01"), ROUND_HALF_UP)


@dataclass(frozen=True)
class Projection:
    provider: str
    per_image: Decimal
    per_month: Decimal
    source: str  # "price table", "compute estimate", "reported"


def project(per_image: dict[str, Cost], images_per_month: int = REFERENCE_MONTHLY_VOLUME) -> list[Projection]:
    """Monthly cost at `images_per_month` for each provider, cheapest first."""
    rows = [
        Projection(pid, cost.usd, monthly_cost(cost.usd, images_per_month), cost.source)
        for pid, cost in per_image.items()
    ]
    return sorted(rows, key=lambda row: (row.per_month, row.provider))


# --- reported costs ---------------------------------------------------------------


def reported_cost(value: object, provider_id: str) -> Cost:
    """Cost of one call from a provider's own `cost` field (USD).

    A missing or malformed value (not a number, negative, NaN) falls back
    to the price table, labelled "estimated" with the reason in its note.
    """
    usd = _as_usd(value)
    if usd is None:
        why = "no cost reported" if value is None else "unreadable cost reported"
        return Cost(price_table()[provider_id], "estimated", f"price table ({why})")
    return Cost(usd, "reported", "provider's cost field")


def _as_usd(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        usd = Decimal(str(value).strip())
    except ArithmeticError:
        return None
    if not usd.is_finite() or usd < 0:
        return None
    return usd


# --- monthly projections -------------------------------------------------------------

# Third-party reference points at 100,000 images/month, from the benchmark
# blog in ../shared/seeds/000_b24192b690c79f43.txt ("$40/mo with RMBG-2.0 on
# Runflow versus $5,000/mo with Remove.bg"). Vendor claims, not our measurements.
SEED_REFERENCES: dict[str, Decimal] = {
    "remove.bg (benchmark blog)": Decimal("5000") / REFERENCE_MONTHLY_VOLUME,
    "RMBG-2.0 self-hosted A100 (benchmark blog)": Decimal("40") / REFERENCE_MONTHLY_VOLUME,
}


def hosted_projection(
    images_per_month: int = REFERENCE_MONTHLY_VOLUME,
    *,
    local_seconds: dict[str, tuple[float, str]] | None = None,
    include_references: bool = True,
) -> list[Projection]:
    """Monthly cost per provider at `images_per_month`, cheapest first.

    Hosted providers use the price table. `local_seconds` maps a local
    provider id to (measured seconds per image, device) and is costed with
    compute_cost(). The seed benchmark's reference rows are added unless
    `include_references` is False.
    """
    if images_per_month < 0:
        raise ValueError("images_per_month must be zero or more")
    costs: dict[str, Cost] = {pid: price_estimate(pid) for pid in price_table()}
    for pid, (seconds, device) in (local_seconds or {}).items():
        costs[pid] = compute_cost(seconds, device)
    if include_references:
        for name, usd in SEED_REFERENCES.items():
            costs[name] = Cost(usd, "estimated", "third-party benchmark")
    return project(costs, images_per_month)


def projection_markdown(rows: list[Projection], images_per_month: int = REFERENCE_MONTHLY_VOLUME) -> str:
    """A Markdown table of projections (USD per image and per month)."""
    from .types import format_usd

    lines = [
        f"| provider | USD / image | USD / month at {images_per_month:,} images | basis |",
        "|---|---:|---:|---|",
    ]
    for row in rows:
        lines.append(f"| {row.provider} | {format_usd(row.per_image)} | {row.per_month:,.2f} | {row.source} |")
    return "\n".join(lines)
