"""What providers have really cost on this server, shared by every session.

The monthly projection under a result reads it, so every visitor sees the same
figure for the same model (not one per session), and a hosted provider is
projected at the price its vendor reported here rather than at the figure the
caps reserve. Kept per process, bounded: the last reported price of each
hosted provider, and each local model's last RUNS_KEPT model times (the
projection uses their median, so one slow image does not move it). Nothing
here is money that must last: the money is in the ledger.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from decimal import Decimal
from statistics import median

from ..result import Result

RUNS_KEPT = 25
MAX_PROVIDERS = 256  # hf:OWNER/REPO ids are open-ended: the oldest is forgotten past this


class PriceBook:
    """Thread-safe: observe() after each run, figures() for the projection."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reported: OrderedDict[str, Decimal] = OrderedDict()
        self._runs: OrderedDict[str, tuple[deque[float], str]] = OrderedDict()

    def observe(self, result: Result, kind: str) -> None:
        """Record one run: a hosted provider's reported price, a local model's seconds (not a cached matte's)."""
        with self._lock:
            if kind == "hosted" and result.cost.source == "reported":
                self._keep(self._reported, result.provider, result.cost.usd)
            elif kind == "local" and not result.cached:
                device = str(result.meta.get("device", "cpu"))
                runs, seen_on = self._runs.get(result.provider, (deque(maxlen=RUNS_KEPT), device))
                if seen_on != device:  # another device: its own figure
                    runs = deque(maxlen=RUNS_KEPT)
                runs.append(float(result.seconds.model))
                self._keep(self._runs, result.provider, (runs, device))

    @staticmethod
    def _keep(table: OrderedDict, key: str, value: object) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > MAX_PROVIDERS:
            table.popitem(last=False)

    def reported(self) -> dict[str, Decimal]:
        """provider id -> the last price its vendor reported on this server."""
        with self._lock:
            return dict(self._reported)

    def timings(self) -> dict[str, tuple[float, str, int]]:
        """provider id -> (median model seconds, device, runs) on this server."""
        with self._lock:
            return {pid: (median(runs), device, len(runs)) for pid, (runs, device) in self._runs.items() if runs}
