"""How a result is shown and downloaded: background, mask-only, format.

Everything here works from a Result's (source, alpha): no provider is ever
called. The preview is what the download will look like (a transparent
cut-out over a checkerboard; a JPEG of a cut-out flattened on white, as the
file will be), scaled down for the page; the download is full size.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from ..errors import InvalidImageError, RmbgError
from ..image.compose import Background, SeeThroughColour, parse_colour, preview, render
from ..image.framing import framing_of
from ..image.io import load_image
from ..options import Option, at
from ..result import Result
from ..types import Framing, RenderOptions

BackgroundKind = Literal["transparent", "colour", "image"]
BACKGROUNDS: tuple[BackgroundKind, ...] = ("transparent", "colour", "image")
FORMATS = ("png", "webp", "jpeg")
EXTENSIONS = {"png": "png", "webp": "webp", "jpeg": "jpg"}


@dataclass(frozen=True)
class Look:
    """background: "transparent", "colour" or "image".
    colour: what the colour picker says ("#RRGGBB" or "rgba(r, g, b, a)").
    image: path (or bytes) of an uploaded background image (used when background is "image").
    mask_only: show and download the matte itself (white = kept).
    fmt: "png", "webp" or "jpeg".
    framing: the product photo's frame (rmbg.image.framing).
    more: the other render options (rmbg.options: clean edges, edge colours, ...), by name."""

    background: BackgroundKind = "transparent"
    colour: str = "#ffffff"
    image: str | bytes | None = None
    mask_only: bool = False
    fmt: str = "png"
    framing: Framing | None = None
    more: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(
        cls,
        background: Any = "transparent",
        colour: Any = "#ffffff",
        image: Any = None,
        mask_only: Any = False,
        fmt: Any = "png",
        **options: Any,
    ) -> Look:
        """From raw UI values, checked; unknown values are errors, not guesses. The other render
        options (rmbg.options: the edges, the framing, ...) are named, each read as its kind (a
        flag strictly, None its default); an unknown name is a TypeError."""
        named = named_options()
        unknown = sorted(set(options) - {o.name for o in named})
        if unknown:
            raise TypeError(f"Look.of() got unexpected keyword(s) {', '.join(unknown)}")
        background = (background or "transparent").lower()
        if background not in BACKGROUNDS:
            raise InvalidImageError(f"Unknown background {background!r}: use one of {', '.join(BACKGROUNDS)}.")
        fmt = (fmt or "png").lower()
        fmt = "jpeg" if fmt == "jpg" else fmt
        if fmt not in FORMATS:
            raise InvalidImageError(f"Unknown output format {fmt!r}: use png, webp or jpeg.")
        read: dict[str, Any] = {o.name: _read(o, options.get(o.name)) for o in named}
        framing = framing_of(**{o.name: read[o.name] for o in named if o.group == "framing"})
        more = tuple((o.name, read[o.name]) for o in named if o.group != "framing")
        return cls(background, colour or "#ffffff", image or None, flag(mask_only, "mask_only"), fmt, framing, more)

    def options(self) -> RenderOptions:
        """These choices as the render options every part of rmbg takes."""
        return RenderOptions(self.backdrop(), self.mask_only, format=self.fmt, framing=self.framing, **dict(self.more))

    @staticmethod
    def background_of(text: object, *, images: bool = True) -> tuple[BackgroundKind, str | None]:
        """One text field for the background, as programs send it (REST, MCP):
        "transparent", "none" or empty; "image" (when `images`: the picture
        comes separately); anything else is a colour, checked by Look.of."""
        value = str(text or "").strip()
        if value.lower() in ("", "transparent", "none"):
            return "transparent", None
        if images and value.lower() == "image":
            return "image", None
        return "colour", value

    @staticmethod
    def background_sent(text: object, picture: object) -> tuple[BackgroundKind, str | None]:
        """background_of for a request whose background picture comes in a field of its own (REST's
        background_image): a picture sent with no background asks for it as the background; a picture
        beside another background, or "image" without one, is refused, never quietly dropped."""
        sent = picture is not None
        kind, colour = Look.background_of("image" if sent and not str(text or "").strip() else text)
        if kind == "image" and not sent:
            raise InvalidImageError('background "image" needs the image itself in the background_image field.')
        if kind != "image" and sent:
            raise InvalidImageError(
                f'background_image is the picture for background "image", and this request asks for '
                f"{str(text).strip()!r}: send background=image, or leave out background_image."
            )
        return kind, colour

    def backdrop(self) -> Background:
        """What compose.render takes: None, an (r, g, b) colour or a PIL image."""
        if self.background == "colour":
            return picker_colour(self.colour)
        if self.background == "image":
            if not self.image:
                raise InvalidImageError("Choose a background image first (or pick transparent or a colour).")
            return background_picture(self.image)
        return None


def background_picture(image: str | bytes) -> Image.Image:
    """A background picture (a path or its bytes) loaded and checked as any image is; one that cannot be
    used is said to be the background's, not the photo's (the error's kind, a 413's included, kept)."""
    try:
        return load_image(image).rgb
    except InvalidImageError as exc:
        exc.args = (f"The background image: {exc}", *exc.args[1:])
        raise


def named_options() -> tuple[Option, ...]:
    """The render options Look.of takes by name (rmbg.options): all but the three it takes first."""
    return tuple(o for o in at() if o.name not in ("background", "mask_only", "format"))


def _read(option: Option, value: object) -> object:
    """A render option's value from a door: None is its default, a flag is read strictly."""
    if value is None:
        return option.default
    return flag(value, option.name) if option.kind == "flag" else value


