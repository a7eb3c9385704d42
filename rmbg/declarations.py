"""The declarations of every provider: data, one ProviderInfo each, in one table.

What it is, what it costs, what it needs, and the "module:function" factory
that builds it: removal providers (local and hosted), background replacers and
hosted video services alike. rmbg.registry serves them (get_provider, info, ...),
rmbg.video.providers the video ones; the price table, `rmbg providers` and the
app's lists all read them through it. Adding a provider is one ProviderInfo in
DECLARATIONS plus its module; a new hosted service also one Vendor (rmbg.vendors)
for its key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from .vendors import vendor

Kind = Literal["local", "hosted", "replace", "video"]
LicenceClass = Literal["commercial", "non-commercial", "unknown"]


@dataclass(frozen=True)
class Licence:
    """What the weights' licence, or a paid API's terms, allow: the class an operator
    filters on (RMBG_COMMERCIAL_ONLY, rmbg.licences), its short name, where to read it,
    and the sentence `rmbg providers` prints."""

    kind: LicenceClass
    name: str  # short: "MIT", "Apache-2.0", "CC BY-NC 4.0", "fal.ai terms"
    link: str
    text: str = ""  # the longer sentence; the name when empty

    @property
    def commercial(self) -> bool:
        return self.kind == "commercial"

    @property
    def short(self) -> str:
        """What a menu shows: the licence's name when it allows commercial use, else its class."""
        return {"commercial": self.name, "non-commercial": "non-commercial"}.get(self.kind, "licence unknown")

    def __str__(self) -> str:
        return self.text or self.name


BRIA_LINK = "https://bria.ai/bria-huggingface-model-license-agreement/"
BRIA_14 = Licence(
    "non-commercial",
    "bria-rmbg-1.4",
    BRIA_LINK,
    "bria-rmbg-1.4, non-commercial (BRIA model licence); commercial use needs an agreement with BRIA",
)
BRIA_20 = Licence(
    "non-commercial",
    "CC BY-NC 4.0",
    BRIA_LINK,
    "bria-rmbg-2.0 = CC BY-NC 4.0, non-commercial; commercial use needs an agreement with BRIA",
)
BIREFNET_MIT = Licence(
    "commercial",
    "MIT",
    "https://github.com/ZhengPeng7/BiRefNet/blob/main/LICENSE",
    "MIT weights (ZhengPeng7), trained partly on research data sets",
)
U2NET_APACHE = Licence("commercial", "Apache-2.0", "https://github.com/xuebinqin/U-2-Net")
DIS_APACHE = Licence("commercial", "Apache-2.0", "https://github.com/xuebinqin/DIS")
SAM2_APACHE = Licence("commercial", "Apache-2.0", "https://huggingface.co/facebook/sam2.1-hiera-tiny")
# ViTMatte (hustvl/vitmatte-*-composition-1k, the refiner): Apache-2.0 on its model cards (rmbg.refine).
VITMATTE_APACHE = Licence("commercial", "Apache-2.0", "https://huggingface.co/hustvl/vitmatte-small-composition-1k")
# A provider registered without a declared licence (rmbg.registry.register without one).
UNDECLARED = Licence("unknown", "not declared", "", "no licence declared with this provider")


def _terms(vendor: str, link: str) -> Licence:
    # Paid APIs: the vendor's terms let its paying customers use the results commercially; the
    # vendors' own licence of the models they serve (Bria's included) covers their customers.
    return Licence("commercial", f"{vendor} terms", link, f"paid API: {vendor}'s terms allow commercial use of results")


FAL_TERMS = _terms("fal.ai", "https://fal.ai/terms")
RUNWARE_TERMS = _terms("Runware", "https://runware.ai/")
REMOVEBG_TERMS = _terms("remove.bg", "https://www.remove.bg/tos")
PHOTOROOM_TERMS = _terms("Photoroom", "https://www.photoroom.com/legal/terms-and-conditions")
# Workers AI's page for bria/v-rmbg-3.0 links Bria's terms of use as its "Terms and License".
CLOUDFLARE_TERMS = _terms("Cloudflare", "https://bria.ai/terms-of-use")
VIDEO_TERMS = {"fal": FAL_TERMS, "runware": RUNWARE_TERMS, "cloudflare": CLOUDFLARE_TERMS}


