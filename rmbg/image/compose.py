"""Alpha matte -> what a person sees.

Everything here is local and cheap: changing the background, toggling
mask-only or changing the format never touches a provider.

Compositing rule (exact, integer): out = (fg*a + bg*(255-a) + 127) // 255
for 8-bit fg, bg and a.

Edge colours: render(refine_foreground=True) composites the foreground
colours estimated by rmbg.image.foreground instead of the input's, which removes
the old background's halo on a new background.
"""

from __future__ import annotations

import io
import os
import re
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageColor, PngImagePlugin

from ..errors import InvalidImageError
from ..types import RenderOptions
from ..wording import number_text
from .bands import resize
from .foreground import check_alpha, cutout_estimated, estimate_foreground
from .framing import check_sides, frame
from .io import cms_profile, icc_of
from .png import save_png

Colour = tuple[int, int, int]
Background = None | str | Sequence[int] | Image.Image

FORMATS = {"png": "PNG", "webp": "WEBP", "jpeg": "JPEG", "jpg": "JPEG"}
MIME = {"PNG": "image/png", "WEBP": "image/webp", "JPEG": "image/jpeg"}
WHITE: Colour = (255, 255, 255)
# zlib settings of PNG outputs, measured by benchmarks/vs_rembg.py against Pillow's default
# (level 6, default strategy), which rembg uses: level 6 with Z_FILTERED writes the same bytes
# as the default on rembg's own cut-outs and masks at no more time, and ~2 % fewer on ours.
# Level 3 (before) was 2x faster to encode but its files 5-25 % larger than rembg's;
# Z_RLE is faster still and smaller on real masks, but larger on smooth gradients.
PNG_LEVEL, PNG_STRATEGY = 6, 1  # 1 = zlib's Z_FILTERED
_VISIBLE = [0] + [255] * 255  # point() table: alpha 0 -> 0, anything seen -> 255
# The cut-outs cutout() made (held weakly): encode() does not clean them a second time
# (about 0.1 s for 12 MP); any other RGBA image it is given is cleaned.
_MADE_CLEAN: weakref.WeakValueDictionary[int, Image.Image] = weakref.WeakValueDictionary()
# rgb()/rgba() as CSS and colour pickers write them: a channel is a number with at most 9 digits
# before and 6 after a point ("." alone, or "1e999", is not one)
_NUM = r"(\d{1,9}(?:\.\d{0,6})?|\.\d{1,6})"
_CSS_RGB = re.compile(rf"rgba?\(\s*{_NUM}\s*,\s*{_NUM}\s*,\s*{_NUM}\s*(?:,\s*{_NUM}\s*)?\)", re.I | re.ASCII)


class SeeThroughColour(InvalidImageError):
    """A background colour whose alpha is not opaque: a background is opaque, so that alpha would be
    dropped. parse_colour refuses it for every door (Python, CLI, REST, the page, MCP)."""


def parse_colour(value: str | Sequence[int]) -> Colour:
    """'#RRGGBB', '#RGB', a CSS name, 'rgb(r, g, b)' (fractional channels too, as colour pickers
    write them) or an (r, g, b) tuple -> (r, g, b). An alpha is taken only when it is opaque
    ('#RRGGBBff', 'rgba(r, g, b, 1)', (r, g, b, 255)); any other is a SeeThroughColour, never dropped."""
    if isinstance(value, str):
        css = _CSS_RGB.fullmatch(value.strip())
        if css:  # CSS's alpha: 1 is opaque (255 too, as Pillow reads rgba())
            r, g, b = (min(255, round(float(c))) for c in css.groups()[:3])
            opaque = css.group(4) is None or float(css.group(4)) in (1.0, 255.0)
            return _opaque((r, g, b), opaque, value)
        typed = number_text("Background colour", value, InvalidImageError)  # Pillow's \d reads "２５５" too
        try:
            rgb = ImageColor.getrgb(typed.strip())
        except ValueError:
            raise InvalidImageError(
                f"{value!r} is not a colour: use '#RRGGBB', a CSS name such as 'white', or an (r, g, b) tuple."
            ) from None
        return _opaque((int(rgb[0]), int(rgb[1]), int(rgb[2])), rgb[3:] in ((), (255,)), value)
    parts = tuple(value)
    if len(parts) not in (3, 4) or not all(isinstance(c, (int, np.integer)) and 0 <= c <= 255 for c in parts):
        raise InvalidImageError(f"{value!r} is not a colour: an RGB tuple needs three whole numbers 0-255.")
    return _opaque((int(parts[0]), int(parts[1]), int(parts[2])), parts[3:] in ((), (255,)), value)


def _opaque(rgb: Colour, opaque: bool, value: object) -> Colour:
    """`rgb`, when the colour asked for is opaque; SeeThroughColour, in one sentence, when not."""
    if not opaque:
        raise SeeThroughColour(
            f"{value!r} is see-through, and a background is always opaque: give the colour as #rrggbb, "
            "or ask for the transparent cut-out instead."
        )
    return rgb


