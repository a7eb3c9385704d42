"""What a person sees of a batch: progress on a stream (a tqdm bar on a
terminal, plain lines elsewhere), the manifest as it goes, and the summary."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from ..types import MAY_HAVE_BEEN_BILLED, format_usd
from ..types import line_text as printable  # one line of a terminal or a log: control characters shown as \xNN
from . import batch
from .interrupts import INTERRUPTED
from .manifest import MANIFEST, MANIFEST_COLUMNS, Claims, Manifest  # noqa: F401  (progress.Manifest for callers)


def lines_shown(text: str) -> str:
    """Lines of a report (a Markdown table) with each line `printable`: a name in a cell cannot drive the terminal."""
    return "\n".join(printable(line) for line in text.split("\n"))


class Progress:
    """Batch progress on `stream`: a tqdm bar with the rate (img/s, or `unit`) and the money spent
    on a terminal; one plain line per image (or sequence) otherwise (logs, CI, pipes).

    tqdm draws the bar (it is already installed with huggingface_hub, and it
    knows terminals: widths, rates, redraws); failures are printed above the
    bar with tqdm.write so they stay readable."""

    def __init__(self, total: int, stream: TextIO, unit: str = "img"):
        self.total, self.stream, self.unit = total, stream, unit
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.count = self.ran = 0
        self.usd = Decimal(0)
        self.start = time.perf_counter()
        self.bar: Any = None
        if self.tty:  # tqdm is imported for a bar only: a log or a pipe gets plain lines (a cold start is shorter)
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                file=stream,
                unit=unit,
                dynamic_ncols=True,
                leave=True,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} {rate_fmt}{postfix}",
            )

    def update(self, label: str, status: str, usd: Decimal = Decimal(0), error: str = "") -> None:
        self.count += 1
        if status in ("done", "ok", "failed", "excluded"):
            self.ran += 1
        self.usd += usd
        line = printable(f"{status} {label}" + (f": {error}" if error else ""))
        if self.tty:
            if status in ("failed", "excluded"):  # excluded: scored, left out of the means; `error` says why
                self.bar.write(line, file=self.stream)
            self.bar.set_postfix_str(f"${format_usd(self.usd)}", refresh=False)
            self.bar.update(1)
            return
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        stats = f"{self.count}/{self.total}  {rate(self.ran, elapsed, self.unit)}  ${format_usd(self.usd)}"
        self.stream.write(f"[{stats}] {line}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def rate(done: int, seconds: float, unit: str) -> str:
    """How fast, in a figure that reads: "2.5 img/s", or the seconds each takes where that is under
    one a second (a sequence of 60 frames takes tens of seconds: it read "0.0 img/s")."""
    if done and done < seconds:
        return f"{seconds / done:.1f} s/{unit}"
    return f"{done / seconds:.1f} {unit}/s"


def run_reported(
    items: Sequence[batch.Item],
    out_dir: Path,
    provider_id: str,
    run: Callable[[Callable[[batch.Outcome], None], Claims | None], list[batch.Outcome]],
    out: TextIO,
    err: TextIO,
    *,
    retry_uncertain: bool = False,
) -> int:
    """Run a batch (`run(on_outcome, claims)`) with progress on `err`, each
    outcome in the manifest as it happens (the storage and OUT/manifest.csv,
    rmbg.cli.manifest) and the summary on `out`; the exit code (0 when
    everything was done or skipped, else 1)."""
    progress = Progress(len(items), err)
    start = time.perf_counter()
    with Manifest(out_dir, provider_id, retry_uncertain=retry_uncertain) as manifest:

        def on_outcome(o: batch.Outcome) -> None:
            manifest.write(o)
            progress.update(o.item.display, o.status.replace("_", " "), o.cost.usd if o.cost else Decimal(0), o.error)

        try:
            outcomes = run(on_outcome, manifest.claims)
        finally:
            progress.close()
    print(summary(outcomes, time.perf_counter() - start, out_dir), file=out)
    return 0 if all(o.status in ("done", "skipped") for o in outcomes) else 1


def summary(outcomes: Sequence[batch.Outcome], seconds: float, out_dir: Path) -> str:
    """The end-of-batch report: counts, time, cost, and every failure with its reason."""
    count = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    elsewhere = sum(o.status == "skipped" and bool(o.error) for o in outcomes)  # another run's (rmbg.cli.manifest)
    count["not_run"] = sum(o.status == "not_run" and o.error != INTERRUPTED for o in outcomes)
    stopped = [o.item.display for o in outcomes if o.status == "not_run" and o.error == INTERRUPTED]
    # not run for the budget, or because nothing more could be paid (the ledger gone: its words, once)
    reasons = {o.error: None for o in outcomes if o.status == "not_run" and o.error not in (INTERRUPTED, "budget")}
    spent = sum((o.cost.usd for o in outcomes if o.cost), Decimal(0))
    # a failed call counted at its estimate is not known to be billed: said apart from what was
    uncertain = [o.cost.usd for o in outcomes if o.cost and o.cost.note == MAY_HAVE_BEEN_BILLED]
    known = {o.cost.source for o in outcomes if o.cost and o.cost.note != MAY_HAVE_BEEN_BILLED} - {"free"}
    said = [", ".join(sorted(known))] if known else []
    if uncertain:
        calls = "1 failed call" if len(uncertain) == 1 else f"{len(uncertain)} failed calls"
        part = f"${format_usd(sum(uncertain, Decimal(0)))} of it for " if known else ""
        said.append(f"{part}{calls} that may have been billed, at the estimate")
    lines = [
        f"Done {count['done']}, skipped {count['skipped'] - elsewhere} (output exists)"
        + (f", {elsewhere} made by another run" if elsewhere else "")
        + f", failed {count['failed']}, "
        f"not run {count['not_run']} ({'budget' if not reasons else 'refused'})"
        + (f", not started {len(stopped)} (interrupted)" if stopped else "")
        + f" in {seconds:.1f} s; cost ${format_usd(spent)}"
        + (f" ({'; '.join(said)})" if said else "")
        + "."
    ]
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        lines.append("Failed:")
        lines += [f"  {o.item.display}: {o.error}" for o in failed]
    marked = [o.item.display for o in outcomes if o.cost is not None and o.cost.watermarked]
    if marked:
        lines.append(
            f"Watermarked ({len(marked)}): free results with the vendor's watermark (a Photoroom sandbox key), "
            "for testing only: " + ", ".join(marked)
        )
    for reason in ("budget", *reasons):
        not_run = [o.item.display for o in outcomes if o.status == "not_run" and o.error == reason]
        if not_run:
            named = "budget " if reason == "budget" else ""
            lines.append(f"Not run: {named}({len(not_run)}): " + ", ".join(not_run))
            lines += [] if reason == "budget" else [f"  {reason}"]
    if stopped:
        lines.append(f"Not started: interrupted ({len(stopped)}): " + ", ".join(stopped))
    lines.append(f"Outputs and {MANIFEST} in {out_dir}")
    return "\n".join(printable(line) for line in lines)
