"""Where `rmbg video` writes: the output format from -o's name (or --format, --bg), and one output
path per input clip (rmbg.cli.video). A file is always what its name says."""

from __future__ import annotations

from pathlib import Path

from ..image.formats import URL
from .items import ANOTHER, Item, Outcome, OutputNames, inside, read_files, replaced_read
from .manifest import Manifest, makers
from .resume import UsageError

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".gif", ".m4v")
WRITTEN = {".webm": "webm", ".mov": "mov", ".mp4": "mp4", ".gif": "gif", ".webp": "webp"}
NOT_WRITTEN = (".mkv", ".m4v", ".avi", ".mpg", ".mpeg", ".wmv", ".flv", ".ogv", ".apng", ".png")


def output_format(output: str, fmt: str | None, bg: str | None) -> str:
    """The format `rmbg video` writes: what -o's extension names (a file), else --format, else webm
    (mp4 with --bg). A clash between the name and --format or --bg is refused in words, so a file
    is always what its name says (-o w.webm --bg red wrote an MP4 into w.webm)."""
    out = Path(output)
    suffix = out.suffix.lower()
    named = WRITTEN.get(suffix) if not out.is_dir() else None
    if suffix in NOT_WRITTEN and not out.is_dir():
        raise UsageError(
            f"-o {out.name}: rmbg video writes .webm, .mov, .mp4, .gif or .webp files, not {suffix}; or give a folder."
        )
    if named is not None and fmt is not None and fmt != named and not (fmt == "matte" and named == "mp4"):
        raise UsageError(
            f"-o {out.name} names a .{named} file but --format {fmt} writes "
            f"{'an MP4' if fmt == 'matte' else 'a ' + fmt.upper()}: end the name in "
            f"{'.mp4' if fmt == 'matte' else '.' + fmt}, or leave --format out."
        )
    chosen = named if named is not None and fmt != "matte" else fmt or ("mp4" if bg else "webm")
    if bg and chosen != "mp4":
        where = f"--format {chosen} keeps" if fmt else f"-o {out.name} is a {chosen.upper()} file, which keeps"
        raise UsageError(f"--bg needs the mp4 format: {where} the transparency.")
    return chosen


def plan(
    inputs: list[str], output: str, fmt: str, reads: list[tuple[Path, str]] | None = None
) -> list[tuple[str, Path]]:
    """(input, output path) pairs: folders are searched (recursively) for clips, less those under -o when -o is
    inside the folder (an earlier run's outputs). Several clips need -o to be a folder: a name with a video
    extension is refused for them (it made a folder called one.webm/). `reads`: the other files the run reads
    (the --bg image), which no output may replace."""
    from ..video.encode import SUFFIX

    found: list[tuple[str, Path | None]] = []
    out_abs = Path(output).resolve()
    for text in inputs:
        path = Path(text)
        if URL.match(text):
            found.append((text, None))
        elif path.is_dir():
            clips = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
            if out_abs != path.resolve() and inside(out_abs, path.resolve()):  # `rmbg video . -o cut` run again
                clips = [p for p in clips if not inside(p, out_abs)]
            elif out_abs == path.resolve():  # `rmbg video in -o in` run again: its outputs, by OUT/manifest.csv
                made = makers(Path(output))
                clips = [p for p in clips if p.relative_to(path).as_posix().casefold() not in made]
            found += [(str(p), p.relative_to(path)) for p in clips]
        elif path.is_file():
            found.append((text, Path(path.name)))
        else:
            raise UsageError(f"{text}: no such file or folder.")
    if not found:
        raise UsageError("No video found in the inputs (looked for " + ", ".join(VIDEO_SUFFIXES) + ").")
    out = Path(output)
    if out.suffix.lower() in WRITTEN and not out.is_dir():
        if len(found) == 1:
            return _not_onto_read([(found[0][0], out)], reads or [])
        raise UsageError(
            f"{len(found)} clips need -o to be a folder (one output each), but {out.name} names one "
            f"{out.suffix.lower()} file: give a folder, such as -o {out.with_suffix('')}/."
        )
    pairs: list[tuple[str, Path]] = []
    names = OutputNames()  # names that differ only in case are one file on macOS's and Windows' disks
    seen: set[str] = set()
    for source, rel in found:
        same = source if rel is None else str(Path(source).resolve())
        if same in seen:
            continue  # a clip named twice (by a folder and its path, ./clip.mp4 and clip.mp4) is one clip
        seen.add(same)
        name = rel if rel is not None else Path(source.split("?")[0].rstrip("/").rsplit("/", 1)[-1] or "video")
        stem = out / name.with_suffix("")
        ending = ("-matte" if fmt == "matte" else "") + SUFFIX[fmt]
        if rel is None:  # URLs ending alike: clip, clip-2, clip-3
            target = Path(names.numbered(str(stem), ending, source))
        else:
            target = Path(f"{stem}{ending}")
            if other := names.claim(str(target), source):  # one output: the second replaced the first (paid too)
                raise UsageError(
                    f"{source}: its output {target} is also the output of {other}: "
                    "rename one of them, or give them apart."
                )
        pairs.append((source, target))
    return _not_onto_read(pairs, reads or [])


def beside_clips(inputs: list[str], output: str) -> bool:
    """Whether -o is one of the input folders (each output is written beside its clip): then the run keeps
    OUT/manifest.csv, as `rmbg remove` does, so that a later run knows its outputs from clips (`plan`)."""
    out_abs = Path(output).resolve()
    return any(Path(text).is_dir() and Path(text).resolve() == out_abs for text in inputs if not URL.match(text))


def manifest_row(manifest: Manifest | None, source: str, target: Path, result=None, error: str = "") -> None:
    """One clip's row in OUT/manifest.csv (`beside_clips`; None: no manifest is kept): done, with its
    `result`, or failed, with its `error`."""
    if manifest is not None:
        output_rel = target.relative_to(manifest.path.parent).as_posix()
        item = Item(source, source, output_rel, target)
        seconds, cost = (result.seconds.total, result.cost) if result is not None else (0.0, None)
        manifest.write(Outcome(item, "done" if result is not None else "failed", seconds, cost, error))


def _not_onto_read(pairs: list[tuple[str, Path]], reads: list[tuple[Path, str]]) -> list[tuple[str, Path]]:
    """The pairs, unless an output is a file the run reads, or a link to one (clip.webm -o . in webm: it was taken
    for a clip already done, or with --overwrite written over the clip; another input; the --bg image):
    refused before anything runs, with or without --overwrite."""
    clips = [(Path(source), f"the clip {source}") for source, _ in pairs if not URL.match(source)]
    read = read_files(clips + reads)
    for source, target in pairs:
        what = replaced_read(target, read)
        if what == f"the clip {source}" or (not URL.match(source) and target.resolve() == Path(source).resolve()):
            raise UsageError(f"{source}: its output would be the clip itself, {target}: give another -o (or --format).")
        if what:
            raise UsageError(f"{source}: its output {target} would replace {what}: {ANOTHER}.")
    return pairs
