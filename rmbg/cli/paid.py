"""Paid runs on the command line: the estimate printed before any paid call,
and the rule that it runs only with --yes (accept the estimate) or
--max-cost USD (a cap the batch never passes). Shared by `rmbg remove`,
`rmbg evaluate` and `rmbg replace`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from decimal import Decimal
from typing import TextIO

from ..errors import InvalidRequestError
from ..money.payer import usd_cap
from ..providers.base import Provider
from ..types import Cost, format_usd
from ..wording import number_text


def usd_arg(text: str) -> Decimal | None:
    """--max-cost USD: rmbg.money.payer.usd_cap's rule, refused as the line is read."""
    typed = number_text("", text, argparse.ArgumentTypeError)  # argparse names the flag
    try:
        return usd_cap(typed)
    except InvalidRequestError:
        raise argparse.ArgumentTypeError(f"must be an amount of USD, 0 or more: {text!r}") from None


def add_paid_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--yes", "-y", action="store_true", help="accept the estimated cost of a paid (hosted) run")
    parser.add_argument("--max-cost", type=usd_arg, metavar="USD", help="spending cap for hosted providers, in USD")


def paid_gate(
    n_images: int, providers: Sequence[Provider], yes: bool, max_cost: Decimal | None, err: TextIO, *, kept: int = 0
) -> bool:
    """Print the estimate of a paid run; False when it must be refused (no --yes, no --max-cost)."""
    priced = [(p.id, p.estimate()) for p in providers if p.kind == "hosted"]
    return confirm_paid(n_images, priced, yes, max_cost, err, kept=kept)


def kept_line(kept: int, of: int, what: str = "images") -> str:
    """'2 of 3 images already paid for and kept: written without a new request.' (rmbg.cli.kept)."""
    return f"{kept} of {of} {what} already paid for and kept: written without a new request."


def confirm_paid(
    n_images: int,
    priced: Sequence[tuple[str, Cost]],
    yes: bool,
    max_cost: Decimal | None,
    err: TextIO,
    *,
    kept: int = 0,
) -> bool:
    """The same for (id, estimated cost of one input image) pairs of paid services. `kept`: how many more
    inputs are written from what an earlier run bought and kept (rmbg.cli.kept): said, and neither
    estimated nor asked for, as no request is made for them."""
    if kept and priced:
        print(kept_line(kept, n_images + kept, "inputs"), file=err)
    if not priced or n_images == 0:
        return True
    total = Decimal(0)
    for pid, each in priced:
        total += each.usd * n_images
        print(
            f"Estimated cost for {pid}: {n_images} images x ${format_usd(each.usd)} = "
            f"${format_usd(each.usd * n_images)} ({each.note or each.source})",
            file=err,
        )
    if len(priced) > 1:
        print(f"Estimated total: ${format_usd(total)}", file=err)
    if yes or max_cost is not None or total == 0:  # all free (a Photoroom sandbox key): nothing to accept
        return True
    print("This run is paid: pass --yes to accept the estimate, or --max-cost USD to cap the spending.", file=err)
    return False


def run_cap(n_paid: int, yes: bool, max_cost: Decimal | None) -> Decimal | None:
    """The cap a run pays under: --max-cost; else, where nothing was estimated nor accepted (every input kept
    from an earlier run, no --yes), $0, so that no request is ever bought without its estimate being accepted."""
    return Decimal(0) if max_cost is None and not yes and n_paid == 0 else max_cost
