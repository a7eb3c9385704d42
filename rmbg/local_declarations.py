"""The local models' rows of the one declaration table (rmbg.declarations): weights that run
here, their licences, what a first run downloads and where they run well. The table puts them
first, in this order (the display order)."""

from __future__ import annotations

from .declaration_types import Licence, ProviderInfo

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


def _birefnet(
    model_id: str, label: str, repo: str, download: str, hardware: str, known_as: tuple[str, ...] = ()
) -> ProviderInfo:
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
        known_as=known_as,
    )


_GPU = "GPU; 9-27 s per image on a 2-core CPU (bf16 where the CPU has it, else fp32)"
LOCAL: tuple[ProviderInfo, ...] = (
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
        known_as=("bria-rmbg",),
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
        ("birefnet-general-lite",),
    ),
    _birefnet("birefnet", "BiRefNet Swin-L (MIT, local)", "ZhengPeng7/BiRefNet", "885 MB", _GPU, ("birefnet-general",)),
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
        known_as=("isnet-general-use",),
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
)
