"""The batch engine behind `rmbg remove`: many files through one provider.

- Inputs are files, folders (searched recursively) and glob patterns; only
  image files (rmbg.image.io.IMAGE_SUFFIXES) are taken from folders and globs.
- Outputs mirror the layout under the output folder: a file inside a given
  folder (or under a glob's fixed prefix) keeps its relative path, with the
  suffix of the output format.
- An existing output is skipped unless `overwrite`: the same command again
  resumes a batch. Outputs are written to a temporary name and renamed.
- Hosted providers run `jobs` images at a time, local ones one at a time; a
  failing image is recorded with its reason and the rest go on.
- A budget (USD) stops submitting images once money spent plus the holds of
  the images in flight plus the next image's hold would exceed it. A hold is
  the worst case (the larger of the estimate and the highest cost reported so
  far); the first call runs alone until one has reported its cost; a failed
  call keeps its hold when it may have been billed (rmbg.money.charging).
- The manifest gets one row per image run, in the storage (RMBG_LEDGER) and
  in manifest.csv in the output folder (appended, so a resumed batch keeps
  earlier rows; the last row for an output is current; rmbg.cli.manifest).
  With `claims`, each image is claimed before it starts, so two processes
  on one output folder never make the same output.

The library never prints: progress arrives through a callback.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

from ..api import run_provider
from ..cache import MatteCache
from ..cascade import confidence_of
from ..errors import BudgetError, RmbgError
from ..image.fetch import shown
from ..image.formats import STORE_URI, URL, url_name
from ..image.io import IMAGE_SUFFIXES, load_image
from ..money.charging import metered
from ..money.ledger import Hold, LedgerError, Refused, Wait
from ..money.payer import Payer
from ..providers.base import Provider
from ..refine import Refiner
from ..types import Cost, RenderOptions
from ..wording import words
from . import kept
from .budget import finish, finish_abandoned
from .interrupts import INTERRUPTED, abandon, run_scope, stop_requested, write_unless_abandoned
from .items import NOTHING, Item, Outcome, OutputNames, Status, clash, expand, local_items  # noqa: F401  (batch.Item/Outcome/Status for callers)
from .manifest import WITHOUT_CLAIMS, Claims, hold_back, makers  # noqa: F401  (batch.hold_back for callers)
from .writing import NotWritten, OutputRefused, check_inside, open_no_follow, write_atomic  # noqa: F401  (batch.* for callers)

log = logging.getLogger(__name__)
POLL_S = 0.02  # waiting for another process's paid calls under the same caps
OUTPUT_SUFFIX = {"png": ".png", "webp": ".webp", "jpg": ".jpg", "jpeg": ".jpg"}


@dataclass(frozen=True)
class Settings:
    """How to render (render: background, mask, clean edges, format) and run
    (overwrite, jobs in flight for a hosted provider, max_cost in USD or None,
    refiner: a matte refiner such as ViTMatte, or None; free: rmbg.cli.kept.bought_before)."""

    render: RenderOptions = RenderOptions()
    overwrite: bool = False
    jobs: int = 1
    max_cost: Decimal | None = None
    refiner: Refiner | None = None
    free: frozenset[int] = frozenset()  # ids of the items whose matte an earlier run bought and kept (run_items)


def plan(
    inputs: Sequence[str], out_dir: Path, fmt: str = "png", reads: Sequence[tuple[Path, str]] = (), suffix: str = ""
) -> list[Item]:
    """Every input as an Item with its output path; problems become Items with `error`. `reads`: the other
    files the run reads, (file, what it is: "the --bg image bg.jpg"), which no output may replace; of inputs
    that share an output name, the one OUT/manifest.csv says made it keeps it (rmbg.cli.items.local_items).
    `suffix`: what ends an output's name in place of the format's (`rmbg replace`'s ".replace-1.png")."""
    suffix = suffix or OUTPUT_SUFFIX[fmt.lower()]
    urls = [arg for arg in inputs if URL.match(arg.strip())]
    stores = [arg for arg in inputs if STORE_URI.match(arg.strip())]
    found, missing = expand([arg for arg in inputs if arg not in urls and arg not in stores], out_dir)
    items = [Item(Path(arg), arg, "", Path(), why) for arg, why in missing]
    claimed = OutputNames()
    for uri in dict.fromkeys(stores):  # s3://, gs://, file://: listed and read through pyarrow (rmbg.image.stores)
        from ..image.stores import list_images

        try:
            listed = list_images(uri.strip(), IMAGE_SUFFIXES)
        except RmbgError as exc:
            items.append(Item(uri, uri, "", Path(), str(exc)))
            continue
        if not listed:
            items.append(Item(uri, uri, "", Path(), NOTHING))
        for full, inner in listed:
            output_rel = Path(inner).with_suffix(suffix).as_posix()
            items.append(Item(full, full, output_rel, out_dir / output_rel, _claim(claimed, output_rel, full)))
    for url in dict.fromkeys(urls):  # fetched when processed, behind rmbg.image.fetch's guard
        # many URLs end in the same name (.../photo.jpg): the second is photo-2, the third photo-3
        output_rel = claimed.numbered(Path(url_name(url)).stem or "image", suffix, shown(url))
        items.append(Item(url.strip(), shown(url), output_rel, out_dir / output_rel))
    return items + local_items(found, out_dir, suffix, claimed, reads, makers(out_dir) if found else {})


def _claim(claimed: OutputNames, output_rel: str, who: str) -> str:
    """Reserve an output name for `who` (names that differ only in case are one: OutputNames); the
    clash message when another input has it."""
    other = claimed.claim(output_rel, who)
    return clash(output_rel, other) if other else ""


def to_run(items: Sequence[Item], overwrite: bool) -> list[Item]:
    """The items that will call the provider (no error, output missing or overwrite)."""
    return [i for i in items if not i.error and (overwrite or not i.output.exists())]


def process(
    item: Item,
    provider: Provider,
    settings: Settings,
    cache: MatteCache | None,
    hand_back: list[kept.Paid] | None = None,
) -> Outcome:
    """Load, run, render, encode and write one image (any failure: a failed Outcome); the outcome
    names the provider, with its matte's confidence (rmbg.confidence). A paid matte whose output then
    failed is kept in the storage for the next run, or, with `hand_back` (a Ray worker, maybe on another
    machine: rmbg.cli.ray_engine), put there for the driver to keep, this machine's storage left alone."""
    sure: list[float | None] = []
    paid: list[tuple[Cost, bool]] = []  # a paid matte whose output then failed: (its cost, kept for the next run)

    def work() -> tuple[float, Cost]:
        root = out_root(item)
        check_inside(root, item.output_rel)  # before anything is paid for
        loaded = load_image(item.source)
        # bought by a run that could not write it (a Ray worker's driver wrote those: rmbg.cli.many)
        restored = hand_back is None and kept.restore(cache, loaded, provider, root, item.output_rel)
        if not restored and id(item) in settings.free:  # counted free, so it holds nothing: never bought here
            raise RmbgError(kept.gone())
        result = run_provider(loaded, provider, options=settings.render, cache=cache, refiner=settings.refiner)
        try:
            check_inside(root, item.output_rel)  # a link planted while the call ran
            sure.append(confidence_of(result))
            data = result.encode(settings.render.format)
            if not write_unless_abandoned(item.output, lambda: write_atomic(item.output, data)):
                raise RmbgError(f"{INTERRUPTED}; the result was not written")
        except BaseException:
            if provider.kind == "hosted" and not result.cached and result.cost.usd:  # bought: kept, not bought twice
                found = kept.paid_matte(cache, loaded, provider)
                if hand_back is not None and found is not None:
                    hand_back.append(found)  # the driver keeps it and says so
                paid.append((result.cost, hand_back is None and kept.keep(root, item.output_rel, found)))
            raise
        if restored:
            kept.forget(root, item.output_rel)
        return result.seconds.total, result.cost

    return bought(replace(attempt(item, work), provider=provider.id, confidence=sure[0] if sure else None), paid)


def bought(outcome: Outcome, paid: list[tuple[Cost, bool]], said: str = kept.KEPT) -> Outcome:
    """A failed outcome whose paid call had answered (`paid`: its cost, and whether what it bought is kept for
    the next run): billed, so counted at that cost, not the estimate; a resume holds it back unless kept."""
    if paid and outcome.status == "failed":
        cost, was_kept = paid[0]
        error = f"{outcome.error.rstrip('.')}; {said}." if was_kept else outcome.error
        outcome = replace(outcome, cost=cost, error=error, may_be_billed=True)
    return outcome


def out_root(item: Item) -> Path:
    """The output folder of an item (its output path less output_rel)."""
    root = item.output
    for _ in Path(item.output_rel).parts:
        root = root.parent
    return root


def attempt(item: Item, work: Callable[[], tuple[float, Cost]]) -> Outcome:
    """Run one item's work -> (seconds, cost); any failure becomes a failed
    Outcome with its reason, so one bad file never ends a batch. Whether a
    failure may have been billed is where its paid request got to
    (rmbg.money.charging): accepted or of unknown fate -> may_be_billed, and the
    budget keeps its hold; not sent or refused -> free."""
    with metered() as meter:
        try:
            seconds, cost = work()
        except NotWritten as exc:  # a full or read-only disk, a file where a folder must be: in words
            error = f"its output {item.output_rel} could not be written: {exc.reason}."
            return Outcome(item, "failed", error=error, may_be_billed=meter.state.billable)
        except RmbgError as exc:
            return Outcome(item, "failed", error=words(meter.annotate(exc), "cli"), may_be_billed=meter.state.billable)
        except Exception as exc:  # a provider bug must not end the batch
            return Outcome(item, "failed", error=f"{type(exc).__name__}: {exc}", may_be_billed=meter.state.billable)
    return Outcome(item, "done", seconds=seconds, cost=cost)


def run(
    items: Sequence[Item],
    provider: Provider,
    settings: Settings,
    on_outcome: Callable[[Outcome], None],
    *,
    cache: MatteCache | None = None,
    claims: Claims | None = None,
) -> list[Outcome]:
    """Run a planned batch; `on_outcome` is called in this thread as each item ends.

    Order of outcomes: errors and skips first, then runs as they finish, then
    items left "not_run" by the budget.
    """
    return run_items(
        items,
        to_run(items, settings.overwrite),
        lambda item: process(item, provider, settings, cache),
        on_outcome,
        estimate=provider.estimate().usd if provider.kind == "hosted" else Decimal(0),
        jobs=settings.jobs if provider.kind == "hosted" else 1,
        max_cost=settings.max_cost,
        provider_id=provider.id,
        claims=claims,
        free=settings.free,
    )


def _claimed(claims: Claims, item: Item, provider_id: str, hold: Hold | None, payer: Payer) -> Outcome | None:
    """Claim the item's output (rmbg.cli.manifest.Claims); when another run has
    it (or a dead run's request for it may have been billed), give its hold back
    (its call was never sent) and return what to report instead."""
    instead = claims.claim(item, provider_id, paid=hold is not None, hold=None if hold is None else hold.id)
    if instead is not None and hold is not None:
        payer.settle_by_fate(hold, hold.usd, billable=False, note="not started: its output is another run's")
    return instead


def run_items(
    items: Sequence[Item],
    runnable: Sequence[Item],
    work: Callable[[Item], Outcome],
    on_outcome: Callable[[Outcome], None],
    *,
    estimate: Decimal,
    jobs: int = 1,
    max_cost: Decimal | None = None,
    provider_id: str = "",
    claims: Claims | None = None,
    free: Collection[int] = frozenset(),
) -> list[Outcome]:
    """The scheduler of every batch: `work` on each of `runnable` (the other
    items are reported failed or skipped), `jobs` at a time, never starting
    one whose `estimate` (USD per item) the one rule (rmbg.money.paying) does not
    let through: --max-cost, the day's cap of the operator's keys, the first
    paid call alone; with `claims`, each item's output is claimed (after its
    hold, which a refused claim gives back) before it starts. `free`: the ids of
    items written from what an earlier run bought and kept (rmbg.cli.kept): they
    hold nothing, and their `work` must not buy (it refuses, nothing sent).
    `work` must turn its own failures into Outcomes (see attempt())."""
    outcomes: list[Outcome] = []

    def emit(outcome: Outcome) -> None:
        outcomes.append(outcome)
        on_outcome(outcome)

    chosen = {id(i) for i in runnable}
    for item in items:
        if item.error:
            emit(Outcome(item, "failed", error=item.error, may_be_billed=item.uncertain))
        elif id(item) not in chosen:
            emit(Outcome(item, "skipped"))
    jobs = max(1, jobs)
    pending = deque(runnable)
    payer = Payer.operator("batch", max_cost)  # the one wrapper, split: reserve here, settle by fate in budget.finish
    in_flight: dict = {}
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="rmbg-batch")
    refused, why = False, "budget"
    with run_scope(item.output for item in runnable):
        try:
            while pending or in_flight:
                # every paid call through the one rule (rmbg.money.paying): its hold, the first alone, the caps
                waiting = False
                while pending and len(in_flight) < jobs and not stop_requested.is_set() and not refused:
                    try:
                        paid = bool(estimate) and id(pending[0]) not in free
                        hold = payer.try_reserve(payer.payment(provider_id, estimate)) if paid else None
                    except BudgetError as exc:  # the ledger cannot be used: nothing more is paid, the rest are said
                        refused, why = True, str(exc)
                        break
                    if isinstance(hold, Refused):
                        refused = True
                    elif isinstance(hold, Wait):
                        waiting = True
                        break
                    else:
                        item = pending.popleft()
                        try:
                            instead = _claimed(claims, item, provider_id, hold, payer) if claims else None
                        except LedgerError as exc:  # the storage went mid-run: the rest go on unclaimed, said once
                            claims, instead = None, None
                            log.warning(WITHOUT_CLAIMS, exc, "the output folder")
                        if instead is not None:
                            emit(instead)
                            continue
                        in_flight[pool.submit(work, item)] = (item, hold)
                if not in_flight:
                    if waiting and not stop_requested.is_set():
                        time.sleep(POLL_S)  # another process's first call, or its calls, hold the room
                        continue
                    break  # the budget (or a stop) allows nothing more
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in finished:
                    finish(future, in_flight.pop(future)[1], payer, estimate, emit)
        except BaseException:  # a second Ctrl-C: a paid call in flight may be billed; the manifest and ledger say so
            written = abandon(item.output for item, _ in in_flight.values())  # waits for a write in progress
            for future, (item, hold) in in_flight.items():
                finish_abandoned(future, item, hold, item.output in written, payer, estimate, emit)
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    pool.shutdown()
    why = INTERRUPTED if stop_requested.is_set() else why
    for item in pending:
        emit(Outcome(item, "not_run", error=why))
    return outcomes
