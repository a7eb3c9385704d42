"""ViTMatte edge refinement (transformers' native VitMatteForImageMatting).

Any provider's matte goes in, a matte with better hair and fine edges comes
out. Steps, for an RGB image and its mode-L matte:

1. trimap from the matte (rule in rmbg.refine.trimap: an unknown band of
   1 % of the longer side around every edge and over every soft pixel);
2. the window the network sees: the unknown pixels' bounding box plus
   `context` pixels, downscaled (aspect kept) so its longer side is at most
   `max_side` (1024 by default): the cost is bounded on any photo;
3. VitMatteImageProcessor's recipe, done here on tensors (pixels / 255,
   normalised with mean = std = 0.5; trimap / 255 as a 4th channel; zero
   padding to a multiple of 32): the tests check it against the processor;
4. the predicted alpha is resized back to the window, rounded to uint8, and
   pasted into the unknown pixels only: outside the band the result is the
   input matte, bit for bit.

Weights: from the Hub through the HF cache (`model="hustvl/vitmatte-small-
composition-1k"` or `-base-`, Apache-2.0, ungated), or a local folder written
by `save_pretrained` (air-gapped use). Loaded once per process.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import InvalidImageError, ModelUnavailableError, with_remedy
from .trimap import UNKNOWN, Window, band_radius, make_trimap, paste, plan_window, to_uint8

DEFAULT_MODEL = "hustvl/vitmatte-small-composition-1k"
MODELS = ("hustvl/vitmatte-small-composition-1k", "hustvl/vitmatte-base-composition-1k")
PAD_MULTIPLE = 32


def prepare_inputs(image: np.ndarray, trimap: np.ndarray) -> Any:
    """(H, W, 3) uint8 image + (H, W) uint8 trimap -> float32 tensor
    [1, 4, H', W'] padded with zeros to multiples of 32 (VitMatteImageProcessor's recipe)."""
    import torch

    rgb = (torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1) / 255.0 - 0.5) / 0.5
    tri = torch.from_numpy(np.array(trimap, dtype=np.float32)).unsqueeze(0) / 255.0
    x = torch.cat([rgb, tri], dim=0).unsqueeze(0)
    h, w = trimap.shape
    pad_h, pad_w = (-h) % PAD_MULTIPLE, (-w) % PAD_MULTIPLE
    if pad_h or pad_w:
        x = torch.nn.functional.pad(x, (0, pad_w, 0, pad_h))
    return x


