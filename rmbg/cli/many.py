"""`remove_many`: the batch of `rmbg remove` from Python, on this machine or on Ray.

    from rmbg.cli.many import remove_many
    outcomes = remove_many(["photos/"], "out/", "u2netp", engine="ray", workers=4)

Same planning, outputs, atomic writes and manifest as the command
(rmbg.cli.batch, rmbg.cli.manifest: the storage and OUT/manifest.csv);
nothing is printed. Existing outputs are skipped (resume) unless
overwrite=True; an image whose request in an earlier run may have been
billed is not sent again unless retry_uncertain=True.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Literal

from ..cache import MatteCache
from ..money.payer import usd_cap
from ..providers.base import Provider
from ..refine import resolve_refiner
from ..registry import get_provider
from ..types import RenderOptions, one_or_many
from . import batch, kept
from .manifest import Claims, Manifest, uncertain_outputs

DEFAULT_JOBS = {"hosted": 4, "local": 1}  # images in flight: hosted calls wait on the network
BATCH_CACHE_BYTES = 64 * 2**20  # one batch's matte cache: a duplicate image is computed and billed once


def run_engine(
    items: Sequence[batch.Item],
    provider: Provider,
    settings: batch.Settings,
    on_outcome: Callable[[batch.Outcome], None],
    *,
    claims: Claims | None = None,
    engine: Literal["local", "ray"] = "local",
    provider_config: Mapping[str, object] | None = None,
    address: str | None = None,
    workers: int = 2,
    gpus_per_worker: float = 0.0,
    batch_size: int = 1,
) -> list[batch.Outcome]:
    """A planned batch on the chosen engine: this process (rmbg.cli.batch.run)
    or Ray Data (rmbg.cli.ray_engine.run, whose workers rebuild `provider` by
    id with `provider_config`); `claims`: the run's claims on its output
    folder (rmbg.cli.manifest), so no other run makes the same outputs."""
    if engine == "ray":
        from . import ray_engine

        # bought and kept by an earlier run (settings.free, rmbg.cli.kept): written here from the storage with
        # no request; Ray's workers have no kept mattes, and would buy them again
        here = [item for item in items if id(item) in settings.free]
        cache = MatteCache(max_bytes=BATCH_CACHE_BYTES)
        done = batch.run(here, provider, settings, on_outcome, cache=cache, claims=claims)
        rest = [item for item in items if id(item) not in settings.free]
        if here and not batch.to_run(rest, settings.overwrite):  # nothing left to compute: no cluster started
            return done + batch.run(rest, provider, settings, on_outcome, claims=claims)
        return done + ray_engine.run(
            rest,
            provider.id,
            settings,
            on_outcome,
            provider_config=provider_config,
            address=address,
            workers=workers,
            gpus_per_worker=gpus_per_worker,
            batch_size=batch_size,
            claims=claims,
        )
    if engine != "local":
        raise ValueError(f"engine must be 'local' or 'ray', got {engine!r}")
    cache = MatteCache(max_bytes=BATCH_CACHE_BYTES)
    return batch.run(items, provider, settings, on_outcome, cache=cache, claims=claims)


def remove_many(
    inputs: Sequence[str],
    out_dir: str | Path,
    provider: str,
    *,
    engine: Literal["local", "ray"] = "local",
    options: RenderOptions | None = None,
    overwrite: bool = False,
    retry_uncertain: bool = False,
    max_cost: Decimal | float | str | None = None,
    refine: str | None = None,
    jobs: int | None = None,
    provider_config: Mapping[str, object] | None = None,
    address: str | None = None,
    workers: int = 2,
    gpus_per_worker: float = 0.0,
    batch_size: int = 1,
    on_outcome: Callable[[batch.Outcome], None] | None = None,
) -> list[batch.Outcome]:
    """Every image of `inputs` (files, folders, globs, URLs) through `provider`
    into `out_dir`; the outcomes (done, skipped, failed, not_run by the budget).
    engine="ray" runs on Ray Data (rmbg.cli.ray_engine: address, workers,
    gpus_per_worker, batch_size); provider_config goes to every get_provider; max_cost: USD the run may
    spend (0.5, "0.5" or Decimal("0.5"); None: no cap of its own), checked before anything runs."""
    cap = usd_cap(max_cost)
    out = Path(out_dir)
    render = options or RenderOptions()
    items = batch.plan(one_or_many(inputs), out, render.format)  # "photo.jpg" alone is one input
    if not retry_uncertain:
        uncertain = {i.output_rel for i in batch.to_run(items, overwrite)} & uncertain_outputs(out)
        items = batch.hold_back(items, uncertain) if uncertain else items
    built = get_provider(provider, **dict(provider_config or {}))
    if engine == "ray" and batch.to_run(items, overwrite):
        from ..ray_cluster import start, workers_that_fit

        # the workers the cluster has room for, before the manifest is written (rmbg.ray_cluster)
        workers = workers_that_fit(start(address), workers, gpus_per_worker)
    # bought and kept by an earlier run whose output failed (rmbg.cli.kept): written with no request, nothing held
    runnable = batch.to_run(items, overwrite)
    free = kept.bought_before(runnable, out, kept.matte_requests(built)) if built.kind == "hosted" else ()
    settings = batch.Settings(
        render, overwrite, jobs or DEFAULT_JOBS.get(built.kind, 1), cap, resolve_refiner(refine), frozenset(free)
    )
    with Manifest(out, built.id, retry_uncertain=retry_uncertain) as manifest:

        def record(outcome: batch.Outcome) -> None:
            manifest.write(outcome)
            if on_outcome is not None:
                on_outcome(outcome)

        return run_engine(
            items,
            built,
            settings,
            record,
            claims=manifest.claims,
            engine=engine,
            provider_config=provider_config,
            address=address,
            workers=workers,
            gpus_per_worker=gpus_per_worker,
            batch_size=batch_size,
        )
