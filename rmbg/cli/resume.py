"""Resume only into outputs made with the same options, one resume at a time.

OUT/.rmbg-options.json records what the outputs in OUT were made with
(provider and its options, background, mask only, clean edges, format). A
run that would skip existing outputs made otherwise is refused, never silent.

A resume after a killed run holds back the images whose paid request may have
been billed, and writes a "failed, may have been billed" row for each in the
manifest. Two such resumes started at once wrote those rows twice, so a resume
that holds images back takes OUT/.rmbg-resume.lock (an advisory lock of this
machine's kernel, released when the process ends, however it ends); a second
one refuses in a sentence until the first is done. Batches that hold nothing
back still share a folder freely (their claims keep each output to one run).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from ..cache import options_key
from ..errors import UsageError
from ..image.io import IMAGE_SUFFIXES
from ..options import at, framing
from ..providers.base import Provider
from . import batch
from .writing import NotWritten, open_no_follow

OPTIONS_FILE = ".rmbg-options.json"
# the render options every record has, by the name it has them under
FIRST = {"background": "bg", "mask_only": "mask_only", "format": "format", "clean_edges": "refine_edges"}
RESUME_LOCK = ".rmbg-resume.lock"
# names of image and video files: an -o that ends so was meant as the file, never made a folder
FILE_SUFFIXES = (*IMAGE_SUFFIXES, ".mp4", ".webm")


def output_folder(text: str) -> Path:
    """-o OUT: a local folder (made when missing), never an existing file nor a URL."""
    if "://" in text:
        raise UsageError(
            f"-o {text}: outputs go to a folder on this machine (on a cluster, one every node "
            "mounts); URLs are for inputs only."
        )
    out_dir = Path(text)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"-o {text}: that is a file; -o names the output folder (it is created if missing).")
    if out_dir.suffix.lower() in FILE_SUFFIXES and not out_dir.exists():  # `rembg i in.jpg out.png`'s habit
        raise UsageError(
            f"-o {text}: -o names the output folder, and {out_dir.name} would be made a folder: each output "
            f"goes into it under its input's name (-o out/ writes out/photo.png). Give a folder."
        )
    return out_dir


def output_options(args, provider: Provider) -> dict[str, object]:
    """Everything that decides what an output file contains, for the resume check: the render
    options (rmbg.options) and the provider's. The first options are recorded under the names
    the first records used (FIRST); an option added since, and the framing, only when set, so
    that older records still match."""
    frame = [getattr(args, option.name) for option in framing()]
    later = {
        option.name: getattr(args, option.name)
        for option in at("cli", "look")
        if option.name not in FIRST and getattr(args, option.name) != option.default
    }
    return {
        **({"framing": frame} if any(frame) else {}),
        **later,
        "provider": provider.id,
        "provider_options": json.loads(options_key(provider.options())),
        **{key: getattr(args, name) for name, key in FIRST.items()},
        "refine": args.refine,
    }


def check_resume(out_dir: Path, options: dict[str, object], *, skipped: int, overwrite: bool) -> None:
    """Resume only into outputs made with the same options (see record_options).

    Existing outputs are skipped (resume) only when OUT/.rmbg-options.json says
    they were made with these options; with other options, or with no record,
    a run that would skip files is refused instead of silently keeping them.
    """
    record = out_dir / OPTIONS_FILE
    before = None
    if record.is_file() and not record.is_symlink():
        try:
            before = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            before = None
    if skipped and not overwrite and before != options:
        why = "were made with other options" if before is not None else "were made by an unknown run"
        raise UsageError(
            f"{skipped} output(s) already in {out_dir} {why} ({_options_diff(before, options)}); "
            "they would be kept as they are. Use --overwrite to replace them, or another -o folder."
        )


def record_options(out_dir: Path, options: dict[str, object]) -> None:
    """OUT/.rmbg-options.json: the options the outputs in OUT are made with; the run's first write in OUT, so
    an OUT that cannot be written (a read-only or full disk, a file where a folder must be) is a usage error
    here, before any image runs."""
    try:
        batch.write_atomic(out_dir / OPTIONS_FILE, json.dumps(options, sort_keys=True, indent=1).encode())
    except NotWritten as exc:
        raise UsageError(f"-o {out_dir} cannot be written: {exc.reason}.") from None


def _options_diff(before, now: dict[str, object]) -> str:
    if not isinstance(before, dict):
        return f"no {OPTIONS_FILE} record"
    changed = [k for k in now if before.get(k) != now[k]]
    return "changed: " + ", ".join(f"{k} {before.get(k)!r} -> {now[k]!r}" for k in changed)


@contextlib.contextmanager
def resume_lock(out_dir: Path, holding_back: bool) -> Iterator[None]:
    """OUT/.rmbg-resume.lock for the run's length when it holds images back (see the module
    docstring); UsageError when another process has it. Nothing to take on a system without
    fcntl (Windows): there two resumes at once may each write the held-back rows."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux or macOS
        fcntl = None  # type: ignore[assignment]
    if not holding_back or fcntl is None:
        yield
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    fd = open_no_follow(out_dir / RESUME_LOCK, os.O_RDWR | os.O_CREAT, "the resume lock")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "another process"
            raise UsageError(
                f"Another rmbg run ({holder}) is resuming {out_dir} after an interrupted run, holding back the "
                "images that may have been billed; run this again once it has finished."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()}".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
