"""What a batch is made of: one input and where its output goes (`Item`), and
what happened to it (`Outcome`). Shared by the scheduler (rmbg.cli.batch),
its budget (rmbg.cli.budget), the manifest and the Ray engine. Also the files
the arguments name (`expand`, which `local_items` turns into Items for rmbg.cli.batch.plan)."""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..image.io import is_image_file
from ..types import Cost, name_text

Status = Literal["done", "skipped", "failed", "not_run"]


@dataclass(frozen=True)
class Item:
    """One input image and where its output goes.

    display: the input path as shown to a person (relative to the working
        folder when it is inside it); output_rel: the output path relative to
        the output folder, '/'-separated; error: set when the input cannot be
        run at all (an argument that matched nothing, an output name clash, a
        request of an earlier run that may have been billed: `uncertain`).
    """

    source: Path | str  # a file, or an http(s) URL
    display: str
    output_rel: str
    output: Path
    error: str = ""
    uncertain: bool = False  # held back: an earlier run's request for it may have been billed


@dataclass(frozen=True)
class Outcome:
    """What happened to one item. seconds: wall seconds, load to written file;
    provider: who made its output ("" = the batch's provider); confidence: its
    matte's (rmbg.confidence), when a provider ran."""

    item: Item
    status: Status
    seconds: float = 0.0
    cost: Cost | None = None
    error: str = ""
    may_be_billed: bool = False  # failed after a paid request may have reached the provider
    provider: str = ""
    confidence: float | None = None


class OutputNames:
    """The output names one run has given out (a batch's, `rmbg video`'s), compared case-folded: on
    macOS's and Windows' disks (case-insensitive) names that differ only in case are one file, and a
    second output under it would replace the first without a word."""

    def __init__(self) -> None:
        self._owners: dict[str, str] = {}

    def claim(self, name: str, who: str) -> str:
        """ "" when `name` is now `who`'s; else the input that already has it."""
        key = name.casefold()
        if key in self._owners:
            return self._owners[key]
        self._owners[key] = who
        return ""

    def numbered(self, stem: str, ending: str, who: str) -> str:
        """The first of stem+ending, stem-2+ending, stem-3+ending ... nobody has, claimed for `who`
        (URLs that end in one name: photo, photo-2, photo-3)."""
        name, n = f"{stem}{ending}", 1
        while self.claim(name, who):
            n += 1
            name = f"{stem}-{n}{ending}"
        return name


# --- the inputs a batch's arguments name ---------------------------------------------

NOTHING = "no such file or folder, or no image matched"
ANOTHER = "rename one of them or give another -o"


def inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder)
        return True
    except ValueError:
        return False


