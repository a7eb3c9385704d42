"""The outcome of remove_background: the rendered image with its matte, cost and timing.

Above the image layer (it renders and encodes itself with rmbg.image.compose);
the plain value types it carries live in rmbg.types.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from .image.compose import encode, format_from_path, render
from .image.framing import framing_of
from .types import Cost, RenderOptions, Seconds


@dataclass(frozen=True)
class Result:
    """The outcome of rmbg.remove_background.

    image: the rendered output (RGBA when transparent, RGB on a background,
        L when mask_only).
    alpha: mode "L" matte, same size as the input.
    source: the (EXIF-oriented, RGB) input, kept so the result can be
        re-rendered with another background without running a model.
    cached: True when the matte came from the cache (no model run, no charge).
    """

    image: Image.Image
    alpha: Image.Image
    source: Image.Image
    provider: str
    seconds: Seconds
    cost: Cost
    cached: bool = False
    meta: Mapping[str, str] = field(default_factory=dict)

    def render(
        self,
        background: Any = None,
        *,
        mask_only: bool = False,
        refine_foreground: bool = False,
        options: RenderOptions | None = None,
        crop: bool = False,
        canvas: Any = None,
        margin: Any = None,
        align: str | None = None,
    ) -> Result:
        """The same matte with another background, frame or as a mask; never re-runs a model.

        `options` (a RenderOptions) wins over the keywords; refine_foreground
        is RenderOptions.clean_edges; crop / canvas / margin / align as in
        remove_background.
        """
        opts = options or RenderOptions(
            background, mask_only, refine_foreground, framing=framing_of(crop, canvas, margin, align)
        )
        return dataclasses.replace(self, image=render(self.source, self.alpha, options=opts))

    def encode(self, fmt: str = "png", *, background: Any = None, quality: int = 95) -> bytes:
        """Encode `image` as PNG / WebP (alpha kept) or JPEG (flattened, white by default)."""
        return encode(self.image, fmt, background=background, quality=quality, meta=self.provenance())

    def save(
        self, path: str | os.PathLike[str], fmt: str | None = None, *, background: Any = None, quality: int = 95
    ) -> None:
        data = self.encode(fmt or format_from_path(path), background=background, quality=quality)
        with open(path, "wb") as fh:
            fh.write(data)

    def provenance(self) -> dict[str, str]:
        """Text metadata written into PNG outputs: provider, model, revision, options."""
        info = {"rmbg:provider": self.provider}
        info.update({f"rmbg:{k}": str(v) for k, v in self.meta.items()})
        return info
