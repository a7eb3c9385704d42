"""`remove_many`: the batch of `rmbg remove` from Python, on this machine or on Ray.

    from rmbg.cli.many import remove_many
    outcomes = remove_many(["photos/"], "out/", "u2netp", engine="ray", workers=4)

Same planning, outputs, atomic writes and OUT/manifest.csv as the command
(rmbg.cli.batch); nothing is printed. Existing outputs are skipped (resume)
unless overwrite=True.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Callable, Literal, Mapping, Optional, Sequence

from ..cache import MatteCache
from ..refine import resolve_refiner
from ..registry import get_provider
from ..types import RenderOptions
from . import batch
from .progress import Manifest


def remove_many(
    inputs: Sequence[str],
    out_dir: "str | Path",
    provider: str,
    *,
    engine: Literal["local", "ray"] = "local",
    options: RenderOptions | None = None,
    overwrite: bool = False,
    max_cost: Optional[Decimal] = None,
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
    gpus_per_worker, batch_size); provider_config goes to every get_provider."""
    out = Path(out_dir)
    render = options or RenderOptions()
    items = batch.plan(inputs, out, render.format)
    built = get_provider(provider, **dict(provider_config or {}))
    settings = batch.Settings(render, overwrite, jobs or (4 if built.kind == "hosted" else 1), max_cost,
                              resolve_refiner(refine))
    with Manifest(out, built.id) as manifest:

        def record(outcome: batch.Outcome) -> None:
            manifest.write(outcome)
            if on_outcome is not None:
                on_outcome(outcome)

        if engine == "ray":
            from . import ray_engine

            return ray_engine.run(items, provider, settings, record, provider_config=provider_config,
                                  address=address, workers=workers, gpus_per_worker=gpus_per_worker,
                                  batch_size=batch_size)
        if engine != "local":
            raise ValueError(f"engine must be 'local' or 'ray', got {engine!r}")
        return batch.run(items, built, settings, record, cache=MatteCache(max_bytes=64 * 1024 * 1024))
