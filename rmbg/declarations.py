"""The one declaration table: every provider (one ProviderInfo each) and every hosted service
whose key rmbg takes (one Vendor each), as data.

What a provider is, what it costs, what it needs, and the "module:function" factory that builds
it: removal providers (local and hosted), background replacers and hosted video services alike,
in display order (the local models first: rmbg.local_declarations). A hosted row points at its
Vendor, from which its key's variable, key page and licence (the vendor's terms) follow.
rmbg.registry serves the rows (get_provider, info, ...), rmbg.video.providers the video ones,
rmbg.vendors the vendors (every door's key slot, REST header, environment variable and words);
rmbg.settings_declared adds each vendor's RMBG_* settings to its table.

Adding a hosted vendor is its Vendor and its providers' rows here, plus its provider module
(docs/contributing.md, "Adding a hosted vendor"); no other file names it
(tests/test_one_registry.py).
"""

from __future__ import annotations

from decimal import Decimal

from .declaration_types import UNDECLARED, Kind, Licence, LicenceClass, ProviderInfo, Vendor
from .local_declarations import LOCAL, SAM2_APACHE, VITMATTE_APACHE

__all__ = [
    "DECLARATIONS",
    "SAM2_APACHE",
    "UNDECLARED",
    "VENDORS",
    "VITMATTE_APACHE",
    "Kind",
    "Licence",
    "LicenceClass",
    "ProviderInfo",
    "Vendor",
]

# --- the hosted vendors, in the order of the page's key boxes and Keys.of ---------------------
FAL = Vendor(
    "fal",
    ("FAL_KEY",),
    "fal.ai",
    "X-Fal-Key",
    "https://fal.ai/dashboard/keys",
    "key_id:key_secret",
    terms="https://fal.ai/terms",
    settings=(
        (
            "RMBG_FAL_QUEUE_URL",
            "URL",
            "https://queue.fal.run",
            "fal's queue host (the tests point it at the fake fal).",
            "rmbg.providers.hosted.fal",
        ),
        (
            "RMBG_FAL_REST_URL",
            "URL",
            "https://rest.fal.ai",
            "fal's storage host, where a large clip for fal-bria-video is uploaded (the tests point it at the fake "
            "fal).",
            "rmbg.providers.hosted.fal_video",
        ),
    ),
)
RUNWARE = Vendor(
    "runware",
    ("RUNWARE_API_KEY",),
    "Runware",
    "X-Runware-Key",
    "https://my.runware.ai/signup",
    terms="https://runware.ai/",
    settings=(
        (
            "RMBG_RUNWARE_URL",
            "URL",
            "https://api.runware.ai",
            "Runware's API host (the tests point it at the fake Runware).",
            "rmbg.providers.hosted.runware",
        ),
    ),
)
REMOVEBG = Vendor(
    "removebg",
    ("REMOVEBG_API_KEY",),
    "remove.bg",
    "X-Removebg-Key",
    "https://www.remove.bg/dashboard#api-key",
    terms="https://www.remove.bg/tos",
    settings=(
        (
            "RMBG_REMOVEBG_URL",
            "URL",
            "https://api.remove.bg",
            "remove.bg's API host.",
            "rmbg.providers.hosted.removebg",
        ),
        (
            "RMBG_REMOVEBG_USD_PER_CREDIT",
            "USD",
            "0.23",
            "What one remove.bg credit costs you (1 full image, 0.25 a preview); set your plan's price.",
            "rmbg.providers.hosted.removebg",
        ),
    ),
)
PHOTOROOM = Vendor(
    "photoroom",
    ("PHOTOROOM_API_KEY",),
    "Photoroom",
    "X-Photoroom-Key",
    "https://app.photoroom.com/api-dashboard",
    terms="https://www.photoroom.com/legal/terms-and-conditions",
    settings=(
        (
            "RMBG_PHOTOROOM_URL",
            "URL",
            "https://sdk.photoroom.com",
            "Photoroom's API host.",
            "rmbg.providers.hosted.photoroom",
        ),
        (
            "RMBG_PHOTOROOM_USD_PER_IMAGE",
            "USD",
            "0.02",
            "What one Photoroom image (1 credit; a preview 0.25) costs you; set your plan's price.",
            "rmbg.providers.hosted.photoroom",
        ),
        (
            "RMBG_PHOTOROOM_RATE_PER_MINUTE",
            "int (images)",
            "500",
            "Most Photoroom calls a minute per key in this process (Photoroom's default limit); a burst waits.",
            "rmbg.providers.hosted.photoroom",
        ),
    ),
)
# A Workers AI call names the account too: CLOUDFLARE_ACCOUNT_ID, or a key "ACCOUNT_ID:API_TOKEN" (one box).
# Workers AI's page for bria/v-rmbg-3.0 links Bria's terms of use as its "Terms and License".
CLOUDFLARE = Vendor(
    "cloudflare",
    ("CLOUDFLARE_API_TOKEN",),
    "Cloudflare",
    "X-Cloudflare-Key",
    "https://dash.cloudflare.com/profile/api-tokens",
    "account_id:api_token",
    ("RMBG_CLOUDFLARE_URL", "https://api.cloudflare.com/client/v4"),
    terms="https://bria.ai/terms-of-use",
)
VENDORS: tuple[Vendor, ...] = (FAL, RUNWARE, REMOVEBG, PHOTOROOM, CLOUDFLARE)


# --- their providers ----------------------------------------------------------------------------
def _runware_birefnet(provider_id: str, model: str, label: str) -> ProviderInfo:
    # No price on Runware's BiRefNet model pages: each call's reported cost is
    # recorded; this estimate only reserves budget (a third party reports about $0.0006).
    return ProviderInfo(
        provider_id,
        label,
        "hosted",
        "rmbg.providers.hosted.runware:runware_birefnet",
        price_usd=Decimal("0.002"),
        price_note=f"estimated: no price on Runware's {model} page; the reported cost is recorded",
        vendor=RUNWARE,
        args=(provider_id, model, label),
    )


