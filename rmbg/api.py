"""The public entry point: remove_background().

load -> (validate render options) -> cache -> provider -> render, the same
path for the Python API, the CLI's batch, rmbg.compare and the web app.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from .cache import DEFAULT, CacheArg, MatteCache, resolve_cache
from .cascade import check_choice, confidence_of, escalated, keeps_first, kept, most_unsure, paying
from .confidence import DEFAULT_BELOW, meta_text
from .confidence import META_KEY as CONFIDENCE
from .defaults import default_provider
from .errors import BudgetError, InvalidImageError, ProviderResponseError, RmbgError
from .image.arrays import alpha_product
from .image.compose import check_options, render
from .image.framing import check_budget
from .image.io import ImageInput, LoadedImage, load_image
from .options import RenderKeywords, python_help
from .providers.base import Provider
from .refine import Refiner, cache_options, chain, refine_matte, resolve_refiner
from .registry import get_provider
from .result import Result, render_options
from .types import Cost, Matte, RenderOptions, Seconds, one_or_many

if TYPE_CHECKING:  # Python 3.10 has no typing.Unpack; annotations are not evaluated
    from typing_extensions import Unpack

# Kept for callers that read it: the gated model this library first defaulted
# to. What runs for a user who names none is defaults.default_provider(): the
# best model at hand that answers within 3 s on this machine (measured), else
# the ungated U2-Net-p; the reason is recorded in result.meta["default_reason"].
DEFAULT_PROVIDER = "rmbg-1.4"


def resolve_provider(provider: str | Provider | None) -> tuple[Provider, str]:
    """(provider, why it was chosen: "" unless it is the default)."""
    if provider is None:
        provider_id, reason = default_provider()
        return get_provider(provider_id), reason
    return (get_provider(provider) if isinstance(provider, str) else provider), ""


def library_paid(provider: Provider) -> Provider:
    """`provider` with its hosted calls paid by the library's payer (rmbg.money.payer.library: reserved before
    each is sent, recorded in the day's total by where it got to); a free one, or one a door already
    pays (pays_itself: the web app's Guarded, a cascade's Paid), as it is: no payer, no ledger opened."""
    if provider.kind != "hosted" or getattr(provider, "pays_itself", False):
        return provider
    from .money.payer import Paid, library

    return Paid(provider, library())


def matte_for(
    loaded: LoadedImage, provider: Provider, *, cache: CacheArg = DEFAULT, refiner: Refiner | None = None
) -> tuple[Matte, bool]:
    """The matte of a loaded image through a provider, from the cache when possible.

    Returns (matte, cached): cached means the provider was not called (nothing
    charged). With a refiner (e.g. ViTMatte) the refined matte is cached under
    its own key and the provider's matte under the plain one, so refining,
    or going back, never calls a paid provider again.
    """
    store = resolve_cache(cache)
    if refiner is not None:
        return _refined(loaded, provider, store, refiner)
    return _provider_matte(loaded, provider, store)


def _refined(loaded: LoadedImage, provider: Provider, store: MatteCache | None, refiner: Refiner) -> tuple[Matte, bool]:
    # The key (a hash of every pixel) only where there is a cache to look in.
    key = (
        None
        if store is None
        else MatteCache.key_of(loaded.digest, provider, cache_options(provider.options(), refiner))
    )
    hit = None if store is None or key is None else store.get(key)
    if hit is not None:
        return hit, True
    plain, cached = _provider_matte(loaded, provider, store)
    # a provider may run the refiner where it runs its own model (the app's, on ZeroGPU: in the GPU worker)
    refined = getattr(provider, "refine_matte", refine_matte)(refiner, loaded.rgb, plain)
    if store is not None and key is not None:
        store.put(key, refined)
    return refined, cached


def _provider_matte(loaded: LoadedImage, provider: Provider, store: MatteCache | None) -> tuple[Matte, bool]:
    def made() -> Matte:
        matte = provider.matte(loaded.rgb)
        if matte.alpha.mode != "L" or matte.alpha.size != loaded.size:
            raise ProviderResponseError(
                provider.id,
                f"returned a {matte.alpha.mode} matte of {matte.alpha.size[0]}x{matte.alpha.size[1]} "
                f"for a {loaded.size[0]}x{loaded.size[1]} image",
            )
        return matte

    if store is None:
        return made(), False
    # the same key asked for while its first call runs waits for that call (one paid call, not two)
    return store.once(MatteCache.key_of(loaded.digest, provider), made)


def combine_alpha(matte: Image.Image, own: Image.Image | None) -> Image.Image:
    """Multiply the predicted matte by the input's own alpha (both mode L)."""
    if own is None:
        return matte
    return Image.fromarray(alpha_product(np.asarray(matte), np.asarray(own)), "L")


