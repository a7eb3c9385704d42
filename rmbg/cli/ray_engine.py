"""`rmbg remove --engine ray`: the same batch spread over a Ray cluster with Ray Data.

What stays the local engine's (rmbg.cli.batch): planning (names, resume
filter, name clashes), the per-image work (`process`: load, provider,
render, atomic write) and the manifest, written by the driver as outcomes
stream back. What Ray adds:

- the runnable items become a Ray dataset (`ray.data.from_items`); files
  already done are filtered out before scheduling (resume);
- `map_batches` with a class (an actor pool of `workers` actors, each with
  `gpus_per_worker` GPUs; no more actors than images to run): every actor
  builds one provider and keeps its model loaded for all its batches; a
  cluster without room for one such actor is refused before any is made,
  and one with room for fewer runs that many (rmbg.ray_cluster, shared with `rmbg video --engine ray`);
- one budget for the whole job, an async Ray actor (rmbg.cli.budget.SharedBudget)
  that every worker asks before each image: for a paid call its hold is
  reserved through the one wrapper (rmbg.money.payer.Payer, split form), then
  settled with the real cost, and kept when the call may have been billed by
  where its request got to (rmbg.money.charging): the same settle_outcome as the
  local scheduler. Under a cap the first paid call runs alone until one
  has reported its cost. The number of calls in flight is the number of actors;
- a paid matte whose output a worker could not write travels back with its
  outcome (the row's "kept"): the driver keeps it in its own storage
  (rmbg.cli.kept) before recording the outcome, so the next run writes it
  without paying again; a worker never writes into its machine's ledger;
- Ctrl-C / SIGTERM as on the local engine (rmbg.cli.interrupts): the first
  tells the budget actor to start nothing new (the images not started are
  "not run (interrupted)", the calls in flight finish and are written); a
  second records every call still in flight, by the actor's list, as "may
  have been billed";
- worker processes get the driver's RMBG_* and HF_* settings through Ray's
  runtime_env, but never a secret (API keys, HF_TOKEN): runtime_env is shown
  in Ray's dashboard and job records, so each node reads its own FAL_KEY,
  RUNWARE_API_KEY and HF_TOKEN from its environment (a local Ray inherits the
  driver's).

Ray is imported only when the engine is used (rmbg.ray_cluster.start).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from ..cache import MatteCache
from ..errors import RmbgError
from ..ray_cluster import IDLE, gpu_ask, start, worker_provider, workers_that_fit
from . import batch, kept
from .budget import SharedBudget, in_flight_outcome, kept_hold
from .interrupts import abandoned, on_stop, stop_requested
from .manifest import Claims

MAX_BLOCKS = 1000  # the most blocks a batch's dataset is split into (one per image below it)
ABANDON_TIMEOUT_S = 10.0  # asking the budget actor for the calls in flight, after a second signal


COLUMNS = (
    "index", "status", "seconds", "cost_usd", "cost_source", "cost_note", "watermarked", "error", "may_be_billed",
    "kept",  # a paid matte whose output failed, for the driver to keep (paid_text), else ""
)  # fmt: skip


def row_of(index: int, item: batch.Item) -> dict[str, object]:
    """An item as a dataset row (plain values: they travel to the workers, whose
    working folder is not ours, so paths are absolute)."""
    is_url = not isinstance(item.source, Path)
    return {
        "index": index,
        "source": str(item.source) if is_url else os.path.abspath(item.source),
        "is_url": is_url,
        "display": item.display,
        "output_rel": item.output_rel,
        "output": os.path.abspath(item.output),
    }


def item_of(row: Mapping[str, Any]) -> batch.Item:
    source = str(row["source"])
    return batch.Item(
        source if row["is_url"] else Path(source), str(row["display"]), str(row["output_rel"]), Path(str(row["output"]))
    )


class Remover:
    """One Ray actor: one provider (its model loaded once), many batches."""

    def __init__(
        self,
        provider_id: str,
        provider_config: Mapping[str, object],
        settings: batch.Settings,
        budget: Any,
        claims: Claims | None = None,
    ):
        import ray

        self.provider = worker_provider(provider_id, provider_config, ray.get_gpu_ids())
        self.settings, self.budget, self.claims = settings, budget, claims
        self.estimate = self.provider.estimate().usd if self.provider.kind == "hosted" else Decimal(0)

    def __call__(self, rows: dict) -> dict:
        import ray

        out: dict[str, list] = {name: [] for name in COLUMNS}
        for i, index in enumerate(rows["index"]):
            item = item_of({key: rows[key][i] for key in rows})
            # every image asks the shared budget first: a stop, the cap, the first paid call alone
            hold, why = ray.get(self.budget.reserve.remote(int(index), self.estimate))
            instead = None
            handed: list[kept.Paid] = []  # a paid matte whose output failed (batch.process), for the driver
            if hold is not None and self.claims is not None:  # another run may have this output (rmbg.cli.manifest)
                instead = self.claims.claim(item, self.provider.id, paid=bool(hold))
            if hold is None:
                outcome = batch.Outcome(item, "not_run", error=why)
            elif instead is not None:
                ray.get(self.budget.settle.remote(int(index), batch.Outcome(item, "not_run")))  # its hold goes back
                outcome = instead
            else:
                # a cache of its own, where a paid matte is found to hand back (never this machine's storage)
                outcome = batch.process(item, self.provider, self.settings, MatteCache(), hand_back=handed)
                outcome = kept_hold(outcome, hold)
                ray.get(self.budget.settle.remote(int(index), outcome))
            cost = outcome.cost
            values = (
                int(index),
                outcome.status,
                outcome.seconds,
                "" if cost is None else str(cost.usd),
                "" if cost is None else cost.source,
                "" if cost is None else cost.note,
                cost is not None and cost.watermarked,
                outcome.error,
                outcome.may_be_billed,
                paid_text(handed[0]) if handed else "",
            )
            for name, value in zip(COLUMNS, values):
                out[name].append(value)
        return out


def outcome_of(row: Mapping[str, Any], items: Sequence[batch.Item]) -> batch.Outcome:
    from ..types import Cost

    cost = (
        Cost(Decimal(row["cost_usd"]), row["cost_source"], row["cost_note"], bool(row["watermarked"]))
        if row["cost_usd"]
        else None
    )
    item = items[int(row["index"])]
    outcome = batch.Outcome(item, row["status"], float(row["seconds"]), cost, row["error"], bool(row["may_be_billed"]))
    if not row["kept"]:
        return outcome
    # a worker's paid matte whose output failed: kept here, in the driver's storage, and said as batch.process says it
    was_kept = kept.keep(batch.out_root(item), item.output_rel, paid_of(str(row["kept"])))
    return batch.bought(outcome, [(cost, was_kept)]) if cost is not None else outcome


def paid_text(paid: kept.Paid) -> str:
    """A paid matte as a row's plain text, to travel from a worker to the driver (paid_of)."""
    said = {"request": paid.request, "provider_id": paid.provider_id, "meta": paid.meta}
    return json.dumps({**said, "png": base64.b64encode(paid.png).decode("ascii")}, default=str)


