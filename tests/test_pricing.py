"""Price table, cost of one call, and monthly projections (rmbg.money.pricing)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rmbg.money.pricing import (
    REFERENCE_MONTHLY_VOLUME,
    compute_cost,
    hosted_projection,
    monthly_cost,
    price_estimate,
    price_table,
    project,
    projection_markdown,
    reported_cost,
)
from rmbg.types import Cost


@pytest.mark.parametrize("pid, usd", [("fal-bria", "0.018"), ("runware-bria", "0.018"), ("runware-rembg", "0.0013")])
def test_price_table(pid, usd):
    cost = price_estimate(pid)
    assert cost == Cost(Decimal(usd), "estimated", "price table")
    assert cost.label() == f"${Decimal(usd):.4f} (estimated)"


@pytest.mark.parametrize("value, usd", [(0.018, "0.018"), (0.0013, "0.0013"), ("0.0006", "0.0006"), (0, "0")])
def test_reported_cost_is_exact(value, usd):
    cost = reported_cost(value, "runware-bria")  # $0.018 in the table: every value here is within its 2x bound
    assert cost.usd == Decimal(usd) and cost.source == "reported"


@pytest.mark.parametrize("value", [0.037, 1000])
def test_a_reported_cost_beyond_the_bound_is_kept_in_full(value):
    """It was billed: counted in full (rmbg.money.paying then refuses the provider), labelled as reported."""
    cost = reported_cost(value, "runware-bria")
    assert cost.usd == Decimal(str(value)) and cost.source == "reported" and "beyond 2x the price" in cost.note


@pytest.mark.parametrize("value", ["1e999", 10**12])
def test_an_impossible_reported_cost_counts_at_the_bound_and_is_not_called_reported(value):
    cost = reported_cost(value, "runware-bria")
    assert cost.usd == Decimal("0.036") and cost.source == "estimated" and "impossible" in cost.note
    assert "(reported)" not in cost.label()


@pytest.mark.parametrize("value", [None, "lots", -0.01, True, float("nan"), float("inf"), [0.01], {"usd": 1}])
def test_unusable_reported_cost_falls_back_to_the_table(value):
    cost = reported_cost(value, "runware-bria")
    assert cost.usd == Decimal("0.018") and cost.source == "estimated"
    assert cost.note == (
        "price table (no cost reported)" if value is None else "price table (unreadable cost reported)"
    )


def test_compute_cost_uses_the_configured_rate(monkeypatch):
    monkeypatch.setenv("RMBG_GPU_USD_PER_HOUR", "2.5")
    monkeypatch.setenv("RMBG_CPU_USD_PER_HOUR", "0.36")
    gpu = compute_cost(3.6, "cuda:0")
    cpu = compute_cost(10.0, "cpu")
    assert gpu.usd == Decimal("0.0025") and gpu.source == "compute" and "GPU" in gpu.note
    assert cpu.usd == Decimal("0.001") and cpu.label() == "$0.0010 (compute estimate)"
    monkeypatch.setenv("RMBG_CPU_USD_PER_HOUR", "cheap")
    with pytest.raises(ValueError, match="RMBG_CPU_USD_PER_HOUR"):
        compute_cost(1.0, "cpu")


def test_monthly_cost_and_project_order():
    assert monthly_cost(Decimal("0.018")) == Decimal("1800.00")
    assert monthly_cost(Decimal("0.0013"), 1234) == Decimal("1.60")
    rows = project(
        {
            "b": Cost(Decimal("0.01"), "estimated"),
            "a": Cost(Decimal("0.01"), "reported"),
            "c": Cost(Decimal("0.001"), "compute"),
        },
        1000,
    )
    assert [(r.provider, r.per_month, r.source) for r in rows] == [
        ("c", Decimal("1.00"), "compute"),
        ("a", Decimal("10.00"), "reported"),
        ("b", Decimal("10.00"), "estimated"),
    ]


def test_reference_case_100k_images_a_month(monkeypatch):
    monkeypatch.delenv("RMBG_GPU_USD_PER_HOUR", raising=False)
    rows = hosted_projection(local_seconds={"rmbg-2.0": (0.36, "cuda")})
    by_id = {row.provider: row for row in rows}
    assert REFERENCE_MONTHLY_VOLUME == 100_000
    assert by_id["fal-bria"].per_month == Decimal("1800.00")
    assert by_id["runware-bria"].per_month == Decimal("1800.00")
    assert by_id["runware-rembg"].per_month == Decimal("130.00")
    assert by_id["rmbg-2.0"].per_image == Decimal("0.0001") and by_id["rmbg-2.0"].per_month == Decimal("10.00")
    # the seed benchmark's own figures: $5,000/month (remove.bg) vs $40/month (RMBG-2.0 on an A100)
    assert by_id["remove.bg (benchmark blog)"].per_month == Decimal("5000.00")
    assert by_id["RMBG-2.0 self-hosted A100 (benchmark blog)"].per_month == Decimal("40.00")
    assert [row.per_month for row in rows] == sorted(row.per_month for row in rows)
    previews = {"photoroom (preview)", "remove-bg (preview)"}  # their vendors price a preview at 0.25 credit
    assert {r.provider for r in hosted_projection(include_references=False)} == set(price_table()) | previews
    with pytest.raises(ValueError):
        hosted_projection(-1)


def test_projection_markdown():
    rows = hosted_projection(10_000, include_references=False)
    text = projection_markdown(rows, 10_000)
    lines = text.splitlines()
    assert lines[0] == "| provider | USD / image | USD / month at 10,000 images | basis |"
    assert lines[2] == "| runware-rembg | 0.0013 | 13.00 | estimated |"
    assert "| fal-bria | 0.0180 | 180.00 | estimated |" in lines
    assert len(lines) == 2 + len(price_table()) + 2  # and the two previews priced apart
    assert "| photoroom (preview) | 0.0050 | 50.00 | estimated |" in lines
