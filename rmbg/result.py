"""The outcome of remove_background: the rendered image with its matte, cost and timing.

Above the image layer (it renders and encodes itself with rmbg.image.compose);
the plain value types it carries live in rmbg.types.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PIL import Image

from .image.compose import encode, format_from_path, render
from .image.framing import framing_of
from .options import Rerender, at, framing, python_help
from .types import Cost, RenderOptions, Seconds

if TYPE_CHECKING:  # Python 3.10 has no typing.Unpack; annotations are not evaluated
    from typing_extensions import Unpack


def render_options(keywords: Mapping[str, Any]) -> RenderOptions:
    """The Python render keywords (rmbg.options.RenderKeywords) as RenderOptions, the framing checked.

    An unknown keyword is a TypeError, as Python says one; an older name (rmbg.options: Option.old)
    is read as its option's, with a DeprecationWarning.
    """
    values = dict(keywords)
    for option in at():
        old = option.old.get("python")
        if old and old in values:
            warnings.warn(f"{old}= is now called {option.name}=", DeprecationWarning, stacklevel=3)
            said = values.pop(old)
            values.setdefault(option.name, said)
    offered = at("python")
    unknown = sorted(set(values) - {o.name for o in offered})
    if unknown:
        raise TypeError(
            f"unexpected keyword argument(s) {', '.join(unknown)}: use {', '.join(o.name for o in offered)}"
        )
    asked: dict[str, Any] = {o.name: values.get(o.name) for o in framing()}
    frame = framing_of(**asked)
    look = {o.name: values.get(o.name, o.default) for o in at(group="look")}
    return RenderOptions(**look, framing=frame)


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
        self, background: Any = None, *, options: RenderOptions | None = None, **render_as: Unpack[Rerender]
    ) -> Result:
        """The same matte with another background, frame or as a mask; never re-runs a model.

        `options` (a RenderOptions) wins over the keywords, which are remove_background's
        (rmbg.options):
        RENDER_KEYWORDS
        """
        opts = options or render_options({"background": background, **render_as})
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


Result.render.__doc__ = (Result.render.__doc__ or "").replace("        RENDER_KEYWORDS", python_help(" " * 8))
