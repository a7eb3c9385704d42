"""`rmbg remove ... --escalate BETTER`: a free model on every image, a better provider on the least sure.

    rmbg remove photos/ -o out/ --provider u2netp --escalate fal-bria --escalate-share 0.2 --max-cost 5
    rmbg remove photos/ -o out/ --provider u2netp --escalate isnet-general --escalate-below 0.7

1. The batch runs --provider on every image, as `rmbg remove` does (outputs
   written, manifest rows, resume); each outcome keeps its matte's confidence
   (rmbg.confidence).
2. Of the images it made in this run, the least sure go to --escalate: at
   most --escalate-share of them (default 0.3: floor(share x made), the
   lowest confidences first), or every one under --escalate-below. Each is
   made again and its output replaced (--escalate-keep surer: unless the
   first matte was surer). Its manifest row names the provider whose output
   stands, with the call's cost.
3. The escalations are paid calls like any other (rmbg.money.paying through the
   batch's scheduler): estimated before the run from the share (with
   --escalate-below, as if every image went; with u2netp first, the
   expected cost from the share measured under it is printed beside it,
   rmbg.confidence.MEASURED_UNDER), refused without --yes or
   --max-cost, reserved before they are sent, inside --max-cost (what the
   first pass spent counts) and the day's cap. Least sure first, so a cap
   reached mid-run leaves the surer ones with their free result; the summary
   names the images not escalated, and why.

The summary adds "N of M escalated to BETTER" with their cost. Images whose
output an earlier run made are skipped as usual and are not candidates (their
confidence is not kept); --overwrite makes them again. Runs on this machine
only (--engine local).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from ..api import run_provider
from ..cache import MatteCache
from ..cascade import KEEP, check_choice, confidence_of, keeps_first, most_unsure
from ..confidence import DEFAULT_SHARE, MEASURED_MODEL, measured_words
from ..errors import RmbgError
from ..image.io import load_image
from ..providers.base import Provider
from ..refine import resolve_refiner
from ..types import Cost, format_usd
from ..wording import number_text
from . import batch
from .choosing import choose_provider, files_read, render_choices, render_options
from .interrupts import INTERRUPTED, stop_requested, stopping_gently, write_unless_abandoned
from .manifest import Manifest, uncertain_outputs
from .many import BATCH_CACHE_BYTES, DEFAULT_JOBS
from .progress import Progress, printable, summary
from .resume import UsageError, check_resume, output_options, record_options
from .writing import check_inside, write_atomic


def fraction(text: str) -> float:
    typed = number_text("", text, argparse.ArgumentTypeError).strip()  # argparse names the flag
    try:
        value = float(typed.rstrip("%")) / (100 if typed.endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1 (or 0% to 100%): {text!r}")
    return value


def add_escalate_flags(rm: argparse.ArgumentParser, plain: Callable[..., int]) -> None:
    """--escalate and its share or threshold on `rmbg remove`; a run without --escalate goes to `plain`."""
    rm.add_argument(
        "--escalate",
        metavar="ID",
        help="a better provider for the images --provider is least sure of (its matte's confidence); "
        "their outputs are made again by it",
    )
    how = rm.add_mutually_exclusive_group()
    how.add_argument(
        "--escalate-share",
        type=fraction,
        metavar="S",
        help=f"with --escalate: at most this share of the images, the least sure first (default {DEFAULT_SHARE})",
    )
    how.add_argument(
        "--escalate-below",
        type=fraction,
        metavar="C",
        help="with --escalate: every image whose confidence is under C (0..1) instead of a share",
    )

    def run(args, out: TextIO, err: TextIO) -> int:
        if args.escalate is None:
            if args.escalate_share is not None or args.escalate_below is not None or args.escalate_keep != "better":
                raise UsageError("--escalate-share, --escalate-below and --escalate-keep go with --escalate BETTER.")
            return plain(args, out, err)
        return cmd_cascade(args, out, err)

    rm.add_argument(
        "--escalate-keep",
        choices=KEEP,
        default="better",
        help="with --escalate: which matte an escalated image keeps: the better provider's (default) or the "
        "surer of the two (the higher confidence; measured in docs/cascade.md)",
    )
    rm.set_defaults(func=run)


def escalation_gate(
    n_images: int,
    free: Provider,
    better: Provider,
    share: float | None,
    yes: bool,
    max_cost,
    err: TextIO,
    below: float | None = None,
) -> bool:
    """The estimate of a cascade before anything is sent (FREE on every image, BETTER on at
    most the share; with --escalate-below, on every image); False when it is paid and neither
    --yes nor --max-cost was given. With --escalate-below and u2netp first, also the expected
    cost from the share measured under that threshold (rmbg.confidence.measured_words); the
    estimate above it is still the one refused without --yes and reserved against the caps."""
    most = n_images if share is None else math.floor(share * n_images + 1e-9)
    total = Decimal(0)
    for provider, count, what in ((free, n_images, "every image"), (better, most, "escalated at most")):
        if provider.kind != "hosted" or count == 0:
            continue
        each = provider.estimate()
        total += each.usd * count
        print(
            f"Estimated cost for {provider.id} ({what}): {count} images x ${format_usd(each.usd)} = "
            f"${format_usd(each.usd * count)} ({each.note or each.source})",
            file=err,
        )
    measured = measured_words(below) if below is not None and free.id == MEASURED_MODEL else None
    if measured is not None and better.kind == "hosted" and most:
        price = better.estimate().usd
        expected = price * most * Decimal(str(measured[0]))
        print(
            f"Expected cost for {better.id}: {measured[1]}: ${format_usd(expected)} "
            f"(${format_usd(price)} x {measured[0]:.2f} x {most} images; the estimate above is the most)",
            file=err,
        )
    if total == 0 or yes or max_cost is not None:
        return True
    print("This run is paid: pass --yes to accept the estimate, or --max-cost USD to cap the spending.", file=err)
    return False


def cmd_cascade(args, out: TextIO, err: TextIO) -> int:
    """`rmbg remove` with --escalate (module doc)."""
    if args.engine != "local":
        raise UsageError("--escalate runs on this machine: leave out --engine ray.")
    share, below = check_choice(args.escalate_share, args.escalate_below)
    out_dir, background, framing = render_choices(args)
    free = choose_provider(args.provider, err)
    better = choose_provider(args.escalate, err)
    if better.id == free.id:
        raise UsageError(f"--escalate {better.id} is --provider itself: name a better provider.")
    items = batch.plan(args.inputs, out_dir, args.format, files_read(args))
    uncertain = {i.output_rel for i in batch.to_run(items, args.overwrite)} & uncertain_outputs(out_dir)
    if uncertain and not args.retry_uncertain:
        items = batch.hold_back(items, uncertain)
    runnable = batch.to_run(items, args.overwrite)
    options = {**output_options(args, free), "escalate": [better.id, share, below, args.escalate_keep]}
    check_resume(out_dir, options, skipped=sum(not i.error for i in items) - len(runnable), overwrite=args.overwrite)
    if not escalation_gate(len(runnable), free, better, share, args.yes, args.max_cost, err, below):
        return 2
    record_options(out_dir, options)
    render = render_options(args, background, framing)
    refiner = resolve_refiner(args.refine)
    jobs = args.jobs or DEFAULT_JOBS.get(free.kind, 1)
    first = batch.Settings(render, args.overwrite, jobs, args.max_cost, refiner)
    second = batch.Settings(render, True, args.jobs or DEFAULT_JOBS.get(better.kind, 1), args.max_cost, refiner)
    with stopping_gently(err) as stop:
        code = run_cascade(
            items,
            out_dir,
            free,
            better,
            first,
            second,
            share,
            below,
            out,
            err,
            args.retry_uncertain,
            args.escalate_keep,
        )
    return 130 if stop.is_set() else code


def run_cascade(
    items: Sequence[batch.Item],
    out_dir: Path,
    free: Provider,
    better: Provider,
    first: batch.Settings,
    second: batch.Settings,
    share: float | None,
    below: float | None,
    out: TextIO,
    err: TextIO,
    retry_uncertain: bool = False,
    keep: str = "better",
) -> int:
    """Both passes with progress on `err`, every row in the manifest, the summary on `out`; the exit
    code: 0 when every image was made (by either provider) or skipped and no escalation failed."""
    start = time.perf_counter()
    cache = MatteCache(max_bytes=BATCH_CACHE_BYTES)
    with Manifest(out_dir, free.id, retry_uncertain=retry_uncertain) as manifest:
        progress = Progress(len(items), err)
        try:
            made = batch.run(items, free, first, _reporter(manifest, progress), cache=cache, claims=manifest.claims)
        finally:
            progress.close()
        done = [o for o in made if o.status == "done"]
        first_sure = {id(o.item): o.confidence for o in done}
        chosen = [done[i].item for i in most_unsure([o.confidence for o in done], share=share, below=below)]
        spent = sum((o.cost.usd for o in made if o.cost), Decimal(0))
        room = None if second.max_cost is None else max(Decimal(0), second.max_cost - spent)
        escalations: list[batch.Outcome] = []
        if chosen and not stop_requested.is_set():
            progress = Progress(len(chosen), err)
            try:
                escalations = batch.run_items(
                    chosen,
                    chosen,
                    lambda item: escalate_one(item, free.id, first_sure[id(item)], better, second, cache, keep),
                    _reporter(manifest, progress, escalation=True),
                    estimate=better.estimate().usd if better.kind == "hosted" else Decimal(0),
                    jobs=second.jobs if better.kind == "hosted" else 1,
                    max_cost=room,
                    provider_id=better.id,
                    claims=manifest.claims,
                )
            finally:
                progress.close()
        elif chosen:
            escalations = [batch.Outcome(item, "not_run", error=INTERRUPTED) for item in chosen]
    lines = summary(made, time.perf_counter() - start, out_dir).splitlines()
    lines[-1:-1] = escalation_lines(escalations, len(done), free.id, better.id, share, below)
    print("\n".join(lines), file=out)
    failed = any(o.status == "failed" for o in [*made, *escalations])
    return 0 if not failed and all(o.status in ("done", "skipped") for o in made) else 1


def escalate_one(
    item: batch.Item,
    free_id: str,
    free_sure: float | None,
    better: Provider,
    settings: batch.Settings,
    cache: MatteCache | None,
    keep: str,
) -> batch.Outcome:
    """One escalation: `better` on the item; its output is written over the first one's unless
    the first matte was surer (keep="surer", rmbg.cascade.keeps_first). The outcome names
    the provider whose output stands and carries the call's cost."""
    kept_first: list[str] = []

    def work() -> tuple[float, Cost]:
        root = batch.out_root(item)
        check_inside(root, item.output_rel)  # before anything is paid for
        result = run_provider(load_image(item.source), better, options=settings.render, cache=cache,
                              refiner=settings.refiner)  # fmt: skip
        sure = confidence_of(result)
        if keeps_first(free_sure, sure, keep):
            kept_first.append(f"escalated to {better.id}, its matte less sure ({sure:.3f} < {free_sure:.3f}): kept")
            return result.seconds.total, result.cost
        check_inside(root, item.output_rel)  # a link planted while the call ran
        data = result.encode(settings.render.format)
        if not write_unless_abandoned(item.output, lambda: write_atomic(item.output, data)):
            raise RmbgError(f"{INTERRUPTED}; the result was not written")
        return result.seconds.total, result.cost

    outcome = batch.attempt(item, work)
    if kept_first:
        return replace(outcome, provider=free_id, error=kept_first[0])
    return replace(outcome, provider=better.id)


