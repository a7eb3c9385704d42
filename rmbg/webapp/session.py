"""Per-browser-session values, kept in a gr.State (never a module global).

Money is USD (Decimal). `hosted_usd` is what hosted providers charged in
this session (reported or estimated): the spending cap applies to it.
`compute_usd` is the estimated machine cost of local runs, shown but not
capped (nothing is billed per call).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from ..result import Result
from ..types import Cost, format_usd
from .context import PriceBook
from .spending import hosted_text

ZERO = Decimal(0)


@dataclass(frozen=True)
class Session:
    """hosted_usd / compute_usd: spent so far (USD). images: provider runs.
    last: token of the last Remove result in the app's shared store
    (rmbg.webapp.recent: its pixels are never kept per session), re-rendered
    when a background, mask or format choice changes. last_name: its file
    stem; last_label: its provider's label.
    comparison: token of the last Compare outcome in the same store."""

    hosted_usd: Decimal | None = ZERO  # None: unknown (the ledger cannot be read)
    compute_usd: Decimal = ZERO
    images: int = 0
    last: str | None = None
    last_name: str = "image"
    last_label: str = ""
    comparison: str | None = None

    def charged(self, cost: Cost, kind: str) -> Session:
        """This session after paying `cost` for one call of a `kind` provider."""
        if cost.source == "free":
            return self
        if kind == "hosted":
            hosted = None if self.hosted_usd is None else self.hosted_usd + cost.usd
            return replace(self, hosted_usd=hosted, images=self.images + 1)
        if cost.source != "compute":  # a local result whose cost holds a paid escalation's failed call
            return replace(self, images=self.images + 1)  # (rmbg.cascade.kept): hosted money, in the ledger's total
        return replace(self, compute_usd=self.compute_usd + cost.usd, images=self.images + 1)

    def total_text(self, cap: Decimal) -> str:
        """e.g. 'session: $0.0360 hosted (cap $1.00) + $0.000012 local compute (estimate)'."""
        text = hosted_text(self.hosted_usd, cap)
        if self.compute_usd:
            text += f" + ${format_usd(self.compute_usd)} local compute (estimate)"
        return text


def record(
    session: Session, result: Result, kind: str, hosted_spent: Decimal | None, book: PriceBook | None = None
) -> Session:
    """The session after one provider run: its charge (the ledger's total for hosted calls, the one
    that counts); the server's price book learns the run's price or seconds, for every session."""
    if book is not None:
        book.observe(result, kind)
    return replace(session.charged(result.cost, kind), hosted_usd=hosted_spent)
