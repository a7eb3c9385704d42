"""Batch progress on a stream: a tqdm bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TextIO

from ..types import format_usd


class Progress:
    """Batch progress on `stream`: a tqdm bar with img/s and the money spent on
    a terminal; one plain line per image otherwise (logs, CI, pipes).

    tqdm draws the bar (it is already installed with huggingface_hub, and it
    knows terminals: widths, rates, redraws); failures are printed above the
    bar with tqdm.write so they stay readable."""

    def __init__(self, total: int, stream: TextIO):
        from tqdm import tqdm

        self.total, self.stream = total, stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.count = self.ran = 0
        self.usd = Decimal(0)
        self.start = time.perf_counter()
        self.bar = tqdm(total=total, file=stream, unit="img", dynamic_ncols=True, leave=True,
                        disable=not self.tty, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} {rate_fmt}{postfix}")

    def update(self, label: str, status: str, usd: Decimal = Decimal(0), error: str = "") -> None:
        self.count += 1
        if status in ("done", "ok", "failed"):
            self.ran += 1
        self.usd += usd
        line = f"{status} {label}" + (f": {error}" if error else "")
        if self.tty:
            if status == "failed":
                self.bar.write(line, file=self.stream)
            self.bar.set_postfix_str(f"${format_usd(self.usd)}", refresh=False)
            self.bar.update(1)
            return
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        stats = f"{self.count}/{self.total}  {self.ran / elapsed:.1f} img/s  ${format_usd(self.usd)}"
        self.stream.write(f"[{stats}] {line}\n")
        self.stream.flush()

    def close(self) -> None:
        self.bar.close()
