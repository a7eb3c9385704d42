"""`rmbg ledger`: the operator's view of the money ledger (rmbg.money.ledger).

    rmbg ledger holds [--all]           holds still in flight: id, provider, amount, age, process
    rmbg ledger settle ID --usd 0.02    close a hold by hand at what the vendor's bill says
    rmbg ledger settle ID --release     close it at $0 (the vendor did not bill it)

A hold stays "held" when its process died mid-call (kill -9, a crash, a
machine lost): its fate is unknown, so it counts as spent until an operator
reads the vendor's dashboard and settles it here.

These commands only read the ledger RMBG_LEDGER names (settle changes a
hold): where there is none they say so and create nothing.
"""

from __future__ import annotations

import argparse
import time
from decimal import Decimal
from typing import TextIO

from ..errors import RmbgError
from ..types import format_usd
from .paid import usd_arg

MOST_BY_HAND = Decimal(1_000_000)  # one call's bill: more is a typo (and nears what the ledger's 64-bit counts hold)


def hand_usd(text: str) -> Decimal:
    """--usd of a hold settled by hand: an amount (usd_arg's rule) of at most MOST_BY_HAND, refused as the
    line is read (an amount over $9.2 billion was a traceback from the database, an integer overflow)."""
    usd = usd_arg(text)
    if usd is None or usd > MOST_BY_HAND:
        raise argparse.ArgumentTypeError(f"must be at most ${MOST_BY_HAND:,} for one call, not {text[:40]!r}")
    return usd


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lg = sub.add_parser("ledger", help="list and settle paid calls held in the money ledger (RMBG_LEDGER)")
    what = lg.add_subparsers(dest="ledger_command", required=True, metavar="ACTION")
    holds = what.add_parser("holds", help="holds in flight (a dead process's calls stay here until settled)")
    holds.add_argument("--all", action="store_true", help="every call, settled ones too")
    holds.set_defaults(func=cmd_holds)
    settle = what.add_parser("settle", help="close a hold by hand")
    settle.add_argument("hold", metavar="ID")
    how = settle.add_mutually_exclusive_group(required=True)
    how.add_argument("--usd", type=hand_usd, metavar="USD", help="what the vendor billed for it")
    how.add_argument("--release", action="store_true", help="it was not billed: count $0")
    settle.set_defaults(func=cmd_settle)


def ledger_at_start(command: str, err: TextIO) -> None:
    """RMBG_LEDGER checked before a command runs (rmbg.money.ledger.check_setting; `rmbg providers`
    reads no ledger): a value that names no ledger is a usage error (exit 2, nothing created);
    a damaged ledger is said, and the command goes on (local models need no ledger; paid
    calls will be refused)."""
    if command == "providers":
        return
    from ..money.ledger import check_setting
    from ..money.ledger.spec import LedgerSettingError
    from .resume import UsageError

    try:
        damaged = check_setting()
    except LedgerSettingError as exc:
        raise UsageError(str(exc)) from None
    if damaged:
        print(f"rmbg: warning: {damaged} Local models still run.", file=err)


def _process(owner: str) -> str:
    from ..money.ledger.owners import owner_alive, shown

    alive = owner_alive(owner)
    return f"{shown(owner)} (" + ("running" if alive else "gone" if alive is False else "another host") + ")"


def cmd_holds(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ..money.ledger import open_ledger

    ledger = open_ledger(create=False)
    rows = ledger.holds(None if args.all else "held")
    print(f"ledger: {ledger.where}", file=out)
    if not rows:
        print("no holds in flight" if not args.all else "no calls recorded", file=out)
        return 0
    now = time.time()
    for row in rows:
        final = "" if row.final is None else f" final ${format_usd(row.final)}"
        print(
            f"{row.id}  {row.provider}  ${format_usd(row.usd)}  {row.state}{final}  {now - row.created:.0f} s ago  "
            f"process {_process(row.owner)}  {', '.join(row.accounts)}",
            file=out,
        )
    return 0


def cmd_settle(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ..money.ledger import open_ledger

    usd = Decimal(0) if args.release else args.usd  # hand_usd's: $0 to MOST_BY_HAND, read with the line
    ledger = open_ledger(create=False)
    state = "released" if args.release else "settled by hand"
    if not ledger.settle(args.hold, usd, priced=False, state=state, note="settled by hand"):
        raise RmbgError(f"No hold {args.hold} is in flight in {ledger.where} (see `rmbg ledger holds`).")
    print(f"{args.hold}: {state} at ${format_usd(usd)}", file=out)
    return 0
