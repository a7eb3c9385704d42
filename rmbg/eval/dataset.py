"""Labelled image sets for `rmbg evaluate`.

Layout of a data set folder:

    DATA/
      images/[CATEGORY/]NAME.jpg      photos (any format load_image reads)
      masks/[CATEGORY/]NAME.png       ground truth with the same relative stem:
                                      binary masks (0/255) or alpha mattes (0-255);
                                      the folder may also be called alphas/, mattes/ or gt/
      categories.csv                  optional: columns file,category[,group]

- Category: the CSV's `category`, else the first sub-folder under images/
  (files directly in images/ have no category).
- Group (the unit of the bootstrap, e.g. a video sequence): the CSV's
  `group`, else SEQUENCE from names like SEQUENCE_00042, else the image itself.
  Frames of one video are correlated, so confidence intervals resample groups.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import RmbgError
from ..image.io import is_image_file
from ..types import name_text
from .records import REPORT_FILES

GT_FOLDERS = ("masks", "alphas", "mattes", "gt")
_FRAME = re.compile(r"^(?P<group>.+)_(?P<frame>\d+)$")


class DatasetError(RmbgError, ValueError):
    """A data set folder that does not follow the documented layout."""


@dataclass(frozen=True)
class Sample:
    """One labelled image. name: relative path without suffix, '/'-separated."""

    name: str
    image: Path
    mask: Path
    category: str
    group: str


@dataclass(frozen=True)
class Dataset:
    """Matched samples, sorted by name, plus files that had no partner."""

    root: Path
    samples: tuple[Sample, ...]
    unmatched_images: tuple[str, ...] = ()
    unmatched_masks: tuple[str, ...] = ()
    categories_file: Path | None = None  # the CSV of categories read, if any

    @property
    def groups(self) -> list[str]:
        return sorted({s.group for s in self.samples})

    @property
    def categories(self) -> list[str]:
        return sorted({s.category for s in self.samples if s.category})

    def __len__(self) -> int:
        return len(self.samples)


def _index(folder: Path) -> dict[str, Path]:
    """Relative stem -> file, for every image file under `folder`."""
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if is_image_file(path) and not earlier_report(path):
            # a name that is not UTF-8 is matched and reported as text (\\xNN): the reports are UTF-8 files
            found.setdefault(name_text(path.relative_to(folder).with_suffix("").as_posix()), path)
    return found


def earlier_report(path: Path) -> bool:
    """Whether `path` is the plot an earlier `rmbg evaluate` wrote (--out this folder): beside its run's
    evaluation.json, it is that run's report, not an image or a mask of the data set."""
    return path.name == REPORT_FILES["plot"] and (path.parent / REPORT_FILES["json"]).is_file()


def group_of(stem: str) -> str:
    """'blackswan_00025' -> 'blackswan'; a name without a frame number is its own group."""
    match = _FRAME.match(stem)
    return match.group("group") if match else stem