def fit_cover(background: Image.Image, size: tuple[int, int], icc: bytes | None = None) -> Image.Image:
    """Scale `background` to cover `size` (keeping its aspect) and crop the centre; its colours
    brought from its own profile (icc_of; none: sRGB) into `icc`'s (None: sRGB), so it looks
    behind the subject as it looks on its own."""
    width, height = size
    bw, bh = background.size
    scale = max(width / bw, height / bh)
    new = (max(width, round(bw * scale)), max(height, round(bh * scale)))
    resized = resize(background.convert("RGB"), new, Image.Resampling.LANCZOS)
    left = (new[0] - width) // 2
    top = (new[1] - height) // 2
    return into_profile(resized.crop((left, top, left + width, top + height)), icc_of(background), icc)


def render(
    image: Image.Image,
    alpha: Image.Image,
    *,
    background: Background = None,
    mask_only: bool = False,
    refine_foreground: bool = False,
    options: RenderOptions | None = None,
) -> Image.Image:
    """Compose an output from an RGB image and its matte.

    `options` (a RenderOptions) wins over the keywords, which build one:
    background None -> RGBA cut-out (A = alpha; RGB 0 where alpha is 0, and
    the estimated foreground colour where alpha is 1-254, so nothing of the
    removed background survives, not even at a soft edge); a colour -> RGB on that
    colour; an image -> RGB on that image fitted to cover.
    mask_only -> the matte itself (mode L), whatever the background.
    refine_foreground (clean_edges) -> estimate_foreground() colours instead of
    the image's in a composite too, so edges lose the old background's tint
    (a cut-out has them unless edge_colours is False); ignored with mask_only.
    framing (options only) -> crop to the subject or place it on a canvas
    first (rmbg.image.framing), so backgrounds and the mask follow the frame.
    """
    opts = options or RenderOptions(background, mask_only, refine_foreground)
    check_alpha(image, alpha)
    if opts.mask_only:
        mask = frame(image, alpha, opts.framing)[1] if opts.framing else alpha.copy()
        mask.info.pop("icc_profile", None)  # a matte is not colour: no colour profile describes it
        return mask
    icc = icc_of(image)  # the subject's profile, when one LittleCMS reads (load_image keeps no other)
    # A cut-out always takes its soft edge's colour from the subject (estimated
    # foreground), never the photographed background: archived benchmarks/cutout_colour.py.
    clean = opts.clean_edges or (opts.background is None and opts.edge_colours)
    if clean and opts.background is None and opts.framing is None:
        return _described(_made_clean(cutout_estimated(image, alpha)), icc)  # the same pixels, in one array
    rgb = estimate_foreground(image, alpha) if clean else image.convert("RGB")
    if opts.framing is not None:
        rgb, alpha = frame(rgb, alpha, opts.framing)
    if opts.background is None:
        return _described(cutout(rgb, alpha), icc)
    if isinstance(opts.background, Image.Image):
        bg = fit_cover(opts.background, rgb.size, icc)
    else:
        colour = into_profile(Image.new("RGB", (1, 1), parse_colour(opts.background)), None, icc)
        bg = Image.new("RGB", rgb.size, colour.getpixel((0, 0)))
    # Pillow's composite is the exact rule of the module doc (its rounding is exact for
    # 8-bit values; tests/test_compose.py) in C, ~8x faster than the same in numpy.
    return _described(Image.composite(rgb, bg, alpha), icc)


def _described(out: Image.Image, icc: bytes | None) -> Image.Image:
    """`out` (made here, from the subject's numbers) described by the subject's colour profile."""
    if icc is not None:
        out.info["icc_profile"] = icc
    return out


def into_profile(img: Image.Image, source: bytes | None, target: bytes | None) -> Image.Image:
    """`img`'s colours, whose numbers `source` describes, as numbers `target` describes (each an
    ICC profile, None for sRGB): a backdrop or a colour (given in sRGB, as CSS and the web give
    them) brought into the subject's colour space, so it looks as it was asked for."""
    if source == target:
        return img
    from PIL import ImageCms

    intent = ImageCms.Intent.RELATIVE_COLORIMETRIC  # in gamut: the same colour; out of it: the nearest
    moved = ImageCms.profileToProfile(
        img.convert("RGB"), cms_profile(source), cms_profile(target), renderingIntent=intent
    )
    assert moved is not None  # not in place: Pillow returns the new image
    return moved