def remove_background(
    image: ImageInput,
    provider: str | Provider | None = None,
    *,
    keep_input_alpha: bool = True,
    max_pixels: int | None = None,
    cache: CacheArg = DEFAULT,
    options: RenderOptions | None = None,
    refine: str | Refiner | None = None,
    points: Sequence[Sequence[float]] | None = None,
    box: Sequence[float] | None = None,
    escalate: str | Provider | None = None,
    escalate_below: float = DEFAULT_BELOW,
    **render_as: Unpack[RenderKeywords],
) -> Result:
    """Remove the background of one image.

    image: a path, bytes, a binary file or a PIL image.
    provider: a registered id ("rmbg-1.4", ...) or a provider object; None
        = the default (rmbg.default_provider(): the best model that can run
        here without setup), with the reason in result.meta["default_reason"].
    keep_input_alpha: multiply the matte by the input's own alpha, so pixels
        that were already transparent stay transparent.
    cache: mattes are cached by (image content, provider, options) in the
        default cache; pass a MatteCache of your own, or None to always call
        the provider. A cached result costs nothing new.
    options: a RenderOptions instead of the render keywords below.
    refine: "vitmatte" (or a refiner from rmbg.refine.get_refiner) re-estimates
        the matte's soft edges after any provider, local or hosted; only the
        uncertain band around the edge changes.
    points, box: keep only the subject these SAM 2 prompts point at:
        points [(x, y, keep)] in image pixels (keep=False marks something to
        drop), box (x0, y0, x1, y1). The provider's matte is kept inside the
        picked object's mask grown by 0.5 % of the longer side
        (rmbg.refine.select), then `refine` runs. Needs transformers and the
        SAM 2.1 weights (facebook/sam2.1-hiera-tiny, Apache-2.0); for another
        model pass refine=rmbg.refine.get_refiner("sam2-pick", points=...,
        model=...).
    escalate, escalate_below: a better provider for when this one is unsure:
        where the matte's confidence (result.meta["confidence"],
        rmbg.confidence) is under `escalate_below`, the image goes to
        `escalate` too and its result is returned (its meta["escalation"]
        says what it replaced). A hosted one is paid through the one rule
        (rmbg.money.paying); refused by a cap, or failing, the first result is
        returned with meta["escalation"] saying why. For a batch with a
        share: rmbg.cascade.

    The render keywords (rmbg.options, one declaration for every door; re-render with
    Result.render(...) for another look or frame at no cost):
    RENDER_KEYWORDS

    The render options are checked before the image is sent anywhere: a bad
    colour never costs a paid call.
    """
    start = time.perf_counter()
    opts = check_options(options or render_options(render_as))
    # the frame's budget is checked on the header's size: nothing decodes, runs or pays over it
    loaded = load_image(image, max_pixels=max_pixels, check=lambda size: check_budget(size, opts.framing, opts.format))
    pick = subject_pick(points, box, loaded.size)
    chosen, reason = resolve_provider(provider)
    result = run_provider(
        loaded,
        library_paid(chosen),
        options=opts,
        keep_input_alpha=keep_input_alpha,
        cache=cache,
        started=start,
        refiner=chain(pick, resolve_refiner(refine)),
    )
    if reason:
        from dataclasses import replace

        result = replace(result, meta={**result.meta, "default_reason": reason})
    if escalate is not None:
        result = _escalated(result, loaded, escalate, escalate_below, opts, keep_input_alpha, cache, refine, pick)
    return result


remove_background.__doc__ = (remove_background.__doc__ or "").replace("    RENDER_KEYWORDS", python_help())


def _escalated(
    result: Result,
    loaded: LoadedImage,
    better: str | Provider,
    below: float,
    opts: RenderOptions,
    keep_input_alpha: bool,
    cache: CacheArg,
    refine: str | Refiner | None,
    pick: Refiner | None,
) -> Result:
    """remove_background's escalation (its doc): the better provider's result where `result` is unsure."""
    from .errors import BudgetError, RmbgError

    check_choice(None, below)
    score = confidence_of(result)
    if score is None or score >= below:
        return result
    provider = library_paid(resolve_provider(better)[0])
    try:
        better_result = run_provider(
            loaded, provider, options=opts, keep_input_alpha=keep_input_alpha, cache=cache,
            refiner=chain(pick, resolve_refiner(refine)),
        )  # fmt: skip
    except BudgetError as exc:
        return kept(result, f"the budget was reached ({exc})")
    except RmbgError as exc:
        return kept(result, f"{provider.id} failed ({exc})", exc.counted_usd)
    return escalated(result, better_result)