class VitMatteRefiner:
    """Refines a matte's edges with ViTMatte. Satisfies rmbg.refine.Refiner.

    model: Hub repo id or a local save_pretrained folder.
    revision: Hub revision (a commit hash pins it; None = the repo's main).
    device: "auto" (cuda > mps > cpu) or a torch device string.
    precision: "auto" (fp16 on CUDA, fp32 elsewhere), "fp32", "fp16", "bf16".
    max_side: longest side, in pixels, the network sees (the window is
        downscaled beyond that); bounds time and memory on large photos.
    band: unknown band half-width in pixels; None = 1 % of the longer side.
    context: pixels of certain fg/bg kept around the band for the network.
    """

    id = "vitmatte"
    label = "Refine edges (ViTMatte)"

    def __init__(
        self,
        model: str | os.PathLike = DEFAULT_MODEL,
        *,
        revision: str | None = None,
        device: str = "auto",
        precision: str = "auto",
        max_side: int = 1024,
        band: int | None = None,
        context: int = 32,
        token: str | None = None,
    ):
        if max_side < PAD_MULTIPLE:
            raise ValueError(f"max_side must be at least {PAD_MULTIPLE}, got {max_side}")
        self.model = str(model)
        self.revision = revision
        self._device = device
        self._precision = precision
        self.max_side = int(max_side)
        self.band = band
        self.context = int(context)
        self._token = token

    def __repr__(self) -> str:
        return f"VitMatteRefiner({self.model!r}, revision={self.revision!r}, max_side={self.max_side})"

    def options(self) -> Mapping[str, object]:
        """What changes the refined matte: part of the cache key. No secrets."""
        return {
            "model": self.model,
            "revision": self.revision or "main",
            "precision": self._precision,
            "max_side": self.max_side,
            "band": self.band if self.band is not None else "1%",
            "context": self.context,
        }

    def status(self):
        """ProviderStatus: can the weights be had, without any network call."""
        from ..providers.base import ProviderStatus
        from ..providers.local.hf_transformers import source_status

        state, message = source_status(self.model, self.revision)
        return ProviderStatus(state, message)

    def network(self) -> Any:
        """The loaded VitMatteForImageMatting (loads on first use, once per process)."""
        from ..providers.local.device import pick_device, pick_dtype
        from ..providers.local.hf_transformers import load_pretrained

        device = pick_device(self._device)
        dtype = pick_dtype(self._precision, device)
        try:
            return load_pretrained(
                "VitMatteForImageMatting",
                self.model,
                revision=self.revision,
                device=device,
                dtype=dtype,
                token=self._token,
            )
        except ModelUnavailableError as exc:  # its fix is this refiner's weights, not another provider (rmbg.wording)
            if exc.remedy is not None and exc.remedy.kind in ("weights", "model"):
                with_remedy(exc, "refiner", exc.remedy.situation, self.id)
            raise

    def predict(self, image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
        """Float alpha (H, W) in [0, 1] for a uint8 image and trimap, as the network says."""
        import torch

        from ..providers.local.pool import POOL
        from ..providers.local.torch_thread import torch_call

        net = self.network()
        param = next(net.parameters())
        h, w = trimap.shape

        def run() -> np.ndarray:  # on the process's PyTorch thread (rmbg.providers.local.torch_thread)
            x = prepare_inputs(image, trimap).to(device=param.device, dtype=param.dtype)
            with torch.inference_mode():
                alphas = net(pixel_values=x).alphas
                return alphas[0, 0, :h, :w].float().cpu().numpy()

        with POOL.forward(torch.get_num_threads() if param.device.type == "cpu" else 0):
            return torch_call(run)

    def refine(self, image, alpha):
        """Refined matte (mode "L", image size); only the unknown band differs from `alpha`."""
        from PIL import Image

        if image.size != alpha.size:
            raise InvalidImageError(f"image {image.size} and matte {alpha.size} differ in size")
        matte = np.asarray(alpha.convert("L"))
        trimap = make_trimap(matte, self.band)
        unknown = trimap == UNKNOWN
        window = plan_window(unknown, self.max_side, self.context)
        if window is None:
            return Image.fromarray(matte.copy())
        rgb_crop, tri_crop = crop_inputs(image.convert("RGB"), trimap, window)
        pred = self.predict(rgb_crop, tri_crop)  # holds the device for its forward
        refined = to_uint8(resize_back(pred, window))
        return Image.fromarray(paste(matte, refined, window, unknown))


def crop_inputs(image, trimap: np.ndarray, window: Window) -> tuple[np.ndarray, np.ndarray]:
    """The window's image (bilinear, antialiased when shrinking) and trimap
    (nearest, so it keeps exactly the values 0 / 128 / 255), at window.size."""
    from PIL import Image

    x0, y0, x1, y1 = window.box
    crop = image.crop(window.box)
    tri = Image.fromarray(np.ascontiguousarray(trimap[y0:y1, x0:x1]))
    if window.size != crop.size:
        crop = crop.resize(window.size, Image.Resampling.BILINEAR)
        tri = tri.resize(window.size, Image.Resampling.NEAREST)
    return np.asarray(crop), np.asarray(tri)


def resize_back(pred: np.ndarray, window: Window) -> np.ndarray:
    """Float alpha at window.size -> the box's size (bilinear on floats)."""
    from PIL import Image

    x0, y0, x1, y1 = window.box
    box_size = (x1 - x0, y1 - y0)
    if box_size == window.size:
        return pred
    resized = Image.fromarray(pred.astype(np.float32)).resize(box_size, Image.Resampling.BILINEAR)
    return np.asarray(resized)


__all__ = ["DEFAULT_MODEL", "MODELS", "VitMatteRefiner", "band_radius", "prepare_inputs"]
