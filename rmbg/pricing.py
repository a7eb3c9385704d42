"""Prices, the cost of one call, and monthly projections.

Hosted prices are per image in USD, from the vendors' pages (see
../shared/specs/providers.md section 4). Runware reports the real cost of
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

# USD per image when the provider reports nothing.
PRICE_PER_IMAGE: dict[str, Decimal] = {
    "fal-bria": Decimal("0.018"),  # fal docs / llms.txt: $0.018 per generation
    "runware-bria": Decimal("0.018"),  # Runware bria:2@1 model page response examples
    "runware-rembg": Decimal("0.0013"),  # Runware runware:109@1 model page response examples
}

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
    return Cost(PRICE_PER_IMAGE[provider_id], "estimated", "price table")


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