def cutout(rgb: Image.Image, alpha: Image.Image) -> Image.Image:
    """RGBA with A = alpha and RGB 0 under alpha 0: what is removed stays removed.

    Semi-transparent pixels keep their colour (not premultiplied), so edges
    do not darken when the cut-out is composited later.
    """
    # Pillow's C loops on planes: each colour plane times "seen" (0 or 255, so x*255/255 = x
    # exactly), then merged with alpha; a 12 MP cut-out in ~0.06 s (numpy's stack and boolean
    # zeroing took ~0.4 s, an RGBA composite ~0.2 s).
    seen = alpha.point(_VISIBLE)
    planes = (rgb if rgb.mode == "RGB" else rgb.convert("RGB")).split()
    return _made_clean(Image.merge("RGBA", (*(ImageChops.multiply(plane, seen) for plane in planes), alpha)))


def _made_clean(out: Image.Image) -> Image.Image:
    """`out`, remembered as a cut-out whose colour under alpha 0 is already zero."""
    _MADE_CLEAN[id(out)] = out
    return out


def check_options(options: RenderOptions) -> RenderOptions:
    """Validate render options before any work (and any paid call): the
    colour parses, the format is known. Returns them unchanged."""
    if options.background is not None and not isinstance(options.background, Image.Image):
        parse_colour(options.background)
    normalise_format(options.format)
    return options


def format_from_path(path: str | os.PathLike[str]) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise InvalidImageError(f"Cannot tell the output format from {Path(path).name!r}: use .png, .webp or .jpg.")
    return suffix


def normalise_format(fmt: str) -> str:
    try:
        return FORMATS[fmt.lower().lstrip(".")]
    except KeyError:
        raise InvalidImageError(f"Unknown output format {fmt!r}: use png, webp or jpg.") from None


def encode(
    image: Image.Image,
    fmt: str = "png",
    *,
    background: Background = None,
    quality: int = 95,
    meta: Mapping[str, str] | None = None,
) -> bytes:
    """Encode an output image.

    PNG and WebP keep alpha (WebP always losslessly when there is alpha, with
    the RGB under alpha 0 kept exact; `quality` applies to RGB WebP). JPEG has
    no alpha: an RGBA image is flattened onto `background` (white by default).
    `meta` goes into PNG text chunks (provenance). A colour image's profile
    (image.info["icc_profile"], the photo's: render) is written in each format; a mask's never.
    """
    pil_format = normalise_format(fmt)
    check_sides(image.size, pil_format)  # a re-render's frame or format: said, not the encoder's error
    buf = io.BytesIO()
    if image.mode == "RGBA" and pil_format != "JPEG" and _MADE_CLEAN.get(id(image)) is not image:
        image = cutout(image, image.getchannel("A"))  # whatever made it: no RGB under alpha 0
    if pil_format == "JPEG":
        if image.mode in ("RGBA", "LA"):
            bg = WHITE if background is None else background
            image = render(image.convert("RGB"), image.getchannel("A"), background=bg)
        elif image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(buf, "JPEG", quality=quality, optimize=True, icc_profile=_profile(image))
    elif pil_format == "WEBP":
        # Never lossy with alpha: a lossy WebP decodes with colour under alpha 0 (up to 88
        # grey levels, 27 px from the edge, at quality 80: docs/cutouts.md), whatever is sent in.
        lossless = image.mode in ("RGBA", "LA", "L")
        # exact: libwebp otherwise fills transparent pixels with neighbouring visible
        # colours (better compression), which brings the removed background back as RGB.
        image.save(
            buf,
            "WEBP",
            lossless=lossless,
            quality=quality if not lossless else 90,
            method=4,
            exact=True,
            icc_profile=_profile(image),
        )
    else:
        info = None
        if meta:
            info = PngImagePlugin.PngInfo()
            for key, value in meta.items():
                info.add_text(key, value)
        save_png(image, buf, level=PNG_LEVEL, strategy=PNG_STRATEGY, info=info, icc=_profile(image))
    return buf.getvalue()


def _profile(image: Image.Image) -> bytes | None:
    """The colour profile an output is written with: its own, for colour; none for a mask."""
    return image.info.get("icc_profile") or None if image.mode in ("RGB", "RGBA") else None


def checkerboard(size: tuple[int, int], square: int = 16) -> Image.Image:
    """A grey checkerboard, the usual 'transparent' preview backdrop."""
    width, height = size
    ys, xs = np.indices((height, width))
    board = (((xs // square) + (ys // square)) % 2).astype(np.uint8)
    arr = np.where(board[..., None] == 1, np.uint8(204), np.uint8(255))
    return Image.fromarray(np.repeat(arr, 3, axis=2), "RGB")


def preview(image: Image.Image) -> Image.Image:
    """An RGBA output shown over a checkerboard (RGB); other modes unchanged."""
    if image.mode != "RGBA":
        return image
    board = checkerboard(image.size)
    board.info["icc_profile"] = image.info.get("icc_profile")  # greys: the same in any RGB space
    return render(image.convert("RGB"), image.getchannel("A"), background=board)