def flag(value: object, name: str) -> bool:
    """A checkbox value: True/False (None = False); 'true'/'false' text from a
    raw API call is read as such, anything else is an error (never bool('no'))."""
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise InvalidImageError(f"{name} must be true or false, got {value!r}.")


def picker_colour(value: str) -> tuple[int, int, int]:
    """A colour picker's value -> (r, g, b): parse_colour's, fractional rgba() and its refusal of a
    see-through colour included."""
    return parse_colour(value or "")


def colour_hex(text: str | None) -> str | None:
    """The page's hex field as '#rrggbb' for the colour swatch: '#f4f4f4',
    'f4f4f4', '#fff' or a CSS name; None when it is not a colour (the swatch
    keeps its colour and the field shows what was typed). A see-through colour
    ('#ff000080', 'ff000080') is a SeeThroughColour, whose sentence every door says."""
    value = (text or "").strip()
    if re.fullmatch(r"[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8}", value):
        value = "#" + value
    try:
        r, g, b = parse_colour(value)[:3]
    except SeeThroughColour:
        raise
    except (RmbgError, ValueError, TypeError):
        return None
    return f"#{r:02x}{g:02x}{b:02x}"


def shrink(image: Image.Image, max_side: int) -> Image.Image:
    """A copy no longer than `max_side` on its long side (same aspect)."""
    if max(image.size) <= max_side:
        return image
    copy = image.copy()
    copy.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return copy


def shown(result: Result, look: Look) -> Result:
    """The result rendered with this look (no model run)."""
    return result.render(options=look.options())


def preview_of(rendered: Result, look: Look, max_side: int) -> Image.Image:
    """RGB (or L) preview of what the download will look like."""
    image = rendered.image
    if image.mode == "RGBA":
        if look.fmt == "jpeg":  # the file will be flattened on white
            image = render(image.convert("RGB"), image.getchannel("A"), background=(255, 255, 255))
        else:
            image = preview(shrink(image, max_side))
    return shrink(image, max_side)


class OutputStore:
    """Download files, content-addressed: `<root>/<sha256 of the bytes>/<name>`.

    The app passes gradio's own upload folder as `root`: gradio then serves a
    returned path in place (no second copy), records it among the page's
    temporary files, and Blocks(delete_cache=...) deletes it when it is old,
    so this store keeps no pruning of its own. The same output asked for
    again is not written again (its time is refreshed, so it ages from its
    last use). Without a root: a private temporary folder (tests, scripts).

    max_bytes and max_files bound what this store has written and still
    keeps, whatever their age: past either, its least recently written files
    are deleted first (gradio's own uploads in the same folder are never
    touched), with the folders they were alone in.
    """

    def __init__(self, root: str | Path | None = None, max_bytes: int = 1024 * 2**20, max_files: int = 2000):
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="rmbg-app-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.max_files = max_files
        self._written: OrderedDict[Path, int] = OrderedDict()
        self._lock = threading.Lock()

    def write(self, name: str, data: bytes) -> Path:
        folder = self.root / hashlib.sha256(data).hexdigest()
        path = folder / name
        if path.is_file() and not path.is_symlink():
            os.utime(path)
        else:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{name}.{os.getpid()}.{threading.get_ident()}.part"
            tmp.write_bytes(data)
            os.replace(tmp, path)  # never a half-written file under the final name
        self._keep(path, len(data))
        return path

    def adopt(self, source: Path, name: str) -> Path:
        """Move a finished file (a video, too large to hold in memory) into the
        store under `name`, content-addressed as write() does; returns its path."""
        digest = hashlib.sha256()
        with source.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        folder = self.root / digest.hexdigest()
        path = folder / name
        size = source.stat().st_size
        if path.is_file() and not path.is_symlink():
            os.utime(path)
            source.unlink()
        else:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{name}.{os.getpid()}.{threading.get_ident()}.part"
            shutil.move(source, tmp)  # a copy when the store is on another file system
            os.replace(tmp, path)
        self._keep(path, size)
        return path

    @property
    def nbytes(self) -> int:
        return sum(self._written.values())

    def owns(self, path: Path) -> bool:
        """Whether `path` is one of the files this store keeps (bounded here, not by the upload room)."""
        with self._lock:
            return path in self._written

    def _keep(self, path: Path, size: int) -> None:
        with self._lock:
            self._written[path] = size
            self._written.move_to_end(path)
            total = sum(self._written.values())
            while (total > self.max_bytes or len(self._written) > self.max_files) and len(self._written) > 1:
                old, old_size = self._written.popitem(last=False)
                old.unlink(missing_ok=True)
                with contextlib.suppress(OSError):  # its content-addressed folder, when now empty
                    old.parent.rmdir()
                total -= old_size


def safe_stem(stem: str) -> str:
    """A file name stem made of safe characters, at most 60 of them."""
    return (re.sub(r"[^A-Za-z0-9._-]+", "_", stem or "image").strip("._") or "image")[:60]


def stem_of(image) -> str:
    """An uploaded image's file stem, which its downloads are named after; "image" for one without a file."""
    return Path(image).stem if isinstance(image, (str, os.PathLike)) else "image"


def file_name(stem: str, look: Look) -> str:
    suffix = "mask" if look.mask_only else "nobg"
    return f"{safe_stem(stem)}-{suffix}.{EXTENSIONS[look.fmt]}"


def download(rendered: Result, look: Look, stem: str, store: OutputStore) -> Path:
    """Encode the rendered result in the chosen format; PNG/WebP keep alpha."""
    return store.write(file_name(stem, look), rendered.encode(look.fmt))
