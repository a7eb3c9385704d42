"""SAM 2 subject picking (transformers' native Sam2Model), and `sam2` as a provider.

Prompts are in input-image pixels: points [(x, y, keep)] (keep=False marks
something to drop) and/or one box (x0, y0, x1, y1). The image embedding (the
expensive part) is computed once per image and kept in a bounded LRU keyed
by the image's digest, so every further click only runs the prompt encoder
and mask decoder.

Preprocessing follows Sam2ImageProcessor's recipe, done here with PIL and
torch (that processor needs torchvision, which rmbg does not install): the
image is resized (aspect not kept) to the model's square input (1024) with
PIL bilinear, divided by 255 and normalised with the ImageNet mean/std;
prompt coordinates are scaled by (S / W, S / H). The mask decoder's low-res
logits are resized bilinearly to the image and thresholded at 0 (as
Sam2ImageProcessor.post_process_masks does). One point and no box asks
for SAM's three candidate masks and keeps the best-scored; several prompts
ask for a single mask (SAM's own convention for ambiguous single clicks).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..types import Cost, Matte
from .embeddings import EmbeddingCache, default_embeddings, image_digest
from .select import Box, Point, centre_point, keep_selected, normalise_prompt

DEFAULT_MODEL = "facebook/sam2.1-hiera-tiny"
MODELS = ("facebook/sam2.1-hiera-tiny", "facebook/sam2.1-hiera-small")
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _embeddings(net: Any, x: Any, param: Any) -> Any:
    """SAM 2's image embeddings of a pixel tensor, on the device and dtype of `param`."""
    import torch

    with torch.inference_mode():
        return net.get_image_embeddings(x.to(device=param.device, dtype=param.dtype))