def _video(provider_id: str, label: str, paid_to: Vendor, usd_per_second: str, max_seconds: float) -> ProviderInfo:
    """A hosted video service: priced per second of video, its key and terms its vendor's, its module
    rmbg.providers.hosted.<slot>_video with the factory named as the id."""
    module = f"rmbg.providers.hosted.{paid_to.slot}_video:{provider_id.replace('-', '_')}"
    return ProviderInfo(
        provider_id, label, "video", module, price_usd=Decimal(usd_per_second), price_note=f"{paid_to.label}'s price",
        vendor=paid_to, max_seconds=max_seconds,
    )  # fmt: skip


HOSTED: tuple[ProviderInfo, ...] = (
    ProviderInfo(
        "fal-bria",
        "fal.ai · Bria RMBG 2.0",
        "hosted",
        "rmbg.providers.hosted.fal:fal_bria",
        price_usd=Decimal("0.018"),
        price_note="fal docs / llms.txt: $0.018 per generation",
        vendor=FAL,
    ),
    ProviderInfo(
        "runware-bria",
        "Runware · Bria RMBG 2.0",
        "hosted",
        "rmbg.providers.hosted.runware:runware_bria",
        price_usd=Decimal("0.018"),
        price_note="Runware bria:2@1 model page response examples",
        vendor=RUNWARE,
    ),
    ProviderInfo(
        "runware-rembg",
        "Runware · RemBG 1.4",
        "hosted",
        "rmbg.providers.hosted.runware:runware_rembg",
        price_usd=Decimal("0.0013"),
        price_note="Runware runware:109@1 model page response examples",
        vendor=RUNWARE,
    ),
    ProviderInfo(
        "fal-rmbg-3",
        "fal.ai · Bria RMBG 3.0",
        "hosted",
        "rmbg.providers.hosted.fal:fal_rmbg3",
        price_usd=Decimal("0.04"),
        price_note="estimated: no price on the fal pages we read; $0.04 reserved, above RMBG 2.0's $0.018",
        vendor=FAL,
    ),
    _runware_birefnet("runware-birefnet", "runware:112@1", "Runware · BiRefNet v1 Base"),
    _runware_birefnet("runware-birefnet-512", "runware:112@6", "Runware · BiRefNet General 512x512 (FP16)"),
    _runware_birefnet("runware-birefnet-massive", "runware:112@8", "Runware · BiRefNet Massive (DIS5K)"),
    _runware_birefnet("runware-birefnet-matting", "runware:112@9", "Runware · BiRefNet Matting"),
    _runware_birefnet("runware-birefnet-portrait", "runware:112@10", "Runware · BiRefNet Portrait"),
    # remove.bg bills in credits (1 per full image, 0.25 per preview) and sells them at several prices;
    # price_usd is one credit. No USD price per credit was found in remove.bg's pages we could read, so
    # $0.23 is an assumption (well above the ~$0.05 per image reported at scale): set
    # RMBG_REMOVEBG_USD_PER_CREDIT to your own plan's price.
    ProviderInfo(
        "remove-bg",
        "remove.bg",
        "hosted",
        "rmbg.providers.hosted.removebg:remove_bg",
        price_usd=Decimal("0.23"),
        price_note="estimated: USD per credit (1 credit = 1 full image), an assumed price (none published); "
        "RMBG_REMOVEBG_USD_PER_CREDIT",
        preview_units=Decimal("0.25"),  # remove.bg's OpenAPI document: a preview is "0.25 credits per image"
        vendor=REMOVEBG,
    ),
    ProviderInfo(
        "photoroom",
        "Photoroom",
        "hosted",
        "rmbg.providers.hosted.photoroom:photoroom",
        price_usd=Decimal("0.02"),
        price_note="estimated: Photoroom pricing page, Basic plan $0.02 per image; RMBG_PHOTOROOM_USD_PER_IMAGE",
        preview_units=Decimal("0.25"),  # Photoroom's FAQ: a preview requires "0.25 credit"
        vendor=PHOTOROOM,
    ),
    # Two fal prices for the same endpoint: $0.023 per generation on fal's docs page (its "How It Stacks
    # Up" section) and $0.04 per generation on its llms.txt / pricing page (docs/providers.md, "Pricing").
    # We take the higher: spending caps reserve this estimate, and an estimate that is too high only
    # holds back budget, one that is too low lets a cap be passed.
    ProviderInfo(
        "fal-bria-replace",
        "fal.ai · Bria background replace",
        "replace",
        "rmbg.providers.hosted.fal_replace:fal_bria_replace",
        price_usd=Decimal("0.04"),
        price_note="fal pricing page / llms.txt: $0.04 per generation (docs page: $0.023)",
        vendor=FAL,
        compare_by_default=False,
    ),
    # Video, USD per second and longest clip from: fal's llms.txt and Bria's video API (60 s); Runware's bria:51@1 and
    # Bria provider pages (30 s); Cloudflare's bria/v-rmbg-3.0 page ("Default (per second) $0.0225", "up to 60 s").
    _video("fal-bria-video", "fal.ai · Bria video background removal (VRMBG 3.0)", FAL, "0.042", 60.0),
    _video("runware-bria-video", "Runware · Bria video background removal", RUNWARE, "0.14", 30.0),
    _video("cloudflare-bria-video", "Cloudflare Workers AI · Bria video background removal", CLOUDFLARE, "0.0225", 60),
)

DECLARATIONS: tuple[ProviderInfo, ...] = LOCAL + HOSTED
