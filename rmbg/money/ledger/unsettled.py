"""Closes the ledger failed to write, kept to be written again.

A paid call that was sent may have been billed, so its hold must be closed with what it cost. When
the ledger fails at that moment (a full disk, a file deleted or truncated, PostgreSQL stopped), the
close is not dropped: it is kept here, logged for the operator with the command that closes it by
hand, and written as soon as the ledger answers again (rmbg.money.paying's next paid call tries first).
The hold stays counted meanwhile.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from . import Hold, LedgerError

log = logging.getLogger("rmbg.money.paying")
T = TypeVar("T")


class Unsettled:
    """The closes of one process that the ledger has not recorded yet (thread-safe)."""

    def __init__(self) -> None:
        self._kept: list[tuple[Hold, Decimal, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def close(self, settle: Callable[..., None], hold: Hold, usd: Decimal, **how: Any) -> bool:
        """`settle(hold.id, usd, **how)`; False when the ledger failed: the close is then logged and kept."""
        try:
            settle(hold.id, usd, **how)
            return True
        except LedgerError as exc:
            with self._lock:
                self._kept.append((hold, usd, how))
            what = "was not billed" if how.get("state") == "released" else "was made and may have been billed"
            log.error(
                "The call to %s (hold %s) %s, but the spending ledger could not record its cost ($%s): %s The "
                "hold stays counted; it is settled when the ledger answers again, or by hand: "
                "rmbg ledger settle %s --usd %s",
                hold.provider, hold.id, what, usd, exc, hold.id, usd,
            )  # fmt: skip
            return False

    def retry(self, settle: Callable[..., None]) -> None:
        """Write the kept closes, oldest first (LedgerError when the ledger still fails; the rest kept)."""
        with self._lock:
            waiting, self._kept = self._kept, []
        for k, (hold, usd, how) in enumerate(waiting):
            try:
                settle(hold.id, usd, **how)
            except LedgerError:
                with self._lock:
                    self._kept[:0] = waiting[k:]
                raise
            log.warning("The hold %s of %s is settled now at $%s (the ledger answers again).", hold.id, hold.provider,
                        usd)  # fmt: skip

    @property
    def holds(self) -> list[Hold]:
        with self._lock:
            return [hold for hold, _, _ in self._kept]


def unrecorded(out: T) -> T:
    """`out` with its cost marked unrecorded (Cost.unrecorded: "the call was made and may have
    been billed"), where it carries one (a matte, a clip, generated images); else `out`."""
    cost = getattr(out, "cost", None)
    if dataclasses.is_dataclass(out) and dataclasses.is_dataclass(cost) and hasattr(cost, "unrecorded"):
        return dataclasses.replace(out, cost=dataclasses.replace(cost, unrecorded=True))  # type: ignore[type-var]
    return out