def _reporter(manifest: Manifest, progress: Progress, *, escalation: bool = False):
    """Each outcome into the manifest and the progress; an escalation that did not run
    writes no row (the free result's row stays current)."""

    def on_outcome(o: batch.Outcome) -> None:
        label = f"{o.item.display} (escalated)" if escalation else o.item.display
        if escalation and o.status == "failed":
            o = replace(o, error=f"escalation failed, the output is the first provider's: {o.error}")
        if not (escalation and o.status == "not_run"):
            manifest.write(o)
        progress.update(label, o.status.replace("_", " "), o.cost.usd if o.cost else Decimal(0), o.error)

    return on_outcome


def escalation_lines(
    escalations: Sequence[batch.Outcome], made: int, free: str, better: str, share: float | None, below: float | None
) -> list[str]:
    """The cascade's part of the summary: "N of M escalated" with their cost, and which
    images were chosen and not escalated, with why."""
    rule = f"confidence under {below:g}" if below is not None else f"at most {share:.0%}"
    ok = [o for o in escalations if o.status == "done"]
    firsts = sum(o.provider == free for o in ok)
    cost = sum((o.cost.usd for o in escalations if o.cost), Decimal(0))
    lines = [
        f"{len(ok)} of {made} escalated to {better} ({rule}); escalations cost ${format_usd(cost)}; "
        f"{len(ok) - firsts} kept {better}'s matte, {firsts} kept {free}'s (surer)."
    ]
    failed = [o for o in escalations if o.status == "failed"]
    if failed:
        lines.append(f"Escalation failed, {free}'s result kept ({len(failed)}):")
        lines += [f"  {o.item.display}: {o.error}" for o in failed]
    for why, label in (("budget", "budget"), (INTERRUPTED, "interrupted")):
        left = [o.item.display for o in escalations if o.status == "not_run" and o.error == why]
        if left:
            lines.append(f"Not escalated: {label} ({len(left)}), {free}'s result kept: " + ", ".join(left))
    return [printable(line) for line in lines]  # the names in them escaped, as the summary's