def read_categories(path: Path) -> dict[str, tuple[str, str]]:
    """CSV with columns file, category and optionally group -> {key: (category, group)}.

    `file` may be the relative stem, the relative path or the bare file name. As spreadsheets save it:
    UTF-8 with or without a byte-order mark (Excel's "CSV UTF-8" has one, which once hid the `file`
    column), separated by commas, semicolons (Excel where the decimal mark is a comma) or tabs.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DatasetError(f"{path.name} is not UTF-8 text: save it as CSV UTF-8.") from None
    head = text.split("\n", 1)[0]
    separator = max(",;\t", key=head.count)  # the header's own separator; commas when it has none
    with io.StringIO(text, newline="") as fh:
        reader = csv.DictReader(fh, delimiter=separator)
        fields = {f.strip().lower() for f in (reader.fieldnames or [])}
        if not {"file", "category"} <= fields:
            raise DatasetError(f"{path.name} needs the columns file,category (and optionally group).")
        table: dict[str, tuple[str, str]] = {}
        for row in reader:
            clean = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            key = clean["file"].replace("\\", "/")
            if key:
                table[key] = (clean["category"], clean.get("group", ""))
    return table


def _lookup(table: dict[str, tuple[str, str]], stem: str, image: Path) -> tuple[str, str] | None:
    for key in (stem, stem + image.suffix, image.name, stem.rsplit("/", 1)[-1]):
        if key in table:
            return table[key]
    return None


def discover(root, *, categories=None) -> Dataset:
    """Find the labelled images under `root` (see the module doc for the layout).

    categories: a CSV path; None uses root/categories.csv when present.
    """
    root = Path(root)
    images_dir = root / "images"
    if not images_dir.is_dir():
        raise DatasetError(f"{root} has no images/ folder (expected images/ and masks/ with matching names).")
    gt_dir = next((root / name for name in GT_FOLDERS if (root / name).is_dir()), None)
    if gt_dir is None:
        raise DatasetError(f"{root} has no ground-truth folder: add one of {', '.join(GT_FOLDERS)}/.")
    csv_path = Path(categories) if categories is not None else root / "categories.csv"
    table = read_categories(csv_path) if csv_path.is_file() else None
    if categories is not None and table is None:
        raise DatasetError(f"No such categories file: {csv_path}")
    images, masks = _index(images_dir), _index(gt_dir)
    samples = []
    for stem, image in images.items():
        if stem not in masks:
            continue
        parts = stem.split("/")
        category = parts[0] if len(parts) > 1 else ""
        group = group_of(parts[-1])
        if len(parts) > 1:
            group = "/".join(parts[:-1] + [group])
        if table is not None:
            entry = _lookup(table, stem, image)
            if entry is not None:
                category = entry[0] or category
                group = entry[1] or group
        samples.append(Sample(stem, image, masks[stem], category, group))
    if not samples:
        raise DatasetError(f"No image in {images_dir} has a ground truth with the same name in {gt_dir}.")
    return Dataset(
        root=root,
        samples=tuple(samples),
        unmatched_images=tuple(sorted(set(images) - set(masks))),
        unmatched_masks=tuple(sorted(set(masks) - set(images))),
        categories_file=csv_path if table is not None else None,
    )


def scaled(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether sizes a and b (width, height) are one picture at two scales: the smaller is the larger times
    one factor, each side rounded up or down. With (w, h) the smaller and (W, H) the larger, that factor
    exists when |w·H - h·W| < W + H, so 1000x750 with 500x375 or 501x375 is, and 400x300 with 300x400 is not."""
    (w, h), (big_w, big_h) = sorted((a, b), key=lambda size: size[0] * size[1])
    return abs(w * big_h - h * big_w) < big_w + big_h


def same_shape(
    mask: tuple[int, int], size: tuple[int, int], *, of: str = "image", stored: tuple[int, int] | None = None
) -> str | None:
    """None when a mask of size `mask` belongs to an `of` ("image" or "frame") of `size`, both (width, height),
    up to scale (scaled); else why not, in words that follow the mask's name. Scoring squashes the matte to
    the mask's size, so a mask of another aspect ratio (another image's, or one not turned as its image is)
    gives scores that mean nothing. `size` is an image's size as shown (EXIF orientation applied); `stored`,
    its size as saved: a mask of that size is the one EXIF orientation left unturned, and is said so."""
    if scaled(mask, size):
        return None
    said = f"is {mask[0]}x{mask[1]} but the {of} is {size[0]}x{size[1]}" + (" as shown" if of == "image" else "")
    if stored is not None and stored != size and scaled(mask, stored):
        turned = "the image is rotated by its EXIF orientation and the mask is not"
        return f"{said}: {turned}; turn the mask as the image is shown"
    return f"{said}: a mask is its {of}'s size or that size scaled (the same aspect ratio); is it another {of}'s mask?"


def subset(dataset: Dataset, names: Sequence[str]) -> Dataset:
    """The same data set restricted to the given sample names (in their order)."""
    by_name = {s.name: s for s in dataset.samples}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise DatasetError(f"Not in the data set: {', '.join(missing)}")
    return Dataset(dataset.root, tuple(by_name[n] for n in names), categories_file=dataset.categories_file)