@dataclass(frozen=True)
class ProviderInfo:
    """One provider, as a person choosing it needs to know it.

    kind: "local" or "hosted" (removal providers), "replace" (a background replacer),
        "video" (a hosted service that takes a whole clip: rmbg.video.providers).
    price_usd: USD per image from the vendor's price table (hosted only; a
        local run is costed from measured seconds, rmbg.money.pricing.compute_cost);
        for a replacer, per generated image; for a video service, per second of video.
    price_note: where the price comes from.
    preview_units: what a `size="preview"` call costs in units of price_usd,
        where the vendor prices previews apart (remove.bg and Photoroom: 0.25
        credit), for projections; None: no cheaper preview.
    key_env: the environment variable holding the key it needs: the API key
        of a hosted service, or HF_TOKEN for gated Hub weights; "" for none.
    key_page: where to get that key or accept the terms.
    licence: what the weights' licence or the API's terms allow (Licence: class, name,
        link); rmbg.licences refuses the non-commercial and unknown ones under
        RMBG_COMMERCIAL_ONLY=1.
    download: what a first local run downloads (e.g. "176 MB").
    hardware: where it runs well.
    factory: "module:function" (or a callable) building the provider from
        keyword config; `args` are passed first (one function, several models).
    max_seconds: a video service's longest clip (None for the others).
    """

    id: str
    label: str
    kind: Kind
    factory: str | Callable[..., Any]  # rmbg.registry.Factory: this data module imports no provider code
    price_usd: Decimal | None = None
    price_note: str = ""
    key_env: str = ""
    key_page: str = ""
    licence: Licence = UNDECLARED
    download: str = ""
    hardware: str = ""
    args: tuple[Any, ...] = field(default=())
    compare_by_default: bool = True  # ticked in the app's Compare tab when ready and free
    preview_units: Decimal | None = None
    max_seconds: float | None = None


def _birefnet(model_id: str, label: str, repo: str, download: str, hardware: str) -> ProviderInfo:
    return ProviderInfo(
        model_id,
        label,
        "local",
        "rmbg.providers.local.torch_backend:birefnet",
        licence=BIREFNET_MIT,
        key_page=f"https://huggingface.co/{repo}",
        download=download,
        hardware=hardware,
        args=(model_id,),
    )


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
        key_env="RUNWARE_API_KEY",
        key_page="https://my.runware.ai/signup",
        licence=RUNWARE_TERMS,
        args=(provider_id, model, label),
    )


def _video(provider_id: str, label: str, slot: str, usd_per_second: str, max_seconds: float) -> ProviderInfo:
    """A hosted video service: priced per second of video, its key its vendor's (rmbg.vendors), its module
    rmbg.providers.hosted.<slot>_video with the factory named as the id."""
    paid_to = vendor(slot)
    module = f"rmbg.providers.hosted.{slot}_video:{provider_id.replace('-', '_')}"
    return ProviderInfo(
        provider_id, label, "video", module, price_usd=Decimal(usd_per_second), price_note=f"{paid_to.label}'s price",
        key_env=paid_to.key_env, key_page=paid_to.help, licence=VIDEO_TERMS[slot], max_seconds=max_seconds,
    )  # fmt: skip