class Sam2Picker:
    """Masks of the object the prompts point at.

    model: Hub repo id (facebook/sam2.1-hiera-tiny / -small, Apache-2.0) or a
        local save_pretrained folder; revision pins a Hub commit.
    """

    def __init__(
        self,
        model: str | os.PathLike = DEFAULT_MODEL,
        *,
        revision: str | None = None,
        device: str = "auto",
        precision: str = "fp32",
        token: str | None = None,
        cache: EmbeddingCache | None = None,
    ):
        self.model = str(model)
        self.revision = revision
        self._device = device
        self._precision = precision
        self._token = token
        self.cache = default_embeddings if cache is None else cache

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (ZeroGPU sends a refiner to its GPU worker) without the embedding LRU: the
        process's default one is the receiver's own; another cannot be sent (it holds a lock)."""
        state = dict(self.__dict__)
        if self.cache is not default_embeddings:
            raise TypeError("a Sam2Picker with an embedding cache of its own cannot be pickled")
        state["cache"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.cache = default_embeddings

    @property
    def device(self) -> str:
        """Where the network runs ("cpu", "cuda", "mps")."""
        from ..providers.local.device import pick_device

        return pick_device(self._device)

    def network(self) -> Any:
        from ..providers.local.device import pick_dtype
        from ..providers.local.hf_transformers import load_pretrained

        device = self.device
        dtype = pick_dtype(self._precision, device)
        return load_pretrained(
            "Sam2Model", self.model, revision=self.revision, device=device, dtype=dtype, token=self._token
        )

    def input_size(self) -> int:
        size = self.network().config.prompt_encoder_config.image_size
        return int(size[0] if isinstance(size, (list, tuple)) else size)

    def pixel_values(self, image) -> Any:
        """[1, 3, S, S] normalised tensor of an RGB image (Sam2ImageProcessor's recipe)."""
        import torch
        from PIL import Image

        s = self.input_size()
        arr = np.array(image.convert("RGB").resize((s, s), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
        norm: np.ndarray = (arr - np.asarray(MEAN, dtype=np.float32)) / np.asarray(STD, dtype=np.float32)
        return torch.from_numpy(np.ascontiguousarray(norm.transpose(2, 0, 1), dtype=np.float32)).unsqueeze(0)

    def embed(self, image) -> Any:
        """The image's embeddings (list of feature maps), from the LRU when seen before."""
        from ..providers.local.pool import POOL
        from ..providers.local.torch_thread import torch_call

        net = self.network()
        param = next(net.parameters())
        key = (self.model, self.revision, str(param.device), str(param.dtype), image_digest(image))
        with POOL.forward():  # looked up under the device lock too: a caller that waited finds it made
            found = self.cache.get(key)
            if found is None:  # made on the process's PyTorch thread (rmbg.providers.local.torch_thread)
                found = torch_call(functools.partial(_embeddings, net, self.pixel_values(image), param))
                self.cache.put(key, found)
            return found

    def logits(self, image, points: Iterable[Sequence] | None = None, box: Sequence[float] | None = None) -> np.ndarray:
        """Mask logits (H, W) float32 at the image size for the prompts (> 0 = chosen)."""
        import torch

        from ..providers.local.pool import POOL
        from ..providers.local.torch_thread import torch_call

        pts, bx = normalise_prompt(points, box, image.size)
        if not pts and bx is None:
            raise ValueError("give at least one point or a box")
        net = self.network()
        param = next(net.parameters())
        kwargs = self._prompt_tensors(pts, bx, image.size, param)
        multimask = len(pts) == 1 and bx is None

        def run(embeddings: Any) -> np.ndarray:  # on the process's PyTorch thread
            with torch.inference_mode():
                out = net(image_embeddings=embeddings, multimask_output=multimask, **kwargs)
                masks = out.pred_masks[0, 0]  # [K, h, w]
                best = int(out.iou_scores[0, 0].argmax()) if multimask else 0
                chosen = masks[best][None, None].float()
                up = torch.nn.functional.interpolate(chosen, image.size[::-1], mode="bilinear", align_corners=False)
                return up[0, 0].cpu().numpy()

        with POOL.forward(torch.get_num_threads() if param.device.type == "cpu" else 0):
            embeddings = self.embed(image)
            return torch_call(functools.partial(run, embeddings))

    def _prompt_tensors(self, pts: tuple[Point, ...], bx: Box | None, size: tuple[int, int], param) -> dict:
        import torch

        s = self.input_size()
        sx, sy = s / size[0], s / size[1]
        kwargs: dict[str, Any] = {}
        if pts:
            coords = [[x * sx, y * sy] for x, y, _ in pts]
            kwargs["input_points"] = torch.tensor([[coords]], dtype=param.dtype, device=param.device)
            kwargs["input_labels"] = torch.tensor([[[1 if k else 0 for _, _, k in pts]]], device=param.device)
        if bx is not None:
            x0, y0, x1, y1 = bx
            kwargs["input_boxes"] = torch.tensor(
                [[[x0 * sx, y0 * sy, x1 * sx, y1 * sy]]], dtype=param.dtype, device=param.device
            )
        return kwargs

    def mask(self, image, points: Iterable[Sequence] | None = None, box: Sequence[float] | None = None):
        """Mode-L mask at the image size: 255 on the chosen object, 0 elsewhere."""
        from PIL import Image

        logits = self.logits(image, points, box)  # holds the device for its forwards
        return Image.fromarray(np.where(logits > 0, 255, 0).astype(np.uint8))

    def select(self, image, matte, points=None, box=None, grow: int | None = None):
        """The provider's matte kept only on the picked object (rmbg.refine.select.keep_selected)."""
        return keep_selected(matte, self.mask(image, points, box), grow)


class SubjectPick:
    """SAM 2 subject picking as a refiner (rmbg.refine.Refiner): any provider's
    matte kept only on the object the prompts point at (select.keep_selected:
    inside the object's mask grown by `grow` px). What remove_background(points=,
    box=) uses; chainable before ViTMatte (rmbg.refine.Chain)."""

    id = "sam2-pick"

    def __init__(
        self,
        points: Iterable[Sequence] | None = None,
        box: Sequence[float] | None = None,
        *,
        model: str | os.PathLike = DEFAULT_MODEL,
        revision: str | None = None,
        device: str = "auto",
        precision: str = "fp32",
        token: str | None = None,
        grow: int | None = None,
        picker: Sam2Picker | None = None,
    ):
        if not points and box is None:
            raise ValueError("SAM 2 picking needs points [(x, y, keep)] or a box (x0, y0, x1, y1).")
        self.picker = picker or Sam2Picker(model, revision=revision, device=device, precision=precision, token=token)
        self.points = tuple(tuple(p) for p in points or ())
        self.box = tuple(box) if box is not None else None
        self.grow = grow

    def __repr__(self) -> str:
        return f"SubjectPick(points={self.points!r}, box={self.box!r}, model={self.picker.model!r})"

    def options(self) -> Mapping[str, object]:
        return {
            "model": self.picker.model,
            "revision": self.picker.revision or "main",
            "points": [list(p) for p in self.points],
            "box": list(self.box) if self.box else None,
            "grow": self.grow,
        }

    def check(self, size: tuple[int, int]) -> None:
        """The prompts fit an image of this size (before any provider call)."""
        normalise_prompt(self.points, self.box, size)

    def refine(self, image, alpha):
        return self.picker.select(image, alpha, self.points, self.box, self.grow)


class Sam2Provider:
    """SAM 2 alone as a provider: the matte is the mask of the prompted object
    (binary 0/255; pair it with refine="vitmatte" for soft edges).

    Without prompts, the default is one 'keep' point at the image centre: the
    object in the middle of the frame, which is what a product or portrait
    photo centres.
    """

    kind = "local"

    def __init__(
        self,
        model: str | os.PathLike = DEFAULT_MODEL,
        *,
        revision: str | None = None,
        device: str = "auto",
        precision: str = "fp32",
        token: str | None = None,
        points: Iterable[Sequence] | None = None,
        box: Sequence[float] | None = None,
    ):
        self.picker = Sam2Picker(model, revision=revision, device=device, precision=precision, token=token)
        self.points = tuple(tuple(p) for p in points or ())
        self.box = tuple(box) if box is not None else None
        self.id = "sam2"
        self.label = "SAM 2.1 (pick a subject)"

    def options(self) -> Mapping[str, object]:
        return {
            "model": self.picker.model,
            "revision": self.picker.revision or "main",
            "points": [list(p) for p in self.points] or "centre",
            "box": list(self.box) if self.box is not None else None,
        }

    def status(self):
        from ..providers.base import ProviderStatus
        from ..providers.local.hf_transformers import source_status

        state, message = source_status(self.picker.model, self.picker.revision)
        return ProviderStatus(state, message)

    def estimate(self) -> Cost:
        return Cost.free("local compute; estimate after a run")

    def matte(self, image) -> Matte:
        from ..money.pricing import compute_cost

        start = time.perf_counter()
        points = self.points or (centre_point(image.size) if self.box is None else ())
        alpha = self.picker.mask(image, points, self.box)
        seconds = time.perf_counter() - start
        meta = {
            "model": self.picker.model,
            "revision": self.picker.revision or "main",
            "prompt": "centre point" if not self.points and self.box is None else "given",
        }
        return Matte(alpha, compute_cost(seconds, self.picker.device), seconds, meta)


def sam2(
    *,
    model: str | os.PathLike = DEFAULT_MODEL,
    revision: str | None = None,
    device: str = "auto",
    precision: str = "fp32",
    token: str | None = None,
    points: Iterable[Sequence] | None = None,
    box: Sequence[float] | None = None,
) -> Sam2Provider:
    """Factory for the registry id "sam2"."""
    return Sam2Provider(
        model, revision=revision, device=device, precision=precision, token=token, points=points, box=box
    )


__all__ = [
    "DEFAULT_MODEL",
    "EmbeddingCache",
    "MODELS",
    "Sam2Picker",
    "Sam2Provider",
    "SubjectPick",
    "image_digest",
    "keep_selected",
    "sam2",
]
