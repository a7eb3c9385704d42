"""The public entry point: remove_background()."""

from __future__ import annotations

import time

import numpy as np
from PIL import Image

from .cache import MatteCache, default_cache
from .image.compose import Background, render
from .errors import ProviderResponseError
from .image.io import ImageInput, LoadedImage, load_image
from .providers.base import Provider
from .registry import get_provider
from .types import Cost, Matte, Result, Seconds

DEFAULT_PROVIDER = "rmbg-1.4"


def resolve_provider(provider: str | Provider) -> Provider:
    return get_provider(provider) if isinstance(provider, str) else provider


def matte_for(
    loaded: LoadedImage, provider: Provider, *, cache: MatteCache | None = default_cache
) -> tuple[Matte, bool]:
    """The matte of a loaded image through a provider, from the cache when possible.

    Returns (matte, cached). A provider's answer of the wrong size or mode is
    an error, never silently resized.
    """
    key = MatteCache.key(loaded.digest, provider.id, provider.options())
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            return hit, True
    matte = provider.matte(loaded.rgb)
    if matte.alpha.mode != "L" or matte.alpha.size != loaded.size:
        raise ProviderResponseError(
            provider.id,
            f"returned a {matte.alpha.mode} matte of {matte.alpha.size[0]}x{matte.alpha.size[1]} "
            f"for a {loaded.size[0]}x{loaded.size[1]} image",
        )
    if cache is not None:
        cache.put(key, matte)
    return matte, False


def combine_alpha(matte: Image.Image, own: Image.Image | None) -> Image.Image:
    """Multiply the predicted matte by the input's own alpha (both mode L)."""
    if own is None:
        return matte
    product = (np.asarray(matte, dtype=np.uint16) * np.asarray(own, dtype=np.uint16) + 127) // 255
    return Image.fromarray(product.astype(np.uint8), "L")


def remove_background(
    image: ImageInput,
    provider: str | Provider = DEFAULT_PROVIDER,
    *,
    background: Background = None,
    mask_only: bool = False,
    keep_input_alpha: bool = True,
    max_pixels: int | None = None,
    refine_foreground: bool = False,
    cache: MatteCache | None = default_cache,
) -> Result:
    """Remove the background of one image.

    image: a path, bytes, a binary file or a PIL image.
    provider: a registered id ("rmbg-1.4", ...) or a provider object.
    background: None (transparent), a colour ("#RRGGBB", a CSS name, an RGB
        tuple) or a PIL image (fitted to cover).
    mask_only: return the matte itself as the image.
    keep_input_alpha: multiply the matte by the input's own alpha, so pixels
        that were already transparent stay transparent.
    refine_foreground: estimate the foreground colour of semi-transparent
        edge pixels (rmbg.image.foreground.estimate_foreground) so they lose the old
        background's tint; ignored with mask_only.
    cache: mattes are cached by (image content, provider, options); pass None
        to always call the provider. A cached result costs nothing new.
    """
    start = time.perf_counter()
    loaded = load_image(image, max_pixels=max_pixels)
    return run_provider(
        loaded,
        resolve_provider(provider),
        background=background,
        mask_only=mask_only,
        keep_input_alpha=keep_input_alpha,
        cache=cache,
        started=start,
        refine_foreground=refine_foreground,
    )


def run_provider(
    loaded: LoadedImage,
    provider: Provider,
    *,
    background: Background = None,
    mask_only: bool = False,
    keep_input_alpha: bool = True,
    cache: MatteCache | None = default_cache,
    started: float | None = None,
    refine_foreground: bool = False,
) -> Result:
    """One provider on an already loaded image -> Result (see remove_background).

    `started` is the perf_counter() time the caller's work began, so
    Result.seconds.total covers loading too.
    """
    start = time.perf_counter() if started is None else started
    matte, cached = matte_for(loaded, provider, cache=cache)
    alpha = combine_alpha(matte.alpha, loaded.alpha if keep_input_alpha else None)
    out = render(loaded.rgb, alpha, background=background, mask_only=mask_only, refine_foreground=refine_foreground)
    cost = Cost.free("cached matte, no new charge") if cached else matte.cost
    return Result(
        image=out,
        alpha=alpha,
        source=loaded.rgb,
        provider=provider.id,
        seconds=Seconds(model=0.0 if cached else matte.seconds, total=time.perf_counter() - start),
        cost=cost,
        cached=cached,
        meta={**matte.meta, "options": _options_text(provider)},
    )


def _options_text(provider: Provider) -> str:
    from .cache import options_key

    return options_key(provider.options())