_GPU = "GPU; 9-27 s per image on a 2-core CPU (bf16 where the CPU has it, else fp32)"
DECLARATIONS: tuple[ProviderInfo, ...] = (
    ProviderInfo(
        "rmbg-1.4",
        "BRIA RMBG-1.4 (IS-Net, local)",
        "local",
        "rmbg.providers.local.torch_backend:rmbg14",
        key_env="HF_TOKEN",
        key_page="https://huggingface.co/briaai/RMBG-1.4",
        licence=BRIA_14,
        download="176 MB",
        hardware="CPU (ONNX Runtime) or GPU",
    ),
    ProviderInfo(
        "rmbg-2.0",
        "BRIA RMBG-2.0 (BiRefNet Swin-L, local)",
        "local",
        "rmbg.providers.local.torch_backend:rmbg20",
        key_env="HF_TOKEN",
        key_page="https://huggingface.co/briaai/RMBG-2.0",
        licence=BRIA_20,
        download="885 MB",
        hardware=_GPU,
    ),
    _birefnet(
        "birefnet-lite",
        "BiRefNet lite, Swin-T (MIT, local)",
        "ZhengPeng7/BiRefNet_lite",
        "178 MB",
        "GPU; 4.5-8 s per image on a 2-core CPU (2.6-3 s in bf16 where the CPU has it)",
    ),
    _birefnet("birefnet", "BiRefNet Swin-L (MIT, local)", "ZhengPeng7/BiRefNet", "885 MB", _GPU),
    _birefnet("birefnet-hr", "BiRefNet HR, Swin-L 2048 (MIT, local)", "ZhengPeng7/BiRefNet_HR", "885 MB", "GPU"),
    _birefnet(
        "birefnet-matting", "BiRefNet matting, Swin-L (MIT, local)", "ZhengPeng7/BiRefNet-matting", "885 MB", _GPU
    ),
    _birefnet(
        "birefnet-portrait", "BiRefNet portrait, Swin-L (MIT, local)", "ZhengPeng7/BiRefNet-portrait", "885 MB", _GPU
    ),
    _birefnet(
        "birefnet-dynamic", "BiRefNet dynamic size, Swin-L (MIT, local)", "ZhengPeng7/BiRefNet_dynamic", "885 MB", _GPU
    ),
    ProviderInfo(
        "u2netp",
        "U2-Net-p (tiny, ungated, Apache-2.0)",
        "local",
        "rmbg.providers.local.u2netp_file:u2netp",
        licence=U2NET_APACHE,
        download="4.6 MB",
        hardware="any CPU",
    ),
    ProviderInfo(
        "isnet-general",
        "IS-Net general use (DIS, ungated, Apache-2.0)",
        "local",
        "rmbg.providers.local.isnet_general:isnet_general",
        licence=DIS_APACHE,
        key_page="https://github.com/xuebinqin/DIS",
        download="179 MB",
        hardware="any CPU (about 1-2 s)",
    ),
    ProviderInfo(
        "sam2",
        "SAM 2.1 (pick a subject)",
        "local",
        "rmbg.refine.sam2:sam2",
        key_page="https://huggingface.co/facebook/sam2.1-hiera-tiny",
        licence=SAM2_APACHE,
        download="156 MB",
        hardware="CPU or GPU",
        compare_by_default=False,
    ),
    ProviderInfo(
        "fal-bria",
        "fal.ai · Bria RMBG 2.0",
        "hosted",
        "rmbg.providers.hosted.fal:fal_bria",
        price_usd=Decimal("0.018"),
        price_note="fal docs / llms.txt: $0.018 per generation",
        key_env="FAL_KEY",
        key_page="https://fal.ai/dashboard/keys",
        licence=FAL_TERMS,
    ),
    ProviderInfo(
        "runware-bria",
        "Runware · Bria RMBG 2.0",
        "hosted",
        "rmbg.providers.hosted.runware:runware_bria",
        price_usd=Decimal("0.018"),
        price_note="Runware bria:2@1 model page response examples",
        key_env="RUNWARE_API_KEY",
        key_page="https://my.runware.ai/signup",
        licence=RUNWARE_TERMS,
    ),
    ProviderInfo(
        "runware-rembg",
        "Runware · RemBG 1.4",
        "hosted",
        "rmbg.providers.hosted.runware:runware_rembg",
        price_usd=Decimal("0.0013"),
        price_note="Runware runware:109@1 model page response examples",
        key_env="RUNWARE_API_KEY",
        key_page="https://my.runware.ai/signup",
        licence=RUNWARE_TERMS,
    ),
    ProviderInfo(
        "fal-rmbg-3",
        "fal.ai · Bria RMBG 3.0",
        "hosted",
        "rmbg.providers.hosted.fal:fal_rmbg3",
        price_usd=Decimal("0.04"),
        price_note="estimated: no price on the fal pages we read; $0.04 reserved, above RMBG 2.0's $0.018",
        key_env="FAL_KEY",
        key_page="https://fal.ai/dashboard/keys",
        licence=FAL_TERMS,
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
        key_env="REMOVEBG_API_KEY",
        key_page="https://www.remove.bg/dashboard#api-key",
        licence=REMOVEBG_TERMS,
    ),
    ProviderInfo(
        "photoroom",
        "Photoroom",
        "hosted",
        "rmbg.providers.hosted.photoroom:photoroom",
        price_usd=Decimal("0.02"),
        price_note="estimated: Photoroom pricing page, Basic plan $0.02 per image; RMBG_PHOTOROOM_USD_PER_IMAGE",
        preview_units=Decimal("0.25"),  # Photoroom's FAQ: a preview requires "0.25 credit"
        key_env="PHOTOROOM_API_KEY",
        key_page="https://app.photoroom.com/api-dashboard",
        licence=PHOTOROOM_TERMS,
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
        key_env="FAL_KEY",
        key_page="https://fal.ai/dashboard/keys",
        licence=FAL_TERMS,
        compare_by_default=False,
    ),
    # Video, USD per second and longest clip from: fal's llms.txt and Bria's video API (60 s); Runware's bria:51@1 and
    # Bria provider pages (30 s); Cloudflare's bria/v-rmbg-3.0 page ("Default (per second) $0.0225", "up to 60 s").
    _video("fal-bria-video", "fal.ai · Bria video background removal (VRMBG 3.0)", "fal", "0.042", 60.0),
    _video("runware-bria-video", "Runware · Bria video background removal", "runware", "0.14", 30.0),
    _video(
        "cloudflare-bria-video", "Cloudflare Workers AI · Bria video background removal", "cloudflare", "0.0225", 60
    ),
)
