"""Benchmark uploads: loose files or .zip archives turned into a data set folder.

A visitor's upload is hostile until proven otherwise, so the reader:
- writes only into the temporary folder it is given, under names it makes
  itself (the base name of a member, checked), never a path from the archive;
- refuses absolute names, `..`, symlinks and other non-regular members,
  encrypted members, and names that collide;
- bounds the number of images, the bytes of each file and of all files
  together, and the compression ratio (a zip bomb declares small sizes and
  inflates; members are read in chunks and cut off at the limit whatever
  their header says); a loose file over its limit (an image's, or an
  archive's: all it may hold) is refused by its size before it is read;
- matches ground truth to images by stem and names what does not match.

The folder it fills has the layout `rmbg evaluate` reads (images/ and, with
ground truth, masks/), so the tab and the CLI score the same files the same way.
"""

from __future__ import annotations

import hashlib
import stat
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ...errors import InvalidRequestError
from ...eval.dataset import GT_FOLDERS
from ...image.io import IMAGE_SUFFIXES
from ..file_limits import image_max_bytes, shown_mb, size_refusal

MAX_IMAGES = 50
MAX_TOTAL_BYTES = 400 * 2**20  # everything extracted from one benchmark upload
MAX_MEMBERS = 2 * MAX_IMAGES + 50  # zip entries looked at (folders and stray files included)
MAX_BENCH_PIXELS = 16_000_000  # per image: what scoring keeps in memory grows with it (see _check_size)
MAX_RATIO = 200  # uncompressed / compressed bytes of one member; images compress far less
CHUNK = 1 << 16


class UploadError(InvalidRequestError):
    """An upload the benchmark refuses; the message says which file and why."""


@dataclass(frozen=True)
class Upload:
    """A filled data set folder. names: image stems, sorted; truth: whether
    every image has ground truth (masks/ exists); notes: what was left out."""

    root: Path
    names: tuple[str, ...]
    truth: bool
    notes: tuple[str, ...] = ()


class _Budget:
    """Bytes written so far against MAX_TOTAL_BYTES."""

    def __init__(self) -> None:
        self.used = 0

    def take(self, n: int, name: str) -> None:
        self.used += n
        if self.used > MAX_TOTAL_BYTES:
            raise UploadError(f"The upload is over {MAX_TOTAL_BYTES // 2**20} MB uncompressed (at {name}).")


MAX_STEM_BYTES = 120  # longer names are shortened (a file system allows 255 bytes)


def short_stem(stem: str) -> str:
    """`stem`, or for one over MAX_STEM_BYTES in UTF-8 its start and a digest of the whole (so two long
    names that differ only at the end stay apart, and an image and its mask still match)."""
    if len(stem.encode("utf-8")) <= MAX_STEM_BYTES:
        return stem
    head = stem.encode("utf-8")[:80].decode("utf-8", errors="ignore")
    return f"{head}-{hashlib.sha256(stem.encode('utf-8')).hexdigest()[:12]}"