def paid_of(text: str) -> kept.Paid:
    said = json.loads(text)
    return kept.Paid(said["request"], said["provider_id"], base64.b64decode(said["png"]), said["meta"])


def run(
    items: Sequence[batch.Item],
    provider_id: str,
    settings: batch.Settings,
    on_outcome: Callable[[batch.Outcome], None],
    *,
    provider_config: Mapping[str, object] | None = None,
    address: str | None = None,
    workers: int = 2,
    gpus_per_worker: float = 0.0,
    batch_size: int = 1,
    claims: Claims | None = None,
) -> list[batch.Outcome]:
    """A planned batch on Ray; outcomes reach `on_outcome` in this process as
    they stream back (order of arrival). Same outcomes as batch.run; each
    worker claims an output before it starts it (`claims`)."""
    if workers < 1 or batch_size < 1 or gpus_per_worker < 0:
        raise RmbgError("--workers and --batch-size must be at least 1, --gpus-per-worker 0 or more.")
    ray = start(address)
    outcomes: list[batch.Outcome] = []

    def emit(outcome: batch.Outcome) -> None:
        outcomes.append(outcome)
        on_outcome(outcome)

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the CLI reports progress itself, one line per image
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    runnable = batch.to_run(items, settings.overwrite)  # resume: what exists is never scheduled
    chosen = {id(i) for i in runnable}
    for item in items:
        if item.error:
            emit(batch.Outcome(item, "failed", error=item.error))
        elif id(item) not in chosen:
            emit(batch.Outcome(item, "skipped"))
    if not runnable:
        return outcomes
    # before any actor: none pending forever; and no more than the images: each worker starts a process and
    # builds the provider (a local model loads), and Ray Data starts every worker of the pool, busy or not
    workers = workers_that_fit(ray, min(workers, len(runnable)), gpus_per_worker)
    IDLE.release(ray)  # idle video workers of this process hold CPUs and GPUs Ray Data's actors would wait for
    budget = ray.remote(SharedBudget).options(num_cpus=0).remote(settings.max_cost, provider_id)
    # One block per image up to MAX_BLOCKS: Ray Data hands a block to one actor, so the default (one
    # block for a small list) would run a whole batch on one worker while the others sit idle.
    dataset = ray.data.from_items(
        [row_of(i, item) for i, item in enumerate(runnable)], override_num_blocks=min(len(runnable), MAX_BLOCKS)
    )
    mapped = dataset.map_batches(
        Remover,
        fn_constructor_kwargs={
            "provider_id": provider_id,
            "provider_config": dict(provider_config or {}),
            "settings": replace(settings, free=frozenset()),  # ids of this process's items: none of a worker's
            "budget": budget,
            "claims": claims,
        },
        batch_size=batch_size,
        concurrency=workers,
        batch_format="numpy",
        **gpu_ask(gpus_per_worker),
    )
    wake = threading.Event()  # set by the first stop signal, or when the run ends

    def forward_stop() -> None:  # not in the signal handler itself: a Ray call there could re-enter Ray
        wake.wait()
        if stop_requested.is_set():
            ray.get(budget.stop.remote())

    forwarder = threading.Thread(target=forward_stop, name="rmbg-ray-stop", daemon=True)
    forwarder.start()
    try:
        with on_stop(wake.set):
            for row in mapped.iter_rows():
                emit(outcome_of(row, runnable))
    except KeyboardInterrupt:  # a second signal: what is in flight may be billed; the manifest says so
        abandoned.set()
        for index, hold in sorted(ray.get(budget.abandon.remote(), timeout=ABANDON_TIMEOUT_S).items()):
            emit(in_flight_outcome(runnable[index], hold))
        raise
    except ray.exceptions.RayError as exc:
        # a worker that cannot start (provider unknown there, weights missing) or died: one readable error
        cause = getattr(exc, "cause", None) or exc
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[-1]
        raise RmbgError(
            f"A Ray worker failed: {first[:400].rstrip('.')}. The {len(outcomes)} outcome(s) so far are "
            "recorded and their outputs kept; fix the cause and run the same command again to "
            "resume."
        ) from None
    finally:
        wake.set()
        forwarder.join()
    return outcomes


def fitted_workers(address: str | None, workers: int, gpus_per_worker: float, err: TextIO) -> int:
    """The command line's check, before anything is written or sent: Ray started (or joined), and the
    workers it has room for (rmbg.ray_cluster.workers_that_fit, said on `err`)."""
    return workers_that_fit(start(address), workers, gpus_per_worker, lambda text: print(f"rmbg: {text}", file=err))