def _glob_base(pattern: str) -> Path:
    """The fixed folder prefix of a glob pattern ('a/b/*/c*.jpg' -> 'a/b')."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def expand(inputs: Sequence[str], out_dir: Path) -> tuple[list[tuple[Path, Path]], list[tuple[str, str]]]:
    """Arguments -> ([(file, path relative to its root)], [(argument, why it gives no image)]).

    A folder or a glob whose tree holds `out_dir` leaves out the files under it (a previous run's outputs
    are not inputs); a file named on its own is always taken (`photo.jpg -o .` once said "no such file").
    """
    out_abs = out_dir.resolve()
    found: list[tuple[Path, Path]] = []
    missing: list[tuple[str, str]] = []
    for arg in inputs:
        path, root = Path(arg), None
        if path.is_dir():
            root, pairs = path, [(p, p.relative_to(path)) for p in sorted(path.rglob("*")) if is_image_file(p)]
        elif path.is_file():
            pairs = [(path, Path(path.name))]
        elif glob.has_magic(arg):
            root = _glob_base(arg)
            matches = sorted(Path(p) for p in glob.glob(arg, recursive=True))
            pairs = [(p, p.relative_to(root)) for p in matches if is_image_file(p)]
        else:
            pairs = []
        nested = root is not None and inside(out_abs, root.resolve())  # earlier outputs may be in this tree
        kept = [(p, rel) for p, rel in pairs if not (nested and inside(p, out_abs))]
        if not kept:
            missing.append(
                (
                    arg,
                    f"its images are all in the output folder {out_dir}: give -o a folder outside it"
                    if pairs
                    else NOTHING,
                )
            )
        found.extend(kept)
    return found, missing


# --- the local files as Items ------------------------------------------------------


def clash(output_rel: str, other: str) -> str:
    """Why an input fails whose output name another input of the run has."""
    return f"its output {output_rel} is also the output of {other}; rename one of them"


def _named(path: Path) -> Path:
    """`path` with its folders resolved but not its last part: a link to a file is a name of its own."""
    return path.parent.resolve() / path.name


def _display(path: Path) -> str:
    try:
        return _named(path).relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _files(path: Path, follow: bool = True) -> set[tuple[int, int]]:
    """(device, inode) of the name itself and, with `follow`, of the file it reads (a link's target)."""
    found = set()
    for look in (os.lstat, os.stat) if follow else (os.lstat,):
        try:
            st = look(path)
        except OSError:
            continue
        found.add((st.st_dev, st.st_ino))
    return found


def read_files(reads: Sequence[tuple[Path, str]]) -> dict[tuple[int, int], str]:
    """The files a run reads, (file, what it is), as (device, inode) -> what it is: each name and, for a link,
    the file it reads; a hard link to one of them is the same file."""
    return {file: what for path, what in reads for file in _files(path)}


def replaced_read(output: Path, read: Mapping[tuple[int, int], str]) -> str:
    """What `output` would replace of the files a run reads (read_files), "" for none: the file itself, a hard
    link to it, or a link to it (a run that skips an existing output would take the link for done)."""
    return next((read[file] for file in _files(output) if file in read), "")


def local_items(
    found: Sequence[tuple[Path, Path]],
    out_dir: Path,
    suffix: str,
    claimed: OutputNames,
    reads: Sequence[tuple[Path, str]] = (),
    made: Mapping[str, str] | None = None,
) -> list[Item]:
    """`expand`'s files as Items, each name once (a folder and a glob may both name it; a link is a name of its
    own, with its output under its own name). One fails in words when its name is not UTF-8, when its output
    would replace a file the run reads (itself, another input, `reads`: (file, what it is) such as the --bg
    image), or when another input has its output name; of those, the input `made` says made that output
    (output case-folded -> the file as shown then: rmbg.cli.manifest.makers) keeps it."""
    named: dict[Path, tuple[Path, Path]] = {}
    for source, rel in found:
        named.setdefault(_named(source), (source, rel))
    shown = {key: _display(source) for key, (source, _) in named.items()}
    read = read_files(reads)
    read.update({file: f"the input {shown[key]}" for key, (source, _) in named.items() for file in _files(source)})
    planned: list[tuple[Path, str, str, str]] = []  # (source, display, output_rel, error)
    for key, (source, rel) in named.items():
        display, output_rel = shown[key], rel.with_suffix(suffix).as_posix()
        replaced = [file for file in _files(out_dir / output_rel, follow=False) if file in read]
        if (odd := name_text(display)) != display:  # not UTF-8: failed, in words; the other images go on
            planned.append((Path(odd), odd, "", "its name is not UTF-8 text: rename the file"))
        elif replaced and replaced[0] in _files(source):  # photo.png -o . would write over the photo
            planned.append((source, display, "", "its output would replace it: give another -o"))
        elif replaced:  # photo.jpg photo.png -o .: photo.jpg's output is the photo.png the run reads
            what = read[replaced[0]]
            planned.append((source, display, "", f"its output {output_rel} would replace {what}: {ANOTHER}"))
        else:
            planned.append((source, display, output_rel, ""))
    made = made or {}
    keepers = [(source, display, out) for source, display, out, _ in planned if out and out.casefold() in made]
    for by_name in (False, True):  # the maker as shown then; else (another working folder) by the file's name
        for source, display, output_rel in keepers:
            maker = made[output_rel.casefold()]
            if (source.name == Path(maker).name) if by_name else (display == maker):
                claimed.claim(output_rel, display)  # it keeps its output: an input added since is the newcomer
    items = []
    for source, display, output_rel, error in planned:
        other = "" if error else claimed.claim(output_rel, display)
        error = error or (clash(output_rel, other) if other and other != display else "")
        items.append(
            Item(source, display, "" if error else output_rel, Path() if error else out_dir / output_rel, error)
        )
    return items
