"""Writing a batch's files under the output folder, never through a link we
did not make: outputs go to a fresh temporary name and are renamed into
place; a symbolic link planted at a file we write (the manifest, a temporary
name) or at a folder inside the output folder is refused, so a write never
lands outside it."""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

from ..errors import RmbgError, UsageError
from .items import read_files, replaced_read


class OutputRefused(RmbgError):
    """The output folder holds something we will not write through (a symbolic link we did not make)."""


# Never follow a link we did not make: a planted manifest.csv or temp-file
# symlink must not redirect our writes to its target.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def open_no_follow(path: Path, flags: int, what: str) -> int:
    """os.open(path) that refuses a symbolic link at `path` with a clear error."""
    try:
        return os.open(path, flags | _NOFOLLOW, 0o644)
    except OSError:
        if path.is_symlink():
            raise OutputRefused(f"{what} {path} is a symbolic link; refusing to write through it.") from None
        raise


# what the system's refusals mean for an output folder, in words (no errno, no path): os_reason
def in_the_way(blocker: Path | None = None) -> str:
    """A file where an output's folder must be made, and what to do: every command's one wording (`blocker`:
    that file, where it is known)."""
    what = "a file stands" if blocker is None else f"{blocker} is a file"
    return f"{what} where a folder must be made; move it aside or give another -o"


_CANNOT = "give -o a folder you can write to"
_REASONS = {
    errno.ENOSPC: "the disk is full; free some space and run the same command again to resume",
    errno.EDQUOT: "the disk quota is used up; free some space and run the same command again to resume",
    errno.EROFS: f"the disk is read-only; {_CANNOT}",
    errno.EACCES: f"permission is denied; {_CANNOT}",
    errno.EPERM: f"permission is denied; {_CANNOT}",
    errno.EEXIST: in_the_way(),
    errno.ENOTDIR: in_the_way(),
    errno.ENAMETOOLONG: "the name is too long for the disk; rename the input or give a shorter -o",
}


def os_reason(exc: OSError) -> str:
    """Why the system refused a write under the output folder, and what to do, in words: no errno, no path."""
    said = (exc.strerror or type(exc).__name__).lower()
    return _REASONS.get(exc.errno or 0, f"the system says {said!r}; check the output folder and run again")


class NotWritten(RmbgError):
    """A write under the output folder that the system refused; `reason`: why and what to do (os_reason)."""

    def __init__(self, path: Path, exc: OSError):
        self.reason = os_reason(exc)
        super().__init__(f"{path} could not be written: {self.reason}.")


def check_writable(folder: Path, given: str) -> None:
    """Make `folder` where it is missing and write (then remove) a fresh file in it, before any model runs or any
    call is sent: UsageError, in words (os_reason), when the system refuses (a read-only or full disk, a file
    where a folder must be). `given`: the option as given, such as "-o out/clip.webm"."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".rmbg-write-check.{os.getpid()}.{secrets.token_hex(4)}"
        os.close(open_no_follow(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, "the write check"))
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"{given} cannot be written: {os_reason(exc)}.") from None


def check_not_read(folder: Path, names: Iterable[str], reads: Sequence[tuple[Path, str]], given: str) -> None:
    """UsageError, before any model runs, when a file the run writes into `folder` by a fixed name (`rmbg
    evaluate`'s reports) would be one of the files it reads, (file, what it is): by device and inode, as
    rmbg.cli.items.read_files has them, so a hard link or a link to one is that file. `given`: "--out res"."""
    read = read_files(reads)
    for name in names:
        if what := replaced_read(folder / name, read):
            raise UsageError(
                f"{given}: its report {name} would replace {what}: give {given.split()[0]} a folder that holds none "
                "of the files the evaluation reads."
            )


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a fresh temp file (O_EXCL: never an existing file or link) in the
    same folder, then rename it over `path` (a rename replaces a link, never its target).
    NotWritten (in words) when the system refuses: a full or read-only disk, a file where a folder must be."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
        fd = open_no_follow(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, "the temporary file")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise NotWritten(path, exc) from exc


def check_inside(out_root: Path, output_rel: str) -> None:
    """Refuse (OutputRefused) when a folder between `out_root` and the file
    `output_rel` is a symbolic link: the write would land where it points."""
    folder = out_root
    for part in PurePosixPath(output_rel).parts[:-1]:
        folder = folder / part
        if folder.is_symlink():
            raise OutputRefused(f"the output folder {folder} is a symbolic link; refusing to write through it.")