def subject_pick(
    points: Sequence[Sequence[float]] | None, box: Sequence[float] | None, size: tuple[int, int]
) -> Refiner | None:
    """SAM 2 picking for these prompts, checked against the image size before
    any provider call; None without prompts."""
    if not points and box is None:
        return None
    from .refine import check_refiner
    from .refine.sam2 import SubjectPick

    check_refiner("sam2-pick")  # the licence switch (RMBG_COMMERCIAL_ONLY) before SAM 2 is built
    try:
        pick = SubjectPick(points, box)
        pick.check(size)
    except ValueError as exc:
        raise InvalidImageError(f"SAM 2 prompt: {exc}.") from None
    return pick


def run_provider(
    loaded: LoadedImage,
    provider: Provider,
    *,
    options: RenderOptions | None = None,
    keep_input_alpha: bool = True,
    cache: CacheArg = DEFAULT,
    started: float | None = None,
    refiner: Refiner | None = None,
) -> Result:
    """One provider on an already loaded image -> Result, rendered with `options`
    (and its matte refined by `refiner`, if given).

    `started` is the perf_counter() time the caller's work began, so
    Result.seconds.total covers loading too.
    """
    start = time.perf_counter() if started is None else started
    opts = options or RenderOptions()
    check_budget(loaded.size, opts.framing, opts.format)  # before the provider: never paid, then refused
    matte, cached = matte_for(loaded, provider, cache=cache, refiner=refiner)
    alpha = combine_alpha(matte.alpha, loaded.alpha if keep_input_alpha else None)
    out = render(loaded.rgb, alpha, options=opts)
    cost = Cost.free("cached matte, no new charge") if cached else matte.cost
    sure = meta_text(matte.alpha)  # the matte's own, before the input's alpha (rmbg.confidence)
    return Result(
        image=out,
        alpha=alpha,
        source=loaded.rgb,
        provider=provider.id,
        seconds=Seconds(model=0.0 if cached else matte.seconds, total=time.perf_counter() - start),
        cost=cost,
        cached=cached,
        meta={**matte.meta, "options": _options_text(provider), CONFIDENCE: sure},
    )


def _options_text(provider: Provider) -> str:
    from .cache import options_key

    return options_key(provider.options())


def cascade(
    images: Sequence[Any],
    free: str | Provider,
    better: str | Provider,
    *,
    share: float | None = None,
    below: float | None = None,
    max_cost: Decimal | float | str | None = None,
    keep: str = "better",
    **options: Any,
) -> list[Result]:
    """Every image through `free`, then the least sure through `better` (rmbg.cascade).

    images: what remove_background takes (paths, bytes, PIL images, URLs; not an
        open file: an escalated image is read again).
    share / below: escalate at most this share of the images (default 0.3),
        or those whose confidence is under `below`; not both.
    max_cost: USD the escalations may spend (None: no cap of its own; the
        day's cap of the operator's keys still applies).
    keep: "better" (default): an escalated image gets the better provider's
        result; "surer": whichever of its two mattes has the higher confidence.
    options: remove_background's (its render keywords, refine, ...),
        the same for both providers.
    Returns one Result per image, in order; `result.provider` says which
    provider made it, `meta["escalation"]` what happened to an image chosen
    for escalation. An image the free provider fails raises, as
    remove_background does, before anything is paid.
    """
    images = one_or_many(images)  # a lone path is one image, not its letters
    share, below = check_choice(share, below)
    keeps_first(None, None, keep)  # checked before anything runs
    free_p = get_provider(free) if isinstance(free, str) else free
    better_p = get_provider(better) if isinstance(better, str) else better
    from .money.payer import usd_cap

    cap = usd_cap(max_cost)  # before anything runs
    results = [remove_background(image, free_p, **options) for image in images]
    paid = paying(better_p, cap)
    stopped = ""
    for i in most_unsure([confidence_of(r) for r in results], share=share, below=below):
        if stopped:
            results[i] = kept(results[i], stopped)
            continue
        try:
            results[i] = escalated(results[i], remove_background(images[i], paid, **options), keep)
        except BudgetError as exc:
            stopped = f"the budget was reached ({exc})"
            results[i] = kept(results[i], stopped)
        except RmbgError as exc:
            results[i] = kept(results[i], f"{better_p.id} failed ({exc})", exc.counted_usd)
    return results
