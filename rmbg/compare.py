"""Several providers on one image, side by side.

Hosted providers run in parallel threads (each call mostly waits on the
network); local providers' forwards run one at a time, because they share one
device and one CPU: each takes the model pool's device lock itself
(rmbg.providers.local.pool). The image is loaded once; mattes go through the same cache as
remove_background, so a repeated comparison costs nothing. A hosted provider's call is paid as
remove_background's is (rmbg.api.library_paid): each held before it is sent, every one of them
counted in the day's total of the operator's keys.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .api import library_paid, resolve_provider, run_provider
from .cache import DEFAULT, CacheArg
from .errors import RmbgError
from .eval.metrics import iou, mae
from .image.compose import check_options
from .image.framing import check_budget
from .image.io import ImageInput, load_image
from .options import RenderKeywords
from .providers.base import Provider
from .refine import Refiner, resolve_refiner
from .result import Result, render_options
from .types import RenderOptions, one_or_many

if TYPE_CHECKING:  # Python 3.10 has no typing.Unpack; annotations are not evaluated
    from typing_extensions import Unpack

MAX_PARALLEL_HOSTED = 8


@dataclass(frozen=True)
class PairAgreement:
    """How alike two mattes are.

    iou: IoU of the masks binarised at alpha >= 0.5 (1 = same pixels; 1 when
        both are empty). mad: mean absolute alpha difference, alpha in [0, 1]
        (0 = identical).
    """

    a: str
    b: str
    iou: float
    mad: float


@dataclass(frozen=True)
class Comparison:
    """results / errors keyed by provider id, in the order asked;
    agreement: every pair of results, in that order; seconds: wall time."""

    results: Mapping[str, Result]
    errors: Mapping[str, RmbgError]
    agreement: tuple[PairAgreement, ...]
    seconds: float


def agreement(results: Mapping[str, Result]) -> tuple[PairAgreement, ...]:
    """Pairwise agreement of the mattes of `results`, in their order."""
    ids = list(results)
    alphas = {pid: np.asarray(results[pid].alpha, dtype=np.float32) / np.float32(255.0) for pid in ids}
    return tuple(
        PairAgreement(a, b, iou(alphas[a], alphas[b]), mae(alphas[a], alphas[b]))
        for i, a in enumerate(ids)
        for b in ids[i + 1 :]
    )


def compare(
    image: ImageInput,
    providers: Sequence[str | Provider],
    *,
    cache: CacheArg = DEFAULT,
    options: RenderOptions | None = None,
    refine: str | Refiner | None = None,
    **render_as: Unpack[RenderKeywords],
) -> Comparison:
    """Run every provider on `image`; a provider's RmbgError is recorded in
    `errors` and the others go on. An unreadable image raises at once.
    options and the render keywords (rmbg.options: the background, the mask, the edges, the framing):
    see remove_background (checked before any provider runs).
    refine: also show each provider refined (e.g. "vitmatte"), keyed
    "<id>+<refiner id>" right after its plain result; the provider is called
    once for both (the refined run reuses its matte). A provider named twice runs once."""
    start = time.perf_counter()
    opts = check_options(options or render_options(render_as))
    refiner = resolve_refiner(refine)
    loaded = load_image(
        image, check=lambda size: check_budget(size, opts.framing, opts.format)
    )  # a frame's size, before any call
    built: dict[str, Provider] = {}  # by id, in the order given: a provider named twice runs (and is paid) once
    for given in one_or_many(providers):  # one id alone is one provider, not its letters
        provider = resolve_provider(given)[0]
        built.setdefault(provider.id, library_paid(provider))

    def one(provider: Provider) -> list[tuple[str, Result | RmbgError]]:
        def go() -> list[tuple[str, Result | RmbgError]]:
            out: list[tuple[str, Result | RmbgError]] = []
            try:
                out.append((provider.id, run_provider(loaded, provider, options=opts, cache=cache)))
            except RmbgError as exc:
                return [(provider.id, exc)]
            if refiner is not None:
                key = f"{provider.id}+{refiner.id}"
                try:
                    out.append((key, run_provider(loaded, provider, options=opts, cache=cache, refiner=refiner)))
                except RmbgError as exc:
                    out.append((key, exc))
            return out

        return go()

    workers = max(1, min(len(built), MAX_PARALLEL_HOSTED))
    # each provider runs in the caller's context (a copy each): the web app's slot this request works in
    # (rmbg.webapp.slots) is known in the threads, so a paid call waiting there steps out of it
    contexts = [contextvars.copy_context() for _ in built]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rmbg-compare") as pool:
        ran = pool.map(lambda context, provider: context.run(one, provider), contexts, built.values())
        outcomes = [pair for pairs in ran for pair in pairs]
    results = {key: out for key, out in outcomes if isinstance(out, Result)}
    errors = {key: out for key, out in outcomes if isinstance(out, RmbgError)}
    return Comparison(results, errors, agreement(results), time.perf_counter() - start)