def _shown(name: str, most: int = 80) -> str:
    """A member's name as a message quotes it: repr'd, and cut when long."""
    return repr(name if len(name) <= most else name[: most - 1] + "…")


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:120] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _is_image_name(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES and not PurePosixPath(name).name.startswith(".")


def _safe_parts(name: str) -> tuple[str, ...]:
    """The folders and file name of an archive member; refuses anything that could leave the folder."""
    text = name.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise UploadError(f"The archive member {name!r} has an absolute path; refusing the archive.")
    parts = tuple(p for p in text.split("/") if p not in ("", "."))
    if any(p == ".." for p in parts):
        raise UploadError(f"The archive member {name!r} points outside the archive ('..'); refusing the archive.")
    return parts


def _role(parts: tuple[str, ...]) -> str:
    """'truth' for a member under a masks/alphas/mattes/gt folder, else 'image'."""
    return "truth" if any(p.lower() in GT_FOLDERS for p in parts[:-1]) else "image"


def _copy_limited(source, target: Path, name: str, budget: _Budget) -> None:
    """Copy a stream to target, stopping at an image's limit (headers may lie)."""
    written, limit = 0, image_max_bytes()
    with open(target, "xb") as out:
        while chunk := source.read(CHUNK):
            written += len(chunk)
            if written > limit:
                raise UploadError(f"{name} is over {shown_mb(limit)} MB.")
            budget.take(len(chunk), name)
            out.write(chunk)


class _Target:
    """The data set folder being filled: images/ and masks/ with unique stems."""

    def __init__(self, root: Path):
        self.root = root
        self.stems: dict[str, dict[str, Path]] = {"image": {}, "truth": {}}
        self.budget = _Budget()

    def path_for(self, role: str, file_name: str) -> Path:
        stem, suffix = PurePosixPath(file_name).stem, PurePosixPath(file_name).suffix.lower()
        if not stem or any(c in stem for c in "\x00/\\") or stem.startswith("."):
            raise UploadError(f"The file name {_shown(file_name)} is not usable.")
        stem = short_stem(stem)  # the disk's limit is 255 bytes; an image and its mask shorten alike
        taken = self.stems[role]
        if stem in taken:
            raise UploadError(
                f"Two {'ground-truth files' if role == 'truth' else 'images'} are named {stem!r}; "
                "names must be unique (folders are not kept)."
            )
        if role == "image" and len(taken) >= MAX_IMAGES:
            raise UploadError(f"Too many images: at most {MAX_IMAGES} per benchmark.")
        folder = self.root / ("masks" if role == "truth" else "images")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{stem}{suffix}"
        taken[stem] = path
        return path


def _add_zip(archive: Path, target: _Target, notes: list[str], role: str | None = None) -> None:
    """role: None (by folder: masks/ etc. are ground truth) or what every member is."""
    # zipfile raises many kinds of error on a damaged archive (BadZipFile, UnicodeDecodeError on a name,
    # struct.error, EOFError, ValueError...): each becomes a refusal that says which archive or member.
    try:
        zf = zipfile.ZipFile(archive)
    except Exception as exc:
        raise UploadError(f"{archive.name} is not a readable .zip archive ({_reason(exc)}).") from None
    limit = image_max_bytes()  # each member's, read once for the archive
    with zf:
        members = zf.infolist()
        if len(members) > MAX_MEMBERS:
            raise UploadError(f"{archive.name} has {len(members)} entries; at most {MAX_MEMBERS} are read.")
        for info in members:
            parts = _safe_parts(info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UploadError(f"The archive member {info.filename!r} is a symbolic link; refusing the archive.")
            if info.is_dir() or not parts:
                continue
            if not _is_image_name(parts[-1]) or parts[0] == "__MACOSX":
                notes.append(f"skipped {info.filename} (not an image)")
                continue
            if info.flag_bits & 0x1:
                raise UploadError(f"The archive member {info.filename!r} is encrypted.")
            if info.file_size > limit:
                raise UploadError(f"{info.filename} is over {shown_mb(limit)} MB.")
            if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
                raise UploadError(
                    f"{info.filename} inflates {info.file_size // info.compress_size}-fold: "
                    "refusing what looks like a zip bomb."
                )
            path = target.path_for(role or _role(parts), parts[-1])
            try:
                with zf.open(info) as source:
                    _copy_limited(source, path, info.filename, target.budget)
            except UploadError:
                raise
            except Exception as exc:
                # a header that lies about the size, a bad checksum, a cut-off or unsupported member
                raise UploadError(
                    f"The archive member {_shown(info.filename)} cannot be read ({_reason(exc)}); refusing the archive."
                ) from None


def _check_bytes(path: Path) -> None:
    """A loose file by its size on disk, before it is read: an image's limit, or an archive's (all it may hold)."""
    limit = MAX_TOTAL_BYTES if path.suffix.lower() == ".zip" else image_max_bytes()
    size = path.stat().st_size
    if size > limit:
        raise UploadError(size_refusal(path.name, size, limit))


def _add_file(path: Path, role: str, target: _Target, notes: list[str]) -> None:
    if path.is_symlink() or not path.is_file():
        raise UploadError(f"{path.name} is not a regular file.")
    _check_bytes(path)
    if path.suffix.lower() == ".zip":
        _add_zip(path, target, notes)
        return
    if not _is_image_name(path.name):
        raise UploadError(f"{path.name} is neither an image nor a .zip archive.")
    with open(path, "rb") as source:
        _copy_limited(source, target.path_for(role, path.name), path.name, target.budget)


def read_upload(images: Iterable[str | Path] | None, truth: Iterable[str | Path] | None, into: Path) -> Upload:
    """Fill `into` (an empty temporary folder) from uploaded images and optional
    ground truth (loose files or .zip archives; inside an image archive,
    files under masks/, alphas/, mattes/ or gt/ are ground truth).
    Raises UploadError with a readable message; `into` may then hold a partial
    copy, which the caller removes with the folder."""
    target = _Target(Path(into))
    notes: list[str] = []
    for role, files in (("image", images or ()), ("truth", truth or ())):
        for item in files:
            item = Path(item)
            if role == "truth" and item.suffix.lower() == ".zip":
                _check_bytes(item)
                _add_zip(item, target, notes, role="truth")  # every image in it is ground truth
            else:
                _add_file(item, role, target, notes)
    return _matched(target, notes)


def _matched(target: _Target, notes: list[str]) -> Upload:
    images, masks = target.stems["image"], target.stems["truth"]
    if not images:
        raise UploadError("No image found in the upload (JPEG, PNG, WebP, ... or a .zip of them).")
    if masks:
        orphans = sorted(set(masks) - set(images))
        missing = sorted(set(images) - set(masks))
        if orphans or missing:
            parts = []
            if missing:
                parts.append(f"no ground truth for {_listing(missing)}")
            if orphans:
                parts.append(f"ground truth without an image: {_listing(orphans)}")
            raise UploadError("Ground truth must have the same names as the images: " + "; ".join(parts) + ".")
        for stem, path in sorted(masks.items()):
            _check_truth(stem, path)
    for stem, path in sorted(images.items()):
        _check_size(stem, path)
    return Upload(target.root, tuple(sorted(images)), bool(masks), tuple(notes))


def _check_size(stem: str, path: Path) -> None:
    """An image over MAX_BENCH_PIXELS is refused from its header, before any provider runs: scoring one
    decodes it and its truth whole, several times over in floats (twelve 36 MP frames took +2.4 GB)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            width, height = img.size
    except Image.DecompressionBombError:
        raise UploadError(
            f"{stem} is far over the size the Benchmark scores ({MAX_BENCH_PIXELS / 1e6:g} MP)."
        ) from None
    except (UnidentifiedImageError, OSError, ValueError):  # unreadable: its row in the run says why, the rest go on
        return
    if width * height > MAX_BENCH_PIXELS:
        raise UploadError(
            f"{stem} is {width}x{height} ({width * height / 1e6:.1f} MP): the Benchmark scores images of up to "
            f"{MAX_BENCH_PIXELS / 1e6:g} MP. Scale them down, or run `rmbg evaluate` on your own machine."
        )


def _check_truth(stem: str, path: Path) -> None:
    """Ground truth must be a readable image of a sane size (it is decoded whole when scored)."""
    from PIL import Image, UnidentifiedImageError

    from ...image.io import max_pixels_default as max_pixels

    try:
        with Image.open(path) as img:
            size = img.size
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise UploadError(f"The ground truth for {stem!r} is not an image we can read.") from None
    if size[0] * size[1] > max_pixels():
        raise UploadError(f"The ground truth for {stem!r} is over {max_pixels():,} pixels.")


def _listing(names: Sequence[str], most: int = 5) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def count_images(files: Iterable[str | Path] | None) -> int:
    """How many images an upload holds (a .zip's image members counted by
    name, nothing extracted); for the cost estimate shown before a run."""
    total = 0
    for item in files or ():
        path = Path(item)
        if path.suffix.lower() != ".zip":
            total += _is_image_name(path.name)
            continue
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()[:MAX_MEMBERS]
        except (zipfile.BadZipFile, OSError):
            continue
        total += sum(_is_image_name(n) and _role(tuple(n.split("/"))) == "image" for n in names)
    return total
